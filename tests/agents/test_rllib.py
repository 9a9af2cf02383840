"""agent=rllib: RLlib's policies played in plain torch, its bad input refused in one line, PPO learning on Ray."""

import os
import sys

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a local Ray started here listens on loopback only

import json

import numpy as np
import pytest
import torch

import rlkit
from helpers import cli, compose_cfg, read_scalars
from rlkit.errors import ConfigError, RlkitError
from rlkit.factory import build_agent, build_env


def rllib_cfg(*overrides):
    cfg = compose_cfg(["agent=rllib", *overrides])
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------------------- bad input
def test_an_unknown_algorithm_names_the_closest():
    with pytest.raises(ConfigError, match=r"agent.algo=PP0 is not an RLlib algorithm .* Did you mean PPO\?"):
        rllib_cfg("agent.algo=PP0")


@pytest.mark.parametrize("algo, env, wanted", [("DQN", "robotic_arm", "Discrete"),
                                               ("SAC", "balancing_pole", "Box")])
def test_an_algorithm_that_does_not_fit_the_action_space_is_refused(algo, env, wanted):
    cfg = rllib_cfg(f"agent.algo={algo}", f"env={env}")
    with pytest.raises(ConfigError, match=rf"agent.algo={algo} takes {wanted} actions, but .* use agent.algo="):
        build_agent(cfg.agent, build_env(cfg.env), seed=0, training=False)


def test_env_copies_elsewhere_are_refused_since_rllib_steps_its_own():
    cfg = rllib_cfg("env.vectorization=async")
    with pytest.raises(ConfigError, match=r"agent=rllib steps its env copies on RLlib's env runners .* "
                                          r"leave env.vectorization=sync"):
        build_agent(cfg.agent, build_env(cfg.env), seed=0, training=True)


def test_without_rllib_installed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.rllib", None)  # import ray.rllib raises ImportError
    cfg = rllib_cfg()
    with pytest.raises(ConfigError, match=r"agent=rllib needs RLlib .*pip install 'rlkit\[rllib\]'"):
        build_agent(cfg.agent, build_env(cfg.env), seed=0, training=True)


def test_agents_with_different_action_spaces_are_refused_in_one_line():
    cfg = rllib_cfg("env=mpe", "env.name=simple_speaker_listener_v4")
    with pytest.raises(ConfigError, match="agent=rllib trains agents with the same action space, .* use agent=maddpg"):
        build_agent(cfg.agent, build_env(cfg.env), seed=0, training=False)


def test_a_multi_agent_env_gets_one_plain_torch_policy_per_agent(tmp_path):
    cfg = rllib_cfg("env=multi_cartpole", "agent.net_arch=[16]")
    env = build_env(cfg.env)
    agent = build_agent(cfg.agent, env, seed=0, training=False)
    assert list(agent.policy) == ["cart_0", "cart_1"]
    with torch.no_grad():
        for p in agent.policy.parameters():
            p.normal_()
    obs = np.random.default_rng(0).normal(size=(8, 2, 4)).astype(np.float32)
    actions = agent.act(obs)
    assert actions.shape == (8, 2, 1) and np.all(np.abs(actions) <= agent.policy["cart_0"].high.numpy())
    with torch.no_grad():
        second = agent.policy["cart_1"].mode(torch.from_numpy(obs[:, 1])).numpy()
    np.testing.assert_array_equal(actions[:, 1], second)
    agent.save(tmp_path / "w.safetensors")
    other = build_agent(cfg.agent, env, seed=1, training=False)
    other.load(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(other.act(obs), actions)


def test_an_unknown_training_key_names_the_closest():
    from rlkit.agents.rllib import rllib_algorithm_config

    cfg = rllib_cfg("+agent.training.num_epoch=3")
    with pytest.raises(ConfigError, match=r"agent.training.num_epoch is not an argument .* Did you mean num_epochs\?"):
        rllib_algorithm_config(cfg.agent, "env", 0)


def test_the_episodes_of_an_iteration_are_read_whatever_their_count():
    from rlkit.agents.rllib import finished_episodes

    one, two = (-3.5, 200, {}), (10.0, 10, {"a": 4.0})
    assert finished_episodes(None) == [] and finished_episodes(float("nan")) == [] and finished_episodes([]) == []
    assert finished_episodes(one) == [one]  # RLlib hands a series of one item as the item
    assert finished_episodes([one, two]) == [one, two]
    assert finished_episodes([list(one), list(two), list(one)]) == [one, two, one]


def test_a_continued_run_is_refused_with_where_the_weights_are():
    cfg = rllib_cfg()
    agent = build_agent(cfg.agent, build_env(cfg.env), seed=0, training=False)
    with pytest.raises(RlkitError, match="agent=rllib runs cannot be continued"):
        agent.load_training_state(agent.training_state())


def test_an_unreachable_ray_address_fails_fast_naming_it(monkeypatch):
    from rlkit.agents.rllib import start_ray

    class NoRay:
        def is_initialized(self):
            return False

        def init(self, **kwargs):
            raise AssertionError("ray.init must not be tried: it retries for minutes")

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(ConfigError, match=r"no Ray cluster answers at 127.0.0.1:9 \(RAY_ADDRESS\): .*unset RAY_"):
        start_ray(NoRay(), 0)


def test_an_env_that_cannot_be_pickled_to_the_env_runners_is_refused_in_one_line():
    import threading

    from rlkit.agents.rllib import check_picklable

    lock = threading.Lock()
    with pytest.raises(ConfigError, match=r"MyEnv cannot be sent to Ray's env runners \(TypeError: .*lock"):
        check_picklable(lambda: lock, "MyEnv")


# ---------------------------------------------------------------------------------------------- plain torch policy
CASES = [("PPO", "balancing_pole"), ("APPO", "balancing_pole"), ("IMPALA", "balancing_pole"),
         ("DQN", "balancing_pole"), ("PPO", "robotic_arm"), ("SAC", "robotic_arm")]


@pytest.mark.parametrize("algo, env", CASES)
def test_the_plain_torch_policy_acts_as_rllibs_module(algo, env):
    """RLlib's own RLModule (built here, no Ray), its weights copied out: the same deterministic actions."""
    from ray.rllib.utils.spaces.space_utils import unsquash_action

    from rlkit.agents.rllib import rllib_algorithm_config

    cfg = rllib_cfg(f"agent.algo={algo}", f"env={env}", "agent.net_arch=[32,16]")
    agent = build_agent(cfg.agent, build_env(cfg.env), seed=0, training=False)
    config = rllib_algorithm_config(cfg.agent, "env", 0)
    spec = config.get_default_rl_module_spec()
    spec.observation_space, spec.action_space = agent.observation_space, agent.action_space
    spec.model_config = config.model_config
    torch.manual_seed(0)
    module = spec.build()
    weights = {k: v.detach().numpy() for k, v in module.state_dict().items()}
    agent.policy.load_state_dict({name: torch.as_tensor(weights[rllib_name])
                                  for name, rllib_name in agent.policy.rllib_names(algo).items()})
    obs = np.random.default_rng(0).normal(size=(16, *agent.observation_space.shape)).astype(np.float32)
    with torch.no_grad():
        out = module.forward_inference({"obs": torch.as_tensor(obs)})
    if "actions" in out:  # DQN: greedy in its Q-values
        expected = out["actions"].numpy()
    else:
        dist = module.get_inference_action_dist_cls().from_logits(out["action_dist_inputs"])
        mode = torch.tanh(dist.loc) if algo == "SAC" else dist.to_deterministic().sample()
        expected = mode.numpy() if algo in ("DQN",) or agent.policy.discrete else \
            unsquash_action(mode.numpy(), agent.action_space)
    np.testing.assert_allclose(agent.act(obs), expected, rtol=1e-5, atol=1e-5)


def test_saved_weights_load_into_a_new_agent_and_act_the_same(tmp_path):
    cfg = rllib_cfg("env=robotic_arm", "agent.net_arch=[32,32]")
    env = build_env(cfg.env)
    agent = build_agent(cfg.agent, env, seed=0, training=False)
    with torch.no_grad():
        for p in agent.policy.parameters():
            p.normal_()
    agent.num_steps = 1234
    agent.save(tmp_path / "w.safetensors")
    other = build_agent(cfg.agent, env, seed=1, training=False)
    meta = other.load(tmp_path / "w.safetensors")
    assert meta["algo"] == "rllib-PPO" and other.num_steps == 1234
    obs = np.random.default_rng(0).normal(size=(8, *agent.observation_space.shape)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), other.act(obs))


def test_playing_a_policy_needs_neither_ray_nor_rllib(tmp_path):
    """Building the agent to play (training=False), loading its weights and acting import no part of Ray."""
    import subprocess

    code = ("import sys; from rlkit.config import compose; from rlkit.factory import build_agent, build_env; "
            "import numpy as np; cfg = compose(['agent=rllib', 'agent.algo=SAC', 'env=robotic_arm']); "
            "a = build_agent(cfg.agent, build_env(cfg.env), seed=0, training=False); "
            f"a.save(__import__('pathlib').Path({str(tmp_path / 'w.safetensors')!r})); "
            f"a.load(__import__('pathlib').Path({str(tmp_path / 'w.safetensors')!r})); "
            "a.act(np.zeros((2, a.observation_space.shape[0]), np.float32)); "
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------- training on Ray
@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance started by the test: 2 CPUs, loopback only, no dashboard."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, address="local")
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ppo_on_two_env_runners_learns_the_balancing_pole(tmp_path, local_ray):
    """RLlib PPO from `rlkit train`, 2 env runners, 20,000 steps: well above a random policy's ~22; then the run
    plays in plain torch through rlkit.load, rlkit eval and an exported TorchScript file, all alike."""
    run = tmp_path / "run"
    out = cli(["train", "agent=rllib", "agent.num_env_runners=2", "agent.net_arch=[64,64]",
               "agent.learning_rate=3e-4", "agent.train_batch_size=2000", "+agent.training.num_epochs=10",
               "+agent.training.minibatch_size=128", "total_steps=20000", "callbacks.eval.every_steps=5000",
               "callbacks.eval.episodes=5", "callbacks.progress_bar=false", "seed=1", f"hydra.run.dir={run}"],
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] >= 20000 and summary["episodes"] > 100
    assert summary["best_eval"]["mean_reward"] > 150, summary["best_eval"]
    assert local_ray.is_initialized()  # the run used the test's Ray and left it running
    tags = set(read_scalars(run / "tb"))
    assert {"episode/reward", "episode/length", "eval/mean_reward", "train/policy_loss"} <= tags

    policy = rlkit.load(run)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    agent = build_agent(policy.config.agent, build_env(policy.config.env), seed=5, training=False)
    agent.load(run / "checkpoints" / "best.safetensors")
    np.testing.assert_array_equal(policy.predict(obs), agent.act(obs))
    out = cli(["export", f"run={run}", "format=torchscript"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    exported = torch.jit.load(str(run / "export" / "best.pt"))(torch.from_numpy(obs)).numpy()
    np.testing.assert_array_equal(exported, agent.act(obs))
    out = cli(["eval", f"run={run}", "n_episodes=3"], cwd=tmp_path)
    assert out.returncode == 0 and "3 episodes from" in out.stdout, out.stderr


@pytest.mark.slow
def test_multi_agent_ppo_trains_one_policy_per_agent_with_per_agent_tags(tmp_path, local_ray):
    """The multi-agent cart-pole through RLlib's PettingZoo wrapper, 1 env runner, 2,000 steps: it runs, reports
    every agent's episodes, and its run plays through rlkit.load with one action per agent."""
    run = tmp_path / "run"
    out = cli(["train", "env=multi_cartpole", "agent=rllib", "agent.num_env_runners=1", "agent.net_arch=[32,32]",
               "agent.train_batch_size=1000", "total_steps=2000", "callbacks.eval.every_steps=0",
               "callbacks.eval.episodes=2", "callbacks.progress_bar=false", f"hydra.run.dir={run}"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    tags = set(read_scalars(run / "tb"))
    assert {"episode/reward", "episode/reward/cart_0", "episode/reward/cart_1", "train/cart_0/policy_loss"} <= tags
    policy = rlkit.load(run)
    obs = np.zeros((3, 2, 4), dtype=np.float32)
    assert np.asarray(policy.predict(obs)).shape == (3, 2, 1)
