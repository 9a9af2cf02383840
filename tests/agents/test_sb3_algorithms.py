"""SB3's other algorithms by config: they train through rlkit's trainer and round-trip through checkpoints."""

import numpy as np
import pytest
import torch

from helpers import compose_cfg
from rlkit.errors import ConfigError
from rlkit.factory import build_agent, build_env
from rlkit.trainer import train

CASES = {
    "ppo": ["env=balancing_pole", "agent.n_steps=64", "agent.batch_size=32"],
    "a2c": ["env=balancing_pole"],
    "sac": ["env=robotic_arm", "agent.net_arch=[32,32]"],
    "td3": ["env=robotic_arm", "agent.net_arch=[32,32]"],
}
QUICK = ["total_steps=300", "callbacks.eval.every_steps=0", "callbacks.eval.episodes=1", "callbacks.progress_bar=false",
         "env.max_episode_steps=50"]


@pytest.mark.parametrize("algo", sorted(CASES))
def test_trains_and_round_trips_through_a_checkpoint(tmp_path, algo):
    cfg = compose_cfg([f"agent={algo}", *CASES[algo], *QUICK])
    summary = train(cfg, tmp_path / "run")
    assert summary["agent"] == algo and summary["steps"] >= 300 and summary["final_eval"] is not None
    env = build_env(cfg.env)
    agent = build_agent(cfg.agent, env, seed=1, training=False)
    agent.load(tmp_path / "run" / "checkpoints" / "last.safetensors")
    trained = build_agent(cfg.agent, env, seed=2, training=False)
    trained.load(tmp_path / "run" / "checkpoints" / "last.safetensors")
    obs = np.random.default_rng(0).normal(size=(5, *agent.observation_space.shape)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), trained.act(obs))
    if algo == "sac":  # the learned entropy coefficient and its optimizer come back too
        assert torch.equal(agent.model.log_ent_coef, trained.model.log_ent_coef)
        assert agent.model.ent_coef_optimizer.state_dict()["state"]


@pytest.mark.parametrize("algo", ["dqn", *sorted(CASES)])
def test_every_sb3_attribute_that_exact_resume_reads_exists(algo):
    # None of them is SB3's public API: a release that renames one must fail here, not resume inexactly.
    import stable_baselines3
    from stable_baselines3.common.logger import Logger

    from rlkit.agents.sb3 import private_attributes

    off_policy = ["agent.buffer_size=100"] if algo in ("dqn", "sac", "td3") else []
    cfg = compose_cfg([f"agent={algo}", *CASES.get(algo, []), *off_policy])
    model = build_agent(cfg.agent, build_env(cfg.env), seed=0).model
    model.set_logger(Logger(folder=None, output_formats=[]))
    for path in private_attributes(model):
        owner = model
        for part in path.split("."):
            assert hasattr(owner, part), (
                f"stable-baselines3 {stable_baselines3.__version__}: {type(model).__name__} has no attribute {path!r}, "
                "which rlkit reads and writes to resume exactly: update SB3Agent.training_state and learn "
                "in rlkit.agents.sb3")
            owner = getattr(owner, part)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_continuous_only_algorithms_refuse_discrete_actions(tmp_path, algo):
    cfg = compose_cfg([f"agent={algo}", "env=balancing_pole", *QUICK])
    with pytest.raises(ConfigError, match=f"agent={algo} .* needs a Box action space"):
        train(cfg, tmp_path / "run")
