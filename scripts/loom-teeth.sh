#!/usr/bin/env bash
# Teeth for the loom suite: build arcycle with a deliberately broken
# validation (`--cfg arcycle_broken`: the freeze-and-verify step 4, the
# re-read of every frozen word, is skipped; see src/collector/validate.rs)
# and assert that loom CATCHES it: the ABA model must fail, with the panic
# of a handle that outlived its collected object.
#
#   scripts/loom-teeth.sh            # bound 2 (the broken run needs 2 preemptions)
#
# Exit status 0 means "loom caught the broken protocol", as it must.
set -uo pipefail
cd "$(dirname "$0")/.."

bound="${LOOM_MAX_PREEMPTIONS:-2}"
target="${CARGO_TARGET_DIR:-target}/loom-broken"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

SECONDS=0
RUSTFLAGS="--cfg arcycle_loom --cfg arcycle_broken" LOOM_MAX_PREEMPTIONS="$bound" \
    CARGO_TARGET_DIR="$target" \
    cargo test -p loom-tests --release --test models -- \
    --exact validate_vs_clone_drop_aba --test-threads=1 --nocapture >"$log" 2>&1
rc=$?

# The failures loom may report for the broken protocol: the model's own
# assertions, arcycle's dead-deref panic, or loom's race detection.
expected='LIVE HANDLE TO COLLECTED OBJECT|READ AFTER DROP|already destroyed by the cycle collector|Causality violation'

if [ "$rc" -eq 0 ]; then
    tail -n 30 "$log"
    echo "loom-teeth: FAIL: the broken protocol passed the ABA model (loom has no teeth)" >&2
    exit 1
fi
if ! grep -q 'test validate_vs_clone_drop_aba' "$log"; then
    tail -n 30 "$log"
    echo "loom-teeth: FAIL: the model did not run (build error?), rc=$rc" >&2
    exit 1
fi
if ! grep -Eq "$expected" "$log"; then
    tail -n 30 "$log"
    echo "loom-teeth: FAIL: the model failed, but not with the expected panic" >&2
    exit 1
fi
echo "loom-teeth: ok: loom caught the broken protocol (bound $bound, ${SECONDS}s):"
grep -E "$expected" "$log" | head -n 3 | sed 's/^/    /'
