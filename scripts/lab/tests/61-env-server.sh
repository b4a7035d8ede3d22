#!/usr/bin/env bash
# Remote environments: gymnasium environments hosted by the Python environment server
# (examples/env-server, pyzmq + protobuf code generated from proto/distill.proto) and used by
# distill with --env remote:tcp://HOST:PORT. Asserted:
#   - CartPole-v1 from the server equals the native CartPole: from 300 seeded resets with random
#     actions and 5 controller-balanced episodes that run into the 500-step time limit, every
#     observation agrees to 1e-6 and every reward, terminated and truncated flag exactly, both
#     sides stopping at the same step (scripts/lab/gymnasium/remote_trajectories.py, which must
#     also FAIL when the native start angles are moved by 1e-4);
#   - a native actor-critic teacher (500 on the native CartPole) scores >= 400 on the remote one
#     (distill eval), and a student distilled on the remote CartPole from it (on-policy-distill)
#     learns: its evaluation return at least doubles and ends >= 60;
#   - a MultiBinary environment of one's own (example_envs.py, imported by the server) trains
#     with actor-critic from a sampled return below -2 to above 0.5, and the seeded run repeats
#     exactly; its uint8-image variant (--make-kwargs) is served as uint8 [1,1,6] reading 0/255;
#   - the server answers 22 kinds of bad request and 300 corrupted ones with an Error
#     (examples/env-server/check_server.py) and still works; refuses continuous actions and
#     unknown ids at start (exit 2, saying why); stops cleanly on SIGTERM (exit 0);
#   - distill fails with a clear message, never hangs: no server at the endpoint, a malformed
#     endpoint, a server killed in the middle of training, a start state asked of a remote one.
# Budget: about 90 s on this 2-core machine once the venv exists; creating it (pip: gymnasium,
# pyzmq, protobuf, numpy; apt-get for protoc and python3-venv when missing) adds ~1 min.
. "$(dirname "$0")/../lib.sh"

[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY (build it: swift build -c release)"
example="$LAB_ROOT/examples/env-server"
work=$(mktemp -d /tmp/lab-env-server.XXXXXX)
pids=()
trap lab_cleanup_work EXIT
trap 'exit 130' INT TERM

lab_say "setting up the environment server's venv"
timeout 600 "$example/run" --setup-only || lab_fail "examples/env-server/run --setup-only failed"
venv="${ENV_SERVER_VENV:-$example/.venv}"
python="$venv/bin/python"
start=$(date +%s)

d() { "$DISTILL_BINARY" "$@"; }
endpoint() { awk '$1 == "endpoint" && $2 == "environments" { print $3 }' "$1" 2>/dev/null | tail -1; }
has_endpoint() { [ -n "$(endpoint "$1")" ]; }
# serve NAME ARGS...: starts a server (logs in $work/NAME.*), waits for its endpoint, sets $server_pid.
serve() {
    local name=$1
    shift
    "$example/run" "$@" --bind 'tcp://127.0.0.1:0' >"$work/$name.out" 2>"$work/$name.log" &
    server_pid=$!
    pids+=($server_pid)
    lab_wait_for 60 has_endpoint "$work/$name.out" || lab_fail "the $name server did not start"
}
# column CSV NAME: the values of one column of a metrics.csv, one a line, empty cells left out.
column() { python3 -c 'import csv,sys; [print(r[sys.argv[2]]) for r in csv.DictReader(open(sys.argv[1])) if r[sys.argv[2]]]' "$1" "$2"; }
ge() { python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$1" "$2"; }

lab_say "the server refuses what it cannot host"
set +e
timeout 60 "$example/run" --env Pendulum-v1 --bind 'tcp://127.0.0.1:0' >/dev/null 2>"$work/pendulum.log"
code=$?
set -e
[ $code -eq 2 ] && grep -q "action space .* is not served" "$work/pendulum.log" ||
    lab_fail "Pendulum-v1 (continuous actions): exit $code, $(cat "$work/pendulum.log")"
set +e
timeout 60 "$example/run" --env NoSuchEnv-v0 --bind 'tcp://127.0.0.1:0' >/dev/null 2>"$work/unknown.log"
code=$?
set -e
[ $code -eq 2 ] && grep -q "cannot make 'NoSuchEnv-v0'" "$work/unknown.log" ||
    lab_fail "an unknown id: exit $code, $(cat "$work/unknown.log")"

serve cartpole --env CartPole-v1 --envs 48
cartpole=$(endpoint "$work/cartpole.out")
cartpole_pid=$server_pid
lab_say "CartPole-v1 served at $cartpole"
d env spec --env "remote:$cartpole" >"$work/spec.json"
python3 - "$work/spec.json" <<'EOF' || lab_fail "the remote spec is not CartPole-v1's: $(cat "$work/spec.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["name"] == "CartPole-v1" and s["actionCount"] == 2 and s["maxEpisodeSteps"] == 500, s
assert s["observation"]["shape"] == [4] and s["observation"]["dtype"] == "float32" and s["stateSize"] == 4, s
EOF

lab_say "the server answers bad requests with errors and goes on"
PYTHONPATH="$venv/distill-proto" timeout 120 "$python" "$example/check_server.py" --endpoint "$cartpole" \
    2>"$work/check.log" || lab_fail "check_server.py: $(grep -v '^ok' "$work/check.log")"

lab_say "remote CartPole trajectories against the native CartPole"
timeout 300 "$python" "$LAB_ROOT/scripts/lab/gymnasium/remote_trajectories.py" --distill "$DISTILL_BINARY" \
    --endpoint "$cartpole" --random 300 --balanced 5 --tolerance 1e-6 2>"$work/trajectories.log" ||
    lab_fail "remote and native CartPole differ: $(tail -12 "$work/trajectories.log")"
lab_say "$(tail -1 "$work/trajectories.log")"
if timeout 300 "$python" "$LAB_ROOT/scripts/lab/gymnasium/remote_trajectories.py" --distill "$DISTILL_BINARY" \
    --endpoint "$cartpole" --random 20 --balanced 0 --perturb 1e-4 2>"$work/perturbed.log"; then
    lab_fail "the comparison did not notice native start angles moved by 1e-4"
fi

lab_say "distilling a student on the remote CartPole from a native teacher"
d train --env cartpole --student mlp:64,64 --method actor-critic --optimiser adam --learning-rate 0.001 \
    --critic-learning-rate 1 --episodes-per-iteration 8 --iterations 2000 --evaluate-every 1000 \
    --evaluation-episodes 20 --seed 2 --out "$work/teacher" --quiet 2>"$work/teacher.log"
d train --env "remote:$cartpole" --teacher-file "$work/teacher/student.safetensors" --method on-policy-distill \
    --student mlp:64,64 --optimiser adam --learning-rate 0.001 --episodes-per-iteration 8 --iterations 60 \
    --evaluate-every 20 --evaluation-episodes 8 --environments 8 --seed 7 --out "$work/student" \
    2>"$work/student.log" || lab_fail "distill train --env remote:$cartpole failed"
# The native teacher plays the remote CartPole as well as the native one (it reached 500 there).
d eval --env "remote:$cartpole" --student "$work/teacher/student.safetensors" --episodes 10 --json \
    >"$work/teacher-remote.json" 2>"$work/teacher-remote.log" || lab_fail "distill eval --env remote:$cartpole failed"
teacher_remote=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sampled_return"])' "$work/teacher-remote.json")
lab_say "the native teacher on the remote CartPole: mean return $teacher_remote over 10 episodes"
ge "$teacher_remote" 400 || lab_fail "the native teacher scores $teacher_remote on the remote CartPole"
mapfile -t evaluations < <(column "$work/student/metrics.csv" evaluation_return)
lab_say "evaluation returns of the remote student: ${evaluations[*]}"
[ ${#evaluations[@]} -eq 3 ] || lab_fail "expected 3 evaluations, got ${#evaluations[@]}"
ge "${evaluations[2]}" 60 && ge "${evaluations[2]}" "$(python3 -c "print(2 * ${evaluations[0]})")" ||
    lab_fail "the remote student did not learn: evaluation returns ${evaluations[*]}"

lab_say "the cluster on the remote CartPole: distill teacher, 2 actors and a learner (distill cluster)"
# 2 actors x 16 environments, then 100 evaluation episodes each for the student and the teacher.
serve cluster-cartpole --env CartPole-v1 --envs 160
cluster_server=$(endpoint "$work/cluster-cartpole.out")
cluster_started=$(date +%s)
d cluster --env "remote:$cluster_server" --teacher-file "$work/teacher/student.safetensors" --student mlp:64,64 \
    --method on-policy-distill --optimiser adam --learning-rate 0.001 --episodes-per-iteration 8 --actors 2 \
    --steps 4000000 --out "$work/cluster" --no-plot >"$work/cluster.log" 2>&1 ||
    lab_fail "distill cluster --env remote:$cluster_server failed: $(tail -5 "$work/cluster.log")"
d export "$work/cluster" --out "$work/cluster-student.safetensors" 2>"$work/export.log" ||
    lab_fail "distill export of the cluster run failed: $(cat "$work/export.log")"
remote_return() {
    d eval --env "remote:$cluster_server" --student "$1" --episodes 100 --json 2>>"$work/cluster-eval.log" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["sampled_return"])'
}
cluster_student=$(remote_return "$work/cluster-student.safetensors") || lab_fail "eval of the cluster's student failed"
cluster_teacher=$(remote_return "$work/teacher/student.safetensors") || lab_fail "eval of the teacher failed"
rate=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["env_steps_per_second_learning"]))' \
    "$work/cluster/summary.json")
lab_say "cluster on the remote CartPole: student $cluster_student, teacher $cluster_teacher (100 episodes each, \
$rate env steps/s, $(($(date +%s) - cluster_started)) s)"
ge "$cluster_student" "$(python3 -c "print(0.95 * $cluster_teacher)")" ||
    lab_fail "the cluster's student reached $cluster_student of the teacher's $cluster_teacher on the remote CartPole"
lab_kill_tree "$server_pid"

lab_say "a MultiBinary environment of one's own (and its uint8 image variant)"
serve lights --import example_envs --env distill-examples/Lights-v0 --envs 40
lights=$(endpoint "$work/lights.out")
lights_args=(--student mlp:32 --method actor-critic --optimiser adam --learning-rate 0.01 --critic-learning-rate 1
    --episodes-per-iteration 8 --iterations 150 --evaluate-every 50 --evaluation-episodes 16 --environments 8 --seed 3)
d train --env "remote:$lights" "${lights_args[@]}" --out "$work/lights1" --quiet 2>"$work/lights1.log" ||
    lab_fail "distill train on Lights failed"
d train --env "remote:$lights" "${lights_args[@]}" --out "$work/lights2" --quiet 2>"$work/lights2.log" ||
    lab_fail "distill train on Lights failed the second time"
mapfile -t sampled < <(column "$work/lights1/metrics.csv" sampled_return)
lab_say "Lights sampled return: first ${sampled[0]}, last ${sampled[-1]}"
ge -2 "${sampled[0]}" && ge "${sampled[-1]}" 0.5 || lab_fail "Lights did not learn: ${sampled[0]} -> ${sampled[-1]}"
cmp -s <(cut -d, -f1-13,15- "$work/lights1/metrics.csv") <(cut -d, -f1-13,15- "$work/lights2/metrics.csv") ||
    lab_fail "two seeded runs on the remote Lights differ"
serve pixels --import example_envs --env distill-examples/Lights-v0 --make-kwargs '{"pixels": true}' --envs 4
pixels=$(endpoint "$work/pixels.out")
d env step --env "remote:$pixels" --seed 1 --actions 0,1,2 >"$work/pixels.jsonl"
d env spec --env "remote:$pixels" >"$work/pixels.json"
python3 - "$work/pixels.json" "$work/pixels.jsonl" <<'EOF' || lab_fail "the uint8 variant is not served as uint8 0/255"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["observation"] == {"shape": [1, 1, 6], "dtype": "uint8"}, s
steps = [json.loads(line) for line in open(sys.argv[2])]
assert len(steps) == 4 and all(v in (0.0, 255.0) for t in steps for v in t["observation"]), steps
assert any(v == 255.0 for t in steps for v in t["observation"]), steps
EOF

lab_say "distill's errors: no server, a bad endpoint, a server that dies, a start state"
free=$(lab_free_port)
set +e
timeout 60 "$DISTILL_BINARY" train --env "remote:tcp://127.0.0.1:$free" --student mlp:16 --iterations 1 \
    2>"$work/noserver.log"
code=$?
set -e
[ $code -ne 0 ] && [ $code -ne 124 ] && grep -q "did not answer DESCRIBE" "$work/noserver.log" ||
    lab_fail "no server: exit $code, $(cat "$work/noserver.log")"
set +e
timeout 60 "$DISTILL_BINARY" train --env remote:localhost:5560 --student mlp:16 --iterations 1 2>"$work/badendpoint.log"
code=$?
set -e
[ $code -ne 0 ] && grep -q "remote:tcp://HOST:PORT" "$work/badendpoint.log" ||
    lab_fail "a malformed endpoint: exit $code, $(cat "$work/badendpoint.log")"
set +e
timeout 60 "$DISTILL_BINARY" env step --env "remote:$cartpole" --state 0,0,0,0 --actions 1 2>"$work/state.log"
code=$?
set -e
[ $code -ne 0 ] && grep -q "cannot be put in a given state" "$work/state.log" ||
    lab_fail "--state on a remote environment: exit $code, $(cat "$work/state.log")"
serve doomed --env CartPole-v1 --envs 40
doomed=$(endpoint "$work/doomed.out")
doomed_pid=$server_pid
"$DISTILL_BINARY" train --env "remote:$doomed" --student mlp:16 --method actor-critic --iterations 1000000 --evaluate-every 0 \
    >/dev/null 2>"$work/orphan.log" &
orphan=$!
pids+=($orphan)
sleep 3
kill -0 $orphan 2>/dev/null || lab_fail "the training on the doomed server ended early: $(tail -3 "$work/orphan.log")"
lab_kill_tree "$doomed_pid"
waited=0
while kill -0 $orphan 2>/dev/null && [ $waited -lt 40 ]; do sleep 0.5; waited=$((waited + 1)); done
kill -0 $orphan 2>/dev/null && lab_fail "distill train still runs 20 s after its environment server died"
set +e
wait $orphan
code=$?
set -e
[ $code -ne 0 ] && grep -q "did not answer STEP\|did not answer RESET\|did not answer OPEN" "$work/orphan.log" ||
    lab_fail "a server that died: exit $code, $(tail -3 "$work/orphan.log")"
lab_say "$(grep -m1 'did not answer' "$work/orphan.log")"

lab_say "the server stops cleanly on SIGTERM"
kill -TERM "$cartpole_pid"
set +e
wait "$cartpole_pid"
code=$?
set -e
[ $code -eq 0 ] && grep -q "stopping (SIGTERM)" "$work/cartpole.log" ||
    lab_fail "the CartPole server: exit $code on SIGTERM, $(tail -2 "$work/cartpole.log")"
lab_say "$(grep 'stopping (SIGTERM)' "$work/cartpole.log" | sed 's/.*env-server: //')"
lab_say "passed in $(($(date +%s) - start)) s after the venv setup"
