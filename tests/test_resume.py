"""Interrupted runs continue exactly: SIGKILL, SIGTERM and a kill mid-checkpoint, for every native-or-SB3 agent.

The test that matters runs the real CLI: a run killed after a checkpoint and continued with
``rlkit train resume=<dir>`` must log the same TensorBoard scalars (episode returns and lengths, evaluations,
training metrics) and end with the same weights, bit for bit, as the same run never interrupted.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from helpers import TINY, cli, compose_cfg, run_cli
from rlkit.callbacks import Callback
from rlkit.envs.state import env_state, set_env_state
from rlkit.errors import RunDirError
from rlkit.factory import build_env
from rlkit.files import load_checkpoint
from rlkit.multirun import read_index
from rlkit.resume import (
    RESUME_DIR,
    STATE_FORMAT,
    checkpoints,
    latest_checkpoint,
    pack,
    read_checkpoint,
    unpack,
)
from rlkit.runs import RUN_LOCK, keep_events
from rlkit.signals import EXIT_INTERRUPTED, SignalGuard
from rlkit.verify import read_scalars

COMMON = ["callbacks.progress_bar=false", "callbacks.eval.episodes=2", "callbacks.checkpoint.every_steps=1000",
          "callbacks.checkpoint.every_seconds=0"]
# Budgets long enough that a run is still going when the test kills it after its first checkpoint.
AGENTS = {
    "reinforce": ["agent=reinforce", "agent.n_envs=4", "agent.steps_per_update=512", "total_steps=30000",
                  "callbacks.eval.every_steps=5000"],
    "dqn": ["agent=dqn", "agent.learning_starts=500", "total_steps=8000", "callbacks.eval.every_steps=3000"],
    "maddpg": ["env=multi_cartpole", "agent=maddpg", "agent.learning_starts=500", "agent.n_step=3",
               "total_steps=8000", "callbacks.eval.every_steps=3000"],
}


def _cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RLKIT_DEBUG", "HYDRA_FULL_ERROR")}
    env["SDL_VIDEODRIVER"] = "dummy"
    return env


def _start(args: list[str], cwd: Path, code: str | None = None) -> subprocess.Popen:
    """The real CLI in a subprocess; ``code`` runs first in the same process (to inject a crash)."""
    program = (code or "") + "\nimport sys\nfrom rlkit.cli import main\nsys.argv = ['rlkit'] + sys.argv[1:]\nmain()\n"
    return subprocess.Popen([sys.executable, "-c", program, "train", *args], cwd=cwd, env=_cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc: subprocess.Popen, run: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not checkpoints(run / RESUME_DIR):
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before its first checkpoint:\n{proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no checkpoint appeared")
        time.sleep(0.05)


def _assert_same_run(reference: Path, continued: Path) -> None:
    """Same scalars (but the wall-clock ones) and the same final weights."""
    a = {t: v for t, v in read_scalars(reference / "tb").items() if not t.startswith("time/")}
    b = {t: v for t, v in read_scalars(continued / "tb").items() if not t.startswith("time/")}
    assert sorted(a) == sorted(b)
    for tag in a:
        assert a[tag] == b[tag], f"{tag} differs"
    assert any(t.startswith("episode/") for t in a) and a["episode/reward"]
    raw = [sorted(r for r in _raw_steps(run / "tb") if not r[0].startswith("time/")) for run in (reference, continued)]
    assert raw[0] == raw[1]  # plain readers of the event files too: nothing purged is left in them
    wa, _ = load_checkpoint(reference / "checkpoints" / "last.safetensors")
    wb, _ = load_checkpoint(continued / "checkpoints" / "last.safetensors")
    assert sorted(wa) == sorted(wb)
    for name in wa:
        assert np.array_equal(wa[name].numpy(), wb[name].numpy()), name


def _reference(tmp_path: Path, agent: str) -> Path:
    run = tmp_path / "reference"
    done = run_cli(["train", *AGENTS[agent], *COMMON, f"hydra.run.dir={run}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (run / RESUME_DIR).exists()  # training checkpoints are removed once a run finishes
    return run


@pytest.mark.slow
@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_sigkill_after_a_checkpoint_then_resume_repeats_the_run_exactly(tmp_path, agent):
    reference = _reference(tmp_path, agent)
    run = tmp_path / "killed"
    proc = _start([*AGENTS[agent], *COMMON, f"hydra.run.dir={run}"], tmp_path)
    _wait_for_checkpoint(proc, run)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()
    continued = run_cli(["train", f"resume={run}"], cwd=tmp_path)
    assert continued.returncode == 0, continued.stderr[-3000:]
    _assert_same_run(reference, run)


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_exits_75_and_resumes_exactly(tmp_path):
    reference = _reference(tmp_path, "maddpg")
    run = tmp_path / "preempted"
    proc = _start([*AGENTS["maddpg"], *COMMON, f"hydra.run.dir={run}"], tmp_path)
    _wait_for_checkpoint(proc, run)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "stopped by SIGTERM" in err and f"resume={run}" in err
    assert "Traceback" not in err
    continued = run_cli(["train", f"resume={run}"], cwd=tmp_path)
    assert continued.returncode == 0, continued.stderr[-3000:]
    _assert_same_run(reference, run)


# Dies (SIGKILL, as a power cut would) halfway through its second checkpoint: the files are written into
# the temporary directory, the rename into place never happens.
_CRASH_IN_SECOND_CHECKPOINT = """
import os, signal
import rlkit.resume as resume
_replace, _count = os.replace, [0]
def dying_replace(src, dst):
    if str(dst).rsplit('/', 1)[-1].startswith('step_'):
        _count[0] += 1
        if _count[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return _replace(src, dst)
resume.os.replace = dying_replace
"""


@pytest.mark.slow
def test_a_kill_during_a_checkpoint_write_leaves_the_previous_one_and_resume_uses_it(tmp_path):
    reference = _reference(tmp_path, "dqn")
    run = tmp_path / "crashed"
    proc = _start([*AGENTS["dqn"], *COMMON, f"hydra.run.dir={run}"], tmp_path, code=_CRASH_IN_SECOND_CHECKPOINT)
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    complete = checkpoints(run / RESUME_DIR)
    assert [p.name for p in complete] == ["step_000000001000"]
    assert list((run / RESUME_DIR).glob(".step_*.tmp")), "the half-written checkpoint should be left behind"
    assert read_checkpoint(complete[0]).step == 1000
    continued = run_cli(["train", f"resume={run}"], cwd=tmp_path)
    assert continued.returncode == 0, continued.stderr[-3000:]
    _assert_same_run(reference, run)


@pytest.mark.slow
def test_resume_auto_continues_the_unfinished_run_of_the_same_config_or_starts_anew(tmp_path):
    args = [*AGENTS["dqn"], *COMMON]
    other = [a for a in args if not a.startswith(("total_steps=", "seed="))]  # for other configs
    fresh = run_cli(["train", "resume=auto", *other, "total_steps=2000"], cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "starting a new run" in fresh.stderr
    proc = _start(args, tmp_path)
    runs_root = tmp_path / "runs" / "balancing_pole" / "dqn"
    deadline = time.monotonic() + 60
    while not [r for r in runs_root.glob("*") if checkpoints(r / RESUME_DIR)]:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    unfinished = [r for r in runs_root.glob("*") if not (r / "summary.json").exists()]
    assert len(unfinished) == 1
    seed1 = run_cli(["train", "resume=auto", *other, "seed=1", "total_steps=1500"], cwd=tmp_path)
    assert "starting a new run" in seed1.stderr  # another config: not that run
    continued = run_cli(["train", "resume=auto", *args], cwd=tmp_path)
    assert continued.returncode == 0, continued.stderr[-3000:]
    assert f"continuing {unfinished[0].relative_to(tmp_path)}" in continued.stderr
    assert (unfinished[0] / "summary.json").exists()
    assert len(list(runs_root.glob("*"))) == 3  # the 2000-step run, the continued one, seed 1


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("finished")
    done = cli(["train", "total_steps=300", *COMMON, f"hydra.run.dir={cwd / 'run'}"], cwd=cwd)
    assert done.returncode == 0, done.stderr
    return cwd / "run"


@pytest.mark.parametrize(("args", "message"), [
    (["resume=nowhere"], "run directory nowhere does not exist"),
    (["resume={finished}"], "has finished (summary.json exists)"),
    (["resume={run}", "agent.learning_rate=0.1"], "takes no other overrides"),
    (["-m", "resume={run}", "seed=1,2"], "cannot be combined with -m"),
])
def test_resume_refuses_what_it_cannot_do_in_one_line(tmp_path, finished_run, args, message):
    run = tmp_path / "run"  # a run that was killed before its first checkpoint
    (run / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "overrides.yaml"):
        (run / ".hydra" / name).write_text((finished_run / ".hydra" / name).read_text())
    # In this process: the slow tests above run resume= in processes of its own.
    out = cli(["train", *[a.format(run=run, finished=finished_run) for a in args]], cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def _unstarted_run(finished_run: Path, run: Path) -> Path:
    """A run killed before its first checkpoint: its .hydra and nothing else (the finished run's config)."""
    (run / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "overrides.yaml"):
        (run / ".hydra" / name).write_text((finished_run / ".hydra" / name).read_text())
    return run


@pytest.mark.parametrize("form", ["{run}", "'{run}'", '"{run}"'])
def test_a_run_without_a_checkpoint_starts_again_and_a_path_may_hold_a_space(tmp_path, finished_run, form):
    """resume=<run dir> of a run stopped before its first checkpoint trains it from step 0, in its directory;
    the path, with a space, as the shell passes it on (unquoted) or with its quotes kept."""
    run = _unstarted_run(finished_run, tmp_path / "my runs" / "run")
    (run / "tb").mkdir()
    (run / "tb" / "events.out.tfevents.1.host.1.0").write_bytes(b"")  # the first try's events: dropped
    out = cli(["train", "resume=" + form.format(run=run)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "stopped before its first training checkpoint; starting it again from step 0" in out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == summary["total_steps"] and summary["resumed_from"] is None
    assert not (run / "tb" / "events.out.tfevents.1.host.1.0").exists()


def _hydra_files(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (run / ".hydra").iterdir()}


def test_a_second_resume_of_a_run_in_use_is_refused_and_changes_nothing(tmp_path, finished_run):
    run = _unstarted_run(finished_run, tmp_path / "run")
    first = _start([f"resume={run}"], tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not ((run / RUN_LOCK).is_file() and (run / RUN_LOCK).read_text() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()[-3000:]
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # it holds the directory, and stays at that point
        before = _hydra_files(run)
        second = cli(["train", f"resume={run}"], cwd=tmp_path)
        assert second.returncode == 2
        assert f"{run} is in use: process {first.pid} trains in it" in second.stderr
        assert _hydra_files(run) == before and not (run / "summary.json").exists()
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert (run / "summary.json").exists()


def _wait_for(condition, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"it ended early:\n{proc.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow  # a tree of processes of its own: tens of seconds
def test_sigterm_while_a_run_starts_exits_75_and_a_requeue_continues_it(tmp_path):
    """SIGTERM before the training loop (its directory made, torch still loading): exit 75, one line with a
    resume= hint a shell can take (the path holds a space); the scheduler's same command with resume=auto and the
    fixed hydra.run.dir then trains it in that directory."""
    run = tmp_path / "queue dir" / "run"
    args = ["agent=reinforce", *TINY, f"hydra.run.dir={run}"]
    proc = _start(args, tmp_path)
    _wait_for(lambda: (run / ".hydra").is_dir(), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert f"continue with: rlkit train {shlex.quote(f'resume={run}')}" in err
    again = run_cli(["train", "resume=auto", *args], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resume=auto: continuing {run}" in again.stderr
    assert json.loads((run / "summary.json").read_text())["steps"] == 1200


# ----------------------------------------------------------------------------------------------- sweeps
SWEEP = ["-m", "agent=reinforce", "seed=0,1,2", "hydra.launcher.n_jobs=2", "total_steps=8000",
         "callbacks.eval.every_steps=0", "callbacks.eval.episodes=2", "callbacks.checkpoint.every_steps=500",
         "callbacks.checkpoint.every_seconds=0", "agent.steps_per_update=500"]


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _sweep_stopped(tmp_path: Path, group: bool) -> tuple[Path, str, set[int]]:
    """A 3-job sweep, 2 at a time, signalled once both running jobs wrote a checkpoint; it exits 75 in one line."""
    proc = subprocess.Popen([sys.executable, "-m", "rlkit.cli", "train", *SWEEP], cwd=tmp_path, env=_cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    root = tmp_path / "runs" / "multirun"
    _wait_for(lambda: root.is_dir() and all(checkpoints(root.iterdir().__next__() / j / RESUME_DIR) for j in "01"),
              proc)
    workers = _children(proc.pid)
    (os.killpg if group else os.kill)(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    (sweep,) = root.iterdir()
    assert err.strip().splitlines()[-1].startswith(f"rlkit: sweep {sweep.relative_to(tmp_path)} stopped by "
                                                  "SIGTERM: 3 of 3 jobs interrupted"), err[-3000:]
    assert "Traceback" not in err and "3 interrupted" in out
    return sweep, err, workers


@pytest.mark.slow  # a tree of processes of its own: tens of seconds
def test_sigterm_to_a_sweep_stops_its_jobs_at_checkpoints_and_a_resumed_job_updates_the_index(tmp_path):
    sweep, _, workers = _sweep_stopped(tmp_path, group=False)
    deadline = time.monotonic() + 30  # the workers end with the sweep: none is left behind
    while any(Path(f"/proc/{w}").exists() for w in workers):
        assert time.monotonic() < deadline, f"workers left running: {workers}"
        time.sleep(0.1)
    rows = {r["job"]: r for r in read_index(sweep)}
    assert {r["status"] for r in rows.values()} == {"interrupted"}
    assert "before training started" in rows[2]["error"]  # never started: the stop came first
    assert checkpoints(sweep / "0" / RESUME_DIR) and not (sweep / ".rlkit-stop").exists()
    continued = run_cli(["train", f"resume={sweep / '2'}"], cwd=tmp_path)
    assert continued.returncode == 0, continued.stderr[-3000:]
    rows = {r["job"]: r for r in read_index(sweep)}
    assert rows[2]["status"] == "completed" and rows[2]["final_eval"] is not None
    assert rows[2]["overrides"] == "agent=reinforce seed=2 " + " ".join(SWEEP[4:])
    assert json.loads((sweep / "2" / "job.json").read_text())["status"] == "completed"
    assert [row["status"] for row in csv.DictReader((sweep / "jobs.csv").open())] == \
        ["interrupted", "interrupted", "completed"]


class SignalAt(Callback):
    """A plug-in callback that sends this process SIGTERM once training reaches ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        if self.num_steps >= self.step:
            self.step = 2**62
            os.kill(os.getpid(), signal.SIGTERM)
        return True


def test_sigterm_stops_a_sweep_of_jobs_in_this_process_too(tmp_path):
    out = cli(["train", "-m", "hydra/launcher=basic", *SWEEP[1:3], *SWEEP[4:], "+callbacks.extra.stop._target_="
               "test_resume.SignalAt", "+callbacks.extra.stop.step=1000"], cwd=tmp_path)
    assert out.returncode == EXIT_INTERRUPTED, out.stderr
    (sweep,) = (tmp_path / "runs" / "multirun").iterdir()
    rows = read_index(sweep)
    assert [r["status"] for r in rows] == ["interrupted"] * 3
    assert "stopped by SIGTERM at step 1" in rows[0]["error"] and checkpoints(sweep / "0" / RESUME_DIR)
    assert all("before training started" in r["error"] for r in rows[1:])
    assert "3 of 3 jobs interrupted" in out.stderr.strip().splitlines()[-1]


@pytest.mark.slow  # a tree of processes of its own: tens of seconds
def test_sigterm_to_a_sweeps_process_group_stops_it_the_same_way(tmp_path):
    sweep, err, _ = _sweep_stopped(tmp_path, group=True)
    rows = read_index(sweep)
    assert all(checkpoints(sweep / j / RESUME_DIR) for j in "01") and {r["status"] for r in rows} == {"interrupted"}


# ----------------------------------------------------------------------------------------------- units
def test_a_second_signal_stops_at_once():
    before = signal.getsignal(signal.SIGINT)  # Python's handler, or SIG_IGN in a background job
    guard = SignalGuard()
    with guard.installed():
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.requested == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is before


def test_pack_and_unpack_keep_arrays_tensors_and_values():
    import torch

    tree = {"a": np.arange(5, dtype=np.uint32), "t": torch.ones(2, 3), "nested": [{"b": np.array([True])}, 3.5],
            "none": None, "big": 2 ** 100}
    doc, arrays = pack(tree)
    back = unpack(doc, arrays)
    assert back["a"].dtype == np.uint32 and np.array_equal(back["a"], tree["a"])
    assert isinstance(back["t"], torch.Tensor) and torch.equal(back["t"], tree["t"])
    assert back["nested"][0]["b"].dtype == bool and back["nested"][1] == 3.5 and back["big"] == 2 ** 100


@pytest.mark.parametrize("env", ["balancing_pole", "robotic_arm", "multi_cartpole"])
def test_env_snapshots_continue_exactly(env):
    factory = build_env(compose_cfg([f"env={env}"]).env)
    rng = np.random.default_rng(0)
    a, b = factory.make_vec(3), factory.make_vec(3)
    a.reset(seed=1)
    b.reset(seed=2)
    space = a.single_action_space

    def actions():
        if hasattr(a, "num_agents"):  # the multi-agent cart-pole: a force per cart
            return rng.uniform(-1, 1, (3, a.num_agents, 1)).astype(np.float32)
        if isinstance(space, spaces.Discrete):
            return rng.integers(0, space.n, 3)
        return rng.uniform(-1, 1, (3, *space.shape)).astype(np.float32)

    for _ in range(150):
        a.step(actions())
    state, exact = env_state(a)
    assert exact
    set_env_state(b, state)
    for _ in range(300):  # through several autoresets
        act = actions()
        ra, rb = a.step(act), b.step(act)
        for x, y in zip(ra[:4], rb[:4], strict=True):
            assert np.array_equal(x, y)


@pytest.mark.parametrize("env", ["balancing_pole", "robotic_arm", "multi_cartpole"])
def test_single_env_snapshots_in_sb3s_wrappers_continue_exactly(env):
    """SB3's stack (DummyVecEnv, Monitor, rlkit's checks, Gymnasium's TimeLimit...) is put back mid-episode into
    copies never reset, and truncates at the same step."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rlkit.envs.adapters import JointControl

    factory = build_env(compose_cfg([f"env={env}", "env.max_episode_steps=40"]).env)
    make = (lambda: JointControl(factory.make())) if factory.agents else factory.make
    a, b = (DummyVecEnv([lambda: Monitor(make()) for _ in range(2)]) for _ in range(2))
    a.seed(1)
    a.reset()
    space, infos = a.action_space, []
    actions = [np.stack([space.sample() for _ in range(2)]) for _ in range(200)]
    for act in actions[:25]:
        a.step(act)
    state, exact = env_state(a)
    assert exact
    set_env_state(b, state)
    for act in actions[25:]:
        ra, rb = a.step(act), b.step(act)
        for x, y in zip(ra[:3], rb[:3], strict=True):
            assert np.array_equal(x, y)
        for x, y in zip(ra[3], rb[3], strict=True):  # Monitor's episode return and length, TimeLimit's truncation
            assert x.get("TimeLimit.truncated") == y.get("TimeLimit.truncated")
            assert {k: v for k, v in x.get("episode", {}).items() if k != "t"} == \
                {k: v for k, v in y.get("episode", {}).items() if k != "t"}
        infos += ra[3]
    assert any("episode" in info for info in infos)


def test_a_crafted_state_file_is_refused_without_running_it(tmp_path):
    """state.npz with an object array (which np.load would unpickle) is refused; its payload never runs."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ck = tmp_path / "run" / RESUME_DIR / "step_000000000100"
    ck.mkdir(parents=True)
    (ck / "agent.safetensors").write_bytes(b"")
    with open(ck / "state.npz", "wb") as f:
        np.savez(f, a0=np.array([Payload()], dtype=object))
    (ck / "state.json").write_text(f'{{"format": {STATE_FORMAT}, "step": 100, "env": "e", "agent": "a", "elapsed": 0, '
                                   '"agent_state": {"evil": {"__array__": "a0"}}, "callbacks": {}, "rng": {}}')
    with pytest.raises(RunDirError, match="corrupt or not a plain .npz"):
        latest_checkpoint(tmp_path / "run")
    assert not marker.exists()
    (ck / "state.json").write_text('{"format": 1, "step": 1')
    with pytest.raises(RunDirError, match="state.json is corrupt"):
        latest_checkpoint(tmp_path / "run")


def test_checkpoints_come_every_n_steps_and_only_the_last_k_are_kept(tmp_path):
    from rlkit.trainer import train

    cfg = compose_cfg(["agent=dqn", "total_steps=2000", "callbacks.progress_bar=false", "callbacks.eval.episodes=2",
                       "callbacks.checkpoint.every_steps=400", "callbacks.checkpoint.every_seconds=0",
                       "callbacks.checkpoint.keep_last=2", "callbacks.checkpoint.keep_after_finish=true"])
    summary = train(cfg, tmp_path / "run")
    kept = checkpoints(tmp_path / "run" / RESUME_DIR)
    assert [p.name for p in kept] == ["step_000000001200", "step_000000001600"]  # none at the end: finished
    assert len(summary["checkpoint_write_seconds"]) == 4
    state = read_checkpoint(kept[-1]).state
    assert state["agent_state"]["buffer"]["observations"].shape[0] == 1600  # the whole replay buffer
    assert not list((tmp_path / "run" / RESUME_DIR).glob(".*"))


def test_a_full_disk_during_a_checkpoint_says_so_and_keeps_the_previous_one(tmp_path, monkeypatch):
    import errno

    import rlkit.resume as resume
    from rlkit.errors import DiskFullError
    from rlkit.trainer import train

    real_savez, calls = np.savez, []

    def savez(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(*args, **kwargs)

    monkeypatch.setattr(resume.np, "savez", savez)
    cfg = compose_cfg(["agent=dqn", "total_steps=2000", "callbacks.progress_bar=false", "callbacks.eval.episodes=2",
                       "callbacks.checkpoint.every_steps=500", "callbacks.checkpoint.every_seconds=0"])
    with pytest.raises(DiskFullError, match="disk full while writing the training checkpoint .*step_000000001000.*"
                                            "the previous one, .*step_000000000500, is intact"):
        train(cfg, tmp_path / "run")
    assert [p.name for p in checkpoints(tmp_path / "run" / RESUME_DIR)] == ["step_000000000500"]
    assert not list((tmp_path / "run" / RESUME_DIR).glob(".*"))
    assert latest_checkpoint(tmp_path / "run").step == 500


def _raw_steps(tb: Path) -> list[tuple[str, int]]:
    """Every scalar record in a run's event files, as a plain reader (no purging) sees them."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return [(v.tag, e.step) for path in sorted(tb.rglob("events.out.tfevents.*"))
            for e in EventFileLoader(str(path)).Load() for v in e.summary.value]


def test_continuing_cuts_the_event_files_back_to_the_checkpoint_even_after_a_kill_mid_swap(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    tb = tmp_path / "run" / "tb"
    with SummaryWriter(log_dir=str(tb)) as writer:
        for step in range(10):
            writer.add_scalar("a", step, step)
    with open(next(tb.glob("events.*")), "ab") as f:
        f.write(b"\x10\x00\x00")  # a record cut short by a kill
    keep_events(tb, 4)
    assert _raw_steps(tb) == [("a", s) for s in range(5)]
    assert sorted(p.name for p in tb.parent.iterdir()) == ["tb"]
    (tb.parent / "tb.new").mkdir()  # killed while writing the new events: the old ones stay
    keep_events(tb, 3)
    assert _raw_steps(tb) == [("a", s) for s in range(4)]
    shutil.copytree(tb, tb.parent / "tb.new")  # killed between the two renames: the new events are whole
    tb.rename(tb.parent / "tb.old")
    keep_events(tb, 3)
    assert _raw_steps(tb) == [("a", s) for s in range(4)] and sorted(p.name for p in tb.parent.iterdir()) == ["tb"]
    keep_events(tb, None)  # no checkpoint: the run starts again, without the first try's events
    assert not tb.exists()
