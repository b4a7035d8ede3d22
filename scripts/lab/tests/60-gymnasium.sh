#!/usr/bin/env bash
# Classic control against the reference: `distill env step` (CartPole-v1, Acrobot-v1,
# MountainCar-v0, written from their equations) against gymnasium from PyPI. From >= 1,000 random
# start states per environment (set with env.unwrapped.state in Python and "state" in distill's
# --cases input) plus edge states (just inside and outside the x/θ thresholds, velocity clips,
# MountainCar's left wall and goal, Acrobot's goal line and angle wrap), starts a few steps before
# the time limit and whole episodes run to it, every observation must agree to 1e-6 and every
# reward, terminated and truncated flag exactly (scripts/lab/gymnasium/compare.py). The spec's
# time limits, action counts and observation bounds must equal gymnasium's too.
# Budget: ~20 s once the venv exists; creating it (pip: gymnasium, numpy) adds ~1 min.
. "$(dirname "$0")/../lib.sh"

[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY (build it: swift build -c release)"

venv="${GYMNASIUM_VENV:-$LAB_ROOT/scripts/lab/gymnasium/.venv}"
requirements=("gymnasium>=1.0,<2" "numpy>=1.26,<3")
lab_venv "$venv" "${requirements[@]}"
start=$(date +%s)
lab_say "gymnasium $("$venv/bin/python" -c 'import gymnasium, numpy; print(gymnasium.__version__, "numpy", numpy.__version__)')"
timeout 300 "$venv/bin/python" "$LAB_ROOT/scripts/lab/gymnasium/compare.py" --distill "$DISTILL_BINARY" \
    --random 1000 --tolerance 1e-6 >&2 || lab_fail "distill env step differs from gymnasium (above)"
lab_say "passed in $(($(date +%s) - start)) s after the venv setup"
