#!/usr/bin/env bash
# Teeth for the loom suite: build arcycle with a deliberately broken
# protocol and assert that loom CATCHES it, once per broken part:
#
#   1. `--cfg arcycle_broken`: the freeze-and-verify step 4 (the re-read of
#      every frozen word) is skipped (src/collector/validate.rs; pass 1's
#      closed components call the same function); the ABA model
#      `validate_vs_clone_drop_aba` must fail.
#   2. `--cfg arcycle_broken_atomic`: the trace of an `AtomicCc` slot reads
#      its edge without freezing the slot (src/atomic/slot.rs), i.e. a collector
#      that ignores atomic slots; the "moves change no count" model
#      `atomic_validate_vs_swap_out` must fail.
#   3. `--cfg arcycle_broken_generations`: a young collection lets go of the
#      entry of a young root that survived instead of holding it over for
#      the next full collection (src/collector/commit.rs); the model
#      `young_collection_holds_over_survivors` must fail.
#   4. `--cfg arcycle_broken_pipeline`: pass 1 lets go of a traced object's
#      guards before it holds the object's children (src/collector/
#      discover.rs), so a child's last handle can be taken out of the
#      parent's field and dropped before the hold; the model
#      `trace_vs_take_and_drop_child` must fail.
#   5. `--cfg arcycle_broken_quiet`: the collector thread ends a quiet
#      period without its SeqCst fence between clearing `armed` and reading
#      the buffer (src/collector/worker.rs); the model
#      `first_root_vs_quiet_disarm` must fail.
#   6. `--cfg arcycle_broken_pace`: a collection's end raises the finished
#      count and reads the paced waiters without the SeqCst fence between
#      (src/collector/pace.rs); the model `pace_wait_vs_collection_end`
#      must fail.
#   7. `--cfg arcycle_broken_exact`: validation trusts pass 1's counts
#      without comparing a member's re-traced edges with pass 1's
#      (src/collector/validate.rs); the model
#      `validate_vs_move_out_and_back` must fail.
#   8. `--cfg arcycle_broken_handover`: the last drop of a buffered object
#      gives its strong side back as a leaf's, instead of turning it into
#      the entry unit that `ACTIVE` stood for (src/header.rs), so the
#      allocation goes before its root-buffer entry; the model
#      `detached_and_active_entries_vs_last_drop` must fail.
#   9. `--cfg arcycle_broken_early`: pass 1 lets go of a batch's guards
#      before it decides the batch's closed components (src/collector/
#      discover.rs, early.rs), so a handle can leave a member's field
#      between the trace that recorded it and the freeze; the model
#      `closed_batch_vs_move_out` must fail. Its schedule needs a thread
#      to upgrade a member after pass 1 read the count, and to move the
#      handle out after the guards went, before the freeze: loom finds it
#      at bound 3 (in a second), not at 2, so this break runs at 3.
#
# The first two must fail with the panic of a handle that outlived its
# collected object (or loom's race report of the same); the third with
# its model's "lost a garbage cycle" assertion; the fourth with loom's
# report of the collector's load of the child's header racing the free;
# the fifth with its model's "quiet period lost" assertion; the sixth with
# loom's deadlock report (the waiter never woken); the seventh with loom's
# report of the collector destroying a value the mutator still reads; the
# eighth with its model's "entry outlived its allocation" assertion; the
# ninth with loom's report of the collector destroying a value the
# mutator still reads (or the model's live-handle panic).
#
#   scripts/loom-teeth.sh            # bound 2 (the broken runs need 2 preemptions; break 9, 3)
#
# Exit status 0 means "loom caught every broken protocol", as it must.
set -uo pipefail
cd "$(dirname "$0")/.."

bound="${LOOM_MAX_PREEMPTIONS:-2}"
base="${CARGO_TARGET_DIR:-target}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# The failures loom may report for a broken protocol: the models' own
# assertions, arcycle's dead-deref panic, or loom's race detection.
expected='LIVE HANDLE TO COLLECTED OBJECT|READ AFTER DROP|already destroyed by the cycle collector|Causality violation|GENERATIONS LOST A GARBAGE CYCLE|QUIET PERIOD LOST|ENTRY OUTLIVED ITS ALLOCATION'

# [TEETH_BOUND=N] teeth "CFG..." TARGET_SUFFIX TEST MODEL [EXPECTED]
teeth() {
    local cfg="$1" dir="$2" test="$3" model="$4" expected="${5:-$expected}" flags=""
    local bound="${TEETH_BOUND:-$bound}"
    for c in $cfg; do flags="$flags --cfg $c"; done
    SECONDS=0
    RUSTFLAGS="--cfg arcycle_loom$flags" LOOM_MAX_PREEMPTIONS="$bound" \
        CARGO_TARGET_DIR="$base/$dir" \
        cargo test -p loom-tests --release --test "$test" -- \
        --exact "$model" --test-threads=1 --nocapture >"$log" 2>&1
    local rc=$?
    if [ "$rc" -eq 0 ]; then
        tail -n 30 "$log"
        echo "loom-teeth: FAIL: the broken protocol ($cfg) passed $model (loom has no teeth)" >&2
        exit 1
    fi
    if ! grep -q "test $model" "$log"; then
        tail -n 30 "$log"
        echo "loom-teeth: FAIL: $model did not run (build error?), rc=$rc" >&2
        exit 1
    fi
    if ! grep -Eq "$expected" "$log"; then
        tail -n 30 "$log"
        echo "loom-teeth: FAIL: $model failed under $cfg, but not with the expected panic" >&2
        exit 1
    fi
    echo "loom-teeth: ok: loom caught $cfg in $model (bound $bound, ${SECONDS}s):"
    grep -E "$expected" "$log" | head -n 3 | sed 's/^/    /'
}

# Breaks 1 and 7 share one build: the ABA model's members are lock-free
# (validation reuses their pass-1 edges and compares nothing), and the
# move-out-and-back model never clones or drops on a frozen word (its
# thread's clone waits for the lock validation holds), so neither model
# reaches the other's break (each passes with the other break alone).
b17="arcycle_broken arcycle_broken_exact"
teeth "$b17" loom-broken models validate_vs_clone_drop_aba
teeth "$b17" loom-broken models validate_vs_move_out_and_back \
    'Causality violation|LIVE HANDLE TO COLLECTED OBJECT|READ AFTER DROP'
teeth arcycle_broken_atomic loom-broken-atomic atomic atomic_validate_vs_swap_out
teeth arcycle_broken_generations loom-broken-generations models young_collection_holds_over_survivors
# Breaks 4, 5 and 6 share one build (one compile less): each model
# exercises only its own part (the pipeline model runs no collector thread,
# the quiet model collects nothing while its race runs, the pace model runs
# only the handshake, which is compiled out of the others under loom), and
# each fails with its own message.
b456="arcycle_broken_pipeline arcycle_broken_quiet arcycle_broken_pace"
teeth "$b456" loom-broken-4-6 models trace_vs_take_and_drop_child \
    'Causality violation|LIVE HANDLE TO COLLECTED OBJECT|READ AFTER DROP'
teeth "$b456" loom-broken-4-6 models first_root_vs_quiet_disarm \
    'QUIET PERIOD LOST'
teeth "$b456" loom-broken-4-6 models pace_wait_vs_collection_end \
    'deadlock'
teeth arcycle_broken_handover loom-broken-handover models detached_and_active_entries_vs_last_drop \
    'ENTRY OUTLIVED ITS ALLOCATION'
TEETH_BOUND=3 teeth arcycle_broken_early loom-broken-early models closed_batch_vs_move_out \
    'Causality violation|LIVE HANDLE TO COLLECTED OBJECT|READ AFTER DROP'
