"""stable-baselines3 algorithms behind rlkit's Agent interface.

The adapter turns SB3's callback calls into rlkit's events (one episode event per finished episode, from
SB3's ``Monitor``; update metrics from SB3's logger), so SB3 agents log the same TensorBoard tags as
native ones. Checkpoints hold the policy's weights and optimizer state as tensors: SB3's own zip format
unpickles, so it is never used; the model is rebuilt from the run's config and the weights loaded into it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from rlkit.agents.base import Agent
from rlkit.agents.networks import refuse_diverging_steps
from rlkit.callbacks import Callback, Episode
from rlkit.envs.adapters import DiscretizedActions
from rlkit.envs.state import env_state, generator_from_state, set_env_state
from rlkit.errors import ConfigError, RunDirError
from rlkit.files import load_checkpoint, optimizer_from_tensors, optimizer_to_tensors, save_checkpoint

ACTIVATION_FNS: dict[str, type[torch.nn.Module]] = {
    "relu": torch.nn.ReLU,
    "tanh": torch.nn.Tanh,
    "elu": torch.nn.ELU,
    "leaky_relu": torch.nn.LeakyReLU,
    "gelu": torch.nn.GELU,
    "silu": torch.nn.SiLU,
}

# Action spaces each SB3 algorithm accepts, checked before SB3 is asked to build anything.
SUPPORTED_ACTIONS: dict[str, tuple[type[spaces.Space[Any]], ...]] = {
    "DQN": (spaces.Discrete,),
    "SAC": (spaces.Box,),
    "TD3": (spaces.Box,),
}

# Schema fields that are rlkit's, not keyword arguments of the SB3 constructor.
_RLKIT_FIELDS = {"name", "algo", "policy", "n_envs", "net_arch", "activation_fn", "device", "action_bins",
                 "action_noise_std"}
_CHECKPOINT_FORMAT = 2


def _number_or_text(value: Any) -> Any:
    """SB3 takes e.g. ``ent_coef`` as a float or as text ("auto", "auto_0.1"): a numeric text becomes a float."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _optimizers(model: Any) -> dict[str, torch.optim.Optimizer]:
    """Every optimizer of an SB3 model, by a stable name.

    One for DQN, PPO and A2C; the actor's, the critic's (and the entropy coefficient's) for SAC and TD3.
    """
    policy = model.policy
    found = {}
    if getattr(policy, "optimizer", None) is not None:
        found["optimizer"] = policy.optimizer
    for part in ("actor", "critic"):
        optimizer = getattr(getattr(policy, part, None), "optimizer", None)
        if optimizer is not None:
            found[f"{part}_optimizer"] = optimizer
    if getattr(model, "ent_coef_optimizer", None) is not None:
        found["ent_coef_optimizer"] = model.ent_coef_optimizer
    return found

log = logging.getLogger(__name__)


class _EventAdapter(BaseCallback):
    """SB3 callback -> rlkit events: a step, and an episode event for each episode Monitor closed."""

    def __init__(self, callback: Callback) -> None:
        super().__init__()
        self.callback = callback

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            ep = info.get("episode")
            if ep is not None:
                self.callback.on_episode_end(
                    Episode(step=self.num_timesteps, reward=float(ep["r"]), length=int(ep["l"]))
                )
        return self.callback.on_step(self.num_timesteps)

    def _on_rollout_start(self) -> None:
        # Between a training phase and the next collection: nothing is in flight but what training_state holds.
        self.callback.on_safe_point()


class _UpdateForwarder(KVWriter):
    """SB3 logger output -> rlkit ``on_update`` events, for the ``train/`` metrics and exploration rate."""

    def __init__(self, callback: Callback) -> None:
        self.callback = callback

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        """Forward the numeric training metrics of one SB3 logger dump."""
        metrics: dict[str, float] = {}
        for key, value in key_values.items():
            if key.startswith("train/") or key == "rollout/exploration_rate":
                if "tensorboard" in key_excluded.get(key, ()):
                    continue
                try:
                    metrics[key.split("/", 1)[1]] = float(value)
                except (TypeError, ValueError):
                    continue
        if metrics:
            self.callback.on_update(step, metrics)

    def close(self) -> None:
        """Nothing to close: the events go to rlkit's callbacks."""


class SB3Agent(Agent):
    """Any stable-baselines3 algorithm, chosen by the config's ``algo``.

    Args:
        cfg: The agent's config (e.g. :class:`rlkit.config.DQNConfig`); fields other than rlkit's own are
            passed to the SB3 constructor.
        make_env: Builds one training environment.
        seed: Seeds SB3 (Python, NumPy, torch) and the environment copies (``seed + i``).
        training: False builds a model only for acting (a minimal replay buffer, one env copy).
    """

    def __init__(self, cfg: Any, make_env: Callable[[], gym.Env], seed: int, training: bool = True) -> None:
        algo_cls = getattr(stable_baselines3, cfg.algo, None)
        if algo_cls is None:
            raise ConfigError(f"agent.algo={cfg.algo!r} is not a stable-baselines3 algorithm")
        self.cfg = cfg
        self._discretized: DiscretizedActions | None = None
        supported = SUPPORTED_ACTIONS.get(cfg.algo)
        probe = make_env()
        if supported is not None and not isinstance(probe.action_space, supported) and \
                spaces.Discrete in supported and getattr(cfg, "action_bins", 0) >= 2:
            try:
                self._discretized = DiscretizedActions(probe, cfg.action_bins)
            except ValueError:
                pass  # not a bounded Box: refused below
            else:
                log.info("agent=%s (%s) needs discrete actions: %s discretised into %d bins per dimension, "
                         "%s", cfg.name, cfg.algo, probe.action_space, cfg.action_bins,
                         self._discretized.action_space)
                bare_make = make_env

                def make_env() -> gym.Env:
                    return DiscretizedActions(bare_make(), cfg.action_bins)
        probe.close()
        n_envs = cfg.n_envs if training else 1
        venv = DummyVecEnv([lambda: Monitor(make_env()) for _ in range(n_envs)])
        self.observation_space = venv.observation_space
        self.action_space = venv.action_space
        if supported is not None and not isinstance(self.action_space, supported):
            venv.close()
            raise ConfigError(
                f"agent={cfg.name} ({cfg.algo}) needs a {' or '.join(s.__name__ for s in supported)} action "
                f"space, but the environment has {self.action_space}"
                + (", which cannot be discretised (only bounded 1-D Box spaces can)"
                   if spaces.Discrete in supported else "")
                + "; choose an agent for this action space."
            )
        kwargs = {k: _number_or_text(v) for k, v in dataclasses.asdict(cfg).items() if k not in _RLKIT_FIELDS}
        if not training and "buffer_size" in kwargs:
            kwargs["buffer_size"] = 1  # acting only: no replay memory needed
        if getattr(cfg, "action_noise_std", 0.0) > 0 and isinstance(self.action_space, spaces.Box):
            from stable_baselines3.common.noise import NormalActionNoise

            half_range = (self.action_space.high - self.action_space.low) / 2.0
            kwargs["action_noise"] = NormalActionNoise(np.zeros_like(half_range), cfg.action_noise_std * half_range)
        policy_kwargs = {"net_arch": list(cfg.net_arch), "activation_fn": ACTIVATION_FNS[cfg.activation_fn]}
        self.model = algo_cls(
            cfg.policy, venv, seed=seed, device=cfg.device, policy_kwargs=policy_kwargs, verbose=0, **kwargs
        )
        for name, optimizer in _optimizers(self.model).items():
            refuse_diverging_steps(optimizer, f"{cfg.algo}'s {name}", lambda: int(self.model.num_timesteps))
        self._resume: dict[str, Any] | None = None

    def learn(self, total_steps: int, callback: Callback) -> None:
        """Run SB3's ``learn`` with rlkit's events attached (continuing from a training state if one was loaded)."""
        logger = Logger(folder=None, output_formats=[_UpdateForwarder(callback)])
        self.model.set_logger(logger)
        resume, self._resume = self._resume, None
        if resume is not None:
            self._restore(resume, logger)
        # Continuing, SB3 counts total_timesteps from num_timesteps: the same schedules as one long run.
        self.model.learn(total_timesteps=total_steps - self.model.num_timesteps, callback=_EventAdapter(callback),
                         progress_bar=False, reset_num_timesteps=resume is None)

    # SB3 attributes that change as it trains, beyond the weights and the replay buffer.
    _COUNTERS = ("num_timesteps", "_n_updates", "_episode_num", "_n_calls", "exploration_rate",
                 "_current_progress_remaining")
    _BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")

    def training_state(self) -> dict[str, Any]:
        """The replay buffer, counters, last observations, logger, action-space generator and env copies."""
        m = self.model
        env, exact = env_state(m.get_env())
        logger = m.logger
        state: dict[str, Any] = {
            "counters": {k: getattr(m, k) for k in self._COUNTERS if hasattr(m, k)},
            "last_obs": m._last_obs, "last_episode_starts": m._last_episode_starts,
            "action_space_rng": m.action_space.np_random.bit_generator.state,
            "logger": {"values": dict(logger.name_to_value), "counts": dict(logger.name_to_count),
                       "excluded": {k: list(v) for k, v in logger.name_to_excluded.items()}},
            "envs": env, "envs_exact": exact, "buffer": None,
        }
        rb = getattr(m, "replay_buffer", None)
        if rb is not None:
            n = rb.buffer_size if rb.full else rb.pos
            state["buffer"] = {"pos": rb.pos, "full": rb.full,
                               **{k: getattr(rb, k)[:n].copy() for k in self._BUFFER_ARRAYS
                                  if getattr(rb, k, None) is not None}}
        return state

    def load_training_state(self, state: dict[str, Any]) -> None:
        """The next ``learn`` continues from ``state`` (weights and optimizers come from :meth:`load`)."""
        self._resume = state

    def _restore(self, state: dict[str, Any], logger: Logger) -> None:
        m = self.model
        for k, v in state["counters"].items():
            setattr(m, k, v)
        m.action_space._np_random = generator_from_state(state["action_space_rng"])
        logger.name_to_value.update(state["logger"]["values"])
        logger.name_to_count.update(state["logger"]["counts"])
        logger.name_to_excluded.update({k: tuple(v) for k, v in state["logger"]["excluded"].items()})
        buffer = state["buffer"]
        if buffer is not None:
            rb = m.replay_buffer
            rb.pos, rb.full = int(buffer["pos"]), bool(buffer["full"])
            for k in self._BUFFER_ARRAYS:
                if k in buffer:
                    getattr(rb, k)[:len(buffer[k])] = buffer[k]
        if state["envs_exact"]:
            set_env_state(m.get_env(), state["envs"])
            m._last_obs = state["last_obs"]
            m._last_episode_starts = state["last_episode_starts"]
        else:
            m._last_obs = None  # SB3 resets the copies: new episodes

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions from SB3's ``predict`` for a batch of observations."""
        actions, _ = self.model.predict(obs, deterministic=deterministic)
        if self._discretized is not None:  # the env takes the continuous values the indices stand for
            return self._discretized.action(actions)
        return np.asarray(actions)

    def save(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        """Policy weights and optimizer state as tensors, the rest as JSON metadata."""
        policy = self.model.policy
        tensors = {f"policy.{k}": v for k, v in policy.state_dict().items()}
        groups = {}
        for name, optimizer in _optimizers(self.model).items():
            opt_tensors, groups[name] = optimizer_to_tensors(optimizer, name)
            tensors.update(opt_tensors)
        if isinstance(getattr(self.model, "log_ent_coef", None), torch.Tensor):  # SAC's learned entropy weight
            tensors["log_ent_coef"] = self.model.log_ent_coef.detach().clone()
        full_meta = {
            "format": _CHECKPOINT_FORMAT,
            "agent": self.cfg.name,
            "algo": self.cfg.algo,
            "num_timesteps": int(self.model.num_timesteps),
            "optimizers": groups,
            **(meta or {}),
        }
        save_checkpoint(path, tensors, full_meta)

    def load(self, path: Path) -> dict[str, Any]:
        """Load weights and optimizer state; refuses checkpoints of another algorithm or shape."""
        tensors, meta = load_checkpoint(path)
        if meta.get("algo") != self.cfg.algo:
            raise RunDirError(
                f"checkpoint {path} was written by {meta.get('algo') or meta.get('agent')!r}, but the run's config "
                f"builds {self.cfg.algo!r}"
            )
        policy = self.model.policy
        weights = {k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")}
        # Format 1 (DQN only) had one optimizer under "optimizer_param_groups".
        groups = meta.get("optimizers") or {"optimizer": meta.get("optimizer_param_groups")}
        try:
            policy.load_state_dict(weights)
            for name, optimizer in _optimizers(self.model).items():
                optimizer_from_tensors(optimizer, tensors, groups[name], name)
            if "log_ent_coef" in tensors:
                with torch.no_grad():
                    self.model.log_ent_coef.copy_(tensors["log_ent_coef"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise RunDirError(f"checkpoint {path} does not fit the run's network ({e})") from None
        return meta
