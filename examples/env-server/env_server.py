#!/usr/bin/env python3
"""A remote environment server for distill: gymnasium environments behind the wire protocol.

`distill train --env remote:tcp://HOST:PORT --student mlp:64,64` trains on environments this
server hosts, so that MinAtar, Atari (ale-py), MiniGrid or a user's own environment run in the
user's Python installation and none of their code is part of distill.

It speaks proto/distill.proto (docs/remote-environments.md describes the messages):

- one ZeroMQ ROUTER socket; every request is [routing id, Envelope] from a client's DEALER;
- an Envelope carries protocol_version 2, the sender (role, id, non-zero run nonce) and one
  body; this server takes EnvironmentRequest bodies only and answers each with one
  EnvironmentReply (request_id echoed) or one Error (in_reply_to = request_id);
- DESCRIBE: the environment's name, observation shape and dtype, action count, time limit,
  declared reward range, internal state size and the server's capacity;
- OPEN n: reserves n of the --envs environments for this client (made with gymnasium.make on
  first use, then reused); CLOSE gives them back; RESET and STEP take a batch of (environment,
  seed) or (environment, action) pairs and answer with one observation per environment
  ([n] + shape, float32 or uint8), and for STEP the rewards and terminated/truncated flags;
  environments that expose their internal state as numbers (classic control's
  env.unwrapped.state) report it after every reset and step;
- anything else (garbage bytes, a wrong version, a foreign message, an index that is not open,
  an action out of range, an environment that raises) gets an Error with a message that says what
  was wrong, and the server goes on.

Only discrete action spaces and Box or MultiBinary observation spaces are served; the server
refuses anything else at start, naming the space and what to do.

Run it through ./run (beside this file), which makes the virtual environment (gymnasium, pyzmq,
protobuf, numpy) and generates distill_pb2 from proto/distill.proto.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import secrets
import signal
import sys
import time

try:
    import gymnasium as gym
    import numpy as np
    import zmq
    from google.protobuf.message import DecodeError

    import distill_pb2 as pb
except ImportError as error:  # pragma: no cover - only without the venv
    sys.exit(
        f"env_server.py: {error}. Start it with examples/env-server/run, which creates the virtual "
        "environment (gymnasium, pyzmq, protobuf, numpy) and generates distill_pb2 from proto/distill.proto."
    )

PROTOCOL_VERSION = 2
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20  # as WireCodec.defaultMaxMessageBytes
MAX_OBSERVATION_ELEMENTS = 16 << 20  # as WireCodec.maxObservationElements
MAX_ENVIRONMENTS_PER_MESSAGE = 65_536  # as WireCodec.maxEnvironmentsPerMessage
MAX_STATE_SIZE = 4096
FLOAT32_MAX = float(np.finfo(np.float32).max)

log = logging.getLogger("env-server")


class SpaceError(Exception):
    """An environment this server cannot host; the message says which space and what to do."""


class Rejection(Exception):
    """A request that gets an Error reply instead of an EnvironmentReply."""

    def __init__(self, code: int, message: str, in_reply_to: int = 0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.in_reply_to = in_reply_to


class Observations:
    """How observations of one space travel: the shape of one observation and its wire dtype."""

    def __init__(self, space):
        if isinstance(space, gym.spaces.MultiBinary):
            self.shape = tuple(int(n) for n in np.atleast_1d(space.n))
            self.dtype = pb.DTYPE_UINT8
            self.numpy = np.uint8
        elif isinstance(space, gym.spaces.Box):
            self.shape = tuple(int(n) for n in space.shape) or (1,)
            if space.dtype in (np.uint8, np.bool_):  # pixels; MinAtar's boolean channels as 0/1
                self.dtype, self.numpy = pb.DTYPE_UINT8, np.uint8
            else:
                self.dtype, self.numpy = pb.DTYPE_FLOAT32, np.float32
        else:
            hint = (
                "wrap it, e.g. --wrapper gymnasium.wrappers:FlattenObservation for Dict/Tuple/Discrete observations"
                if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple, gym.spaces.Discrete))
                else "wrap it so that it gives a Box or MultiBinary observation"
            )
            raise SpaceError(
                f"the observation space {space} is not served: only Box (float or uint8) and MultiBinary "
                f"observations are; {hint}, or register a wrapped id of your own"
            )
        if not self.shape or any(n < 1 for n in self.shape) or len(self.shape) > 7:
            raise SpaceError(f"the observation shape {self.shape} is not served: 1 to 7 extents, each >= 1")
        self.size = int(np.prod(self.shape))
        if self.size > MAX_OBSERVATION_ELEMENTS:
            raise SpaceError(f"an observation of {self.size} elements is larger than the protocol's limit")

    def pack(self, observations: list, environments: list[int]) -> "pb.ObservationTensor":
        rows = []
        for index, observation in zip(environments, observations):
            array = np.asarray(observation)
            if array.size != self.size:
                raise Rejection(
                    pb.Error.CODE_INCOMPATIBLE,
                    f"environment {index} gave an observation of {array.size} elements, its space declares "
                    f"{self.shape}",
                )
            if self.numpy is np.float32:
                as_float = array.astype(np.float64, copy=False).reshape(-1)
                if not np.all(np.isfinite(as_float)) or np.any(np.abs(as_float) > FLOAT32_MAX):
                    raise Rejection(
                        pb.Error.CODE_INCOMPATIBLE,
                        f"environment {index} gave an observation that is not finite in float32: {as_float.tolist()[:8]}",
                    )
            rows.append(array.reshape(self.shape).astype(self.numpy, copy=False))
        data = np.ascontiguousarray(np.stack(rows))
        if self.numpy is np.float32:
            data = data.astype("<f4", copy=False)
        return pb.ObservationTensor(dtype=self.dtype, shape=[len(rows), *self.shape], data=data.tobytes())


def discrete_actions(space) -> tuple[int, int]:
    """(count, start) of a discrete action space, or a SpaceError."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n), int(space.start)
    raise SpaceError(
        f"the action space {space} is not served: distill's students choose among discrete actions "
        "(gymnasium.spaces.Discrete); continuous (Box) or MultiDiscrete actions need a discretising wrapper"
    )


def read_state(env) -> "np.ndarray | None":
    """The environment's internal state as float64 numbers (env.unwrapped.state), or None."""
    state = getattr(env.unwrapped, "state", None)
    if state is None:
        return None
    try:
        array = np.asarray(state, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    return array if 0 < array.size <= MAX_STATE_SIZE else None


class EnvironmentHost:
    """Up to `capacity` environments of one id, reserved by clients and stepped in batches."""

    def __init__(self, make, env_id: str, capacity: int, with_state: bool, reward_range, reclaim_after: float):
        self.make = make
        self.capacity = capacity
        self.reclaim_after = reclaim_after
        first = make()
        self.observations = Observations(first.observation_space)
        self.action_count, self.action_start = discrete_actions(first.action_space)
        self.name = env_id
        spec = getattr(first, "spec", None)
        self.max_episode_steps = int(spec.max_episode_steps) if spec and spec.max_episode_steps else 0
        if reward_range is None:
            declared = getattr(first.unwrapped, "reward_range", None)
            if declared is not None and all(math.isfinite(float(x)) for x in declared):
                reward_range = (float(declared[0]), float(declared[1]))
        self.reward_range = reward_range
        first.reset(seed=0)
        state = read_state(first) if with_state else None
        self.state_size = 0 if state is None else int(state.size)
        entry = getattr(spec, "entry_point", None) if spec else None
        entry = entry if isinstance(entry, str) else type(first.unwrapped).__name__
        self.source = f"gymnasium {gym.__version__}: {env_id} ({entry})"
        self.environments: dict[int, object] = {0: first}
        self.started: set[int] = set()  # environments reset at least once since they were opened
        self.owner: dict[int, bytes] = {}
        self.last_seen: dict[bytes, float] = {}
        self.steps = 0
        self.resets = 0

    # -- requests --------------------------------------------------------------------------------

    def description(self) -> "pb.RemoteEnvironmentDescription":
        d = pb.RemoteEnvironmentDescription(
            spec=pb.EnvironmentSpec(
                name=self.name,
                observation_shape=list(self.observations.shape),
                observation_dtype=self.observations.dtype,
                action_count=self.action_count,
            ),
            max_episode_steps=self.max_episode_steps,
            state_size=self.state_size,
            capacity=self.capacity,
            source=self.source,
        )
        if self.reward_range is not None:
            d.has_reward_range = True
            d.reward_min, d.reward_max = self.reward_range
        return d

    def open(self, client: bytes, count: int, request_id: int) -> list[int]:
        free = [i for i in range(self.capacity) if i not in self.owner]
        if len(free) < count:
            self._reclaim(client)
            free = [i for i in range(self.capacity) if i not in self.owner]
        if len(free) < count:
            clients = len(set(self.owner.values()))
            raise Rejection(
                pb.Error.CODE_UNAVAILABLE,
                f"{count} environments asked, {len(free)} of {self.capacity} free ({len(self.owner)} open by "
                f"{clients} clients): start the server with a larger --envs (a training run needs its "
                "--environments plus its --evaluation-episodes)",
                request_id,
            )
        opened = free[:count]
        for index in opened:
            if index not in self.environments:
                try:
                    self.environments[index] = self.make()
                except Exception as error:  # the user's environment code
                    raise Rejection(
                        pb.Error.CODE_UNAVAILABLE, f"gymnasium.make failed for environment {index}: {error}", request_id
                    ) from None
            self.owner[index] = client
            self.started.discard(index)
        return opened

    def close(self, client: bytes, indices: list[int], request_id: int) -> None:
        self._check_owned(client, indices, request_id)
        for index in indices:
            del self.owner[index]
            self.started.discard(index)

    def reset(self, client: bytes, indices: list[int], seeds: list[int], request_id: int):
        self._check_owned(client, indices, request_id)
        observations, states = [], []
        for k, index in enumerate(indices):
            seed = int(seeds[k]) if seeds else None
            try:
                observation, _ = self.environments[index].reset(seed=seed)
            except Exception as error:
                raise Rejection(
                    pb.Error.CODE_INCOMPATIBLE, f"environment {index} raised in reset: {error!r}", request_id
                ) from None
            self.started.add(index)
            observations.append(observation)
            states.append(self._state(index, request_id))
        self.resets += len(indices)
        return observations, states

    def step(self, client: bytes, indices: list[int], actions: list[int], request_id: int):
        self._check_owned(client, indices, request_id)
        for index, action in zip(indices, actions):
            if not 0 <= action < self.action_count:
                raise Rejection(
                    pb.Error.CODE_MALFORMED,
                    f"action {action} for environment {index} is out of range: {self.name} has actions "
                    f"0..{self.action_count - 1}",
                    request_id,
                )
            if index not in self.started:
                raise Rejection(
                    pb.Error.CODE_MALFORMED, f"environment {index} has not been reset since it was opened", request_id
                )
        observations, rewards, terminated, truncated, states = [], [], [], [], []
        for index, action in zip(indices, actions):
            try:
                observation, reward, term, trunc, _ = self.environments[index].step(action + self.action_start)
            except Exception as error:
                raise Rejection(
                    pb.Error.CODE_INCOMPATIBLE, f"environment {index} raised in step: {error!r}", request_id
                ) from None
            reward = float(reward)
            if not math.isfinite(reward):
                raise Rejection(
                    pb.Error.CODE_INCOMPATIBLE, f"environment {index} gave the reward {reward}, not finite", request_id
                )
            observations.append(observation)
            rewards.append(reward)
            terminated.append(bool(term))
            truncated.append(bool(trunc))
            states.append(self._state(index, request_id))
        self.steps += len(indices)
        return observations, rewards, terminated, truncated, states

    # -- helpers ---------------------------------------------------------------------------------

    def touch(self, client: bytes) -> None:
        self.last_seen[client] = time.monotonic()

    def _check_owned(self, client: bytes, indices: list[int], request_id: int) -> None:
        for index in indices:
            if self.owner.get(index) != client:
                state = "open by another client" if index in self.owner else "not open"
                raise Rejection(
                    pb.Error.CODE_INCOMPATIBLE,
                    f"environment {index} is {state}: OPEN environments first and use the indices of the reply",
                    request_id,
                )

    def _reclaim(self, asking: bytes) -> None:
        """Frees the environments of clients silent for more than reclaim_after seconds."""
        now = time.monotonic()
        for index, client in list(self.owner.items()):
            if client != asking and now - self.last_seen.get(client, 0.0) > self.reclaim_after:
                log.info("reclaiming environment %d of a client silent for %.0f s", index, now - self.last_seen.get(client, 0.0))
                del self.owner[index]
                self.started.discard(index)

    def _state(self, index: int, request_id: int) -> "np.ndarray | None":
        if self.state_size == 0:
            return None
        state = read_state(self.environments[index])
        if state is None or state.size != self.state_size or not np.all(np.isfinite(state)):
            raise Rejection(
                pb.Error.CODE_INCOMPATIBLE,
                f"environment {index} state is not {self.state_size} finite numbers any more (start the server "
                "with --no-state)",
                request_id,
            )
        return state


class EnvironmentServer:
    """Reads envelopes, answers them; never raises on what a client sends."""

    def __init__(self, host: EnvironmentHost, server_id: str, max_message_bytes: int):
        self.host = host
        self.max_message_bytes = max_message_bytes
        self.sender = pb.Sender(role=pb.ROLE_TOOL, id=server_id, run_nonce=secrets.randbits(64) or 1)
        self.stop_reason = ""
        self.requests = 0
        self.rejected: dict[str, int] = {}

    def handle(self, frames: list[bytes]) -> list[bytes]:
        """The reply frames for one received message (routing id first)."""
        routing, payload = frames[0], frames[-1]
        try:
            reply = self._answer(routing, frames)
        except Rejection as rejection:
            name = pb.Error.Code.Name(rejection.code)
            self.rejected[name] = self.rejected.get(name, 0) + 1
            if sum(self.rejected.values()) <= 20:
                log.warning("rejected a request (%s): %s", name, rejection.message)
            reply = self._error(rejection.code, rejection.message, rejection.in_reply_to)
        except Exception as error:  # a bug of ours must not take the server down
            log.exception("internal error while answering a request")
            reply = self._error(pb.Error.CODE_UNAVAILABLE, f"internal error of the environment server: {error}", 0)
        # A REQ client puts an empty delimiter frame before the envelope: give it back.
        return [routing, *frames[1:-1], reply] if len(frames) > 2 else [routing, reply]

    def _answer(self, routing: bytes, frames: list[bytes]) -> bytes:
        payload = frames[-1]
        if len(frames) < 2 or len(frames) > 3 or (len(frames) == 3 and frames[1] != b""):
            raise Rejection(pb.Error.CODE_MALFORMED, f"expected one Envelope frame, got {len(frames) - 1} frames")
        if len(payload) > self.max_message_bytes:
            raise Rejection(pb.Error.CODE_TOO_LARGE, f"message of {len(payload)} bytes exceeds {self.max_message_bytes}")
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
                f"{PROTOCOL_VERSION})",
            )
        self._check_sender(envelope)
        body = envelope.WhichOneof("body")
        if body != "environment_request":
            raise Rejection(
                pb.Error.CODE_UNEXPECTED_TYPE,
                f"expected EnvironmentRequest, got {body or 'no body'}: this is an environment server; is the "
                "client connected to the right endpoint?",
            )
        request = envelope.environment_request
        if request.request_id == 0:
            raise Rejection(pb.Error.CODE_MALFORMED, "EnvironmentRequest.request_id is 0")
        self.requests += 1
        self.host.touch(routing)
        reply = self._reply(request.request_id)
        answer = reply.environment_reply
        command = request.command
        indices = list(request.environments)
        rid = request.request_id
        if command == pb.EnvironmentRequest.COMMAND_DESCRIBE:
            answer.description.CopyFrom(self.host.description())
        elif command == pb.EnvironmentRequest.COMMAND_OPEN:
            if not 1 <= request.count <= MAX_ENVIRONMENTS_PER_MESSAGE:
                raise Rejection(pb.Error.CODE_MALFORMED, f"OPEN count is {request.count}, expected at least 1", rid)
            answer.environments.extend(self.host.open(routing, request.count, rid))
            answer.description.CopyFrom(self.host.description())
        elif command in (
            pb.EnvironmentRequest.COMMAND_RESET,
            pb.EnvironmentRequest.COMMAND_STEP,
            pb.EnvironmentRequest.COMMAND_CLOSE,
        ):
            self._check_indices(indices, rid)
            if command == pb.EnvironmentRequest.COMMAND_CLOSE:
                self.host.close(routing, indices, rid)
            elif command == pb.EnvironmentRequest.COMMAND_RESET:
                seeds = list(request.seeds)
                if seeds and len(seeds) != len(indices):
                    raise Rejection(
                        pb.Error.CODE_MALFORMED, f"{len(seeds)} seeds for {len(indices)} environments (one each, or none)", rid
                    )
                observations, states = self.host.reset(routing, indices, seeds, rid)
                self._fill(answer, indices, observations, states)
            else:
                actions = list(request.actions)
                if len(actions) != len(indices):
                    raise Rejection(
                        pb.Error.CODE_MALFORMED, f"{len(actions)} actions for {len(indices)} environments", rid
                    )
                observations, rewards, terminated, truncated, states = self.host.step(routing, indices, actions, rid)
                self._fill(answer, indices, observations, states)
                answer.rewards.extend(rewards)
                answer.terminated.extend(terminated)
                answer.truncated.extend(truncated)
        else:
            raise Rejection(pb.Error.CODE_MALFORMED, f"EnvironmentRequest.command {command} is not a known command", rid)
        return reply.SerializeToString()

    def _fill(self, answer, indices, observations, states) -> None:
        answer.environments.extend(indices)
        answer.observations.CopyFrom(self.host.observations.pack(observations, indices))
        if self.host.state_size:
            answer.states.extend(float(x) for state in states for x in state)

    @staticmethod
    def _check_indices(indices: list[int], request_id: int) -> None:
        if not 1 <= len(indices) <= MAX_ENVIRONMENTS_PER_MESSAGE:
            raise Rejection(pb.Error.CODE_MALFORMED, f"the request names {len(indices)} environments", request_id)
        if len(set(indices)) != len(indices):
            raise Rejection(pb.Error.CODE_MALFORMED, "the request names an environment twice", request_id)

    @staticmethod
    def _check_sender(envelope: "pb.Envelope") -> None:
        if not envelope.HasField("sender"):
            raise Rejection(pb.Error.CODE_MALFORMED, "Envelope.sender is missing")
        sender = envelope.sender
        if sender.role not in pb.Role.values() or sender.role == pb.ROLE_UNSPECIFIED:
            raise Rejection(pb.Error.CODE_MALFORMED, f"Sender.role {sender.role} is not a known role")
        if not 1 <= len(sender.id.encode("utf-8")) <= 128:
            raise Rejection(pb.Error.CODE_MALFORMED, "Sender.id must be 1 to 128 bytes")
        if sender.run_nonce == 0:
            raise Rejection(pb.Error.CODE_MALFORMED, "Sender.run_nonce is 0 (missing)")

    def _reply(self, request_id: int) -> "pb.Envelope":
        envelope = pb.Envelope(protocol_version=PROTOCOL_VERSION, sender=self.sender)
        envelope.environment_reply.request_id = request_id
        return envelope

    def _error(self, code: int, message: str, in_reply_to: int) -> bytes:
        envelope = pb.Envelope(protocol_version=PROTOCOL_VERSION, sender=self.sender)
        envelope.error.code = code
        envelope.error.message = message
        envelope.error.in_reply_to = in_reply_to
        return envelope.SerializeToString()

    def serve(self, bind: str) -> None:
        context = zmq.Context()
        router = context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 200)  # never hang on close with unsent replies
        router.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
        try:
            router.bind(bind)
        except zmq.ZMQError as error:
            router.close(0)
            context.term()
            raise SystemExit(
                f"env_server.py: cannot bind {bind}: {error.strerror}. Use an endpoint like tcp://*:5560 or "
                "tcp://127.0.0.1:0 (0 picks a free port), on a port nobody else uses."
            ) from None
        endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        print(f"endpoint environments {endpoint}", flush=True)  # as every distill role announces itself
        h = self.host
        log.info(
            "environment server ready: endpoint=%s env=%s observation=%s %s actions=%d time_limit=%s state_size=%d "
            "capacity=%d",
            endpoint, h.name, list(h.observations.shape), pb.DType.Name(h.observations.dtype), h.action_count,
            h.max_episode_steps or "none", h.state_size, h.capacity,
        )
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        try:
            while not self.stop_reason:
                if not poller.poll(100):
                    continue
                while True:
                    try:
                        frames = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        # ROUTER drops replies to peers that left; a client times out on its own.
                        router.send_multipart(self.handle(frames), zmq.NOBLOCK)
                    except zmq.ZMQError as error:
                        log.debug("could not send a reply: %s", error)
        finally:
            log.info(
                "environment server stopping (%s): requests=%d resets=%d steps=%d rejected=%s",
                self.stop_reason or "error", self.requests, h.resets, h.steps, self.rejected or "none",
            )
            router.close()
            context.term()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="env_server.py",
        description=(
            "Hosts gymnasium environments (discrete actions; Box or MultiBinary observations) for distill: "
            "distill train --env remote:ENDPOINT trains on them."
        ),
        epilog=(
            "examples:\n"
            "  run --env CartPole-v1 --envs 64 --bind tcp://127.0.0.1:5560\n"
            "  run --import example_envs --env distill-examples/Lights-v0 --bind tcp://127.0.0.1:0\n"
            "  run --import minatar --env MinAtar/Breakout-v1 --envs 32 --bind tcp://*:5560\n"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", required=True, help="a registered gymnasium id, e.g. CartPole-v1")
    parser.add_argument("--envs", type=int, default=64, help="the most environments hosted at once (default 64)")
    parser.add_argument("--bind", default="tcp://127.0.0.1:5560", help="ZeroMQ endpoint (default tcp://127.0.0.1:5560)")
    parser.add_argument(
        "--make-kwargs", default="{}", metavar="JSON", help="keyword arguments of gymnasium.make, as a JSON object"
    )
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE",
        help="import MODULE first (it registers its environments with gymnasium); repeatable",
    )
    parser.add_argument(
        "--wrapper", action="append", default=[], metavar="MODULE:CLASS",
        help="wrap each environment, e.g. gymnasium.wrappers:FlattenObservation; repeatable, applied in order",
    )
    parser.add_argument(
        "--reward-range", metavar="MIN,MAX", help="declare the reward range when the environment does not"
    )
    parser.add_argument("--no-state", action="store_true", help="do not report env.unwrapped.state")
    parser.add_argument(
        "--reclaim-after", type=float, default=300.0, metavar="SECONDS",
        help="when full, free the environments of clients silent this long (default 300)",
    )
    parser.add_argument("--id", default="env-server", help="this server's sender id (default env-server)")
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s env-server: %(message)s")

    if not 1 <= args.envs <= MAX_ENVIRONMENTS_PER_MESSAGE:
        parser.error(f"--envs must be in 1..{MAX_ENVIRONMENTS_PER_MESSAGE}")
    if not 1 <= len(args.id.encode()) <= 128:
        parser.error("--id must be 1 to 128 bytes")
    try:
        kwargs = json.loads(args.make_kwargs)
    except ValueError as error:
        parser.error(f"--make-kwargs is not JSON: {error}")
    if not isinstance(kwargs, dict):
        parser.error("--make-kwargs must be a JSON object, e.g. '{\"frameskip\": 4}'")
    reward_range = None
    if args.reward_range is not None:
        try:
            low, high = (float(x) for x in args.reward_range.split(","))
        except ValueError:
            parser.error("--reward-range must be MIN,MAX, e.g. -1,1")
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            parser.error("--reward-range needs finite MIN <= MAX")
        reward_range = (low, high)
    for module in args.imports:
        try:
            importlib.import_module(module)
        except Exception as error:
            print(f"env_server.py: --import {module} failed: {error!r}", file=sys.stderr)
            return 2
    wrappers = []
    for spec in args.wrapper:
        module, _, name = spec.partition(":")
        try:
            wrappers.append(getattr(importlib.import_module(module), name))
        except Exception as error:
            print(f"env_server.py: --wrapper {spec} (MODULE:CLASS) cannot be loaded: {error!r}", file=sys.stderr)
            return 2

    def make():
        env = gym.make(args.env, **kwargs)
        for wrapper in wrappers:
            env = wrapper(env)
        return env

    try:
        host = EnvironmentHost(make, args.env, args.envs, not args.no_state, reward_range, args.reclaim_after)
    except SpaceError as error:
        print(f"env_server.py: {args.env}: {error}", file=sys.stderr)
        return 2
    except gym.error.Error as error:
        print(f"env_server.py: gymnasium cannot make {args.env!r}: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the user's environment code
        print(f"env_server.py: making {args.env!r} failed: {error!r}", file=sys.stderr)
        return 2
    server = EnvironmentServer(host, args.id, args.max_message_bytes)

    def stop(signum, _frame):
        server.stop_reason = signal.Signals(signum).name

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    server.serve(args.bind)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
