"""Benchmark: every built-in agent on every built-in environment, plus SB3's other algorithms.

Trains each pair below for a few seeds within its budget (a tuned preset where there is one, otherwise the
agent's defaults), evaluating with deterministic episodes as often as the config says and stopping a seed at
the first evaluation that meets the env's thresholds (475 for the cart-poles, a 90% success rate for the arm).
Prints, per pair, the adapter rlkit chose, how many seeds solved, and the median over seeds of the best
evaluation (mean reward, and success rate for the arm) and of the env steps and training seconds it took;
then the same as a Markdown table for the README.

Usage::

    python scripts/bench_pairs.py                       # every pair, 3 seeds
    python scripts/bench_pairs.py --only arm --seeds 1  # pairs whose name contains "arm"
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import rlkit.trainer
from rlkit.config import compose


@dataclass(frozen=True)
class Pair:
    """One agent-environment pair: its overrides, budget (0: the preset's own) and evaluation episodes."""

    name: str
    overrides: tuple[str, ...]
    budget: int
    episodes: int = 20  # evaluation episodes


# The arm's MADDPG preset and SB3's SAC with its defaults are measured by scripts/bench_robotic_arm.py
# (--part solve: 5 seeds of the preset to a 90% success rate, beside SAC).
PAIRS = (
    Pair("balancing pole / REINFORCE", ("experiment=balancing_pole_reinforce",), 300_000),
    Pair("balancing pole / DQN", ("experiment=balancing_pole_dqn",), 50_000),
    Pair("balancing pole / MADDPG", ("experiment=balancing_pole_maddpg",), 0),
    Pair("robotic arm / REINFORCE", ("experiment=robotic_arm_reinforce",), 0, 50),
    Pair("robotic arm / DQN", ("env=robotic_arm", "agent=dqn"), 100_000, 50),
    Pair("multi-agent cart-pole / REINFORCE", ("experiment=multi_cartpole_reinforce",), 0),
    Pair("multi-agent cart-pole / DQN", ("experiment=multi_cartpole_dqn",), 0),
    Pair("multi-agent cart-pole / MADDPG", ("experiment=multi_cartpole_maddpg",), 0),
    Pair("balancing pole / PPO (SB3)", ("env=balancing_pole", "agent=ppo"), 100_000),
    Pair("balancing pole / A2C (SB3)", ("env=balancing_pole", "agent=a2c"), 100_000),
    Pair("robotic arm / TD3 (SB3)", ("env=robotic_arm", "agent=td3"), 20_000, 50),
)


ADAPTER_WORDS = ("team of one", "joint control", "discretised")  # in the log line that names an adapter


class _AdapterNote(logging.Handler):
    """Keeps rlkit's log lines; the adapter chosen for the pair is named in one of them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_pair(pair: Pair, seeds: int, workdir: Path) -> dict[str, Any]:
    rlkit_log = logging.getLogger("rlkit")
    rlkit_log.setLevel(logging.INFO)
    runs = []
    notes = _AdapterNote()
    rlkit_log.addHandler(notes)
    try:
        for seed in range(seeds):
            base = compose([*pair.overrides, *([f"total_steps={pair.budget}"] if pair.budget else [])])
            budget = base.total_steps
            cfg = compose([*pair.overrides, f"total_steps={budget}", f"seed={seed}",
                           f"callbacks.eval.episodes={pair.episodes}", "callbacks.eval.stop_on_threshold=true",
                           "callbacks.tensorboard=false", "callbacks.progress_bar=false"])
            started = time.perf_counter()
            s = rlkit.trainer.train(cfg, workdir / f"{pair.name.replace(' ', '_').replace('/', '-')}_{seed}")
            best = s["best_eval"]
            run = {"seed": seed, "solved": s["solved"] is not None, "steps": s["steps"],
                   "train_seconds": s["train_seconds"], "wall_seconds": time.perf_counter() - started,
                   "best_mean_reward": best["mean_reward"], "best_success_rate": best.get("success_rate")}
            runs.append(run)
            success = "" if run["best_success_rate"] is None else f", success {run['best_success_rate']:.0%}"
            print(f"    seed {seed}: {'solved' if run['solved'] else 'not solved'} at {run['steps']:,} steps, "
                  f"{run['train_seconds']:.1f} s; best eval {run['best_mean_reward']:.1f}{success}", flush=True)
    finally:
        rlkit_log.removeHandler(notes)
    rates = [r["best_success_rate"] for r in runs if r["best_success_rate"] is not None]
    return {
        "overrides": list(pair.overrides), "budget": budget, "eval_episodes": pair.episodes, "runs": runs,
        "adapter": next((line for line in notes.lines if any(k in line for k in ADAPTER_WORDS)), "none (spaces fit)"),
        "solved": f"{sum(r['solved'] for r in runs)}/{len(runs)}",
        "median_best_mean_reward": statistics.median(r["best_mean_reward"] for r in runs),
        "median_best_success_rate": statistics.median(rates) if rates else None,
        "median_steps": statistics.median(r["steps"] for r in runs),
        "median_train_seconds": statistics.median(r["train_seconds"] for r in runs),
    }


def markdown(results: dict[str, Any], seeds: int) -> str:
    rows = ["| pair | preset or config | budget (env steps) | solved | best evaluation, median | "
            "env steps, median | training s, median |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        best = f"{r['median_best_mean_reward']:.1f}"
        if r["median_best_success_rate"] is not None:
            best = f"success {r['median_best_success_rate']:.0%} (reward {best})"
        rows.append(f"| {name} | `{' '.join(r['overrides'])}` | {r['budget']:,} | {r['solved']} | {best} | "
                    f"{r['median_steps']:,.0f} | {r['median_train_seconds']:.1f} |")
    return "\n".join(rows) + f"\n\n{seeds} seeds per pair (0..{seeds - 1}); `python scripts/bench_pairs.py`.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default="", help="run the pairs whose name contains this (case-insensitive)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pairs = [p for p in PAIRS if args.only.lower() in p.name.lower()]
    if not pairs:
        parser.error(f"no pair matches {args.only!r}; pairs: {', '.join(p.name for p in PAIRS)}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pair in pairs:
            print(f"{pair.name}: {' '.join(pair.overrides)}", flush=True)
            results[pair.name] = run_pair(pair, args.seeds, Path(tmp))
            r = results[pair.name]
            print(f"    adapter: {r['adapter']}\n    solved {r['solved']}, median best eval "
                  f"{r['median_best_mean_reward']:.1f}", flush=True)
    print()
    print(markdown(results, args.seeds))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
