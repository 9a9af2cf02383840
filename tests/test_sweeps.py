"""Multiruns: the parallel local launcher and the sweep's index of jobs."""

import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import run_cli
from rlkit.sweeps import parallel_jobs

# A few hundred steps and two evaluation episodes: each job takes well under a second once started.
TINY_JOB = ["total_steps=300", "callbacks.eval.every_steps=0", "callbacks.eval.episodes=2"]


def read_index(sweep: Path) -> list[dict[str, str]]:
    with (sweep / "jobs.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def only_sweep(cwd: Path) -> Path:
    (sweep,) = (cwd / "runs" / "multirun").iterdir()
    return sweep


# ---------------------------------------------------------------------------------------------- local launcher
def test_a_grid_runs_in_parallel_processes_and_the_sweep_lists_every_job(tmp_path):
    out = run_cli(["train", "-m", "seed=0,1", "agent=dqn,reinforce", *TINY_JOB], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    sweep = only_sweep(tmp_path)
    assert (sweep / "multirun.yaml").is_file()
    hydra_cfg = OmegaConf.load(sweep / "multirun.yaml").hydra
    assert "joblib" in hydra_cfg.launcher._target_  # the default launcher for -m
    rows = read_index(sweep)
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert {r["status"] for r in rows} == {"completed"}
    assert {r["overrides"] for r in rows} == {f"seed={s} agent={a} {' '.join(TINY_JOB)}"
                                              for s in (0, 1) for a in ("dqn", "reinforce")}
    seeds = set()
    for row in rows:
        run = sweep / row["run_dir"]
        summary = json.loads((run / "summary.json").read_text())
        assert float(row["final_eval"]) == summary["final_eval"]["mean_reward"]
        seeds.add((summary["agent"], summary["seed"]))
        assert json.loads((run / "job.json").read_text())["status"] == "completed"
    assert seeds == {(a, s) for s in (0, 1) for a in ("dqn", "reinforce")}
    assert f"sweep {sweep.relative_to(tmp_path)}: 4 jobs, 4 completed" in out.stdout


def test_a_job_that_fails_is_listed_and_reported_in_one_line(tmp_path):
    out = run_cli(["train", "-m", "agent=reinforce,sac", *TINY_JOB, "hydra.launcher.n_jobs=2"], cwd=tmp_path)
    assert out.returncode != 0
    assert "rlkit: error: agent=sac (SAC) needs a Box action space" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 6, out.stderr
    rows = read_index(only_sweep(tmp_path))
    assert [(r["job"], r["status"]) for r in rows] == [("0", "completed"), ("1", "failed")]
    assert rows[1]["error"].startswith("agent=sac (SAC) needs a Box action space")


def test_parallel_jobs_follow_joblibs_n_jobs():
    joblib = OmegaConf.create({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"})
    assert parallel_jobs(OmegaConf.merge(joblib, {"n_jobs": -1}), cpus=8) == 8
    assert parallel_jobs(OmegaConf.merge(joblib, {"n_jobs": -2}), cpus=8) == 7
    assert parallel_jobs(OmegaConf.merge(joblib, {"n_jobs": 3}), cpus=8) == 3
    assert parallel_jobs(OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}),
                         cpus=8) == 1


# ---------------------------------------------------------------------------------------------- bad input
BAD_SWEEPS = [
    (["-m", "hydra/launcher=jobli", "seed=0,1"],
     "hydra/launcher=jobli names no config in group 'hydra/launcher'; choose one of: basic, joblib. "
     "Did you mean hydra/launcher=joblib?", {}),
]


@pytest.mark.parametrize(("args", "message", "env"), BAD_SWEEPS, ids=[" ".join(a) for a, _, _ in BAD_SWEEPS])
def test_bad_sweeps_get_a_clear_error(tmp_path, args, message, env):
    fill: dict[str, str] = {}
    out = run_cli(["train", *(a.format(**fill) for a in args), *TINY_JOB], cwd=tmp_path, timeout=120,
                  env={k: v.format(**fill) for k, v in env.items()})
    assert out.returncode != 0
    assert message.format(**fill) in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 12, out.stderr
    assert not list(tmp_path.rglob("summary.json"))
