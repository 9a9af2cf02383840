"""Benchmark: what a multirun costs beyond its jobs' own work, per launcher.

The same sweep of small jobs (DQN on the balancing pole, ``--steps`` steps each, seeds 0..N-1) runs through
the real ``rlkit train -m`` command with each launcher:

    basic              Hydra's basic launcher: one job after another, in the rlkit process
    joblib             the default: parallel worker processes on this machine (hydra.launcher.n_jobs=-1)
    ray (new local)    rlkit's Ray launcher starting a local Ray instance for the sweep
    ray (running)      rlkit's Ray launcher on a Ray head already running on loopback (RAY_ADDRESS), started
                       before the timer

For each: the command's wall time (process start to exit); the jobs' own seconds (``wall_seconds`` of their
``summary.json``: building, training, evaluating, saving; summed); the ideal wall, the fixed cost of one
``rlkit train`` (its wall minus its job's own seconds: interpreter, imports, Hydra) plus the jobs' own
seconds divided by the parallel jobs (1 for basic, the core count otherwise); and the overhead per job,
(wall - ideal) / jobs: starting workers, importing rlkit in them, dispatching, gathering. Variants run
interleaved; each figure is the median over the repeats.

Usage::

    nice -n 10 python scripts/bench_sweeps.py                    # 8 jobs of 500 steps, 3 repeats
    python scripts/bench_sweeps.py --steps 10000 --json sweeps.json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

JOB = ["callbacks.eval.every_steps=0", "callbacks.eval.episodes=2", "callbacks.progress_bar=false",
       "callbacks.tensorboard=false"]


def rlkit_command() -> list[str]:
    script = Path(sys.executable).parent / "rlkit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rlkit.cli"]


def run(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one ``rlkit`` command; raises with its output if it fails."""
    start = time.perf_counter()
    out = subprocess.run([*rlkit_command(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"rlkit {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return wall


def job_seconds(root: Path) -> tuple[int, float]:
    """Number of runs under ``root`` and the sum of their own wall seconds."""
    walls = [json.loads(p.read_text())["wall_seconds"] for p in root.rglob("summary.json")]
    return len(walls), sum(walls)


@contextmanager
def ray_head(cpus: int) -> Iterator[dict[str, str]]:
    """A Ray head on loopback for the ``ray (running)`` variant; yields the environment that reaches it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp_dir = tempfile.mkdtemp(prefix="rk-ray-", dir="/tmp")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}",
         f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert head.stdout is not None
        for line in head.stdout:
            if "block forever" in line:
                break
        if head.poll() is not None:
            raise RuntimeError("ray start --head failed")
        yield {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=8, help="jobs per sweep (seeds 0..jobs-1)")
    parser.add_argument("--steps", type=int, default=500, help="training steps per job")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (interleaved)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray variants")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    cpus = os.cpu_count() or 1
    seeds = "seed=" + ",".join(str(s) for s in range(args.jobs))
    job = [f"total_steps={args.steps}", *JOB]
    base_env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    variants: list[tuple[str, list[str], int]] = [
        ("basic", ["hydra/launcher=basic"], 1),
        ("joblib", [], cpus),
    ]
    try:
        import ray  # noqa: F401

        have_ray = not args.no_ray
    except ImportError:
        have_ray = False
    if have_ray:
        variants += [("ray (new local)", ["hydra/launcher=ray", f"hydra.launcher.ray.init.num_cpus={cpus}"], cpus),
                     ("ray (running)", ["hydra/launcher=ray"], cpus)]

    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
    fixed: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-sweeps-") as tmp, ExitStack() as stack:
        head_env = stack.enter_context(ray_head(cpus)) if have_ray else None
        for repeat in range(args.repeats):
            cwd = Path(tmp) / f"single-{repeat}"
            cwd.mkdir()
            wall = run(["train", *job], cwd, base_env)
            fixed.append(wall - job_seconds(cwd / "runs")[1])
            for name, extra, parallel in variants:
                cwd = Path(tmp) / f"{name.replace(' ', '_').strip('()')}-{repeat}"
                cwd.mkdir()
                env = head_env if name == "ray (running)" and head_env else {
                    k: v for k, v in base_env.items() if k != "RAY_ADDRESS"}
                wall = run(["train", "-m", seeds, *job, *extra], cwd, env)
                n, work = job_seconds(cwd / "runs")
                assert n == args.jobs, f"{name}: {n} runs, expected {args.jobs}"
                ideal = fixed[-1] + work / min(parallel, args.jobs)
                results[name].append({"wall": wall, "job_seconds": work, "ideal": ideal,
                                      "overhead_per_job": (wall - ideal) / args.jobs})
                print(f"  repeat {repeat + 1}: {name:<16} {wall:6.1f} s", file=sys.stderr)

    print(f"{args.jobs} jobs (DQN on the balancing pole, {args.steps} steps, 2 evaluation episodes) on {cpus} cores, "
          f"median of {args.repeats}")
    print(f"    fixed cost of one `rlkit train`: {statistics.median(fixed):.1f} s")
    print(f"    {'launcher':<16} {'wall s':>7} {'jobs own s':>11} {'ideal s':>8} {'overhead s/job':>15} "
          f"{'speed-up vs basic':>18}")
    basic_wall = statistics.median(r["wall"] for r in results["basic"])
    summary: dict[str, Any] = {"jobs": args.jobs, "steps": args.steps, "cpus": cpus, "repeats": args.repeats,
                               "fixed_cost": statistics.median(fixed), "launchers": {}}
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        summary["launchers"][name] = med
        print(f"    {name:<16} {med['wall']:7.1f} {med['job_seconds']:11.1f} {med['ideal']:8.1f} "
              f"{med['overhead_per_job']:15.2f} {basic_wall / med['wall']:17.2f}x")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
