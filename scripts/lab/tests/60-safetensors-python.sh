#!/usr/bin/env bash
# Network files are plain safetensors: Python's `safetensors` (PyPI) loads what `distill nn
# export-sample` writes, and a numpy forward pass of the loaded weights, written here from the
# documented layouts (docs/networks.md: Linear [out, in]; Conv2d [out, k, k, in] over NHWC,
# valid padding), equals Swift's logits and values to 1e-5 on the observations Swift wrote
# alongside. Three networks: an MLP (ReLU), an MLP (tanh) and a strided convolutional network.
# In the other direction, a file re-written by Python's safetensors.numpy.save_file loads in
# `distill nn inspect` with the same architecture.
# Budget: a few seconds once the venv exists; creating it (pip: numpy, safetensors) adds ~1 min.
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

cat >"$work/check.py" <<'PY'
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

directory = sys.argv[1]
path = f"{directory}/network.safetensors"
sample = json.load(open(f"{directory}/sample.json"))
tensors = load_file(path)
with safe_open(path, framework="np") as f:
    metadata = f.metadata()
assert metadata["distill.architecture"] == sample["architecture"], metadata
assert metadata["distill.input_shape"] == ",".join(map(str, sample["input_shape"])), metadata
assert all(t.dtype == np.float32 for t in tensors.values())

# The grammar of docs/networks.md, parsed independently of Swift.
sections = sample["architecture"].split("/")
activation = "relu"
if sections[-1] in ("relu", "tanh"):
    activation = sections.pop()
convs, widths = [], []
for section in sections:
    kind, body = section.split(":")
    if kind == "conv":
        for f in body.split(","):
            channels, rest = f.split("x")
            kernel, _, stride = rest.partition("s")
            convs.append((int(channels), int(kernel), int(stride or 1)))
    elif kind == "mlp":
        widths = [int(w) for w in body.split(",")]
act = (lambda v: np.maximum(v, 0)) if activation == "relu" else np.tanh

x = np.array(sample["observations"], dtype=np.float64).reshape([-1] + sample["input_shape"])
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
logits = x @ wl.T + bl
values = (x @ wv.T + bv)[:, 0]
expected_logits = np.array(sample["logits"])
expected_values = np.array(sample["values"])
scale = max(1.0, np.abs(expected_logits).max(), np.abs(expected_values).max())
error = max(np.abs(logits - expected_logits).max(), np.abs(values - expected_values).max())
assert logits.shape == expected_logits.shape, (logits.shape, expected_logits.shape)
assert error <= 1e-5 * scale, f"numpy differs from Swift by {error} (scale {scale})"
expected_names = {n for n in tensors if not n.startswith("optimizer.")}
used = {f"torso.{i}.{k}" for i in range(index) for k in ("weight", "bias")} | {
    "logits.weight", "logits.bias", "value.weight", "value.bias"}
assert expected_names <= used, f"tensors the numpy pass did not use: {expected_names - used}"
save_file(tensors, f"{directory}/python.safetensors", metadata=metadata)
print(f"{sample['architecture']}: {len(tensors)} tensors, batch {x.shape[0]}, max |numpy - swift| = {error:.2e}")
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
lab_say "passed in $(($(date +%s) - start)) s"
