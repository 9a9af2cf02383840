"""Environments and agents from their configs.

``ENVS`` and ``AGENTS`` map a config's ``name`` to its schema and builder (agent builders import torch only when
called). The schemas live in rlkit.env_schemas and rlkit.agents.config.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import itertools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlkit.agents.config import AGENT_SCHEMAS, memory_needed
from rlkit.env_schemas import (
    COPIES_KEYS,
    ENV_SCHEMAS,
    MPE_SCENARIOS,
    BalancingPoleConfig,
    GymEnvConfig,
    MPEConfig,
    MultiCartPoleConfig,
    PettingZooConfig,
    RoboticArmConfig,
)
from rlkit.envs import BALANCING_POLE_ID, ROBOTIC_ARM_ID  # registers rlkit/ ids with Gymnasium and PettingZoo
from rlkit.errors import ConfigError

if TYPE_CHECKING:  # the agent modules import torch; composing a config must not
    from rlkit.agents.base import Agent

log = logging.getLogger(__name__)


def agent_teams(agents: tuple[str, ...], declared: dict[str, list[str]], label: str) -> dict[str, tuple[str, ...]]:
    """Every agent's team: ``declared`` (env.teams), else by name prefix (``adversary_0`` -> ``adversary``)."""
    if not declared:
        teams: dict[str, list[str]] = {}
        for a in agents:
            prefix, _, number = a.rpartition("_")
            teams.setdefault(prefix if prefix and number.isdigit() else a, []).append(a)
        return {t: tuple(members) for t, members in teams.items()}
    seen: dict[str, str] = {}
    for team, members in declared.items():
        if team in agents:
            raise ConfigError(f"env.teams.{team}: a team cannot share its name with an agent; name it otherwise")
        for a in members:
            if a not in agents:
                close = difflib.get_close_matches(str(a), agents, n=1)
                hint = f" Did you mean {close[0]}?" if close else ""
                raise ConfigError(f"env.teams.{team} names {a!r}, which is not an agent of {label}; its agents: "
                                  f"{', '.join(agents)}.{hint}")
            if a in seen:
                raise ConfigError(f"{a} is in two teams (env.teams.{seen[a]} and env.teams.{team}); put it in one")
            seen[a] = team
    left = [a for a in agents if a not in seen]
    if left:
        raise ConfigError(f"env.teams leaves out {', '.join(left)}: put every agent of {label} in one team")
    return {t: tuple(str(a) for a in members) for t, members in declared.items() if members}


@dataclass(frozen=True)
class EnvFactory:
    """How to make copies of the configured environment, and what counts as solving it."""

    make: Callable[..., gym.Env]
    """``make(render_mode=None)``: a new env (with its TimeLimit); a multi-agent one as a ``ParallelArrayEnv``."""
    make_vec: Callable[[int], Any]
    """``make_vec(n)``: n copies, NEXT_STEP autoreset: a vector env, or a multi-agent ``ParallelVectorEnv``'s API."""
    label: str
    """Human-readable name, for logs and summaries."""
    reward_threshold: float | None
    """Mean evaluation return that counts as solved (every agent's, for a multi-agent env)."""
    agents: tuple[str, ...] = ()
    """The agents of a multi-agent env; empty for a single-agent one."""
    success_threshold: float | None = None
    """Evaluation success rate (``info["is_success"]``) that counts as solved, for envs that report success."""
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """A multi-agent env's teams: their agents, in the env's order."""
    scored_team: str | None = None
    """The team whose mean return solving and the best checkpoint go by (competitive); None: every agent's."""
    vectorization: str = "sync"
    """Where ``make_vec``'s copies step: sync (this process), async (subprocesses) or ray (Ray actors)."""
    make_remote: Callable[[Callable[[], gym.Env], int], Any] | None = None
    """With ray: ``make_remote(make, n)``, n copies of ``make()`` on Ray actors (for agents that wrap each copy)."""
    make_vec_here: Callable[[int], Any] | None = None
    """With async or ray: ``make_vec`` as sync builds it, for an agent built only to act (its probe of the spaces)."""


def _rlkit(cfg: BalancingPoleConfig | MultiCartPoleConfig | RoboticArmConfig) -> EnvFactory:
    """One of rlkit's envs, with its own batched vector env; ``max_episode_steps`` goes to ``gym.make``."""
    kwargs = {k: v for k, v in dataclasses.asdict(cfg).items()
              if k not in ("name", "reward_threshold", "success_threshold", *COPIES_KEYS)}
    if isinstance(cfg, MultiCartPoleConfig):
        from rlkit.envs.adapters import ParallelArrayEnv
        from rlkit.envs.multi_cartpole import MultiCartPoleEnv, MultiCartPoleVectorEnv

        return EnvFactory(make=lambda render_mode=None: ParallelArrayEnv(MultiCartPoleEnv(render_mode, **kwargs)),
                          make_vec=lambda n: MultiCartPoleVectorEnv(num_envs=n, **kwargs), label=cfg.name,
                          reward_threshold=cfg.reward_threshold,
                          agents=tuple(f"cart_{i}" for i in range(cfg.num_agents)))
    env_id = BALANCING_POLE_ID if isinstance(cfg, BalancingPoleConfig) else ROBOTIC_ARM_ID
    return EnvFactory(make=lambda render_mode=None: gym.make(env_id, render_mode=render_mode, **kwargs),
                      make_vec=lambda n: gym.make_vec(env_id, n, vectorization_mode="vector_entry_point", **kwargs),
                      label=cfg.name, reward_threshold=cfg.reward_threshold,
                      success_threshold=getattr(cfg, "success_threshold", None))


def _gym(cfg: GymEnvConfig) -> EnvFactory:
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
    spec = probe.spec
    probe.close()
    threshold = spec.reward_threshold if cfg.reward_threshold is None and spec is not None else cfg.reward_threshold

    def make_vec(n: int) -> gym.vector.VectorEnv:
        # The env's own vector_entry_point when it has one (e.g. CartPole-v1), else copies in one process. Those
        # copies are checked one by one: the vector env packs their rewards into a float array, where a reward
        # such as 'abc' would fail with NumPy's message instead of rlkit's.
        if spec is not None and spec.vector_entry_point is not None:
            return gym.make_vec(cfg.id, num_envs=n, **kwargs)
        copies = itertools.count()
        return gym.make_vec(cfg.id, num_envs=n, wrappers=[lambda env: CheckedEnv(env, cfg.id, copy=next(copies))],
                            **kwargs)

    return EnvFactory(make=make, make_vec=make_vec, label=cfg.id, reward_threshold=threshold)


def _parallel(build: Callable[..., Any], label: str, threshold: float | None) -> EnvFactory:
    """A factory for any PettingZoo parallel env built by ``build(render_mode=...)``."""
    from rlkit.envs.adapters import ParallelArrayEnv, ParallelVectorEnv

    try:
        probe = ParallelArrayEnv(build(render_mode=None))
    except ValueError as e:
        raise ConfigError(f"{label} cannot be trained by rlkit's multi-agent learners: {e}") from None
    except TypeError as e:
        raise ConfigError(f"env.kwargs do not fit {label}: {e}") from None
    probe.close()
    return EnvFactory(make=lambda render_mode=None: ParallelArrayEnv(build(render_mode=render_mode)),
                      make_vec=lambda n: ParallelVectorEnv(lambda: build(render_mode=None), n), label=label,
                      reward_threshold=threshold, agents=tuple(probe.possible_agents))


def _mpe(cfg: MPEConfig) -> EnvFactory:
    from rlkit.envs.particle_worlds import SCENARIOS as BATCHED_MPE

    if cfg.batched and cfg.name in BATCHED_MPE:
        return _particle_worlds(cfg)
    if cfg.batched:
        log.info("%s has no batched version (those of %s have): mpe2 steps its copies one at a time",
                 cfg.name, ", ".join(BATCHED_MPE))
    try:
        module = importlib.import_module(f"mpe2.{cfg.name}")
    except ImportError as e:
        raise ConfigError(f"env=mpe needs the mpe2 package ({e}); pip install mpe2") from None
    return _parallel(functools.partial(module.parallel_env, max_cycles=cfg.max_cycles,
                                       continuous_actions=cfg.continuous_actions, **cfg.kwargs),
                     cfg.name, cfg.reward_threshold)


def _particle_worlds(cfg: MPEConfig) -> EnvFactory:
    """An MPE scenario in rlkit's NumPy version: mpe2's worlds, every copy stepped at once."""
    from rlkit.envs.adapters import ParallelArrayEnv
    from rlkit.envs.particle_worlds import ParticleWorldEnv, ParticleWorldVectorEnv

    kwargs = {"name": cfg.name, "max_cycles": cfg.max_cycles, "continuous_actions": cfg.continuous_actions,
              **cfg.kwargs}
    try:
        probe = ParticleWorldVectorEnv(1, **kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"env.kwargs do not fit {cfg.name}: {e}") from None
    return EnvFactory(make=lambda render_mode=None: ParallelArrayEnv(ParticleWorldEnv(render_mode=render_mode,
                                                                                        **kwargs)),
                      make_vec=lambda n: ParticleWorldVectorEnv(n, **kwargs), label=cfg.name,
                      reward_threshold=cfg.reward_threshold, agents=tuple(probe.possible_agents))


def _pettingzoo(cfg: PettingZooConfig) -> EnvFactory:
    import pettingzoo

    import rlkit.envs.multi_cartpole  # noqa: F401  (registers rlkit/MultiCartPole-v0)

    if ":" in cfg.id:
        module_name, _, attr = cfg.id.partition(":")
        try:
            creator = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"env.id={cfg.id!r} cannot be imported: {e}") from None
    elif cfg.id in pettingzoo.parallel_registry:
        # The spec, not the id: it travels with the maker to processes where nothing registered the id.
        creator = functools.partial(pettingzoo.make, "parallel", pettingzoo.parallel_registry[cfg.id])
    else:
        raise ConfigError(f"env.id={cfg.id!r} is not in PettingZoo's registry; registered: "
                          f"{sorted(pettingzoo.parallel_registry)}, or give a module:function entry point")
    return _parallel(functools.partial(creator, **cfg.kwargs), cfg.id, cfg.reward_threshold)


_ENV_BUILDERS: dict[str, Callable[[Any], EnvFactory]] = {
    "balancing_pole": _rlkit, "gym": _gym, "multi_cartpole": _rlkit, "robotic_arm": _rlkit, "mpe": _mpe,
    "pettingzoo": _pettingzoo,
}
ENVS: dict[str, tuple[type, Callable[[Any], EnvFactory]]] = {
    name: (schema, _ENV_BUILDERS[name]) for name, schema in ENV_SCHEMAS.items()}
"""Env configs by ``name`` (an MPE config is named by its scenario and found under ``mpe``): schema, builder."""


def _sb3(cfg: Any, env: EnvFactory, seed: int, training: bool) -> Agent:
    from rlkit.agents.sb3 import SB3Agent

    return SB3Agent(cfg, lambda: env.make(None), seed=seed, training=training,
                    subprocesses=env.vectorization == "async", remote=env.make_remote)


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


def _rllib(cfg: Any, env: EnvFactory, seed: int, training: bool) -> Agent:
    if env.vectorization != "sync":
        raise ConfigError(f"agent=rllib steps its env copies on RLlib's env runners (agent.num_env_runners), not "
                          f"through env.vectorization={env.vectorization}: leave env.vectorization=sync")
    from rlkit.agents.rllib import RLlibAgent

    return RLlibAgent(cfg, lambda: env.make(None), env.label, seed=seed, training=training, agents=env.agents)


_AGENT_BUILDERS: dict[str, Callable[[Any, EnvFactory, int, bool], Agent]] = {
    "dqn": _sb3, "reinforce": _reinforce, "maddpg": _maddpg, "ppo": _sb3, "a2c": _sb3, "sac": _sb3, "td3": _sb3,
    "rllib": _rllib,
}
AGENTS: dict[str, tuple[type, Callable[[Any, EnvFactory, int, bool], Agent]]] = {
    name: (schema, _AGENT_BUILDERS[name]) for name, schema in AGENT_SCHEMAS.items()}
"""Agent configs by ``name``: schema, builder."""


def lookup(group: str, name: str) -> tuple[type, Callable[..., Any]]:
    """The schema and builder of the ``env`` or ``agent`` config named ``name``."""
    registry, kind = (ENVS, "environment") if group == "env" else (AGENTS, "agent")
    try:
        return registry["mpe" if group == "env" and name in MPE_SCENARIOS else name]
    except KeyError:
        raise ConfigError(f"unknown {kind} kind {name!r}; known: {sorted(registry)}") from None


def _copies_elsewhere(env: EnvFactory, cfg: Any) -> EnvFactory:
    """``make_vec`` per ``env.vectorization``: copies of ``env.make`` in subprocesses or Ray actors, or as built."""
    mode = getattr(cfg, "vectorization", "sync")
    if mode == "sync":
        return env
    env = dataclasses.replace(env, make_vec_here=env.make_vec)
    from rlkit.envs.checks import CheckedEnv
    from rlkit.envs.remote import AgentRewardsInInfo, AsyncCopies, ParallelCopies, RayVectorEnv

    make, label = env.make, env.label
    probe = make(None) if env.agents else None  # ParallelArrayEnv copies: agents see ParallelVectorEnv's API
    if probe is not None:
        probe.close()

    def wrap(envs: gym.vector.VectorEnv) -> Any:
        return envs if probe is None else ParallelCopies(envs, probe)

    def copy(i: int) -> Callable[[], gym.Env]:  # each copy checked where it steps: its number in the message
        if probe is not None:
            return lambda: AgentRewardsInInfo(CheckedEnv(make(None), label, copy=i))
        return lambda: CheckedEnv(make(None), label, copy=i)

    if mode == "async":
        return dataclasses.replace(env, vectorization=mode,
                                   make_vec=lambda n: wrap(AsyncCopies([copy(i) for i in range(n)], label)))
    # Ray is reached at the first make_vec (the agent's probe, before training starts), not here: playing a run
    # (rlkit eval, rlkit.load) builds its env too, and steps it in this process.
    actors = cfg.ray_actors

    def make_vec(n: int) -> Any:
        # One maker for every copy (numbered by its position in the run, not the actor's).
        return wrap(RayVectorEnv(lambda: CheckedEnv(make(None), label), n, actors, label))

    return dataclasses.replace(env, vectorization=mode, make_vec=make_vec,
                               make_remote=lambda maker, n: RayVectorEnv(maker, n, actors, label))


def build_env(cfg: Any) -> EnvFactory:
    """The env factory for an env config; its envs refuse bad numbers and actions (:mod:`rlkit.envs.checks`)."""
    from rlkit.envs.checks import CheckedEnv, CheckedVectorEnv

    env = lookup("env", cfg.name)[1](cfg)
    if env.agents:
        teams = agent_teams(env.agents, dict(getattr(cfg, "teams", None) or {}), env.label)
        scored = getattr(cfg, "objective_team", "") or None
        if scored is not None and scored not in teams:
            close = difflib.get_close_matches(scored, list(teams), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"env.objective_team={scored} is not a team of {env.label}; its teams: "
                              f"{', '.join(teams)}.{hint}")
        env = dataclasses.replace(env, teams=teams, scored_team=scored)
    env = _copies_elsewhere(env, cfg)
    return dataclasses.replace(env, make=lambda render_mode=None: CheckedEnv(env.make(render_mode), env.label),
                               make_vec=lambda n: CheckedVectorEnv(env.make_vec(n), env.label))


def physical_memory() -> int:
    """Bytes of this machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def check_memory(cfg: Any, env: EnvFactory) -> None:
    """Refuse an agent whose networks or replay buffer alone need more memory than the machine has, before trying."""
    probe = env.make(None)
    obs_size, action_size = gym.spaces.flatdim(probe.observation_space), gym.spaces.flatdim(probe.action_space)
    probe.close()
    needed = memory_needed(cfg, obs_size, action_size)
    have = physical_memory()
    if sum(needed.values()) > have:
        key = max(needed, key=lambda k: needed[k])
        value = getattr(cfg, key.removeprefix("agent."))
        raise ConfigError(f"{key}={value} needs at least {_size(needed[key])} of memory for {env.label}'s "
                          f"{obs_size} observation and {action_size} action numbers, more than this machine's "
                          f"{_size(have)}: lower {key}")


def build_agent(cfg: Any, env: EnvFactory, seed: int, training: bool = True) -> Agent:
    """An agent for an agent config; a single-agent learner given a multi-agent env acts for the whole team."""
    build = lookup("agent", cfg.name)[1]
    if training:
        check_memory(cfg, env)
    elif env.make_vec_here is not None:  # acting only: no subprocess or Ray actor for a look at the spaces
        env = dataclasses.replace(env, make_vec=env.make_vec_here, vectorization="sync", make_remote=None)
    if not env.agents or build in (_maddpg, _rllib):
        return build(cfg, env, seed, training)
    from rlkit.agents.joint_control import JointControlAgent
    from rlkit.envs.adapters import JointControl, JointControlVectorEnv

    first = env.make(None)
    if getattr(first, "padded", False):
        from rlkit.envs.adapters import describe_spaces

        first.close()
        raise ConfigError(f"agent={cfg.name} is a single-agent learner: it acts for a team only by joint control, "
                          f"which needs every agent to have the same action space, and {env.label}'s differ "
                          f"({describe_spaces(list(env.agents), first.agent_action_spaces)}); use agent=maddpg, which "
                          "gives each agent its own actor")
    try:
        probe = JointControl(first)
    except ValueError as e:
        raise ConfigError(f"agent={cfg.name} cannot control {env.label}'s agents jointly: {e}") from None
    probe.close()
    log.info("agent=%s is a single-agent learner: joint control of %s's %d agents (one policy sees every "
             "agent's observation and sets every agent's action; reward: the team's mean)",
             cfg.name, env.label, len(env.agents))
    joint = EnvFactory(make=lambda render_mode=None: JointControl(env.make(render_mode)),
                       make_vec=lambda n: JointControlVectorEnv(env.make_vec(n)),
                       label=f"{env.label} (joint control)", reward_threshold=env.reward_threshold,
                       vectorization=env.vectorization, make_remote=env.make_remote)
    return JointControlAgent(build(cfg, joint, seed, training), probe.joint.split)
