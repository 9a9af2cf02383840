"""The Python API: rlkit.train, rlkit.load (predict, make_env, evaluate), run selection and bad input."""

import json
import os
import re
import shutil
import time

import numpy as np
import pytest

import rlkit
from helpers import TINY, cli
from rlkit.errors import ConfigError, RunDirError
from rlkit.runs import resolve_run

QUICK = {k: v for k, v in (o.split("=", 1) for o in TINY)}  # the same tiny budget as a dict of dotted keys


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two identical REINFORCE runs from Python in one process, and the same config trained by the CLI."""
    cwd = tmp_path_factory.mktemp("api")
    old = os.getcwd()
    os.chdir(cwd)
    try:
        first = rlkit.train("balancing_pole", "reinforce", overrides={**QUICK, "seed": 4})
        second = rlkit.train(env="balancing_pole", agent="reinforce", overrides=[*TINY, "seed=4"])
    finally:
        os.chdir(old)
    out = cli(["train", "env=balancing_pole", "agent=reinforce", *TINY, "seed=4"], cwd=cwd)
    assert out.returncode == 0, out.stderr
    by_cli = next(p for p in (cwd / "runs" / "balancing_pole" / "reinforce").iterdir()
                  if p not in (cwd / first.dir, cwd / second.dir))
    return cwd, first, second, by_cli


def test_train_from_python_is_the_cli_run(runs):
    cwd, first, second, by_cli = runs
    assert first.dir != second.dir and first.dir.parent == second.dir.parent == by_cli.parent.relative_to(cwd)
    for rel in (".hydra/config.yaml", ".hydra/overrides.yaml", "summary.json", "train.log",
                "checkpoints/best.safetensors", "checkpoints/last.safetensors"):
        assert (cwd / first.dir / rel).is_file(), rel
    cli_summary = json.loads((by_cli / "summary.json").read_text())
    assert first.summary == json.loads((cwd / first.dir / "summary.json").read_text())
    for key in ("steps", "episodes", "final_eval", "best_eval", "seed", "agent", "env"):
        assert first.summary[key] == second.summary[key] == cli_summary[key], key
    # The saved config is the CLI's, key for key.
    assert (cwd / first.dir / ".hydra/config.yaml").read_text() == (by_cli / ".hydra/config.yaml").read_text()
    assert "training reinforce on balancing_pole" in (cwd / first.dir / "train.log").read_text()


def _played_by_predict(policy, episodes, seed):
    """Episodes played with make_env and predict, seeded as rlkit eval seeds them."""
    env = policy.make_env()
    env.reset(seed=seed)
    env.action_space.seed(seed)
    rewards, lengths = [], []
    for _ in range(episodes):
        obs, _ = env.reset()
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy.predict(obs))
            total, steps, done = total + reward, steps + 1, terminated or truncated
        rewards.append(total)
        lengths.append(steps)
    env.close()
    return rewards, lengths


def test_load_predict_round_trip_equals_rlkit_eval(runs):
    cwd, first, _, _ = runs
    policy = rlkit.load(cwd / first.dir)
    rewards, lengths = _played_by_predict(policy, 3, seed=7)
    out = cli(["eval", f"run={first.dir}", "n_episodes=3", "seed=7"], cwd=cwd)
    assert out.returncode == 0, out.stderr
    printed = re.findall(r"episode \d+: reward ([\d.-]+), length (\d+)", out.stdout)
    assert printed == [(f"{r:.1f}", str(n)) for r, n in zip(rewards, lengths, strict=True)]
    played = policy.evaluate(3, seed=7)
    assert played.rewards == rewards and played.lengths == lengths


def test_predict_takes_one_observation_or_a_batch(runs):
    cwd, first, _, _ = runs
    policy = rlkit.load(cwd / first.dir / "checkpoints" / "last.safetensors")
    assert policy.checkpoint.name == "last.safetensors"
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    batch = policy.predict(obs)
    assert batch.shape == (50,) and all(policy.action_space.contains(int(a)) for a in batch)
    assert [policy.predict(o) for o in obs] == list(batch)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        policy.predict(np.zeros(3))


def test_load_resolves_latest_and_folders_of_runs(runs):
    cwd, first, second, by_cli = runs
    newest = max((first.dir, second.dir, by_cli.relative_to(cwd)),
                 key=lambda p: (cwd / p / ".hydra/config.yaml").stat().st_mtime)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        assert resolve_run("latest") == newest
        assert resolve_run("runs/balancing_pole") == newest
        assert resolve_run(first.dir) == first.dir
        assert rlkit.load("latest").dir == newest
    finally:
        os.chdir(old)
    for args in (["eval", "run=latest", "n_episodes=1"], ["eval", "runs/balancing_pole/reinforce", "n_episodes=1"],
                 ["eval", str(first.dir), "n_episodes=1"]):
        out = cli(args, cwd=cwd)
        assert out.returncode == 0, (args, out.stderr)
        expected = first.dir if args[1] == str(first.dir) else newest
        assert f"1 episodes from {expected / 'checkpoints' / 'best.safetensors'}" in out.stdout, (args, out.stdout)


def test_resolve_run_picks_the_newest_config(tmp_path):
    for i, name in enumerate(("b", "a", "c/0")):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "config.yaml").write_text("{}")
        t = time.time() + [0, 10, 5][i]
        os.utime(tmp_path / name / ".hydra" / "config.yaml", (t, t))
    assert resolve_run(tmp_path) == tmp_path / "a"
    assert resolve_run(tmp_path / "c") == tmp_path / "c" / "0"
    assert resolve_run(tmp_path / "missing") == tmp_path / "missing"
    os.chdir(tmp_path)
    try:
        with pytest.raises(RunDirError, match="no run under runs/"):
            resolve_run("latest")
    finally:
        os.chdir(os.path.dirname(__file__))


def test_load_refuses_what_is_not_a_run(runs, tmp_path):
    cwd, first, _, _ = runs
    run = tmp_path / "copy"
    shutil.copytree(cwd / first.dir, run)
    cases = {
        tmp_path / "nowhere": "does not exist",
        run / "checkpoints": r"is not an rlkit run directory: \.hydra/config\.yaml is missing",
        run / "summary.json": "outside a run's checkpoints/ folder",
    }
    (run / "checkpoints" / "corrupt.safetensors").write_bytes(b"\x00" * 40)
    cases[run / "checkpoints" / "corrupt.safetensors"] = "corrupt or not a safetensors file"
    (run / "checkpoints" / "sb3.safetensors").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    cases[run / "checkpoints" / "sb3.safetensors"] = "zip archive .* refused"
    for path, message in cases.items():
        with pytest.raises(RunDirError, match=message) as e:
            rlkit.load(path)
        assert str(path) in str(e.value)
    (run / "checkpoints" / "best.safetensors").unlink()
    (run / "checkpoints" / "last.safetensors").unlink()
    with pytest.raises(RunDirError, match=f"{run} has no best checkpoint"):
        rlkit.load(run)


def test_load_refuses_a_checkpoint_of_another_agent_or_a_newer_format(runs, tmp_path):
    from rlkit.files import load_checkpoint, save_checkpoint

    cwd, first, _, _ = runs
    run = tmp_path / "copy"
    shutil.copytree(cwd / first.dir, run)
    best = run / "checkpoints" / "best.safetensors"
    tensors, meta = load_checkpoint(best)
    save_checkpoint(best, tensors, {**meta, "agent": "maddpg"})
    with pytest.raises(RunDirError, match=f"checkpoint {best} was written by 'maddpg'"):
        rlkit.load(run)
    save_checkpoint(best, tensors, {**meta, "format": 99})
    with pytest.raises(RunDirError, match="format 99, newer than this rlkit reads"):
        rlkit.load(run)
    save_checkpoint(best, {k: v[..., :1] for k, v in tensors.items()}, meta)
    with pytest.raises(RunDirError, match="does not fit the run's networks"):
        rlkit.load(run)


@pytest.mark.parametrize("kwargs, message", [
    ({"env": "balancing_pol"}, "env=balancing_pol names no config in group 'env'.*Did you mean env=balancing_pole"),
    ({"overrides": {"agent.foo": 1}}, "foo"),
    ({"overrides": {"seed": "abc"}}, "seed"),
    ({"overrides": {"total_steps": 0}}, "total_steps must be >= 1"),
    ({"overrides": ["hydra.run.dir=x"]}, "Hydra's own settings"),
    ({"overrides": "seed=1"}, "a dict or a list"),
])
def test_train_refuses_bad_config_before_writing_anything(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message):
        rlkit.train(**kwargs)
    assert not list(tmp_path.iterdir())


def test_train_never_writes_into_another_run(runs):
    cwd, first, _, _ = runs
    with pytest.raises(RunDirError, match="already holds another run"):
        rlkit.train(overrides=QUICK, run_dir=cwd / first.dir)


def test_multi_agent_predict_takes_a_dict_keyed_by_agent(tmp_path):
    run = rlkit.train("multi_cartpole", "maddpg", overrides=QUICK, run_dir=tmp_path / "run")
    policy = run.load()
    assert policy.agents == ("cart_0", "cart_1")
    env = policy.make_env()
    obs, _ = env.reset(seed=0)
    env.close()
    joint = policy.predict(obs)
    assert joint.shape == (2, 1)
    actions = policy.predict({"cart_0": obs[0], "cart_1": obs[1]})
    assert set(actions) == {"cart_0", "cart_1"}
    np.testing.assert_array_equal(np.stack([actions["cart_0"], actions["cart_1"]]), joint)
    batch = policy.predict({"cart_0": np.stack([obs[0]] * 3), "cart_1": np.stack([obs[1]] * 3)})
    assert batch["cart_0"].shape == (3, 1)
    with pytest.raises(ValueError, match="missing: cart_1"):
        policy.predict({"cart_0": obs[0]})
    assert len(policy.evaluate(2).agent_rewards["cart_0"]) == 2


def test_import_rlkit_is_light_and_its_functions_are_the_api():
    import subprocess
    import sys

    code = ("import sys, rlkit; assert 'torch' not in sys.modules and 'hydra' not in sys.modules; "
            "print(rlkit.__version__); import rlkit.trainer, rlkit.exporter, rlkit.api; "
            "assert rlkit.train is rlkit.api.train and rlkit.export is rlkit.api.export "
            "and rlkit.load is rlkit.api.load")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
