#!/usr/bin/env bash
# Using a run's student (issue 12, item 9; docs/networks.md#using-a-trained-student-export-and-eval):
# `distill export RUN --out FILE` then `distill eval --student FILE --env …` round-trips:
#   - a tabular `distill train --out` run, a network one (mlp on one-hot states) and a short
#     `distill cluster` run (its newest checkpoint): eval's exact return equals the run's own
#     (metrics.csv's last exact_return; summary.json's student_return at the same version) to 1e-5,
#     and the sampled return's 95 % interval is within 2.5 half-widths of it;
#   - the exported file loads in Python (safetensors.numpy) and numpy's logits at every one-hot
#     state give the same greedy actions as the table `distill teacher --export-table` reads from it;
#   - --path-image writes a PNG that matplotlib reads, of 12 px per cell, with the mark at the middle
#     of exactly the greedy path's cells (orange at the start, blue after);
#   - a file evaluated on another environment, a corrupt file and a directory that is not a run are
#     refused with a message naming them (exit 64 or 1, no crash).
# Budget: ~40 s once the venv exists (shared with 65-tensorboard.sh).
. "$(dirname "$0")/../lib.sh"

[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY (build it: swift build -c release)"
work=$(mktemp -d /tmp/lab-export.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
venv="${TENSORBOARD_VENV:-$LAB_ROOT/.build/lab-tensorboard-venv}"
lab_venv "$venv" tbparse numpy safetensors matplotlib
cd "$work"
grid=(--env gridworld --grid-size 5 --seed 3)

cat >check.py <<'PY'
"""check.py EVAL.json EXPECTED_EXACT FILE TABLE.json [PNG]: the round trip, numpy's greedy actions, the image."""
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

report = json.load(open(sys.argv[1]))
expected = float(sys.argv[2])
exact, mean, half = report["exact_return"], report["sampled_return"], report["sampled_return_ci95"]
assert abs(exact - expected) <= 1e-5 * max(1.0, abs(expected)), f"exact return {exact}, the run's {expected}"
assert abs(mean - exact) <= 2.5 * half + 1e-12, f"sampled {mean} ± {half} is far from the exact {exact}"

tensors = load_file(sys.argv[3])
with safe_open(sys.argv[3], framework="np") as f:
    metadata = f.metadata()
table = json.load(open(sys.argv[4]))
policy = np.array(table["policy"])
states = policy.shape[0]
if metadata["distill.architecture"] == "linear":
    logits = np.eye(states) @ tensors["logits.weight"].T.astype(np.float64) + tensors["logits.bias"]
else:  # mlp:W on one-hot states (ReLU)
    x = np.eye(states)
    index = 0
    while f"torso.{index}.weight" in tensors:
        x = np.maximum(x @ tensors[f"torso.{index}.weight"].T + tensors[f"torso.{index}.bias"], 0)
        index += 2
    logits = x @ tensors["logits.weight"].T + tensors["logits.bias"]
top2 = np.sort(policy, axis=1)[:, -2:]
clear = top2[:, 1] - top2[:, 0] > 1e-6  # states without a tie for the best action
agree = np.argmax(logits, axis=1)[clear] == np.argmax(policy, axis=1)[clear]
assert agree.all(), f"numpy's greedy action differs at {np.flatnonzero(~agree)}"
line = (f"exact {exact:.6f} (run: {expected:.6f}), sampled {mean:.4f} ± {half:.4f}; numpy's greedy actions "
        f"agree at {clear.sum()} of {states} states ({metadata['distill.architecture']})")

if len(sys.argv) > 5:
    import matplotlib.image
    image = matplotlib.image.imread(sys.argv[5])
    size = int(round(states ** 0.5))
    assert image.shape[:2] == (size * 12, size * 12), image.shape
    path = report["greedy_path"]
    middle = lambda s: (image[(s // size) * 12 + 6, (s % size) * 12 + 6, :3] * 255).round().astype(int).tolist()
    assert middle(path[0]) == [255, 127, 14], f"start cell {path[0]}: {middle(path[0])}"
    blue = {s for s in range(size * size) if middle(s) == [31, 119, 180]}
    assert blue == set(path[1:]) - {path[0]}, f"marked {sorted(blue)}, path {path}"
    line += f"; image {image.shape[1]}x{image.shape[0]} with a path of {len(path) - 1} steps"
print(line)
PY

# round_trip NAME EXPECTED_EXACT [eval flags...]: export, eval, export-table, check.py
round_trip() {
    local name=$1 expected=$2
    shift 2
    "$DISTILL_BINARY" export "$name" --out "$name.safetensors" 2>"$name.export.log" \
        || lab_fail "$name: distill export failed: $(cat "$name.export.log")"
    "$DISTILL_BINARY" eval --student "$name.safetensors" "${grid[@]}" --episodes 4000 --json "$@" >"$name.eval.json" \
        || lab_fail "$name: distill eval failed"
    "$DISTILL_BINARY" teacher "${grid[@]}" --teacher-file "$name.safetensors" --export-table "$name.table.json" \
        >/dev/null || lab_fail "$name: distill teacher --export-table refused the exported file"
    local png=()
    if [ "${1:-}" = "--path-image" ]; then png=("$2"); fi
    "$venv/bin/python" check.py "$name.eval.json" "$expected" "$name.safetensors" "$name.table.json" "${png[@]}" \
        >"$name.log" 2>&1 || lab_fail "$name: $(tail -5 "$name.log")"
    lab_say "$name: $(cat "$name.log")"
}
last_exact() { python3 -c 'import csv,sys; print([r for r in csv.DictReader(open(sys.argv[1])) if r["exact_return"]][-1]["exact_return"])' "$1"; }

"$DISTILL_BINARY" train "${grid[@]}" --method n-distill+R --iterations 200 --evaluate-every 100 --quiet \
    --out train-tabular >/dev/null || lab_fail "distill train (tabular) failed"
round_trip train-tabular "$(last_exact train-tabular/metrics.csv)" --path-image tabular.png

"$DISTILL_BINARY" train "${grid[@]}" --method n-distill+R --student mlp:16 --observation one-hot --optimiser adam \
    --learning-rate 0.01 --iterations 200 --evaluate-every 100 --quiet --out train-network >/dev/null \
    || lab_fail "distill train (network) failed"
round_trip train-network "$(last_exact train-network/metrics.csv)"

timeout 120 "$DISTILL_BINARY" cluster "${grid[@]}" --actors 1 --steps 100000 --no-plot --out cluster >cluster.log 2>&1 \
    || { tail -20 cluster.log >&2; lab_fail "distill cluster failed"; }
read -r version student_return < <(python3 -c 'import json; s=json.load(open("cluster/summary.json")); print(s["version"], s["student_return"])')
round_trip cluster "$student_return"
grep -q "at version $version " cluster.export.log \
    || lab_fail "the export is not of the final version $version: $(cat cluster.export.log)"

# Refusals: another environment, a corrupt file, not a run directory.
refused() {
    local what=$1 pattern=$2
    shift 2
    local code=0
    "$@" >refused.out 2>refused.err || code=$?
    [ "$code" = 64 ] || [ "$code" = 1 ] || lab_fail "$what: exit $code (expected 64 or 1): $(cat refused.err)"
    grep -q -- "$pattern" refused.err || lab_fail "$what: the error does not name $pattern: $(cat refused.err)"
}
refused "another seed" "gridworld(seed=3)" \
    "$DISTILL_BINARY" eval --student train-tabular.safetensors --env gridworld --grid-size 5 --seed 4
refused "a gridworld student on cartpole" "was trained on gridworld(seed=3)" \
    "$DISTILL_BINARY" eval --student train-tabular.safetensors --env cartpole
head -c 200 train-tabular.safetensors >cut.safetensors
refused "a cut file" "cut.safetensors" "$DISTILL_BINARY" eval --student cut.safetensors "${grid[@]}"
mkdir -p not-a-run
refused "not a run" "not-a-run" "$DISTILL_BINARY" export not-a-run --out x.safetensors
refused "path image off a grid" "not a gridworld" \
    "$DISTILL_BINARY" eval --student train-tabular.safetensors --env chain --path-image x.png
lab_say "passed in $(($(date +%s) - start)) s"
