import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import compose_cfg
from rlkit.errors import RunDirError
from rlkit.factory import build_agent, build_env
from rlkit.files import load_checkpoint, optimizer_from_tensors, optimizer_to_tensors, save_checkpoint


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.arange(6.0).reshape(2, 3)}, {"step": 7, "nested": {"a": [1, 2]}})
    tensors, meta = load_checkpoint(path)
    assert torch.equal(tensors["w"], torch.arange(6.0).reshape(2, 3))
    assert meta == {"step": 7, "nested": {"a": [1, 2]}}
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temporary files left


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {"w": torch.ones(2)}, {"step": 1})
    import rlkit.files as ck

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": torch.zeros(2)}, {"step": 2})
    tensors, meta = load_checkpoint(path)
    assert meta["step"] == 1 and torch.equal(tensors["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_optimizer_state_round_trip():
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.ones(4, 3)).sum().backward()
    opt.step()
    tensors, groups = optimizer_to_tensors(opt.state_dict(), "opt")
    fresh = torch.optim.Adam(net.parameters(), lr=0.5)
    fresh.load_state_dict(optimizer_from_tensors(tensors, groups, "opt"))
    assert fresh.param_groups[0]["lr"] == 0.01
    for a, b in zip(opt.state.values(), fresh.state.values(), strict=True):
        for key in a:
            assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key]))


def test_missing_and_corrupt_files_get_clear_errors(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(RunDirError, match="corrupt"):
        load_checkpoint(bad)
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, {"w": torch.ones(1000)}, {"step": 1})
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(RunDirError, match="corrupt"):
        load_checkpoint(truncated)


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_disguised_as_a_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    _Exploit.marker = marker
    evil = tmp_path / "best.safetensors"
    evil.write_bytes(pickle.dumps(_Exploit()))
    evil_pt = tmp_path / "torch_style.safetensors"
    torch.save({"x": _Exploit()}, evil_pt)  # what torch.save would hide code in
    for path in (evil, evil_pt):
        with pytest.raises(RunDirError):
            load_checkpoint(path)
    assert not marker.exists()


def _dqn(seed=0):
    cfg = compose_cfg(["agent.learning_starts=50", "agent.net_arch=[16,16]"])
    env = build_env(cfg.env)
    return cfg, env, build_agent(cfg.agent, env, seed=seed)


def test_sb3_agent_round_trip_gives_identical_actions(tmp_path):
    from rlkit.callbacks import CallbackList

    cfg, env, agent = _dqn(seed=0)
    agent.learn(300, CallbackList([]))
    path = tmp_path / "ckpt.safetensors"
    agent.save(path, {"step": 300})

    _, _, other = _dqn(seed=123)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    before = other.model.policy.state_dict()
    assert any(not torch.equal(a, b) for a, b in zip(agent.model.policy.state_dict().values(),
                                                     before.values(), strict=True))
    meta = other.load(path)
    assert meta["step"] == 300 and meta["algo"] == "DQN"
    np.testing.assert_array_equal(agent.act(obs), other.act(obs))
    for a, b in zip(agent.model.policy.state_dict().values(), other.model.policy.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_sb3_agent_refuses_a_checkpoint_of_another_network(tmp_path):
    _, _, agent = _dqn()
    path = tmp_path / "ckpt.safetensors"
    agent.save(path)
    cfg = compose_cfg(["agent.net_arch=[8]"])
    env = build_env(cfg.env)
    small = build_agent(cfg.agent, env, seed=0, training=False)
    with pytest.raises(RunDirError, match="does not fit"):
        small.load(path)
    save_checkpoint(tmp_path / "other.safetensors", {"w": torch.ones(1)}, {"algo": "PPO"})
    with pytest.raises(RunDirError, match="written by 'PPO'"):
        small.load(tmp_path / "other.safetensors")


def test_native_checkpoints_keep_their_tensor_names_and_format_1_still_loads(tmp_path):
    import json

    from rlkit.callbacks import CallbackList

    cfg = compose_cfg(["agent=reinforce", "agent.n_envs=2", "agent.episodes_per_update=2"])
    agent = build_agent(cfg.agent, build_env(cfg.env), seed=0)
    agent.learn(100, CallbackList([]))
    agent.save(tmp_path / "c.safetensors", {"step": 3})
    tensors, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert {k.split(".")[0] for k in tensors} == {"policy", "policy_opt", "value", "value_opt"}
    # Format 1 (rlkit before the base class saved every agent) kept the param groups at the top level.
    old = {k: v for k, v in meta.items() if k != "optimizers"} | meta["optimizers"] | {"format": 1}
    save_checkpoint(tmp_path / "old.safetensors", tensors, old)
    other = build_agent(cfg.agent, build_env(cfg.env), seed=1, training=False)
    assert other.load(tmp_path / "old.safetensors")["step"] == 3
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), other.act(obs))
    assert json.dumps(other.policy_opt.state_dict()["param_groups"]) == json.dumps(meta["optimizers"]["policy_opt"])


def test_no_pickle_loading_in_the_code_base():
    root = Path(__file__).resolve().parent.parent
    offenders = []
    for sub in ("rlkit", "envs", "agents", "scripts"):
        for py in (root / sub).rglob("*.py"):
            text = py.read_text()
            for needle in ("pickle.load", "torch.load(", "allow_pickle=True", ".zip"):
                if needle in text and not (needle == "torch.load(" and "weights_only=True" in text):
                    offenders.append(f"{py.relative_to(root)}: {needle}")
    assert not offenders, offenders
