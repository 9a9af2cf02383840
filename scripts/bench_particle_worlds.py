"""Benchmark: env steps per second of the batched particle worlds next to mpe2's envs, in the same process.

For each scenario, ``env=mpe env.name=<scenario>`` as training builds it (``make_vec(n)``, the action checks
included) with ``env.batched=true`` (rlkit's NumPy version, every copy stepped at once) and, as the anchor,
``env.batched=false`` (mpe2's PettingZoo env, copies stepped one at a time). Uniformly random actions drawn
beforehand; an env step is one step of one copy, autoreset steps included. Each figure is the best of
``--repeats`` timed runs of about ``--seconds`` seconds.

``--learning STEPS``: instead, env steps per second of training, learning included: ``experiment=mpe_maddpg``
(or ``--preset``) for STEPS env steps on the batched env and, as the anchor, ``--anchor-steps`` on mpe2's;
training wall time without evaluation, one seed.

Usage::

    python scripts/bench_particle_worlds.py
    python scripts/bench_particle_worlds.py --scenarios simple_spread_v3 --copies 1 16 1024 --json mpe.json
    python scripts/bench_particle_worlds.py --learning 300000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rlkit.trainer
from rlkit.config import compose
from rlkit.factory import build_env


def steps_per_second(envs: Any, seconds: float, repeats: int) -> float:
    """Env steps (copies x vector steps) per second of random play, the best of ``repeats`` runs."""
    rng = np.random.default_rng(0)
    moves = envs.single_action_space.n  # 5 moves; simple_crypto_v3's 4 words
    actions = rng.integers(0, moves, (64, envs.num_envs, envs.num_agents))
    envs.reset(seed=0)
    best = 0.0
    for _ in range(repeats):
        steps, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for a in actions[:16]:
                envs.step(a)
            steps += 16
        best = max(best, steps * envs.num_envs / elapsed)
    envs.close()
    return best


def learning_rate(preset: str, steps: int, batched: bool, seed: int = 0) -> dict[str, float]:
    """Env steps per second of training ``preset`` for ``steps`` env steps, learning included."""
    cfg = compose([f"experiment={preset}", f"env.batched={str(batched).lower()}", f"total_steps={steps}",
                   f"seed={seed}", "callbacks.tensorboard=false", "callbacks.progress_bar=false",
                   f"callbacks.eval.every_steps={steps}"])
    with tempfile.TemporaryDirectory() as tmp:
        s = rlkit.trainer.train(cfg, Path(tmp) / "run")
    return {"steps": s["steps"], "train_seconds": s["train_seconds"],
            "steps_per_second": s["steps"] / s["train_seconds"]}


def bench_learning(preset: str, steps: int, anchor_steps: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    results = {}
    for name, batched, n in (("batched", True, steps), ("mpe2", False, anchor_steps)):
        if n <= 0:
            continue
        r = results[name] = learning_rate(preset, n, batched)
        print(f"experiment={preset} env.batched={str(batched).lower()}: {r['steps']:,} env steps in "
              f"{r['train_seconds']:.1f} s of training: {r['steps_per_second']:,.0f} env steps/s with learning",
              flush=True)
    if len(results) == 2:
        print(f"batched / mpe2: {results['batched']['steps_per_second'] / results['mpe2']['steps_per_second']:,.1f}x")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", default=["simple_spread_v3", "simple_adversary_v3", "simple_tag_v3"])
    parser.add_argument("--copies", nargs="+", type=int, default=[1, 16, 256, 1024, 4096])
    parser.add_argument("--mpe2-copies", nargs="+", type=int, default=[1, 16], help="copies for mpe2's env")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--learning", type=int, metavar="STEPS", help="measure training with learning instead")
    parser.add_argument("--anchor-steps", type=int, default=20_000, help="steps of the mpe2 anchor run (0: none)")
    parser.add_argument("--preset", default="mpe_maddpg", help="experiment preset of --learning")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if args.learning:
        results = bench_learning(args.preset, args.learning, args.anchor_steps)
        args.scenarios = []
    for name in args.scenarios:
        row: dict[str, Any] = {"mpe2": {}, "batched": {}}
        for batched, copies in (("false", args.mpe2_copies), ("true", args.copies)):
            env = build_env(compose(["env=mpe", f"env.name={name}", f"env.batched={batched}"]).env)
            for n in copies:
                rate = steps_per_second(env.make_vec(n), args.seconds, args.repeats)
                row["batched" if batched == "true" else "mpe2"][n] = rate
                print(f"{name:20s} {'batched' if batched == 'true' else 'mpe2':8s} {n:>5} copies: "
                      f"{rate:>12,.0f} env steps/s", flush=True)
        anchor = max(row["mpe2"].values())
        print(f"{name:20s} best batched / best mpe2: {max(row['batched'].values()) / anchor:,.0f}x", flush=True)
        results[name] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
