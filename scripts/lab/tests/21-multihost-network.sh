#!/usr/bin/env bash
# The multi-host lab with a network student: a CartPole teacher file distilled across four
# "hosts" (network namespaces on one bridge, scripts/lab/netlab, addresses 198.18.2.0/24 that
# exist only inside them): `distill teacher` on one, the learner on another, one actor on each of
# two more. Every role reads the problem from one file, written by `distill cluster --write-config
# RUN.json --env cartpole --teacher-file T --student mlp:64,64 --method on-policy-distill ...`; a
# role's command line adds only where it binds or connects (and the learner's --steps, the
# actors' --environments 16).
#
# The teacher file is the one of Tests/DistillClusterTests/NetworkClusterTests.swift (mean return
# 500). Asserted:
#   - while the run goes on, the learner's status lists actor1 and actor2 (each on its own host)
#     alive with env steps of their own;
#   - the learner stops by itself after --steps 5000000 (exit 0); summary.json has env_steps >=
#     5,000,000, actors_seen 2 and student_to_teacher_return >= 0.95 (the learner's own
#     evaluation, 100 episodes);
#   - the unrolls crossed the lab's wire: the learner host's eth0 received at least the bytes of
#     all the unrolls the summary counts, and the teacher host's eth0 sent at least 4 bytes (one
#     float32) per env step (every step's observation was answered from there);
#   - the actors and the teacher stop with exit 0 on SIGTERM.
# Measured (2 shared cores, 10 runs): 5M steps in 10-19 s of learning (275,000-485,000 env steps/s),
# ratio 0.979-1.0; ~187 MB of unrolls into the learner host, ~62 MB of teacher replies. 9 of the 10
# runs passed; the first failed after the learner had finished, on a check whose message was lost
# (its output was cut off): if it fails again, the message above the logs names the check.
# Budget: 15-35 s here; every wait is bounded (learner 600 s).
#   DLAB_PREFIX   prefix of the namespaces (default dlabnet: it may run beside 20-multihost.sh)
#   DLAB_KEEP=1   keep the work directory after the run
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

[ "$(id -u)" -eq 0 ] || lab_fail "needs root to create network namespaces (run it with sudo)"
lab_need_packages iproute2
command -v python3 >/dev/null || lab_need_packages python3
[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY: swift build -c release, or set DISTILL_BINARY"

NETLAB="$LAB_ROOT/scripts/lab/netlab"
export DLAB_PREFIX="${DLAB_PREFIX:-dlabnet}"
work=$(mktemp -d /tmp/dlab-multihost-network.XXXXXX)
pids=()
learner_pid=""
lab_up=0

cleanup() {
    local code=$?
    trap - EXIT INT TERM
    lab_kill_tree "$learner_pid" "${pids[@]}"
    [ "$lab_up" -eq 0 ] || "$NETLAB" down || true
    if [ $code -ne 0 ]; then lab_show_logs; fi
    if [ "${DLAB_KEEP:-0}" = 1 ]; then lab_say "kept $work"; else rm -rf "$work"; fi
    exit $code
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

d() { "$DISTILL_BINARY" "$@"; }
summary_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/run/summary.json" "$1"; }
# status KEY...: the learner's status, asked from inside the learner's host.
status() {
    local json
    json=$(timeout 10 "$NETLAB" exec learner "$DISTILL_BINARY" control status \
        --learner "$control" --timeout-ms 3000 2>/dev/null) || return 1
    lab_status_fields "$json" "$@"
}
both_actors_stepping() {
    local values
    values=$(status actor:actor1:alive actor:actor2:alive actor:actor1:env_steps actor:actor2:env_steps) || return 1
    { read -r alive1; read -r alive2; read -r steps1; read -r steps2; } <<<"$values"
    [ "$alive1" = true ] && [ "$alive2" = true ] && [ "$steps1" != null ] && [ "$steps1" -gt 0 ] &&
        [ "$steps2" != null ] && [ "$steps2" -gt 0 ]
}
# stop PID NAME: SIGTERM; it must stop with exit 0 within 15 s.
stop() {
    kill -TERM "$1" 2>/dev/null || true
    lab_wait_for 15 bash -c "! kill -0 $1" || lab_fail "$2 did not stop within 15 s of SIGTERM"
    local code=0
    wait "$1" || code=$?
    [ "$code" -eq 0 ] || lab_fail "$2 exited with $code after SIGTERM (expected 0)"
}

start=$(date +%s)
lab_say "training the CartPole teacher file (actor-critic, mlp:64,64)"
d train --env cartpole --student mlp:64,64 --method actor-critic --optimiser adam --learning-rate 0.001 \
    --critic-learning-rate 1 --episodes-per-iteration 8 --iterations 2000 --evaluate-every 500 --seed 2 \
    --out "$work/teacher" --quiet >/dev/null || lab_fail "distill train of the teacher failed"
d cluster --write-config "$work/run.json" --env cartpole --teacher-file "$work/teacher/student.safetensors" \
    --student mlp:64,64 --method on-policy-distill --optimiser adam --learning-rate 0.001 \
    --episodes-per-iteration 8 >/dev/null || lab_fail "distill cluster --write-config failed for a network run"

"$NETLAB" up learner teacher actor1 actor2 >"$work/hosts"
lab_up=1
learner_addr=$("$NETLAB" addr learner)
teacher_addr=$("$NETLAB" addr teacher)
control="tcp://$learner_addr:5559"
teacher="tcp://$teacher_addr:5556"
lab_say "hosts: $(tr '\n' ';' <"$work/hosts")"

"$NETLAB" exec teacher "$DISTILL_BINARY" teacher --config "$work/run.json" --bind "$teacher" \
    >"$work/teacher.log" 2>&1 &
teacher_pid=$!
pids+=($teacher_pid)
"$NETLAB" exec learner "$DISTILL_BINARY" learner --config "$work/run.json" --steps 5000000 \
    --evaluation-episodes 100 --out "$work/run" --checkpoint-dir "$work/run/checkpoints" \
    --bind-control "$control" --bind-unrolls "tcp://$learner_addr:5557" --bind-params "tcp://$learner_addr:5558" \
    >"$work/learner.log" 2>&1 &
learner_pid=$!
lab_wait_for 60 status env_steps || lab_fail "the learner did not answer on $control within 60 s"
rx0=$("$NETLAB" bytes learner | awk '{print $1}')
tx0=$("$NETLAB" bytes teacher | awk '{print $2}')
actor_pids=()
for actor in actor1 actor2; do
    "$NETLAB" exec "$actor" "$DISTILL_BINARY" actor --config "$work/run.json" --environments 16 --id "$actor" \
        --learner "$control" --teacher-server "$teacher" --give-up-after 60 >"$work/$actor.log" 2>&1 &
    actor_pids+=($!)
    pids+=($!)
done
learning=$(date +%s)
lab_wait_for 60 both_actors_stepping || lab_fail "actor1 and actor2 were not both alive with env steps within 60 s"
lab_say "both actors (on their own hosts) alive with env steps; learning 5,000,000 env steps"

lab_wait_for 600 bash -c "! kill -0 $learner_pid" || lab_fail "the learner did not finish 5,000,000 steps in 600 s"
learner_exit=0
wait "$learner_pid" || learner_exit=$?
learner_pid=""
[ "$learner_exit" -eq 0 ] || lab_fail "the learner exited with $learner_exit"
learn_seconds=$(($(date +%s) - learning))
rx=$(($("$NETLAB" bytes learner | awk '{print $1}') - rx0))
tx=$(($("$NETLAB" bytes teacher | awk '{print $2}') - tx0))
for i in 0 1; do stop "${actor_pids[$i]}" "actor$((i + 1))"; done
stop "$teacher_pid" "the teacher"
[ -f "$work/run/summary.json" ] || lab_fail "the learner wrote no summary.json"

ratio=$(summary_field student_to_teacher_return)
steps=$(summary_field env_steps)
seen=$(summary_field actors_seen)
unroll_bytes=$(python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print(int(s["unroll_bytes_mean"] * s["unroll_messages"]))' \
    "$work/run/summary.json")
[ "$steps" -ge 5000000 ] || lab_fail "only $steps env steps"
[ "$seen" -eq 2 ] || lab_fail "actors_seen $seen, expected 2"
python3 -c "import sys; sys.exit(float('$ratio') < 0.95)" ||
    lab_fail "student_to_teacher_return $ratio < 0.95 (student $(summary_field student_return), teacher $(summary_field teacher_return))"
[ "$rx" -ge "$unroll_bytes" ] || lab_fail "the learner host received $rx bytes, less than the $unroll_bytes bytes of the unrolls"
[ "$tx" -ge $((4 * steps)) ] || lab_fail "the teacher host sent $tx bytes for $steps env steps (< 4 bytes a step)"

lab_say "student_to_teacher_return $ratio (student $(summary_field student_return), teacher $(summary_field teacher_return));" \
    "$steps env steps in $learn_seconds s ($(summary_field env_steps_per_second_learning | cut -d. -f1) steps/s learning)," \
    "actors_seen $seen; learner host received $rx bytes (unrolls $unroll_bytes), teacher host sent $tx bytes"
lab_say "passed in $(($(date +%s) - start)) s"
