"""Env steps/s with the env's copies in this process (sync), in subprocesses (async) and on Ray actors (ray).

    python scripts/bench_vectorization.py                      # the 5 ms-per-step test env, 2 copies, 2 workers
    python scripts/bench_vectorization.py --step-ms 1 --busy   # 1 ms of computing per step instead of sleeping
    python scripts/bench_vectorization.py --json out.json

The env is tests/slow_env.py (``env=gym env.id=slow_env:SlowEnv-v0``), built as ``rlkit train`` builds it
(rlkit.factory.build_env, env copies checked). Three parts:

1. Vector steps: ``make_vec(copies)`` stepped with random actions; env steps/s per mode.
2. Round trip: the same with a step that costs nothing: what one vector step costs beyond the env itself (pipes
   for async, a Ray call per actor and ``ray.get`` for ray). Copies elsewhere pay off once a step costs more than
   about that overhead divided by (copies - copies per worker).
3. A training run: REINFORCE (``agent=reinforce``) for ``--train-steps`` env steps per mode; env steps/s of the run
   (its summary's steps / wall seconds, start-up of the copies included).

Then the expected ray figure on a cluster of W cores (one actor per core, copies = 4 W), from the step cost c and
the round trip o(W) = o(1) + (W - 1) x (o(2) - o(1)) (the driver sends one call per actor; o(1) and o(2) measured):
env steps/s ~ copies / (c * copies / W + o(W)); a projection, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # slow_env, the test env

import numpy as np  # noqa: E402

from rlkit.config import compose  # noqa: E402
from rlkit.factory import build_env  # noqa: E402

MODES = ("sync", "async", "ray")


def make_vec(mode: str, copies: int, workers: int, step_ms: float, busy: bool):
    cfg = compose(["env=gym", "env.id=slow_env:SlowEnv-v0", f"+env.kwargs.step_seconds={step_ms / 1000}",
                   f"+env.kwargs.busy={str(busy).lower()}", f"env.vectorization={mode}", f"env.ray_actors={workers}"])
    cfg.validate()
    return build_env(cfg.env).make_vec(copies)


def vector_steps(mode: str, copies: int, workers: int, step_ms: float, busy: bool, seconds: float) -> float:
    """Env steps/s of ``make_vec(copies)`` stepped with random actions for about ``seconds`` (after a warm-up)."""
    envs = make_vec(mode, copies, workers, step_ms, busy)
    rng = np.random.default_rng(0)
    try:
        envs.reset(seed=0)
        for _ in range(10):
            envs.step(rng.integers(0, 2, copies))
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            envs.step(rng.integers(0, 2, copies))
            steps += 1
        return steps * copies / (time.perf_counter() - start)
    finally:
        envs.close()


def training_run(mode: str, copies: int, workers: int, step_ms: float, busy: bool, total: int) -> float:
    """Env steps/s of a REINFORCE run of ``total`` steps (start-up of the copies included)."""
    from rlkit.trainer import train

    cfg = compose(["env=gym", "env.id=slow_env:SlowEnv-v0", f"+env.kwargs.step_seconds={step_ms / 1000}",
                   f"+env.kwargs.busy={str(busy).lower()}", f"env.vectorization={mode}", f"env.ray_actors={workers}",
                   "agent=reinforce", f"agent.n_envs={copies}", "agent.steps_per_update=256", f"total_steps={total}",
                   "callbacks.eval.every_steps=0", "callbacks.eval.episodes=1", "callbacks.progress_bar=false",
                   "callbacks.tensorboard=false"])
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(cfg, Path(tmp) / "run")
    return summary["steps"] / summary["wall_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step-ms", type=float, default=5.0, help="cost of one env step, ms (default 5)")
    parser.add_argument("--busy", action="store_true", help="spend the step computing instead of sleeping")
    parser.add_argument("--copies", type=int, default=2, help="env copies (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors (async: one process per copy)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of stepping per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per figure (median)")
    parser.add_argument("--train-steps", type=int, default=2000, help="env steps of each training run (0: none)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, of sync, async, ray")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local Ray instance on 127.0.0.1 only

    def median(f, *a) -> float:
        return statistics.median(f(*a) for _ in range(args.repeat))

    kind = "computing" if args.busy else "sleeping"
    results: dict[str, dict[str, float]] = {}
    print(f"{args.copies} copies of SlowEnv-v0, {args.step_ms:g} ms per step ({kind}); ray: {args.workers} actors; "
          f"{os.cpu_count()} cores; median of {args.repeat}")
    print(f"{'mode':6} {'vector env steps/s':>19} {'round trip ms':>14} {'training steps/s':>17}")
    for mode in modes:
        rate = median(vector_steps, mode, args.copies, args.workers, args.step_ms, args.busy, args.seconds)
        empty = median(vector_steps, mode, args.copies, args.workers, 0.0, False, args.seconds)
        trip_ms = 1000 * args.copies / empty  # seconds per vector step when the env costs nothing
        run = training_run(mode, args.copies, args.workers, args.step_ms, args.busy, args.train_steps) \
            if args.train_steps else float("nan")
        results[mode] = {"env_steps_per_s": rate, "round_trip_ms": trip_ms, "training_steps_per_s": run}
        print(f"{mode:6} {rate:19.0f} {trip_ms:14.3f} {run:17.0f}", flush=True)
    if "ray" in results and args.workers > 1:
        c, o = args.step_ms / 1000, results["ray"]["round_trip_ms"] / 1000
        # The driver sends one call per actor: the round trip grows with the actors. One actor's, to see how much.
        o1 = median(vector_steps, "ray", 1, 1, 0.0, False, args.seconds)
        o1 = 1 / o1  # one copy: seconds per vector step
        per_actor = max(o - o1, 0.0) / (args.workers - 1)
        per_worker = -(-args.copies // args.workers)
        print(f"ray round trip: {1000 * o1:.2f} ms with 1 actor, {1000 * o:.2f} ms with {args.workers}: "
              f"+{1000 * per_actor:.2f} ms per actor")
        print(f"ray pays off over sync once a step costs more than ~{1000 * o / max(args.copies - per_worker, 1):.2f} "
              "ms (round trip / (copies - copies per actor))")
        print("expected ray env steps/s on W cores, one actor per core, 4 W copies (a projection from c and the "
              "round trip o(W) = o(1) + (W - 1) x the per-actor cost):")
        projection = {}
        for w in (2, 4, 8, 16, 32, 64):
            copies = 4 * w
            projection[w] = copies / (c * copies / w + o1 + (w - 1) * per_actor)
            print(f"  W={w:3}: {projection[w]:8.0f}")
        results["ray_round_trip_1_actor_ms"] = {"value": 1000 * o1}
        results["ray_projection"] = {str(w): v for w, v in projection.items()}
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **results}, indent=1))


if __name__ == "__main__":
    main()
