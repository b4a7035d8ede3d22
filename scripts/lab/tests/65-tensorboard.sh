#!/usr/bin/env bash
# TensorBoard event files (issue 12, item 10; docs/file-formats.md#tensorboard-event-files): the
# events.out.tfevents.* that `distill train --out` (tabular, network, and an observed environment)
# and `distill cluster --out` (the learner; a multi-task run's task_K/… scalars equal to its
# tasks.csv) write beside metrics.csv, and `distill experiment` writes
# per run in OUT/tensorboard/RUN/ beside OUT/runs/RUN.csv, are read with tbparse
# (TensorBoard's own reader underneath, PyPI) and hold exactly the numbers of metrics.csv: the same
# tags (every numeric column), the same steps (train: the iteration; cluster: env_steps), in the
# same order, the same values to float32 (an event holds the CSV cell as a float32). Empty cells
# (not measured) have no event. The first record is
# file_version brain.Event:2, read with tensorboard's own event_file_loader, which drops a record
# whose data CRC is wrong.
# Budget: ~30 s once the venv exists; creating it (pip: tbparse, tensorboard, pandas) adds ~2 min.
. "$(dirname "$0")/../lib.sh"

[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY (build it: swift build -c release)"
work=$(mktemp -d /tmp/lab-tensorboard.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
venv="${TENSORBOARD_VENV:-$LAB_ROOT/.build/lab-tensorboard-venv}"
lab_venv "$venv" tbparse numpy safetensors matplotlib

cat >"$work/compare.py" <<'PY'
"""compare.py DIR STEP_COLUMN [CSV]: DIR's event file holds the numbers of CSV (DIR/metrics.csv), to float32."""
import csv, glob, math, os, sys
import numpy as np
from tbparse import SummaryReader
from tensorboard.backend.event_processing import event_file_loader

directory, step_column = sys.argv[1], sys.argv[2]
table = sys.argv[3] if len(sys.argv) > 3 else f"{directory}/metrics.csv"
files = glob.glob(f"{directory}/events.out.tfevents.*")
assert len(files) == 1, f"expected one event file in {directory}, found {files}"
first = next(iter(event_file_loader.EventFileLoader(files[0]).Load()))
assert first.file_version == "brain.Event:2", first

rows = list(csv.DictReader(open(table)))
assert rows, f"{table} has no rows"
expected = {}
for row in rows:
    for column, cell in row.items():
        try:
            value = float(cell)
        except ValueError:
            continue  # an empty cell, or text (teacher_id)
        if math.isfinite(value):
            expected.setdefault(column, []).append((int(float(row[step_column])), value))

# A multi-task run's learner adds each task's returns (tasks.csv) as task_K/COLUMN at the row's step.
tasks = f"{directory}/tasks.csv"
if len(sys.argv) <= 3 and os.path.exists(tasks):
    task_rows = list(csv.DictReader(open(tasks)))
    assert task_rows, f"{tasks} has no rows"
    for row in task_rows:
        for column in ("student_return", "teacher_return", "teacher_share"):
            if row[column] and math.isfinite(float(row[column])):
                expected.setdefault(f"task_{row['task']}/{column}", []).append(
                    (int(float(row["env_steps"])), float(row[column])))

frame = SummaryReader(directory, pivot=False).scalars
assert len(frame) > 0, "tbparse found no scalars"
found = {tag: list(zip(group["step"].astype(int), group["value"])) for tag, group in frame.groupby("tag", sort=False)}
assert set(found) == set(expected), f"tags: events {sorted(found)}, csv {sorted(expected)}"
for tag, points in expected.items():
    events = found[tag]
    assert len(events) == len(points), f"{tag}: {len(events)} events, {len(points)} csv cells"
    for (step, value), (event_step, event_value) in zip(points, events):
        assert step == event_step, f"{tag}: step {event_step} in the events, {step} in the csv"
        assert np.float32(value) == np.float32(event_value), f"{tag} at {step}: {event_value} vs csv {value}"
cells = sum(len(p) for p in expected.values())
print(f"{directory.split('/')[-1]}: {len(expected)} tags, {len(rows)} rows, {cells} values equal (float32)")
PY

compare() {
    "$venv/bin/python" "$work/compare.py" "$@" >"$work/compare.log" 2>&1 || lab_fail "$1: $(tail -5 "$work/compare.log")"
    lab_say "$(cat "$work/compare.log")"
}

cd "$work"
"$DISTILL_BINARY" train --env gridworld --grid-size 5 --seed 3 --method n-distill+R --iterations 60 \
    --evaluate-every 7 --quiet --out train-tabular >/dev/null || lab_fail "distill train (tabular) failed"
compare "$work/train-tabular" iteration
"$DISTILL_BINARY" train --env gridworld --grid-size 5 --seed 3 --method n-distill+R --student mlp:16 \
    --observation one-hot --optimiser adam --learning-rate 0.01 --iterations 40 --evaluate-every 10 --quiet \
    --out train-network >/dev/null || lab_fail "distill train (network) failed"
compare "$work/train-network" iteration
"$DISTILL_BINARY" train --env cartpole --student mlp:16 --method actor-critic --optimiser adam \
    --learning-rate 0.001 --environments 4 --iterations 20 --evaluate-every 10 --evaluation-episodes 4 --quiet \
    --out train-cartpole >/dev/null || lab_fail "distill train (cartpole) failed"
compare "$work/train-cartpole" iteration

timeout 120 "$DISTILL_BINARY" cluster --seed 1 --actors 1 --steps 200000 --no-plot --out cluster >cluster.log 2>&1 \
    || { tail -20 cluster.log >&2; lab_fail "distill cluster failed"; }
compare "$work/cluster" env_steps

# A multi-task cluster (two gridworlds, a teacher server each): metrics.csv and tasks.csv in one file.
timeout 180 "$DISTILL_BINARY" cluster --env gridworld --grid-size 5 --tasks 1,2 --student mlp:16 \
    --observation one-hot --method teacher-distill-kl --control teacher --optimiser adam --learning-rate 0.01 \
    --actors 2 --steps 60000 --no-plot --out cluster-tasks >cluster-tasks.log 2>&1 \
    || { tail -20 cluster-tasks.log >&2; lab_fail "distill cluster --tasks failed"; }
[ -s cluster-tasks/tasks.csv ] || lab_fail "the multi-task cluster wrote no tasks.csv"
compare "$work/cluster-tasks" env_steps

# distill experiment: one event file per run, beside runs/RUN.csv (fig2's quick preset: 18 runs, ~1 s).
"$DISTILL_BINARY" experiment fig2 --quick --no-plot --out experiment >experiment.log 2>&1 ||
    { tail -20 experiment.log >&2; lab_fail "distill experiment fig2 --quick failed"; }
runs=$(ls experiment/runs/*.csv | wc -l)
[ "$(ls -d experiment/tensorboard/*/ | wc -l)" -eq "$runs" ] ||
    lab_fail "experiment: $runs runs, $(ls experiment/tensorboard | wc -l) event directories"
for events in experiment/tensorboard/*/; do
    run=$(basename "$events")
    "$venv/bin/python" "$work/compare.py" "$work/experiment/tensorboard/$run" iteration \
        "$work/experiment/runs/$run.csv" >>"$work/compare-experiment.log" 2>&1 ||
        lab_fail "experiment run $run: $(tail -5 "$work/compare-experiment.log")"
done
lab_say "experiment fig2 --quick: $runs runs, each event file equal to its runs/RUN.csv (float32)"

# TensorBoard checks the framing's CRCs: a flipped bit in the last record's data drops that record.
file=$(ls "$work"/train-tabular/events.out.tfevents.*)
"$venv/bin/python" - "$file" <<'PY' || lab_fail "TensorBoard's reader did not drop a record with a bad CRC"
import sys
from tensorboard.backend.event_processing import event_file_loader
path = sys.argv[1]
count = lambda: sum(1 for _ in event_file_loader.RawEventFileLoader(path, detect_file_replacement=False).Load())
before = count()
data = bytearray(open(path, "rb").read())
data[-6] ^= 0x40  # inside the last record's data, before its CRC
open(path, "wb").write(data)
after = count()
assert after == before - 1, (before, after)
print(f"a flipped bit in the last record: tensorboard reads {after} of {before} records")
PY
lab_say "passed in $(($(date +%s) - start)) s"
