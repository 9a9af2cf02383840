"""Benchmark: the robotic arm's step throughput, and time to a 90% success rate.

(a) Steps per second of ``rlkit/RoboticArm-v1`` with random actions: the single env (bare, and through
    ``gym.make``'s wrappers), and the batched version at 1, 64, 1024 and 16384 copies (copy-steps per second).
(b) Presets (``experiment=robotic_arm_reinforce`` by default; several are measured one after the other) for
    seeds 0..n-1, one at a time, stopping at the first evaluation (50 greedy episodes on random targets) with a
    success rate of at least 90%; next to SB3's SAC with its default hyperparameters (``agent=sac``), measured in
    the same run within its own budget.
    Reports training seconds (evaluation excluded) and env steps to 90%, per seed and as medians.

Usage::

    python scripts/bench_robotic_arm.py --part throughput
    python scripts/bench_robotic_arm.py --part solve --seeds 5 --sac-seeds 2 --sac-budget 30000
    python scripts/bench_robotic_arm.py --part solve --preset robotic_arm_reinforce robotic_arm_maddpg --sac-seeds 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlkit.envs
import rlkit.trainer
from rlkit.config import compose

PROTOCOL = ["callbacks.eval.episodes=50", "callbacks.eval.stop_on_threshold=true", "callbacks.progress_bar=false"]


def _rate(step: Any, actions: list[np.ndarray], calls: int, per_call: int) -> float:
    start = time.perf_counter()
    for k in range(calls):
        step(actions[k % len(actions)])
    return per_call * calls / (time.perf_counter() - start)


def bench_throughput(repeats: int = 3) -> dict[str, Any]:
    print(f"(a) robotic arm steps per second, random actions, best of {repeats}")
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {}
    bare = rlkit.envs.RoboticArmEnv()
    wrapped = gym.make(rlkit.envs.ROBOTIC_ARM_ID, max_episode_steps=10**9)  # no truncation inside the timing
    actions = [rng.uniform(-1, 1, 2).astype(np.float32) for _ in range(64)]
    for name, env in (("single env", bare), ("single env, gym.make", wrapped)):
        env.reset(seed=0)

        def step(a: np.ndarray, env: Any = env) -> None:
            if env.step(a)[2]:
                env.reset()

        results[name] = max(_rate(step, actions, 20_000, 1) for _ in range(repeats))
        print(f"    {name:>24}: {results[name]:>12,.0f} steps/s", flush=True)
    for n in (1, 64, 1024, 16384):
        envs = rlkit.envs.RoboticArmVectorEnv(num_envs=n)
        envs.reset(seed=0)
        batch = [rng.uniform(-1, 1, (n, 2)).astype(np.float32) for _ in range(8)]
        calls = max(50, min(20_000, 2_000_000 // n))
        results[f"vector {n}"] = max(_rate(envs.step, batch, calls, n) for _ in range(repeats))
        print(f"    {f'batched, {n} copies':>24}: {results[f'vector {n}']:>12,.0f} copy-steps/s", flush=True)
    return results


def _solve(overrides: list[str], seed: int, workdir: Path, tensorboard: bool) -> dict[str, Any]:
    cfg = compose([*overrides, *PROTOCOL, f"callbacks.tensorboard={str(tensorboard).lower()}", f"seed={seed}"])
    s = rlkit.trainer.train(cfg, workdir / f"{'_'.join(overrides)}_{seed}".replace("/", "_").replace("=", "-"))
    solved = s["solved"]
    return {"seed": seed, "solved": solved is not None, "steps": solved["step"] if solved else s["steps"],
            "train_seconds": solved["train_seconds"] if solved else s["train_seconds"],
            "best_success_rate": s["best_eval"].get("success_rate"),
            "steps_per_second": s["steps"] / s["train_seconds"]}


def _series(label: str, overrides: list[str], seeds: list[int], workdir: Path, tensorboard: bool) -> dict[str, Any]:
    print(f"    {label}:")
    runs = []
    for seed in seeds:
        r = _solve(overrides, seed, workdir, tensorboard)
        runs.append(r)
        state = "90% after" if r["solved"] else f"NOT reached (best {r['best_success_rate']:.0%}) in"
        print(f"      seed {seed}: {state} {r['train_seconds']:7.1f} s, {r['steps']:>8,} env steps, "
              f"{r['steps_per_second']:,.0f} env steps/s", flush=True)
    inf = float("inf")
    summary = {"runs": runs, "reached": f"{sum(r['solved'] for r in runs)}/{len(runs)}",
               "median_train_seconds": statistics.median(r["train_seconds"] if r["solved"] else inf for r in runs),
               "median_steps": statistics.median(r["steps"] if r["solved"] else inf for r in runs)}
    print(f"      reached {summary['reached']}, median {summary['median_train_seconds']:.1f} s, "
          f"{summary['median_steps']:,.0f} env steps")
    return summary


def bench_solve(presets: list[str], seeds: list[int], sac_seeds: int, sac_budget: int,
                tensorboard: tuple[bool, ...] = (False,)) -> dict[str, Any]:
    print("(b) training until a greedy success rate of 90% on random targets (50 episodes per evaluation)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in presets:
            for tb in tensorboard:  # with both: TensorBoard logging's cost, in the same run
                key = preset if tensorboard == (False,) else f"{preset}, TensorBoard {'on' if tb else 'off'}"
                results[key] = _series(f"experiment={preset}" + key[len(preset):], [f"experiment={preset}"], seeds,
                                       Path(tmp), tb)
        if sac_seeds:
            results["sac"] = _series(
                f"SB3 SAC, defaults (env=robotic_arm agent=sac), budget {sac_budget:,} steps",
                ["env=robotic_arm", "agent=sac", f"total_steps={sac_budget}", "callbacks.eval.every_steps=5000"],
                list(range(sac_seeds)), Path(tmp), False)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=("throughput", "solve", "all"), default="all")
    parser.add_argument("--preset", nargs="+", default=["robotic_arm_reinforce"], help="presets to train, in order")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 to N-1")
    parser.add_argument("--seed-list", type=int, nargs="+", help="these seeds instead of --seeds")
    parser.add_argument("--tensorboard", choices=("off", "on", "both"), default="off",
                        help="TensorBoard logging of the runs (off: the protocol; both: each seed with and without)")
    parser.add_argument("--sac-seeds", type=int, default=2, help="seeds of the SB3 SAC comparison (0: skip it)")
    parser.add_argument("--sac-budget", type=int, default=30_000, help="env steps SAC may take per seed")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    if args.part in ("throughput", "all"):
        results["throughput"] = bench_throughput()
    if args.part in ("solve", "all"):
        tensorboard = {"off": (False,), "on": (True,), "both": (True, False)}[args.tensorboard]
        results["solve"] = bench_solve(args.preset, args.seed_list or list(range(args.seeds)), args.sac_seeds,
                                       args.sac_budget, tensorboard)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
