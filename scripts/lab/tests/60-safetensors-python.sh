#!/usr/bin/env bash
# Network files are plain safetensors: Python's `safetensors` (PyPI) loads what `distill nn
# export-sample` writes, and a numpy forward pass of the loaded weights, written here from the
# documented layouts (docs/networks.md: Linear [out, in]; Conv2d [out, k, k, in] over NHWC,
# valid padding), equals Swift's logits and values to 1e-5 on the observations Swift wrote
# alongside. Three networks: an MLP (ReLU), an MLP (tanh) and a strided convolutional network.
# In the other direction, a file re-written by Python's safetensors.numpy.save_file loads in
# `distill nn inspect` with the same architecture.
# Network teachers (docs/networks.md, "Network teachers"; keys in docs/file-formats.md): the
# student.safetensors of `distill train --student` (an MLP on one-hot states, a convolutional
# network on images) read with numpy from its teacher.* metadata — π = softmax(z/τ), log π floored
# at log 1e-8, V the value head; images transposed [C,H,W] -> [H,W,C] for convolutions — equals
# `distill nn forward --teacher` to 1e-5; a q-values teacher re-written by Python from the same
# tensors (π = softmax(Q/τ), V = Σ π Q) loads in Swift and agrees too; and the table `distill
# teacher --export-table` reads at every state of the gridworld is numpy's π at the one-hot rows.
# Budget: ~10 s once the venv exists; creating it (pip: numpy, safetensors) adds ~1 min.
. "$(dirname "$0")/../lib.sh"

[ -x "$DISTILL_BINARY" ] || lab_fail "no distill binary at $DISTILL_BINARY (build it: swift build -c release)"
work=$(mktemp -d /tmp/lab-safetensors.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

venv="$LAB_ROOT/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" 2>/dev/null || {
        lab_need_packages python3-venv
        rm -rf "$venv"
        /usr/bin/python3 -m venv "$venv"
    }
fi
if ! "$venv/bin/python" -c "import numpy, safetensors.numpy" 2>/dev/null; then
    lab_say "installing numpy and safetensors into $venv"
    timeout 600 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy safetensors \
        || lab_fail "pip could not install numpy and safetensors"
fi

cat >"$work/nnref.py" <<'PY'
"""A numpy forward pass of a distill network file, from docs/networks.md alone."""
import numpy as np


def parse(architecture):
    """The grammar of docs/networks.md, parsed independently of Swift: (convs, widths, activation)."""
    sections = architecture.split("/")
    activation = "relu"
    if sections[-1] in ("relu", "tanh"):
        activation = sections.pop()
    convs, widths = [], []
    for section in sections:
        if section == "linear":
            continue
        kind, body = section.split(":")
        if kind == "conv":
            for f in body.split(","):
                channels, rest = f.split("x")
                kernel, _, stride = rest.partition("s")
                convs.append((int(channels), int(kernel), int(stride or 1)))
        elif kind == "mlp":
            widths = [int(w) for w in body.split(",")]
    return convs, widths, activation


def forward(tensors, architecture, x):
    """Logits [B, A] and values [B] of observations x of shape [B] + input_shape; and the tensor names used."""
    convs, widths, activation = parse(architecture)
    act = (lambda v: np.maximum(v, 0)) if activation == "relu" else np.tanh
    x = np.asarray(x, dtype=np.float64)
    index = 0

    def weights(name):
        return tensors[f"{name}.weight"].astype(np.float64), tensors[f"{name}.bias"].astype(np.float64)

    for _, kernel, stride in convs:  # NHWC, valid padding: y[b,i,j,o] = b[o] + sum W[o,p,q,c] x[b,i*s+p,j*s+q,c]
        w, b = weights(f"torso.{index}")
        oh = (x.shape[1] - kernel) // stride + 1
        ow = (x.shape[2] - kernel) // stride + 1
        y = np.zeros((x.shape[0], oh, ow, w.shape[0])) + b
        for p in range(kernel):
            for q in range(kernel):
                patch = x[:, p:p + stride * (oh - 1) + 1:stride, q:q + stride * (ow - 1) + 1:stride, :]
                y += np.einsum("bijc,oc->bijo", patch, w[:, p, q, :])
        x = act(y)
        index += 2
    if x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
        index += 1
    for _ in widths:
        w, b = weights(f"torso.{index}")
        x = act(x @ w.T + b)
        index += 2
    wl, bl = weights("logits")
    wv, bv = weights("value")
    used = {f"torso.{i}.{k}" for i in range(index) for k in ("weight", "bias")} | {
        "logits.weight", "logits.bias", "value.weight", "value.bias"}
    return x @ wl.T + bl, (x @ wv.T + bv)[:, 0], used
PY
cat >"$work/check.py" <<'PY'
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from nnref import forward

directory = sys.argv[1]
path = f"{directory}/network.safetensors"
sample = json.load(open(f"{directory}/sample.json"))
tensors = load_file(path)
with safe_open(path, framework="np") as f:
    metadata = f.metadata()
assert metadata["distill.architecture"] == sample["architecture"], metadata
assert metadata["distill.input_shape"] == ",".join(map(str, sample["input_shape"])), metadata
assert all(t.dtype == np.float32 for t in tensors.values())

x = np.array(sample["observations"], dtype=np.float64).reshape([-1] + sample["input_shape"])
logits, values, used = forward(tensors, sample["architecture"], x)
expected_logits = np.array(sample["logits"])
expected_values = np.array(sample["values"])
scale = max(1.0, np.abs(expected_logits).max(), np.abs(expected_values).max())
error = max(np.abs(logits - expected_logits).max(), np.abs(values - expected_values).max())
assert logits.shape == expected_logits.shape, (logits.shape, expected_logits.shape)
assert error <= 1e-5 * scale, f"numpy differs from Swift by {error} (scale {scale})"
expected_names = {n for n in tensors if not n.startswith("optimizer.")}
assert expected_names <= used, f"tensors the numpy pass did not use: {expected_names - used}"
save_file(tensors, f"{directory}/python.safetensors", metadata=metadata)
print(f"{sample['architecture']}: {len(tensors)} tensors, batch {x.shape[0]}, max |numpy - swift| = {error:.2e}")
PY

# teacher.py FILE FORWARD.json [TABLE.json]: the teacher's outputs from its teacher.* metadata with
# numpy, against `distill nn forward --teacher` (and the exported table at the one-hot rows).
cat >"$work/teacher.py" <<'PY'
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file
from nnref import forward, parse

path, swift_path = sys.argv[1], sys.argv[2]
tensors = load_file(path)
with safe_open(path, framework="np") as f:
    metadata = f.metadata()
assert metadata["teacher.format"] == "network-teacher/1", metadata
kind = metadata["teacher.kind"]
assert kind in ("policy", "q-values"), kind
tau = float(metadata["teacher.temperature"])
architecture = metadata["distill.architecture"]
env_shape = [int(n) for n in metadata["teacher.environment.observation_shape"].split(",")]
input_shape = [int(n) for n in metadata["distill.input_shape"].split(",")]
convs, _, _ = parse(architecture)


def teacher(observations):
    """pi, log pi (floored at log 1e-8), V and Q of rows in the environment's layout."""
    x = np.asarray(observations, dtype=np.float64).reshape([-1] + env_shape)
    if convs and len(env_shape) == 3:
        x = x.transpose(0, 2, 3, 1)  # [C, H, W] -> [H, W, C]
    x = x.reshape([-1] + input_shape)
    z, head, _ = forward(tensors, architecture, x)
    y = z / tau
    top = y.max(axis=1, keepdims=True)
    log_pi = y - top - np.log(np.exp(y - top).sum(axis=1, keepdims=True))
    pi = np.exp(log_pi)
    values = head if kind == "policy" else (pi * z).sum(axis=1)
    return pi, np.maximum(log_pi, np.log(1e-8)), values, (z if kind == "q-values" else None)


def close(name, ours, theirs):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, (name, ours.shape, theirs.shape)
    scale = max(1.0, np.abs(theirs).max())
    error = np.abs(ours - theirs).max()
    assert error <= 1e-5 * scale, f"{name}: numpy differs from Swift by {error} (scale {scale})"
    return error


swift = json.load(open(swift_path))
assert swift["kind"] == kind and swift["temperature"] == tau, (swift["kind"], swift["temperature"])
pi, log_pi, values, q = teacher(swift["observations"])
errors = [close("probabilities", pi, swift["probabilities"]),
          close("log_probabilities", log_pi, swift["log_probabilities"]),
          close("values", values, swift["values"])]
assert (q is None) == ("action_values" not in swift), "action_values only for q-values"
if q is not None:
    errors.append(close("action_values", q, swift["action_values"]))
report = f"{kind} teacher {architecture} (tau {tau}): batch {len(pi)}, max |numpy - swift| = {max(errors):.2e}"
if len(sys.argv) > 3:  # the table read at every state's one-hot observation
    table = json.load(open(sys.argv[3]))
    states = table["stateCount"]
    assert env_shape == [states], env_shape
    pi, _, _, q = teacher(np.eye(states))
    errors = [close("table policy", pi, table["policy"])]
    if q is not None:
        errors.append(close("table q", q, table["q"]))
    report += f"; table of {states} states, max |numpy - swift| = {max(errors):.2e}"
print(report)
PY

# requeue.py SOURCE DEST TAU: the same tensors as a q-values teacher with tau, written by Python.
cat >"$work/requeue.py" <<'PY'
import sys
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

source, destination, tau = sys.argv[1], sys.argv[2], sys.argv[3]
with safe_open(source, framework="np") as f:
    metadata = f.metadata()
metadata["teacher.kind"] = "q-values"
metadata["teacher.temperature"] = tau
save_file(load_file(source), destination, metadata=metadata)
PY

check() {
    local name=$1
    shift
    "$DISTILL_BINARY" nn export-sample "$@" --out "$work/$name" >/dev/null || lab_fail "export-sample $* failed"
    "$venv/bin/python" "$work/check.py" "$work/$name" >"$work/$name.log" 2>&1 \
        || lab_fail "$name: $(cat "$work/$name.log")"
    lab_say "$(cat "$work/$name.log")"
    "$DISTILL_BINARY" nn inspect "$work/$name/python.safetensors" >"$work/$name.inspect.json" \
        || lab_fail "$name: distill nn inspect rejected the file Python re-wrote"
    python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["architecture"]; b=json.load(open(sys.argv[2]))["architecture"]; sys.exit(a != b)' \
        "$work/$name.inspect.json" "$work/$name/sample.json" || lab_fail "$name: the re-written file has another architecture"
}
check mlp --architecture mlp:32,32 --input-shape 10 --actions 4 --batch 7 --seed 1
check tanh --architecture mlp:16,8/tanh --input-shape 3,4 --actions 3 --batch 5 --seed 2
check conv --architecture conv:6x3,5x2s2/mlp:12 --input-shape 9,8,3 --actions 5 --batch 4 --seed 3

# A truncated file is an error naming the file, not a crash.
head -c 100 "$work/mlp/network.safetensors" >"$work/cut.safetensors"
if "$DISTILL_BINARY" nn inspect "$work/cut.safetensors" >/dev/null 2>"$work/cut.log"; then
    lab_fail "distill nn inspect accepted a truncated file"
fi
grep -q "cut.safetensors" "$work/cut.log" || lab_fail "the truncated-file error does not name the file: $(cat "$work/cut.log")"
# Network teachers: students trained here are teacher files; numpy reads them from their metadata.
grid=(--env gridworld --grid-size 5 --seed 3)
teacher_check() {
    local name=$1 file=$2
    shift 2
    "$DISTILL_BINARY" nn forward --teacher "$file" --batch 6 --seed 1 >"$work/$name.forward.json" \
        || lab_fail "$name: distill nn forward --teacher failed"
    (cd "$work" && "$venv/bin/python" teacher.py "$file" "$name.forward.json" "$@") >"$work/$name.log" 2>&1 \
        || lab_fail "$name: $(cat "$work/$name.log")"
    lab_say "$(cat "$work/$name.log")"
}
train_teacher() {
    local name=$1
    shift
    "$DISTILL_BINARY" train "${grid[@]}" --teacher uniform --method actor-critic --optimiser adam \
        --learning-rate 0.01 "$@" --out "$work/$name" --quiet >/dev/null || lab_fail "$name: distill train failed"
}
train_teacher mlp-teacher --student mlp:16 --observation one-hot --iterations 200
"$DISTILL_BINARY" teacher "${grid[@]}" --teacher-file "$work/mlp-teacher/student.safetensors" \
    --export-table "$work/mlp-teacher.table.json" >/dev/null || lab_fail "distill teacher --export-table failed"
teacher_check mlp-teacher "$work/mlp-teacher/student.safetensors" "mlp-teacher.table.json"
train_teacher conv-teacher --student conv:4x3/mlp:8 --observation image --iterations 30
teacher_check conv-teacher "$work/conv-teacher/student.safetensors"
(cd "$work" && "$venv/bin/python" requeue.py mlp-teacher/student.safetensors q-teacher.safetensors 0.1) \
    || lab_fail "Python could not re-write the teacher as q-values"
"$DISTILL_BINARY" teacher "${grid[@]}" --teacher-file "$work/q-teacher.safetensors" \
    --export-table "$work/q-teacher.table.json" >/dev/null || lab_fail "the Python-written q-values teacher was refused"
teacher_check q-teacher "$work/q-teacher.safetensors" "q-teacher.table.json"
lab_say "passed in $(($(date +%s) - start)) s"
