#!/usr/bin/env bash
# `distill plot DIR` works on every output directory distill writes, and its curves start at step 0.
# Made here, each in a scratch directory: `distill train --out` (sampled, and --exact, whose x axis
# is iterations), `distill cluster --out` (a short run with --no-plot) and `distill experiment
# fig6 --quick --out --no-plot`. Asserted for each: `distill plot DIR` exits 0 and writes a
# non-empty PNG (learning_curves.png; figure.png for the experiment) newer than the command's
# start; the cluster's metrics.csv starts with a row at env step 0 (the point the linear axis
# shows); a directory with neither metrics.csv nor aggregate.csv is refused with a message that
# names them (exit 64). Needs matplotlib (scripts/setup --plots makes .venv; PyPI).
# Budget: about 10-20 s once .venv exists.
. "$(dirname "$0")/../lib.sh"

[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY (build it: swift build -c release)"
"$LAB_ROOT/scripts/setup" --plots >/dev/null || lab_fail "scripts/setup --plots could not make .venv with matplotlib"
export DISTILL_PYTHON="${DISTILL_PYTHON:-$LAB_ROOT/.venv/bin/python3}"
work=$(mktemp -d /tmp/lab-plot.XXXXXX)
trap 'code=$?; rm -rf "$work"; exit $code' EXIT
trap 'exit 130' INT TERM
cd "$work"
d() { "$DISTILL_BINARY" "$@"; }

d train --env gridworld --seed 3 --teacher q-learning --method n-distill+R --iterations 300 --out train >/dev/null 2>&1
d train --env fig2 --teacher fig2 --method n-distill+R --exact --learning-rate 0.5 --iterations 500 \
    --evaluate-every 100 --out train-exact >/dev/null 2>&1
timeout 120 "$DISTILL_BINARY" cluster --seed 1 --actors 1 --steps 300000 --no-plot --out cluster >cluster.log 2>&1 \
    || { tail -20 cluster.log >&2; lab_fail "distill cluster failed"; }
d experiment fig6 --quick --no-plot --out experiment >/dev/null 2>&1 || lab_fail "distill experiment fig6 --quick failed"

first=$(sed -n 2p cluster/metrics.csv | cut -d, -f2)
[ "$first" = "0" ] || lab_fail "the cluster's metrics.csv starts at env step $first, not 0"

for dir in train train-exact cluster experiment; do
    png=learning_curves.png
    [ "$dir" = experiment ] && png=figure.png
    rm -f "$dir/$png"
    d plot "$dir" >"plot-$dir.log" 2>&1 || { cat "plot-$dir.log" >&2; lab_fail "distill plot $dir failed"; }
    [ -s "$dir/$png" ] || lab_fail "distill plot $dir wrote no $png"
    lab_say "distill plot $dir: $(tail -1 "plot-$dir.log")"
done

mkdir empty
if d plot empty >empty.log 2>&1; then lab_fail "distill plot on an empty directory succeeded"; else code=$?; fi
[ "$code" -eq 64 ] || lab_fail "distill plot on an empty directory exited $code, not 64"
grep -q 'metrics.csv' empty.log || lab_fail "the refusal does not name metrics.csv: $(cat empty.log)"
lab_say "PASS: plot works on train, train --exact, cluster and experiment directories; an empty one is refused"
