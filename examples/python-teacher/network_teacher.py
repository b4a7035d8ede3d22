"""A distill network teacher file (safetensors) read and run with numpy alone.

The file format is docs/file-formats.md ("A network teacher") and docs/networks.md ("Layouts",
"Files: safetensors"); this module follows them, independently of the Swift code:

- safetensors: an 8-byte little-endian header length, a JSON header (dtype, shape, data_offsets per
  tensor, a __metadata__ string map), raw little-endian data. Read here by a small reader of its
  own (F32 only, every offset checked), so no `safetensors` package is needed.
- the torso of `distill.architecture` (`linear`, `mlp:W,...[/act]`, `conv:CxK[sS],...[/mlp:...][/act]`):
  each convolution (W [out, k, k, in] over NHWC, valid padding) then the activation; a flatten when
  the features have more than one dimension; each hidden Linear (W [out, in]) then the activation.
  Tensors `torso.I.weight`/`.bias`, I counting activations and the flatten; heads `logits.*`, `value.*`.
- observations come in the environment's layout (`teacher.environment.observation_shape`); a
  convolutional network on [C, H, W] reads them transposed to [H, W, C].
- `teacher.kind` policy: pi = softmax(z / tau), V = the value head; q-values: pi = softmax(Q / tau),
  V = sum_a pi(a) Q(a), Q = the logits head. log pi is a log-softmax floored at log 1e-8.

The forward pass is float64 (the Swift one is float32; they agree to ~1e-6). `TorchForward` is the
same network in PyTorch for users who have torch: it is imported only when asked for.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass

import numpy as np

FORMAT = "network-teacher/1"
LOG_PROBABILITY_FLOOR = math.log(1e-8)
TEACHER_KEYS = {
    "teacher.format", "teacher.kind", "teacher.temperature", "teacher.observation", "teacher.environment.name",
    "teacher.environment.observation_shape", "teacher.environment.action_count", "teacher.environment.identity",
}
REQUIRED_TEACHER_KEYS = sorted(TEACHER_KEYS - {"teacher.environment.identity"})
MAX_HEADER_BYTES = 100 << 20


class NetworkFileError(Exception):
    """A network teacher file that cannot be served; the message names the file and the field."""


# -- safetensors ---------------------------------------------------------------------------------


def read_safetensors(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The F32 tensors and the __metadata__ of a safetensors file, every offset checked."""

    def bad(problem: str) -> NetworkFileError:
        return NetworkFileError(f"{path}: {problem}")

    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise NetworkFileError(f"cannot read the network file {path}: {error.strerror}") from None
    if len(raw) < 8:
        raise bad(f"{len(raw)} bytes: too short for a safetensors file (8-byte header length, JSON header, data)")
    (header_length,) = struct.unpack("<Q", raw[:8])
    if raw[:1] in (b"{", b"[") or (header_length > len(raw) - 8 and raw[8:9] != b"{"):
        raise bad("is not a safetensors file (8-byte header length, then a JSON header): a JSON teacher table? use --table")
    if header_length > len(raw) - 8 or header_length > MAX_HEADER_BYTES:
        raise bad(f"header length {header_length} is larger than the {len(raw) - 8} bytes after it (truncated file?)")
    try:
        header = json.loads(raw[8 : 8 + header_length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise bad(f"the header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("__metadata__ is not a map of strings")
    data = memoryview(raw)[8 + header_length :]
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise bad(f"tensor {name}: its header entry is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype != "F32":
            raise bad(f"tensor {name} has dtype {dtype!r}; distill network files hold F32 only")
        if (
            not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape)
            or not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(n, int) and n >= 0 for n in offsets)
        ):
            raise bad(f"tensor {name}: malformed shape {shape!r} or data_offsets {offsets!r}")
        begin, end = offsets
        if not begin <= end <= len(data):
            raise bad(f"tensor {name}: data_offsets {offsets} are out of range of {len(data)} data bytes (truncated?)")
        if end - begin != 4 * math.prod(shape):
            raise bad(f"tensor {name}: shape {shape} needs {4 * math.prod(shape)} bytes, data_offsets give {end - begin}")
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(shape).astype(np.float64)
    return tensors, metadata


# -- the architecture ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    convolutions: tuple[tuple[int, int, int], ...]  # (channels, kernel, stride)
    widths: tuple[int, ...]
    activation: str  # relu or tanh

    @staticmethod
    def parse(text: str) -> "Architecture":
        """The grammar of docs/networks.md; raises ValueError naming the bad part."""
        if text == "linear":
            return Architecture((), (), "relu")
        sections = text.split("/")
        activation = "relu"
        if len(sections) > 1 and ":" not in sections[-1]:
            if sections[-1] not in ("relu", "tanh"):
                raise ValueError(f"architecture {text!r}: unknown activation {sections[-1]!r} (relu or tanh)")
            activation = sections.pop()
        convolutions: list[tuple[int, int, int]] = []
        widths: list[int] = []

        def number(part: str, what: str) -> int:
            if not re.fullmatch(r"[0-9]+", part) or int(part) < 1:
                raise ValueError(f"architecture {text!r}: {what} {part!r} is not a positive integer")
            return int(part)

        for index, section in enumerate(sections):
            kind, colon, body = section.partition(":")
            if not colon or not body:
                raise ValueError(f"architecture {text!r}: {section!r} is not linear, mlp:... or conv:...")
            if kind == "conv" and index == 0:
                for spec in body.split(","):
                    match = re.fullmatch(r"([^x]*)x([^s]*)(?:s(.*))?", spec)
                    if not match:
                        raise ValueError(f"architecture {text!r}: filter {spec!r} is not channels x kernel [s stride]")
                    channels, kernel, stride = match.groups()
                    convolutions.append(
                        (number(channels, "channel count"), number(kernel, "kernel size"),
                         number(stride, "stride") if stride is not None else 1)
                    )
            elif kind == "mlp" and not widths:
                widths = [number(w, "width") for w in body.split(",")]
            else:
                raise ValueError(f"architecture {text!r}: {section!r} is unknown or out of place")
        return Architecture(tuple(convolutions), tuple(widths), activation)


@dataclass(frozen=True)
class Layer:
    kind: str  # conv, act, flatten, linear
    name: str = ""  # torso.I for layers with parameters
    kernel: int = 0
    stride: int = 1


def torso_layers(architecture: Architecture, input_shape: list[int]) -> tuple[list[Layer], dict[str, tuple]]:
    """The torso's layers (as Swift's NetworkArchitecture.torsoLayers builds them) and the tensor
    shapes the file must hold, for inputs of `input_shape`."""
    layers: list[Layer] = []
    shapes: dict[str, tuple] = {}
    shape = list(input_shape)
    if architecture.convolutions:
        if len(shape) != 3:
            raise ValueError(f"convolutions need [height, width, channels] inputs, not {shape}")
        for channels, kernel, stride in architecture.convolutions:
            if kernel > shape[0] or kernel > shape[1]:
                raise ValueError(f"a {channels}x{kernel} convolution does not fit its {shape[0]}x{shape[1]} input")
            name = f"torso.{len(layers)}"
            shapes[f"{name}.weight"] = (channels, kernel, kernel, shape[2])
            shapes[f"{name}.bias"] = (channels,)
            layers.append(Layer("conv", name, kernel, stride))
            shape = [(shape[0] - kernel) // stride + 1, (shape[1] - kernel) // stride + 1, channels]
            layers.append(Layer("act"))
    if len(shape) > 1:
        layers.append(Layer("flatten"))
        shape = [math.prod(shape)]
    for width in architecture.widths:
        name = f"torso.{len(layers)}"
        shapes[f"{name}.weight"] = (width, shape[0])
        shapes[f"{name}.bias"] = (width,)
        layers.append(Layer("linear", name))
        shape = [width]
        layers.append(Layer("act"))
    return layers, {**shapes, "features": (shape[0],)}


# -- the teacher ---------------------------------------------------------------------------------


@dataclass
class Outputs:
    probabilities: np.ndarray  # [B, A] float64
    log_probabilities: np.ndarray  # [B, A], floored at log 1e-8
    values: np.ndarray  # [B]
    action_values: np.ndarray | None  # [B, A] for q-values teachers


class NumpyForward:
    """Logits [B, A] and values [B] of inputs in the network's layout, with numpy (float64)."""

    name = "numpy"

    def __init__(self, tensors: dict[str, np.ndarray], layers: list[Layer], activation: str):
        self.tensors = tensors
        self.layers = layers
        self.activation = (lambda v: np.maximum(v, 0.0)) if activation == "relu" else np.tanh

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = self.tensors
        for layer in self.layers:
            if layer.kind == "conv":
                w, b = t[f"{layer.name}.weight"], t[f"{layer.name}.bias"]
                k, s = layer.kernel, layer.stride
                # im2col: windows [B, oh, ow, C, k, k] -> [B, oh, ow, k, k, C], one matmul with W [out, k*k*C].
                windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]
                patches = windows.transpose(0, 1, 2, 4, 5, 3)
                x = patches.reshape(*patches.shape[:3], -1) @ w.reshape(w.shape[0], -1).T + b
            elif layer.kind == "linear":
                x = x @ t[f"{layer.name}.weight"].T + t[f"{layer.name}.bias"]
            elif layer.kind == "act":
                x = self.activation(x)
            else:  # flatten, (h, w, c) order
                x = x.reshape(x.shape[0], -1)
        logits = x @ t["logits.weight"].T + t["logits.bias"]
        values = (x @ t["value.weight"].T + t["value.bias"])[:, 0]
        return logits, values


class TorchForward:
    """The same forward pass in PyTorch (CPU, float64), for users who have torch. Untested in CI
    (torch is not installed there); `--backend torch` fails with a clear message without it."""

    name = "torch"

    def __init__(self, tensors: dict[str, np.ndarray], layers: list[Layer], activation: str):
        try:
            import torch
        except ImportError:
            raise NetworkFileError(
                "--backend torch needs PyTorch, which is not installed in this environment: "
                "pip install torch (into the venv of ./run), or use the default --backend numpy"
            ) from None
        self.torch = torch
        self.f = torch.nn.functional
        self.tensors = {name: torch.from_numpy(value) for name, value in tensors.items()}
        self.layers = layers
        self.activation = torch.relu if activation == "relu" else torch.tanh

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch, t = self.torch, self.tensors
        with torch.no_grad():
            h = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
            for layer in self.layers:
                if layer.kind == "conv":
                    # distill's W [out, k, k, in] over NHWC is torch's [out, in, k, k] over NCHW.
                    w = t[f"{layer.name}.weight"].permute(0, 3, 1, 2)
                    h = self.f.conv2d(h.permute(0, 3, 1, 2), w, t[f"{layer.name}.bias"], stride=layer.stride)
                    h = h.permute(0, 2, 3, 1)
                elif layer.kind == "linear":
                    h = self.f.linear(h, t[f"{layer.name}.weight"], t[f"{layer.name}.bias"])
                elif layer.kind == "act":
                    h = self.activation(h)
                else:
                    h = h.reshape(h.shape[0], -1)
            logits = self.f.linear(h, t["logits.weight"], t["logits.bias"])
            values = self.f.linear(h, t["value.weight"], t["value.bias"])[:, 0]
        return logits.numpy(), values.numpy()


BACKENDS = {"numpy": NumpyForward, "torch": TorchForward}


class NetworkTeacher:
    """A network teacher file, validated as `distill` validates it, ready to answer batches."""

    def __init__(self, path: str, backend: str = "numpy"):
        self.path = path
        tensors, meta = read_safetensors(path)

        def bad(problem: str) -> NetworkFileError:
            return NetworkFileError(f"{path}: {problem}")

        present = sorted(k for k in meta if k.startswith("teacher."))
        if not present:
            raise bad(
                "a network file without teacher metadata (no __metadata__.teacher.format): write it with "
                "`distill train --student ARCH --out DIR` (DIR/student.safetensors)"
            )
        unknown = [k for k in present if k not in TEACHER_KEYS]
        if unknown:
            raise bad(f"__metadata__.{unknown[0]} is not a teacher key (known: {', '.join(sorted(TEACHER_KEYS))})")
        for key in REQUIRED_TEACHER_KEYS + ["distill.architecture", "distill.input_shape", "distill.action_count"]:
            if key not in meta:
                raise bad(f"__metadata__ has no {key} (docs/file-formats.md lists the keys)")
        if meta["teacher.format"] != FORMAT:
            raise bad(f"__metadata__.teacher.format is {meta['teacher.format']!r}; this server reads {FORMAT}")
        self.kind = meta["teacher.kind"]
        if self.kind not in ("policy", "q-values"):
            raise bad(f"__metadata__.teacher.kind is {self.kind!r}; expected policy or q-values")
        try:
            self.temperature = float(meta["teacher.temperature"])
        except ValueError:
            self.temperature = math.nan
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise bad(f"__metadata__.teacher.temperature is {meta['teacher.temperature']!r}; expected a positive number")

        def positive_list(key: str) -> list[int]:
            parts = meta[key].split(",")
            if not all(re.fullmatch(r"[0-9]+", p) and int(p) > 0 for p in parts):
                raise bad(f"__metadata__.{key} is {meta[key]!r}; expected positive integers like 7,20,20")
            return [int(p) for p in parts]

        self.observation_shape = positive_list("teacher.environment.observation_shape")
        input_shape = positive_list("distill.input_shape")
        (self.action_count,) = positive_list("teacher.environment.action_count")
        if positive_list("distill.action_count") != [self.action_count]:
            raise bad(
                f"teacher.environment.action_count is {self.action_count} but the network has "
                f"{meta['distill.action_count']} logits"
            )
        self.environment_name = meta["teacher.environment.name"]
        self.identity = meta.get("teacher.environment.identity")
        self.observation = meta["teacher.observation"]
        self.architecture_text = meta["distill.architecture"]
        try:
            architecture = Architecture.parse(self.architecture_text)
            layers, shapes = torso_layers(architecture, input_shape)
        except ValueError as error:
            raise bad(f"distill.architecture: {error}") from None
        # A convolutional network on [C, H, W] reads [H, W, C]; any other reads the environment's layout.
        self.channels_last = bool(architecture.convolutions) and len(self.observation_shape) == 3
        if self.channels_last:
            c, h, w = self.observation_shape
            fits = input_shape == [h, w, c]
        else:
            fits = math.prod(input_shape) == math.prod(self.observation_shape)
            fits = fits and (not architecture.convolutions or input_shape == self.observation_shape)
        if not fits:
            raise bad(
                f"the network ({self.architecture_text}) reads inputs of shape {input_shape}, which do not fit "
                f"observations of shape {self.observation_shape} (teacher.environment.observation_shape)"
            )
        self.input_shape = input_shape
        features = shapes.pop("features")[0]
        shapes.update({
            "logits.weight": (self.action_count, features), "logits.bias": (self.action_count,),
            "value.weight": (1, features), "value.bias": (1,),
        })
        for name, shape in shapes.items():
            if name not in tensors:
                raise bad(f"tensor {name} is missing (architecture {self.architecture_text})")
            if tuple(tensors[name].shape) != shape:
                raise bad(f"tensor {name} has shape {list(tensors[name].shape)}, expected {list(shape)}")
        extra = sorted(n for n in tensors if n not in shapes and not n.startswith("optimizer."))
        if extra:
            raise bad(f"tensor {extra[0]} is not part of the network {self.architecture_text}")
        for name in shapes:
            if not np.isfinite(tensors[name]).all():
                raise bad(f"tensor {name} holds a NaN or infinity")
        if backend not in BACKENDS:
            raise NetworkFileError(f"unknown backend {backend!r} (numpy or torch)")
        self.forward = BACKENDS[backend]({n: tensors[n] for n in shapes}, layers, architecture.activation)
        self.parameter_count = sum(tensors[n].size for n in shapes)

    @property
    def default_identity(self) -> str:
        """As distill names it: network(KIND,T=tau,FILE)."""
        return f"network({self.kind},T={self.temperature!r},{os.path.basename(self.path)})"

    def summary(self) -> str:
        return (
            f"network={self.architecture_text} ({self.parameter_count} parameters, {self.path}) kind={self.kind} "
            f"T={self.temperature!r} backend={self.forward.name}"
        )

    def outputs(self, observations: np.ndarray) -> Outputs:
        """pi, log pi, V (and Q) of observations [B] + observation_shape in the environment's layout."""
        x = np.asarray(observations, dtype=np.float64).reshape([-1] + self.observation_shape)
        if self.channels_last:
            x = x.transpose(0, 2, 3, 1)
        x = x.reshape([-1] + self.input_shape)
        z, head = self.forward(x)
        y = z / self.temperature
        top = y.max(axis=1, keepdims=True)
        log_pi = y - top - np.log(np.exp(y - top).sum(axis=1, keepdims=True))
        pi = np.exp(log_pi)
        q = self.kind == "q-values"
        values = (pi * z).sum(axis=1) if q else head
        return Outputs(pi, np.maximum(log_pi, LOG_PROBABILITY_FLOOR), values, z if q else None)
