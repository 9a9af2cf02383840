"""stable-baselines3 algorithms behind rlkit's Agent interface, emitting rlkit's events (so the same TensorBoard tags).

Checkpoints are rlkit's safetensors files, never SB3's zip (it unpickles): the model is rebuilt from the run's config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.save_util import recursive_getattr
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from rlkit.agents.base import Agent
from rlkit.agents.networks import activation_fn, refuse_diverging_steps
from rlkit.callbacks import Callback, Episode
from rlkit.envs.adapters import DiscretizedActions
from rlkit.envs.state import env_state, generator_from_state, set_env_state
from rlkit.errors import ConfigError, EnvWorkerDied

log = logging.getLogger(__name__)

# Action spaces each SB3 algorithm accepts (others: any), checked before SB3 is asked to build anything.
SUPPORTED_ACTIONS: dict[str, tuple[type, ...]] = {"DQN": (spaces.Discrete,), "SAC": (spaces.Box,), "TD3": (spaces.Box,)}

# Schema fields that are rlkit's, not keyword arguments of the SB3 constructor.
_RLKIT_FIELDS = {"name", "algo", "policy", "n_envs", "net_arch", "activation_fn", "device", "action_bins",
                 "action_noise_std"}


def _number_or_text(value: Any) -> Any:
    """SB3 takes e.g. ``ent_coef`` as a float or as text ("auto", "auto_0.1"): a numeric text becomes a float."""
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _saved_name(sb3_name: str) -> str:
    """The checkpoint name of one of SB3's ``get_parameters()`` entries ("policy.optimizer" -> "optimizer")."""
    return sb3_name.removeprefix("policy.").replace(".", "_")


# ---------------------------------------------------------------------------------------------- SB3's private state
_BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _counters(model: BaseAlgorithm) -> list[str]:
    """SB3's counters and schedule positions that change as it trains (DQN's exploration rate too)."""
    return ["num_timesteps", "_n_updates", "_episode_num", "_current_progress_remaining",
            *(["_n_calls", "exploration_rate"] if isinstance(model, stable_baselines3.DQN) else [])]


def private_attributes(model: BaseAlgorithm) -> list[str]:
    """Every SB3 attribute (dotted path) that exact resume reads and writes; none of them is SB3's public API."""
    # tests/agents/test_sb3_algorithms.py checks each on every algorithm: an SB3 release that moves one fails there.
    names = [*_counters(model), "_last_obs", "_last_episode_starts", "action_space._np_random",
             "logger.name_to_value", "logger.name_to_count", "logger.name_to_excluded"]
    if getattr(model, "replay_buffer", None) is not None:
        names += [f"replay_buffer.{k}" for k in ("pos", "full", "buffer_size", *_BUFFER_ARRAYS)]
    return names


# ---------------------------------------------------------------------------------------------- events
class _EventAdapter(BaseCallback):
    """SB3 callback -> rlkit events: a step, and an episode event for each episode Monitor closed.

    It stops SB3 at ``total_steps``, which SB3 alone passes by up to a rollout (``train_freq`` or ``n_steps``).
    """

    def __init__(self, callback: Callback, total_steps: int) -> None:
        super().__init__()
        self.callback, self.total_steps = callback, total_steps

    def _on_step(self) -> bool:
        for ep in (info["episode"] for info in self.locals["infos"] if "episode" in info):
            self.callback.on_episode_end(Episode(self.num_timesteps, float(ep["r"]), int(ep["l"])))
        return self.callback.on_step(self.num_timesteps) and self.num_timesteps < self.total_steps

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
            wanted = key.startswith("train/") or key == "rollout/exploration_rate"
            if wanted and "tensorboard" not in key_excluded.get(key, ()):
                with contextlib.suppress(TypeError, ValueError):  # not a number
                    metrics[key.split("/", 1)[1]] = float(value)
        if metrics:
            self.callback.on_update(step, metrics)

    def close(self) -> None:
        """Nothing to close."""


class RemoteVecEnv(VecEnv):
    """SB3's VecEnv over a Gymnasium vector env whose copies step elsewhere (:class:`rlkit.envs.remote.RayVectorEnv`).

    SB3 resets a copy in the step that ends its episode, the last observation in ``info["terminal_observation"]``;
    the vector env resets it on the next step (NEXT_STEP), so this resets the copies that ended at once, by mask.
    The infos are each copy's own (``copy_infos``): Monitor's episode statistics reach SB3 and rlkit's events.
    """

    def __init__(self, venv: Any) -> None:
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: Any = None

    def reset(self) -> np.ndarray:  # noqa: D102  (the base class's)
        seeds = [None if s is None else int(s) for s in self._seeds]
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:  # noqa: D102  (the base class's)
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:  # noqa: D102
        obs, rewards, terminated, truncated, _ = self.venv.step(self._actions)
        infos = [dict(info) for info in self.venv.copy_infos]
        dones = terminated | truncated
        if dones.any():
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = obs[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            obs, _ = self.venv.reset(options={"reset_mask": dones})
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:  # noqa: D102  (the base class's)
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:  # noqa: D102  (the base class's)
        if attr_name == "render_mode":
            return [None] * len(self._get_indices(indices))
        raise AttributeError(f"the copies step on Ray actors: their attribute {attr_name!r} is not readable here")

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:  # noqa: D102
        raise AttributeError(f"the copies step on Ray actors: their attribute {attr_name!r} cannot be set here")

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:  # noqa: D102
        raise AttributeError(f"the copies step on Ray actors: their method {method_name!r} cannot be called here")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:  # noqa: D102
        return [wrapper_class is Monitor] * len(self._get_indices(indices))  # SB3Agent's makers add a Monitor


class SB3Agent(Agent):
    """Any stable-baselines3 algorithm, chosen by ``cfg.algo``; the config's other fields go to its constructor.

    ``seed`` seeds SB3 and the copies (``seed + i``); ``training=False`` builds a model only for acting;
    ``subprocesses``: the training copies step in SB3's ``SubprocVecEnv`` (``env.vectorization=async``); ``remote``:
    ``remote(make, n)`` makes a vector env of n copies elsewhere, for :class:`RemoteVecEnv` (``ray``).
    """

    def __init__(self, cfg: Any, make_env: Callable[[], gym.Env], seed: int, training: bool = True,
                 subprocesses: bool = False, remote: Callable[[Callable[[], gym.Env], int], Any] | None = None) -> None:
        algo_cls = getattr(stable_baselines3, cfg.algo, None)
        if algo_cls is None:
            raise ConfigError(f"agent.algo={cfg.algo!r} is not a stable-baselines3 algorithm")
        self.cfg = cfg
        self._discretized: DiscretizedActions | None = None
        supported = SUPPORTED_ACTIONS.get(cfg.algo, (spaces.Space,))
        probe = make_env()
        if not isinstance(probe.action_space, supported) and spaces.Discrete in supported and \
                getattr(cfg, "action_bins", 0) >= 2:  # agent.algo=DQN on another schema has no action_bins
            with contextlib.suppress(ValueError):  # not a bounded Box: refused below
                self._discretized = DiscretizedActions(probe, cfg.action_bins)
        probe.close()
        if self._discretized is not None:
            log.info("agent=%s (%s) needs discrete actions: %s discretised into %d bins per dimension, %s",
                     cfg.name, cfg.algo, probe.action_space, cfg.action_bins, self._discretized.action_space)
        bins = cfg.action_bins if self._discretized is not None else 0
        def monitored() -> gym.Env:
            return Monitor(DiscretizedActions(make_env(), bins) if bins else make_env())

        n = cfg.n_envs if training else 1
        if remote is not None and training:
            venv: VecEnv = RemoteVecEnv(remote(monitored, n))
        else:
            venv = (SubprocVecEnv if subprocesses and training else DummyVecEnv)([monitored] * n)
        self.observation_space, self.action_space = venv.observation_space, venv.action_space
        if not isinstance(self.action_space, supported):
            venv.close()
            raise ConfigError(f"agent={cfg.name} ({cfg.algo}) needs a {' or '.join(s.__name__ for s in supported)} "
                              f"action space, but the environment has {self.action_space}"
                              + (", which cannot be discretised (only bounded 1-D Box spaces can)"
                                 if spaces.Discrete in supported else "") + "; choose an agent for this action space.")
        kwargs = {k: _number_or_text(v) for k, v in dataclasses.asdict(cfg).items() if k not in _RLKIT_FIELDS}
        if not training and "buffer_size" in kwargs:
            kwargs["buffer_size"] = 1  # acting only: no replay memory needed
        if getattr(cfg, "action_noise_std", 0.0) > 0 and isinstance(self.action_space, spaces.Box):
            from stable_baselines3.common.noise import NormalActionNoise

            half_range = (self.action_space.high - self.action_space.low) / 2.0
            kwargs["action_noise"] = NormalActionNoise(np.zeros_like(half_range), cfg.action_noise_std * half_range)
        policy_kwargs = {"net_arch": list(cfg.net_arch), "activation_fn": activation_fn(cfg.activation_fn)}
        self.model = algo_cls(cfg.policy, venv, seed=seed, device=cfg.device, policy_kwargs=policy_kwargs, verbose=0,
                              **kwargs)
        for name in self.model.get_parameters():
            part = recursive_getattr(self.model, name)
            if isinstance(part, torch.optim.Optimizer):
                refuse_diverging_steps(part, f"{cfg.algo}'s {_saved_name(name)}", lambda: int(self.model.num_timesteps))

    def learn(self, total_steps: int, callback: Callback) -> None:
        """Run SB3's ``learn`` with rlkit's events attached (continuing from a training state if one was loaded)."""
        logger = Logger(folder=None, output_formats=[_UpdateForwarder(callback)])
        self.model.set_logger(logger)
        model, resume, self._resume = self.model, self._resume, None
        if resume is not None:  # SB3's counters, logger, replay buffer and env copies, where training_state read them
            for k, v in resume["counters"].items():
                setattr(model, k, v)
            model.action_space._np_random = generator_from_state(resume["action_space_rng"])
            logger.name_to_value.update(resume["logger"]["values"])
            logger.name_to_count.update(resume["logger"]["counts"])
            logger.name_to_excluded.update({k: tuple(v) for k, v in resume["logger"]["excluded"].items()})
            if (buffer := resume["buffer"]) is not None:
                rb = model.replay_buffer
                rb.pos, rb.full = int(buffer["pos"]), bool(buffer["full"])
                for k in set(_BUFFER_ARRAYS) & buffer.keys():
                    getattr(rb, k)[:len(buffer[k])] = buffer[k]
            if resume["envs_exact"]:
                set_env_state(model.get_env(), resume["envs"])
                model._last_obs, model._last_episode_starts = resume["last_obs"], resume["last_episode_starts"]
            else:
                model._last_obs = None  # SB3 resets the copies: new episodes
        # Continuing, SB3 counts total_timesteps from num_timesteps: the same schedules as one long run.
        try:
            model.learn(total_timesteps=total_steps - model.num_timesteps,
                        callback=_EventAdapter(callback, total_steps), progress_bar=False,
                        reset_num_timesteps=resume is None)
        except (EOFError, ConnectionError) as e:  # SubprocVecEnv's pipe to a copy whose process ended
            if not isinstance(model.get_env(), SubprocVecEnv):
                raise
            raise EnvWorkerDied(f"a copy's process (SB3's SubprocVecEnv) died mid-run ({type(e).__name__})") from None

    def training_state(self) -> dict[str, Any]:
        """What SB3 needs beyond the weights to continue exactly (counters, logger, replay buffer, env copies...)."""
        env, exact = env_state(self.model.get_env())
        model, logger = self.model, self.model.logger
        state: dict[str, Any] = {
            "counters": {k: getattr(model, k) for k in _counters(model)},
            "last_obs": model._last_obs, "last_episode_starts": model._last_episode_starts,
            "action_space_rng": model.action_space.np_random.bit_generator.state,
            "logger": {"values": dict(logger.name_to_value), "counts": dict(logger.name_to_count),
                       "excluded": {k: list(v) for k, v in logger.name_to_excluded.items()}},
            "envs": env, "envs_exact": exact, "buffer": None,
        }
        rb = getattr(model, "replay_buffer", None)
        if rb is not None:
            n = rb.buffer_size if rb.full else rb.pos
            state["buffer"] = {"pos": rb.pos, "full": rb.full, **{k: getattr(rb, k)[:n].copy() for k in _BUFFER_ARRAYS
                                                                   if getattr(rb, k) is not None}}
        return state

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions from SB3's ``predict`` for a batch of observations."""
        actions, _ = self.model.predict(obs, deterministic=deterministic)
        if self._discretized is not None:  # the env takes the continuous values the indices stand for
            return self._discretized.action(actions)
        return np.asarray(actions)

    # -- checkpoints: SB3's own get_parameters(), under format 2's names, and SAC's learned entropy weight
    def checkpoint_meta(self) -> dict[str, Any]:
        """What wrote the checkpoint, and SB3's step count."""
        return {"agent": self.cfg.name, "algo": self.cfg.algo, "num_timesteps": int(self.model.num_timesteps)}

    def get_parameters(self) -> dict[str, Any]:
        """The policy's and the optimizers' state dicts (SB3's ``get_parameters``), and SAC's ``log_ent_coef``."""
        params = {_saved_name(k): v for k, v in self.model.get_parameters().items()}
        if isinstance(getattr(self.model, "log_ent_coef", None), torch.Tensor):
            params["log_ent_coef"] = self.model.log_ent_coef
        return params

    def set_parameters(self, params: dict[str, Any]) -> None:
        """Load what :meth:`get_parameters` returns, through SB3's ``set_parameters``."""
        self.model.set_parameters({k: params[_saved_name(k)] for k in self.model.get_parameters()})
        if "log_ent_coef" in params:
            with torch.no_grad():
                self.model.log_ent_coef.copy_(params["log_ent_coef"])
