"""CartPole from the remote environment server equals the native CartPole, trajectory by trajectory.

Both sides are distill's: `distill env step --env remote:ENDPOINT --cases -` resets the server's
CartPole-v1 (a gymnasium environment in examples/env-server) from a seed and plays the given
actions; its first line gives the start state the server reports (env.unwrapped.state). Then
`distill env step --env cartpole --cases -` starts the native CartPole (Sources/DistillCore,
written from the equations) in that state and plays the same actions. Every observation must
agree to --tolerance (float32), every reward, terminated and truncated flag exactly, and both must
stop at the same step. With --perturb the native start angles are moved, and the comparison
must fail (the lab test's check that it can).

Cases: --random seeds with random actions (episodes end by termination), and --balanced seeds
whose actions a simple controller chooses (planned here with gymnasium from the reported start
state) for 520 steps, so that the server's time limit truncates them at step 500; the native
side must truncate at the same step. Exit status 1 on any mismatch.
"""

import argparse
import json
import random
import subprocess
import sys

import gymnasium as gym
import numpy as np


def distill_cases(binary, env, cases):
    lines = "".join(json.dumps(case) + "\n" for case in cases)
    done = subprocess.run(
        [binary, "env", "step", "--env", env, "--cases", "-"], input=lines, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        sys.exit(f"distill env step --env {env} failed ({done.returncode}): {done.stderr.strip()}")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if len(results) != len(cases):
        sys.exit(f"distill env step --env {env}: {len(results)} results for {len(cases)} cases")
    return results


def controller(obs):
    return int(obs[2] + 0.3 * obs[3] + 0.02 * obs[0] + 0.05 * obs[1] > 0)


def plan(state, length):
    """Actions of the controller from `state`, chosen by running gymnasium's CartPole without a time limit."""
    env = gym.make("CartPole-v1", max_episode_steps=None).unwrapped
    env.reset(seed=0)
    env.state = np.array(state, dtype=np.float64)
    obs = np.array(env.state, dtype=np.float32)
    actions = []
    for _ in range(length):
        a = controller(obs)
        actions.append(a)
        obs, _, terminated, _, _ = env.step(a)
        if terminated:
            break
    return actions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--distill", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--random", type=int, default=300)
    parser.add_argument("--balanced", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument(
        "--perturb", type=float, default=0.0, help="add this to the native start angle (the test's negative control)"
    )
    args = parser.parse_args()
    remote = f"remote:{args.endpoint}"
    rng = random.Random(61)

    cases = [{"seed": s, "actions": [rng.randrange(2) for _ in range(60)]} for s in range(args.random)]
    balanced_seeds = list(range(10_000, 10_000 + args.balanced))
    starts = distill_cases(args.distill, remote, [{"seed": s, "actions": []} for s in balanced_seeds])
    for seed, start in zip(balanced_seeds, starts):
        cases.append({"seed": seed, "actions": plan(start["states"][0], 520)})

    remote_runs = distill_cases(args.distill, remote, cases)
    native_cases = [
        {"state": run["states"][0], "actions": case["actions"][: len(run["rewards"])]}
        for case, run in zip(cases, remote_runs)
    ]
    for case in native_cases:
        case["state"][2] += args.perturb
    native_runs = distill_cases(args.distill, "cartpole", native_cases)

    failures, steps, terminated, truncated, worst = 0, 0, 0, 0, 0.0
    for k, (case, r, n) in enumerate(zip(cases, remote_runs, native_runs)):
        where = f"case {k} (seed {case['seed']})"
        problems = []
        if len(r["rewards"]) != len(n["rewards"]):
            problems.append(f"remote ran {len(r['rewards'])} steps, native {len(n['rewards'])}")
        else:
            for t, (a, b) in enumerate(zip(r["observations"], n["observations"])):
                gap = max(abs(x - y) for x, y in zip(a, b))
                worst = max(worst, gap)
                if gap > args.tolerance:
                    problems.append(f"observation {t}: remote {a}, native {b}")
                    break
            for field in ("rewards", "terminated", "truncated"):
                if r[field] != n[field]:
                    t = next(i for i, (x, y) in enumerate(zip(r[field], n[field])) if x != y)
                    problems.append(f"{field}[{t}]: remote {r[field][t]}, native {n[field][t]}")
        if problems:
            failures += 1
            if failures <= 10:
                print(f"MISMATCH {where}: " + "; ".join(problems), file=sys.stderr)
        steps += len(r["rewards"])
        terminated += any(r["terminated"])
        truncated += any(r["truncated"])
    long_truncated = sum(
        1 for r in remote_runs if r["truncated"] and r["truncated"][-1] and len(r["rewards"]) == 500
    )
    print(
        f"remote vs native CartPole: {len(cases)} episodes, {steps} steps, {terminated} terminated, "
        f"{truncated} truncated at the time limit ({long_truncated} after exactly 500 steps), worst observation "
        f"gap {worst:.3g}, {failures} mismatches",
        file=sys.stderr,
    )
    if failures:
        sys.exit(1)
    if terminated < args.random // 2:
        sys.exit(f"only {terminated} episodes terminated: the random cases did not exercise termination")
    if args.balanced and long_truncated == 0:
        sys.exit("no episode reached the time limit: the balanced cases did not exercise truncation")


if __name__ == "__main__":
    main()
