#!/usr/bin/env bash
# A fuzzing campaign over every cargo-fuzz target, then a corpus
# minimisation, so fuzz/corpus/<target>/ stays small enough to commit and
# to replay in CI (`cargo test -p fuzz-replay`).
#
#   scripts/fuzz.sh                 # 60 s per target
#   FUZZ_SECONDS=3600 scripts/fuzz.sh
#   FUZZ_TARGETS=graph_ops scripts/fuzz.sh
#
# A crash is a bug: libFuzzer saves the input under
# fuzz/artifacts/<target>/; copy it into fuzz/corpus/<target>/ and it
# becomes a regression test of the stable replay.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
secs="${FUZZ_SECONDS:-60}"
for t in ${FUZZ_TARGETS:-graph_ops drop_chaos weak_maps}; do
    mkdir -p "corpus/$t"
    echo "=== $t: ${secs}s"
    # -s none: no sanitizer (about 4x the exec/s of ASan); the targets check
    # their invariants themselves, and scripts/sanitizers.sh covers ASan.
    cargo +nightly fuzz run -s none "$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -max_len=512 "${@}"
    # -use_counters=0: keep one input per covered edge, not per hit-count
    # bucket (about 100 files per target instead of 700).
    cargo +nightly fuzz cmin -s none "$t" "corpus/$t" -- -max_len=512 -use_counters=0
    echo "=== $t: $(ls "corpus/$t" | wc -l) corpus files"
done
