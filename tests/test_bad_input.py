"""Bad input, collected in one table: each case gets a clear error naming the problem, and nothing is lost.

A case builds the bad input under ``tmp_path`` and returns two functions: ``trigger`` (the call that must fail)
and ``intact`` (asserts that nothing earlier was lost: the good checkpoint still loads, no NaN weights were
written, no payload ran). The message patterns are what the README's "When things go wrong" table quotes.
Two cases at the end go through the real CLI: one paragraph on stderr, exit status 2.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from helpers import TINY, cli, compose_cfg, run_cli
from rlkit.config import EvalRunConfig, check_group_choices
from rlkit.errors import ConfigError, DiskFullError, EnvError, RlkitError, RunDirError, TrainingDiverged
from rlkit.evaluate import evaluate_run, play_episodes
from rlkit.factory import build_agent, build_env
from rlkit.files import load_checkpoint, save_checkpoint
from rlkit.runs import CONFIG_FILE, claim_run_dir, claim_sweep_dir, load_run_config
from rlkit.trainer import train


# ---------------------------------------------------------------------------------------------- a faulty env
class FaultyEnv(gym.Env):
    """A user's env that goes wrong at step ``at``: a NaN or inf observation, or a reward that is no number."""

    def __init__(self, fault: str = "none", at: int = 5, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.fault, self.at, self.t = fault, at, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.t += 1
        obs, reward = np.zeros(3, np.float32), 1.0
        if self.t == self.at:
            if self.fault == "nan_obs":
                obs[2] = np.nan
            elif self.fault == "inf_reward":
                reward = float("inf")
            elif self.fault == "text_reward":
                reward = "abc"
        return obs, reward, False, self.t >= 20, {}


FAULTY_ID = "rlkit_test/Faulty-v0"
if FAULTY_ID not in gym.registry:
    gym.register(FAULTY_ID, entry_point=FaultyEnv)


# ---------------------------------------------------------------------------------------------- a good run
@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished REINFORCE run with its config, as ``rlkit train`` leaves it (best and last checkpoints)."""
    run_dir = tmp_path_factory.mktemp("good") / "run"
    cfg = compose_cfg(["agent=reinforce", *TINY, "callbacks.tensorboard=false"])
    train(cfg, run_dir)
    (run_dir / CONFIG_FILE).parent.mkdir()
    OmegaConf.save(OmegaConf.structured(cfg), run_dir / CONFIG_FILE)
    return run_dir


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def _loads(path: Path, step: int | None = None) -> Callable[[], None]:
    """``intact``: the checkpoint at ``path`` loads, its weights are finite (and it is from ``step``)."""
    def check() -> None:
        tensors, meta = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
        assert step is None or meta["step"] == step
        assert not list(path.parent.glob("*.tmp")), "a temporary file was left behind"
    return check


def _no_marker(marker: Path) -> Callable[[], None]:
    return lambda: None if not marker.exists() else pytest.fail(f"the payload ran: {marker} exists")


def _nothing() -> None:
    return None


def _eval(run_dir: Path, **kwargs: Any) -> Callable[[], Any]:
    return lambda: evaluate_run(EvalRunConfig(run=str(run_dir), n_episodes=1, **kwargs))


# ---------------------------------------------------------------------------------------------- cases
Case = Callable[[Path, Path, pytest.MonkeyPatch], tuple[Callable[[], Any], Callable[[], None]]]


def override_typo(tmp_path: Path, run: Path, monkeypatch):
    return lambda: check_group_choices("train", ["env=balancing_pol"]), _nothing


def wrong_type(tmp_path: Path, run: Path, monkeypatch):
    return lambda: compose_cfg(["agent.learning_rate=abc"]), _nothing


def unknown_key(tmp_path: Path, run: Path, monkeypatch):
    return lambda: compose_cfg(["+agent.lerning_rate=1"]), _nothing


def missing_run_dir(tmp_path: Path, run: Path, monkeypatch):
    return _eval(tmp_path / "no_such_run"), _nothing


def truncated_checkpoint(tmp_path: Path, run: Path, monkeypatch):
    copy = _copy(run, tmp_path)
    best = copy / "checkpoints" / "best.safetensors"
    best.write_bytes(best.read_bytes()[:-200])
    return _eval(copy), _loads(copy / "checkpoints" / "last.safetensors")


def checkpoint_of_another_agent(tmp_path: Path, run: Path, monkeypatch):
    cfg = compose_cfg(["agent=dqn"])
    dqn = build_agent(cfg.agent, build_env(cfg.env), seed=0, training=False)
    return lambda: dqn.load(run / "checkpoints" / "last.safetensors"), _loads(run / "checkpoints" / "last.safetensors")


def run_dir_of_another_env(tmp_path: Path, run: Path, monkeypatch):
    copy = _copy(run, tmp_path)  # the arm's config beside the balancing pole's checkpoints
    cfg = OmegaConf.load(copy / CONFIG_FILE)
    cfg.env = {"name": "robotic_arm"}
    OmegaConf.save(cfg, copy / CONFIG_FILE)
    return _eval(copy), _loads(copy / "checkpoints" / "best.safetensors")


def schema_changed_config(tmp_path: Path, run: Path, monkeypatch):
    copy = _copy(run, tmp_path)
    cfg = OmegaConf.to_container(OmegaConf.load(copy / CONFIG_FILE))
    cfg["agent"]["lerning_rate"] = cfg["agent"].pop("learning_rate")  # a key renamed since the run
    OmegaConf.save(OmegaConf.create(cfg), copy / CONFIG_FILE)
    return lambda: load_run_config(copy), _loads(copy / "checkpoints" / "best.safetensors")


class _Payload:
    marker: Path

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def pickle_checkpoint(tmp_path: Path, run: Path, monkeypatch):
    copy = _copy(run, tmp_path)
    _Payload.marker = tmp_path / "pwned"
    (copy / "checkpoints" / "best.safetensors").write_bytes(pickle.dumps(_Payload()))
    return _eval(copy), _no_marker(tmp_path / "pwned")


def torch_save_checkpoint(tmp_path: Path, run: Path, monkeypatch):
    copy = _copy(run, tmp_path)
    _Payload.marker = tmp_path / "pwned"
    torch.save({"policy": _Payload()}, copy / "checkpoints" / "best.safetensors")
    return _eval(copy), _no_marker(tmp_path / "pwned")


def yaml_tag_config(tmp_path: Path, run: Path, monkeypatch):
    copy = _copy(run, tmp_path)
    _plant_payload(copy / CONFIG_FILE, tmp_path / "pwned")
    return _eval(copy), _no_marker(tmp_path / "pwned")


def _plant_payload(config: Path, marker: Path) -> None:
    """A config whose seed is a call of os.system, if a loader were to construct Python objects."""
    text = config.read_text()
    assert "\nseed: 0\n" in text
    config.write_text(text.replace("\nseed: 0\n", f"\nseed: !!python/object/apply:os.system ['touch {marker}']\n"))


def _train_faulty(fault: str, agent: list[str]):
    def case(tmp_path: Path, run: Path, monkeypatch):
        cfg = compose_cfg(["env=gym", f"env.id={FAULTY_ID}", f"+env.kwargs.fault={fault}", *agent, *TINY])
        run_dir = tmp_path / "run"
        return lambda: train(cfg, run_dir), lambda: _no_nan_weights(run_dir)
    return case


def nan_physics(tmp_path: Path, run: Path, monkeypatch):
    run_dir = tmp_path / "run"
    cfg = compose_cfg(["agent=reinforce", "env.gravity=nan", *TINY])
    return lambda: train(cfg, run_dir), lambda: _no_nan_weights(run_dir)


def _no_nan_weights(run_dir: Path) -> None:
    for ckpt in (run_dir / "checkpoints").glob("*.safetensors") if (run_dir / "checkpoints").is_dir() else []:
        _loads(ckpt)()


def wrong_action_shape_in_eval(tmp_path: Path, run: Path, monkeypatch):
    class TwoNumbers:  # an agent whose actions do not fit Pendulum's Box(-2, 2, (1,))
        def act(self, obs, deterministic=True):
            return np.zeros((len(obs), 2), np.float32)

    env = build_env(compose_cfg(["env=gym", "env.id=Pendulum-v1"]).env).make()
    return lambda: play_episodes(TwoNumbers(), [env]), _nothing


def wrong_action_shape_to_rlkit_env(tmp_path: Path, run: Path, monkeypatch):
    env = build_env(compose_cfg([]).env).make()
    env.reset(seed=0)
    return lambda: env.step(np.array([0, 1])), _nothing


def action_outside_the_space(tmp_path: Path, run: Path, monkeypatch):
    env = gym.make("rlkit/BalancingPole-v1")
    env.reset(seed=0)
    return lambda: env.step(3), _nothing


def nan_loss_native(tmp_path: Path, run: Path, monkeypatch):
    import rlkit.agents.reinforce as reinforce

    real, calls = reinforce.policy_loss, []

    def loss_that_turns_nan(*args, **kwargs):  # fine for the first updates, then NaN
        loss, adv = real(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) > 4 else loss), adv

    monkeypatch.setattr(reinforce, "policy_loss", loss_that_turns_nan)
    run_dir = tmp_path / "run"
    cfg = compose_cfg(["agent=reinforce", *TINY, "total_steps=20000", "callbacks.tensorboard=false"])
    return lambda: train(cfg, run_dir), lambda: _diverged_cleanly(run_dir)


def absurd_learning_rate_sb3(tmp_path: Path, run: Path, monkeypatch):
    run_dir = tmp_path / "run"
    cfg = compose_cfg(["agent=dqn", "agent.learning_rate=1e30", "agent.learning_starts=300",
                       *TINY, "callbacks.tensorboard=false"])
    return lambda: train(cfg, run_dir), lambda: _diverged_cleanly(run_dir)


def absurd_learning_rate_maddpg(tmp_path: Path, run: Path, monkeypatch):
    run_dir = tmp_path / "run"
    cfg = compose_cfg(["env=multi_cartpole", "agent=maddpg", "agent.actor_learning_rate=1e30",
                       "agent.critic_learning_rate=1e30", "agent.learning_starts=600", *TINY,
                       "callbacks.tensorboard=false"])
    return lambda: train(cfg, run_dir), lambda: _diverged_cleanly(run_dir)


def _diverged_cleanly(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped"].startswith("diverged at step"), summary["stopped"]
    assert summary["checkpoints"]["last"] == "checkpoints/last.safetensors"
    _loads(run_dir / "checkpoints" / "last.safetensors")()
    _no_nan_weights(run_dir)


def disk_full_checkpoint(tmp_path: Path, run: Path, monkeypatch):
    path = tmp_path / "checkpoints" / "best.safetensors"
    save_checkpoint(path, {"w": torch.ones(3)}, {"step": 1})

    def fsync_on_a_full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync_on_a_full_disk)
    return lambda: save_checkpoint(path, {"w": torch.zeros(3)}, {"step": 2}), _loads(path, step=1)


def disk_full_tensorboard(tmp_path: Path, run: Path, monkeypatch):
    from torch.utils.tensorboard.writer import FileWriter

    real = FileWriter.add_event

    def add_event(self, event, step=None, walltime=None):  # the disk fills up after the first evaluation
        if step is not None and step >= 1000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, event, step, walltime)

    monkeypatch.setattr(FileWriter, "add_event", add_event)
    run_dir = tmp_path / "run"
    cfg = compose_cfg(["agent=reinforce", *TINY])
    return lambda: train(cfg, run_dir), _loads(run_dir / "checkpoints" / "best.safetensors")


def run_dir_taken(tmp_path: Path, run: Path, monkeypatch):
    copy = _copy(run, tmp_path)  # same directory: a user-given hydra.run.dir, or two starts in one microsecond
    before = (copy / CONFIG_FILE).read_text()

    def check() -> None:
        assert (copy / CONFIG_FILE).read_text() == before
        _loads(copy / "checkpoints" / "last.safetensors")()
    return lambda: claim_run_dir(copy), check


def run_dir_of_an_older_run(tmp_path: Path, run: Path, monkeypatch):
    copy = _copy(run, tmp_path)
    shutil.rmtree(copy / ".hydra")  # a run without Hydra's folder: its summary and checkpoints still count

    def check() -> None:
        assert not (copy / ".hydra").exists(), "the refused claim must leave the directory as it was"
        _loads(copy / "checkpoints" / "last.safetensors")()
    return lambda: claim_run_dir(copy), check


def sweep_dir_taken(tmp_path: Path, run: Path, monkeypatch):
    sweep = tmp_path / "sweep"
    claim_sweep_dir(sweep)
    return lambda: claim_sweep_dir(sweep), _nothing


# id, the bad input, the error, what the message must say (a regular expression)
CASES: list[tuple[str, Case, type[BaseException] | tuple[type[BaseException], ...], str]] = [
    ("override typo", override_typo, RlkitError,
     r"env=balancing_pol names no config in group 'env'; choose one of: .*Did you mean env=balancing_pole\?"),
    ("wrong type", wrong_type, ConfigCompositionException,
     r"agent.learning_rate=abc.*Value 'abc' of type 'str' could not be converted to Float"),
    ("unknown key", unknown_key, ConfigError,
     r"unknown key 'agent.lerning_rate': no field 'lerning_rate' in DQNConfig. Did you mean agent.learning_rate\?"),
    ("missing run dir", missing_run_dir, RunDirError, r"run directory .*no_such_run does not exist"),
    ("truncated checkpoint", truncated_checkpoint, RunDirError,
     r"checkpoint .*best.safetensors is corrupt or not a safetensors file"),
    ("checkpoint of another agent", checkpoint_of_another_agent, RunDirError,
     r"checkpoint .*last.safetensors was written by 'reinforce', but the run's config builds 'DQN'"),
    ("run dir of another env", run_dir_of_another_env, RunDirError,
     r"checkpoint .*best.safetensors does not fit the run's networks \(.*size mismatch"),
    ("schema-changed config", schema_changed_config, RunDirError,
     r"config.yaml does not fit the current config schema: .*lerning_rate"),
    ("pickle checkpoint", pickle_checkpoint, RunDirError,
     r"checkpoint .*best.safetensors is a pickle, which can run code when loaded: refused"),
    ("torch.save checkpoint", torch_save_checkpoint, RunDirError,
     r"checkpoint .*best.safetensors is a zip archive \(torch.save's or SB3's format, which holds pickles\), "
     r"which can run code when loaded: refused"),
    ("config with a python tag", yaml_tag_config, RunDirError,
     r"config.yaml holds the YAML tag !!python/object/apply:os.system, which would run code: refused"),
    ("NaN physics constant, batched env", nan_physics, EnvError,
     r"observation from balancing_pole contains NaN at index 1, 2 non-finite values in all \(copy 0, step 1\)"),
    ("NaN observation, native agent", _train_faulty("nan_obs", ["agent=reinforce"]), EnvError,
     rf"observation from {FAULTY_ID} contains NaN at index 2 \(copy \d+, episode \d+, step 5\)"),
    ("NaN observation, SB3 agent", _train_faulty("nan_obs", ["agent=dqn"]), EnvError,
     rf"observation from {FAULTY_ID} contains NaN at index 2 \(episode 1, step 5\)"),
    ("reward that is no number, native agent", _train_faulty("text_reward", ["agent=reinforce"]), EnvError,
     rf"reward from {FAULTY_ID} is not a number: 'abc' \(copy \d+, episode \d+, step 5\)"),
    ("infinite reward, native agent", _train_faulty("inf_reward", ["agent=reinforce"]), EnvError,
     rf"reward from {FAULTY_ID} is inf \(copy \d+, episode \d+, step 5\)"),
    ("infinite reward, MADDPG", _train_faulty("inf_reward", ["agent=maddpg"]), EnvError,
     rf"reward from {FAULTY_ID} is inf \(copy \d+, episode \d+, step 5\)"),
    ("reward that is no number, SB3 agent", _train_faulty("text_reward", ["agent=ppo"]), EnvError,
     rf"reward from {FAULTY_ID} is not a number: 'abc' \(episode 1, step 5\)"),
    ("wrong action shape in eval", wrong_action_shape_in_eval, EnvError,
     r"action for Pendulum-v1 has shape \(2,\), but its action space Box\(-2.0, 2.0, \(1,\), float32\) takes "
     r"actions of shape \(1,\)"),
    ("wrong action shape, rlkit env", wrong_action_shape_to_rlkit_env, EnvError,
     r"action for balancing_pole has shape \(2,\), but its action space Discrete\(2\) takes actions of shape \(\)"),
    ("action outside the space", action_outside_the_space, ValueError,
     r"action 3 is outside the action space Discrete\(2\): expected the integer 0 \(push left\) or 1"),
    ("NaN loss, REINFORCE", nan_loss_native, TrainingDiverged,
     r"training diverged at step \d+: the gradient of reinforce's policy is NaN .*the update was not applied.*"
     r"The run stopped; the last good weights are in .*last.safetensors"),
    ("absurd learning rate, DQN", absurd_learning_rate_sb3, TrainingDiverged,
     r"training diverged at step \d+: the gradient of DQN's optimizer is NaN"),
    ("absurd learning rate, MADDPG", absurd_learning_rate_maddpg, TrainingDiverged,
     r"training diverged at step \d+: the gradient of maddpg's (critics|actors) is NaN"),
    ("disk full, checkpoint", disk_full_checkpoint, DiskFullError,
     r"disk full while writing .*best.safetensors \(No space left on device\); the previous checkpoint "
     r".*best.safetensors is intact"),
    ("disk full, TensorBoard", disk_full_tensorboard, DiskFullError,
     r"disk full while writing .*run \(No space left on device\); the previous checkpoint .*best.safetensors is "
     r"intact"),
    ("run dir taken", run_dir_taken, RunDirError,
     r"run already holds another run \(.hydra/ exists\); rlkit never writes into another run's directory"),
    ("run dir of an older run", run_dir_of_an_older_run, RunDirError,
     r"run already holds another run \(summary.json exists\)"),
    ("sweep dir taken", sweep_dir_taken, RunDirError, r"sweep already holds another run \(.rlkit-sweep exists\)"),
]


@pytest.mark.parametrize(("make", "error", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error_and_nothing_is_lost(tmp_path, run, monkeypatch, make, error, message):
    trigger, intact = make(tmp_path, run, monkeypatch)
    with pytest.raises(error) as info:
        trigger()
    text = f"{info.value} {info.value.__cause__ or ''}"
    assert re.search(message, text, re.DOTALL), text
    intact()


# ---------------------------------------------------------------------------------------------- the CLI
def _one_paragraph(out, message: str) -> None:
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("rlkit: error: ") and "Traceback" not in out.stderr, out.stderr
    assert re.search(message, out.stderr), out.stderr


def test_cli_refuses_a_crafted_config_without_running_it(tmp_path, run):
    copy = _copy(run, tmp_path)
    marker = tmp_path / "pwned"
    _plant_payload(copy / CONFIG_FILE, marker)
    _one_paragraph(cli(["eval", f"run={copy}"], cwd=tmp_path), r"which would run code: refused")
    assert not marker.exists()


def test_cli_stops_a_diverging_run_with_its_last_good_weights(tmp_path):
    run_dir = tmp_path / "out"
    out = run_cli(["train", "agent=reinforce", "agent.value_learning_rate=1e30", "total_steps=20000",
                   "callbacks.progress_bar=false", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    _one_paragraph(out, r"training diverged at step \d+: the gradient of reinforce's baseline is NaN")
    _diverged_cleanly(run_dir)
    # The same directory again: refused before Hydra writes anything into it.
    config = (run_dir / CONFIG_FILE).read_text()
    _one_paragraph(cli(["train", f"hydra.run.dir={run_dir}"], cwd=tmp_path), r"already holds another run")
    assert (run_dir / CONFIG_FILE).read_text() == config


# ---------------------------------------------------------------------------------------------- the pieces
@pytest.mark.parametrize(("value", "problem"), [
    (1.0, None), (np.float32(np.nan), "is NaN"), (float("-inf"), "is -inf"), (3, None), (True, None),
    ("abc", "is not a number: 'abc'"), (None, "is not a number: None"),
    (np.array([0.0, np.nan, np.inf]), "contains NaN at index 1, 2 non-finite values in all"),
    (np.zeros((2, 3)), None), (np.full((2, 3), 3e38, np.float32), None),  # large but finite: no overflow
    (np.array([[0.0, 0.0], [0.0, np.inf]]), "contains inf at index (1, 1)"),
    ({"pos": np.array([np.nan]), "id": 2}, "at key 'pos' contains NaN at index 0"),
    ((0, np.array([-np.inf])), "at position 1 contains -inf at index 0"),
])
def test_bad_number_says_what_and_where(value, problem):
    from rlkit.envs.checks import bad_number

    assert bad_number(value) == problem


def test_a_diverging_step_is_not_applied():
    from rlkit.agents.networks import refuse_diverging_steps

    net = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    refuse_diverging_steps(opt, "the test's net", lambda: 42)
    before = [p.detach().clone() for p in net.parameters()]
    (net(torch.ones(1, 3)) * float("nan")).sum().backward()
    with pytest.raises(TrainingDiverged, match="training diverged at step 42: the gradient of the test's net is NaN"):
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert not opt.state, "the optimizer's moments must not move either"


# ---------------------------------------------------------------------------------------------- refused, nothing left
def _refused(out, message: str, cwd: Path) -> None:
    """One paragraph naming the problem, exit status 2, and no run directory (nor its parents) left in ``cwd``."""
    _one_paragraph(out, message)
    assert len([line for line in out.stderr.splitlines() if line.startswith("rlkit: error:")]) == 1, out.stderr
    assert not (cwd / "runs").exists(), f"left behind: {sorted(str(p) for p in (cwd / 'runs').rglob('*'))}"


# Values refused after Hydra made the run directory: it is removed again (overrides, the message).
REFUSED_VALUES = [
    (["seed=-1"], r"seed must be between 0 and 4294967295 \(2\*\*32 - 1, NumPy's seed range\), got -1"),
    (["seed=4294967296"], r"seed must be between 0 and 4294967295 .*got 4294967296"),
    (["total_steps=0"], r"total_steps must be >= 1, got 0"),
    (["torch_threads=0"], r"torch_threads must be >= 1, got 0"),
    (["callbacks.eval.every_steps=-1"], r"callbacks.eval.every_steps must be >= 0, got -1"),
    (["callbacks.eval.episodes=0"], r"callbacks.eval.episodes must be between 1 and 1000"),
    (["callbacks.eval.episodes=2000000"], r"callbacks.eval.episodes must be between 1 and 1000 \(each is a copy of "
     r"the env, played in parallel\), got 2000000; for more, evaluate the finished run: rlkit eval"),
    (["callbacks.checkpoint.keep_last=0"], r"callbacks.checkpoint.keep_last must be >= 1, got 0"),
    (["callbacks.checkpoint.every_seconds=-1"], r"callbacks.checkpoint.every_steps and every_seconds must be >= 0"),
    (["agent.n_envs=0"], r"agent.n_envs=0 is out of range"),
    (["agent=reinforce", "agent.n_envs=0"], r"agent.n_envs=0 is out of range"),
    (["agent=maddpg", "agent.tau=0"], r"agent.tau=0.0 is out of range"),
    (["agent.net_arch=[]"], r"agent.net_arch must list positive layer sizes, got \[\]"),
    (["agent.activation_fn=swish"], r"agent.activation_fn='swish' is unknown"),
    (["env=multi_cartpole", "env.num_agents=0"], r"env.num_agents must be >= 1, got 0"),
    (["env.masscart=0"], r"env.masscart must be > 0, got 0.0"),
    (["env=robotic_arm", "env.dt=0"], r"env.dt must be finite and > 0, got 0.0"),
    (["agent.buffer_size=1000000000000"], r"agent.buffer_size=1000000000000 needs at least 47.3 TiB of memory for "
     r"balancing_pole's 4 observation and 2 action numbers, more than this machine's .*: lower agent.buffer_size"),
    (["agent.net_arch=[200000,200000]"], r"agent.net_arch=\[200000, 200000\] needs at least 596.1 GiB of memory "
     r".*: lower agent.net_arch"),
    (["env=multi_cartpole", "agent=maddpg", "agent.buffer_size=100000000000"],
     r"agent.buffer_size=100000000000 needs at least .* for multi_cartpole's 8 observation and 2 action numbers"),
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED_VALUES, ids=[" ".join(o) for o, _ in REFUSED_VALUES])
def test_a_refused_value_leaves_no_run_directory(tmp_path, overrides, message):
    _refused(cli(["train", *overrides, "callbacks.progress_bar=false"], cwd=tmp_path), message, tmp_path)


def test_a_run_directory_with_more_than_hydra_files_is_kept(tmp_path):
    """A refused run whose directory the user filled beforehand (hydra.run.dir given) keeps what was there."""
    from rlkit.runs import removed_if_refused

    run_dir = tmp_path / "runs" / "x"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError), removed_if_refused(run_dir, "train.log"):
        raise ConfigError("refused")
    assert (run_dir / "notes.txt").read_text() == "mine"
    (run_dir / "notes.txt").unlink()
    with pytest.raises(ConfigError), removed_if_refused(run_dir, "train.log", new=False):  # resume=: its own
        raise ConfigError("refused")
    assert (run_dir / ".hydra").is_dir()


def test_memory_is_estimated_before_it_is_allocated(monkeypatch):
    from rlkit.agents.config import memory_needed
    from rlkit.factory import check_memory

    dqn = compose_cfg(["agent.buffer_size=10", "agent.net_arch=[3]"]).agent
    # 4 observation numbers, 2 actions: (4+1)*3 + (3+1)*2 weights, x4 for gradients and Adam's moments, 4 bytes each;
    # the buffer: observations and next observations, actions, reward and two flags per transition.
    assert memory_needed(dqn, 4, 2) == {"agent.net_arch": 16 * 23, "agent.buffer_size": 4 * 10 * (8 + 2 + 3)}
    cfg = compose_cfg([])
    check_memory(cfg.agent, build_env(cfg.env))  # the default fits
    monkeypatch.setattr("rlkit.factory.physical_memory", lambda: 2**20)
    with pytest.raises(ConfigError, match=r"agent.buffer_size=1000000 needs at least 49.6 MiB of memory .* more "
                                          r"than this machine's 1.0 MiB: lower agent.buffer_size"):
        check_memory(cfg.agent, build_env(cfg.env))


def test_the_largest_seed_numpy_takes_is_accepted():
    compose_cfg(["seed=4294967295"]).validate()


@pytest.mark.parametrize("where", ["a file", "read-only", "name too long"])
def test_a_run_directory_that_cannot_be_made_gets_one_line(tmp_path, monkeypatch, where):
    target = tmp_path / "out"
    if where == "a file":
        target.write_text("not a run")
        message = rf"cannot create the directory {target}: a file is in the way. Choose another hydra.run.dir"
    elif where == "read-only":
        real_mkdir = os.mkdir

        def mkdir(path, *args, **kwargs):
            if str(path).startswith(str(target)):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            real_mkdir(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", mkdir)
        message = rf"cannot create the directory {target}: Read-only file system. Choose another hydra.run.dir"
    else:
        target = tmp_path / ("a" * 300)
        message = r"cannot create the directory .*a{300}: File name too long. Choose another hydra.run.dir"
    _refused(cli(["train", f"hydra.run.dir={target}"], cwd=tmp_path), message, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == (["out"] if where == "a file" else [])
    assert where != "a file" or target.read_text() == "not a run"


def test_a_sweep_directory_that_is_a_file_gets_one_line(tmp_path):
    target = tmp_path / "sweep"
    target.write_text("not a sweep")
    _refused(cli(["train", "-m", "hydra/launcher=basic", "seed=0,1", f"hydra.sweep.dir={target}"], cwd=tmp_path),
             rf"cannot create the directory {target}: a file is in the way. Choose another hydra.sweep.dir", tmp_path)
    assert target.read_text() == "not a sweep"


def test_plot_into_a_read_only_run_gets_one_line(tmp_path, run, monkeypatch):
    from matplotlib.figure import Figure
    from torch.utils.tensorboard import SummaryWriter

    copy = _copy(run, tmp_path)
    (copy / "files.json").unlink()  # the curves below are not the run's own: no checksums to compare against
    (copy / "summary.json").write_text(json.dumps({"steps": 1200}))
    with SummaryWriter(str(copy / "tb")) as writer:
        for step in range(5):
            writer.add_scalar("episode/reward", float(step), step * 100)

    def savefig(self, fname, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(fname))

    monkeypatch.setattr(Figure, "savefig", savefig)
    out = cli(["plot", str(copy)], cwd=tmp_path)
    _one_paragraph(out, rf"cannot write {copy}/learning_curves.png: Read-only file system. Choose another place "
                        r"with --out PATH.png")
    assert not (copy / "learning_curves.csv").exists()


@pytest.mark.parametrize("command", ["train", "eval", "verify"])
def test_a_key_given_twice_is_refused(tmp_path, command):
    _refused(cli([command, "run=x", "seed=1", "seed=2"], cwd=tmp_path),
             r"seed is given twice \(seed=1 and seed=2\), and only one can count; give it once", tmp_path)


def test_a_preset_with_another_agent_names_the_preset_that_fits(tmp_path):
    _refused(cli(["train", "experiment=balancing_pole_dqn", "agent=reinforce"], cwd=tmp_path),
             r"experiment=balancing_pole_dqn is the preset for env=balancing_pole agent=dqn and sets its keys, which "
             r"do not fit agent=reinforce \(Key 'gradient_steps' not in 'ReinforceConfig'\); use "
             r"experiment=balancing_pole_reinforce, or drop experiment=", tmp_path)
    _refused(cli(["train", "experiment=robotic_arm_maddpg", "agent=dqn"], cwd=tmp_path),
             r"do not fit agent=dqn \(.*\); there is no preset for env=robotic_arm agent=dqn: drop experiment=",
             tmp_path)
    check_group_choices("train", ["experiment=balancing_pole_dqn", "env=balancing_pole", "agent=dqn"])  # the same


def test_more_torch_threads_than_cores_warns(tmp_path, caplog):
    cores = os.cpu_count() or 1
    cfg = compose_cfg(["agent=reinforce", *TINY, "total_steps=100", "callbacks.eval.every_steps=0",
                       "callbacks.tensorboard=false", f"torch_threads={cores + 1}"])
    with caplog.at_level("WARNING", logger="rlkit.trainer"):
        train(cfg, tmp_path / "run")
    assert f"torch_threads={cores + 1} is more than this machine's {cores} cores" in caplog.text
    assert f"set torch_threads={cores} or fewer" in caplog.text

