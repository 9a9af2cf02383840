"""Builds environments and agents from their configs, through plain-dict registries keyed by ``name``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from rlkit.agents.base import Agent
from rlkit.config import BalancingPoleConfig, GymEnvConfig
from rlkit.errors import ConfigError


@dataclass(frozen=True)
class EnvFactory:
    """How to make copies of the configured environment, and what counts as solving it."""

    make: Callable[..., gym.Env]
    """``make(render_mode=None)`` returns a new environment (with its TimeLimit)."""
    make_vec: Callable[[int], gym.vector.VectorEnv]
    """``make_vec(n)`` returns n copies stepped together (NEXT_STEP autoreset), for native agents."""
    label: str
    """Human-readable name, for logs and summaries."""
    reward_threshold: float | None


def _balancing_pole(cfg: BalancingPoleConfig) -> EnvFactory:
    from rlkit.envs import BALANCING_POLE_ID

    physics = {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if f.name not in ("name", "max_episode_steps", "reward_threshold")
    }

    def make(render_mode: str | None = None) -> gym.Env:
        return gym.make(
            BALANCING_POLE_ID, render_mode=render_mode, max_episode_steps=cfg.max_episode_steps, **physics
        )

    def make_vec(n: int) -> gym.vector.VectorEnv:
        return gym.make_vec(BALANCING_POLE_ID, num_envs=n, vectorization_mode="vector_entry_point",
                            max_episode_steps=cfg.max_episode_steps, **physics)

    return EnvFactory(make=make, make_vec=make_vec, label="balancing_pole", reward_threshold=cfg.reward_threshold)


def _gym(cfg: GymEnvConfig) -> EnvFactory:
    import rlkit.envs  # noqa: F401  (so rlkit/ ids resolve too)

    kwargs = dict(cfg.kwargs)

    def make(render_mode: str | None = None) -> gym.Env:
        return gym.make(cfg.id, render_mode=render_mode, **kwargs)

    # Make one copy now, so a typo in the id fails before anything else is built.
    try:
        probe = make()
    except (gym.error.Error, ModuleNotFoundError, ImportError) as e:
        raise ConfigError(f"env.id={cfg.id!r} cannot be made by Gymnasium: {e}") from None
    except TypeError as e:
        raise ConfigError(f"env.kwargs do not fit {cfg.id!r}: {e}") from None
    threshold = cfg.reward_threshold
    if threshold is None and probe.spec is not None:
        threshold = probe.spec.reward_threshold
    probe.close()
    def make_vec(n: int) -> gym.vector.VectorEnv:
        # The env's own vector_entry_point when it has one (e.g. CartPole-v1), else copies in one process.
        return gym.make_vec(cfg.id, num_envs=n, **kwargs)

    return EnvFactory(make=make, make_vec=make_vec, label=cfg.id, reward_threshold=threshold)


ENV_BUILDERS: dict[str, Callable[[Any], EnvFactory]] = {
    "balancing_pole": _balancing_pole,
    "gym": _gym,
}


def _sb3(cfg: Any, env: EnvFactory, seed: int, training: bool) -> Agent:
    from rlkit.agents.sb3 import SB3Agent

    return SB3Agent(cfg, lambda: env.make(None), seed=seed, training=training)


def _reinforce(cfg: Any, env: EnvFactory, seed: int, training: bool) -> Agent:
    from rlkit.agents.reinforce import Reinforce

    return Reinforce(cfg, env.make_vec, seed=seed, training=training)


AGENT_BUILDERS: dict[str, Callable[[Any, EnvFactory, int, bool], Agent]] = {
    "dqn": _sb3,
    "reinforce": _reinforce,
}


def build_env(cfg: Any) -> EnvFactory:
    """The environment factory for an env config."""
    try:
        builder = ENV_BUILDERS[cfg.name]
    except KeyError:
        raise ConfigError(f"unknown environment kind {cfg.name!r}; known: {sorted(ENV_BUILDERS)}") from None
    return builder(cfg)


def build_agent(cfg: Any, env: EnvFactory, seed: int, training: bool = True) -> Agent:
    """An agent for an agent config, checked against the environment's spaces."""
    try:
        builder = AGENT_BUILDERS[cfg.name]
    except KeyError:
        raise ConfigError(f"unknown agent kind {cfg.name!r}; known: {sorted(AGENT_BUILDERS)}") from None
    return builder(cfg, env, seed, training)
