"""MADDPG with agents whose observation and action spaces differ: a Discrete agent and a Box agent in one env."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from rlkit.agents.config import MADDPGConfig
from rlkit.agents.maddpg import MADDPG
from rlkit.callbacks import CallbackList
from rlkit.envs.adapters import ParallelArrayEnv, ParallelVectorEnv
from rlkit.errors import ConfigError

SIGNAL = spaces.Discrete(2)
TINY = dict(n_envs=2, learning_starts=100, batch_size=32, buffer_size=2000, net_arch=[16, 16])


class SignalAndMove(ParallelEnv):
    """``signal_0`` (Discrete(2), sees 3 numbers) names a side; ``mover_0`` (Box(3) in [-2, 2], sees 5) should push
    its first coordinate to that side. Both get the mover's progress as reward; 8 steps an episode."""

    metadata = {"name": "signal_and_move"}

    def __init__(self, render_mode=None, signal=SIGNAL):
        self.possible_agents = ["signal_0", "mover_0"]
        self.observation_spaces = {"signal_0": spaces.Box(-10, 10, (3,)), "mover_0": spaces.Box(-10, 10, (5,))}
        self.action_spaces = {"signal_0": signal, "mover_0": spaces.Box(-2.0, 2.0, (3,))}
        self.received = []  # every action dict step() got

    def observation_space(self, agent):
        return self.observation_spaces[agent]

    def action_space(self, agent):
        return self.action_spaces[agent]

    def _obs(self):
        side = np.eye(2, dtype=np.float32)[self.side]
        return {"signal_0": np.array([*side, self.x], dtype=np.float32),
                "mover_0": np.array([self.x, self.t / 8, *self.heard, 1.0], dtype=np.float32)}

    def reset(self, seed=None, options=None):
        self.rng = np.random.default_rng(seed) if seed is not None or not hasattr(self, "rng") else self.rng
        self.side, self.x, self.t, self.heard = int(self.rng.integers(2)), 0.0, 0, (0.0, 0.0)
        self.agents = self.possible_agents[:]
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        signal = self.action_spaces["signal_0"]
        assert signal.contains(actions["signal_0"] if isinstance(signal, spaces.Discrete) else
                               actions["signal_0"].astype(np.float32)), actions
        assert self.action_spaces["mover_0"].contains(actions["mover_0"].astype(np.float32)), actions
        self.received.append(actions)
        said = int(actions["signal_0"]) if isinstance(signal, spaces.Discrete) else int(actions["signal_0"][0] > 0)
        self.heard = tuple(np.eye(2)[said])
        before = abs(self.x - (1.0 if self.side else -1.0))
        self.x = float(np.clip(self.x + 0.2 * actions["mover_0"][0], -3, 3))
        self.t += 1
        reward = before - abs(self.x - (1.0 if self.side else -1.0))
        done = self.t >= 8
        if done:
            self.agents = []
        return (self._obs(), {a: reward for a in self.possible_agents}, {a: False for a in self.possible_agents},
                {a: done for a in self.possible_agents}, {a: {} for a in self.possible_agents})


def _agent(seed=0, signal=SIGNAL, **kw):
    return MADDPG(MADDPGConfig(**{**TINY, **kw}), lambda n: ParallelVectorEnv(lambda: SignalAndMove(signal=signal), n),
                  seed=seed)


def test_different_action_spaces_act_through_one_padded_row_per_agent():
    raw = SignalAndMove()
    env = ParallelArrayEnv(raw)
    assert env.padded and env.action_space.shape == (2, 3) and env.observation_space.shape == (2, 5)
    np.testing.assert_array_equal(env.action_space.high, [[1, 0, 0], [2, 2, 2]])
    env.reset(seed=0)
    env.step(np.array([[1, 0, 0], [0.5, -1.0, 2.0]], dtype=np.float32))
    got = raw.received[-1]
    assert got["signal_0"] == 1 and isinstance(got["signal_0"], np.integer)
    np.testing.assert_array_equal(got["mover_0"], [0.5, -1.0, 2.0])


def test_a_discrete_and_a_box_agent_learn_each_with_its_own_actor(tmp_path):
    agent = _agent()
    assert agent.mixed and agent.act_dim == 3 and agent.actor.count == 2
    agent.learn(400, CallbackList([]))
    assert agent.num_updates > 0 and agent.buffer.actions.shape[1:] == (2, 3)
    stored = agent.buffer.actions[:agent.buffer.size]
    # The signaller's rows are one-hots over its 2 actions (padding never chosen), the mover's in [-1, 1].
    torch.testing.assert_close(stored[:, 0, :2].sum(-1), torch.ones(len(stored)))
    assert ((stored[:, 0, :2] > 0.5).sum(-1) == 1).all() and (stored[:, 0, 2] == 0).all()
    assert (stored[:, 1].abs() <= 1).all() and stored[:, 1].std() > 0
    obs = np.random.default_rng(0).normal(size=(64, 2, 5)).astype(np.float32)
    for deterministic in (True, False):
        actions = agent.act(obs, deterministic=deterministic)
        assert actions.shape == (64, 2, 3)
        assert set(np.unique(actions[:, 0, 0])) <= {0.0, 1.0} and (actions[:, 0, 1:] == 0).all()
        assert (np.abs(actions[:, 1]) <= 2).all()
    # Save and load: same actions from another seed's agent.
    agent.save(tmp_path / "m.safetensors")
    other = _agent(seed=7)
    other.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(agent.act(obs), other.act(obs))


def test_box_agents_of_different_sizes_learn_with_zero_padding():
    agent = _agent(signal=spaces.Box(-1.0, 1.0, (1,)), target_noise=0.2)
    assert agent.mixed and agent.act_dim == 3
    agent.learn(300, CallbackList([]))
    stored = agent.buffer.actions[:agent.buffer.size]
    assert (stored[:, 0, 1:] == 0).all() and stored[:, 0, 0].std() > 0 and stored[:, 1].std() > 0
    actions = agent.act(np.zeros((4, 2, 5), dtype=np.float32), deterministic=False)
    assert actions.shape == (4, 2, 3) and (actions[:, 0, 1:] == 0).all() and (np.abs(actions[:, 0, 0]) <= 1).all()


def test_each_agents_actor_gets_gradient_only_from_its_own_critic():
    agent = _agent()
    agent.learn(200, CallbackList([]))
    obs, actions, *_ = agent.buffer.sample(16)
    own = agent._mixed_actions(agent._policy_out(agent.actor, obs), sample=True)
    q = agent._q(agent.critic, agent._rows(obs, actions, own), 1)[0]  # (agents, batch)
    for i in range(2):
        grads = torch.autograd.grad(q[i].sum(), agent.actor.weights[0], retain_graph=True)[0]
        assert grads[i].abs().sum() > 0 and grads[1 - i].abs().sum() == 0


def test_shared_parameters_are_refused_for_agents_whose_spaces_differ():
    with pytest.raises(ConfigError, match=r"share_parameters=true needs agents with the same action space.*"
                                          r"signal_0: Discrete\(2\), mover_0: Box.*share_parameters=false"):
        _agent(share_parameters=True)


def test_relaxed_gumbel_samples_reach_the_buffer_and_critics_while_the_env_gets_their_argmax():
    agent = _agent(gumbel_hard=False)
    agent.learn(400, CallbackList([]))
    stored = agent.buffer.actions[agent.cfg.learning_starts:agent.buffer.size]  # after the uniform one-hots
    # The signaller's rows are relaxed samples over its 2 actions: they sum to 1, most are not one-hots.
    torch.testing.assert_close(stored[:, 0, :2].sum(-1), torch.ones(len(stored)))
    assert (stored[:, 0, 2] == 0).all() and (stored[:, 0, :2].max(-1).values < 0.999).float().mean() > 0.5
    actions = agent.act(np.zeros((8, 2, 5), dtype=np.float32), deterministic=False)
    assert set(np.unique(actions[:, 0, 0])) <= {0.0, 1.0}  # the env still gets a word


def test_signalling_information_is_high_for_distinct_words_and_zero_for_one_word():
    agent = _agent(signalling_agents=["signal_0"])
    distinct = torch.tensor([[[20.0, -20.0, 0.0]], [[-20.0, 20.0, 0.0]]]).expand(2, 2, 3)  # per obs, another word
    same = torch.tensor([[[20.0, -20.0, 0.0]]]).expand(2, 2, 3)
    torch.testing.assert_close(agent.signalling_information(distinct), torch.tensor([np.log(2.0)]).float())
    torch.testing.assert_close(agent.signalling_information(same), torch.tensor([0.0]), atol=1e-6, rtol=0)


def test_positive_signalling_names_different_words_for_different_sides():
    # Seed 2 without the bonus says one word for both sides after these 1,000 steps.
    agent = _agent(seed=2, signalling_agents=["signal_0"], signalling_coef=1.0, actor_learning_rate=1e-2)
    agent.learn(1000, CallbackList([]))
    sides = np.zeros((2, 2, 5), dtype=np.float32)
    sides[:, 0, :2] = np.eye(2)  # the signaller sees side 0, then side 1
    assert len(set(agent.act(sides)[:, 0, 0])) == 2


def test_signalling_agents_must_be_discrete_agents_of_the_env():
    with pytest.raises(ConfigError, match=r"names 'signal0', not an agent of this env; did you mean 'signal_0'"):
        _agent(signalling_agents=["signal0"])
    with pytest.raises(ConfigError, match=r"mover_0's actions are Box.*only Discrete agents say words"):
        _agent(signalling_agents=["mover_0"])
