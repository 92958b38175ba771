#!/usr/bin/env bash
# The CI-cheap verification of issue #3, run by .ci/run after the workspace
# tests:
#
#   1. the loom models at the CI bound (LOOM_MAX_PREEMPTIONS=3),
#   2. the loom teeth: a deliberately broken protocol must be caught,
#   3. the Miri subset (leak-checked; threaded tests over 8 seeds),
#   4. the replay of the committed fuzz corpus (stable, no nightly).
#
# Each step's time is printed, and a summary at the end; the script fails if
# any step fails (all steps run regardless). The deeper runs are separate:
# scripts/loom.sh with LOOM_MAX_PREEMPTIONS=4, scripts/loom-deep.sh,
# scripts/sanitizers.sh, scripts/fuzz.sh (see VERIFICATION.md in the
# README's "Verification" section).
set -uo pipefail
cd "$(dirname "$0")/.."

summary=()
failed=0
step() {
    local name="$1"
    shift
    printf '\n=== %s\n' "$name"
    local start=$SECONDS status=ok
    if ! "$@"; then
        status=FAILED
        failed=1
    fi
    summary+=("$(printf '%-44s %-7s %5ss' "$name" "$status" "$((SECONDS - start))")")
}

step "loom models (bound ${LOOM_CI_BOUND:-3})" \
    env LOOM_MAX_PREEMPTIONS="${LOOM_CI_BOUND:-3}" bash scripts/loom.sh --test-threads=2
step "loom teeth (broken protocol is caught)" bash scripts/loom-teeth.sh
step "miri subset" bash scripts/miri.sh
step "fuzz corpus replay (stable)" cargo test -p fuzz-replay

printf '\n=== verification summary\n'
printf '%s\n' "${summary[@]}"
exit $failed
