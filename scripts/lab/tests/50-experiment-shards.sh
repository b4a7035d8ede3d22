#!/usr/bin/env bash
# distill experiment across processes, as across machines: fig6 --quick split into 3 shards run by
# 3 concurrent processes into one output directory, merged by --aggregate-only, must give the same
# aggregate.csv as one process; a run killed with SIGKILL must resume without redoing finished
# runs; the figure must be a PNG (Debian's python3-matplotlib). About 30 s on 2 cores.
. "$(dirname "$0")/../lib.sh"

work=$(mktemp -d /tmp/lab-experiment.XXXXXX)
pids=()
cleanup() {
    lab_kill_tree "${pids[@]:-}"
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

lab_need_packages python3-matplotlib
export DISTILL_PYTHON=/usr/bin/python3

# 1. Three shards at once into one directory, then the merge.
for i in 0 1 2; do
    timeout 300 "$DISTILL_BINARY" experiment fig6 --quick --workers 1 --shard "$i/3" --out "$work/sharded" --no-plot \
        > "$work/shard-$i.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || lab_fail "a shard failed: $(cat "$work"/shard-*.log)"; done
pids=()
runs=$(ls "$work/sharded/runs" | grep -c '\.csv$')
[ "$runs" -eq 140 ] || lab_fail "the shards wrote $runs run files, expected 140"
timeout 120 "$DISTILL_BINARY" experiment fig6 --aggregate-only --out "$work/sharded" > "$work/merge.log" 2>&1 \
    || lab_fail "--aggregate-only failed: $(cat "$work/merge.log")"
grep -q '\] adversarial teacher' "$work/merge.log" || lab_fail "merge: no fig6 finding: $(cat "$work/merge.log")"
file "$work/sharded/figure.png" | grep -q 'PNG image' || lab_fail "no figure.png: $(cat "$work/merge.log")"

timeout 300 "$DISTILL_BINARY" experiment fig6 --quick --workers 2 --out "$work/single" --no-plot > "$work/single.log" 2>&1 \
    || lab_fail "single run failed: $(cat "$work/single.log")"
cmp -s "$work/sharded/aggregate.csv" "$work/single/aggregate.csv" \
    || lab_fail "aggregate.csv of 3 shards differs from one process's"
lab_say "3 shards + merge = one process (aggregate.csv identical, $(wc -l < "$work/single/aggregate.csv") lines)"

# 2. SIGKILL in the middle, then resume.
"$DISTILL_BINARY" experiment fig5 --quick --mdps 3 --workers 1 --out "$work/killed" --no-plot > "$work/killed.log" 2>&1 &
pids=($!)
count_runs() { ls "$work/killed/runs" 2>/dev/null | grep -c '\.csv$' || true; }
lab_wait_for 120 bash -c "[ \$(ls '$work/killed/runs' | grep -c '\.csv$') -ge 2 ]" || lab_fail "no run finished within 120 s"
kill -KILL "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
pids=()
before=$(count_runs)
[ "$before" -lt 12 ] || lab_fail "the experiment finished before it was killed; nothing to resume"
timeout 300 "$DISTILL_BINARY" experiment fig5 --quick --mdps 3 --workers 1 --out "$work/killed" --no-plot > "$work/resumed.log" 2>&1 \
    || lab_fail "resume failed: $(cat "$work/resumed.log")"
grep -q "($before already on disk)" "$work/resumed.log" || lab_fail "resume did not skip the $before finished runs: $(head -3 "$work/resumed.log")"
[ "$(count_runs)" -eq 12 ] || lab_fail "after resuming $(count_runs) of 12 runs"
lab_say "killed after $before of 12 runs; the rerun skipped them and finished the rest"
