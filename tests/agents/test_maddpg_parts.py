"""MADDPG's building blocks (the agent is not yet wired into the trainer: issue 4)."""

from dataclasses import dataclass, field

import numpy as np
import torch

from rlkit.agents.maddpg import MADDPG, ReplayBuffer, critic_input, gumbel_softmax, soft_update
from rlkit.callbacks import CallbackList
from rlkit.envs.multi_cartpole import MultiCartPoleVectorEnv


@dataclass
class _Cfg:
    n_envs: int = 4
    buffer_size: int = 5000
    learning_starts: int = 200
    batch_size: int = 32
    gamma: float = 0.99
    tau: float = 0.01
    actor_learning_rate: float = 1e-3
    critic_learning_rate: float = 1e-3
    train_every: int = 1
    gradient_steps: int = 1
    noise_start: float = 0.3
    noise_end: float = 0.05
    noise_fraction: float = 0.5
    gumbel_temperature: float = 1.0
    net_arch: list[int] = field(default_factory=lambda: [16, 16])
    activation_fn: str = "relu"
    share_parameters: bool = False
    max_grad_norm: float = 1.0


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
    soft_update(target, online, tau=0.25)
    torch.testing.assert_close(target.weight, 0.25 * online.weight + 0.75 * before)


def test_critic_input_lays_out_every_observation_then_every_action():
    obs = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # one sample, agents 0 and 1, obs_dim 2
    actions = torch.tensor([[[10.0], [20.0]]])  # act_dim 1
    assert critic_input(obs, actions).tolist() == [[1.0, 2.0, 3.0, 4.0, 10.0, 20.0]]


def test_replay_buffer_wraps_around_and_samples_what_was_stored():
    buf = ReplayBuffer(4, agents=2, obs_dim=1, act_dim=1, generator=torch.Generator().manual_seed(0))
    for k in range(3):
        buf.add(np.full((2, 2, 1), k), np.zeros((2, 2, 1)), np.full((2, 2), k), np.zeros((2, 2, 1)),
                np.array([False, k == 2]))
    assert buf.size == 4 and buf.pos == 2
    assert sorted(buf.obs[:, 0, 0].tolist()) == [1.0, 1.0, 2.0, 2.0]  # the oldest were overwritten
    obs, _, rewards, _, _ = buf.sample(64)
    assert set(obs[:, 0, 0].tolist()) <= {1.0, 2.0} and torch.equal(obs[:, 0, 0], rewards[:, 0])


def _agent(seed=0, **kw):
    cfg = _Cfg(**kw)
    return MADDPG(cfg, lambda n: MultiCartPoleVectorEnv(num_envs=n, num_agents=2), seed=seed)


def test_learns_without_error_and_round_trips_through_a_checkpoint(tmp_path):
    agent = _agent()
    agent.learn(600, CallbackList([]))
    assert agent.num_updates > 0
    agent.save(tmp_path / "m.safetensors")
    other = _agent(seed=5)
    other.load(tmp_path / "m.safetensors")
    obs = np.random.default_rng(0).normal(size=(7, 2, 4)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), other.act(obs))
    assert agent.act(obs).shape == (7, 2, 1) and (np.abs(agent.act(obs)) <= 1).all()


def test_shared_parameters_use_one_actor_and_one_critic():
    agent = _agent(share_parameters=True)
    assert len(agent.actors) == 1 and len(agent.critics) == 1
    agent.learn(400, CallbackList([]))
