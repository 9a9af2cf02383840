"""Multiruns: the parallel local launcher and rlkit's Ray launcher."""

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import run_cli
from rlkit.errors import RlkitError
from rlkit.sweeps import check_multirun_args, parallel_jobs

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
def test_missing_ray_is_named_before_hydra_starts(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(RlkitError, match=r"needs ray, an optional extra: pip install 'rlkit\[ray\]'"):
        check_multirun_args(["-m", "hydra/launcher=ray", "seed=0,1"])
    check_multirun_args(["-m", "hydra/launcher=joblib", "seed=0,1"])


BAD_SWEEPS = [
    (["-m", "hydra/launcher=rey", "seed=0,1"],
     "hydra/launcher=rey names no config in group 'hydra/launcher'; choose one of: basic, joblib, ray. "
     "Did you mean hydra/launcher=ray?", {}),
    (["-m", "hydra/launcher=ray", "seed=0"], "RAY_ADDRESS='nonsense' is not a Ray address",
     {"RAY_ADDRESS": "nonsense"}),
    (["-m", "hydra/launcher=ray", "seed=0", "hydra.launcher.ray.init.address=127.0.0.1:{closed_port}"],
     "no Ray cluster answers at 127.0.0.1:{closed_port} (hydra.launcher.ray.init.address): Connection refused", {}),
    (["-m", "hydra/launcher=ray", "seed=0"], "hydra/launcher=ray needs Ray, an optional extra",
     {"PYTHONPATH": "{no_ray}"}),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("args", "message", "env"), BAD_SWEEPS, ids=[" ".join(a) for a, _, _ in BAD_SWEEPS])
def test_bad_sweeps_get_a_clear_error(tmp_path, args, message, env):
    no_ray = tmp_path / "no_ray"
    (no_ray / "ray").mkdir(parents=True)
    (no_ray / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    fill = {"closed_port": free_port(), "no_ray": no_ray}
    out = run_cli(["train", *(a.format(**fill) for a in args), *TINY_JOB], cwd=tmp_path, timeout=120,
                  env={k: v.format(**fill) for k, v in env.items()})
    assert out.returncode != 0
    assert message.format(**fill) in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 12, out.stderr
    assert not list(tmp_path.rglob("summary.json"))


# ---------------------------------------------------------------------------------------------- Ray
class FakeRay:
    """Records ray.init's arguments."""

    def __init__(self):
        self.calls = []

    def is_initialized(self):
        return bool(self.calls)

    def init(self, address=None, **kwargs):
        self.calls.append((address, kwargs))


def test_ray_connects_by_override_then_ray_address_else_starts_a_local_instance(monkeypatch):
    from rlkit.launchers.ray_launcher import RayInitConf, connect

    monkeypatch.setattr("rlkit.launchers.ray_launcher.check_reachable", lambda address, source: None)
    init = OmegaConf.structured(RayInitConf)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray = FakeRay()
    assert connect(ray, init) == "local instance"
    assert ray.calls[0][0] == "local" and ray.calls[0][1]["num_cpus"] is None  # not a cluster left by `ray start`
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    ray = FakeRay()
    assert connect(ray, init) == "cluster at 10.0.0.5:6379"
    assert ray.calls[0][0] == "10.0.0.5:6379" and "num_cpus" not in ray.calls[0][1]
    ray = FakeRay()
    connect(ray, OmegaConf.merge(init, {"address": "ray://head:10001"}))
    assert ray.calls[0][0] == "ray://head:10001"


def test_a_job_reserves_its_torch_threads_on_ray():
    from rlkit.launchers.ray_launcher import RayRemoteConf, task_options

    remote = OmegaConf.structured(RayRemoteConf)
    assert task_options(remote, OmegaConf.create({"torch_threads": 2}))["num_cpus"] == 2
    assert task_options(OmegaConf.merge(remote, {"num_cpus": 0.5}), OmegaConf.create({"torch_threads": 2}))[
        "num_cpus"] == 0.5
    assert task_options(remote, OmegaConf.create({}))["max_retries"] == 0


@pytest.fixture
def ray_head():
    """A Ray head on loopback with a token of its own; yields the environment that reaches it."""
    pytest.importorskip("ray")
    ray_bin = Path(sys.executable).parent / "ray"
    port = free_port()
    # Socket paths must stay short (108 bytes): a temp dir directly under /tmp rather than pytest's tmp_path.
    temp_dir = tempfile.mkdtemp(prefix="rk-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
    env = {**os.environ,
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # bind to 127.0.0.1, not the machine's outward address
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
         "--disable-usage-stats", f"--temp-dir={temp_dir}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        for line in head.stdout:  # ray start --block says so once every process is up
            if "block forever" in line or time.monotonic() > deadline:
                break
        assert head.poll() is None, "ray start --head failed"
        yield {"RAY_ADDRESS": f"127.0.0.1:{port}", **{k: env[k] for k in
               ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}}
    finally:
        head.send_signal(signal.SIGTERM)  # ray start --block stops the processes it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        head.stdout.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_jobs_run_as_ray_tasks_on_a_cluster_named_by_address(tmp_path, ray_head):
    out = run_cli(["train", "-m", "hydra/launcher=ray", "seed=0,1,2", *TINY_JOB], cwd=tmp_path, env=ray_head)
    assert out.returncode == 0, out.stderr
    assert f"Connecting to existing Ray cluster at address: {ray_head['RAY_ADDRESS']}" in out.stderr + out.stdout
    sweep = only_sweep(tmp_path)
    rows = read_index(sweep)
    assert [(r["job"], r["status"]) for r in rows] == [("0", "completed"), ("1", "completed"), ("2", "completed")]
    summaries = [json.loads((sweep / r["run_dir"] / "summary.json").read_text()) for r in rows]
    assert [s["seed"] for s in summaries] == [0, 1, 2]
    assert all(s["steps"] == 300 for s in summaries)
    assert len({r["run_dir"] for r in rows}) == 3
