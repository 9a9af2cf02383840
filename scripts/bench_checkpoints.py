"""Training checkpoints: size and write time for every preset, and the overhead of checkpointing.

    python scripts/bench_checkpoints.py                      # every preset, 50k steps each, 5 checkpoints
    python scripts/bench_checkpoints.py --presets balancing_pole_dqn --steps 20000
    python scripts/bench_checkpoints.py --overhead robotic_arm_maddpg --overhead-steps 100000
    python scripts/bench_checkpoints.py --presets none --equivalence   # SIGTERM mid-run, continue, compare

Each preset trains for ``--steps`` steps (its own budget if smaller) with a checkpoint every fifth of them;
the table gives the size of the last checkpoint (it holds the replay buffer as filled by then) and the mean
time to write one. ``--overhead`` trains one preset twice, the same run, without checkpoints and with one every
``--overhead-interval`` seconds (default 300, the default interval), and prints both wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rlkit.callbacks import Callback
from rlkit.config import TrainConfig, compose
from rlkit.files import load_checkpoint
from rlkit.resume import RESUME_DIR, RunInterrupted, checkpoints, latest_checkpoint
from rlkit.trainer import train
from rlkit.verify import read_scalars

PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs" / "experiment"
QUIET = ["callbacks.progress_bar=false", "callbacks.tensorboard=true"]


def _config(preset: str, overrides: list[str]) -> TrainConfig:
    cfg = compose([*([f"experiment={preset}"] if preset else []), *QUIET, *overrides])
    assert isinstance(cfg, TrainConfig)
    return cfg


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure_preset(preset: str, steps: int) -> dict[str, float | int | str]:
    """Train ``preset`` for ``steps`` (at most its budget) with 5 checkpoints; their size and write time."""
    budget = _config(preset, []).total_steps
    steps = min(steps, budget)
    every = max(1, steps // 5)
    cfg = _config(preset, [f"total_steps={steps}", f"callbacks.checkpoint.every_steps={every}",
                           "callbacks.checkpoint.every_seconds=0", "callbacks.checkpoint.keep_after_finish=true",
                           f"callbacks.eval.every_steps={steps}"])
    with tempfile.TemporaryDirectory(prefix="rlkit-bench-ck-") as tmp:
        summary = train(cfg, Path(tmp))
        last = checkpoints(Path(tmp) / RESUME_DIR)[-1]
        size = _size(last)
        agent_size = (last / "agent.safetensors").stat().st_size
    writes = summary["checkpoint_write_seconds"]
    return {"preset": preset, "budget": budget, "steps": steps, "checkpoint_step": int(last.name.split("_")[1]),
            "size_mb": size / 1e6, "weights_mb": agent_size / 1e6, "writes": len(writes),
            "write_seconds": statistics.fmean(writes), "wall_seconds": summary["wall_seconds"]}


def measure_overhead(preset: str, steps: int, interval: float) -> dict[str, float | int | str]:
    """The same run without checkpoints and with one every ``interval`` seconds: both wall times."""
    walls = {}
    for label, overrides in (("without", ["callbacks.checkpoint.every_seconds=0"]),
                             ("with", [f"callbacks.checkpoint.every_seconds={interval}"])):
        cfg = _config(preset, [f"total_steps={steps}", "callbacks.checkpoint.every_steps=0", *overrides])
        with tempfile.TemporaryDirectory(prefix="rlkit-bench-ck-") as tmp:
            summary = train(cfg, Path(tmp))
        walls[label] = (summary["wall_seconds"], len(summary["checkpoint_write_seconds"]),
                        sum(summary["checkpoint_write_seconds"]))
    return {"preset": preset, "steps": steps, "interval": interval, "wall_without": walls["without"][0],
            "wall_with": walls["with"][0], "checkpoints": walls["with"][1], "write_seconds_total": walls["with"][2]}


class _Preempt(Callback):
    """Sends this process SIGTERM once ``at`` steps are taken, as a cluster scheduler would."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.at and self.num_steps >= self.at:
            self.at = 0
            os.kill(os.getpid(), signal.SIGTERM)
        return True


# One run per agent, stopped by SIGTERM about halfway and continued: (overrides, steps before the signal).
EQUIVALENCE = {
    "reinforce": (["experiment=balancing_pole_reinforce", "total_steps=60000"], 31_000),
    "dqn": (["experiment=balancing_pole_dqn", "total_steps=20000"], 10_500),
    "maddpg": (["experiment=multi_cartpole_maddpg", "total_steps=40000"], 20_500),
}


def measure_equivalence(agent: str) -> dict[str, Any]:
    """Train once straight through and once stopped by SIGTERM and continued; compare what both logged."""
    overrides, at = EQUIVALENCE[agent]
    base = [*overrides, "callbacks.checkpoint.every_seconds=0", "callbacks.checkpoint.every_steps=0"]
    with tempfile.TemporaryDirectory(prefix="rlkit-bench-resume-") as tmp:
        straight, stopped = Path(tmp) / "straight", Path(tmp) / "stopped"
        train(_config("", base), straight, callbacks=[_Preempt(0)])
        try:
            train(_config("", base), stopped, callbacks=[_Preempt(at)])
            raise AssertionError("the run was not interrupted")
        except RunInterrupted:
            pass
        checkpoint = latest_checkpoint(stopped)
        train(_config("", base), stopped, callbacks=[_Preempt(0)], resume_from=checkpoint)
        a, b = read_scalars(straight / "tb"), read_scalars(stopped / "tb")
        tags = [t for t in a if not t.startswith("time/")]
        same = all(a[t] == b.get(t) for t in tags) and sorted(tags) == sorted(t for t in b if not t.startswith("time/"))
        wa = load_checkpoint(straight / "checkpoints" / "last.safetensors")[0]
        wb = load_checkpoint(stopped / "checkpoints" / "last.safetensors")[0]
        weights = sorted(wa) == sorted(wb) and all(np.array_equal(wa[k].numpy(), wb[k].numpy()) for k in wa)
    return {"agent": agent, "run": " ".join(overrides), "stopped_at": checkpoint.step,
            "episodes": len(a["episode/reward"]), "values": sum(len(a[t]) for t in tags), "tags": len(tags),
            "scalars_identical": same, "weights_identical": weights}


def main(argv: list[str] | None = None) -> None:
    """Run the measurements and print a Markdown table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="all", help="comma-separated preset names (default: every preset)")
    parser.add_argument("--steps", type=int, default=50_000, help="steps per preset (default 50000)")
    parser.add_argument("--overhead", default=None, help="a preset to time without and with checkpoints")
    parser.add_argument("--overhead-steps", type=int, default=100_000)
    parser.add_argument("--overhead-interval", type=float, default=300.0)
    parser.add_argument("--equivalence", action="store_true",
                        help="also stop a run of each agent with SIGTERM, continue it, and compare")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    known = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
    presets = known if args.presets == "all" else [] if args.presets == "none" else args.presets.split(",")
    unknown = [p for p in presets + ([args.overhead] if args.overhead else []) if p not in known]
    if unknown:
        sys.exit(f"bench_checkpoints: unknown presets {unknown}; choose from {', '.join(known)}")

    rows = []
    if presets:
        print("| preset | checkpoint at step (budget) | size MB (weights MB) | write s |")
        print("|---|---|---|---|")
    for preset in presets:
        row = measure_preset(preset, args.steps)
        rows.append(row)
        print(f"| {preset} | {row['checkpoint_step']:,} ({row['budget']:,}) | {row['size_mb']:.1f} "
              f"({row['weights_mb']:.2f}) | {row['write_seconds']:.3f} |", flush=True)
    overhead = None
    if args.overhead:
        overhead = measure_overhead(args.overhead, args.overhead_steps, args.overhead_interval)
        extra = overhead["wall_with"] - overhead["wall_without"]
        print(f"\noverhead, {overhead['preset']} for {overhead['steps']:,} steps: {overhead['wall_without']:.1f} s "
              f"without checkpoints, {overhead['wall_with']:.1f} s with one every {overhead['interval']:g} s "
              f"({overhead['checkpoints']} written, {overhead['write_seconds_total']:.2f} s writing; "
              f"difference {extra:+.1f} s, {100 * extra / overhead['wall_without']:+.1f}%)")
    equivalence = []
    if args.equivalence:
        print("\n| agent | run | SIGTERM; continued from step | episodes | values compared (tags) | scalars "
              "| weights |")
        print("|---|---|---|---|---|---|---|")
        for agent in EQUIVALENCE:
            row = measure_equivalence(agent)
            equivalence.append(row)
            print(f"| {agent} | `{row['run']}` | {row['stopped_at']:,} | {row['episodes']:,} | {row['values']:,} "
                  f"({row['tags']}) | {'identical' if row['scalars_identical'] else 'DIFFERENT'} | "
                  f"{'identical' if row['weights_identical'] else 'DIFFERENT'} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"presets": rows, "overhead": overhead, "equivalence": equivalence},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
