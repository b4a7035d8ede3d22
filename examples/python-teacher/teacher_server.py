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
- anything else gets an Error reply (MALFORMED, UNSUPPORTED_VERSION, UNEXPECTED_TYPE,
  TOO_LARGE or INCOMPATIBLE) with a message that says what was wrong, and the server goes on.

It serves a teacher table in the teacher-file format of docs/file-formats.md, e.g.
examples/corridor-teacher.json or the output of `distill teacher --export-table FILE`.

Run it through ./run (beside this file), which makes the virtual environment and generates
distill_pb2 from proto/distill.proto.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import secrets
import signal
import sys
import time

try:
    import zmq
    from google.protobuf.message import DecodeError

    import distill_pb2 as pb
except ImportError as error:  # pragma: no cover - only without the venv
    sys.exit(
        f"teacher_server.py: {error}. Start it with examples/python-teacher/run, which creates the "
        "virtual environment (pyzmq, protobuf) and generates distill_pb2 from proto/distill.proto."
    )

PROTOCOL_VERSION = 2
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20  # as WireCodec.defaultMaxMessageBytes
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


class TeacherServer:
    """Answers TeacherQuery messages from one table; never dies on what a peer sends."""

    def __init__(
        self, table: TeacherTable, teacher_id: str, server_id: str, max_message_bytes: int, environment: str = ""
    ):
        self.environment = environment
        self.table = table
        self.teacher_id = teacher_id
        self.teacher_version = 1
        self.max_message_bytes = max_message_bytes
        self.sender = pb.Sender(role=pb.ROLE_TEACHER, id=server_id, run_nonce=secrets.randbits(64) or 1)
        self.rejections = RejectionLog()
        self.queries = 0
        self.rows = 0
        self.batches = 0
        self.stop_reason = ""

    # -- one request ---------------------------------------------------------------------------

    def handle(self, frames: list[bytes]) -> bytes:
        """The serialized reply Envelope (a TeacherReply or an Error) to one request."""
        try:
            return self._answer(self._query(frames))
        except Rejection as rejection:
            self.rejections.record(rejection.code, rejection.message)
            return self._error(rejection.code, rejection.message, rejection.in_reply_to)

    def _query(self, frames: list[bytes]) -> "pb.TeacherQuery":
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
        has_features = self._check_features(query)
        if len(query.state_ids) > 0 and has_features:
            raise Rejection(
                pb.Error.CODE_MALFORMED,
                f"TeacherQuery needs exactly one of state_ids and features (query {query.query_id})",
                query.query_id,
            )
        if has_features:
            raise Rejection(
                pb.Error.CODE_INCOMPATIBLE,
                "this teacher is tabular: send state_ids, not features",
                query.query_id,
            )
        if len(query.state_ids) == 0:
            raise Rejection(
                pb.Error.CODE_MALFORMED,
                f"TeacherQuery needs exactly one of state_ids and features (query {query.query_id})",
                query.query_id,
            )
        states = self.table.state_count
        for index, state in enumerate(query.state_ids):
            if state < 0:
                raise Rejection(
                    pb.Error.CODE_MALFORMED,
                    f"TeacherQuery.state_ids[{index}] is {state}, must be >= 0",
                    query.query_id,
                )
            if state >= states:
                raise Rejection(
                    pb.Error.CODE_INCOMPATIBLE,
                    f"state id {state} is out of range for this teacher's {states} states: is the actor "
                    "running the same environment (and seed) as the teacher?",
                    query.query_id,
                )
        return query

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

    def _answer(self, query: "pb.TeacherQuery") -> bytes:
        table, rows = self.table, len(query.state_ids)
        envelope = pb.Envelope(protocol_version=PROTOCOL_VERSION, sender=self.sender)
        reply = envelope.teacher_reply
        reply.query_id = query.query_id
        reply.teacher_id = self.teacher_id
        # The environment served, as the learner names it: a learner checks it before a swap.
        reply.environment = self.environment
        reply.teacher_version = self.teacher_version
        reply.cacheable = True
        reply.probabilities.shape.extend([rows, table.action_count])
        for state in query.state_ids:
            reply.probabilities.values.extend(table.policy[state])
            reply.values.append(table.values[state])
        if table.q is not None:
            reply.q_values.shape.extend([rows, table.action_count])
            for state in query.state_ids:
                reply.q_values.values.extend(table.q[state])
        self.queries += 1
        self.rows += rows
        return envelope.SerializeToString()

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
        log.info(
            "python teacher server ready: endpoint=%s teacher=%s states=%d actions=%d q=%s",
            endpoint, self.teacher_id, self.table.state_count, self.table.action_count,
            "yes" if self.table.q is not None else "no",
        )
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        next_status = time.monotonic() + status_interval
        try:
            while not self.stop_reason:
                if poller.poll(100):
                    # Everything queued now is one batch: the answers go out together.
                    replies = []
                    while True:
                        try:
                            frames = router.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        replies.append((frames[0], self._handle_safely(frames)))
                    for routing, reply in replies:
                        try:
                            # ROUTER drops replies to peers that left; a client retries on its own.
                            router.send_multipart([routing, reply], zmq.NOBLOCK)
                        except zmq.ZMQError as error:
                            log.debug("could not send a reply: %s", error)
                    self.batches += 1
                if time.monotonic() >= next_status:
                    next_status += status_interval
                    self.log_status()
        finally:
            log.info("python teacher server stopping (%s)", self.stop_reason or "error")
            self.log_status()
            router.close()
            context.term()

    def _handle_safely(self, frames: list[bytes]) -> bytes:
        try:
            return self.handle(frames)
        except Exception as error:  # a bug of ours must not take the server down
            log.exception("internal error while answering a request")
            return self._error(pb.Error.CODE_UNAVAILABLE, f"internal error of the Python teacher server: {error}", 0)

    def log_status(self) -> None:
        log.info(
            "python teacher server status: queries=%d rows=%d batches=%d rejected=%d (%s)",
            self.queries, self.rows, self.batches, self.rejections.total, self.rejections.summary(),
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="teacher_server.py",
        description="A distill teacher server in Python (pyzmq + protobuf), serving a teacher table.",
        epilog=(
            "examples:\n"
            "  run --table ../corridor-teacher.json --bind 'tcp://*:5556'\n"
            "  distill teacher --env gridworld --seed 1 --teacher optimal --export-table optimal.json\n"
            "  run --table optimal.json --bind tcp://127.0.0.1:6556 --teacher-id python-optimal\n"
            "then: distill control swap-teacher --learner tcp://HOST:5559 --run-dir RUN --to tcp://HOST:6556"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--table", required=True, help="teacher file (docs/file-formats.md, Teacher)")
    parser.add_argument("--bind", default="tcp://*:5556", help="ROUTER endpoint (default: tcp://*:5556)")
    parser.add_argument(
        "--teacher-id", help="teacher id in every reply (default: the file's identity); 1 to 256 bytes"
    )
    parser.add_argument("--id", default="python-teacher", help="this server's Sender.id (default: python-teacher)")
    parser.add_argument(
        "--environment", default="",
        help="the environment served, as the learner's status names it (its 'environment' field); a learner "
        "checks it before a swap (default: unstated, then only the table's shape is checked)",
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
    try:
        table = TeacherTable.load(args.table)
    except TableError as error:
        print(f"teacher_server.py: {error}", file=sys.stderr)
        return 2
    teacher_id = args.teacher_id if args.teacher_id is not None else table.identity
    if not 1 <= len(teacher_id.encode()) <= 256:
        parser.error("--teacher-id must be 1 to 256 bytes")
    server = TeacherServer(table, teacher_id, args.id, args.max_message_bytes, args.environment)

    def stop(signum, _frame):
        server.stop_reason = signal.Signals(signum).name

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    server.serve(args.bind, args.status_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
