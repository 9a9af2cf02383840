"""MADDPG: decentralised actors, one centralised critic per agent (Lowe et al., 2017).

One update, for every agent i, on a minibatch (o, a, r, o', done) from the replay buffer::

    a'_j  = mu'_j(o'_j) for every agent j                       target actors (one-hot argmax if discrete)
    y_i   = r_i + gamma * (1 - done) * Q'_i(o'_1..o'_N, a'_1..a'_N)   done = termination, never truncation
    critic loss_i = (Q_i(o_1..o_N, a_1..a_N) - y_i)^2
    actor loss_i  = -Q_i(o_1..o_N, a_1..mu_i(o_i)..a_N)        other agents' actions from the buffer;
                                                                discrete: straight-through Gumbel-softmax
    targets <- tau * online + (1 - tau) * targets               soft updates

Options beyond the paper, all off by default: TD3's twin critics, target smoothing and policy delay
(Fujimoto et al., 2018); n-step returns; shared parameters with an ego-centric critic; ``mirror_symmetry``;
``gumbel_hard=false``, the relaxed Gumbel-softmax samples in place of one-hots wherever the critics see
discrete actions (as the paper's code does); ``signalling_agents``, whose actor loss also rewards the mutual
information between their observation and their word, I(o; w) = H(mean_o pi(o)) - mean_o H(pi(o)) over the
minibatch (positive signalling, Eccles et al., 2019).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rlkit.agents.base import Agent, EpisodeStats, probe
from rlkit.agents.config import MADDPGConfig
from rlkit.agents.networks import StackedMLP, grad_norm, refuse_diverging_steps
from rlkit.callbacks import Callback
from rlkit.envs.state import env_state, set_env_state
from rlkit.errors import ConfigError


def gumbel_softmax(logits: torch.Tensor, temperature: float = 1.0, hard: bool = True) -> torch.Tensor:
    """A one-hot sample whose gradient is that of the relaxed (softmax) sample: straight-through.

    ``hard=False``: the relaxed sample itself (its argmax is the same draw's one-hot).
    """
    u = torch.rand_like(logits).clamp_(1e-10, 1.0 - 1e-10)
    soft = torch.softmax((logits - torch.log(-torch.log(u))) / temperature, dim=-1)
    if not hard:
        return soft
    one_hot = nn.functional.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return one_hot + soft - soft.detach()


def soft_update(target: list[torch.Tensor], online: list[torch.Tensor], tau: float) -> None:
    """Target <- tau * online + (1 - tau) * target, parameter by parameter (lists in the same order)."""
    with torch.no_grad():
        torch._foreach_lerp_(target, online, tau)  # t + tau * (o - t), fused over every parameter in one call


def critic_input(obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """(..., agents, obs_dim) and (..., agents, act_dim) -> every observation, then every action."""
    return torch.cat([obs.flatten(-2), actions.flatten(-2)], dim=-1)


def actor_update_actions(own: torch.Tensor, taken: torch.Tensor) -> torch.Tensor:
    """The joint actions each agent's actor update judges: (batch, agents, act) x2 -> (agents, batch, agents, act).

    Row i: the actions taken, but agent i's from its current policy (``own``), so only its actor gets gradients.
    """
    a = own.shape[1]
    mine = torch.eye(a, dtype=torch.bool).view(a, 1, a, 1)
    return torch.where(mine, own.unsqueeze(0), taken.unsqueeze(0))


class ReplayBuffer:
    """Preallocated tensors of (o, a, r, o', terminated, gamma^steps from o to o') for all agents; a ring when full."""

    FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "discounts")

    def __init__(self, capacity: int, agents: int, obs_dim: int, act_dim: int, generator: torch.Generator):
        self.capacity, self.generator, self.size, self.pos = capacity, generator, 0, 0
        self.obs, self.actions, self.rewards, self.next_obs, self.terminated, self.discounts = (
            torch.zeros((capacity, *shape)) for shape in ((agents, obs_dim), (agents, act_dim), (agents,),
                                                          (agents, obs_dim), (), ()))

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, discounts: np.ndarray | float) -> None:
        """Store a batch of transitions (first axis: copies)."""
        idx = (self.pos + torch.arange(len(obs))) % self.capacity
        for name, x in zip(self.FIELDS, (obs, actions, rewards, next_obs, terminated, discounts), strict=True):
            getattr(self, name)[idx] = torch.as_tensor(x, dtype=torch.float32)
        self.pos = (self.pos + len(obs)) % self.capacity
        self.size = min(self.size + len(obs), self.capacity)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """A uniform minibatch (with replacement)."""
        idx = torch.randint(0, self.size, (batch_size,), generator=self.generator)
        return tuple(getattr(self, name)[idx] for name in self.FIELDS)


class NStepCollector:
    """Turns each copy's latest steps into n-step transitions for a :class:`ReplayBuffer`.

    Each step with n steps of history yields ``(o_t, a_t, r_t + ... + gamma^(n-1) r_t+n-1, o_t+n, terminated,
    gamma^n)``; an episode's end also flushes its pending shorter transitions, each to the final observation.
    """

    def __init__(self, buffer: ReplayBuffer, n: int, gamma: float, copies: int) -> None:
        self.buffer, self.n, self.gamma = buffer, n, gamma
        self.count = np.zeros(copies, dtype=np.int64)
        self._history: list[np.ndarray] | None = None  # obs, actions, rewards: (n, copies, ...); 0 = latest

    def add(self, valid: np.ndarray, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            next_obs: np.ndarray, terminated: np.ndarray, done: np.ndarray) -> None:
        """One vector step; ``valid`` marks the copies whose step is a real transition (not an autoreset)."""
        if self.n == 1:
            if valid.any():
                self.buffer.add(obs[valid], actions[valid], rewards[valid], next_obs[valid], terminated[valid],
                                self.gamma)
            return
        if self._history is None:
            self._history = [np.zeros((self.n, *x.shape), dtype=np.float32) for x in (obs, actions, rewards)]
        for h, x in zip(self._history, (obs, actions, rewards), strict=True):
            h[1:, valid] = h[:-1, valid]
            h[0, valid] = x[valid]
        self.count[valid] = np.minimum(self.count[valid] + 1, self.n)
        ended = done & valid
        full = valid & ~ended & (self.count == self.n)
        h_obs, h_act, h_rew = self._history
        ret = np.zeros_like(rewards, dtype=np.float32)
        parts = []
        for k in range(1, self.n + 1):  # the k-step transition starts k - 1 steps back
            ret = h_rew[k - 1] + self.gamma * ret
            emit = (ended & (self.count >= k)) | (full if k == self.n else False)
            if emit.any():
                parts.append((h_obs[k - 1][emit], h_act[k - 1][emit], ret[emit], next_obs[emit], terminated[emit],
                              np.full(int(emit.sum()), self.gamma ** k, dtype=np.float32)))
        self.count[ended] = 0
        if parts:
            self.buffer.add(*(np.concatenate(p) for p in zip(*parts, strict=True)))


class MADDPG(Agent):
    """MADDPG on ``cfg.n_envs`` copies from ``make_vec(n)`` (a :class:`ParallelVectorEnv`).

    Every agent's actor (and critic) is one slice of a :class:`StackedMLP`; with ``share_parameters`` one actor
    and one critic serve all (the critic gets an agent id). Agents whose action spaces differ (``mixed``) act in
    one padded network space (:meth:`_init_mixed`). ``single_agent``: a single-agent env seen as a team of
    one, whose ``act`` takes and returns arrays without the agent axis.
    """

    def __init__(self, cfg: MADDPGConfig, make_vec: Callable[[int], Any], seed: int, training: bool = True,
                 single_agent: bool = False):
        self.cfg, self.make_vec, self.seed, self.single_agent = cfg, make_vec, seed, single_agent
        env = probe(make_vec, "maddpg")
        self.agents, self.n_agents = list(env.possible_agents), env.num_agents
        self.observation_space, self.action_space = env.single_observation_space, env.single_action_space
        per_agent = getattr(env, "agent_action_spaces", None)  # ParallelVectorEnv's; other vector envs': alike
        self.agent_action_spaces = list(per_agent or [self.action_space] * self.n_agents)
        self.mixed = any(s != self.agent_action_spaces[0] for s in self.agent_action_spaces[1:])
        if self.mixed:
            self._init_mixed(cfg)
        else:
            self.discrete = isinstance(self.action_space, spaces.Discrete)
            self.act_dim = self._width(self.action_space)
            if not self.discrete:
                self._low = torch.as_tensor(self.action_space.low, dtype=torch.float32)
                self._high = torch.as_tensor(self.action_space.high, dtype=torch.float32)
        self.obs_dim = int(self.observation_space.shape[0])
        a, od, ad = self.n_agents, self.obs_dim, self.act_dim
        shared = cfg.share_parameters
        self.n_nets, self.n_critics = 1 if shared else a, 2 if cfg.twin_critics else 1
        critic_in = a * (od + ad) + (a if shared else 0)
        self.actor = StackedMLP(self.n_nets, [od, *cfg.net_arch, ad], cfg.activation_fn)
        self.critic = StackedMLP(self.n_nets * self.n_critics, [critic_in, *cfg.net_arch, 1], cfg.activation_fn,
                                 layer_norm=cfg.critic_layer_norm)
        self.target_actor, self.target_critic = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        # Parameter lists fetched once: module.parameters() walks the module tree on every call.
        self._actor_params, self._critic_params, self._target_actor_params, self._target_critic_params = (
            list(m.parameters()) for m in (self.actor, self.critic, self.target_actor, self.target_critic))
        for p in (*self._target_actor_params, *self._target_critic_params):
            p.requires_grad_(False)
        # fused: one kernel per step for all parameters, much faster than the per-tensor loop on CPU.
        self.actor_opt = torch.optim.Adam(self._actor_params, lr=cfg.actor_learning_rate, fused=True)
        self.critic_opt = torch.optim.Adam(self._critic_params, lr=cfg.critic_learning_rate, fused=True)
        refuse_diverging_steps(self.actor_opt, "maddpg's actors", lambda: self.num_steps)
        refuse_diverging_steps(self.critic_opt, "maddpg's critics", lambda: self.num_steps)
        self._agent_ids = torch.eye(a).unsqueeze(1)  # (agents, 1, agents): one-hot id of each agent
        self._rotations = (torch.arange(a)[:, None] + torch.arange(a)[None]) % a  # row i: i, i+1, ..., i-1
        self._signalling = self._signalling_rows(cfg)
        self.generator = torch.Generator().manual_seed(seed)
        self.num_steps = self.num_updates = 0
        self._total_steps = 1
        self._noise_state: torch.Tensor | None = None
        self._episode_start = torch.zeros(0, dtype=torch.bool)

    def _signalling_rows(self, cfg: MADDPGConfig) -> torch.Tensor | None:
        """The rows of ``cfg.signalling_agents`` (Discrete agents, named as the env names them), or None."""
        rows = []
        for name in cfg.signalling_agents:
            if name not in self.agents:
                close = difflib.get_close_matches(str(name), self.agents, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(f"agent.signalling_agents names {name!r}, not an agent of this env; {hint}"
                                  f"its agents: {', '.join(self.agents)}")
            i = self.agents.index(name)
            if not isinstance(self.agent_action_spaces[i], spaces.Discrete):
                raise ConfigError(f"agent.signalling_agents: {name}'s actions are {self.agent_action_spaces[i]}; "
                                  "only Discrete agents say words")
            rows.append(i)
        return torch.tensor(rows) if rows else None

    def signalling_information(self, out: torch.Tensor) -> torch.Tensor:
        """Each signalling agent's mutual information (nats) between observation and word over a batch.

        ``out``: raw actor outputs (batch, agents, act_dim). I(o; w) = H(mean policy) - mean H(policy(o)).
        """
        assert self._signalling is not None
        logits = out[:, self._signalling]
        valid = self._valid[self._signalling] if self.mixed else torch.ones(logits.shape[1:], dtype=torch.bool)
        probs = torch.softmax(logits.masked_fill(~valid, float("-inf")), dim=-1)  # (batch, signallers, act_dim)

        def entropy(p: torch.Tensor) -> torch.Tensor:  # padding words: p = 0, counted as 1 for a finite gradient
            return torch.special.entr(torch.where(valid, p, 1.0)).sum(-1)

        return entropy(probs.mean(0)) - entropy(probs).mean(0)

    @staticmethod
    def _width(space: spaces.Space[Any]) -> int:
        """The network-space size of an agent's action: a one-hot of a Discrete, a bounded flat Box's values."""
        if isinstance(space, spaces.Discrete):
            return int(space.n)
        if isinstance(space, spaces.Box) and len(space.shape) == 1 and np.isfinite(space.low).all() and \
                np.isfinite(space.high).all():
            return int(space.shape[0])
        raise ConfigError(f"agent=maddpg needs Discrete or bounded Box actions, got {space}")

    def _init_mixed(self, cfg: MADDPGConfig) -> None:
        """Agents whose action spaces differ: every agent's network-space action padded to the widest.

        A Discrete agent's padding logits are masked out (never chosen, no probability), a Box agent's padding is
        zero; so each agent's critic input holds every agent's true action and constant zeros.
        """
        if cfg.share_parameters:
            from rlkit.envs.adapters import describe_spaces

            raise ConfigError("agent.share_parameters=true needs agents with the same action space, and these "
                              f"differ ({describe_spaces(self.agents, self.agent_action_spaces)}); set "
                              "agent.share_parameters=false: each agent gets its own actor and critic")
        widths = [self._width(s) for s in self.agent_action_spaces]
        self.discrete, self.act_dim = False, max(widths)
        a = self.n_agents
        self._valid = torch.arange(self.act_dim) < torch.tensor(widths)[:, None]  # (agents, act_dim)
        self._discrete_agents = torch.tensor([isinstance(s, spaces.Discrete) for s in self.agent_action_spaces])
        self._low, self._high = torch.zeros(a, self.act_dim), torch.zeros(a, self.act_dim)
        self._starts = torch.zeros(a, dtype=torch.long)
        for i, s in enumerate(self.agent_action_spaces):
            if isinstance(s, spaces.Discrete):
                self._starts[i] = int(s.start)
            else:
                self._low[i, :widths[i]] = torch.as_tensor(s.low)
                self._high[i, :widths[i]] = torch.as_tensor(s.high)
        self._sizes = torch.tensor(widths)
        self._env_width = max(1 if isinstance(s, spaces.Discrete) else w
                              for s, w in zip(self.agent_action_spaces, widths, strict=True))

    def _mixed_actions(self, out: torch.Tensor, sample: bool, noise: float = 0.0) -> torch.Tensor:
        """Network-space actions of agents whose spaces differ, from raw outputs (batch, agents, act_dim).

        Discrete agents: a one-hot of the argmax (``sample``: straight-through Gumbel-softmax, or the relaxed
        sample with ``gumbel_hard=false``) over their own actions; Box agents: tanh, plus Gaussian ``noise``
        (clipped to [-1, 1]); padding zero.
        """
        disc, parts = self._discrete_agents.view(1, -1, 1), []
        if bool(disc.any()):
            logits = out.masked_fill(~self._valid, float("-inf"))
            parts.append(gumbel_softmax(logits, self.cfg.gumbel_temperature, self.cfg.gumbel_hard) if sample else
                         nn.functional.one_hot(logits.argmax(-1), self.act_dim).to(out.dtype))
        if not bool(disc.all()):
            cont = torch.tanh(out)
            if noise > 0:
                cont = (cont + noise * torch.randn(cont.shape, generator=self.generator)).clamp(-1.0, 1.0)
            parts.append(cont * self._valid)
        return parts[0] if len(parts) == 1 else torch.where(disc, parts[0], parts[1])

    # -- networks
    def _policy_out(self, actor: StackedMLP, obs: torch.Tensor) -> torch.Tensor:
        """Raw actor outputs (logits, or pre-tanh values) for every agent: (batch, agents, act_dim).

        With ``mirror_symmetry`` the actor is odd, (f(o) - f(-o)) / 2: mirrored observations get mirrored actions.
        """
        x = torch.cat([obs, -obs]) if self.cfg.mirror_symmetry else obs
        b, a, d = x.shape
        if self.cfg.share_parameters:
            out = actor(x.reshape(1, b * a, d)).view(b, a, -1)
        else:
            out = actor(x.transpose(0, 1)).transpose(0, 1)
        return 0.5 * (out[:len(obs)] - out[len(obs):]) if self.cfg.mirror_symmetry else out

    def _q(self, critic: StackedMLP, x: torch.Tensor, critics: int) -> torch.Tensor:
        """Q of every agent from the first ``critics`` critics: x (agents, batch, in) -> (critics, agents, batch)."""
        a, b, _ = x.shape
        if self.cfg.share_parameters:
            x = torch.cat([x, self._agent_ids.expand(a, b, a)], dim=2).reshape(1, a * b, -1)
        if critics > 1:
            x = x.repeat(critics, 1, 1)
        return critic(x, first=critics * self.n_nets).view(critics, a, b)

    def _rows(self, obs: torch.Tensor, taken: torch.Tensor, own: torch.Tensor | None = None) -> torch.Tensor:
        """The critics' inputs, row i for agent i's critic: (agents, batch, in), every agent's observation and action.

        With ``own`` (actor update) agent i's action in row i is its policy's; ``ego_critic``: row i from agent i on.
        """
        a = obs.shape[1]
        if self.cfg.ego_critic:
            o = obs[:, self._rotations].transpose(0, 1)  # (agents, batch, agents, obs_dim), row i rotated by i
            acts = taken[:, self._rotations].transpose(0, 1)
            if own is not None:  # agent i is first in row i
                acts = torch.cat([own.transpose(0, 1).unsqueeze(2), acts[:, :, 1:]], dim=2)
        else:
            o = obs.unsqueeze(0).expand(a, -1, -1, -1)
            acts = taken.unsqueeze(0).expand(a, -1, -1, -1) if own is None else actor_update_actions(own, taken)
        return critic_input(o, acts)

    def _to_env(self, a: torch.Tensor) -> np.ndarray:
        """Network-space actions (tanh range, or one-hot) to what the env takes (padded rows where spaces differ)."""
        if self.mixed:
            values = self._low + (a + 1.0) * 0.5 * (self._high - self._low)  # zero for Discrete agents' rows
            index = (a.argmax(-1) + self._starts).to(values.dtype)
            values[..., 0] = torch.where(self._discrete_agents, index, values[..., 0])
            return values[..., :self._env_width].numpy().astype(np.float32)
        if self.discrete:
            return a.argmax(-1).numpy()
        return (self._low + (a + 1.0) * 0.5 * (self._high - self._low)).numpy().astype(np.float32)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for observations of shape (n, agents, obs_dim) (or (n, obs_dim) for a single-agent env)."""
        x = torch.as_tensor(np.asarray(obs), dtype=torch.float32)
        if self.single_agent:
            x = x.unsqueeze(1)
        with torch.no_grad():
            greedy_actor = self.target_actor if deterministic and self.cfg.eval_target_actor else self.actor
            out = self._policy_out(greedy_actor, x)
            if self.mixed:
                a = self._mixed_actions(out, sample=not deterministic, noise=0.0 if deterministic else self._noise())
            elif self.discrete:
                a = nn.functional.one_hot(out.argmax(-1), self.act_dim).float() if deterministic else \
                    gumbel_softmax(out, self.cfg.gumbel_temperature, self.cfg.gumbel_hard)
            else:
                a = torch.tanh(out)
                if not deterministic:
                    a = (a + self._noise() * torch.randn(a.shape, generator=self.generator)).clamp(-1.0, 1.0)
        actions = self._to_env(a)
        return actions[:, 0] if self.single_agent else actions

    def _noise(self) -> float:
        """Exploration noise scale: linear from noise_start to noise_end over noise_fraction of training."""
        cfg = self.cfg
        progress = min(1.0, self.num_steps / max(1.0, cfg.noise_fraction * self._total_steps))
        return cfg.noise_start + progress * (cfg.noise_end - cfg.noise_start)

    def _explore(self, obs: np.ndarray) -> torch.Tensor:
        """Network-space exploratory actions: uniform at first, then the actors' with noise (or Gumbel)."""
        shape = (obs.shape[0], self.n_agents, self.act_dim)
        if self.num_steps < self.cfg.learning_starts:
            if self.mixed:  # uniform over each agent's own actions
                index = (torch.rand(shape[:2], generator=self.generator) * self._sizes).long()
                uniform = torch.rand(shape, generator=self.generator) * 2.0 - 1.0
                return torch.where(self._discrete_agents.view(1, -1, 1),
                                   nn.functional.one_hot(index, self.act_dim).float(), uniform * self._valid)
            if self.discrete:
                return nn.functional.one_hot(torch.randint(0, self.act_dim, shape[:2], generator=self.generator),
                                             self.act_dim).float()
            return torch.rand(shape, generator=self.generator) * 2.0 - 1.0
        with torch.no_grad():
            out = self._policy_out(self.actor, torch.as_tensor(obs, dtype=torch.float32))
            if self.mixed:
                return self._mixed_actions(out, sample=True, noise=self._noise())
            if self.discrete:
                return gumbel_softmax(out, self.cfg.gumbel_temperature, self.cfg.gumbel_hard)
            return (torch.tanh(out) + self._noise() * self._unit_noise(shape)).clamp(-1.0, 1.0)

    def _unit_noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal noise; with noise_correlation rho > 0 an Ornstein-Uhlenbeck (AR(1)) restarted per episode."""
        eps = torch.randn(shape, generator=self.generator)
        rho = self.cfg.noise_correlation
        if rho <= 0:
            return eps
        if self._noise_state is None or self._noise_state.shape != shape:
            self._noise_state = eps
        else:
            self._noise_state = rho * self._noise_state + (1.0 - rho * rho) ** 0.5 * eps
            self._noise_state[self._episode_start] = eps[self._episode_start]
        return self._noise_state

    # -- learning
    def learn(self, total_steps: int, callback: Callback) -> None:
        """Collect from ``n_envs`` copies and update every ``train_every`` vector steps."""
        cfg, self._total_steps = self.cfg, total_steps
        self._envs = envs = self.make_vec(cfg.n_envs)
        self.buffer = ReplayBuffer(cfg.buffer_size, self.n_agents, self.obs_dim, self.act_dim, self.generator)
        self._collector = collector = NStepCollector(self.buffer, cfg.n_step, cfg.gamma, cfg.n_envs)
        resume, self._resume = self._resume, None
        obs, _ = envs.reset(seed=self.seed if resume is None else self.seed + self.num_steps)
        reset_next, episodes, vector_steps = np.zeros(cfg.n_envs, dtype=bool), EpisodeStats(cfg.n_envs, self.agents), 0
        if resume is not None:  # the buffer, n-step history, updates, generator and noise that training_state saved
            stored = resume["buffer"]
            self.buffer.size, self.buffer.pos = int(stored["size"]), int(stored["pos"])
            for k in ReplayBuffer.FIELDS:
                getattr(self.buffer, k)[:self.buffer.size] = stored[k]
            collector.count = np.asarray(resume["collector"]["count"], dtype=np.int64)
            history = resume["collector"]["history"]
            collector._history = None if history is None else [np.asarray(h, dtype=np.float32) for h in history]
            self.num_updates = int(resume["num_updates"])
            self.generator.set_state(resume["generator"])
            self._noise_state = resume["noise_state"]
            vector_steps = int(resume["vector_steps"])
            if resume["envs_exact"]:
                set_env_state(envs, resume["envs"])
                obs, reset_next = np.asarray(resume["obs"]), np.asarray(resume["reset_next"], dtype=bool)
                episodes.returns = np.asarray(resume["returns"])
                episodes.lengths = np.asarray(resume["lengths"], dtype=np.int64)
        try:
            while self.num_steps < total_steps:
                # A safe point: what training_state records is all that is in flight.
                self._loop = {"obs": obs, "reset_next": reset_next, "returns": episodes.returns,
                              "lengths": episodes.lengths, "vector_steps": vector_steps}
                callback.on_safe_point()
                self._episode_start = torch.as_tensor(reset_next)
                actions = self._explore(obs)
                next_obs, rewards, terminated, truncated, _ = envs.step(self._to_env(actions))
                valid, done = ~reset_next, terminated | truncated  # an autoreset step carries no transition
                collector.add(valid, obs, actions.numpy(), rewards, next_obs, terminated, done)
                self.num_steps += cfg.n_envs
                vector_steps += 1
                episodes.step(rewards, valid, done, self.num_steps, callback)
                reset_next, obs = done, next_obs
                # n-step transitions reach the buffer n steps late: many copies can pass learning_starts before
                if self.num_steps >= cfg.learning_starts and self.buffer.size and vector_steps % cfg.train_every == 0:
                    for _ in range(cfg.gradient_steps):
                        metrics = self._update()
                    metrics["noise"] = self._noise()
                    callback.on_update(self.num_steps, metrics)
                if not callback.on_step(self.num_steps):
                    break
        finally:
            envs.close()

    def training_state(self) -> dict[str, Any]:
        """The replay buffer, n-step history, noise, generator, the copies' state and episodes in progress."""
        b, c = self.buffer, self._collector
        env, exact = env_state(self._envs)
        loop = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in self._loop.items()}
        return {**loop, "envs": env, "envs_exact": exact, "num_updates": self.num_updates,
                "generator": self.generator.get_state(), "noise_state": self._noise_state,
                "buffer": {"size": b.size, "pos": b.pos,
                           **{k: getattr(b, k)[:b.size].clone() for k in ReplayBuffer.FIELDS}},
                "collector": {"count": c.count.copy(),
                              "history": None if c._history is None else [h.copy() for h in c._history]}}

    def _update(self) -> dict[str, float]:
        """One MADDPG step for every agent (see the module docstring); every agent's nets in one call."""
        cfg, c = self.cfg, self.n_critics
        obs, actions, rewards, next_obs, terminated, discounts = self.buffer.sample(cfg.batch_size)
        b = obs.shape[0]
        if cfg.mirror_symmetry:  # the env is unchanged under (o, a) -> (-o, -a): mirror half the batch
            sign = torch.where(torch.rand(b, generator=self.generator) < 0.5, -1.0, 1.0).view(b, 1, 1)
            obs, actions, next_obs = obs * sign, actions * sign, next_obs * sign
        with torch.no_grad():  # y_i = r_i + gamma^n * (1 - done) * Q'_i(o', mu'(o')), the smaller twin's
            out = self._policy_out(self.target_actor, next_obs)
            if self.mixed:  # relaxed samples when the critics learn on them (gumbel_hard=false), else one-hots
                next_actions = self._mixed_actions(out, sample=not cfg.gumbel_hard)
                if cfg.target_noise > 0:  # TD3's target policy smoothing, for the Box agents
                    noise = (torch.randn(next_actions.shape, generator=self.generator) * cfg.target_noise)
                    smooth = (next_actions + noise.clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
                              ).clamp(-1.0, 1.0) * self._valid
                    next_actions = torch.where(self._discrete_agents.view(1, -1, 1), next_actions, smooth)
            elif self.discrete:
                next_actions = gumbel_softmax(out, cfg.gumbel_temperature, hard=False) if not cfg.gumbel_hard else \
                    nn.functional.one_hot(out.argmax(-1), self.act_dim).float()
            else:
                next_actions = torch.tanh(out)
                if cfg.target_noise > 0:  # TD3's target policy smoothing
                    noise = (torch.randn(next_actions.shape, generator=self.generator) * cfg.target_noise)
                    next_actions = (next_actions + noise.clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
                                    ).clamp(-1.0, 1.0)
            q_next = self._q(self.target_critic, self._rows(next_obs, next_actions), c).min(dim=0).values
            targets = rewards.T + discounts * (1.0 - terminated) * q_next  # (agents, batch)
        q = self._q(self.critic, self._rows(obs, actions), c)
        # critic loss_i = (Q_i(o, a) - y_i)^2: mean over agents and batch, summed over twin critics.
        critic_loss = ((q - targets) ** 2).mean() * c
        self.critic_opt.zero_grad()
        critic_loss.backward()
        critic_norm = self._clip(self._critic_params)
        self.critic_opt.step()
        metrics = {"critic_loss": float(critic_loss.detach()), "q_mean": float(q[0].detach().mean()),
                   "critic_grad_norm": critic_norm}

        self.num_updates += 1
        if self.num_updates % cfg.policy_delay == 0:  # actor loss_i = -Q_i(o, a_1..mu_i(o_i)..a_N)
            out = self._policy_out(self.actor, obs)
            if self.mixed:
                own, penalty = self._mixed_actions(out, sample=True), (out[:, self._valid] ** 2).mean()
            else:
                own = gumbel_softmax(out, cfg.gumbel_temperature, cfg.gumbel_hard) if self.discrete else torch.tanh(out)
                penalty = (out ** 2).mean()
            q_own = self._q(self.critic, self._rows(obs, actions, own), 1)[0]
            actor_loss = -q_own.mean() + cfg.action_l2 * penalty
            if self._signalling is not None:  # positive signalling: different observations, different words
                information = self.signalling_information(out)
                actor_loss = actor_loss - cfg.signalling_coef * information.sum()
                metrics["signalling_information"] = float(information.detach().mean())
            # Gradients for the actors only: the critic's weights take no part in this step.
            for p, g in zip(self._actor_params, torch.autograd.grad(actor_loss, self._actor_params), strict=True):
                p.grad = g
            metrics["actor_grad_norm"] = self._clip(self._actor_params)
            self.actor_opt.step()
            metrics["actor_loss"] = float(actor_loss.detach())
            soft_update(self._target_actor_params, self._actor_params, cfg.tau)
        soft_update(self._target_critic_params, self._critic_params, cfg.tau)  # targets <- tau online + (1-tau) targets
        return metrics

    def _clip(self, params: list[nn.Parameter]) -> float:
        """Clip the gradients of ``params`` to ``max_grad_norm`` (if > 0); returns their norm before clipping."""
        if self.cfg.max_grad_norm > 0:
            return float(nn.utils.clip_grad_norm_(params, self.cfg.max_grad_norm, foreach=True))
        return grad_norm(params)

    # -- checkpoints
    def saved_names(self) -> list[str]:
        """Every network and both optimizers."""
        return ["actor", "critic", "target_actor", "target_critic", "actor_opt", "critic_opt"]

    def checkpoint_meta(self) -> dict[str, Any]:
        """What wrote the checkpoint, the agents' names and the steps taken."""
        return {"agent": "maddpg", "agents": self.agents, "num_steps": self.num_steps}
