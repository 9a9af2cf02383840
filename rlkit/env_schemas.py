"""The environments' config schemas: every default and its documentation.

No Gymnasium or NumPy here, so composing a config, its errors and ``rlkit train --help`` stay fast; each env
imports its schema from here.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from rlkit.errors import ConfigError

MULTI_CARTPOLE_ID = "rlkit/MultiCartPole-v0"
"""PettingZoo id (registered when rlkit.envs.multi_cartpole is imported)."""
MODELS = ("dynamics", "simple")
"""The robotic arm's models (``env.model``)."""
VECTORIZATIONS = ("sync", "async", "ray")
"""Where training's env copies step (``env.vectorization``)."""


@dataclass
class EnvCopies:
    """Where training steps the env's copies: the keys every env schema shares."""

    vectorization: str = "sync"
    """Where training's env copies step: sync (in the training process, the default), async (Gymnasium's
    AsyncVectorEnv, one subprocess per copy) or ray (env.ray_actors Ray actors, each stepping its share of the
    copies as one batch; a local Ray instance, or the cluster named by RAY_ADDRESS). async and ray pay for envs
    whose steps cost milliseconds; evaluation always steps in the training process."""
    ray_actors: int = 2
    """Ray actors the copies are spread over with env.vectorization=ray (each holds about copies / actors)."""

    def validate(self) -> None:
        """Check ``vectorization`` and ``ray_actors``."""
        if self.vectorization not in VECTORIZATIONS:
            close = difflib.get_close_matches(str(self.vectorization), VECTORIZATIONS, n=1, cutoff=0.4)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"env.vectorization={self.vectorization!r} is not one of {', '.join(VECTORIZATIONS)}."
                              f"{hint}")
        if self.ray_actors < 1:
            raise ConfigError(f"env.ray_actors must be >= 1, got {self.ray_actors}")


COPIES_KEYS = ("vectorization", "ray_actors")
""":class:`EnvCopies`' keys: where the copies step, not arguments of the env itself."""


@dataclass
class BalancingPoleConfig(EnvCopies):
    """The balancing pole (cart-pole), ``rlkit/BalancingPole-v1``."""

    name: str = "balancing_pole"
    """Environment kind; selects the builder (do not change)."""
    gravity: float = 9.8
    """Gravitational acceleration, m/s^2."""
    masscart: float = 1.0
    """Mass of the cart, kg."""
    masspole: float = 0.1
    """Mass of the pole, kg."""
    length: float = 0.5
    """Half the pole's length, m."""
    force_mag: float = 10.0
    """Force of one push, N (continuous actions scale it by the action in [-1, 1])."""
    tau: float = 0.02
    """Seconds between state updates (Euler step)."""
    theta_threshold_degrees: float = 12.0
    """Pole angle from upright, in degrees, that ends the episode."""
    x_threshold: float = 2.4
    """Distance of the cart from the centre, m, that ends the episode."""
    continuous: bool = False
    """Continuous force in [-1, 1] instead of the discrete push left/right."""
    max_episode_steps: int = 500
    """Steps after which an episode is truncated (Gymnasium's TimeLimit)."""
    reward_threshold: float = 475.0
    """Mean evaluation return at which the task counts as solved."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        super().validate()
        for key in ("masscart", "masspole", "length", "force_mag", "tau", "theta_threshold_degrees",
                    "x_threshold"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"env.{key} must be > 0, got {getattr(self, key)}")
        if self.max_episode_steps < 1:
            raise ConfigError(f"env.max_episode_steps must be >= 1, got {self.max_episode_steps}")


@dataclass
class MultiCartPoleConfig(BalancingPoleConfig):
    """The multi-agent cart-pole (PettingZoo parallel env): one cart and pole per agent, optional springs."""

    name: str = "multi_cartpole"
    """Environment kind; selects the builder (do not change)."""
    continuous: bool = True
    """Continuous force in [-1, 1] per agent (false: discrete push left/right)."""
    num_agents: int = 2
    """Carts, one agent each."""
    coupling: float = 0.0
    """Stiffness (N/m) of the springs joining neighbouring carts (0: independent carts)."""
    observe_neighbours: bool = False
    """Each agent also observes its left and right neighbours' cart-pole states."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        super().validate()
        if self.num_agents < 1:
            raise ConfigError(f"env.num_agents must be >= 1, got {self.num_agents}")
        if not self.coupling >= 0:
            raise ConfigError(f"env.coupling (spring stiffness) must be >= 0, got {self.coupling}")


@dataclass
class RoboticArmConfig(EnvCopies):
    """The robotic arm, ``rlkit/RoboticArm-v1``: a planar two-link arm brings its fingertip to a target."""

    name: str = "robotic_arm"
    """Environment kind; selects the builder (do not change)."""
    link_lengths: list[float] = field(default_factory=lambda: [1.0, 0.7])
    """Lengths of the two links, m."""
    link_masses: list[float] = field(default_factory=lambda: [1.0, 1.0])
    """Masses of the two links (uniform rods), kg."""
    max_torque: float = 2.0
    """Torque of each joint at |action| = 1, N m."""
    damping: float = 0.5
    """Viscous damping of each joint, N m s/rad."""
    gravity: float = 0.0
    """Gravitational acceleration along -y, m/s^2 (0: a top-down table)."""
    dt: float = 0.01
    """Seconds per RK4 integration step."""
    frame_skip: int = 5
    """Integration steps per environment step."""
    max_speed: float = 6.283185307179586
    """Joint speed limit, rad/s."""
    tolerance: float = 0.05
    """Distance from the target, m, that counts as success (and ends the episode)."""
    torque_cost: float = 0.01
    """Weight of |action|^2 in the reward."""
    fixed_target: list[float] | None = None
    """A fixed target (x, y) in m; empty draws one within reach at every reset."""
    model: str = "dynamics"
    """dynamics (rigid-body two-link arm) or simple (torque integrated directly as angular acceleration)."""
    max_episode_steps: int = 200
    """Steps after which an episode is truncated."""
    reward_threshold: float | None = None
    """Mean evaluation return that counts as solved; empty: none (the arm is judged by its success rate)."""
    success_threshold: float | None = 0.9
    """Evaluation success rate that counts as solved."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        super().validate()
        if self.model not in MODELS:
            raise ConfigError(f"env.model must be dynamics or simple, got {self.model!r}")
        for key, rule in (("link_lengths", "> 0"), ("link_masses", "> 0"), ("fixed_target", "[x, y] or null")):
            value = getattr(self, key)
            if value is not None and not (len(value) == 2 and all(
                    math.isfinite(v) and (v > 0 or key == "fixed_target") for v in value)):
                raise ConfigError(f"env.{key} must be two finite numbers {rule}, got {value!r}")
        for key in ("max_torque", "dt", "max_speed", "tolerance"):
            if not (math.isfinite(getattr(self, key)) and getattr(self, key) > 0):
                raise ConfigError(f"env.{key} must be finite and > 0, got {getattr(self, key)!r}")
        for key in ("damping", "gravity", "torque_cost"):
            if not (math.isfinite(getattr(self, key)) and getattr(self, key) >= 0):
                raise ConfigError(f"env.{key} must be finite and >= 0, got {getattr(self, key)!r}")
        for key in ("frame_skip", "max_episode_steps"):
            value = getattr(self, key)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ConfigError(f"env.{key} must be an integer >= 1, got {value!r}")
        if self.tolerance >= sum(self.link_lengths):
            raise ConfigError(f"env.tolerance ({self.tolerance}) must be smaller than the reach l1 + l2, "
                              f"{sum(self.link_lengths)}, or every state would count as success")


@dataclass
class GymEnvConfig(EnvCopies):
    """Any environment registered with Gymnasium, by id."""

    name: str = "gym"
    """Environment kind; selects the builder (do not change)."""
    id: str = MISSING
    """Gymnasium id, e.g. CartPole-v1 or a module-qualified mypkg:MyEnv-v0."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for gymnasium.make, e.g. +env.kwargs.max_episode_steps=200."""
    reward_threshold: float | None = None
    """Solved threshold; empty means the one in the env's registration, if any."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        super().validate()
        if not self.id:
            raise ConfigError("env.id is empty: name a registered Gymnasium id, e.g. env.id=CartPole-v1")


OBJECTIVES = ("cooperative", "competitive")


def check_objective(cfg: Any) -> None:
    """Refuse an objective other than cooperative or competitive, or one whose team is missing or not needed."""
    if cfg.objective not in OBJECTIVES:
        raise ConfigError(f"env.objective={cfg.objective!r} is not one of {', '.join(OBJECTIVES)}")
    if cfg.objective == "competitive" and not cfg.objective_team:
        raise ConfigError("env.objective=competitive scores one team: name it with env.objective_team=<team>")
    if cfg.objective == "cooperative" and cfg.objective_team:
        raise ConfigError(f"env.objective_team={cfg.objective_team} is only for env.objective=competitive; set "
                          "that too, or drop env.objective_team")


@dataclass
class PettingZooConfig(EnvCopies):
    """Any PettingZoo parallel environment: a registered id, or a ``module:function`` that builds one."""

    name: str = "pettingzoo"
    """Environment kind; selects the builder (do not change)."""
    id: str = MISSING
    """A PettingZoo registry id (rlkit/MultiCartPole-v0) or an entry point (mpe2.simple_spread_v3:parallel_env)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the env's constructor, e.g. +env.kwargs.max_cycles=50."""
    reward_threshold: float | None = None
    """Mean evaluation return (every agent) at which the task counts as solved; empty: none."""
    teams: dict[str, list[str]] = field(default_factory=dict)
    """Teams of agents by name, e.g. '+env.teams={hunters:[adversary_0],prey:[agent_0]}'; empty: by the agents'
    name prefixes (adversary_0 and adversary_1 -> adversary)."""
    objective: str = "cooperative"
    """What solving and the best checkpoint go by: cooperative (every agent's mean >= the threshold) or competitive
    (the mean of env.objective_team)."""
    objective_team: str = ""
    """The team a competitive objective scores."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        super().validate()
        check_objective(self)
        if not self.id:
            raise ConfigError("env.id is empty: name a PettingZoo id or a module:function entry point")


MPE_SCENARIOS = (  # the Multi-Agent Particle Environments of the mpe2 package, by name
    "simple_v3", "simple_adversary_v3", "simple_crypto_v3", "simple_push_v3", "simple_reference_v3",
    "simple_speaker_listener_v4", "simple_spread_v3", "simple_tag_v3", "simple_world_comm_v3",
)


@dataclass
class MPEConfig(EnvCopies):
    """A Multi-Agent Particle Environment (PettingZoo's MPE, the ``mpe2`` package), by scenario name."""

    name: str = "simple_spread_v3"
    """Scenario, e.g. simple_spread_v3 (cooperative navigation); see MPE_SCENARIOS for all."""
    max_cycles: int = 25
    """Steps per episode (MPE's own truncation)."""
    continuous_actions: bool = False
    """Continuous movement forces instead of the five discrete moves."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Scenario arguments, e.g. +env.kwargs.N=3 +env.kwargs.local_ratio=0.5 for simple_spread_v3."""
    reward_threshold: float | None = None
    """Mean evaluation return (every agent) at which the task counts as solved; empty: none."""
    batched: bool = True
    """rlkit's NumPy version (every copy stepped at once) where the scenario has one; false: mpe2's own env."""
    teams: dict[str, list[str]] = field(default_factory=dict)
    """Teams of agents by name, e.g. '+env.teams={hunters:[adversary_0],prey:[agent_0]}'; empty: by the agents'
    name prefixes (adversary_0 and adversary_1 -> adversary)."""
    objective: str = "cooperative"
    """What solving and the best checkpoint go by: cooperative (every agent's mean >= the threshold) or competitive
    (the mean of env.objective_team)."""
    objective_team: str = ""
    """The team a competitive objective scores."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        super().validate()
        check_objective(self)
        if self.name not in MPE_SCENARIOS:
            close = difflib.get_close_matches(self.name, MPE_SCENARIOS, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"env.name={self.name!r} is not an MPE scenario; choose one of "
                              f"{', '.join(MPE_SCENARIOS)}.{hint}")
        if self.max_cycles < 1:
            raise ConfigError(f"env.max_cycles must be >= 1, got {self.max_cycles}")


ENV_SCHEMAS: dict[str, type] = {
    "balancing_pole": BalancingPoleConfig,
    "gym": GymEnvConfig,
    "multi_cartpole": MultiCartPoleConfig,
    "robotic_arm": RoboticArmConfig,
    "mpe": MPEConfig,
    "pettingzoo": PettingZooConfig,
}
"""Env schemas by config ``name`` (an MPE config is named by its scenario and found under ``mpe``)."""
