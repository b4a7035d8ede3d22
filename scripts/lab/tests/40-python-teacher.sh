#!/usr/bin/env bash
# The wire protocol is language-neutral: a teacher server written in Python (pyzmq + protobuf
# code generated from proto/distill.proto, examples/python-teacher) replaces the Swift teacher
# server in the middle of a run, and the Swift actors and learner carry on with its targets.
#
# The run: gridworld seed 1, n-distill+R, a learner and 2 actors on 127.0.0.1. The Swift teacher
# server serves the ADVERSARIAL teacher (the worst action everywhere), so the student learns a
# poor policy; the Python server serves the OPTIMAL teacher's table (exported by
# `distill teacher --export-table`). The learner's reference teacher (its teacher_return) is the
# optimal one. Asserted:
#   - before the swap the student's exact return stays below 80 % of the optimal return;
#   - after `distill control swap-teacher` the learner's status names the Python teacher's id,
#     env steps keep flowing, and the student's return reaches >= 95 % of the optimal return;
#   - summary.json lists both teachers with the env step of the switch;
#   - the Python server answers 14 kinds of bad message and 500 corrupted queries with an
#     Error of the right code while it serves the actors, and still answers valid queries;
#   - it stops cleanly on SIGTERM (exit 0).
# Budget: about 40 s of run on this 2-core machine once the venv exists; creating it (pip, and
# apt-get for protoc and python3-venv when missing) adds up to ~1-2 min on a fresh machine.
. "$(dirname "$0")/../lib.sh"

[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY (build it: swift build -c release)"
example="$LAB_ROOT/examples/python-teacher"
work=$(mktemp -d /tmp/lab-python-teacher.XXXXXX)
pids=()
trap lab_cleanup_work EXIT
trap 'exit 130' INT TERM

lab_say "setting up the Python teacher's venv"
timeout 600 "$example/run" --setup-only || lab_fail "examples/python-teacher/run --setup-only failed"
python="${PYTHON_TEACHER_VENV:-$example/.venv}/bin/python"
pythonpath="${PYTHON_TEACHER_VENV:-$example/.venv}/distill-proto"
start=$(date +%s)

d() { "$DISTILL_BINARY" "$@"; }
# endpoint FILE NAME: the endpoint a role announced ("endpoint NAME ENDPOINT") on stdout.
endpoint() { awk -v name="$2" '$1 == "endpoint" && $2 == name { print $3 }' "$1" 2>/dev/null | tail -1; }
has_endpoint() { [ -n "$(endpoint "$1" "$2")" ]; }
status() { timeout 10 "$DISTILL_BINARY" control status --learner "$control" --timeout-ms 3000; }
# field JSON KEY: one key of a JSON object on stdin ("" when missing or null).
field() { python3 -c 'import json,sys; v=json.load(sys.stdin).get(sys.argv[1]); print("" if v is None else v)' "$1"; }
ge() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2"; }

problem=(--env gridworld --seed 1)
d teacher "${problem[@]}" --teacher optimal --export-table "$work/optimal.json" >/dev/null
d cluster --write-config "$work/run.json" "${problem[@]}" --teacher optimal --method n-distill+R >/dev/null

d teacher "${problem[@]}" --teacher adversarial --bind 'tcp://127.0.0.1:*' >"$work/swift-teacher.out" 2>"$work/swift-teacher.log" &
pids+=($!)
d learner --config "$work/run.json" --bind-control 'tcp://127.0.0.1:*' --bind-unrolls 'tcp://127.0.0.1:*' \
    --bind-params 'tcp://127.0.0.1:*' --out "$work/out" >"$work/learner.out" 2>"$work/learner.log" &
learner=$!
pids+=($learner)
lab_wait_for 30 has_endpoint "$work/swift-teacher.out" teacher || lab_fail "the Swift teacher server did not start"
lab_wait_for 30 has_endpoint "$work/learner.out" control || lab_fail "the learner did not start"
swift_teacher=$(endpoint "$work/swift-teacher.out" teacher)
control=$(endpoint "$work/learner.out" control)
for k in 1 2; do
    d actor --config "$work/run.json" --learner "$control" --teacher-server "$swift_teacher" --id "actor-$k" \
        >/dev/null 2>"$work/actor-$k.log" &
    pids+=($!)
done

# Phase 1: the adversarial Swift teacher, ~8 s of learning.
learning() { [ "$(status | field env_steps)" -gt 100000 ] 2>/dev/null; }
lab_wait_for 30 learning || lab_fail "no learning within 30 s of the actors' start"
sleep 8
before=$(status)
[ "$(echo "$before" | field teacher_id)" = adversarial ] || lab_fail "expected teacher adversarial before the swap: $before"
optimal_return=$(echo "$before" | field teacher_return)
lab_say "before the swap: $(echo "$before" | field env_steps) env steps, student return" \
    "$(echo "$before" | field student_return), optimal teacher's return $optimal_return"

# Phase 2: the Python server with the optimal table; swap every actor to it.
PYTHONPATH="$pythonpath" "$python" -u "$example/teacher_server.py" --table "$work/optimal.json" \
    --bind tcp://127.0.0.1:0 --teacher-id python-optimal --status-interval 5 \
    --environment "$(echo "$before" | field environment)" \
    >"$work/python-teacher.out" 2>"$work/python-teacher.log" &
python_teacher_pid=$!
pids+=($python_teacher_pid)
lab_wait_for 30 has_endpoint "$work/python-teacher.out" teacher || lab_fail "the Python teacher server did not start"
python_teacher=$(endpoint "$work/python-teacher.out" teacher)
# Control commands other than status need the learner's run token (no CURVE here): --run-dir.
timeout 10 "$DISTILL_BINARY" control swap-teacher --learner "$control" --run-dir "$work/out" --to "$python_teacher" >&2 \
    || lab_fail "swap-teacher to $python_teacher was refused"
swapped() { [ "$(status | field teacher_id)" = python-optimal ]; }
lab_wait_for 20 swapped || lab_fail "the learner's status never named python-optimal: $(status)"
steps_at_swap=$(status | field env_steps)
lab_say "the learner now learns from python-optimal (at $steps_at_swap env steps)"

# While the actors use it, the Python server gets bad messages and corrupted queries.
PYTHONPATH="$pythonpath" timeout 60 "$python" "$example/check_server.py" --endpoint "$python_teacher" \
    --table "$work/optimal.json" --fuzz 500 >"$work/check-server.log" 2>&1 \
    || lab_fail "the Python teacher server failed its checks: $(cat "$work/check-server.log")"
sed 's/^/    /' "$work/check-server.log" >&2

matches() {
    local s
    s=$(status)
    ge "$(echo "$s" | field student_return)" "$(python3 -c "print(0.95 * $optimal_return)")"
}
lab_wait_for 60 matches || lab_fail "the student's return did not reach 95 % of the optimal teacher's: $(status)"
after=$(status)
steps_now=$(echo "$after" | field env_steps)
[ "$steps_now" -gt "$steps_at_swap" ] || lab_fail "env steps stopped at $steps_at_swap after the swap"
sleep 2
steps_later=$(status | field env_steps)
[ "$steps_later" -gt "$steps_now" ] || lab_fail "env steps stopped flowing after the bad messages ($steps_now)"
[ "$(echo "$after" | field teacher_id)" = python-optimal ] || lab_fail "teacher changed unexpectedly: $after"
lab_say "after the swap: $steps_later env steps, student return $(echo "$after" | field student_return)"

timeout 10 "$DISTILL_BINARY" control stop --learner "$control" --run-dir "$work/out" >/dev/null || lab_fail "control stop failed"
for _ in $(seq 150); do kill -0 "$learner" 2>/dev/null || break; sleep 0.1; done
kill -0 "$learner" 2>/dev/null && lab_fail "the learner did not stop within 15 s"
kill -TERM "$python_teacher_pid"
python_exit=0
for _ in $(seq 50); do kill -0 "$python_teacher_pid" 2>/dev/null || break; sleep 0.1; done
wait "$python_teacher_pid" || python_exit=$?
[ "$python_exit" -eq 0 ] || lab_fail "the Python teacher server exited with $python_exit on SIGTERM"
grep -q "python teacher server status: queries=[1-9]" "$work/python-teacher.log" \
    || lab_fail "the Python teacher server answered no query"

python3 - "$work/out/summary.json" "$work/out/metrics.csv" <<'EOF' || lab_fail "summary/metrics check failed"
import csv, json, sys
summary = json.load(open(sys.argv[1]))
teachers = [t["teacher_id"] for t in summary["teachers"]]
assert teachers[:1] == ["adversarial"] and "python-optimal" in teachers, f"teachers: {summary['teachers']}"
switch = next(t["from_env_steps"] for t in summary["teachers"] if t["teacher_id"] == "python-optimal")
assert switch > 0, "the switch to python-optimal has no env step"
optimal = summary["teacher_return"]
rows = list(csv.DictReader(open(sys.argv[2])))
def ret(r): return float(r["student_return"]) if r["student_return"] else None
before = [ret(r) for r in rows if r["teacher_id"] == "adversarial" and ret(r) is not None]
after = [ret(r) for r in rows if r["teacher_id"] == "python-optimal" and ret(r) is not None]
assert before and after, "metrics.csv lacks rows of one of the teachers"
assert max(before) < 0.8 * optimal, f"the adversarial phase reached {max(before)} (optimal {optimal})"
assert summary["student_return"] >= 0.95 * optimal, f"final return {summary['student_return']} < 95 % of {optimal}"
assert summary["student_return"] > max(before), "learning did not go beyond the adversarial phase"
print(f"lab[40-python-teacher]: adversarial phase best return {max(before):.3f}, final {summary['student_return']:.3f} "
      f"of the optimal {optimal:.3f} ({summary['student_to_teacher_return']:.1%}); swap at {switch} env steps, "
      f"{summary['env_steps']} in all; learner rejected {summary['messages_rejected']} messages", file=sys.stderr)
EOF
lab_say "passed in $(($(date +%s) - start)) s after the venv setup"
