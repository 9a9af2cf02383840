"""Benchmark: REINFORCE's time to solve CartPole-v1, and the batched balancing pole's throughput.

(a) REINFORCE with the ``balancing_pole_reinforce`` preset's hyperparameters on Gymnasium's ``CartPole-v1``:
    wall seconds of training and episodes until the mean return of the last 25 training episodes reaches
    400, per seed and median; runs go one at a time.
(b) Environment steps per second of ``BalancingPoleVectorEnv`` (random actions, autoreset included) for
    1, 64, 1024 and 16384 copies, next to Gymnasium's ``CartPoleVectorEnv`` measured in the same run.
(c) Where a step of 1,024 copies goes (``--part step``): microseconds per step of the physics and observations
    alone, then with the action check, then with the restarts, then the whole ``step``, and ``CartPoleVectorEnv``'s.

Usage::

    python scripts/bench_reinforce.py                  # both parts
    python scripts/bench_reinforce.py --part vector --json bench.json
    python scripts/bench_reinforce.py --part step
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

import rlkit.trainer
from rlkit.callbacks import Callback
from rlkit.config import compose
from rlkit.envs import BalancingPoleVectorEnv
from rlkit.envs.balancing_pole import step_arrays

SOLVE_OVERRIDES = [
    "experiment=balancing_pole_reinforce",
    "env=gym",
    "env.id=CartPole-v1",
    "total_steps=2000000",
    "callbacks.eval.every_steps=0",
    "callbacks.tensorboard=false",
    "callbacks.progress_bar=false",
]


class StopAtMeanReturn(Callback):
    """Stops training when the mean return of the last ``window`` training episodes reaches ``target``."""

    def __init__(self, target: float = 400.0, window: int = 25) -> None:
        super().__init__()
        self.target = target
        self.returns: deque[float] = deque(maxlen=window)
        self.reached: dict[str, float] | None = None

    def _on_episode_end(self, episode: Any) -> None:
        self.returns.append(episode.reward)
        if (self.reached is None and len(self.returns) == self.returns.maxlen
                and np.mean(self.returns) >= self.target):
            assert self.ctx is not None
            self.reached = {"episodes": self.num_episodes, "steps": episode.step,
                            "seconds": time.perf_counter() - self.ctx.start_time}

    def _on_step(self) -> bool:
        return self.reached is None


def solve_once(seed: int, workdir: Path) -> dict[str, Any]:
    cfg = compose([*SOLVE_OVERRIDES, f"seed={seed}"])
    stop = StopAtMeanReturn()
    rlkit.trainer.train(cfg, workdir / f"seed{seed}", callbacks=[stop])  # type: ignore[arg-type]
    return {"seed": seed, "solved": stop.reached is not None, **(stop.reached or {})}


def bench_solve(seeds: int) -> dict[str, Any]:
    print(f"(a) REINFORCE (balancing_pole_reinforce hyperparameters) on CartPole-v1: until the mean of the last "
          f"25 training episodes reaches 400, {seeds} seeds")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            r = solve_once(seed, Path(tmp))
            runs.append(r)
            shown = (f"{r['seconds']:5.2f} s, {r['episodes']:>5} episodes, {r['steps']:>8,} steps"
                     if r["solved"] else "not solved")
            print(f"    seed {seed}: {shown}", flush=True)
    secs = [r["seconds"] if r["solved"] else float("inf") for r in runs]
    eps = [r["episodes"] if r["solved"] else float("inf") for r in runs]
    summary = {"runs": runs, "solved": f"{sum(r['solved'] for r in runs)}/{len(runs)}",
               "median_seconds": statistics.median(secs), "median_episodes": statistics.median(eps)}
    print(f"    solved {summary['solved']}, median {summary['median_seconds']:.2f} s, "
          f"{summary['median_episodes']:.0f} episodes")
    return summary


def _steps_per_second(env: Any, n: int, calls: int) -> float:
    actions = [np.random.default_rng(i).integers(0, 2, n) for i in range(64)]
    start = time.perf_counter()
    for k in range(calls):
        env.step(actions[k % 64])
    return n * calls / (time.perf_counter() - start)


def bench_vector(repeats: int = 5, min_steps: int = 3_000_000) -> dict[str, Any]:
    print(f"(b) batched env steps per second, random actions, best of {repeats} interleaved runs")
    print(f"    {'copies':>7}{'BalancingPoleVectorEnv':>25}{'CartPoleVectorEnv':>20}{'ratio':>8}")
    results = {}
    for n in (1, 64, 1024, 16384):
        calls = max(300, min(50_000, min_steps // n))  # enough calls to time, at every size
        envs = {"rlkit": BalancingPoleVectorEnv(num_envs=n), "gymnasium": CartPoleVectorEnv(num_envs=n)}
        best = dict.fromkeys(envs, 0.0)
        for env in envs.values():
            env.reset(seed=0)
        # Alternate the two, so a slow spell of the machine cannot favour either.
        for _ in range(repeats):
            for name, env in envs.items():
                best[name] = max(best[name], _steps_per_second(env, n, calls))
        results[n] = best
        print(f"    {n:>7}{best['rlkit']:>25,.0f}{best['gymnasium']:>20,.0f}{best['rlkit'] / best['gymnasium']:>7.2f}x",
              flush=True)
    return results


def bench_step_parts(n: int = 1024, calls: int = 3000, repeats: int = 7) -> dict[str, float]:
    """Microseconds per step of ``n`` copies, the step built up part by part; best of interleaved runs."""
    env, gym_env = BalancingPoleVectorEnv(num_envs=n), CartPoleVectorEnv(num_envs=n)
    env.reset(seed=0)
    gym_env.reset(seed=0)
    actions = [np.random.default_rng(i).integers(0, 2, n) for i in range(64)]
    # The env's own parts (private: this measures them), in the order step() runs them.
    phys, push, state = env._phys, env._push, env._state

    def physics() -> None:  # fallen copies are put upright again, without the restarts' random draws
        for k in range(calls):
            fallen = step_arrays(phys, state, push.take(actions[k % 64]))
            state.T.astype(np.float32)
            state[:, fallen] = 0.0

    def checked() -> None:
        for k in range(calls):
            fallen = step_arrays(phys, state, env._forces(actions[k % 64]))
            state.T.astype(np.float32)
            state[:, fallen] = 0.0

    def restarts() -> None:
        for k in range(calls):
            np.copyto(env._prev_done, step_arrays(phys, state, env._forces(actions[k % 64])))
            env._restart()
            env._reply()

    def whole(target: Any) -> Any:
        def run() -> None:
            for k in range(calls):
                target.step(actions[k % 64])
        return run

    parts = {"physics and observations": physics, "+ action check": checked, "+ restarts": restarts,
             "whole step": whole(env), "CartPoleVectorEnv step": whole(gym_env)}
    best = dict.fromkeys(parts, float("inf"))
    for _ in range(repeats):
        for name, run in parts.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], (time.perf_counter() - start) / calls * 1e6)
    print(f"(c) microseconds per step of {n:,} copies, best of {repeats} interleaved runs of {calls:,} steps")
    for name, us in best.items():
        print(f"    {name:<26}{us:7.1f}")
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "solve", "vector", "step"], default="all")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"versions": rlkit.trainer.package_versions()}
    if args.part in ("all", "solve"):
        out["solve"] = bench_solve(args.seeds)
    if args.part in ("all", "vector"):
        out["vector"] = bench_vector()
    if args.part in ("all", "step"):
        out["step"] = bench_step_parts()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
