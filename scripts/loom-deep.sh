#!/usr/bin/env bash
# The overnight loom run: every model at a deeper preemption bound, one
# after another, then the small models with no bound at all.
#
#   scripts/loom-deep.sh                 # bound 6, then the bounded models unbounded
#   DEEP_BOUND=5 scripts/loom-deep.sh
#   LOOM_MAX_DURATION=3600 scripts/loom-deep.sh   # cap each model at ~1 h
#                                                 # (loom checks it every 20 000 executions)
#
# Progress can be checkpointed with LOOM_CHECKPOINT_FILE (needs loom's
# `checkpoint` feature). A failure prints the model and loom's panic; rerun
# that one model with LOOM_LOG=trace LOOM_LOCATION=1 (see VERIFICATION.md).
set -uo pipefail
cd "$(dirname "$0")/.."
bound="${DEEP_BOUND:-6}"
export RUSTFLAGS="--cfg arcycle_loom${RUSTFLAGS:+ $RUSTFLAGS}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
status=0
# models.rs (the core protocol), atomic.rs (AtomicCc slots), weakref.rs.
for file in models atomic weakref; do
    cargo test -p loom-tests --release --test "$file" --no-run
    models=$(cargo test -p loom-tests --release --test "$file" -- --list 2>/dev/null | sed -n 's/: test$//p')
    for m in $models; do
        echo "=== $m (preemption bound $bound)"
        SECONDS=0
        if ! LOOM_MAX_PREEMPTIONS="$bound" cargo test -q -p loom-tests --release --test "$file" -- \
            --exact "$m" --nocapture; then
            echo "!!! $m FAILED at bound $bound"
            status=1
        fi
        echo "=== $m: ${SECONDS}s"
    done
done
# Unbounded: the bounded models whose state space may still finish (the
# small models already run exhaustively in every run).
for m in validate_vs_move_out_of_mutex validate_vs_move_to_other_node \
    buffer_vs_last_drop thread_exit_with_buffered_roots; do
    echo "=== $m (unbounded)"
    SECONDS=0
    if ! ARCYCLE_LOOM_UNBOUNDED=1 cargo test -q -p loom-tests --release --test models -- \
        --exact "$m" --nocapture; then
        echo "!!! $m FAILED unbounded"
        status=1
    fi
    echo "=== $m: ${SECONDS}s"
done
exit $status
