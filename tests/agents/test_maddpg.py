"""MADDPG: its parts (Gumbel-softmax, soft updates, critic layout, replay buffer, stacked networks) and the agent."""

import dataclasses

import numpy as np
import pytest
import torch

from rlkit.agents.config import MADDPGConfig
from rlkit.agents.maddpg import (
    MADDPG,
    ReplayBuffer,
    actor_update_actions,
    critic_input,
    gumbel_softmax,
    soft_update,
)
from rlkit.agents.networks import StackedMLP
from rlkit.callbacks import Callback, CallbackList
from rlkit.envs.adapters import OneAgentVectorEnv
from rlkit.envs.multi_cartpole import MultiCartPoleVectorEnv

TINY = dict(n_envs=4, buffer_size=5000, learning_starts=200, batch_size=32, net_arch=[16, 16])


def test_gumbel_softmax_is_one_hot_forward_and_softmax_backward():
    torch.manual_seed(0)
    logits = torch.tensor([[1.0, 2.0, 0.5]], requires_grad=True)
    sample = gumbel_softmax(logits)
    np.testing.assert_allclose(sorted(sample.detach().reshape(-1).tolist()), [0.0, 0.0, 1.0], atol=1e-6)
    weights = torch.tensor([[1.0, 2.0, 3.0]])
    (sample * weights).sum().backward()
    # The gradient is the relaxed sample's: non-zero for every logit, not just the chosen one.
    assert logits.grad is not None and (logits.grad != 0).all()
    # Over many draws the one-hot samples follow softmax(logits).
    draws = gumbel_softmax(logits.detach().expand(20000, 3)).mean(0)
    np.testing.assert_allclose(draws.numpy(), torch.softmax(logits.detach(), -1)[0].numpy(), atol=0.02)


def test_soft_update_moves_targets_by_tau():
    online, target = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    before = target.weight.detach().clone()
    soft_update(list(target.parameters()), list(online.parameters()), tau=0.25)
    torch.testing.assert_close(target.weight, 0.25 * online.weight + 0.75 * before)


def test_critic_input_lays_out_every_observation_then_every_action():
    obs = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # one sample, agents 0 and 1, obs_dim 2
    actions = torch.tensor([[[10.0], [20.0]]])  # act_dim 1
    assert critic_input(obs, actions).tolist() == [[1.0, 2.0, 3.0, 4.0, 10.0, 20.0]]


def test_replay_buffer_wraps_around_and_samples_what_was_stored():
    buf = ReplayBuffer(4, agents=2, obs_dim=1, act_dim=1, generator=torch.Generator().manual_seed(0))
    for k in range(3):
        buf.add(np.full((2, 2, 1), k), np.zeros((2, 2, 1)), np.full((2, 2), k), np.zeros((2, 2, 1)),
                np.array([False, k == 2]), 0.99)
    assert buf.size == 4 and buf.pos == 2
    assert sorted(buf.obs[:, 0, 0].tolist()) == [1.0, 1.0, 2.0, 2.0]  # the oldest were overwritten
    obs, _, rewards, _, _, discounts = buf.sample(64)
    assert torch.allclose(discounts, torch.tensor(0.99))
    assert set(obs[:, 0, 0].tolist()) <= {1.0, 2.0} and torch.equal(obs[:, 0, 0], rewards[:, 0])


def test_actor_update_row_i_takes_agent_i_action_from_its_policy_and_the_others_from_the_buffer():
    own = torch.tensor([[[1.0], [2.0], [3.0]]])  # one sample, three agents: the policies' actions
    taken = torch.tensor([[[-1.0], [-2.0], [-3.0]]])  # the buffer's actions
    rows = actor_update_actions(own, taken)
    assert rows.shape == (3, 1, 3, 1)
    assert rows[:, 0, :, 0].tolist() == [[1.0, -2.0, -3.0], [-1.0, 2.0, -3.0], [-1.0, -2.0, 3.0]]


def test_stacked_mlp_applies_network_k_to_slice_k_only():
    torch.manual_seed(0)
    net = StackedMLP(3, [5, 8, 2], "tanh")
    x = torch.randn(3, 7, 5)
    out = net(x)
    for k in range(3):
        expected = torch.tanh(x[k] @ net.weights[0][k] + net.biases[0][k]) @ net.weights[1][k] + net.biases[1][k]
        torch.testing.assert_close(out[k], expected)
    torch.testing.assert_close(net(x[:2], first=2), out[:2])
    # Each slice starts orthogonal, like a separately initialised layer.
    w = net.weights[0][1]
    torch.testing.assert_close(w @ w.T, torch.eye(5) * (w @ w.T).diagonal().mean(), atol=1e-5, rtol=0)


def _agent(seed=0, num_agents=2, **kw):
    cfg = MADDPGConfig(**{**TINY, **kw})
    return MADDPG(cfg, lambda n: MultiCartPoleVectorEnv(num_envs=n, num_agents=num_agents), seed=seed)


class _Returns(Callback):
    def __init__(self):
        super().__init__()
        self.rewards = []
        self.updates = []

    def _on_episode_end(self, episode):
        self.rewards.append((episode.agent, episode.reward))

    def _on_update(self, step, metrics):
        self.updates.append(metrics)


def test_learns_without_error_and_round_trips_through_a_checkpoint(tmp_path):
    agent = _agent()
    log = _Returns()
    agent.learn(600, CallbackList([log]))
    assert agent.num_updates > 0
    expected = {"critic_loss", "actor_loss", "q_mean", "critic_grad_norm", "actor_grad_norm", "noise"}
    assert expected <= set(log.updates[-1])
    # Every finished episode is reported for each agent and for the team.
    agents = [a for a, _ in log.rewards]
    assert agents.count("cart_0") == agents.count("cart_1") == agents.count(None) > 0
    agent.save(tmp_path / "m.safetensors")
    other = _agent(seed=5)
    other.load(tmp_path / "m.safetensors")
    obs = np.random.default_rng(0).normal(size=(7, 2, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), other.act(obs))
    assert agent.act(obs).shape == (7, 2, 1) and (np.abs(agent.act(obs)) <= 1).all()
    # Target networks and optimizer state come back too.
    for mine, theirs in zip(agent.target_critic.parameters(), other.target_critic.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs)
    assert other.critic_opt.state_dict()["state"][0]["step"] == agent.critic_opt.state_dict()["state"][0]["step"]


def test_same_seed_gives_the_same_episodes_and_weights():
    runs = []
    for _ in range(2):
        torch.manual_seed(3)  # the trainer seeds torch's global generator, which initialises the networks
        agent, log = _agent(seed=3), _Returns()
        agent.learn(800, CallbackList([log]))
        runs.append((log.rewards, [p.detach().clone() for p in agent.actor.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_agents_own_actor_gets_gradient_only_from_its_own_critic():
    agent = _agent(num_agents=3)
    agent.learn(300, CallbackList([]))
    obs, actions, *_ = agent.buffer.sample(16)
    own = torch.tanh(agent._policy_out(agent.actor, obs))
    x = torch.cat([obs.flatten(1).expand(3, 16, -1), actor_update_actions(own, actions).flatten(2)], dim=2)
    q0 = agent._q(agent.critic, x, 1)[0, 0].sum()  # agent 0's critic, agent 0's row
    grads = torch.autograd.grad(q0, agent.actor.weights[0])[0]
    assert grads[0].abs().sum() > 0 and grads[1:].abs().sum() == 0


@pytest.mark.parametrize("options", [dict(share_parameters=True), dict(twin_critics=True, target_noise=0.2,
                                                                        policy_delay=2)])
def test_variants_learn(options):
    agent = _agent(**options)
    assert agent.actor.count == (1 if options.get("share_parameters") else 2)
    assert agent.critic.count == (4 if options.get("twin_critics") else 1)
    agent.learn(600, CallbackList([]))
    if options.get("policy_delay") == 2:
        assert agent.actor_opt.state_dict()["state"][0]["step"] == agent.num_updates // 2


def test_learning_waits_for_the_first_n_step_transition_when_copies_pass_learning_starts_at_once():
    agent = _agent(n_envs=64, learning_starts=100, n_step=3)  # 128 steps after 2 vector steps, nothing stored yet
    agent.learn(640, CallbackList([]))
    assert agent.num_updates == 10 - 2  # every vector step from the third on


def test_discrete_actions_use_gumbel_softmax_and_act_with_integers():
    cfg = MADDPGConfig(**TINY)
    agent = MADDPG(cfg, lambda n: MultiCartPoleVectorEnv(num_envs=n, num_agents=2, continuous=False), seed=0)
    agent.learn(400, CallbackList([]))
    actions = agent.act(np.zeros((5, 2, 4), dtype=np.float32))
    assert actions.shape == (5, 2) and actions.dtype.kind == "i" and set(np.unique(actions)) <= {0, 1}


def test_a_single_agent_env_is_a_team_of_one():
    import gymnasium as gym

    cfg = MADDPGConfig(**TINY)
    agent = MADDPG(cfg, lambda n: OneAgentVectorEnv(gym.make_vec("Pendulum-v1", num_envs=n)), seed=0,
                   single_agent=True)
    agent.learn(400, CallbackList([]))
    actions = agent.act(np.zeros((3, 3), dtype=np.float32), deterministic=False)
    assert actions.shape == (3, 1) and (np.abs(actions) <= 2.0).all()


def test_config_defaults_match_the_yaml_and_bad_values_are_refused():
    from rlkit.errors import ConfigError

    for key, bad in (("tau", 0.0), ("policy_delay", 0), ("noise_fraction", 1.5), ("net_arch", [])):
        with pytest.raises(ConfigError, match=key if key != "net_arch" else "net_arch"):
            dataclasses.replace(MADDPGConfig(), **{key: bad}).validate()


def test_n_step_collector_sums_discounted_rewards_and_flushes_at_episode_ends():
    from rlkit.agents.maddpg import NStepCollector

    buf = ReplayBuffer(100, agents=1, obs_dim=1, act_dim=1, generator=torch.Generator().manual_seed(0))
    col = NStepCollector(buf, n=3, gamma=0.5, copies=1)
    valid = np.array([True])

    def step(t, reward, terminated=False, truncated=False):
        col.add(valid, np.full((1, 1, 1), t), np.full((1, 1, 1), 10 * t), np.full((1, 1), reward),
                np.full((1, 1, 1), t + 1), np.array([terminated]), np.array([terminated or truncated]))

    step(0, 1.0)
    step(1, 2.0)
    assert buf.size == 0  # fewer than 3 steps so far
    step(2, 4.0)  # o_0 -> o_3: 1 + 0.5 * 2 + 0.25 * 4
    step(3, 8.0, terminated=True)  # o_1 -> o_4 full, then o_2 and o_3 flushed, all ending terminated
    got = sorted((float(buf.obs[i, 0, 0]), float(buf.rewards[i, 0]), float(buf.next_obs[i, 0, 0]),
                  float(buf.terminated[i]), float(buf.discounts[i])) for i in range(buf.size))
    assert got == [(0.0, 3.0, 3.0, 0.0, 0.125), (1.0, 2.0 + 2.0 + 2.0, 4.0, 1.0, 0.125),
                   (2.0, 4.0 + 4.0, 4.0, 1.0, 0.25), (3.0, 8.0, 4.0, 1.0, 0.5)]
    assert float(buf.actions[0, 0, 0]) == 0.0 and sorted(buf.actions[:4, 0, 0].tolist()) == [0, 10, 20, 30]


def test_ego_critic_rows_start_from_the_judged_agent():
    agent = _agent(num_agents=3, ego_critic=True, share_parameters=True)
    obs = torch.arange(3.0).view(1, 3, 1).expand(1, 3, 4)  # agent j observes j everywhere
    taken = torch.tensor([[[10.0], [11.0], [12.0]]])
    own = torch.tensor([[[20.0], [21.0], [22.0]]])
    rows = agent._rows(obs, taken)
    assert rows.shape == (3, 1, 3 * 4 + 3)
    assert rows[1, 0, ::4][:3].tolist() == [1.0, 2.0, 0.0] and rows[1, 0, -3:].tolist() == [11.0, 12.0, 10.0]
    mixed = agent._rows(obs, taken, own)
    assert [mixed[i, 0, -3:].tolist() for i in range(3)] == [[20.0, 11.0, 12.0], [21.0, 12.0, 10.0],
                                                             [22.0, 10.0, 11.0]]


def test_mirror_symmetry_makes_the_actor_odd():
    agent = _agent(mirror_symmetry=True)
    agent.learn(400, CallbackList([]))
    obs = np.random.default_rng(1).normal(size=(5, 2, 4)).astype(np.float32)
    np.testing.assert_allclose(agent.act(-obs), -agent.act(obs), atol=1e-6)


def test_the_presets_compose_with_their_documented_values():
    from helpers import compose_cfg

    cfg = compose_cfg(["experiment=multi_cartpole_coupled_maddpg"])
    assert cfg.env.coupling == 2.0 and cfg.env.num_agents == 2 and cfg.agent.share_parameters
    assert compose_cfg(["experiment=multi_cartpole_maddpg"]).env.coupling == 0.0
    assert compose_cfg(["experiment=mpe_maddpg"]).env.name == "simple_spread_v3"


def test_stacked_mlp_layer_norm_normalises_every_hidden_layer():
    torch.manual_seed(0)
    net = StackedMLP(2, [3, 6, 1], "relu", layer_norm=True)
    x = torch.randn(2, 5, 3)
    for k in range(2):
        hidden = x[k] @ net.weights[0][k] + net.biases[0][k]
        hidden = (hidden - hidden.mean(-1, keepdim=True)) / torch.sqrt(hidden.var(-1, unbiased=False,
                                                                                   keepdim=True) + 1e-5)
        torch.testing.assert_close(net(x)[k], torch.relu(hidden) @ net.weights[1][k] + net.biases[1][k])
    # Scaling the input (nearly) does not change a normalised network's output.
    torch.testing.assert_close(net(100.0 * x), net(x), atol=1e-3, rtol=1e-3)


def test_critic_layer_norm_trains():
    agent = _agent(critic_layer_norm=True)
    assert agent.critic.layer_norm and not agent.actor.layer_norm
    agent.learn(600, CallbackList([]))
    assert agent.num_updates > 0


def test_eval_target_actor_acts_greedily_with_the_target_actor_and_explores_with_the_actor():
    agent = _agent(eval_target_actor=True)
    agent.learn(600, CallbackList([]))
    obs = np.random.default_rng(1).normal(size=(9, 2, 4)).astype(np.float32)
    with torch.no_grad():
        target = torch.tanh(agent._policy_out(agent.target_actor, torch.as_tensor(obs))).numpy()
        online = torch.tanh(agent._policy_out(agent.actor, torch.as_tensor(obs))).numpy()
    assert not np.allclose(target, online)  # the average lags the latest weights
    np.testing.assert_allclose(agent.act(obs, deterministic=True), agent._to_env(torch.as_tensor(target)))
    # Exploring (noise 0 here) still follows the latest weights.
    agent.cfg = dataclasses.replace(agent.cfg, noise_end=0.0, noise_start=0.0)
    np.testing.assert_allclose(agent.act(obs, deterministic=False), agent._to_env(torch.as_tensor(online)))
