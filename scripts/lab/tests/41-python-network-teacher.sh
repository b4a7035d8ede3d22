#!/usr/bin/env bash
# The Python teacher server serves a network teacher file with numpy (examples/python-teacher,
# `run --network NET.safetensors`), answering observation queries as `distill teacher
# --teacher-file` does.
#
# A CartPole teacher is trained here (`distill train --env cartpole --student mlp:16 --method
# actor-critic --iterations 200`) and its student.safetensors served by both servers. Asserted
# (examples/python-teacher/check_network_server.py does the talking):
#   - the Python server's probabilities and values for 64 observations equal `distill nn forward
#     --teacher FILE --observations OBS.json` to 1e-5 (relative to max(1, |value|)); its replies state
#     the environment spec (CartPole-v1, [4], float32, 2 actions) and are not cacheable;
#   - the same rows sent at once by 4 clients are each answered with their own rows;
#   - 14 kinds of bad query (wrong shape, uint8 for float32, state ids and features to a network
#     teacher, bytes that do not fit the shape, NaN, unknown dtype, a bare vector, oversized, bits
#     beyond the last boolean, two kinds at once, garbage, a Heartbeat, protocol version 1) each get
#     an Error of the right code, 500 corrupted queries each get an answer, and valid queries are
#     still answered;
#   - `distill teacher --teacher-file` passes the same checks, and the two servers agree on the
#     numbers (1e-5), the spec and every error code;
#   - the same for a q-values teacher (the same tensors with teacher.kind q-values, τ 5, rewritten by
#     Python): Q on the wire, V = Σ π Q;
#   - a convolutional teacher on gridworld images (the [C,H,W] -> [H,W,C] transposition) equals
#     `distill nn forward --teacher` (distill itself serves that file as a table over state ids, so
#     there is no second server to compare with);
#   - the status line reports batching across clients (max_queue_depth >= 2, batch_fill, latency);
#     a JSON file, a truncated file, a network file without teacher.* keys and `--backend torch`
#     without PyTorch fail at start with a message naming the problem; SIGTERM stops it with exit 0;
#   - a query of more rows than --max-batch (python-small, --max-batch 16) is answered in full.
# Not here: a cluster of network actors querying the Python server (42-python-network-cluster.sh).
# Budget: ~20 s once the venv exists (pip adds numpy to it on the first run).
. "$(dirname "$0")/../lib.sh"

[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY (build it: swift build -c release)"
example="$LAB_ROOT/examples/python-teacher"
work=$(mktemp -d /tmp/lab-python-network-teacher.XXXXXX)
pids=()
trap lab_cleanup_work EXIT
trap 'exit 130' INT TERM

lab_say "setting up the Python teacher's venv"
timeout 600 "$example/run" --setup-only || lab_fail "examples/python-teacher/run --setup-only failed"
venv="${PYTHON_TEACHER_VENV:-$example/.venv}"
python="$venv/bin/python"
export PYTHONPATH="$venv/distill-proto:$example"
start=$(date +%s)

d() { "$DISTILL_BINARY" "$@"; }
endpoint() { awk -v name="$2" '$1 == "endpoint" && $2 == name { print $3 }' "$1" 2>/dev/null | tail -1; }
has_endpoint() { [ -n "$(endpoint "$1" "$2")" ]; }

# serve NAME ARGS...: starts the Python server (stdout NAME.out, log NAME.log); sets $served.
serve() {
    local name=$1
    shift
    "$python" -u "$example/teacher_server.py" --bind tcp://127.0.0.1:0 --status-interval 2 "$@" \
        >"$work/$name.out" 2>"$work/$name.log" &
    pids+=($!)
    served_pid=$!
    lab_wait_for 30 has_endpoint "$work/$name.out" teacher || lab_fail "the Python server ($name) did not start"
    served=$(endpoint "$work/$name.out" teacher)
}
# serve_distill NAME FILE: starts `distill teacher --teacher-file FILE`; sets $served.
serve_distill() {
    d teacher --teacher-file "$2" --bind 'tcp://127.0.0.1:*' >"$work/$1.out" 2>"$work/$1.log" &
    pids+=($!)
    lab_wait_for 30 has_endpoint "$work/$1.out" teacher || lab_fail "distill teacher ($1) did not start"
    served=$(endpoint "$work/$1.out" teacher)
}
# check NAME ARGS...: check_network_server.py ARGS, its lines shown indented; the JSON summary in NAME.json.
check() {
    local name=$1
    shift
    timeout 120 "$python" "$example/check_network_server.py" "$@" >"$work/$name.check" 2>&1 \
        || lab_fail "$name: $(cat "$work/$name.check")"
    grep -v '^{' "$work/$name.check" | sed 's/^/    /' >&2
    tail -1 "$work/$name.check" >"$work/$name.json"
}
field() {
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(f"{v:.1e}" if isinstance(v, float) else v)' "$@"
}

# The teacher: a small CartPole actor-critic (seconds).
d train --env cartpole --student mlp:16 --method actor-critic --iterations 200 --out "$work/cartpole" --quiet \
    >/dev/null || lab_fail "distill train --env cartpole failed"
net="$work/cartpole/student.safetensors"
python3 - "$work/obs.json" <<'EOF'
import json, random, sys
r = random.Random(7)  # CartPole-like rows: position, velocity, angle, angular velocity
rows = [[r.uniform(-2.4, 2.4), r.uniform(-3, 3), r.uniform(-0.21, 0.21), r.uniform(-3.5, 3.5)] for _ in range(64)]
json.dump(rows, open(sys.argv[1], "w"))
EOF
d nn forward --teacher "$net" --observations "$work/obs.json" >"$work/forward.json" || lab_fail "distill nn forward failed"

lab_say "CartPole policy teacher: distill teacher --teacher-file, then the Python server against it"
serve_distill swift "$net"
swift_teacher=$served
check swift --endpoint "$swift_teacher" --expected "$work/forward.json" --fuzz 200
serve python --network "$net" --id python-network
python_teacher=$served
python_pid=$served_pid
check python --endpoint "$python_teacher" --expected "$work/forward.json" --compare "$swift_teacher" --fuzz 500 \
    --clients 4 --bench-rounds 200 --bench-rows 256
check swift-bench --endpoint "$swift_teacher" --expected "$work/forward.json" --clients 4 --bench-rounds 200 --bench-rows 256

lab_say "a q-values teacher (the same tensors, teacher.kind q-values, τ 5, rewritten by Python)"
"$python" - "$net" "$work/q.safetensors" <<'EOF' || lab_fail "could not rewrite the teacher as q-values"
import json, struct, sys
source, destination = sys.argv[1:3]
raw = open(source, "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8 : 8 + n])
header["__metadata__"].update({"teacher.kind": "q-values", "teacher.temperature": "5"})
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(destination, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n :])
EOF
d nn forward --teacher "$work/q.safetensors" --observations "$work/obs.json" >"$work/q-forward.json" \
    || lab_fail "distill nn forward rejected the q-values teacher"
serve_distill swift-q "$work/q.safetensors"
swift_q=$served
serve python-q --network "$work/q.safetensors"
check python-q --endpoint "$served" --expected "$work/q-forward.json" --compare "$swift_q"

lab_say "--max-batch 16: a query of 64 rows is answered in full (cut into forward passes of 16 rows)"
serve python-small --network "$net" --max-batch 16
check python-small --endpoint "$served" --expected "$work/forward.json" --compare "$swift_teacher"

lab_say "a convolutional teacher on gridworld images ([C,H,W] observations, read as [H,W,C])"
d train --env gridworld --grid-size 5 --seed 3 --teacher uniform --method actor-critic --optimiser adam \
    --learning-rate 0.01 --student conv:4x3/mlp:8 --observation image --iterations 30 --out "$work/conv" --quiet \
    >/dev/null || lab_fail "distill train of the conv teacher failed"
d nn forward --teacher "$work/conv/student.safetensors" --batch 16 --seed 1 >"$work/conv-forward.json" \
    || lab_fail "distill nn forward on the conv teacher failed"
serve python-conv --network "$work/conv/student.safetensors"
check python-conv --endpoint "$served" --expected "$work/conv-forward.json"
grep -q "trained on a tabular environment" "$work/python-conv.log" \
    || lab_fail "the Python server did not warn that distill serves a tabular environment's network as a table"

lab_say "files it must refuse at start"
if "$python" "$example/teacher_server.py" --network "$work/cartpole/config.json" 2>"$work/refused.log"; then
    lab_fail "the Python server accepted a JSON file as a network"
fi
grep -q "is not a safetensors file" "$work/refused.log" || lab_fail "unclear refusal: $(cat "$work/refused.log")"
head -c 300 "$net" >"$work/cut.safetensors"
d nn export-sample --architecture mlp:8 --input-shape 4 --actions 2 --batch 1 --seed 1 --out "$work/plain" >/dev/null \
    || lab_fail "distill nn export-sample failed"
for bad in "cut.safetensors:is larger than the" "plain/network.safetensors:without teacher metadata"; do
    if "$python" "$example/teacher_server.py" --network "$work/${bad%%:*}" 2>"$work/refused.log"; then
        lab_fail "the Python server accepted $work/${bad%%:*}"
    fi
    grep -q "${bad#*:}" "$work/refused.log" || lab_fail "unclear refusal of ${bad%%:*}: $(cat "$work/refused.log")"
done
if ! "$python" -c "import torch" 2>/dev/null; then
    "$python" "$example/teacher_server.py" --network "$net" --backend torch 2>"$work/torch.log" \
        && lab_fail "--backend torch started without PyTorch"
    grep -q "needs PyTorch" "$work/torch.log" || lab_fail "unclear --backend torch error: $(cat "$work/torch.log")"
fi

# The status line: batches of several clients' queries, latency; then a clean stop.
sleep 2.5
status=$(grep "python teacher server status" "$work/python.log" | tail -1)
python3 - "$status" <<'EOF' || lab_fail "status line: $status"
import re, sys
line = sys.argv[1]
fields = dict(re.findall(r"(\w+)=([0-9.]+)", line))
assert int(fields["queries"]) > 0 and float(fields["batch_fill"]) > 0, fields
assert int(fields["max_queue_depth"]) >= 2, f"no batch held several queries: {fields}"
# The benchmark's 4 clients each wait for the answer to their 256-row query before the next: batches
# of more than 256 rows on average held queries of several clients.
assert float(fields["mean_batch_rows"]) > 256, f"queries of several clients were not batched together: {fields}"
assert "serves=CartPole-v1(obs=[4] float32, actions=2)" in line, line
print(f"lab[41-python-network-teacher]: status: queries={fields['queries']} rows={fields['rows']} "
      f"batches={fields['batches']} mean_batch_rows={fields['mean_batch_rows']} batch_fill={fields['batch_fill']} "
      f"max_queue_depth={fields['max_queue_depth']} mean_latency_ms={fields['mean_latency_ms']} "
      f"mean_forward_ms={fields['mean_forward_ms']}", file=sys.stderr)
EOF
kill -TERM "$python_pid"
python_exit=0
for _ in $(seq 50); do kill -0 "$python_pid" 2>/dev/null || break; sleep 0.1; done
wait "$python_pid" || python_exit=$?
[ "$python_exit" -eq 0 ] || lab_fail "the Python server exited with $python_exit on SIGTERM"

python_rate=$(field "$work/python.json" bench_observations_per_second)
swift_rate=$(field "$work/swift-bench.json" bench_observations_per_second)
lab_say "max |python - nn forward| $(field "$work/python.json" max_difference_to_forward)," \
    "|python - distill teacher| $(field "$work/python.json" max_difference_between_servers)," \
    "q-values $(field "$work/python-q.json" max_difference_between_servers), conv $(field "$work/python-conv.json" max_difference_to_forward);" \
    "4 clients x 256 rows: Python $python_rate obs/s, distill teacher $swift_rate obs/s" \
    "($(python3 -c "print(f'{$python_rate / $swift_rate:.0%}')"))"
lab_say "passed in $(($(date +%s) - start)) s after the venv setup"
