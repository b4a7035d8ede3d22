"""Compares `distill env step --cases -` with gymnasium's CartPole-v1, Acrobot-v1 and MountainCar-v0.

For each environment it builds cases (a start state set with `env.unwrapped.state = ...`, the steps
already taken for the time limit, and an action sequence), runs them in gymnasium, sends the same
cases to distill in one batch (JSON lines on stdin) and compares every observation (float32, to
--tolerance), reward, terminated and truncated flag, and the episode length (both stop at the
first terminated or truncated step). The internal float64 state is compared too (reported).

Cases per environment: --random random states with random actions; edge states (just inside and
outside the termination thresholds, at the velocity clips, at MountainCar's left wall, Acrobot's
angle wrap); starts a few steps before the time limit; and full episodes from elapsed 0 run until
the time limit truncates them (CartPole balanced by a simple controller whose actions gymnasium
chooses). Exit status 1 on any mismatch.
"""

import argparse
import json
import math
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit


def time_limit_wrapper(env):
    while not isinstance(env, TimeLimit):
        env = env.env
    return env


def initial_observation(name, unwrapped):
    if name == "Acrobot-v1":
        return unwrapped._get_ob()
    return np.array(unwrapped.state, dtype=np.float32)


def run_gymnasium(name, env, case, controller=None):
    env.reset(seed=0)
    env.unwrapped.state = np.array(case["state"], dtype=np.float64)
    if name == "CartPole-v1":
        env.unwrapped.steps_beyond_terminated = None
    time_limit_wrapper(env)._elapsed_steps = case.get("elapsed", 0)
    observations = [initial_observation(name, env.unwrapped)]
    states = [np.array(env.unwrapped.state, dtype=np.float64)]
    rewards, terminated, truncated, actions = [], [], [], []
    for k in range(case["length"]):
        a = controller(observations[-1]) if controller else case["actions"][k]
        obs, r, term, trunc, _ = env.step(a)
        actions.append(int(a))
        observations.append(obs)
        states.append(np.array(env.unwrapped.state, dtype=np.float64))
        rewards.append(float(r))
        terminated.append(bool(term))
        truncated.append(bool(trunc))
        if term or trunc:
            break
    return {"actions": actions, "observations": observations, "states": states, "rewards": rewards,
            "terminated": terminated, "truncated": truncated}


def cases_for(name, limit, rng, count):
    """(case, controller) pairs: random, edge, near-limit and full-episode starts."""
    out = []
    pi = math.pi
    if name == "CartPole-v1":
        xt, tt = 2.4, 12 * 2 * math.pi / 360
        def random_state():
            return [rng.uniform(-2.4, 2.4), rng.uniform(-2, 2), rng.uniform(-tt, tt), rng.uniform(-2, 2)]
        edges = []
        for sign in (-1.0, 1.0):
            for x in (xt, np.nextafter(xt, 0), np.nextafter(xt, 3), xt - 1e-9, xt + 1e-9):
                edges.append([sign * x, 0.0, 0.0, 0.0])          # x stays put for one step
                edges.append([sign * x, sign * 0.01, 0.0, 0.0])  # moving outwards
                edges.append([sign * x, -sign * 0.01, 0.0, 0.0])  # moving inwards
            for t in (tt, np.nextafter(tt, 0), np.nextafter(tt, 1), tt - 1e-9, tt + 1e-9):
                edges.append([0.0, 0.0, sign * t, 0.0])
                edges.append([0.0, 0.0, sign * t, sign * 0.05])
                edges.append([0.0, 0.0, sign * t, -sign * 0.05])
        for _ in range(200):
            s = random_state()
            k = rng.integers(0, 4)
            s[[0, 2][k % 2]] = (xt if k % 2 == 0 else tt) * (1 if k < 2 else -1) * (1 + rng.uniform(-1e-3, 1e-3))
            edges.append(s)
        def controller(obs):
            return int(obs[2] + 0.3 * obs[3] + 0.02 * obs[0] + 0.05 * obs[1] > 0)
        full = [([rng.uniform(-0.05, 0.05) for _ in range(4)], controller) for _ in range(10)]
    elif name == "Acrobot-v1":
        v1, v2 = 4 * pi, 9 * pi
        def random_state():  # half anywhere, half hanging down (long episodes)
            if rng.uniform() < 0.5:
                return [rng.uniform(-pi, pi), rng.uniform(-pi, pi), rng.uniform(-v1, v1), rng.uniform(-v2, v2)]
            return [rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-2, 2), rng.uniform(-4, 4)]
        edges = []
        for _ in range(100):  # near the goal line -cos(t1) - cos(t1 + t2) = 1
            t1 = rng.uniform(-pi, pi)
            c = -1.0 - math.cos(t1)
            if -1 <= c <= 1:
                t2 = math.acos(c) - t1 + rng.uniform(-1e-3, 1e-3)
                edges.append([t1, t2, rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)])
        for _ in range(100):  # at and beyond the velocity clips, and angles that wrap
            s = random_state()
            s[2] = rng.choice([-1, 1]) * v1 * rng.uniform(0.99, 1.2)
            s[3] = rng.choice([-1, 1]) * v2 * rng.uniform(0.99, 1.2)
            s[0] = rng.choice([-1, 1]) * pi * rng.uniform(0.98, 1.0)
            edges.append(s)
        full = [([float(np.float32(rng.uniform(-0.1, 0.1))) for _ in range(4)], None) for _ in range(10)]
    else:
        def random_state():
            return [rng.uniform(-1.2, 0.6), rng.uniform(-0.07, 0.07)]
        edges = []
        for _ in range(60):  # the left wall with negative velocity
            edges.append([-1.2 + rng.uniform(0, 0.02), -rng.uniform(0, 0.07)])
        for _ in range(60):  # the velocity clip
            edges.append([rng.uniform(-1.2, 0.6), rng.choice([-1, 1]) * rng.uniform(0.068, 0.07)])
        for _ in range(60):  # the goal
            edges.append([0.5 - rng.uniform(0, 0.02), rng.uniform(-0.01, 0.03)])
        edges += [[-1.2, 0.0], [-1.2, -0.07], [0.5, 0.0], [0.6, 0.07], [0.49, 0.01], [np.nextafter(0.5, 0), 0.0]]
        full = [([rng.uniform(-0.6, -0.4), 0.0], None) for _ in range(10)]
    n_actions = {"CartPole-v1": 2, "Acrobot-v1": 3, "MountainCar-v0": 3}[name]
    def actions(n):
        return [int(a) for a in rng.integers(0, n_actions, size=n)]
    for _ in range(count):
        out.append(({"state": random_state(), "actions": actions(100), "length": 100}, None))
    for s in edges:
        out.append(({"state": [float(v) for v in s], "actions": actions(30), "length": 30}, None))
    for k in range(1, 31):  # a few steps before the time limit
        near = {"CartPole-v1": [0.0, 0.0, 0.01, 0.0], "Acrobot-v1": [0.05, -0.05, 0.0, 0.0]}
        out.append(({"state": near.get(name) or random_state(),
                     "elapsed": limit - k, "actions": actions(k + 3), "length": k + 3}, None))
    for s, ctl in full:  # whole episodes to the time limit
        out.append(({"state": [float(v) for v in s], "actions": actions(limit + 5), "length": limit + 5}, ctl))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--distill", required=True)
    parser.add_argument("--random", type=int, default=1000)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    failures = 0
    totals = {"cases": 0, "steps": 0}
    for name, flag in (("CartPole-v1", "cartpole"), ("Acrobot-v1", "acrobot"), ("MountainCar-v0", "mountaincar")):
        env = gym.make(name)
        limit = env.spec.max_episode_steps
        spec = json.loads(subprocess.run([args.distill, "env", "spec", "--env", flag], check=True,
                                         capture_output=True, text=True).stdout)
        if spec["maxEpisodeSteps"] != limit:
            print(f"{name}: time limit {spec['maxEpisodeSteps']} in distill, {limit} in gymnasium")
            failures += 1
        if spec["actionCount"] != env.action_space.n:
            print(f"{name}: {spec['actionCount']} actions in distill, {env.action_space.n} in gymnasium")
            failures += 1
        for key, ref in (("low", env.observation_space.low), ("high", env.observation_space.high)):
            mine = np.array([{"inf": np.inf, "-inf": -np.inf}.get(v, v) for v in spec["observation"][key]],
                            dtype=np.float32)
            if not np.array_equal(mine, ref):
                print(f"{name}: observation {key} {mine} in distill, {ref} in gymnasium")
                failures += 1
        started = time.time()
        cases = cases_for(name, limit, rng, args.random)
        reference = [run_gymnasium(name, env, c, ctl) for c, ctl in cases]
        python_seconds = time.time() - started
        lines = []
        for (c, _), ref in zip(cases, reference):
            lines.append(json.dumps({"state": c["state"], "elapsed": c.get("elapsed", 0), "actions": ref["actions"]}))
        started = time.time()
        result = subprocess.run([args.distill, "env", "step", "--env", flag, "--cases", "-"],
                                input="\n".join(lines) + "\n", capture_output=True, text=True)
        distill_seconds = time.time() - started
        if result.returncode != 0:
            print(f"{name}: distill failed: {result.stderr}")
            return 1
        outputs = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(outputs) == len(cases), f"{len(outputs)} results for {len(cases)} cases"
        max_obs = max_state = 0.0
        steps = flags = truncations = terminations = 0
        env_failures = 0
        for i, (ref, mine) in enumerate(zip(reference, outputs)):
            problems = []
            if len(mine["rewards"]) != len(ref["rewards"]):
                problems.append(f"{len(mine['rewards'])} steps in distill, {len(ref['rewards'])} in gymnasium")
            n = min(len(mine["rewards"]), len(ref["rewards"]))
            for t in range(n + 1):
                o = np.array(mine["observations"][t], dtype=np.float32)
                d = float(np.max(np.abs(o.astype(np.float64) - ref["observations"][t].astype(np.float64))))
                max_obs = max(max_obs, d)
                max_state = max(max_state, float(np.max(np.abs(np.array(mine["states"][t]) - ref["states"][t]))))
                if not d <= args.tolerance:
                    problems.append(f"t={t}: observation {o.tolist()} vs {ref['observations'][t].tolist()}")
            for t in range(n):
                if mine["rewards"][t] != ref["rewards"][t]:
                    problems.append(f"t={t + 1}: reward {mine['rewards'][t]} vs {ref['rewards'][t]}")
                for key in ("terminated", "truncated"):
                    if mine[key][t] != ref[key][t]:
                        problems.append(f"t={t + 1}: {key} {mine[key][t]} vs {ref[key][t]}")
            steps += n
            flags += 2 * n
            truncations += sum(ref["truncated"])
            terminations += sum(ref["terminated"])
            if problems:
                env_failures += 1
                if env_failures <= 5:
                    print(f"{name} case {i} {lines[i][:200]}: " + "; ".join(problems[:4]))
        failures += env_failures
        totals["cases"] += len(cases)
        totals["steps"] += steps
        print(f"{name}: {len(cases)} start states, {steps} steps ({terminations} terminations, {truncations} "
              f"truncations): max |obs diff| {max_obs:.3g}, max |state diff| {max_state:.3g}; "
              f"{env_failures} mismatching cases; gymnasium {python_seconds:.1f} s, distill {distill_seconds:.2f} s")
    print(f"gymnasium comparison: {totals['cases']} start states, {totals['steps']} steps, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
