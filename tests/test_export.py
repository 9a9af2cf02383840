"""rlkit export: the ONNX and TorchScript files act as predict does, for every kind of policy rlkit trains."""

import json

import numpy as np
import pytest
import torch

import rlkit
from helpers import cli

QUICK = ["total_steps=600", "callbacks.eval.every_steps=0", "callbacks.eval.episodes=1",
         "callbacks.progress_bar=false", "callbacks.tensorboard=false"]
OBSERVATIONS = 3000

KINDS = {
    "reinforce-categorical": ("balancing_pole", "reinforce", []),
    "reinforce-gaussian-squashed": ("robotic_arm", "reinforce", []),
    "reinforce-gaussian-clipped": ("robotic_arm", "reinforce", ["agent.squash=false",
                                                               "agent.state_dependent_std=true"]),
    "dqn": ("balancing_pole", "dqn", []),
    "dqn-discretised-torques": ("robotic_arm", "dqn", ["agent.action_bins=3"]),
    "ppo-clipped-box": ("robotic_arm", "ppo", ["agent.n_steps=128", "agent.batch_size=64"]),
    "sac-squashed-box": ("robotic_arm", "sac", ["agent.learning_starts=550", "agent.net_arch=[32,32]"]),
    "maddpg-per-agent": ("multi_cartpole", "maddpg", []),
    "maddpg-discrete-team-of-one": ("balancing_pole", "maddpg", ["agent.mirror_symmetry=true"]),
}


def _sample(space, n, seed):
    space.seed(seed)
    return np.stack([space.sample() for _ in range(n)]).astype(np.float32)


def _compare(expected, got, discrete):
    # One agent's actor alone sums in another order than all agents' together, and ONNX Runtime has its own kernels:
    # float32 rounding differs in the last bits.
    if discrete:  # an argmax of near-tied values may then fall the other way
        assert got.dtype.kind == "i" and got.shape == expected.shape
        assert (got == expected).mean() >= 0.999, f"{(got != expected).sum()} of {len(got)} actions differ"
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
def test_exported_policy_acts_as_predict(kind, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="format=onnx needs the export extra: pip install '.[export]'")
    env, agent, extra = KINDS[kind]
    out = cli(["train", f"env={env}", f"agent={agent}", *QUICK, *extra, f"hydra.run.dir={tmp_path / 'run'}"],
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    run = tmp_path / "run"
    policy = rlkit.load(run)
    for fmt, suffix in (("onnx", ".onnx"), ("torchscript", ".pt")):
        out = cli(["export", f"run={run}", f"format={fmt}"], cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        spec = json.loads((run / "export" / "best.json").read_text())
        assert spec["format"] == fmt and spec["agent"] == agent
        entries = spec["agents"] if policy.agents else {None: spec}
        assert list(entries) == (list(policy.agents) or [None])
        observations = {name: _sample(policy.observation_space if name is None else
                                      policy._loaded.agent.observation_space, OBSERVATIONS, seed=i)
                        for i, name in enumerate(entries)}
        expected = policy.predict(observations if policy.agents else observations[None])
        for name, entry in entries.items():
            path = run / "export" / entry["file"]
            assert path.suffix == suffix and f"wrote {path}" in out.stdout
            obs = observations[name]
            if fmt == "onnx":
                session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                got = session.run(["action"], {"obs": obs})[0]
            else:
                got = torch.jit.load(str(path))(torch.from_numpy(obs)).numpy()
            want = expected[name] if policy.agents else expected
            discrete = entry["action_space"]["type"] == "Discrete"
            assert got.shape == (OBSERVATIONS, *entry["action_space"].get("shape", []))
            _compare(np.asarray(want), got, discrete)


def test_export_says_which_policy_it_cannot_write_and_why(tmp_path):
    out = cli(["train", "env=multi_cartpole", "agent=reinforce", *QUICK, f"hydra.run.dir={tmp_path / 'run'}"],
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = cli(["export", f"run={tmp_path / 'run'}", "format=torchscript"], cwd=tmp_path)
    assert out.returncode == 2
    assert "agent=reinforce controls multi_cartpole's agents jointly" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "export").exists()


@pytest.mark.parametrize("args, message", [
    (["format=onnx"], "rlkit export needs run="),
    (["run=x"], "rlkit export needs format="),
    (["run=x", "format=tflite"], "format=tflite is not an export format; choose one of: onnx, torchscript"),
    (["run=x", "format=onnx", "colour=red"], "not 'colour=red'"),
    (["run=nowhere", "format=onnx"], "run directory nowhere does not exist"),
])
def test_export_bad_input(args, message, tmp_path):
    out = cli(["export", *args], cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert not list(tmp_path.iterdir())
