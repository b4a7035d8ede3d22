#!/usr/bin/env python3
"""Checks a teacher server that serves a network teacher over observations (the Python one with
--network, or `distill teacher --teacher-file NET.safetensors`) from the outside.

    check_network_server.py --endpoint tcp://127.0.0.1:6556 --expected forward.json \
        [--compare tcp://127.0.0.1:5556] [--clients 4] [--fuzz 500] [--bench-rounds 200]

`forward.json` is what `distill nn forward --teacher NET.safetensors --observations OBS.json`
prints: the observations and the teacher's probabilities, values (and action_values). Checks:

1. one query of every observation: the reply's probabilities, values (and Q) equal forward.json to
   1e-5 (relative to max(1, |value|)), with the environment spec stated (name, shape, float32,
   actions) and cacheable false;
2. the same rows split over --clients DEALERs sent at once (batched together by the server): each
   answered with its own rows, equal to the single query's;
3. bad queries (wrong shape, uint8 for float32, state ids, features, bytes that do not fit the shape,
   NaN, an unknown dtype, a bare vector, oversized, bits beyond the last boolean, two kinds at once,
   garbage, a Heartbeat, protocol version 1) each get an Error of the expected code, --fuzz N corrupted
   queries each get an answer, and a valid query is still answered afterwards;
4. with --compare ENDPOINT: the other server gives the same numbers (to 1e-5), the same spec and
   environment, and the same error code to every bad query;
5. with --bench-rounds R: --clients DEALERs each keep one query of --bench-rows rows in flight for R
   rounds; observations/s and ms per round are printed.

Prints one line per check and a JSON summary last; exits 0 when every check passes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import numpy as np
import zmq

import distill_pb2 as pb

TIMEOUT_MS = 5000


def envelope(version: int = 2) -> "pb.Envelope":
    e = pb.Envelope(protocol_version=version)
    e.sender.role = pb.ROLE_TOOL
    e.sender.id = "check-network-server"
    e.sender.run_nonce = 0x5EED
    return e


def observation_query(rows: np.ndarray, query_id: int, dtype: int = pb.DTYPE_FLOAT32, shape=None, data=None) -> bytes:
    e = envelope()
    q = e.teacher_query
    q.query_id = query_id
    q.observations.dtype = dtype
    q.observations.shape.extend(list(rows.shape) if shape is None else shape)
    q.observations.data = rows.astype("<f4").tobytes() if data is None else data
    return e.SerializeToString()


def bad_queries(rows: np.ndarray) -> list[tuple[str, bytes, int]]:
    """(name, payload, expected Error code) for queries a network teacher server must refuse."""
    one = rows[:2]
    wide = np.concatenate([one, one[:, :1]], axis=1).reshape(2, -1) if one.ndim == 2 else one.reshape(2, -1)
    state_ids = envelope()
    state_ids.teacher_query.query_id = 31
    state_ids.teacher_query.state_ids.extend([0, 1])
    features = envelope()
    features.teacher_query.query_id = 32
    features.teacher_query.features.shape.extend([1, 2])
    features.teacher_query.features.values.extend([0.5, 0.25])
    both = envelope()
    both.teacher_query.query_id = 33
    both.teacher_query.state_ids.append(0)
    both.teacher_query.observations.dtype = pb.DTYPE_FLOAT32
    both.teacher_query.observations.shape.extend(one.shape)
    both.teacher_query.observations.data = one.astype("<f4").tobytes()
    heartbeat = envelope()
    heartbeat.heartbeat.sequence = 1
    nan = one.astype("<f4").copy()
    nan.flat[1] = np.nan
    count = int(np.prod(one.shape))
    # One row, with a padding bit set when its elements do not fill the last byte (else a byte too many).
    first = rows[:1]
    bit_count = int(np.prod(first.shape))
    bits = bytearray(np.packbits(np.ones(bit_count, dtype=np.uint8), bitorder="little").tobytes())
    if bit_count % 8:
        bits[-1] |= 0x80
    else:
        bits.append(1)
    m, i, u = pb.Error.CODE_MALFORMED, pb.Error.CODE_INCOMPATIBLE, pb.Error.CODE_UNSUPPORTED_VERSION
    return [
        ("observations of the wrong shape", observation_query(wide, 21), i),
        ("uint8 observations (float32 served)", observation_query(one, 22, pb.DTYPE_UINT8, data=bytes(count)), i),
        ("state ids to a network teacher", state_ids.SerializeToString(), i),
        ("features to a network teacher", features.SerializeToString(), i),
        ("bytes that do not fit the shape", observation_query(one, 23, data=one.astype("<f4").tobytes()[:-4]), m),
        ("a NaN observation", observation_query(nan, 24), m),
        ("an unknown dtype", observation_query(one, 25, dtype=9), m),
        ("a bare vector (no batch extent)", observation_query(one, 26, shape=[count]), m),
        ("oversized ([4096, 4096, 2])", observation_query(one, 27, shape=[4096, 4096, 2], data=b""), m),
        ("bits beyond the last boolean", observation_query(first, 28, pb.DTYPE_BOOL_PACKED, data=bytes(bits)), m),
        ("state ids and observations", both.SerializeToString(), m),
        ("garbage bytes", b"\xffthis is not protobuf\x00\x01", m),
        ("a Heartbeat (wrong type)", heartbeat.SerializeToString(), pb.Error.CODE_UNEXPECTED_TYPE),
        ("protocol version 1 (an old peer)", _with_version(observation_query(one, 29), 1), u),
    ]


def _with_version(payload: bytes, version: int) -> bytes:
    e = pb.Envelope()
    e.ParseFromString(payload)
    e.protocol_version = version
    return e.SerializeToString()


class Client:
    def __init__(self, context, endpoint: str):
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)

    def send(self, payload: bytes) -> None:
        self.socket.send(payload)

    def receive(self) -> "pb.Envelope | None":
        if not self.socket.poll(TIMEOUT_MS):
            return None
        reply = pb.Envelope()
        reply.ParseFromString(self.socket.recv_multipart()[-1])
        return reply

    def ask(self, payload: bytes) -> "pb.Envelope | None":
        self.send(payload)
        return self.receive()

    def close(self) -> None:
        self.socket.close()


def answer(reply: "pb.Envelope | None", rows: int, actions: int, query_id: int):
    """(probabilities [rows, A], values [rows], q or None, reply) of a TeacherReply; raises on anything else."""
    if reply is None:
        raise AssertionError(f"no answer within {TIMEOUT_MS} ms")
    if reply.WhichOneof("body") != "teacher_reply":
        raise AssertionError(f"expected a teacher_reply, got {reply.WhichOneof('body')}: {reply}")
    r = reply.teacher_reply
    if r.query_id != query_id:
        raise AssertionError(f"query id {r.query_id}, sent {query_id}")
    if list(r.probabilities.shape) != [rows, actions] or len(r.values) != rows:
        raise AssertionError(f"shape {list(r.probabilities.shape)} and {len(r.values)} values for {rows} rows")
    p = np.array(r.probabilities.values, dtype=np.float64).reshape(rows, actions)
    q = np.array(r.q_values.values, dtype=np.float64).reshape(rows, actions) if r.q_values.values else None
    return p, np.array(r.values, dtype=np.float64), q, r


def difference(ours, theirs) -> float:
    """max |ours - theirs| / max(1, |theirs|) elementwise."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        raise AssertionError(f"shapes {ours.shape} and {theirs.shape}")
    return float((np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))).max()) if ours.size else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="the server to check")
    parser.add_argument("--expected", required=True, help="distill nn forward --teacher ... --observations ... output")
    parser.add_argument("--compare", help="another server of the same file: its answers must agree")
    parser.add_argument("--clients", type=int, default=4, help="DEALERs for the batching check and the benchmark")
    parser.add_argument("--fuzz", type=int, default=0, metavar="N", help="N corrupted queries, each must be answered")
    parser.add_argument("--bench-rounds", type=int, default=0, help="benchmark rounds (0: none)")
    parser.add_argument("--bench-rows", type=int, default=256, help="rows per benchmark query")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args()
    expected = json.load(open(args.expected))
    observations = np.array(expected["observations"], dtype=np.float64)
    rows = observations.shape[0]
    # nn forward prints each observation flattened; the wire carries [rows] + the observation shape.
    observations = observations.reshape([rows] + list(expected.get("observation_shape", observations.shape[1:])))
    want_p = np.array(expected["probabilities"], dtype=np.float64).reshape(rows, -1)
    actions = want_p.shape[1]
    want_v = np.array(expected["values"], dtype=np.float64)
    want_q = np.array(expected["action_values"], dtype=np.float64).reshape(rows, -1) if "action_values" in expected else None

    context = zmq.Context()
    failures, summary = 0, {"rows": rows}

    def report(name: str, problem: str | None, shown: str = "") -> None:
        nonlocal failures
        failures += problem is not None
        print(f"{'ok  ' if problem is None else 'FAIL'} {name:40} -> {problem or shown}", flush=True)

    def full_query(endpoint: str, query_id: int):
        client = Client(context, endpoint)
        try:
            return answer(client.ask(observation_query(observations, query_id)), rows, actions, query_id)
        finally:
            client.close()

    # 1. one query of every row against distill nn forward
    spec = None
    try:
        p, v, q, reply = full_query(args.endpoint, 100)
        errors = [difference(p, want_p), difference(v, want_v)]
        if (q is None) != (want_q is None):
            raise AssertionError(f"Q-values {'missing' if q is None else 'unexpected'}")
        if q is not None:
            errors.append(difference(q, want_q))
        error = max(errors)
        if error > args.tolerance:
            raise AssertionError(f"differs from distill nn forward by {error:.2e} (tolerance {args.tolerance})")
        spec = reply.environment_spec
        shape = list(observations.shape[1:])
        if not reply.HasField("environment_spec") or list(spec.observation_shape) != shape or spec.action_count != actions \
                or spec.observation_dtype != pb.DTYPE_FLOAT32 or not spec.name or reply.environment != spec.name:
            raise AssertionError(f"environment spec {spec} / environment {reply.environment!r} do not state {shape}, {actions}")
        if reply.cacheable:
            raise AssertionError("a network teacher's reply says cacheable")
        summary.update(max_difference_to_forward=error, teacher_id=reply.teacher_id, environment=reply.environment)
        report(f"{rows} observations vs nn forward", None,
               f"max relative difference {error:.2e}; spec {spec.name} {shape} actions={actions}; teacher {reply.teacher_id}")
        reference = (p, v, q)
    except AssertionError as problem:
        report(f"{rows} observations vs nn forward", str(problem))
        reference = None

    # 2. the rows split over several clients at once: batched together, each its own rows
    try:
        clients = [Client(context, args.endpoint) for _ in range(max(1, args.clients))]
        chunks = np.array_split(np.arange(rows), len(clients))
        for k, (client, chunk) in enumerate(zip(clients, chunks)):
            if len(chunk):
                client.send(observation_query(observations[chunk], 300 + k))
        worst = 0.0
        for k, (client, chunk) in enumerate(zip(clients, chunks)):
            if len(chunk):
                p, v, _, _ = answer(client.receive(), len(chunk), actions, 300 + k)
                worst = max(worst, difference(p, want_p[chunk]), difference(v, want_v[chunk]))
        for client in clients:
            client.close()
        if worst > args.tolerance:
            raise AssertionError(f"split answers differ by {worst:.2e}")
        report(f"split over {len(clients)} clients at once", None, f"each its own rows (max difference {worst:.2e})")
    except AssertionError as problem:
        report(f"split over {args.clients} clients at once", str(problem))

    # 3. bad queries
    codes = []
    for name, payload, code in bad_queries(observations):
        client = Client(context, args.endpoint)
        reply = client.ask(payload)
        client.close()
        if reply is None:
            problem, shown = f"no answer within {TIMEOUT_MS} ms", ""
        elif reply.WhichOneof("body") != "error":
            problem, shown = f"expected an Error, got {reply.WhichOneof('body')}", ""
        else:
            got = reply.error.code
            shown = f"{pb.Error.Code.Name(got)}: {reply.error.message}"
            problem = None if got == code else f"expected {pb.Error.Code.Name(code)}, got {shown}"
        codes.append(reply.error.code if reply is not None and reply.WhichOneof("body") == "error" else None)
        report(name, problem, shown)
    if args.fuzz > 0:
        rng = random.Random(1)
        valid = observation_query(observations[:4], 200)
        client = Client(context, args.endpoint)
        answered = 0
        for _ in range(args.fuzz):
            data = bytearray(valid)
            kind = rng.randrange(3)
            if kind == 0:
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            elif kind == 1:
                del data[rng.randrange(1, len(data)) :]
            else:
                at = rng.randrange(len(data))
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            client.send(bytes(data))
        while answered < args.fuzz and client.socket.poll(TIMEOUT_MS):
            client.socket.recv()
            answered += 1
        client.close()
        report(f"{args.fuzz} corrupted queries", None if answered == args.fuzz else f"only {answered} answered",
               "each answered (TeacherReply or Error)")
    try:
        p, v, _, _ = full_query(args.endpoint, 101)
        worst = max(difference(p, want_p), difference(v, want_v))
        report("a valid query after the bad ones", None if worst <= args.tolerance else f"differs by {worst:.2e}",
               "TeacherReply, same numbers")
    except AssertionError as problem:
        report("a valid query after the bad ones", str(problem))

    # 4. the other server
    if args.compare:
        try:
            p2, v2, q2, reply2 = full_query(args.compare, 100)
            if reference is None:
                raise AssertionError("the checked server gave no reference answer")
            p, v, q = reference
            errors = [difference(p, p2), difference(v, v2)]
            if (q is None) != (q2 is None):
                raise AssertionError("one server sends Q-values, the other does not")
            if q is not None:
                errors.append(difference(q, q2))
            if reply2.environment_spec != spec or reply2.environment != summary.get("environment"):
                raise AssertionError(f"the spec differs: {reply2.environment_spec} / {reply2.environment!r}")
            summary["max_difference_between_servers"] = max(errors)
            summary["other_teacher_id"] = reply2.teacher_id
            problem = None if max(errors) <= args.tolerance else f"the servers differ by {max(errors):.2e}"
            report("the other server, same observations", problem,
                   f"max relative difference {max(errors):.2e}, same spec; its teacher {reply2.teacher_id}")
        except AssertionError as problem:
            report("the other server, same observations", str(problem))
        other = []
        for name, payload, _ in bad_queries(observations):
            client = Client(context, args.compare)
            reply = client.ask(payload)
            client.close()
            other.append(reply.error.code if reply is not None and reply.WhichOneof("body") == "error" else None)
        differ = [name for (name, _, _), a, b in zip(bad_queries(observations), codes, other) if a != b]
        report("the other server's error codes", f"differ for: {', '.join(differ)}" if differ else None,
               f"the same for all {len(codes)} bad queries")

    # 5. throughput
    if args.bench_rounds > 0:
        rng = np.random.default_rng(1)
        shape = observations.shape[1:]
        clients = [Client(context, args.endpoint) for _ in range(max(1, args.clients))]
        batch = rng.uniform(-1, 1, size=(args.bench_rows, *shape))
        payloads = [observation_query(batch, 1000 + k) for k in range(len(clients))]
        started = time.perf_counter()
        try:
            for _ in range(args.bench_rounds):
                for client, payload in zip(clients, payloads):
                    client.send(payload)
                for k, client in enumerate(clients):
                    reply = client.receive()
                    if reply is None or reply.WhichOneof("body") != "teacher_reply":
                        raise AssertionError(f"benchmark: no TeacherReply ({reply})")
            seconds = time.perf_counter() - started
            total = args.bench_rounds * len(clients) * args.bench_rows
            summary.update(bench_observations_per_second=round(total / seconds), bench_ms_per_round=round(1000 * seconds / args.bench_rounds, 3))
            report(f"benchmark {len(clients)}x{args.bench_rows} rows x {args.bench_rounds}", None,
                   f"{total / seconds:,.0f} observations/s, {1000 * seconds / args.bench_rounds:.2f} ms per round")
        except AssertionError as problem:
            report("benchmark", str(problem))
        for client in clients:
            client.close()
    context.destroy(linger=0)  # closes any socket a failed check left open (term() would wait for it)
    summary["failures"] = failures
    print(json.dumps(summary))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
