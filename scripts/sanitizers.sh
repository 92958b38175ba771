#!/usr/bin/env bash
# ThreadSanitizer and AddressSanitizer (with LeakSanitizer) over the
# multi-threaded tests. Any reported race, memory error or leak fails the
# script.
#
#   scripts/sanitizers.sh                 # miri-tests (every binary) + tests/concurrent.rs
#   SAN_ROOT_TESTS="concurrent api" scripts/sanitizers.sh   # more root test targets
#   SAN_ROOT_TESTS= scripts/sanitizers.sh # miri-tests only
#   SAN=tsan scripts/sanitizers.sh        # only one of tsan / asan
#
# (The root package's single-threaded tests build 10-million-node graphs:
# far too slow under TSan, and not what it is for.)
#
# TSan: `-Zbuild-std` (an instrumented std) and `--cfg tsan`, under which
# arcycle replaces its Acquire fences by Acquire loads (TSan does not model
# standalone fences and would report the correct Arc-style drop as a race).
# ASan: LeakSanitizer is on (`detect_leaks=1`).
set -euo pipefail
cd "$(dirname "$0")/.."

target="$(rustc -vV | sed -n 's/^host: //p')"
base="${CARGO_TARGET_DIR:-target}"
which="${SAN:-tsan asan}"
rustup component add --toolchain nightly rust-src >/dev/null

# What to run: every miri-tests binary (the curated multi-threaded tests
# among them), and the root package's multi-threaded integration tests.
runs=("-p miri-tests --tests")
for t in ${SAN_ROOT_TESTS-concurrent}; do
    if [ -f "tests/$t.rs" ]; then
        runs+=("-p arcycle --test $t")
    fi
done

for san in $which; do
    SECONDS=0
    case "$san" in
    tsan)
        # halt_on_error: the first race fails the test binary (exit 66).
        for r in "${runs[@]}"; do
            # shellcheck disable=SC2086 # $r is a list of arguments
            RUSTFLAGS="-Zsanitizer=thread --cfg tsan" \
                TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp ${TSAN_OPTIONS:-}" \
                cargo +nightly test -Zbuild-std --target "$target" --target-dir "$base/tsan" $r
        done
        ;;
    asan)
        for r in "${runs[@]}"; do
            # shellcheck disable=SC2086 # $r is a list of arguments
            RUSTFLAGS="-Zsanitizer=address" \
                ASAN_OPTIONS="detect_leaks=1 ${ASAN_OPTIONS:-}" \
                cargo +nightly test -Zbuild-std --target "$target" --target-dir "$base/asan" $r
        done
        ;;
    *)
        echo "unknown sanitizer $san" >&2
        exit 2
        ;;
    esac
    echo "sanitizers: $san passed in ${SECONDS}s"
done
