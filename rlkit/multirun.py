"""Multiruns (``rlkit train -m ...``): checks of the command line, the sweep's index of jobs, presets."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rlkit.errors import DEBUG_ENV, USER_ERRORS, RlkitError, user_message
from rlkit.runs import SUMMARY_FILE, SWEEP_MARKER
from rlkit.signals import EXIT_INTERRUPTED, GUARD, STOP_FILE

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
INDEX_FILE = "jobs.csv"
INDEX_COLUMNS = ("job", "status", "overrides", "final_eval", "best_eval", "solved_at_step", "wall_seconds",
                 "run_dir", "error")
PRINTED_ROWS = 20  # of the index, at the end of a multirun; the file has them all


class SweepError(RlkitError, CompactHydraException):
    """A multirun cannot go on (a launcher or sweeper setting, every trial failed), or one of its jobs failed."""

    def __str__(self) -> str:  # what Hydra prints of a CompactHydraException, without a traceback
        return f"rlkit: error: {self.args[0] if self.args else ''}"


@contextlib.contextmanager
def job_errors() -> Iterator[None]:
    """In a multirun job, a user's mistake fails that job (Hydra reports it): a worker process runs other jobs too."""
    try:
        yield
    except USER_ERRORS as e:
        if os.environ.get(DEBUG_ENV):
            raise
        raise SweepError(user_message(e)) from None


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
    from every ``job.json`` present: the last job to finish writes the complete index. A job continued later
    with ``resume=`` updates both.

    SIGTERM or SIGINT to any process of the sweep (its own, or the whole process group) stops it: the sweep's
    processes share the request through :data:`~rlkit.signals.STOP_FILE`, every running job writes a checkpoint
    at its next safe point, jobs not started yet stop before they start, and the sweep exits 75.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Say in one line what starts, share stop requests with the jobs, warn of more threads than cores."""
        GUARD.share(Path(str(config.hydra.sweep.dir)).resolve() / STOP_FILE)
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

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A sweep's job stops when the sweep is asked to, from any of its processes (a worker's: for good)."""
        if config.hydra.mode == RunMode.MULTIRUN:
            GUARD.share((Path(str(config.hydra.runtime.cwd)) / str(config.hydra.sweep.dir)).resolve() / STOP_FILE)
            if "joblib" in str(config.hydra.launcher.get("_target_", "")):  # not Ray's workers: Ray stops those
                GUARD.install()  # a worker process between two jobs too: a signal then stops the next one

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Record the job in its run directory and refresh the sweep's index (a sweep's job continued: update them)."""
        run_dir = Path(config.hydra.runtime.output_dir)
        result = job_return._return_value  # the property would re-raise a job's error
        status, error = "completed", None
        if job_return.status != JobStatus.COMPLETED:
            status, error = "failed", failure_message(result)
        elif isinstance(result, dict) and "interrupted" in result:  # cli.py's job stopped by a signal
            status, error = "interrupted", result["interrupted"]
        if config.hydra.mode == RunMode.MULTIRUN:
            record = {"job": int(config.hydra.job.num), "status": status,
                      "overrides": list(job_return.overrides or []), "error": error}
            sweep_dir = Path(str(config.hydra.runtime.cwd)) / str(config.hydra.sweep.dir)
        else:  # a sweep's job continued with resume=: it keeps its number and overrides
            try:
                record = json.loads((run_dir / JOB_FILE).read_text())
            except (OSError, ValueError):
                return  # not a sweep's job
            sweep = next((p for p in run_dir.resolve().parents if (p / SWEEP_MARKER).is_file()), None)
            if sweep is None or not isinstance(record, dict):
                return
            record.update(status=status, error=error)
            sweep_dir = sweep
        from rlkit.files import atomic_write, write_json  # torch: in the job's process, never at the CLI's start

        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / JOB_FILE, record)
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
        if rows := read_index(sweep_dir):
            self._print_index(sweep_dir, rows)
        stop_if_requested(sweep_dir, rows)

    @staticmethod
    def _print_index(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
        failed = sum(r["status"] == "failed" for r in rows)
        interrupted = sum(r["status"] == "interrupted" for r in rows)
        common = set.intersection(*(set(r["overrides"].split()) for r in rows)) if len(rows) > 1 else set()
        print(f"sweep {sweep_dir}: {len(rows)} jobs, {len(rows) - failed - interrupted} completed"
              + (f", {failed} failed" if failed else "") + (f", {interrupted} interrupted" if interrupted else "")
              + f" (index: {sweep_dir / INDEX_FILE})")
        print(f"  {'job':>4}  {'status':<9}  {'final eval':>10}  overrides"
              + (f" (besides {' '.join(sorted(common))})" if common else ""))
        for row in rows[:PRINTED_ROWS]:
            final = "" if row["final_eval"] is None else f"{row['final_eval']:.1f}"
            own = " ".join(o for o in row["overrides"].split() if o not in common)
            print(f"  {row['job']:>4}  {row['status']:<9}  {final:>10}  {own}")
        if len(rows) > PRINTED_ROWS:
            print(f"  ... {len(rows) - PRINTED_ROWS} more in {INDEX_FILE}")


def stop_if_requested(sweep_dir: Path, rows: Sequence[dict[str, Any]]) -> None:
    """If the sweep was asked to stop: one line saying what to continue, and exit 75 (the jobs have all ended)."""
    if (stop := GUARD.poll()) is None:
        return
    (sweep_dir / STOP_FILE).unlink(missing_ok=True)
    interrupted = [r for r in rows if r["status"] == "interrupted"]
    print(f"rlkit: sweep {sweep_dir} stopped by {stop}: {len(interrupted)} of {len(rows)} jobs interrupted; continue "
          f"each with rlkit train resume={sweep_dir}/<job> (those marked interrupted in {INDEX_FILE})", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)


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
