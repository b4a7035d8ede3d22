#!/usr/bin/env python3
"""Checks a distill teacher server (the Python one or `distill teacher`) from the outside.

Sends one valid TeacherQuery and compares the reply with the teacher table, then a series of bad
messages, each of which must be answered with an Error of the expected code, and finally the valid
query again: the server must still answer it. Exits 0 when every check passes, 1 otherwise.

    check_server.py --endpoint tcp://127.0.0.1:6556 --table optimal.json

Run it with the virtual environment of ./run (it needs pyzmq and the generated distill_pb2):
    PYTHONPATH=.venv/distill-proto .venv/bin/python check_server.py ...
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys

import zmq

import distill_pb2 as pb

TIMEOUT_MS = 3000


def envelope(version: int = 2, nonce: int = 0x5EED, sender_id: str = "check-server", with_sender: bool = True):
    e = pb.Envelope(protocol_version=version)
    if with_sender:
        e.sender.role = pb.ROLE_TOOL
        e.sender.id = sender_id
        e.sender.run_nonce = nonce
    return e


def query(states, query_id: int, **kwargs) -> bytes:
    e = envelope(**kwargs)
    e.teacher_query.query_id = query_id
    e.teacher_query.state_ids.extend(states)
    return e.SerializeToString()


def bad_messages(state_count: int):
    """(name, frames, expected error code) for each malformed or unacceptable request."""
    heartbeat = envelope()
    heartbeat.heartbeat.sequence = 1
    features = envelope()
    features.teacher_query.query_id = 11
    features.teacher_query.features.shape.extend([1, 2])
    features.teacher_query.features.values.extend([0.5, 0.25])
    nan_features = envelope()
    nan_features.teacher_query.query_id = 12
    nan_features.teacher_query.features.shape.extend([1, 2])
    nan_features.teacher_query.features.values.extend([0.5, math.nan])
    neither = envelope()
    neither.teacher_query.query_id = 13
    # A sender id that is not UTF-8: serialize a placeholder of the same length, then swap bytes.
    bad_utf8 = query([0], 14, sender_id="ZZZZ").replace(b"ZZZZ", b"\xff\xfe\xfd\xfc")
    return [
        ("garbage bytes", [b"\xffthis is not protobuf\x00\x01"], pb.Error.CODE_MALFORMED),
        ("an empty frame", [b""], pb.Error.CODE_MALFORMED),
        ("two payload frames", [query([0], 1), query([0], 2)], pb.Error.CODE_MALFORMED),
        ("protocol version 1 (an old peer)", [query([0], 3, version=1)], pb.Error.CODE_UNSUPPORTED_VERSION),
        ("no protocol version", [query([0], 4, version=0)], pb.Error.CODE_UNSUPPORTED_VERSION),
        ("no sender", [query([0], 5, with_sender=False)], pb.Error.CODE_MALFORMED),
        ("run nonce 0", [query([0], 6, nonce=0)], pb.Error.CODE_MALFORMED),
        ("a sender id that is not UTF-8", [bad_utf8], pb.Error.CODE_MALFORMED),
        ("a Heartbeat (wrong type)", [heartbeat.SerializeToString()], pb.Error.CODE_UNEXPECTED_TYPE),
        ("a state id out of range", [query([0, state_count], 7)], pb.Error.CODE_INCOMPATIBLE),
        ("a negative state id", [query([-1], 8)], pb.Error.CODE_MALFORMED),
        ("a query without states", [neither.SerializeToString()], pb.Error.CODE_MALFORMED),
        ("feature observations", [features.SerializeToString()], pb.Error.CODE_INCOMPATIBLE),
        ("a NaN feature", [nan_features.SerializeToString()], pb.Error.CODE_MALFORMED),
    ]


def receive(socket) -> pb.Envelope | None:
    if not socket.poll(TIMEOUT_MS):
        return None
    reply = pb.Envelope()
    reply.ParseFromString(socket.recv_multipart()[-1])
    return reply


def check_reply(reply, table, states, query_id: int) -> str | None:
    """None when `reply` is the table's answer for `states`; else what is wrong."""
    if reply is None:
        return f"no answer within {TIMEOUT_MS} ms"
    if reply.WhichOneof("body") != "teacher_reply":
        return f"expected a teacher_reply, got {reply}"
    r = reply.teacher_reply
    actions = table["actionCount"]
    if r.query_id != query_id or list(r.probabilities.shape) != [len(states), actions]:
        return f"wrong query id or shape: {r.query_id}, {list(r.probabilities.shape)}"
    for row, state in enumerate(states):
        got = r.probabilities.values[row * actions : (row + 1) * actions]
        if any(abs(g - w) > 1e-6 for g, w in zip(got, table["policy"][state])):
            return f"probabilities of state {state} are {list(got)}, the table has {table['policy'][state]}"
        if abs(r.values[row] - table["values"][state]) > 1e-4 * max(1, abs(table["values"][state])):
            return f"value of state {state} is {r.values[row]}, the table has {table['values'][state]}"
    return None


def send_once(context, endpoint: str, frames):
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    socket.send_multipart(frames)
    reply = receive(socket)
    socket.close()
    return reply


def fuzz(context, endpoint: str, state_count: int, count: int) -> str | None:
    """Sends `count` corrupted queries (flipped bytes, truncations, insertions) over one socket;
    None when every one got an answer; else what went wrong."""
    rng = random.Random(1)
    valid = query(list(range(min(state_count, 16))), 200)
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    try:
        for _ in range(count):
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
            socket.send(bytes(data))
        for answered in range(count):
            if not socket.poll(TIMEOUT_MS):
                return f"only {answered} of {count} corrupted queries were answered"
            reply = pb.Envelope()
            reply.ParseFromString(socket.recv())
            if reply.WhichOneof("body") not in ("teacher_reply", "error"):
                return f"answered with {reply.WhichOneof('body')}"
    finally:
        socket.close()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="the teacher server, e.g. tcp://127.0.0.1:6556")
    parser.add_argument("--table", required=True, help="the teacher file the server serves")
    parser.add_argument(
        "--fuzz", type=int, default=0, metavar="N",
        help="also send N corrupted copies of a valid query (seeded); each must be answered",
    )
    args = parser.parse_args()
    with open(args.table) as handle:
        table = json.load(handle)
    states = [0, table["stateCount"] - 1, table["stateCount"] // 2]
    context = zmq.Context()
    failures = 0
    checks = len(bad_messages(1)) + 2 + (2 if args.fuzz > 0 else 0)
    try:
        for step, (name, frames, code) in enumerate(
            [("a valid query", [query(states, 100)], None)]
            + bad_messages(table["stateCount"])
            + [("a valid query after the bad ones", [query(states, 101)], None)]
        ):
            # A fresh DEALER per check, so that a reply can only belong to this check.
            socket = context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.connect(args.endpoint)
            socket.send_multipart(frames)
            reply = receive(socket)
            socket.close()
            if code is None:
                problem = check_reply(reply, table, states, 100 if step == 0 else 101)
                shown = "TeacherReply" if problem is None else problem
            elif reply is None:
                problem, shown = f"no answer within {TIMEOUT_MS} ms", ""
            elif reply.WhichOneof("body") != "error":
                problem, shown = f"expected an Error, got {reply.WhichOneof('body')}", ""
            else:
                got = reply.error.code
                shown = f"{pb.Error.Code.Name(got)}: {reply.error.message}"
                problem = None if got == code else f"expected {pb.Error.Code.Name(code)}, got {shown}"
            failures += problem is not None
            print(f"{'ok  ' if problem is None else 'FAIL'} {name:34} -> {shown if problem is None else problem}")
        if args.fuzz > 0:
            problem = fuzz(context, args.endpoint, table["stateCount"], args.fuzz)
            failures += problem is not None
            print(f"{'ok  ' if problem is None else 'FAIL'} {f'{args.fuzz} corrupted queries':34} -> {problem or 'each answered (TeacherReply or Error)'}")
            problem = check_reply(send_once(context, args.endpoint, [query(states, 102)]), table, states, 102)
            failures += problem is not None
            print(f"{'ok  ' if problem is None else 'FAIL'} {'a valid query after the fuzzing':34} -> {problem or 'TeacherReply'}")
    finally:
        context.term()
    print(f"check_server: {failures} of {checks} checks failed" if failures else f"check_server: all {checks} checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
