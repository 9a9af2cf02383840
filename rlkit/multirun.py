"""Multiruns (``rlkit train -m ...``): checks of the command line, the sweep's index of jobs, presets."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import importlib.util
import io
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rlkit.errors import RlkitError
from rlkit.runs import SUMMARY_FILE

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
INDEX_FILE = "jobs.csv"
INDEX_COLUMNS = ("job", "status", "overrides", "final_eval", "best_eval", "solved_at_step", "wall_seconds",
                 "run_dir", "error")
PRINTED_ROWS = 20  # of the index, at the end of a multirun; the file has them all


def check_multirun_args(args: Sequence[str]) -> None:
    """Refuse, before Hydra starts, command lines whose sweep cannot run; each with a one-line reason."""
    multirun = "-m" in args or "--multirun" in args
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            continue
        if key == "hydra/launcher" and value == "ray" and importlib.util.find_spec("ray") is None:
            raise RlkitError("hydra/launcher=ray needs ray, an optional extra: pip install 'rlkit[ray]'")
        if key == "hparams_search" and value not in ("", "null") and not multirun:
            raise RlkitError(f"hparams_search={value} is a hyperparameter search, which runs as a multirun: "
                             f"add -m (rlkit train -m hparams_search={value})")
        if key == "hydra/sweeper" and value == "optuna" and not multirun:
            raise RlkitError("hydra/sweeper=optuna runs as a multirun: add -m")


def parallel_jobs(launcher: DictConfig, cpus: int | None = None) -> int:
    """How many jobs a launcher config runs at once on this machine (joblib's n_jobs semantics)."""
    cpus = cpus or os.cpu_count() or 1
    target = str(launcher.get("_target_", ""))
    if "joblib" in target:
        n_jobs = launcher.get("n_jobs") or -1
        return max(1, n_jobs if n_jobs > 0 else cpus + 1 + n_jobs)
    if "basic_launcher" in target:
        return 1
    return cpus


class JoblibStartLine(logging.Filter):
    """Hydra's joblib launcher opens with the repr of its ``Parallel(...)`` settings: one plain line instead."""

    def __init__(self, at_a_time: int, sweep_dir: str) -> None:
        super().__init__()
        self.at_a_time, self.sweep_dir = at_a_time, sweep_dir

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the settings line, drop the sweep directory's line (the new one names it), keep the rest."""
        message = record.getMessage()
        if message.startswith("Joblib.Parallel("):
            count = re.search(r"is launching (\d+) jobs", message)
            record.msg = (f"launching {count.group(1) if count else 'the'} jobs, {self.at_a_time} at a time, "
                          f"into {self.sweep_dir}")
            record.args = ()
        return not message.startswith("Launching jobs, sweep output dir")


class SweepIndex(Callback):
    """Hydra callback (in ``train.yaml``): each job's ``job.json``; the sweep's ``jobs.csv`` as jobs finish.

    ``on_job_end`` runs in the job's process (any launcher), so it rebuilds the index there, under a file lock,
    from every ``job.json`` present: the last job to finish writes the complete index.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Say in one line what starts; warn when parallel jobs would ask for more threads than there are cores."""
        cpus = os.cpu_count() or 1
        jobs = parallel_jobs(config.hydra.launcher, cpus)
        joblib_log = logging.getLogger("hydra_plugins.hydra_joblib_launcher._core")
        for old in [f for f in joblib_log.filters if isinstance(f, JoblibStartLine)]:
            joblib_log.removeFilter(old)
        joblib_log.addFilter(JoblibStartLine(jobs, str(config.hydra.sweep.dir)))
        threads = int(config.get("torch_threads", 1))
        if "joblib" in str(config.hydra.launcher.get("_target_", "")) and jobs * threads > cpus:
            log.warning("%d parallel jobs x torch_threads=%d is more threads than this machine's %d cores; "
                        "lower hydra.launcher.n_jobs or torch_threads", jobs, threads, cpus)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Record the job in its run directory and refresh the sweep's index."""
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        failed = job_return.status != JobStatus.COMPLETED
        record = {
            "job": int(config.hydra.job.num),
            "status": "failed" if failed else "completed",
            "overrides": list(job_return.overrides or []),
            "error": failure_message(job_return._return_value) if failed else None,  # the property re-raises
        }
        from rlkit.files import atomic_write, write_json  # torch: in the job's process, never at the CLI's start

        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / JOB_FILE, record)
        sweep_dir = Path(str(config.hydra.runtime.cwd)) / str(config.hydra.sweep.dir)
        with _locked(sweep_dir / ".jobs.lock"):
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS)
            writer.writeheader()  # None is written as ""
            writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()}
                             for row in read_index(sweep_dir))
            atomic_write(sweep_dir / INDEX_FILE, buf.getvalue().encode())

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the index's counts, then a table of its first jobs."""
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not (rows := read_index(sweep_dir)):
            return
        failed = sum(r["status"] != "completed" for r in rows)
        common = set.intersection(*(set(r["overrides"].split()) for r in rows)) if len(rows) > 1 else set()
        print(f"sweep {sweep_dir}: {len(rows)} jobs, {len(rows) - failed} completed"
              + (f", {failed} failed" if failed else "") + f" (index: {sweep_dir / INDEX_FILE})")
        print(f"  {'job':>4}  {'status':<9}  {'final eval':>10}  overrides"
              + (f" (besides {' '.join(sorted(common))})" if common else ""))
        for row in rows[:PRINTED_ROWS]:
            final = "" if row["final_eval"] is None else f"{row['final_eval']:.1f}"
            own = " ".join(o for o in row["overrides"].split() if o not in common)
            print(f"  {row['job']:>4}  {row['status']:<9}  {final:>10}  {own}")
        if len(rows) > PRINTED_ROWS:
            print(f"  ... {len(rows) - PRINTED_ROWS} more in {INDEX_FILE}")


def failure_message(error: Any) -> str:
    """One line saying why a job failed."""
    if isinstance(error, RlkitError) and error.args:
        return str(error.args[0])
    return f"{type(error).__name__}: {error}".splitlines()[0]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between the jobs of one machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        yield


def read_index(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job of a sweep (from each run's ``job.json`` and ``summary.json``), in job order."""
    rows = []
    for job_file in sweep_dir.rglob(JOB_FILE):
        try:
            record = json.loads(job_file.read_text())
        except (OSError, ValueError):
            continue  # being written
        run_dir = job_file.parent
        summary: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            summary = json.loads((run_dir / SUMMARY_FILE).read_text())
        final, best = summary.get("final_eval") or {}, summary.get("best_eval") or {}
        rows.append({
            "job": record.get("job"),
            "status": record.get("status"),
            "overrides": " ".join(record.get("overrides") or []),
            "final_eval": final.get("mean_reward"),
            "best_eval": best.get("mean_reward"),
            "solved_at_step": (summary.get("solved") or {}).get("step"),
            "wall_seconds": summary.get("wall_seconds"),
            "run_dir": str(run_dir.relative_to(sweep_dir)),
            "error": record.get("error"),
        })
    return sorted(rows, key=lambda r: (r["job"] is None, r["job"]))


def preset_yaml(config: DictConfig, base: DictConfig, groups: dict[str, str], header: Sequence[str],
                keep: Sequence[str] = ()) -> str:
    """An ``experiment=`` preset that composes to ``config``: its groups, then every key that differs from ``base``.

    ``base``: what ``groups`` alone compose to; ``keep``: keys written even where they equal it (the searched ones).
    """
    body = OmegaConf.create(_differences(OmegaConf.to_container(config, resolve=True),
                                         OmegaConf.to_container(base, resolve=True)))
    for key in keep:
        value = OmegaConf.select(config, key, default=None)
        if value is not None and not OmegaConf.is_dict(value):  # config groups are in the defaults list
            OmegaConf.update(body, key, value, force_add=True)
    body.pop("seed", None)  # the seed belongs to the command line
    lines = ["# @package _global_", *(f"# {line}".rstrip() for line in header)]
    defaults = {"defaults": [{f"override /{group}": choice} for group, choice in groups.items()]}
    return "\n".join(lines) + "\n" + OmegaConf.to_yaml(defaults) + "\n" + OmegaConf.to_yaml(body)


def _differences(values: Any, base: Any) -> dict[str, Any]:
    """The keys of ``values`` (nested dicts) whose value or type differs from ``base``'s."""
    out = {}
    for key, value in values.items():
        other = base.get(key) if isinstance(base, dict) else None
        if isinstance(value, dict) and value and isinstance(other, dict):
            below = _differences(value, other)
            if below:
                out[key] = below
        elif not isinstance(base, dict) or key not in base or value != other or type(value) is not type(other):
            out[key] = value
    return out
