"""Multiruns: the parallel local launcher, rlkit's Ray launcher, the Optuna sweeper and its presets."""

import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

import hydra_plugins.rlkit_plugins  # noqa: F401  (stores hydra/sweeper=optuna, which hparams_search composes)
from helpers import cli, compose_cfg, run_cli
from rlkit.config import check_multirun_args, hydra_configs
from rlkit.errors import RlkitError
from rlkit.multirun import SweepError, parallel_jobs, preset_yaml
from rlkit.optuna_sweeper import objective_value, override_value, search_space

CONFIGS = Path(str(files("rlkit.configs")))
SEARCHES = sorted(p.stem for p in (CONFIGS / "hparams_search").glob("*.yaml"))
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
        # TensorBoard's run list names a job by its env, agent, seed and the overrides that vary in the sweep
        name = f"balancing_pole__{summary['agent']}__seed={summary['seed']}"
        assert [p.name for p in (run / "tb").iterdir()] == [name]
        assert json.loads((run / "job.json").read_text())["status"] == "completed"
    assert seeds == {(a, s) for s in (0, 1) for a in ("dqn", "reinforce")}
    assert f"sweep {sweep.relative_to(tmp_path)}: 4 jobs, 4 completed" in out.stdout
    # One start line, not joblib's Parallel(...) settings.
    printed = out.stdout + out.stderr
    assert "Joblib.Parallel(" not in printed and "Launching jobs, sweep output dir" not in printed
    assert re.search(rf"launching 4 jobs, \d+ at a time, into {re.escape(str(sweep.relative_to(tmp_path)))}\n", printed)


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
    (["hparams_search=balancing_pole_dqn"], "add -m (rlkit train -m hparams_search=balancing_pole_dqn)", {}),
    (["-m", "hparams_search=balancing_pol"], "Did you mean hparams_search=balancing_pole_dqn?", {}),
    (["-m", "hydra/sweeper=optuna"], "nothing to search: declare ranges in hydra.sweeper.params", {}),
    (["-m", "hparams_search=balancing_pole_dqn", "seed=3"], "every trial trains the seeds of hydra.sweeper.seeds",
     {}),
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
    # In this process, but for the import of a broken Ray (PYTHONPATH), which needs a fresh one.
    run = run_cli if "PYTHONPATH" in env else cli
    out = run(["train", *(a.format(**fill) for a in args), *TINY_JOB], cwd=tmp_path,
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
    from rlkit.ray_launcher import RayInitConf, connect

    monkeypatch.setattr("rlkit.ray_launcher.check_reachable", lambda *args: None)
    init = OmegaConf.structured(RayInitConf)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray = FakeRay()
    assert connect(ray, init) == "local instance"
    assert ray.calls[0][0] == "local" and ray.calls[0][1]["num_cpus"] is None  # not a cluster left by `ray start`
    assert ray.calls[0][1]["dashboard_host"] == "127.0.0.1"  # if ray[default] is there, it serves this machine only
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    ray = FakeRay()
    assert connect(ray, init) == "cluster at 10.0.0.5:6379"
    assert ray.calls[0][0] == "10.0.0.5:6379" and "num_cpus" not in ray.calls[0][1]
    assert "dashboard_host" not in ray.calls[0][1]
    ray = FakeRay()
    connect(ray, OmegaConf.merge(init, {"address": "ray://head:10001"}))
    assert ray.calls[0][0] == "ray://head:10001"


def test_a_new_local_ray_instance_listens_on_loopback_only(monkeypatch):
    from rlkit.ray_address import LOOPBACK_ENV
    from rlkit.ray_launcher import RayInitConf, loopback_if_local

    init = OmegaConf.structured(RayInitConf)
    for env, address, loopback in ((None, None, "0"), ("10.0.0.5:6379", None, None), (None, "auto", None)):
        monkeypatch.delenv(LOOPBACK_ENV, raising=False)
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        if env:
            monkeypatch.setenv("RAY_ADDRESS", env)
        loopback_if_local(OmegaConf.merge(init, {"address": address}))
        assert os.environ.get(LOOPBACK_ENV) == loopback


def test_a_job_reserves_its_torch_threads_on_ray():
    from rlkit.ray_launcher import RayRemoteConf, task_options

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


@pytest.mark.slow  # a tree of processes of its own: tens of seconds
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


# ---------------------------------------------------------------------------------------------- Optuna
def test_search_space_from_expressions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dims, fixed = search_space(
        {"agent.learning_rate": "tag(log, interval(1e-4, 1e-2))", "agent.n_steps": "range(1, 6)",
         "agent.batch_size": "choice(64, 128)", "agent.net_arch": "choice([64,64], [128,128])",
         "agent.gamma": 0.99},
        ["agent.gradient_steps=int(interval(16, 128))", "agent.batch_size=32,64", "total_steps=500"])
    by_name = {d.name: d.distribution for d in dims}
    assert by_name["agent.learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert by_name["agent.n_steps"] == IntDistribution(1, 5)  # range excludes its end
    assert by_name["agent.gradient_steps"] == IntDistribution(16, 128)
    assert by_name["agent.batch_size"] == CategoricalDistribution([32, 64])  # the command line wins
    assert by_name["agent.net_arch"] == CategoricalDistribution(["[64,64]", "[128,128]"])
    assert fixed == ["agent.gamma=0.99", "total_steps=500"]
    dims, fixed = search_space({"agent.n_steps": "range(1, 6)", "agent.gamma": "choice(0.9, 0.99)"},
                               ["agent.n_steps=3"])
    assert [d.name for d in dims] == ["agent.gamma"] and fixed == ["agent.n_steps=3"]  # a value fixes the key
    with pytest.raises(SweepError, match="nothing to search"):
        search_space({}, ["total_steps=500"])
    with pytest.raises(SweepError, match=r"hydra.sweeper.params.agent.gamma: cannot read 'interval\(1, x\)'"):
        search_space({"agent.gamma": "interval(1, x)"}, [])
    with pytest.raises(SweepError, match="a log scale needs a start > 0"):
        search_space({"agent.gamma": "tag(log, interval(0, 1))"}, [])


@pytest.mark.parametrize("value", [1e-05, 0.0023, 3.0, 250, True, None, "dqn", "yes", "a b", [64, 64], {"k": 1.5}])
def test_preset_values_read_back_as_written(value):
    text = preset_yaml(OmegaConf.create({"x": value, "seed": 3}), OmegaConf.create({"x": "other", "seed": 0}),
                       {"agent": "dqn"}, ["a header"])
    assert text.startswith("# @package _global_\n# a header\n")
    assert OmegaConf.create(text).x == value and yaml.safe_load(text)["x"] == value
    assert "seed" not in yaml.safe_load(text)  # the seed belongs to the command line


def test_a_preset_holds_what_differs_and_the_searched_keys():
    base = OmegaConf.create({"agent": {"gamma": 0.99, "lr": 1e-3, "net": {"width": 64, "depth": 2}}, "total": 5})
    config = OmegaConf.merge(base, {"agent": {"lr": 1e-4, "net": {"width": 128}}})
    written = yaml.safe_load(preset_yaml(config, base, {"env": "gym", "agent": "dqn"}, [], keep=["agent.gamma"]))
    assert written == {"defaults": [{"override /env": "gym"}, {"override /agent": "dqn"}],
                       "agent": {"lr": 1e-4, "net": {"width": 128}, "gamma": 0.99}}


def test_sampled_values_become_overrides():
    assert override_value(0.0010659941309425502) == "0.001066"
    assert override_value(1.2345678e-05) == "1.235e-05"
    assert override_value(128) == "128" and override_value("[64,64]") == "[64,64]" and override_value(False) == "false"


def test_the_objective_is_a_key_of_the_summary():
    summary = {"final_eval": {"mean_reward": 80.0, "std_reward": 1.0}, "solved": None}
    assert objective_value(summary, "final_eval.mean_reward", 0) == 80.0
    assert objective_value(summary, "solved", 0) is None
    with pytest.raises(SweepError, match=r"job 3's summary has no 'score' \(keys there: mean_reward, std_reward\)"):
        objective_value(summary, "final_eval.score", 3)


@pytest.mark.parametrize("search", SEARCHES)
def test_every_search_space_fits_its_preset(search):
    """Both ends of every range and every choice compose and validate with the search's preset.

    The values are tried together, as a trial combines them: the i-th value of every dimension (its last where it
    has fewer) in one config, so a search takes as many compositions as its longest choice, not one per value."""
    from hydra import compose

    with hydra_configs():
        cfg = compose(config_name="train", overrides=[f"hparams_search={search}"], return_hydra_config=True)
    assert cfg.hydra.runtime.choices.experiment == search  # each search starts from the preset of its name
    assert "OptunaSweeper" in cfg.hydra.sweeper._target_
    dims, _ = search_space(cfg.hydra.sweeper.params, [])
    assert len(dims) >= 4
    values = {dim.key: getattr(dim.distribution, "choices", None) or (dim.distribution.low, dim.distribution.high)
              for dim in dims}
    for i in range(max(len(v) for v in values.values())):
        typed = compose_cfg([f"hparams_search={search}",
                             *(f"{key}={override_value(v[min(i, len(v) - 1)])}" for key, v in values.items())])
        typed.validate()
        structured = OmegaConf.structured(typed)
        for dim in dims:
            assert OmegaConf.select(structured, dim.name) is not None


def test_an_optuna_search_writes_a_preset_that_composes_and_trains(tmp_path):
    # In this process, trial after trial (Hydra's basic launcher): the parallel launcher has its own tests above.
    out = cli(["train", "-m", "hparams_search=balancing_pole_reinforce", "hydra/launcher=basic", "total_steps=1000",
               "hydra.sweeper.n_trials=3", "hydra.sweeper.seeds=[0,1]", "hydra.sweeper.sampler_seed=0",
               "callbacks.eval.every_steps=0", "callbacks.eval.episodes=2"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    sweep = only_sweep(tmp_path)
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = results["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2] and {t["state"] for t in trials} == {"COMPLETE"}
    for t in trials:  # a trial's value is the mean over its seeds' final evaluations
        finals = [json.loads((sweep / str(j) / "summary.json").read_text())["final_eval"]["mean_reward"]
                  for j in t["jobs"]]
        assert t["seed_values"] == finals and t["value"] == pytest.approx(sum(finals) / 2)
    best = max(trials, key=lambda t: t["value"])
    assert results["best_trial"] == best["number"] and results["best_value"] == best["value"]
    assert len(read_index(sweep)) == 6

    preset = sweep / "experiment" / "best.yaml"
    text = preset.read_text()
    assert f"rlkit train experiment=best 'hydra.searchpath=[file://{sweep}]'" in out.stdout
    for key in results["best_params"]:  # the header names what was searched
        assert re.search(rf"^#   {re.escape(key)}: ", text, re.MULTILINE), key
    cfg = compose_cfg([f"hydra.searchpath=[file://{sweep}]", "experiment=best"])
    job_cfg = OmegaConf.load(sweep / str(best["jobs"][0]) / ".hydra" / "config.yaml")
    for key in results["best_params"]:
        assert OmegaConf.select(OmegaConf.structured(cfg), key) == OmegaConf.select(job_cfg, key), key
    assert cfg.total_steps == 1000 and cfg.agent.name == "reinforce" and cfg.seed == 0

    # The preset trains, from the CLI, and reproduces the best trial's first seed.
    out = cli(["train", "experiment=best", f"hydra.searchpath=[file://{sweep}]", "callbacks.progress_bar=false"],
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs" / "balancing_pole" / "reinforce").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_eval"]["mean_reward"] == best["seed_values"][0]
