"""Benchmark: the balancing pole's step throughput, and time-to-solve of the DQN preset.

(a) Single-environment steps per second of ``rlkit/BalancingPole-v1`` next to Gymnasium's ``CartPole-v1``,
    measured in the same process: raw ``env.unwrapped.step`` and through ``gym.make``'s wrappers.
(b) For ``experiment=balancing_pole_dqn`` and, as the reference, SB3 DQN with RL Zoo's published
    CartPole-v1 hyperparameters on Gymnasium's CartPole-v1: training wall seconds (evaluation excluded) and
    environment steps until a 10-episode deterministic evaluation, run every 1,000 steps, first reaches 475.
    Median over seeds; runs go one at a time so they do not compete for the cores.

Usage::

    python scripts/bench_balancing_pole.py                 # both parts, 5 seeds
    python scripts/bench_balancing_pole.py --part throughput
    python scripts/bench_balancing_pole.py --seeds 3 --json bench.json
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

import rlkit.envs
import rlkit.trainer
from rlkit.config import compose
from rlkit.trainer import train

# RL Baselines3 Zoo, hyperparams/dqn.yml, CartPole-v1 (n_timesteps 5e4).
RL_ZOO_CARTPOLE_DQN = [
    "env=gym",
    "env.id=CartPole-v1",
    "agent=dqn",
    "total_steps=50000",
    "agent.learning_rate=2.3e-3",
    "agent.batch_size=64",
    "agent.buffer_size=100000",
    "agent.learning_starts=1000",
    "agent.gamma=0.99",
    "agent.target_update_interval=10",
    "agent.train_freq=256",
    "agent.gradient_steps=128",
    "agent.exploration_fraction=0.16",
    "agent.exploration_final_eps=0.04",
    "agent.net_arch=[256,256]",
]
PRESET = ["experiment=balancing_pole_dqn"]
# The measurement protocol, the same for both.
PROTOCOL = [
    "callbacks.eval.every_steps=1000",
    "callbacks.eval.episodes=10",
    "callbacks.eval.stop_on_threshold=true",
    "callbacks.tensorboard=false",
    "callbacks.progress_bar=false",
]


def _steps_per_second(target: Any, actions: list[int]) -> float:
    target.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = target.step(a)
        if terminated or truncated:
            target.reset()
    return len(actions) / (time.perf_counter() - start)


def bench_throughput(steps: int = 200_000, repeats: int = 5) -> dict[str, Any]:
    print(f"(a) single-env step throughput, best of {repeats} interleaved runs of {steps:,} random-action steps")
    print(f"    {'environment':<26}{'raw step/s':>14}{'gym.make step/s':>18}")
    actions = [int(a) for a in np.random.default_rng(0).integers(0, 2, steps)]
    envs = {env_id: gym.make(env_id) for env_id in (rlkit.envs.BALANCING_POLE_ID, "CartPole-v1")}
    best = {(env_id, raw): 0.0 for env_id in envs for raw in (True, False)}
    # Alternate environments and modes, so a slow spell of the machine cannot favour either.
    for _ in range(repeats):
        for (env_id, raw) in best:
            target = envs[env_id].unwrapped if raw else envs[env_id]
            best[env_id, raw] = max(best[env_id, raw], _steps_per_second(target, actions))
    results: dict[str, Any] = {}
    for env_id in envs:
        results[env_id] = {"raw_steps_per_second": best[env_id, True], "made_steps_per_second": best[env_id, False]}
        print(f"    {env_id:<26}{best[env_id, True]:>14,.0f}{best[env_id, False]:>18,.0f}")
    ours, theirs = results[rlkit.envs.BALANCING_POLE_ID], results["CartPole-v1"]
    print(f"    ratio (ours / CartPole-v1): raw {ours['raw_steps_per_second'] / theirs['raw_steps_per_second']:.2f}x,"
          f" gym.make {ours['made_steps_per_second'] / theirs['made_steps_per_second']:.2f}x")
    return results


def time_to_solve(overrides: list[str], seed: int, workdir: Path, protocol: list[str] = PROTOCOL) -> dict[str, Any]:
    cfg = compose([*overrides, *protocol, f"seed={seed}"])
    summary = train(cfg, workdir / f"seed{seed}")  # type: ignore[arg-type]
    solved = summary["solved"]
    return {
        "seed": seed,
        "solved": solved is not None,
        "steps": solved["step"] if solved else None,
        "train_seconds": solved["train_seconds"] if solved else None,
        "budget_steps": summary["total_steps"],
        "steps_per_second": summary["steps"] / summary["train_seconds"],
        "best_eval": summary["best_eval"]["mean_reward"],
    }


def bench_solve(name: str, overrides: list[str], seeds: int, protocol: list[str] = PROTOCOL) -> dict[str, Any]:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            r = time_to_solve(overrides, seed, Path(tmp), protocol)
            runs.append(r)
            shown = f"{r['steps']:>7,} steps {r['train_seconds']:6.1f} s" if r["solved"] else "not solved"
            print(f"    {name:<30} seed {seed}: {shown}  ({r['steps_per_second']:,.0f} steps/s, best eval "
                  f"{r['best_eval']:.1f})", flush=True)
    solved = [r for r in runs if r["solved"]]
    # Unsolved seeds count as the whole budget's worth, so the median never flatters a failing config.
    secs = [r["train_seconds"] if r["solved"] else float("inf") for r in runs]
    steps = [r["steps"] if r["solved"] else float("inf") for r in runs]
    return {
        "runs": runs,
        "solved": f"{len(solved)}/{len(runs)}",
        "median_train_seconds": statistics.median(secs),
        "median_steps": statistics.median(steps),
        "median_steps_per_second": statistics.median(r["steps_per_second"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "throughput", "solve"], default="all")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    out: dict[str, Any] = {"versions": rlkit.trainer.package_versions()}
    if args.part in ("all", "throughput"):
        out["throughput"] = bench_throughput()
    if args.part in ("all", "solve"):
        print(f"\n(b) time to solve (eval: 10 deterministic episodes every 1,000 steps, threshold 475; "
              f"training seconds exclude evaluation), {args.seeds} seeds")
        out["solve"] = {
            "balancing_pole_dqn (rlkit preset)": bench_solve("balancing_pole_dqn", PRESET, args.seeds),
            "CartPole-v1 DQN (RL Zoo hyperparameters)": bench_solve("RL Zoo DQN on CartPole-v1",
                                                                    RL_ZOO_CARTPOLE_DQN, args.seeds),
        }
        print(f"\n    {'configuration':<44}{'solved':>8}{'median s':>10}{'median steps':>14}")
        for name, r in out["solve"].items():
            print(f"    {name:<44}{r['solved']:>8}{r['median_train_seconds']:>10.1f}{r['median_steps']:>14,.0f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
