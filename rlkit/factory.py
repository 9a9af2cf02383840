"""Builds environments and agents from their configs, through plain-dict registries keyed by ``name``."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from rlkit.agents.base import Agent
from rlkit.config import (
    BalancingPoleConfig,
    GymEnvConfig,
    MPEConfig,
    MultiCartPoleConfig,
    PettingZooConfig,
    RoboticArmConfig,
    env_schema,
)
from rlkit.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvFactory:
    """How to make copies of the configured environment, and what counts as solving it."""

    make: Callable[..., gym.Env]
    """``make(render_mode=None)`` returns a new environment (with its TimeLimit); a multi-agent one as a
    :class:`rlkit.envs.adapters.ParallelArrayEnv` (joint arrays, agent axis first)."""
    make_vec: Callable[[int], Any]
    """``make_vec(n)`` returns n copies stepped together (NEXT_STEP autoreset), for native agents: a Gymnasium
    vector env, or for a multi-agent env the array API of :class:`rlkit.envs.adapters.ParallelVectorEnv`."""
    label: str
    """Human-readable name, for logs and summaries."""
    reward_threshold: float | None
    """Mean evaluation return that counts as solved (every agent's, for a multi-agent env)."""
    agents: tuple[str, ...] = ()
    """The agents of a multi-agent env; empty for a single-agent one."""
    success_threshold: float | None = None
    """Evaluation success rate (``info["is_success"]``) that counts as solved, for envs that report success."""


def _physics(cfg: BalancingPoleConfig) -> dict[str, Any]:
    """The physical constants of a (multi-agent) cart-pole config."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(BalancingPoleConfig)
            if f.name not in ("name", "continuous", "max_episode_steps", "reward_threshold")}


def _balancing_pole(cfg: BalancingPoleConfig) -> EnvFactory:
    from rlkit.envs import BALANCING_POLE_ID

    physics = {**_physics(cfg), "continuous": cfg.continuous}

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
    from rlkit.envs.checks import CheckedEnv

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
    own_vector = probe.spec is not None and probe.spec.vector_entry_point is not None
    probe.close()

    def make_vec(n: int) -> gym.vector.VectorEnv:
        # The env's own vector_entry_point when it has one (e.g. CartPole-v1), else copies in one process. Those
        # copies are checked one by one: the vector env packs their rewards into a float array, where a reward
        # such as 'abc' would fail with NumPy's message instead of rlkit's.
        if own_vector:
            return gym.make_vec(cfg.id, num_envs=n, **kwargs)
        copies = itertools.count()
        return gym.make_vec(cfg.id, num_envs=n, wrappers=[lambda env: CheckedEnv(env, cfg.id, copy=next(copies))],
                            **kwargs)

    return EnvFactory(make=make, make_vec=make_vec, label=cfg.id, reward_threshold=threshold)


def _robotic_arm(cfg: RoboticArmConfig) -> EnvFactory:
    from rlkit.envs import ROBOTIC_ARM_ID

    kwargs = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
              if f.name not in ("name", "max_episode_steps", "reward_threshold", "success_threshold")}
    if kwargs["fixed_target"] is not None:
        kwargs["fixed_target"] = tuple(kwargs["fixed_target"])

    def make(render_mode: str | None = None) -> gym.Env:
        return gym.make(ROBOTIC_ARM_ID, render_mode=render_mode, max_episode_steps=cfg.max_episode_steps, **kwargs)

    def make_vec(n: int) -> gym.vector.VectorEnv:
        return gym.make_vec(ROBOTIC_ARM_ID, num_envs=n, vectorization_mode="vector_entry_point",
                            max_episode_steps=cfg.max_episode_steps, **kwargs)

    return EnvFactory(make=make, make_vec=make_vec, label="robotic_arm", reward_threshold=cfg.reward_threshold,
                      success_threshold=cfg.success_threshold)


def _multi_cartpole(cfg: MultiCartPoleConfig) -> EnvFactory:
    from rlkit.envs.adapters import ParallelArrayEnv
    from rlkit.envs.multi_cartpole import MultiCartPoleEnv, MultiCartPoleVectorEnv

    kwargs = dict(num_agents=cfg.num_agents, coupling=cfg.coupling, continuous=cfg.continuous,
                  observe_neighbours=cfg.observe_neighbours, max_episode_steps=cfg.max_episode_steps,
                  **_physics(cfg))

    def make(render_mode: str | None = None) -> gym.Env:
        return ParallelArrayEnv(MultiCartPoleEnv(render_mode=render_mode, **kwargs))

    def make_vec(n: int) -> MultiCartPoleVectorEnv:
        return MultiCartPoleVectorEnv(num_envs=n, **kwargs)

    agents = tuple(f"cart_{i}" for i in range(cfg.num_agents))
    return EnvFactory(make=make, make_vec=make_vec, label="multi_cartpole", reward_threshold=cfg.reward_threshold,
                      agents=agents)


def _parallel(build: Callable[..., Any], label: str, threshold: float | None) -> EnvFactory:
    """A factory for any PettingZoo parallel env built by ``build(render_mode=...)``."""
    from rlkit.envs.adapters import ParallelArrayEnv, ParallelVectorEnv

    try:
        probe = ParallelArrayEnv(build(render_mode=None))
    except ValueError as e:
        raise ConfigError(f"{label} cannot be trained by rlkit's multi-agent learners: {e}") from None
    except TypeError as e:
        raise ConfigError(f"env.kwargs do not fit {label}: {e}") from None
    agents = tuple(probe.possible_agents)
    probe.close()

    def make(render_mode: str | None = None) -> gym.Env:
        return ParallelArrayEnv(build(render_mode=render_mode))

    def make_vec(n: int) -> ParallelVectorEnv:
        return ParallelVectorEnv(lambda: build(render_mode=None), n)

    return EnvFactory(make=make, make_vec=make_vec, label=label, reward_threshold=threshold, agents=agents)


def _mpe(cfg: MPEConfig) -> EnvFactory:
    try:
        module = importlib.import_module(f"mpe2.{cfg.name}")
    except ImportError as e:
        raise ConfigError(f"env=mpe needs the mpe2 package ({e}); pip install mpe2") from None
    kwargs = dict(cfg.kwargs)

    def build(render_mode: str | None = None) -> Any:
        return module.parallel_env(max_cycles=cfg.max_cycles, continuous_actions=cfg.continuous_actions,
                                   render_mode=render_mode, **kwargs)

    return _parallel(build, cfg.name, cfg.reward_threshold)


def _pettingzoo(cfg: PettingZooConfig) -> EnvFactory:
    import pettingzoo

    import rlkit.envs  # noqa: F401  (so rlkit/ ids resolve too)

    kwargs = dict(cfg.kwargs)
    if ":" in cfg.id:
        module_name, _, attr = cfg.id.partition(":")
        try:
            creator = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"env.id={cfg.id!r} cannot be imported: {e}") from None

        def build(render_mode: str | None = None) -> Any:
            return creator(render_mode=render_mode, **kwargs)
    else:
        if cfg.id not in pettingzoo.parallel_registry:
            raise ConfigError(f"env.id={cfg.id!r} is not in PettingZoo's registry; registered: "
                              f"{sorted(pettingzoo.parallel_registry)}, or give a module:function entry point")

        def build(render_mode: str | None = None) -> Any:
            return pettingzoo.make("parallel", cfg.id, render_mode=render_mode, **kwargs)

    return _parallel(build, cfg.id, cfg.reward_threshold)


ENV_BUILDERS: dict[type, Callable[[Any], EnvFactory]] = {
    BalancingPoleConfig: _balancing_pole,
    GymEnvConfig: _gym,
    MultiCartPoleConfig: _multi_cartpole,
    RoboticArmConfig: _robotic_arm,
    MPEConfig: _mpe,
    PettingZooConfig: _pettingzoo,
}


def _joint_control(build: Callable[[Any, EnvFactory, int, bool], Agent]
                   ) -> Callable[[Any, EnvFactory, int, bool], Agent]:
    """A single-agent builder that, given a multi-agent env, lets one policy act for the whole team."""

    def builder(cfg: Any, env: EnvFactory, seed: int, training: bool) -> Agent:
        if not env.agents:
            return build(cfg, env, seed, training)
        from rlkit.agents.joint_control import JointControlAgent
        from rlkit.envs.adapters import JointControl, JointControlVectorEnv

        try:
            probe = JointControl(env.make(None))
        except ValueError as e:
            raise ConfigError(f"agent={cfg.name} cannot control {env.label}'s agents jointly: {e}") from None
        probe.close()
        log.info("agent=%s is a single-agent learner: joint control of %s's %d agents (one policy sees every "
                 "agent's observation and sets every agent's action; reward: the team's mean)",
                 cfg.name, env.label, len(env.agents))
        joint = EnvFactory(make=lambda render_mode=None: JointControl(env.make(render_mode)),
                           make_vec=lambda n: JointControlVectorEnv(env.make_vec(n)),
                           label=f"{env.label} (joint control)", reward_threshold=env.reward_threshold)
        return JointControlAgent(build(cfg, joint, seed, training), probe.joint.split, len(env.agents))

    return builder


@_joint_control
def _sb3(cfg: Any, env: EnvFactory, seed: int, training: bool) -> Agent:
    from rlkit.agents.sb3 import SB3Agent

    return SB3Agent(cfg, lambda: env.make(None), seed=seed, training=training)


@_joint_control
def _reinforce(cfg: Any, env: EnvFactory, seed: int, training: bool) -> Agent:
    from rlkit.agents.reinforce import Reinforce

    return Reinforce(cfg, env.make_vec, seed=seed, training=training)


def _maddpg(cfg: Any, env: EnvFactory, seed: int, training: bool) -> Agent:
    from rlkit.agents.maddpg import MADDPG
    from rlkit.envs.adapters import OneAgentVectorEnv

    if env.agents:
        return MADDPG(cfg, env.make_vec, seed=seed, training=training)
    log.info("%s is a single-agent env: MADDPG trains it as a team of one agent (that is DDPG)", env.label)
    return MADDPG(cfg, lambda n: OneAgentVectorEnv(env.make_vec(n)), seed=seed, training=training,
                  single_agent=True)


AGENT_BUILDERS: dict[str, Callable[[Any, EnvFactory, int, bool], Agent]] = {
    "dqn": _sb3,
    "ppo": _sb3,
    "a2c": _sb3,
    "sac": _sb3,
    "td3": _sb3,
    "reinforce": _reinforce,
    "maddpg": _maddpg,
}


def build_env(cfg: Any) -> EnvFactory:
    """The environment factory for an env config.

    Its envs refuse NaN, infinite or non-numeric outputs and actions of the wrong shape (:mod:`rlkit.envs.checks`).
    """
    from rlkit.envs.checks import CheckedEnv, CheckedVectorEnv

    env = ENV_BUILDERS[env_schema(cfg.name)](cfg)
    return dataclasses.replace(
        env,
        make=lambda render_mode=None: CheckedEnv(env.make(render_mode), env.label),
        make_vec=lambda n: CheckedVectorEnv(env.make_vec(n), env.label),
    )


def build_agent(cfg: Any, env: EnvFactory, seed: int, training: bool = True) -> Agent:
    """An agent for an agent config, checked against the environment's spaces."""
    try:
        builder = AGENT_BUILDERS[cfg.name]
    except KeyError:
        raise ConfigError(f"unknown agent kind {cfg.name!r}; known: {sorted(AGENT_BUILDERS)}") from None
    return builder(cfg, env, seed, training)
