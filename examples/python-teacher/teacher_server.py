#!/usr/bin/env python3
"""A distill teacher server in Python: the proof that the wire protocol is language-neutral.

It speaks proto/distill.proto exactly as the Swift `distill teacher` does:

- one ZeroMQ ROUTER socket; every request is [routing id, Envelope] (an actor's DEALER adds
  nothing else);
- an Envelope carries protocol_version 2, the sender (role, id, a random non-zero run nonce) and
  exactly one body; a teacher server takes TeacherQuery bodies only;
- a query of N state ids is answered with one TeacherReply: the query_id echoed, this teacher's
  id and version, probabilities as a [N, actions] float32 tensor, N values, Q-values as a
  [N, actions] tensor when the table has them, and cacheable = true (a table never changes);
- for a network teacher (--network), a query of N observations ([N] + the observation shape,
  float32) is answered the same way from one forward pass, with the environment spec stated and
  cacheable = false;
- valid queries of all clients wait until --max-batch rows or --batch-deadline-ms, then are
  answered together;
- anything else gets an Error reply (MALFORMED, UNSUPPORTED_VERSION, UNEXPECTED_TYPE,
  TOO_LARGE or INCOMPATIBLE) with a message that says what was wrong, and the server goes on.

It serves a teacher table in the teacher-file format of docs/file-formats.md, e.g.
examples/corridor-teacher.json or the output of `distill teacher --export-table FILE`, or a
network teacher file (safetensors; network_teacher.py reads and runs it with numpy).

Run it through ./run (beside this file), which makes the virtual environment and generates
distill_pb2 from proto/distill.proto.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import secrets
import signal
import sys
import time
from dataclasses import dataclass

try:
    import numpy as np
    import zmq
    from google.protobuf.message import DecodeError

    import distill_pb2 as pb
    from network_teacher import NetworkFileError, NetworkTeacher
except ImportError as error:  # pragma: no cover - only without the venv
    sys.exit(
        f"teacher_server.py: {error}. Start it with examples/python-teacher/run, which creates the "
        "virtual environment (pyzmq, protobuf, numpy) and generates distill_pb2 from proto/distill.proto."
    )

PROTOCOL_VERSION = 2
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20  # as WireCodec.defaultMaxMessageBytes
MAX_OBSERVATION_ELEMENTS = 16 << 20  # as WireCodec.maxObservationElements
DTYPE_NAMES = {1: "float32", 2: "uint8", 3: "bool"}  # as DType.description
FLOAT32_MAX = 3.4028234663852886e38
PROBABILITY_TOLERANCE = 1e-6  # as TeacherDescription.validated(for:)

log = logging.getLogger("python-teacher")


class TableError(Exception):
    """A teacher file that cannot be served; the message says where and why."""


class Rejection(Exception):
    """A request that gets an Error reply instead of a TeacherReply."""

    def __init__(self, code: int, message: str, in_reply_to: int = 0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.in_reply_to = in_reply_to


def code_name(code: int) -> str:
    return pb.Error.Code.Name(code)


class TeacherTable:
    """The teacher of a teacher file, validated, as float32-ready flat rows."""

    def __init__(self, identity: str, state_count: int, action_count: int, policy, values, q):
        self.identity = identity
        self.state_count = state_count
        self.action_count = action_count
        self.policy = policy  # list of rows
        self.values = values
        self.q = q  # list of rows, or None

    @staticmethod
    def load(path: str) -> "TeacherTable":
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as error:
            raise TableError(f"cannot read the teacher file {path}: {error.strerror}") from None
        try:
            # Non-finite numbers may be written "NaN" / "Infinity" (docs/file-formats.md): parse them so that
            # they can be reported below, not silently served.
            document = json.loads(raw, parse_constant=lambda name: float(name.replace("Infinity", "inf")))
        except (ValueError, UnicodeDecodeError) as error:
            raise TableError(f"{path} is not valid JSON: {error}") from None
        return TeacherTable.from_document(document, path)

    @staticmethod
    def from_document(document, path: str) -> "TeacherTable":
        def bad(message: str) -> TableError:
            return TableError(f"teacher file {path}: {message}")

        if not isinstance(document, dict):
            raise bad("the top level must be an object with stateCount, actionCount, policy, values")
        for field in ("stateCount", "actionCount", "policy", "values"):
            if field not in document:
                raise bad(f"missing field '{field}' (schema: docs/file-formats.md, Teacher)")

        def count(field: str) -> int:
            value = document[field]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(f"{field} is {value!r}, expected a positive integer")
            return value

        states, actions = count("stateCount"), count("actionCount")
        if states > 2**31 - 1 or states * actions > 50_000_000:
            raise bad(f"{states} states x {actions} actions is too large for a table server")

        def number(value, where: str, what: str) -> float:
            if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
                value = float(value.replace("Infinity", "inf"))
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad(f"{where} is {value!r}, expected {what}")
            value = float(value)
            if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
                raise bad(f"{where} is {value}, expected {what} (finite, within float32 range)")
            return value

        def table(field: str, what: str):
            rows = document[field]
            if not isinstance(rows, list) or len(rows) != states:
                got = len(rows) if isinstance(rows, list) else type(rows).__name__
                raise bad(f"{field} has {got} rows, expected one per state ({states})")
            out = []
            for s, row in enumerate(rows):
                if not isinstance(row, list) or len(row) != actions:
                    got = len(row) if isinstance(row, list) else type(row).__name__
                    raise bad(f"{field}[state {s}] has {got} entries, expected actionCount = {actions}")
                out.append([number(x, f"{field}[state {s}][action {a}]", what) for a, x in enumerate(row)])
            return out

        policy = table("policy", "a probability")
        for s, row in enumerate(policy):
            for a, p in enumerate(row):
                if p < 0:
                    raise bad(f"policy[state {s}][action {a}] is negative ({p})")
            total = sum(row)
            if abs(total - 1) > PROBABILITY_TOLERANCE:
                raise bad(f"policy[state {s}] sums to {total}, expected 1")
            policy[s] = [p / total for p in row]
        values = document["values"]
        if not isinstance(values, list) or len(values) != states:
            got = len(values) if isinstance(values, list) else type(values).__name__
            raise bad(f"values has {got} entries, expected one per state ({states})")
        values = [number(v, f"values[state {s}]", "a finite number") for s, v in enumerate(values)]
        q = table("q", "a finite number") if document.get("q") is not None else None
        identity = document.get("identity")
        if identity is not None and (not isinstance(identity, str) or not identity):
            raise bad(f"identity is {identity!r}, expected a non-empty string")
        return TeacherTable(identity or "file", states, actions, policy, values, q)


class RejectionLog:
    """Counts rejections by code; logs the first 10, then every power of two (as the Swift one)."""

    def __init__(self, burst: int = 10):
        self.burst = burst
        self.total = 0
        self.counts: dict[str, int] = {}

    def record(self, code: int, message: str) -> None:
        self.total += 1
        name = code_name(code)
        self.counts[name] = self.counts.get(name, 0) + 1
        if self.total <= self.burst or self.total & (self.total - 1) == 0:
            suffix = f" ({self.total} rejected so far; logging every power of two)" if self.total > self.burst else ""
            log.warning("rejected a message: %s: %s%s", name, message, suffix)

    def summary(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.counts.items())) or "none"


def decode_observations(tensor: "pb.ObservationTensor", query_id: int) -> "np.ndarray | None":
    """The rows of TeacherQuery.observations as float64 [rows, feature...], checked as WireCodec
    checks them (known dtype, 2 to 8 extents >= 1, at most 16 Mi elements, data exactly as long as the
    shape needs, finite floats, no bits set beyond the last boolean); None when absent."""
    shape, data = list(tensor.shape), tensor.data
    if not shape and not data:
        return None
    field = "TeacherQuery.observations"

    def malformed(message: str) -> Rejection:
        return Rejection(pb.Error.CODE_MALFORMED, message, query_id)

    if tensor.dtype not in DTYPE_NAMES:
        raise malformed(f"{field}.dtype {tensor.dtype} is not a known element type")
    if not 2 <= len(shape) <= 8 or not all(n >= 1 for n in shape):
        raise malformed(f"{field} has shape {shape}: need [rows, feature...] with 2 to 8 extents, each >= 1")
    count = math.prod(shape)
    if count > MAX_OBSERVATION_ELEMENTS:
        raise malformed(
            f"{field} of shape {shape} has more than {MAX_OBSERVATION_ELEMENTS} elements: refused as oversized"
        )
    dtype = DTYPE_NAMES[tensor.dtype]
    expected = {"float32": 4 * count, "uint8": count, "bool": (count + 7) // 8}[dtype]
    if len(data) != expected:
        raise malformed(
            f"{field} has {len(data)} bytes, its shape {shape} of {dtype} needs {expected}: the shape must "
            "describe the data"
        )
    if dtype == "float32":
        values = np.frombuffer(data, dtype="<f4")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise malformed(f"{field}[{bad[0]}] is not finite: every float must be finite")
    elif dtype == "uint8":
        values = np.frombuffer(data, dtype=np.uint8)
    else:
        used = count % 8
        if used and data[-1] >> used:
            raise malformed(f"{field} sets bits beyond its last element")
        values = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[:count]
    return values.astype(np.float64).reshape(shape)


@dataclass
class Pending:
    """A valid query waiting for its batch."""

    routing: bytes
    query: "pb.TeacherQuery"
    rows: int
    arrived: float  # time.monotonic()
    observations: "np.ndarray | None" = None


@dataclass
class Statistics:
    """What the server has done (as TeacherServerStatistics)."""

    queries: int = 0
    rows: int = 0
    batches: int = 0
    max_queue_depth: int = 0
    batch_fill_total: float = 0.0  # sum over batches of min(rows / max_batch, 1)
    latency_total_ms: float = 0.0
    latency_max_ms: float = 0.0
    forward_total_ms: float = 0.0


class TeacherServer:
    """Answers TeacherQuery messages from a table (state ids) or a network teacher file
    (observation tensors); never dies on what a peer sends.

    Valid queries of all clients are gathered until they hold `max_batch` rows or the oldest has
    waited `batch_deadline_ms`, then answered together: for a network, one forward pass over all
    their rows (SEED RL's inference server, as `distill teacher`)."""

    def __init__(
        self,
        teacher: "TeacherTable | NetworkTeacher",
        teacher_id: str,
        server_id: str,
        max_message_bytes: int,
        environment: str = "",
        max_batch: int = 4096,
        batch_deadline_ms: float = 2.0,
    ):
        self.teacher = teacher
        # A network is anything with outputs(observations) -> Outputs, action_count, observation_shape
        # and environment_name (NetworkTeacher, or your own model): it answers observation tensors.
        self.network = None if isinstance(teacher, TeacherTable) else teacher
        self.table = teacher if isinstance(teacher, TeacherTable) else None
        self.spec: "pb.EnvironmentSpec | None" = None
        if self.network is not None:
            # The spec of the environment served, as `distill teacher --teacher-file` states it.
            self.spec = pb.EnvironmentSpec(
                name=self.network.environment_name, observation_shape=self.network.observation_shape,
                observation_dtype=pb.DTYPE_FLOAT32, action_count=self.network.action_count,
            )
            environment = environment or self.network.environment_name
        self.environment = environment
        self.teacher_id = teacher_id
        self.teacher_version = 1
        self.max_message_bytes = max_message_bytes
        self.max_batch = max_batch
        self.batch_deadline = batch_deadline_ms / 1000
        self.sender = pb.Sender(role=pb.ROLE_TEACHER, id=server_id, run_nonce=secrets.randbits(64) or 1)
        self.rejections = RejectionLog()
        self.statistics = Statistics()
        self.pending: list[Pending] = []
        self.pending_rows = 0
        self.stop_reason = ""

    @property
    def action_count(self) -> int:
        return self.teacher.action_count

    def describe(self) -> str:
        """What is served, e.g. "CartPole-v1(obs=[4] float32, actions=2)" (as Swift's spec description)."""
        if self.spec is not None:
            shape = ", ".join(str(n) for n in self.spec.observation_shape)
            return f"{self.spec.name}(obs=[{shape}] float32, actions={self.spec.action_count})"
        return f"{self.table.state_count} states, {self.table.action_count} actions"

    # -- one request ---------------------------------------------------------------------------

    def accept(self, frames: list[bytes]) -> bytes | None:
        """Queues a valid query (None) or returns the serialized Error envelope for a bad one."""
        try:
            self.enqueue(frames[0], self._query(frames))
            return None
        except Rejection as rejection:
            self.rejections.record(rejection.code, rejection.message)
            return self._error(rejection.code, rejection.message, rejection.in_reply_to)

    def handle(self, frames: list[bytes]) -> list[bytes]:
        """The serialized replies to one request, answered at once (for tests and tools)."""
        error = self.accept(frames)
        return [error] if error is not None else [reply for _, reply in self.flush()]

    def _query(self, frames: list[bytes]) -> Pending:
        if len(frames) != 2:
            # A ROUTER sees [routing id, payload]: anything else is not our protocol.
            raise Rejection(pb.Error.CODE_MALFORMED, f"expected one payload frame, got {len(frames) - 1}")
        payload = frames[1]
        if len(payload) > self.max_message_bytes:
            raise Rejection(
                pb.Error.CODE_TOO_LARGE,
                f"message of {len(payload)} bytes exceeds the maximum of {self.max_message_bytes} bytes",
            )
        if not payload:
            raise Rejection(pb.Error.CODE_MALFORMED, "empty message: no envelope")
        envelope = pb.Envelope()
        try:
            envelope.ParseFromString(payload)
        except (DecodeError, ValueError, RuntimeError) as error:
            raise Rejection(
                pb.Error.CODE_MALFORMED,
                f"{len(payload)} bytes are not a distill protocol Envelope (protobuf parse failed: {error})",
            ) from None
        if envelope.protocol_version != PROTOCOL_VERSION:
            if envelope.protocol_version == 0:
                raise Rejection(pb.Error.CODE_UNSUPPORTED_VERSION, "Envelope.protocol_version is missing")
            raise Rejection(
                pb.Error.CODE_UNSUPPORTED_VERSION,
                f"protocol version {envelope.protocol_version} is not supported (this server speaks "
                f"{PROTOCOL_VERSION}): run the same distill release on every host",
            )
        self._check_sender(envelope)
        body = envelope.WhichOneof("body")
        if body is None:
            raise Rejection(pb.Error.CODE_MALFORMED, "Envelope has no message body (or one this server does not know)")
        if body != "teacher_query":
            raise Rejection(
                pb.Error.CODE_UNEXPECTED_TYPE,
                f"expected teacherQuery, got {body} from '{envelope.sender.id}': is it connected to the right "
                "endpoint? (this is a teacher server)",
            )
        query = envelope.teacher_query
        qid = query.query_id
        has_features = self._check_features(query)
        observations = decode_observations(query.observations, qid)
        given = sum([len(query.state_ids) > 0, has_features, observations is not None])
        if given != 1:
            raise Rejection(
                pb.Error.CODE_MALFORMED,
                f"TeacherQuery needs exactly one of state_ids, features and observations (query {qid})", qid,
            )
        for index, state in enumerate(query.state_ids):
            if state < 0:
                raise Rejection(
                    pb.Error.CODE_MALFORMED, f"TeacherQuery.state_ids[{index}] is {state}, must be >= 0", qid
                )
        if self.network is not None:
            if observations is None:
                raise Rejection(
                    pb.Error.CODE_INCOMPATIBLE,
                    f"this teacher is a network over {self.describe()}: send observations, not state ids or features",
                    qid,
                )
            row_shape = list(observations.shape[1:])
            dtype = DTYPE_NAMES[query.observations.dtype]
            if row_shape != self.network.observation_shape or query.observations.dtype != pb.DTYPE_FLOAT32:
                raise Rejection(
                    pb.Error.CODE_INCOMPATIBLE,
                    f"observations of shape {row_shape} {dtype} do not fit this teacher, which serves "
                    f"{self.describe()}: is the actor running the same environment?",
                    qid,
                )
            return Pending(frames[0], query, observations.shape[0], time.monotonic(), observations)
        if has_features or observations is not None:
            raise Rejection(pb.Error.CODE_INCOMPATIBLE, "this teacher is tabular: send state_ids, not features", qid)
        states = self.table.state_count
        for state in query.state_ids:
            if state >= states:
                raise Rejection(
                    pb.Error.CODE_INCOMPATIBLE,
                    f"state id {state} is out of range for this teacher's {states} states: is the actor "
                    "running the same environment (and seed) as the teacher?",
                    qid,
                )
        return Pending(frames[0], query, len(query.state_ids), time.monotonic())

    @staticmethod
    def _check_features(query: "pb.TeacherQuery") -> bool:
        """Whether the query has features, after checking them as WireCodec does."""
        shape, values = list(query.features.shape), query.features.values
        if not shape and not values:
            return False
        count = math.prod(shape)
        if count != len(values):
            raise Rejection(
                pb.Error.CODE_MALFORMED,
                f"TeacherQuery.features has shape {shape} but {len(values)} values: the shape must describe the data",
                query.query_id,
            )
        for index, value in enumerate(values):
            if not math.isfinite(value):
                raise Rejection(
                    pb.Error.CODE_MALFORMED,
                    f"TeacherQuery.features.values[{index}] is {value}: every float must be finite",
                    query.query_id,
                )
        if not values:
            return False  # an empty tensor with a shape is an absent one (as WireCodec reads it)
        if len(query.state_ids) == 0 and len(shape) < 2:
            raise Rejection(
                pb.Error.CODE_MALFORMED,
                f"TeacherQuery.features has shape {shape}, need [batch, feature...]",
                query.query_id,
            )
        return True

    @staticmethod
    def _check_sender(envelope: "pb.Envelope") -> None:
        if not envelope.HasField("sender"):
            raise Rejection(pb.Error.CODE_MALFORMED, "Envelope.sender is missing")
        sender = envelope.sender
        if sender.role not in pb.Role.values() or sender.role == pb.ROLE_UNSPECIFIED:
            raise Rejection(pb.Error.CODE_MALFORMED, f"Sender.role {sender.role} is not a known role")
        length = len(sender.id.encode("utf-8"))
        if length == 0:
            raise Rejection(pb.Error.CODE_MALFORMED, "Sender.id is empty")
        if length > 128:
            raise Rejection(pb.Error.CODE_MALFORMED, f"Sender.id is {length} bytes long, the limit is 128")
        if sender.run_nonce == 0:
            raise Rejection(pb.Error.CODE_MALFORMED, "Sender.run_nonce is 0 (missing)")

    # -- batches -------------------------------------------------------------------------------

    def enqueue(self, routing: bytes, pending: Pending) -> None:
        pending.routing = routing
        self.pending.append(pending)
        self.pending_rows += pending.rows

    def due(self, now: float) -> bool:
        """Whether the pending batch is full or its oldest query has waited the deadline."""
        return bool(self.pending) and (
            self.pending_rows >= self.max_batch or now - self.pending[0].arrived >= self.batch_deadline
        )

    def flush(self) -> list[tuple[bytes, bytes]]:
        """(routing id, serialized reply) for every pending query: one batch, one forward pass."""
        if not self.pending:
            return []
        batch, self.pending = self.pending, []
        rows, self.pending_rows = self.pending_rows, 0
        stats = self.statistics
        stats.max_queue_depth = max(stats.max_queue_depth, len(batch))
        stats.batch_fill_total += min(1.0, rows / self.max_batch)
        stats.batches += 1
        try:
            replies = self._answer_network(batch) if self.network is not None else self._answer_table(batch)
        except Exception as error:  # a bug (or a backend failure) of ours must not take the server down
            log.exception("internal error while answering a batch of %d queries", len(batch))
            message = f"internal error of the Python teacher server: {error}"
            return [(p.routing, self._error(pb.Error.CODE_UNAVAILABLE, message, p.query.query_id)) for p in batch]
        now = time.monotonic()
        for p in batch:
            latency = (now - p.arrived) * 1000
            stats.latency_total_ms += latency
            stats.latency_max_ms = max(stats.latency_max_ms, latency)
            stats.queries += 1
            stats.rows += p.rows
        return [(p.routing, reply) for p, reply in zip(batch, replies)]

    def _reply(self, query_id: int) -> tuple["pb.Envelope", "pb.TeacherReply"]:
        envelope = pb.Envelope(protocol_version=PROTOCOL_VERSION, sender=self.sender)
        reply = envelope.teacher_reply
        reply.query_id = query_id
        reply.teacher_id = self.teacher_id
        reply.teacher_version = self.teacher_version
        # The environment served, as the learner names it: a learner checks it before a swap.
        reply.environment = self.environment
        return envelope, reply

    def _answer_table(self, batch: list[Pending]) -> list[bytes]:
        table, out = self.table, []
        for p in batch:
            envelope, reply = self._reply(p.query.query_id)
            reply.cacheable = True  # a table never changes
            reply.probabilities.shape.extend([p.rows, table.action_count])
            for state in p.query.state_ids:
                reply.probabilities.values.extend(table.policy[state])
                reply.values.append(table.values[state])
            if table.q is not None:
                reply.q_values.shape.extend([p.rows, table.action_count])
                for state in p.query.state_ids:
                    reply.q_values.values.extend(table.q[state])
            out.append(envelope.SerializeToString())
        return out

    def _answer_network(self, batch: list[Pending]) -> list[bytes]:
        started = time.monotonic()
        rows = np.concatenate([p.observations for p in batch])
        # One forward pass per batch; a single query larger than --max-batch rows is cut into passes
        # of --max-batch rows, which bounds the memory of the pass (im2col copies every window).
        parts = [self.network.outputs(rows[i : i + self.max_batch]) for i in range(0, len(rows), self.max_batch)]
        self.statistics.forward_total_ms += (time.monotonic() - started) * 1000
        # float32 on the wire, renormalised in float32 as the Swift server does, so that every row
        # is a distribution within the codec's tolerance.
        probabilities = np.concatenate([o.probabilities for o in parts]).astype(np.float32)
        probabilities /= probabilities.sum(axis=1, keepdims=True, dtype=np.float32)
        values = np.concatenate([o.values for o in parts]).astype(np.float32)
        q = None
        if parts[0].action_values is not None:
            q = np.concatenate([o.action_values for o in parts]).astype(np.float32)
        na, row, out = self.action_count, 0, []
        for p in batch:
            envelope, reply = self._reply(p.query.query_id)
            reply.cacheable = False
            reply.environment_spec.CopyFrom(self.spec)
            reply.probabilities.shape.extend([p.rows, na])
            reply.probabilities.values.extend(probabilities[row : row + p.rows].ravel().tolist())
            reply.values.extend(values[row : row + p.rows].tolist())
            if q is not None:
                reply.q_values.shape.extend([p.rows, na])
                reply.q_values.values.extend(q[row : row + p.rows].ravel().tolist())
            row += p.rows
            out.append(envelope.SerializeToString())
        return out

    def _error(self, code: int, message: str, in_reply_to: int) -> bytes:
        envelope = pb.Envelope(protocol_version=PROTOCOL_VERSION, sender=self.sender)
        envelope.error.code = code
        envelope.error.message = message
        envelope.error.in_reply_to = in_reply_to
        return envelope.SerializeToString()

    # -- the loop ------------------------------------------------------------------------------

    def serve(self, bind: str, status_interval: float) -> None:
        context = zmq.Context()
        router = context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 200)  # never hang on close with unsent replies
        router.setsockopt(zmq.SNDHWM, 10_000)
        router.setsockopt(zmq.RCVHWM, 10_000)
        # libzmq drops a peer that sends more, before the bytes reach us (as the Swift server).
        router.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        try:
            router.bind(bind)
        except zmq.ZMQError as error:
            router.close(0)
            context.term()
            raise SystemExit(
                f"teacher_server.py: cannot bind {bind}: {error.strerror}. Use an endpoint like "
                "tcp://*:5556 or tcp://127.0.0.1:0 (0 picks a free port), on a port nobody else uses."
            ) from None
        endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        print(f"endpoint teacher {endpoint}", flush=True)  # as every distill role announces itself
        if self.network is not None:
            summary = getattr(self.network, "summary", lambda: type(self.network).__name__)()
            log.info(
                "python teacher server ready: endpoint=%s teacher=%s serves=%s %s max_batch=%d deadline_ms=%g",
                endpoint, self.teacher_id, self.describe(), summary, self.max_batch, self.batch_deadline * 1000,
            )
        else:
            log.info(
                "python teacher server ready: endpoint=%s teacher=%s states=%d actions=%d q=%s",
                endpoint, self.teacher_id, self.table.state_count, self.table.action_count,
                "yes" if self.table.q is not None else "no",
            )
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        next_status = time.monotonic() + status_interval

        def send(routing: bytes, reply: bytes) -> None:
            try:
                # ROUTER drops replies to peers that left; a client retries on its own.
                router.send_multipart([routing, reply], zmq.NOBLOCK)
            except zmq.ZMQError as error:
                log.debug("could not send a reply: %s", error)

        try:
            while not self.stop_reason:
                now = time.monotonic()
                wait = 100 if not self.pending else max(0.0, (self.pending[0].arrived + self.batch_deadline - now) * 1000)
                if poller.poll(wait):
                    # Drain what is queued now, answering whenever a batch fills.
                    while True:
                        try:
                            frames = router.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        error = self._accept_safely(frames)
                        if error is not None:
                            send(frames[0], error)
                        if self.pending_rows >= self.max_batch:
                            for routing, reply in self.flush():
                                send(routing, reply)
                if self.due(time.monotonic()):
                    for routing, reply in self.flush():
                        send(routing, reply)
                if time.monotonic() >= next_status:
                    next_status += status_interval
                    self.log_status()
            for routing, reply in self.flush():
                send(routing, reply)
        finally:
            log.info("python teacher server stopping (%s)", self.stop_reason or "error")
            self.log_status()
            router.close()
            context.term()

    def _accept_safely(self, frames: list[bytes]) -> bytes | None:
        try:
            return self.accept(frames)
        except Exception as error:  # a bug of ours must not take the server down
            log.exception("internal error while reading a request")
            return self._error(pb.Error.CODE_UNAVAILABLE, f"internal error of the Python teacher server: {error}", 0)

    def log_status(self) -> None:
        s = self.statistics
        batches, queries = max(s.batches, 1), max(s.queries, 1)
        log.info(
            "python teacher server status: queries=%d rows=%d batches=%d rejected=%d (%s) mean_batch_rows=%.1f "
            "batch_fill=%.3f max_queue_depth=%d mean_latency_ms=%.2f max_latency_ms=%.1f mean_forward_ms=%.3f "
            "serves=%s",
            s.queries, s.rows, s.batches, self.rejections.total, self.rejections.summary(), s.rows / batches,
            s.batch_fill_total / batches, s.max_queue_depth, s.latency_total_ms / queries, s.latency_max_ms,
            s.forward_total_ms / batches, self.describe() if self.network is not None else self.environment,
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="teacher_server.py",
        description=(
            "A distill teacher server in Python (pyzmq + protobuf), serving a teacher table (state ids) or a "
            "network teacher file (observation tensors, one numpy forward pass per batch)."
        ),
        epilog=(
            "examples:\n"
            "  run --table ../corridor-teacher.json --bind 'tcp://*:5556'\n"
            "  distill teacher --env gridworld --seed 1 --teacher optimal --export-table optimal.json\n"
            "  run --table optimal.json --bind tcp://127.0.0.1:6556 --teacher-id python-optimal\n"
            "  distill train --env cartpole --student mlp:16 --method actor-critic --iterations 200 --out runs/cp\n"
            "  run --network runs/cp/student.safetensors --bind 'tcp://*:5556' --max-batch 1024\n"
            "then: distill control swap-teacher --learner tcp://HOST:5559 --run-dir RUN --to tcp://HOST:6556"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    served = parser.add_mutually_exclusive_group(required=True)
    served.add_argument("--table", help="teacher file (docs/file-formats.md, Teacher): answers state ids")
    served.add_argument(
        "--network", metavar="NET.safetensors",
        help="network teacher file (docs/file-formats.md, A network teacher): answers observation tensors",
    )
    parser.add_argument(
        "--backend", default="numpy", choices=["numpy", "torch"],
        help="forward pass of --network: numpy (default) or torch (needs PyTorch, not installed by ./run; untested in CI)",
    )
    parser.add_argument("--bind", default="tcp://*:5556", help="ROUTER endpoint (default: tcp://*:5556)")
    parser.add_argument(
        "--teacher-id",
        help="teacher id in every reply (default: the table's identity, or network(KIND,T=τ,FILE) as distill names a "
        "network teacher); 1 to 256 bytes",
    )
    parser.add_argument("--id", default="python-teacher", help="this server's Sender.id (default: python-teacher)")
    parser.add_argument(
        "--environment", default="",
        help="the environment served, as the learner's status names it (its 'environment' field); a learner "
        "checks it before a swap (default: unstated for a table; the file's teacher.environment.name for a network)",
    )
    parser.add_argument("--max-batch", type=int, default=4096, help="answer a batch once it holds this many rows (default: 4096)")
    parser.add_argument(
        "--batch-deadline-ms", type=float, default=2.0,
        help="answer a batch once its oldest query waited this many milliseconds (default: 2)",
    )
    parser.add_argument(
        "--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
        help=f"largest request accepted (default: {DEFAULT_MAX_MESSAGE_BYTES})",
    )
    parser.add_argument("--status-interval", type=float, default=10.0, help="seconds between status lines")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not 1 <= len(args.id.encode()) <= 128:
        parser.error("--id must be 1 to 128 bytes")
    if args.max_message_bytes < 1024:
        parser.error("--max-message-bytes must be at least 1024")
    if not args.status_interval > 0:
        parser.error("--status-interval must be positive")
    if args.max_batch < 1:
        parser.error("--max-batch must be at least 1")
    if not 0 <= args.batch_deadline_ms < 60_000:
        parser.error("--batch-deadline-ms must be 0 to 60000")
    teacher: "TeacherTable | NetworkTeacher"
    try:
        if args.network is not None:
            teacher = NetworkTeacher(args.network, backend=args.backend)
            default_id = teacher.default_identity
            if teacher.identity is not None:
                log.warning(
                    "%s was trained on a tabular environment (%s): this server answers observations of %s with "
                    "the value head, while `distill teacher --env ... --teacher-file` serves it as a table over "
                    "state ids with exact V_π (export it with --export-table and serve that with --table)",
                    args.network, teacher.identity, teacher.observation,
                )
        else:
            teacher = TeacherTable.load(args.table)
            default_id = teacher.identity
    except (TableError, NetworkFileError) as error:
        print(f"teacher_server.py: {error}", file=sys.stderr)
        return 2
    teacher_id = args.teacher_id if args.teacher_id is not None else default_id
    if not 1 <= len(teacher_id.encode()) <= 256:
        parser.error("--teacher-id must be 1 to 256 bytes")
    server = TeacherServer(
        teacher, teacher_id, args.id, args.max_message_bytes, args.environment,
        max_batch=args.max_batch, batch_deadline_ms=args.batch_deadline_ms,
    )

    def stop(signum, _frame):
        server.stop_reason = signal.Signals(signum).name

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    server.serve(args.bind, args.status_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
