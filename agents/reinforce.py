"""REINFORCE: Monte-Carlo policy gradient (Williams, 1992), batched over N environment copies.

One update::

    collect a batch with the current policy from N copies stepped together:
        whole episodes (episodes_per_update of them), or steps_per_update steps with cut episodes
    G_t   = r_t + gamma * G_{t+1}                 discounted reward-to-go, per episode;
                                                  at a truncation (or a cut) G_T = r_T + gamma * V(s_{T+1})
    A_t   = G_t - V(s_t)  (with the baseline)     or A_t = G_t
    A_t   = (A_t - mean A) / std A                (normalize_returns)
    policy loss = -mean_t [ log pi(a_t | s_t) * A_t ] - entropy_coef * mean_t H(pi(. | s_t))
    value loss  = mean_t (V(s_t) - G_t)^2         (value_gradient_steps steps)
    clip gradients to max_grad_norm, one Adam step each

Terminated episodes end with G_T = r_T; truncated ones are never treated as failures.

Options that make it PPO-like (Schulman et al., 2017; the defaults leave plain REINFORCE)::

    gae_lambda < 1:  delta_t = r_t + gamma * V(s_{t+1}) - V(s_t)   (V(s_{T+1}) = bootstrap_T at an end)
                     A_t = delta_t + gamma * lambda * A_{t+1}      (GAE; A_{T+1} = 0 at an end); G_t = A_t + V(s_t)
    clip_range eps:  rho_t = pi(a_t | s_t) / pi_old(a_t | s_t)
                     policy loss = -mean_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) - entropy_coef * H
    n_epochs passes over the batch in shuffled minibatches of batch_size, each one policy and one value step
    (value_gradient_steps of them), the advantages normalised per minibatch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from torch import nn

from rlkit.agents.base import Agent, EpisodeStats, probe
from rlkit.agents.config import ReinforceConfig
from rlkit.agents.networks import grad_norm, mlp, refuse_diverging_steps
from rlkit.callbacks import Callback
from rlkit.envs.state import env_state, set_env_state
from rlkit.errors import ConfigError


# ---------------------------------------------------------------------------------------------- policy
class Policy(nn.Module):
    """A categorical policy for Discrete actions, a diagonal Gaussian for Box actions."""

    def __init__(self, cfg: ReinforceConfig, observation_space: spaces.Box, action_space: spaces.Space[Any]):
        super().__init__()
        obs_dim = int(np.prod(observation_space.shape))
        self.discrete = isinstance(action_space, spaces.Discrete)
        if self.discrete:
            self.net = mlp([obs_dim, *cfg.net_arch, int(action_space.n)], cfg.activation_fn, out_gain=0.01)
            return
        assert isinstance(action_space, spaces.Box)
        self.act_dim, self.action_shape = int(np.prod(action_space.shape)), action_space.shape
        self.state_dependent_std, self.squash = cfg.state_dependent_std, cfg.squash
        out = 2 * self.act_dim if cfg.state_dependent_std else self.act_dim
        self.net = mlp([obs_dim, *cfg.net_arch, out], cfg.activation_fn, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((self.act_dim,), float(cfg.log_std_init)))
        if cfg.state_dependent_std:
            with torch.no_grad():
                self.net[-1].bias[self.act_dim:] = float(cfg.log_std_init)
        if cfg.squash and not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
            raise ConfigError(f"agent.squash=true maps actions into finite bounds, but the action space is "
                              f"{action_space}; set agent.squash=false")
        self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1))
        self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1))

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        """pi(. | obs) before any squashing: Categorical, or Normal over the unbounded sample."""
        out = self.net(obs)
        if self.discrete:
            return torch.distributions.Categorical(logits=out, validate_args=False)
        d = self.act_dim
        mean, log_std = (out[:, :d], out[:, d:]) if self.state_dependent_std else (out, self.log_std.expand_as(out))
        return torch.distributions.Normal(mean, log_std.clamp(-5.0, 2.0).exp(), validate_args=False)

    def log_prob(self, dist: torch.distributions.Distribution, raw: torch.Tensor) -> torch.Tensor:
        """Log pi(a | s) of the stored raw samples (Categorical indices, or the pre-squash Gaussian sample)."""
        if self.discrete:
            return dist.log_prob(raw)
        logp = dist.log_prob(raw).sum(-1)
        if self.squash:
            # Change of variables for a = tanh(u): log |d tanh(u) / du| = 2 (log 2 - u - softplus(-2u)).
            logp = logp - (2 * (math.log(2.0) - raw - nn.functional.softplus(-2 * raw))).sum(-1)
        return logp

    def to_env(self, raw: torch.Tensor) -> np.ndarray:
        """Map raw samples to actions the environment accepts (squashed or clipped into the bounds)."""
        if self.discrete:
            return raw.numpy()
        if self.squash:
            action = self.low + (torch.tanh(raw) + 1.0) * 0.5 * (self.high - self.low)
        else:
            action = torch.maximum(torch.minimum(raw, self.high), self.low)
        return action.reshape(-1, *self.action_shape).numpy()

    def greedy(self, obs: torch.Tensor) -> torch.Tensor:
        """The most likely raw action: argmax of the logits, or the Gaussian mean."""
        dist = self.distribution(obs)
        return dist.logits.argmax(-1) if self.discrete else dist.mean  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- the maths
def discounted_returns(rewards: np.ndarray, ends: np.ndarray, bootstrap: np.ndarray, valid: np.ndarray,
                       gamma: float) -> np.ndarray:
    """Reward-to-go G_t on a (T, N) grid of steps of N copies (0 where not ``valid``: autoreset steps, idle copies).

    Where ``ends`` (terminated, truncated or cut) G_T = r_T + gamma * bootstrap_T (0 after a termination, else V).
    """
    returns = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[1], dtype=np.float64)
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = np.where(ends[t], bootstrap[t], running)
        running = returns[t] = np.where(valid[t], rewards[t] + gamma * running, 0.0)
    return returns


def generalized_advantages(rewards: np.ndarray, values: np.ndarray, ends: np.ndarray, bootstrap: np.ndarray,
                           valid: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """GAE(lambda) advantages A_t on a (T, N) grid laid out as for :func:`discounted_returns` (0 where not valid).

    ``values`` holds V(s_t); a valid step that does not end is followed by the next step of its episode.
    """
    advantages = np.zeros_like(rewards, dtype=np.float64)
    next_value = np.zeros(rewards.shape[1], dtype=np.float64)
    next_adv = np.zeros(rewards.shape[1], dtype=np.float64)
    for t in range(rewards.shape[0] - 1, -1, -1):
        next_value = np.where(ends[t], bootstrap[t], next_value)
        next_adv = np.where(ends[t], 0.0, next_adv)
        delta = rewards[t] + gamma * next_value - values[t]
        next_adv = advantages[t] = np.where(valid[t], delta + gamma * lam * next_adv, 0.0)
        next_value = values[t]
    return advantages


def policy_loss(logp: torch.Tensor, returns: torch.Tensor, values: torch.Tensor | None, entropy: torch.Tensor,
                normalize: bool, entropy_coef: float, old_logp: torch.Tensor | None = None,
                clip_range: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The REINFORCE surrogate loss, or with ``clip_range`` the clipped one, and the advantages it used.

    ``values`` None: ``returns`` are the advantages themselves. See the module docstring.
    """
    adv = returns if values is None else returns - values.detach()
    if normalize and adv.numel() > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    if clip_range is None:
        surrogate = logp * adv
    else:
        assert old_logp is not None
        ratio = (logp - old_logp).exp()
        surrogate = torch.minimum(ratio * adv, ratio.clamp(1.0 - clip_range, 1.0 + clip_range) * adv)
    loss = -surrogate.mean() - entropy_coef * entropy.mean()
    return loss, adv


# ---------------------------------------------------------------------------------------------- the agent
class Reinforce(Agent):
    """REINFORCE with an optional learned baseline, on ``cfg.n_envs`` copies from ``make_vec(n)`` (a vector env).

    ``seed`` seeds the copies (``seed + i``); torch is seeded by the trainer.
    """

    def __init__(self, cfg: ReinforceConfig, make_vec: Callable[[int], gym.vector.VectorEnv], seed: int,
                 training: bool = True) -> None:
        self.cfg, self.seed, self.make_vec = cfg, seed, make_vec
        env = probe(make_vec, "reinforce")
        self.observation_space, self.action_space = env.single_observation_space, env.single_action_space
        if not isinstance(self.action_space, (spaces.Discrete, spaces.Box)):
            raise ConfigError(f"agent=reinforce needs a Discrete or Box action space, but the environment has "
                              f"{self.action_space}")
        self.device = torch.device(cfg.device)
        self.policy = Policy(cfg, self.observation_space, self.action_space).to(self.device)
        self.policy_opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.learning_rate)
        self.value: nn.Module | None = None
        self.value_opt: torch.optim.Optimizer | None = None
        if cfg.baseline:
            self.value = mlp([self.observation_space.shape[0], *cfg.net_arch, 1], cfg.activation_fn).to(self.device)
            self.value_opt = torch.optim.Adam(self.value.parameters(), lr=cfg.value_learning_rate)
            refuse_diverging_steps(self.value_opt, "reinforce's baseline", lambda: self.num_steps)
        refuse_diverging_steps(self.policy_opt, "reinforce's policy", lambda: self.num_steps)
        self.num_steps = 0

    # -- acting
    def _obs(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations: greedy, or sampled from the policy."""
        with torch.no_grad():
            t = self._obs(obs)
            raw = self.policy.greedy(t) if deterministic else self.policy.distribution(t).sample()
        return self.policy.to_env(raw.cpu())

    def _values(self, obs: np.ndarray) -> np.ndarray:
        assert self.value is not None
        with torch.no_grad():
            return self.value(self._obs(obs)).squeeze(-1).cpu().numpy().astype(np.float64)

    # -- learning
    def learn(self, total_steps: int, callback: Callback) -> None:
        """Alternate collecting a batch and updating until ``total_steps`` environment steps are taken."""
        cfg = self.cfg
        envs = self.make_vec(cfg.n_envs)
        if envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) != AutoresetMode.NEXT_STEP:
            raise ConfigError("agent=reinforce needs a vector env with Gymnasium's NEXT_STEP autoreset mode")
        self._rollout = _Rollout(cfg.n_envs, self.observation_space.shape[0], self.policy.discrete,
                                 getattr(self.policy, "act_dim", 1))
        self._envs, resume, self._resume = envs, self._resume, None
        self._episodes, self._reset_next = EpisodeStats(cfg.n_envs), np.zeros(cfg.n_envs, bool)
        if resume is None:
            obs, _ = envs.reset(seed=self.seed)
        elif not resume["envs_exact"]:  # the env's episodes cannot be restored (see rlkit.envs.state): new ones
            obs, _ = envs.reset(seed=self.seed + self.num_steps)
        else:
            set_env_state(envs, resume["envs"])
            obs = np.asarray(resume["obs"])
            self._episodes.returns = np.asarray(resume["ep_return"], dtype=np.float64)
            self._episodes.lengths = np.asarray(resume["ep_length"], dtype=np.int64)
            self._reset_next = np.asarray(resume["reset_next"], dtype=bool)
        try:
            while self.num_steps < total_steps:
                self._last_obs = obs
                callback.on_safe_point()  # between batches: nothing collected is pending
                if cfg.steps_per_update == 0:
                    obs, _ = envs.reset()  # whole episodes: every one starts with the current policy
                    self._reset_next[:] = False
                    self._episodes = EpisodeStats(cfg.n_envs)
                obs, keep_going = self._collect(envs, obs, callback, total_steps)
                if self._rollout.valid[: self._rollout.t].any():
                    callback.on_update(self.num_steps, self._update())
                if not keep_going:
                    break
        finally:
            envs.close()

    def _collect(self, envs: gym.vector.VectorEnv, obs: np.ndarray, callback: Callback,
                 total_steps: int) -> tuple[np.ndarray, bool]:
        """Step all copies with the current policy until the batch is complete; returns (obs, keep_going)."""
        cfg, ro, n = self.cfg, self._rollout, self.cfg.n_envs
        ro.t, by_steps = 0, cfg.steps_per_update > 0
        # In episode mode, a copy collects while it is inside a counted episode.
        collecting = np.ones(n, dtype=bool) if by_steps else np.arange(n) < cfg.episodes_per_update
        started, completed = int(collecting.sum()), 0
        while True:
            with torch.no_grad():
                raw = self.policy.distribution(self._obs(obs)).sample()
            next_obs, rewards, terminated, truncated, _ = envs.step(self.policy.to_env(raw))
            self.num_steps += n
            # Autoreset steps carry no transition: the action was ignored and a new episode began.
            valid = collecting & ~self._reset_next
            done = terminated | truncated
            ro.add(obs, raw.numpy(), rewards, valid)
            ro.ends[ro.t - 1] = valid & done
            if truncated.any() and self.value is not None:
                ro.bootstrap[ro.t - 1] = np.where(valid & truncated, self._values(next_obs), 0.0)
            completed += self._episodes.step(rewards, valid, done, self.num_steps, callback)
            if not by_steps:
                collecting &= ~(valid & done)  # its counted episode is over
                # Copies whose autoreset step just began a new episode join while episodes are still needed.
                joining = np.flatnonzero(self._reset_next)[:cfg.episodes_per_update - started]
                collecting[joining] = True
                started += len(joining)
            self._reset_next, obs = done, next_obs
            keep_going = callback.on_step(self.num_steps)
            full = ro.t * n >= cfg.steps_per_update if by_steps else completed >= cfg.episodes_per_update
            if not keep_going or self.num_steps >= total_steps or full:
                break
        if by_steps or not keep_going or self.num_steps >= total_steps:
            # Cut episodes: bootstrap from the value of where they stand (no baseline: cut as if truncated).
            cut = collecting & ~self._reset_next & valid
            ro.ends[ro.t - 1] |= cut
            if self.value is not None and cut.any():
                ro.bootstrap[ro.t - 1] = np.where(cut, self._values(obs), ro.bootstrap[ro.t - 1])
        return obs, keep_going

    def _update(self) -> dict[str, float]:
        """Policy-gradient steps (and the baseline's steps) on the collected batch: one, or n_epochs of minibatches."""
        cfg, ro, t = self.cfg, self._rollout, self._rollout.t
        rewards = ro.rewards[:t] if cfg.reward_scale == 1.0 else ro.rewards[:t] * cfg.reward_scale
        mask = ro.valid[:t].reshape(-1)
        obs = torch.as_tensor(ro.obs[:t].reshape(-1, ro.obs.shape[-1])[mask], device=self.device)
        raw = torch.as_tensor(ro.actions[:t].reshape(-1, *ro.actions.shape[2:])[mask], device=self.device)
        if cfg.gae_lambda < 1.0:
            assert self.value is not None
            with torch.no_grad():
                grid = self.value(torch.as_tensor(ro.obs[:t], device=self.device)).squeeze(-1).cpu().numpy()
            adv = generalized_advantages(rewards, grid.astype(np.float64), ro.ends[:t], ro.bootstrap[:t],
                                         ro.valid[:t], cfg.gamma, cfg.gae_lambda).reshape(-1)[mask]
            ret = torch.as_tensor(adv + grid.reshape(-1)[mask], dtype=torch.float32, device=self.device)
            given = torch.as_tensor(adv, dtype=torch.float32, device=self.device)  # the advantages: nothing to subtract
        else:
            returns = discounted_returns(rewards, ro.ends[:t], ro.bootstrap[:t], ro.valid[:t], cfg.gamma)
            ret = given = torch.as_tensor(returns.reshape(-1)[mask], dtype=torch.float32, device=self.device)
        old_logp = None
        if cfg.clip_range is not None:
            with torch.no_grad():
                old_logp = self.policy.log_prob(self.policy.distribution(obs), raw)

        before = None
        if self.value is not None:
            with torch.no_grad():
                before = self.value(obs).squeeze(-1)
        size = len(obs)
        batch = size if cfg.batch_size == 0 else min(cfg.batch_size, size)
        for _ in range(cfg.n_epochs):
            order = torch.randperm(size) if batch < size else None
            for start in range(0, size - batch + 1, batch):
                # The whole batch (the default), or the next minibatch of a shuffled pass (a remainder of fewer
                # than batch_size steps sits this pass out).
                idx = slice(None) if order is None else order[start:start + batch]
                metrics = self._step(obs[idx], raw[idx], ret[idx], given[idx],
                                     None if old_logp is None else old_logp[idx])
        metrics.update(learning_rate=self.policy_opt.param_groups[0]["lr"], batch_steps=float(mask.sum()),
                       mean_return=float(ret.mean()))
        if before is not None:
            var = float(ret.var())
            metrics["explained_variance"] = 1.0 - float((ret - before).var()) / var if var > 0 else 0.0
        return metrics

    def _step(self, obs: torch.Tensor, raw: torch.Tensor, ret: torch.Tensor, given: torch.Tensor,
              old_logp: torch.Tensor | None) -> dict[str, float]:
        """One policy step and the baseline's steps on (a minibatch of) the batch; ``given``: returns or advantages."""
        cfg = self.cfg
        gae = cfg.gae_lambda < 1.0
        values = None if self.value is None or gae else self.value(obs).squeeze(-1)
        dist = self.policy.distribution(obs)
        logp = self.policy.log_prob(dist, raw)
        entropy = dist.entropy() if self.policy.discrete else dist.entropy().sum(-1)  # of the unsquashed distribution
        # A_t = G_t - V(s_t) (or GAE's), normalised; policy loss = -mean log pi(a_t | s_t) A_t - entropy_coef * mean H
        loss, _ = policy_loss(logp, given, values, entropy, cfg.normalize_returns, cfg.entropy_coef, old_logp,
                              cfg.clip_range)
        self.policy_opt.zero_grad()
        loss.backward()
        params = list(self.policy.parameters())
        norm = grad_norm(params)
        if cfg.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        self.policy_opt.step()
        metrics = {"policy_loss": float(loss.detach()), "entropy": float(entropy.mean().detach()), "grad_norm": norm}
        if old_logp is not None:
            with torch.no_grad():
                ratio = (logp.detach() - old_logp).exp()
                metrics["clip_fraction"] = float(((ratio - 1.0).abs() > cfg.clip_range).float().mean())
        if self.value is not None:
            assert self.value_opt is not None
            for _ in range(cfg.value_gradient_steps):  # value loss = mean (V(s_t) - G_t)^2
                value_loss = ((self.value(obs).squeeze(-1) - ret) ** 2).mean()
                self.value_opt.zero_grad()
                value_loss.backward()
                if cfg.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(self.value.parameters(), cfg.max_grad_norm)
                self.value_opt.step()
            metrics["value_loss"] = float(value_loss.detach())
        return metrics

    # -- checkpoints
    def saved_names(self) -> list[str]:
        """The policy, the baseline and their optimizers."""
        return ["policy", "policy_opt", *(["value", "value_opt"] if self.value is not None else [])]

    def checkpoint_meta(self) -> dict[str, Any]:
        """What wrote the checkpoint, and the steps taken."""
        return {"agent": "reinforce", "num_steps": self.num_steps}

    def training_state(self) -> dict[str, Any]:
        """The copies' state, the observation and episode in progress (between batches, nothing else)."""
        env, exact = env_state(self._envs)
        return {"obs": np.array(self._last_obs), "ep_return": self._episodes.returns.copy(),
                "ep_length": self._episodes.lengths.copy(), "reset_next": self._reset_next.copy(), "envs": env,
                "envs_exact": exact}


class _Rollout:
    """Preallocated (T, N) storage of one batch; grows (doubling) if a batch outlasts it."""

    def __init__(self, n_envs: int, obs_dim: int, discrete: bool, act_dim: int, capacity: int = 512) -> None:
        fields = {"obs": ((obs_dim,), np.float32), "actions": ((), np.int64) if discrete else ((act_dim,), np.float32),
                  "rewards": ((), np.float64), "valid": ((), bool), "ends": ((), bool), "bootstrap": ((), np.float64)}
        for name, (shape, dtype) in fields.items():
            setattr(self, name, np.zeros((capacity, n_envs, *shape), dtype=dtype))
        self.fields, self.t = list(fields), 0

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, valid: np.ndarray) -> None:
        t = self.t
        if t == len(self.obs):
            for name in self.fields:
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        for name, x in zip(self.fields, (obs, actions, rewards, valid, False, 0.0), strict=True):
            getattr(self, name)[t] = x
        self.t += 1
