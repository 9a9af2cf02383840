"""Learning curves of runs grouped by config without the seed: ``rlkit plot DIR...`` (docs/dashboards.md)."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from rlkit.errors import RlkitError, RunDirError
from rlkit.manual import as_override
from rlkit.runs import CONFIG_FILE, SUMMARY_FILE, changed_files, damaged_events, flatten, read_events, read_yaml

TB_DIR = "tb"
DEFAULT_TAG = "episode/reward"
X_KINDS = ("steps", "wall")
X_LABELS = {"steps": "environment steps", "wall": "wall-clock seconds since the run started"}

# Keys that change how a run is shown or logged, not what it learns: runs that differ only in these (and in
# the seed) are seeds of one configuration. Hydra's own settings are not in the saved config at all.
NOT_CONFIG = frozenset({"seed", "callbacks.progress_bar", "callbacks.tensorboard"})
# Keys that name a group only when nothing else tells the groups apart: how long and how often, not what.
SECONDARY = ("callbacks.", "total_steps", "torch_threads")
EPISODE_SMOOTH = 20  # per-episode tags (episode/...) are averaged over this many episodes unless --smooth says


class PlotError(RlkitError, ValueError):
    """The runs cannot be plotted as asked (no run has the tag, an option is out of range)."""


@dataclass
class Run:
    """One run directory and one scalar it logged, at increasing steps (values at one step averaged)."""

    path: Path
    config: dict[str, Any]
    """The resolved config, flattened to dotted keys (``agent.learning_rate``)."""
    summary: dict[str, Any]
    steps: np.ndarray
    wall: np.ndarray
    """Seconds from the run's first TensorBoard event to each of ``steps``."""
    values: np.ndarray


@dataclass
class Group:
    """Runs with the same config apart from the seed, labelled by the keys that set it apart from the others."""

    label: str
    runs: list[Run] = field(default_factory=list)


@dataclass
class Curve:
    """One group against one x axis (``steps`` or ``wall``): the mean over its runs and a 95% t-interval."""

    group: str
    x_kind: str
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_runs: int
    runs: np.ndarray = field(repr=False)
    """Every run interpolated onto ``x``, shape (n_runs, len(x)), in the group's run order."""


def find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every run directory at or under the given paths, each once: path by path, in natural order within each."""
    found: dict[Path, None] = {}
    given = [Path(p).expanduser() for p in paths]
    for root in given:
        if not root.exists():
            raise RunDirError(f"{root} does not exist")
        if not root.is_dir():
            raise RunDirError(f"{root} is not a directory; give run directories or folders that hold them")
        under = []
        for dirpath, dirnames, _ in os.walk(root):
            here = Path(dirpath)
            if (here / SUMMARY_FILE).is_file() and (here / CONFIG_FILE).is_file() and (here / TB_DIR).is_dir():
                under.append(here)
                dirnames.clear()  # runs do not nest
            else:
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        # Natural order: a sweep's job 10 comes after job 9, not after job 1.
        natural = sorted(under, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))])
        found.update(dict.fromkeys(natural))
    if not found:
        where = ", ".join(str(p) for p in given)
        raise RunDirError(f"no rlkit run directories under {where} (a run directory holds {SUMMARY_FILE}, "
                          f"{CONFIG_FILE} and {TB_DIR}/; runs still training have no {SUMMARY_FILE} yet)")
    return list(found)


def _load(path: Path) -> dict[str, Any]:
    """A run's summary (JSON) or config (YAML, as written: its interpolations are never resolved)."""
    if path.suffix != ".json":
        data = OmegaConf.to_container(read_yaml(path), resolve=False)
    else:
        try:
            data = json.loads(path.read_text())
        except Exception as e:  # OS, JSON and recursion errors share no base class worth naming
            raise RunDirError(f"{path} is corrupt: {e}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path} is corrupt: it is not a {'JSON object' if path.suffix == '.json' else 'mapping'}")
    return data


def read_scalar(tb_dir: Path, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | list[str]:
    """One scalar's ``(steps, wall seconds, values)``, a step's values (parallel envs') averaged; else the tags."""
    acc = read_events(tb_dir)
    tags = acc.Tags()["scalars"]
    if tag not in tags:
        return sorted(tags)
    events = acc.Scalars(tag)
    start = acc.FirstEventTimestamp()  # the event file's creation: when training started
    steps, at, counts = np.unique([e.step for e in events], return_inverse=True, return_counts=True)
    values = np.bincount(at, weights=[e.value for e in events]) / counts
    wall = np.full(len(steps), -np.inf)
    np.maximum.at(wall, at, [e.wall_time - start for e in events])  # when the last of a step's values was logged
    return steps.astype(np.float64), wall, values


def load_runs(paths: Iterable[str | os.PathLike[str]], tag: str = DEFAULT_TAG) -> list[Run]:
    """Every run under ``paths`` with its config, summary and the scalar ``tag`` (runs without it: a warning)."""
    runs: list[Run] = []
    missing: list[Path] = []
    other_tags: set[str] = set()
    for run_dir in find_runs(paths):
        for problem in [*changed_files(run_dir), *damaged_events(run_dir / TB_DIR)]:
            warnings.warn(f"{problem}; its curve may not be what the run logged", stacklevel=2)
        scalar = read_scalar(run_dir / TB_DIR, tag)
        if isinstance(scalar, list):
            missing.append(run_dir)
            other_tags.update(scalar)
            continue
        steps, wall, values = scalar
        runs.append(Run(path=run_dir, config=flatten(_load(run_dir / CONFIG_FILE)),
                        summary=_load(run_dir / SUMMARY_FILE), steps=steps, wall=wall, values=values))
    if not runs:
        have = ", ".join(sorted(other_tags)) or "none"
        raise PlotError(f"none of the {len(missing)} runs logged a scalar {tag!r}; their tags: {have}")
    if missing:
        warnings.warn(f"{len(missing)} of {len(missing) + len(runs)} runs logged no scalar {tag!r} and are "
                      f"left out: {', '.join(str(p) for p in missing)}", stacklevel=2)
    return runs


_UNSET = "(unset)"


def _labels(configs: list[dict[str, Any]]) -> list[str]:
    """For each config, the fewest keys that tell it apart: ``agent=dqn``, ``agent.learning_rate=0.001``.

    A choice that differs (``agent.name``) always names the groups (``agent=dqn``); a section's other keys are shown
    only where they differ between configs with the same choice. Keys are added, the one that tells most groups
    apart first, until every label is its own; callbacks and budget keys (:data:`SECONDARY`) only if needed.
    """
    def differs(key: str, among: list[dict[str, Any]]) -> bool:
        return len({json.dumps(c[key], sort_keys=True) if key in c else _UNSET for c in among}) > 1

    def part(key: str, config: dict[str, Any]) -> str | None:
        section = key.split(".")[0]
        choice = f"{section}.name"
        if section in choices and key == choice:
            return f"{section}={as_override(config.get(key))}"
        if section not in choices or differs(key, [c for c in configs if c.get(choice) == config.get(choice)]):
            return f"{key}={as_override(config[key]) if key in config else _UNSET}"
        return None

    def labels(keys: list[str]) -> list[str]:
        chosen = [k for k in varying if k in keys]  # in the configs' order of keys
        return [" ".join(p for k in chosen if (p := part(k, c)) is not None) for c in configs]

    varying = [k for k in dict.fromkeys(k for c in configs for k in c) if differs(k, configs)]
    choices = {k.split(".")[0] for k in varying if k.count(".") == 1 and k.endswith(".name")}
    keys = [f"{section}.name" for section in choices]
    candidates = [k for k in varying if k not in keys]
    while len(set(labels(keys))) < len(configs) and candidates:
        best = max(candidates, key=lambda k: (len(set(labels([*keys, k]))), not k.startswith(SECONDARY)))
        keys.append(best)
        candidates.remove(best)
    return labels(keys)


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs grouped by their config without the seed and display-only keys, labelled by the keys that differ."""
    by_config: dict[str, tuple[dict[str, Any], list[Run]]] = {}
    for run in runs:
        config = {k: v for k, v in run.config.items() if k not in NOT_CONFIG}
        by_config.setdefault(json.dumps(config, sort_keys=True), (config, []))[1].append(run)
    configs = [c for c, _ in by_config.values()]
    labels = _labels(configs) if len(configs) != 1 else [  # one config: named by its env and agent
        ", ".join(str(runs[0].summary.get(k) or runs[0].config.get(f"{k}.name", "?")) for k in ("env", "agent"))]
    return [Group(label=label, runs=members) for label, (_, members) in zip(labels, by_config.values(), strict=True)]


def reward_thresholds(runs: Sequence[Run]) -> dict[float, str]:
    """The runs' reward thresholds, each with a legend label (naming its envs when the runs have several)."""
    envs = {r.summary.get("env") for r in runs}
    by_value: dict[float, dict[str, None]] = {}  # threshold -> its envs, in order
    for run in runs:
        if (value := run.summary.get("reward_threshold")) is not None:
            by_value.setdefault(float(value), {})[str(run.summary.get("env"))] = None
    return {value: f"reward threshold {value:g}" + (f" ({', '.join(names)})" if len(envs) > 1 else "")
            for value, names in sorted(by_value.items())}


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` values (fewer at the start)."""
    if window <= 1 or len(values) == 0:
        return values
    return np.convolve(values, np.ones(window))[:len(values)] / np.minimum(np.arange(1, len(values) + 1), window)


def curves(groups: Sequence[Group], x: str = "steps", points: int = 200, smooth: int = 1) -> list[Curve]:
    """Each group's runs on a common grid of ``x`` (``steps`` or ``wall``): mean and 95% t-interval.

    Each run, after a trailing mean over ``smooth`` values, is interpolated onto ``points`` values all runs cover.
    """
    if x not in X_KINDS:
        raise PlotError(f"x must be one of {', '.join(X_KINDS)}, got {x!r}")
    out = []
    for group in groups:
        xs = [run.steps if x == "steps" else run.wall for run in group.runs]
        ys = [moving_average(run.values, smooth) for run in group.runs]
        lo, hi = max(float(a[0]) for a in xs), min(float(a[-1]) for a in xs)
        if hi < lo:
            warnings.warn(f"the runs of {group.label} share no range of {X_LABELS[x]}; left out", stacklevel=2)
            continue
        trained = [int(run.summary.get("steps") or 0) for run in group.runs]
        if x == "steps" and min(trained) < 0.9 * max(trained):
            warnings.warn(f"the runs of {group.label} trained for {min(trained)} to {max(trained)} steps (stopped "
                          f"on reaching the threshold?); drawn up to step {hi:g}, where all have data", stacklevel=2)
        grid = np.linspace(lo, hi, points) if hi > lo else np.array([lo])
        samples = np.stack([np.interp(grid, a, y) for a, y in zip(xs, ys, strict=True)])
        n, mean = len(samples), samples.mean(axis=0)
        half = 0.0  # the 95% Student-t interval of the mean; a single run is its own
        if n > 1:
            from scipy import stats

            half = stats.t.ppf(0.975, df=n - 1) * samples.std(axis=0, ddof=1) / math.sqrt(n)
        # With few seeds the t-interval reaches far beyond anything observed: the band stops at the runs' range.
        low, high = np.maximum(mean - half, samples.min()), np.minimum(mean + half, samples.max())
        out.append(Curve(group=group.label, x_kind=x, x=grid, mean=mean, low=low, high=high, n_runs=n, runs=samples))
    return out


def plot_curves(drawn: Sequence[Curve], out: str | os.PathLike[str], tag: str = DEFAULT_TAG,
                thresholds: Mapping[float, str] | None = None, size: tuple[int, int] = (1200, 500),
                smooth: int = 1) -> Path:
    """Draw the curves to a PNG of ``size`` pixels: one panel per x kind, a legend below, dashed ``thresholds``.

    ``smooth``: the trailing mean the curves were drawn with, named in the title.
    """
    if not drawn:
        raise PlotError("nothing to draw: no group of runs has a range of x that all its runs cover")
    thresholds = thresholds or {}
    from matplotlib.figure import Figure  # no pyplot: no global backend, no window, Agg renders the PNG

    dpi = 100
    kinds = [k for k in X_KINDS if any(c.x_kind == k for c in drawn)]
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    colors = {g: f"C{i % 10}" for i, g in enumerate(dict.fromkeys(c.group for c in drawn))}
    for ax, kind in zip(axes, kinds, strict=True):
        for c in (c for c in drawn if c.x_kind == kind):
            runs = "1 run" if c.n_runs == 1 else f"{c.n_runs} seeds"
            ax.plot(c.x, c.mean, color=colors[c.group], lw=1.6, marker="o" if len(c.x) == 1 else None,
                    label=f"{c.group} ({runs})")
            if c.n_runs > 1:
                ax.fill_between(c.x, c.low, c.high, color=colors[c.group], alpha=0.2, lw=0)
        for value, label in thresholds.items():
            ax.axhline(value, color="0.35", ls="--", lw=1, label=label)
        seen = [v for c in drawn if c.x_kind == kind for v in (c.runs.min(), c.runs.max())]
        bottom, top = min(seen + list(thresholds)), max(seen + list(thresholds))
        pad = 0.05 * (top - bottom) or 1.0
        ax.set_ylim(bottom - pad, top + pad)
        ax.set_xlabel(X_LABELS[kind])
        ax.set_ylabel(tag)
        ax.grid(alpha=0.3)
    # Below the panels, never over a curve; long labels wrap into columns rather than squash the panels.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", fontsize="small",
               ncols=min(3, len(axes[0].get_legend_handles_labels()[1])), frameon=False)
    spread = "shaded: 95% t-interval of the mean" if any(c.n_runs > 1 for c in drawn) else "one run per curve"
    unit = "episodes" if tag.startswith("episode/") else "logged values"
    smoothing = f", trailing mean of {smooth} {unit}" if smooth > 1 else ""
    fig.suptitle(f"{tag}{smoothing}: mean over seeds ({spread})")
    fig.savefig(out, dpi=dpi)
    return Path(out)


def write_csv(drawn: Sequence[Curve], out: str | os.PathLike[str]) -> Path:
    """The numbers drawn, one row per point: group, x_kind, x, mean, low, high, n_runs."""
    path = Path(out)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["group", "x_kind", "x", "mean", "low", "high", "n_runs"])
        for c in drawn:
            for row in zip(c.x, c.mean, c.low, c.high, strict=True):
                writer.writerow([c.group, c.x_kind, *(repr(float(v)) for v in row), c.n_runs])
    return path


def main(argv: Sequence[str]) -> None:
    """``rlkit plot``: parse the arguments, draw, and print where the PNG and CSV went (warnings on one line)."""
    parser = argparse.ArgumentParser(
        prog="rlkit plot",
        description="Learning curves of runs: each config's mean over its seeds with a 95% t-interval, "
                    "against environment steps and wall time. Writes a PNG and a CSV of the numbers drawn.",
        epilog="example: rlkit plot runs/multirun/2026-11-21_18-00-00 --tag eval/mean_reward",
    )
    parser.add_argument("paths", nargs="+", metavar="DIR",
                        help="run directories, or folders holding them (a sweep's directory, runs/)")
    parser.add_argument("--out", metavar="PATH", help="the PNG to write (default: <first DIR>/learning_curves.png); "
                                                      "the CSV goes beside it with a .csv suffix")
    parser.add_argument("--tag", default=DEFAULT_TAG,
                        help=f"TensorBoard scalar to plot (default: {DEFAULT_TAG}; e.g. eval/mean_reward)")
    parser.add_argument("--x", choices=[*X_KINDS, "both"], default="both",
                        help="x axis: steps (environment steps), wall (seconds), or both panels (default)")
    parser.add_argument("--smooth", type=int, metavar="N",
                        help="trailing mean over each run's last N logged values before averaging (default: "
                             f"{EPISODE_SMOOTH} for per-episode tags such as episode/reward, else 1: none)")
    parser.add_argument("--points", type=int, default=200, metavar="N",
                        help="points on the common grid each run is interpolated onto (default 200)")
    args = parser.parse_args(list(argv))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *_, **__: print(f"rlkit: warning: {message}", file=sys.stderr)
        out = Path(args.out).expanduser() if args.out else Path(args.paths[0]).expanduser() / "learning_curves.png"
        if out.suffix.lower() != ".png":
            raise PlotError(f"--out must name a .png file, got {out}")
        if args.smooth is None:
            args.smooth = EPISODE_SMOOTH if args.tag.startswith("episode/") else 1
        if args.smooth < 1 or args.points < 2:
            raise PlotError(f"--smooth must be >= 1 (1: no smoothing) and --points >= 2, got {args.smooth} and "
                            f"{args.points}")
        runs = load_runs(args.paths, tag=args.tag)
        if not out.parent.is_dir():
            raise PlotError(f"--out {out}: the folder {out.parent} does not exist")
        groups = group_runs(runs)
        kinds = X_KINDS if args.x == "both" else (args.x,)
        drawn = [c for kind in kinds for c in curves(groups, x=kind, points=args.points, smooth=args.smooth)]
        returns = any(args.tag == t or args.tag.startswith(f"{t}/") for t in ("episode/reward", "eval/mean_reward"))
        thresholds = reward_thresholds(runs) if returns else {}  # a threshold belongs only on a return's plot
        try:
            png = plot_curves(drawn, out, tag=args.tag, thresholds=thresholds, smooth=args.smooth)
            table = write_csv(drawn, out.with_suffix(".csv"))
        except OSError as e:  # a read-only run directory, a full disk, no permission
            raise PlotError(f"cannot write {e.filename or out}: {e.strerror or e}. Choose another place with "
                            "--out PATH.png") from None
        for group in groups:
            seeds = ", ".join(str(r.config.get("seed")) for r in group.runs)
            print(f"{group.label}: {len(group.runs)} run{'s' if len(group.runs) > 1 else ''} (seeds {seeds})")
        print(f"plot: {png}\ndata: {table}")
