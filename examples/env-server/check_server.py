#!/usr/bin/env python3
"""Checks a remote environment server (env_server.py, or another one) from the outside.

Sends DESCRIBE, OPEN, RESET and STEP and checks the answers' shapes; then a series of bad
messages (garbage bytes, a wrong protocol version, no sender, a foreign message type, a request
without id or command, unknown and unopened indices, an action out of range, a step before any
reset, mismatched counts, and 300 corrupted copies of a valid request), each of which must be
answered with an Error (of the expected code where the check names one) within the timeout; and
finally a valid STEP again: the server must still work. Also checks that a second client cannot
step the first one's environments. Exits 0 when every check passes, 1 otherwise.

    check_server.py --endpoint tcp://127.0.0.1:5560

Run it with the virtual environment of ./run (it needs pyzmq and the generated distill_pb2):
    PYTHONPATH=.venv/distill-proto .venv/bin/python check_server.py ...
"""

from __future__ import annotations

import argparse
import random
import sys

import zmq

import distill_pb2 as pb

TIMEOUT_MS = 5000
R = pb.EnvironmentRequest


class Client:
    def __init__(self, context, endpoint: str, name: str):
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTING_ID, name.encode())
        self.socket.connect(endpoint)
        self.next_id = 1

    def raw(self, payload: bytes) -> "pb.Envelope | None":
        self.socket.send(payload)
        if not self.socket.poll(TIMEOUT_MS):
            return None
        reply = pb.Envelope()
        reply.ParseFromString(self.socket.recv())
        return reply

    def envelope(self, version: int = 2, with_sender: bool = True) -> "pb.Envelope":
        e = pb.Envelope(protocol_version=version)
        if with_sender:
            e.sender.role = pb.ROLE_TOOL
            e.sender.id = "check-server"
            e.sender.run_nonce = 0x5EED
        return e

    def request(self, command: int, **fields) -> "pb.Envelope | None":
        e = self.envelope()
        e.environment_request.request_id = fields.pop("request_id", self.next_id)
        e.environment_request.command = command
        for name, value in fields.items():
            field = getattr(e.environment_request, name)
            if isinstance(value, list):
                field.extend(value)
            else:
                setattr(e.environment_request, name, value)
        self.next_id += 1
        return self.raw(e.SerializeToString())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    context = zmq.Context()
    client = Client(context, args.endpoint, "check-a")
    other = Client(context, args.endpoint, "check-b")
    failures = []

    def check(condition: bool, what: str) -> None:
        print(("ok   " if condition else "FAIL ") + what, file=sys.stderr)
        if not condition:
            failures.append(what)

    def expect_error(reply, code, what: str) -> None:
        if reply is None:
            check(False, f"{what}: no answer within {TIMEOUT_MS} ms")
        elif reply.WhichOneof("body") != "error":
            check(False, f"{what}: answered {reply.WhichOneof('body')}, expected an Error")
        else:
            name = pb.Error.Code.Name(reply.error.code)
            check(code is None or reply.error.code == code, f"{what}: {name}: {reply.error.message}")

    described = client.request(R.COMMAND_DESCRIBE)
    check(described is not None and described.WhichOneof("body") == "environment_reply", "DESCRIBE is answered")
    if failures:
        return 1
    d = described.environment_reply.description
    shape = list(d.spec.observation_shape)
    check(d.spec.action_count >= 1 and len(shape) >= 1 and d.capacity >= 2, f"description: {d.spec} capacity {d.capacity}")
    opened = client.request(R.COMMAND_OPEN, count=2)
    indices = list(opened.environment_reply.environments) if opened and opened.HasField("environment_reply") else []
    check(len(indices) == 2, f"OPEN 2 gives two indices: {indices}")
    if failures:
        return 1
    expect_error(client.request(R.COMMAND_STEP, environments=indices[:1], actions=[0]), pb.Error.CODE_MALFORMED, "STEP before any RESET")
    reset = client.request(R.COMMAND_RESET, environments=indices, seeds=[1, 2])
    obs = reset.environment_reply.observations if reset and reset.HasField("environment_reply") else None
    check(obs is not None and list(obs.shape) == [2, *shape], f"RESET 2 gives observations of shape [2, {shape}]")
    step = client.request(R.COMMAND_STEP, environments=indices, actions=[0, d.spec.action_count - 1])
    ok = step is not None and step.HasField("environment_reply")
    check(
        ok and len(step.environment_reply.rewards) == 2 and len(step.environment_reply.terminated) == 2
        and list(step.environment_reply.observations.shape) == [2, *shape],
        "STEP 2 gives two observations, rewards and flags",
    )

    valid = client.envelope()
    valid.environment_request.request_id = 999
    valid.environment_request.command = R.COMMAND_STEP
    valid.environment_request.environments.extend(indices[:1])
    valid.environment_request.actions.append(0)
    valid_bytes = valid.SerializeToString()

    expect_error(client.raw(b"\xff\x00garbage"), pb.Error.CODE_MALFORMED, "garbage bytes")
    expect_error(client.raw(b""), pb.Error.CODE_MALFORMED, "an empty frame")
    bad = pb.Envelope()
    bad.CopyFrom(valid)
    bad.protocol_version = 1
    expect_error(client.raw(bad.SerializeToString()), pb.Error.CODE_UNSUPPORTED_VERSION, "protocol version 1")
    bad.protocol_version = 0
    expect_error(client.raw(bad.SerializeToString()), pb.Error.CODE_UNSUPPORTED_VERSION, "no protocol version")
    bad = client.envelope(with_sender=False)
    bad.environment_request.CopyFrom(valid.environment_request)
    expect_error(client.raw(bad.SerializeToString()), pb.Error.CODE_MALFORMED, "no sender")
    foreign = client.envelope()
    foreign.teacher_query.query_id = 5
    foreign.teacher_query.state_ids.append(0)
    expect_error(client.raw(foreign.SerializeToString()), pb.Error.CODE_UNEXPECTED_TYPE, "a TeacherQuery")
    expect_error(client.raw(client.envelope().SerializeToString()), pb.Error.CODE_UNEXPECTED_TYPE, "an envelope with no body")
    expect_error(client.request(R.COMMAND_DESCRIBE, request_id=0), pb.Error.CODE_MALFORMED, "request_id 0")
    expect_error(client.request(R.COMMAND_UNSPECIFIED), pb.Error.CODE_MALFORMED, "no command")
    expect_error(client.request(R.COMMAND_OPEN, count=0), pb.Error.CODE_MALFORMED, "OPEN 0")
    expect_error(client.request(R.COMMAND_OPEN, count=65_536), pb.Error.CODE_UNAVAILABLE, "OPEN beyond the capacity")
    expect_error(client.request(R.COMMAND_RESET, environments=[]), pb.Error.CODE_MALFORMED, "RESET of nothing")
    expect_error(client.request(R.COMMAND_RESET, environments=[indices[0], indices[0]]), pb.Error.CODE_MALFORMED, "an index twice")
    expect_error(client.request(R.COMMAND_RESET, environments=[4_000_000]), pb.Error.CODE_INCOMPATIBLE, "an unknown index")
    expect_error(client.request(R.COMMAND_RESET, environments=indices, seeds=[1]), pb.Error.CODE_MALFORMED, "one seed for two")
    expect_error(client.request(R.COMMAND_STEP, environments=indices, actions=[0]), pb.Error.CODE_MALFORMED, "one action for two")
    expect_error(
        client.request(R.COMMAND_STEP, environments=indices[:1], actions=[d.spec.action_count]),
        pb.Error.CODE_MALFORMED, "an action out of range",
    )
    expect_error(client.request(R.COMMAND_STEP, environments=indices[:1], actions=[-1]), pb.Error.CODE_MALFORMED, "a negative action")
    expect_error(other.request(R.COMMAND_STEP, environments=indices[:1], actions=[0]), pb.Error.CODE_INCOMPATIBLE, "another client's environment")

    rng = random.Random(61)
    unanswered = 0
    for _ in range(300):
        corrupted = bytearray(valid_bytes)
        for _ in range(rng.randint(1, 4)):
            corrupted[rng.randrange(len(corrupted))] = rng.randrange(256)
        if rng.random() < 0.3:
            corrupted = corrupted[: rng.randrange(len(corrupted))]
        reply = client.raw(bytes(corrupted))
        unanswered += reply is None
    check(unanswered == 0, f"300 corrupted requests all answered ({unanswered} not)")

    again = client.raw(valid_bytes)
    check(
        again is not None and again.WhichOneof("body") == "environment_reply" and again.environment_reply.request_id == 999,
        "a valid STEP still works after all that",
    )
    closed = client.request(R.COMMAND_CLOSE, environments=indices)
    check(closed is not None and closed.WhichOneof("body") == "environment_reply", "CLOSE is answered")
    expect_error(client.request(R.COMMAND_STEP, environments=indices[:1], actions=[0]), pb.Error.CODE_INCOMPATIBLE, "STEP after CLOSE")
    print(f"check_server: {len(failures)} failures", file=sys.stderr)
    context.destroy(linger=0)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
