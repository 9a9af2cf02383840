"""Multi-agent runs end to end: the multi-agent cart-pole, MPE and any PettingZoo env, trained by MADDPG."""

import json

import numpy as np
import pytest

from helpers import TINY, Recorder, cli, compose_cfg, read_scalars
from rlkit.config import EvalRunConfig
from rlkit.envs.adapters import OneAgentVectorEnv, ParallelArrayEnv, ParallelVectorEnv
from rlkit.envs.multi_cartpole import MultiCartPoleEnv
from rlkit.evaluate import evaluate_run
from rlkit.trainer import train

MA = ["env=multi_cartpole", "agent=maddpg", "agent.learning_starts=300", "agent.n_envs=4",
      "+callbacks.extra.rec._target_=helpers.Recorder"]


def _train(tmp_path, overrides):
    Recorder.instances.clear()
    summary = train(compose_cfg([*TINY, *MA, *overrides]), tmp_path / "run")
    return summary, Recorder.instances[-1]


def test_every_agent_gets_its_own_episode_and_evaluation_curves(tmp_path):
    summary, rec = _train(tmp_path, ["env.num_agents=3", "env.coupling=2.0"])
    scalars = read_scalars(tmp_path / "run" / "tb")
    agents = ("cart_0", "cart_1", "cart_2")
    for tag in ("episode/reward", "episode/length", "eval/mean_reward", "train/critic_loss", "train/actor_loss",
                "train/q_mean", "train/noise", *(f"episode/reward/{a}" for a in agents),
                *(f"eval/mean_reward/{a}" for a in agents)):
        assert tag in scalars, f"{tag} missing; have {sorted(scalars)}"
    team = [e[1] for e in rec.of("episode") if e[1].agent is None]
    assert summary["episodes"] == len(team) > 0  # one episode per team episode, not one per agent
    assert len(scalars["episode/reward/cart_2"]) == len(team)
    # The team's episode ends for everyone: every cart's return is the team's length here.
    assert all(ep.reward == ep.length for ep in team)
    final = summary["final_eval"]
    assert set(final["agent_mean_rewards"]) == set(agents)
    assert final["score"] == min(final["agent_mean_rewards"].values())
    noise = [v for _, v in scalars["train/noise"]]
    assert noise[0] > noise[-1]  # the exploration noise decays


def test_a_multi_agent_run_evaluates_from_its_directory_with_all_carts_in_one_window(tmp_path):
    out = cli(["train", *TINY, *MA[:4]], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs" / "multi_cartpole" / "maddpg").iterdir()
    out = cli(["eval", f"run={run}", "render_mode=human", "n_episodes=2"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "2 episodes from" in out.stdout and "cart_0: mean reward" in out.stdout
    report = evaluate_run(EvalRunConfig(run=str(run), n_episodes=3, render_mode="rgb_array"))
    assert len(report.rewards) == 3 and set(report.agent_rewards) == {"cart_0", "cart_1"}


def test_same_seed_same_multi_agent_episodes(tmp_path):
    runs = []
    for i in range(2):
        Recorder.instances.clear()
        train(compose_cfg([*TINY, *MA, "seed=4"]), tmp_path / f"r{i}")
        runs.append([(e[1].agent, e[1].reward) for e in Recorder.instances[-1].of("episode")])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("env", [["env=mpe"], ["env=mpe", "env.name=simple_tag_v3"],
                                 ["env=pettingzoo", "env.id=rlkit/MultiCartPole-v0", "+env.kwargs.num_agents=3"],
                                 ["env=mpe", "env.continuous_actions=true"]])
def test_pettingzoo_envs_train_and_evaluate(tmp_path, env):
    cfg = compose_cfg([*TINY, "total_steps=600", "agent.learning_starts=300", "agent=maddpg", "agent.n_envs=2",
                       "callbacks.eval.every_steps=0", *env])
    summary = train(cfg, tmp_path / "run")
    assert summary["steps"] >= 600 and np.isfinite(summary["final_eval"]["mean_reward"])
    assert summary["final_eval"]["agent_mean_rewards"]


def test_single_agent_continuous_env_trains_as_ddpg(tmp_path, caplog):
    cfg = compose_cfg([*TINY, "agent=maddpg", "agent.learning_starts=300", "env=gym", "env.id=Pendulum-v1"])
    with caplog.at_level("INFO"):
        summary = train(cfg, tmp_path / "run")
    assert "team of one agent (that is DDPG)" in caplog.text
    assert "agent_mean_rewards" not in summary["final_eval"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["agent"] == "maddpg"


def test_agents_with_different_spaces_train_and_evaluate_from_the_run(tmp_path):
    # simple_speaker_listener: speaker_0 Discrete(3) sees 3 numbers, listener_0 Discrete(5) sees 11.
    out = cli(["train", *TINY[1:], "total_steps=600", "agent.learning_starts=300", "agent=maddpg", "agent.n_envs=2",
               "env=mpe", "env.name=simple_speaker_listener_v4", "env.batched=false"],
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs" / "simple_speaker_listener_v4" / "maddpg").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] >= 600 and np.isfinite(summary["final_eval"]["mean_reward"])
    assert set(summary["final_eval"]["agent_mean_rewards"]) == {"speaker_0", "listener_0"}
    report = evaluate_run(EvalRunConfig(run=str(run), n_episodes=2))  # the saved actors, loaded back
    assert len(report.rewards) == 2 and set(report.agent_rewards) == {"speaker_0", "listener_0"}


@pytest.mark.parametrize("agent", ["reinforce", "ppo"])
def test_single_agent_learners_refuse_agents_with_different_action_spaces_and_name_maddpg(tmp_path, agent):
    out = cli(["train", *TINY, f"agent={agent}", "env=mpe", "env.name=simple_speaker_listener_v4",
               "env.batched=false"], cwd=tmp_path)
    assert out.returncode == 2
    assert f"agent={agent} is a single-agent learner" in out.stderr
    assert "speaker_0: Discrete(3), listener_0: Discrete(5)" in out.stderr and "use agent=maddpg" in out.stderr
    assert "multi-agent learners" not in out.stderr and not (tmp_path / "runs").exists()


def test_shorter_observations_are_zero_padded():
    from mpe2 import simple_tag_v3

    raw = simple_tag_v3.parallel_env()
    env = ParallelArrayEnv(raw)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 16) and env.possible_agents[-1] == "agent_0"
    expected, _ = simple_tag_v3.parallel_env().reset(seed=0)
    np.testing.assert_array_equal(obs[0], expected["adversary_0"])
    np.testing.assert_array_equal(obs[-1], np.concatenate([expected["agent_0"], [0.0, 0.0]]))


def test_parallel_array_env_matches_the_parallel_env():
    a, b = MultiCartPoleEnv(num_agents=2), ParallelArrayEnv(MultiCartPoleEnv(num_agents=2))
    obs_a, _ = a.reset(seed=3)
    obs_b, _ = b.reset(seed=3)
    np.testing.assert_array_equal(obs_b, np.stack([obs_a["cart_0"], obs_a["cart_1"]]))
    action = np.array([[0.5], [-0.25]], dtype=np.float32)
    out_a = a.step({"cart_0": action[0], "cart_1": action[1]})
    out_b = b.step(action)
    np.testing.assert_array_equal(out_b[0], np.stack([out_a[0]["cart_0"], out_a[0]["cart_1"]]))
    assert out_b[1].tolist() == [1.0, 1.0] and out_b[2] is False and out_b[3] is False
    assert b.action_space.shape == (2, 1) and b.observation_space.shape == (2, 4)
    with pytest.raises(ValueError, match="one action per agent"):
        b.step(np.zeros((3, 1), dtype=np.float32))


def test_parallel_vector_env_autoresets_like_gymnasium():
    from mpe2 import simple_spread_v3

    envs = ParallelVectorEnv(lambda: simple_spread_v3.parallel_env(max_cycles=3), 2)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 3, 18)
    single = ParallelArrayEnv(simple_spread_v3.parallel_env(max_cycles=3))
    np.testing.assert_array_equal(obs[1], single.reset(seed=1)[0])
    actions = np.zeros((2, 3), dtype=np.int64)
    for _ in range(3):
        _, rewards, terminated, truncated, _ = envs.step(actions)
    assert truncated.all() and not terminated.any()
    _, rewards, terminated, truncated, _ = envs.step(actions)  # the autoreset step
    assert (rewards == 0).all() and not (terminated | truncated).any()


def test_one_agent_vector_env_adds_and_removes_the_agent_axis():
    import gymnasium as gym

    envs = OneAgentVectorEnv(gym.make_vec("Pendulum-v1", num_envs=3))
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 1, 3) and envs.possible_agents == ["agent_0"]
    obs, rewards, terminated, truncated, _ = envs.step(np.zeros((3, 1, 1), dtype=np.float32))
    assert obs.shape == (3, 1, 3) and rewards.shape == (3, 1) and terminated.shape == (3,)


def test_joint_control_concatenates_observations_and_splits_joint_actions():
    from rlkit.envs.adapters import JointControl, JointControlVectorEnv
    from rlkit.envs.multi_cartpole import MultiCartPoleVectorEnv

    env = JointControl(ParallelArrayEnv(MultiCartPoleEnv(num_agents=3, continuous=False)))
    assert env.action_space.n == 8 and env.observation_space.shape == (12,)
    assert env.joint.split(np.array([0, 1, 6])).tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 1]]
    obs, _ = env.reset(seed=2)
    raw = ParallelArrayEnv(MultiCartPoleEnv(num_agents=3, continuous=False))
    np.testing.assert_array_equal(obs, raw.reset(seed=2)[0].reshape(-1))
    obs, reward, *_ = env.step(5)
    np.testing.assert_array_equal(obs, raw.step(np.array([1, 0, 1]))[0].reshape(-1))
    assert reward == 1.0
    with pytest.raises(ValueError, match="outside the joint action space"):
        env.step(8)
    # The batched view splits the same way, copy by copy.
    vec = JointControlVectorEnv(MultiCartPoleVectorEnv(num_envs=2, num_agents=2))
    assert vec.single_action_space.shape == (2,) and vec.single_observation_space.shape == (8,)
    obs, _ = vec.reset(seed=0)
    obs, rewards, *_ = vec.step(np.array([[0.5, -0.5], [0.0, 1.0]], dtype=np.float32))
    assert obs.shape == (2, 8) and rewards.tolist() == [1.0, 1.0]
