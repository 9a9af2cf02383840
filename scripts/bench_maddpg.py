"""Benchmark: MADDPG on the 2-agent cart-pole (time to solve) and on MPE simple_spread_v3 (final reward).

(a) ``experiment=multi_cartpole_maddpg`` (2 agents, coupling 0; ``--preset`` picks another, e.g. the coupled
    one) for seeds 0..n-1, one at a time, stopping
    at the first evaluation where every agent's mean return reaches 475 (``stop_on_threshold``). Reports
    per seed and as medians: training wall seconds (evaluation excluded), env steps, and training
    throughput in env steps per second, learning included.
(b) ``experiment=mpe_maddpg`` on ``simple_spread_v3`` (3 agents, 25-step episodes, PettingZoo's default
    local_ratio 0.5) for its whole budget. Reports the final deterministic evaluation: every agent's mean
    return (PettingZoo's per-agent reward), and, for comparison with papers that report the original MPE's
    team quantities, the mean over the episode's steps of the summed distance from each landmark to its
    nearest agent, and collisions per episode.

Usage::

    python scripts/bench_maddpg.py                      # both parts, 5 seeds for (a), 3 for (b)
    python scripts/bench_maddpg.py --part solve --seeds 5 --json maddpg.json
    python scripts/bench_maddpg.py --part solve --preset multi_cartpole_coupled_maddpg
    python scripts/bench_maddpg.py --part mpe --seeds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rlkit.trainer
from rlkit.config import compose
from rlkit.factory import build_agent, build_env

QUIET = ["callbacks.tensorboard=false", "callbacks.progress_bar=false"]


def solve_once(preset: str, seed: int, workdir: Path, extra: list[str]) -> dict[str, Any]:
    cfg = compose([f"experiment={preset}", "callbacks.eval.stop_on_threshold=true", *QUIET,
                   f"seed={seed}", *extra])
    s = rlkit.trainer.train(cfg, workdir / f"solve{seed}")
    solved = s["solved"]
    return {"seed": seed, "solved": solved is not None, "steps": solved["step"] if solved else s["steps"],
            "train_seconds": solved["train_seconds"] if solved else s["train_seconds"],
            "steps_per_second": s["steps"] / s["train_seconds"], "best_score": s["best_eval"]["score"]}


def bench_solve(preset: str, seeds: int, extra: list[str]) -> dict[str, Any]:
    print(f"(a) MADDPG, experiment={preset} {' '.join(extra)}: until every agent's deterministic evaluation "
          f"mean reaches 475, {seeds} seeds")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            r = solve_once(preset, seed, Path(tmp), extra)
            runs.append(r)
            state = "solved" if r["solved"] else f"NOT solved (best {r['best_score']:.0f})"
            print(f"    seed {seed}: {state} after {r['train_seconds']:6.1f} s, {r['steps']:>8,} env steps, "
                  f"{r['steps_per_second']:,.0f} env steps/s with learning", flush=True)
    inf = float("inf")
    summary = {
        "runs": runs,
        "solved": f"{sum(r['solved'] for r in runs)}/{len(runs)}",
        "median_train_seconds": statistics.median(r["train_seconds"] if r["solved"] else inf for r in runs),
        "median_steps": statistics.median(r["steps"] if r["solved"] else inf for r in runs),
        "median_steps_per_second": statistics.median(r["steps_per_second"] for r in runs),
    }
    print(f"    solved {summary['solved']}, median {summary['median_train_seconds']:.1f} s, "
          f"{summary['median_steps']:,.0f} env steps, {summary['median_steps_per_second']:,.0f} env steps/s")
    return summary


SPREAD_AGENT_RADIUS = 0.15  # simple_spread_v3's agents: two touch when their centres are within 0.3


def _positions(env: Any) -> tuple[np.ndarray, np.ndarray]:
    """The agents' and the landmarks' positions in the world behind a built env (the batched one or mpe2's)."""
    inner = env.env.env  # CheckedEnv -> ParallelArrayEnv -> the PettingZoo env
    if hasattr(inner, "positions"):
        return inner.positions
    world = inner.unwrapped.world
    return np.array([a.state.p_pos for a in world.agents]), np.array([lm.state.p_pos for lm in world.landmarks])


def _spread_quantities(agent: Any, make_env: Any, episodes: int, seed: int) -> dict[str, float]:
    """Play greedy episodes; per-agent returns, and the original MPE's team quantities from the world."""
    env = make_env(None)
    returns, dist_per_step, collisions = [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total = np.zeros(len(env.possible_agents))
        dists, hits = [], 0
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs[None])[0])
            total += reward
            pos, marks = _positions(env)
            dists.append(np.linalg.norm(pos[None] - marks[:, None], axis=-1).min(axis=1).sum())
            gaps = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
            hits += int(((gaps < 2 * SPREAD_AGENT_RADIUS) & ~np.eye(len(pos), dtype=bool)).sum() // 2)
            done = terminated or truncated
        returns.append(total)
        dist_per_step.append(float(np.mean(dists)))
        collisions.append(hits)
    env.close()
    r = np.array(returns)
    return {"agent_return": float(r.mean()), "team_return_sum": float(r.sum(axis=1).mean()),
            "landmark_distance_per_step": float(np.mean(dist_per_step)),
            "collisions_per_episode": float(np.mean(collisions))}


def mpe_once(seed: int, workdir: Path, extra: list[str], episodes: int = 100) -> dict[str, Any]:
    cfg = compose(["experiment=mpe_maddpg", *QUIET, f"seed={seed}", *extra])
    run = workdir / f"mpe{seed}"
    s = rlkit.trainer.train(cfg, run)
    env = build_env(cfg.env)
    agent = build_agent(cfg.agent, env, seed=seed, training=False)
    agent.load(run / "checkpoints" / "last.safetensors")
    q = _spread_quantities(agent, env.make, episodes, seed=10_000 + 100 * seed)
    return {"seed": seed, "steps": s["steps"], "train_seconds": s["train_seconds"],
            "steps_per_second": s["steps"] / s["train_seconds"], **q}


class _UniformRandom:
    """Uniformly random moves: the reference point of the MPE figures."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.rng.integers(0, self.n, obs.shape[:2])


def bench_mpe(seeds: int, extra: list[str]) -> dict[str, Any]:
    print(f"(b) MADDPG, experiment=mpe_maddpg on simple_spread_v3 {' '.join(extra)}: 100 greedy episodes "
          f"after the whole budget, {seeds} seeds")
    env = build_env(compose(["experiment=mpe_maddpg", *extra]).env)
    random = _spread_quantities(_UniformRandom(5, 0), env.make, 100, seed=10_000)
    print("    uniformly random moves: " + ", ".join(f"{k} {v:.3f}" for k, v in random.items()))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            r = mpe_once(seed, Path(tmp), extra)
            runs.append(r)
            print(f"    seed {seed}: {r['steps']:,} env steps in {r['train_seconds']:.0f} s: per-agent return "
                  f"{r['agent_return']:.2f}, landmark distance {r['landmark_distance_per_step']:.3f} per step, "
                  f"{r['collisions_per_episode']:.2f} collisions per episode", flush=True)
    keys = ("agent_return", "team_return_sum", "landmark_distance_per_step", "collisions_per_episode")
    summary = {"runs": runs, "random": random,
               **{f"median_{k}": statistics.median(r[k] for r in runs) for k in keys}}
    print("    median: " + ", ".join(f"{k} {summary['median_' + k]:.3f}" for k in keys))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=("solve", "mpe", "all"), default="all")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 5 for solve, 3 for mpe)")
    parser.add_argument("--preset", default="multi_cartpole_maddpg",
                        help="preset of part (a), e.g. multi_cartpole_coupled_maddpg")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    if args.part in ("solve", "all"):
        results["solve"] = bench_solve(args.preset, args.seeds or 5, args.overrides)
    if args.part in ("mpe", "all"):
        results["mpe"] = bench_mpe(args.seeds or 3, args.overrides)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
