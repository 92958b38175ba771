#!/usr/bin/env bash
# The loom suite (loom-tests/): one model per race of the protocol.
#
#   scripts/loom.sh                     # bound 3: the CI bound (~1 min)
#   LOOM_MAX_PREEMPTIONS=4 scripts/loom.sh   # the full bound (~10 min, see VERIFICATION.md)
#   scripts/loom.sh validate_vs_upgrade # one model (any libtest filter/args)
#
# Prints each model's execution count and time. Fails if any model fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export RUSTFLAGS="--cfg arcycle_loom${RUSTFLAGS:+ $RUSTFLAGS}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
exec cargo test -p loom-tests --release --test models --test downstream --test weakref --test atomic -- --nocapture "$@"
