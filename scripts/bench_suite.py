"""Benchmark: the time-to-solve suite, every preset over several seeds.

Runs ``rlkit train experiment=<preset> seed=<s>`` for every preset in ``configs/experiment/`` and seeds
0..n-1, one subprocess at a time, each into ``<out>/<preset>/seed<s>``, stopping a run at its first evaluation
that meets the env's threshold (``callbacks.eval.stop_on_threshold=true``; presets whose env has no threshold,
such as MPE, train their whole budget). A run whose ``summary.json`` already exists is not run again, so an
interrupted suite continues where it stopped; a run directory without one (a run cut off) is started afresh.

Per preset it reports how many seeds solved, and over the solved seeds the median and range of the env steps,
training seconds (evaluations excluded) and wall seconds (evaluations included) to the threshold, and over all
seeds the median final evaluation (with stopping on, a solved seed's final evaluation is the solving one).
It writes every per-seed figure as JSON, the table as Markdown, and one plot per env family with
``rlkit plot``'s functions: each preset's evaluations, mean over seeds with a 95% band, against env steps and
wall time. A seed that stopped on solving is held at its solving evaluation up to the preset's last seed, so
that the mean does not end at the fastest seed.

Usage::

    python scripts/bench_suite.py                                   # every preset, seeds 0-4, into runs/suite
    python scripts/bench_suite.py --presets balancing_pole_dqn,balancing_pole_reinforce --seeds 3
    python scripts/bench_suite.py --presets all,robotic_arm_maddpg:3     # every preset, the arm's with 3 seeds
    python scripts/bench_suite.py --override total_steps=2000       # any override, passed to every run
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from rlkit.config import compose
from rlkit.plot import Group, curves, load_runs, plot_curves, read_scalar, reward_thresholds, write_csv
from rlkit.runs import SUMMARY_FILE

# What every run gets besides the preset and seed: no progress bar in a log, TensorBoard events for the plots.
PROTOCOL = ("callbacks.progress_bar=false", "callbacks.tensorboard=true")
RUN_INFO = "suite_run.json"  # beside summary.json: the command and the seconds its process took


def all_presets() -> list[str]:
    """The preset names in ``configs/experiment/``, sorted."""
    folder = resources.files("rlkit.configs") / "experiment"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_info(preset: str, overrides: list[str]) -> dict[str, Any]:
    """The composed preset's env family, budget and thresholds."""
    cfg = compose([f"experiment={preset}", *overrides])
    return {"env": cfg.env.name, "budget": cfg.total_steps,
            "reward_threshold": getattr(cfg.env, "reward_threshold", None),
            "success_threshold": getattr(cfg.env, "success_threshold", None)}


def has_threshold(info: dict[str, Any]) -> bool:
    """Whether the preset's env says when it is solved (MPE's do not)."""
    return info["reward_threshold"] is not None or info["success_threshold"] is not None


def run_overrides(preset: str, seed: int, info: dict[str, Any], stop: bool, extra: list[str]) -> list[str]:
    """The ``rlkit train`` overrides of one run (its directory is given separately)."""
    return [f"experiment={preset}", f"seed={seed}", *PROTOCOL,
            f"callbacks.eval.stop_on_threshold={str(stop and has_threshold(info)).lower()}", *extra]


def train_once(run_dir: Path, overrides: list[str]) -> tuple[dict[str, Any], bool]:
    """Run ``rlkit train`` into ``run_dir`` unless it has finished before; its summary and whether it ran."""
    summary_path = run_dir / SUMMARY_FILE
    if summary_path.is_file():
        saved = run_dir / ".hydra" / "overrides.yaml"
        before = [o for o in OmegaConf.to_container(OmegaConf.load(saved)) if not o.startswith("hydra.")]
        if before != overrides:
            raise SystemExit(f"bench_suite.py: {run_dir} was made with other overrides ({' '.join(before)}); "
                             "delete it or choose another --out")
        return json.loads(summary_path.read_text()), False
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a run cut off before its summary: its events would mix with the new run's
    command = [str(Path(sys.executable).parent / "rlkit"), "train", *overrides, f"hydra.run.dir={run_dir}"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"bench_suite.py: {' '.join(command)} failed (exit {done.returncode}):\n{tail}")
    (run_dir / RUN_INFO).write_text(json.dumps({"command": command, "process_seconds": seconds}, indent=2) + "\n")
    return json.loads(summary_path.read_text()), True


def seed_figures(run_dir: Path, seed: int, summary: dict[str, Any]) -> dict[str, Any]:
    """One seed's figures: to the threshold (None where unsolved), final and best evaluation, time taken."""
    solved = summary["solved"]
    wall_to_threshold = None
    if solved is not None:
        steps, wall, _ = read_scalar(run_dir / "tb", "eval/mean_reward")
        wall_to_threshold = float(wall[np.searchsorted(steps, solved["step"])])
    process = json.loads((run_dir / RUN_INFO).read_text())["process_seconds"]
    return {"seed": seed, "run": str(run_dir), "solved": solved is not None,
            "steps_to_threshold": solved["step"] if solved else None,
            "train_seconds_to_threshold": solved["train_seconds"] if solved else None,
            "wall_seconds_to_threshold": wall_to_threshold,
            "steps": summary["steps"], "wall_seconds": summary["wall_seconds"], "process_seconds": process,
            "final_eval": summary["final_eval"], "best_eval": summary["best_eval"]}


def spread(values: list[float]) -> dict[str, float] | None:
    """Median, min and max, or None for no values."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def preset_figures(info: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A preset's figures over its seeds."""
    solved = [r for r in runs if r["solved"]]
    finals = [r["final_eval"] for r in runs]
    rates = [f["success_rate"] for f in finals if "success_rate" in f]
    return {
        **info, "solved": len(solved), "seeds": len(runs),
        "steps_to_threshold": spread([r["steps_to_threshold"] for r in solved]),
        "train_seconds_to_threshold": spread([r["train_seconds_to_threshold"] for r in solved]),
        "wall_seconds_to_threshold": spread([r["wall_seconds_to_threshold"] for r in solved]),
        "final_mean_reward": spread([f["mean_reward"] for f in finals]),
        # Multi-agent runs solve by the smallest agent mean (the score); the others have no score.
        "final_score": spread([f["score"] for f in finals if "score" in f]),
        "final_success_rate": spread(rates),
        "process_seconds": sum(r["process_seconds"] for r in runs),
        "runs": runs,
    }


def _threshold(p: dict[str, Any]) -> str:
    parts = []
    if p["reward_threshold"] is not None:
        parts.append(f"return {p['reward_threshold']:g}" + (" (every agent)" if p["final_score"] else ""))
    if p["success_threshold"] is not None:
        parts.append(f"success {p['success_threshold']:.0%}")
    return ", ".join(parts) or "none"


def _range(s: dict[str, float] | None, fmt: str) -> str:
    if s is None:
        return "—"
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}–{s['max']:{fmt}})"


def markdown(results: dict[str, Any]) -> str:
    """The suite's table: one row per preset."""
    rows = ["| preset | threshold | budget | solved | env steps to threshold | training s to threshold | "
            "wall s to threshold | final evaluation |", "|---|---|---|---|---|---|---|---|"]
    for name, p in results["presets"].items():
        final = f"{p['final_mean_reward']['median']:.1f}"
        if p["final_score"] is not None:
            final += f" (lowest agent {p['final_score']['median']:.1f})"
        if p["final_success_rate"] is not None:
            final += f", success {p['final_success_rate']['median']:.0%}"
        solved = f"{p['solved']}/{p['seeds']}" if _threshold(p) != "none" else "—"
        rows.append(f"| `{name}` | {_threshold(p)} | {p['budget']:,} | {solved} | "
                    f"{_range(p['steps_to_threshold'], ',.0f')} | {_range(p['train_seconds_to_threshold'], '.1f')} | "
                    f"{_range(p['wall_seconds_to_threshold'], '.1f')} | {final} |")
    return "\n".join(rows) + "\n"


def _hold_solved(group: Group) -> None:
    """Extend each seed that stopped on solving with its solving evaluation, up to the group's last seed."""
    last_step = max(float(r.steps[-1]) for r in group.runs)
    last_wall = max(float(r.wall[-1]) for r in group.runs)
    for run in group.runs:
        solved = run.summary.get("solved")
        stopped = solved is not None and run.summary["steps"] == solved["step"]
        if stopped and (run.steps[-1] < last_step or run.wall[-1] < last_wall):
            # The held point repeats the last value, so a repeated step or time leaves the curves unambiguous.
            run.steps = np.append(run.steps, last_step)
            run.wall = np.append(run.wall, last_wall)
            run.values = np.append(run.values, run.values[-1])


def plot_family(presets: dict[str, Path], out: Path, success_threshold: float | None) -> Path:
    """One PNG (and CSV) of one env's presets: evaluations against env steps and wall seconds.

    An env with a success threshold (the arm) is judged by its success rate, so that is drawn; else the return.
    """
    tag = "eval/success_rate" if success_threshold is not None else "eval/mean_reward"
    groups = []
    for name, folder in presets.items():
        group = Group(label=name, runs=load_runs([folder], tag=tag))
        _hold_solved(group)
        groups.append(group)
    with warnings.catch_warnings():  # the seeds' unequal lengths are expected here, and held as above
        warnings.filterwarnings("ignore", message=".*stopped on reaching the threshold")
        drawn = [c for kind in ("steps", "wall") for c in curves(groups, x=kind)]
    runs = [r for g in groups for r in g.runs]
    thresholds = (reward_thresholds(runs) if success_threshold is None
                  else {success_threshold: f"success threshold {success_threshold:.0%}"})
    png = plot_curves(drawn, out, tag=tag, thresholds=thresholds, size=(1100, 420))
    write_csv(drawn, png.with_suffix(".csv"))
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per preset (default 5)")
    parser.add_argument("--presets", default="all",
                        help="comma-separated preset names, each optionally with its own seed count (NAME:N); "
                             "'all' for every preset (default)")
    parser.add_argument("--out", type=Path, default=Path("runs/suite"), help="run directories go here")
    parser.add_argument("--json", type=Path, help="figures as JSON (default: <out>/suite.json)")
    parser.add_argument("--markdown", type=Path, help="the table as Markdown (default: <out>/suite.md)")
    parser.add_argument("--plot", type=Path, help="folder for the plots, <family>.png each (default: <out>)")
    parser.add_argument("--stop-on-threshold", action=argparse.BooleanOptionalAction, default=True,
                        help="stop each run at its first solving evaluation (default; --no-stop-on-threshold "
                             "trains every budget in full)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a Hydra override for every run, e.g. total_steps=2000 (repeatable)")
    args = parser.parse_args(argv)
    valid = all_presets()
    presets: dict[str, int] = {}  # preset -> its number of seeds
    for item in (p.strip() for p in args.presets.split(",") if p.strip()):
        name, _, seeds = item.partition(":")
        if not (seeds or str(args.seeds)).isdigit() or int(seeds or args.seeds) < 1:
            print(f"bench_suite.py: error: {item!r}: the number of seeds must be a whole number >= 1",
                  file=sys.stderr)
            return 2
        for preset in valid if name == "all" else [name]:
            presets[preset] = int(seeds or args.seeds)
    unknown = [p for p in presets if p not in valid]
    if unknown or not presets:
        problem = f"unknown preset(s) {', '.join(unknown)}" if unknown else "no preset given"
        print(f"bench_suite.py: error: {problem}; valid presets: {', '.join(valid)}", file=sys.stderr)
        return 2

    started = time.perf_counter()
    results: dict[str, Any] = {"command": " ".join(["python scripts/bench_suite.py", *(argv or sys.argv[1:])]),
                               "default_seeds": args.seeds, "stop_on_threshold": args.stop_on_threshold,
                               "overrides": args.override, "presets": {}}
    for preset, n_seeds in presets.items():
        info = preset_info(preset, args.override)
        runs = []
        for seed in range(n_seeds):
            run_dir = args.out / preset / f"seed{seed}"
            summary, ran = train_once(run_dir, run_overrides(preset, seed, info, args.stop_on_threshold,
                                                             args.override))
            runs.append(seed_figures(run_dir, seed, summary))
            r = runs[-1]
            state = (f"solved at {r['steps_to_threshold']:,} steps, {r['wall_seconds_to_threshold']:.1f} s"
                     if r["solved"] else f"not solved in {r['steps']:,} steps" if has_threshold(info)
                     else f"trained {r['steps']:,} steps (no threshold)")
            print(f"{preset} seed {seed}: {state}; final eval {r['final_eval']['mean_reward']:.1f}"
                  f"{'' if ran else ' (done before)'}", flush=True)
        results["presets"][preset] = preset_figures(info, runs)
    results["suite_process_seconds"] = sum(p["process_seconds"] for p in results["presets"].values())
    results["this_invocation_seconds"] = time.perf_counter() - started

    table = markdown(results)
    print(table)
    json_path = args.json or args.out / "suite.json"
    md_path = args.markdown or args.out / "suite.md"
    plot_dir = args.plot or args.out
    for path in (json_path.parent, md_path.parent, plot_dir):
        path.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(table)
    families: dict[str, dict[str, Path]] = {}
    for name, p in results["presets"].items():
        families.setdefault(p["env"], {})[name] = args.out / name
    for family, members in families.items():
        success = results["presets"][next(iter(members))]["success_threshold"]
        print(f"plot: {plot_family(members, plot_dir / f'{family}.png', success)}")
    print(f"json: {json_path}\nmarkdown: {md_path}\nsuite: {results['suite_process_seconds']:.0f} s of runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
