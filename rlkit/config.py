"""Typed schemas for every config group, registered in Hydra's ConfigStore.

Each YAML in ``configs/<group>/`` starts with ``defaults: [<name>_schema, _self_]`` so Hydra checks its keys
and types against the dataclass here at composition time: an unknown key or a value of the wrong type fails
before any work starts. Cross-field checks live in ``validate()`` methods and raise :class:`ConfigError`.

The string after each field is its documentation; ``rlkit train --help`` prints it.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from rlkit.agents.config import (  # noqa: F401  (the agent schemas, re-exported)
    A2CConfig,
    DQNConfig,
    MADDPGConfig,
    PPOConfig,
    ReinforceConfig,
    SACConfig,
    SB3Config,
    TD3Config,
)
from rlkit.errors import ConfigError

VIDEO_FORMATS = ("mp4", "gif")


# ---------------------------------------------------------------------------------------------- environments
@dataclass
class BalancingPoleConfig:
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
        for key in ("masscart", "masspole", "length", "force_mag", "tau", "theta_threshold_degrees",
                    "x_threshold"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"env.{key} must be > 0, got {getattr(self, key)}")
        if self.max_episode_steps < 1:
            raise ConfigError(f"env.max_episode_steps must be >= 1, got {self.max_episode_steps}")


@dataclass
class GymEnvConfig:
    """Any environment registered with Gymnasium, by id."""

    name: str = "gym"
    """Environment kind; selects the builder (do not change)."""
    id: str = MISSING
    """Gymnasium id, e.g. CartPole-v1 or a module-qualified id such as mypkg:MyEnv-v0."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for gymnasium.make, e.g. +env.kwargs.max_episode_steps=200."""
    reward_threshold: float | None = None
    """Solved threshold; empty means the one in the env's registration, if any."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        if not self.id:
            raise ConfigError("env.id is empty: name a registered Gymnasium id, e.g. env.id=CartPole-v1")


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
class RoboticArmConfig:
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
        if self.model not in ("dynamics", "simple"):
            raise ConfigError(f"env.model must be dynamics or simple, got {self.model!r}")
        for key in ("link_lengths", "link_masses"):
            values = getattr(self, key)
            if len(values) != 2 or not all(v > 0 for v in values):
                raise ConfigError(f"env.{key} must be two numbers > 0, got {list(values)}")
        for key in ("max_torque", "dt", "max_speed", "tolerance"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"env.{key} must be > 0, got {getattr(self, key)}")
        for key in ("damping", "gravity", "torque_cost"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"env.{key} must be >= 0, got {getattr(self, key)}")
        if self.frame_skip < 1 or self.max_episode_steps < 1:
            raise ConfigError(f"env.frame_skip and env.max_episode_steps must be >= 1, got {self.frame_skip} and "
                              f"{self.max_episode_steps}")
        if self.fixed_target is not None and len(self.fixed_target) != 2:
            raise ConfigError(f"env.fixed_target must be [x, y] or null, got {list(self.fixed_target)}")


MPE_SCENARIOS = (
    "simple_v3", "simple_adversary_v3", "simple_crypto_v3", "simple_push_v3", "simple_reference_v3",
    "simple_speaker_listener_v4", "simple_spread_v3", "simple_tag_v3", "simple_world_comm_v3",
)
"""The Multi-Agent Particle Environments of the ``mpe2`` package that ``env=mpe`` offers by name."""


@dataclass
class MPEConfig:
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

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        if self.name not in MPE_SCENARIOS:
            close = difflib.get_close_matches(self.name, MPE_SCENARIOS, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"env.name={self.name!r} is not an MPE scenario; choose one of "
                              f"{', '.join(MPE_SCENARIOS)}.{hint}")
        if self.max_cycles < 1:
            raise ConfigError(f"env.max_cycles must be >= 1, got {self.max_cycles}")


@dataclass
class PettingZooConfig:
    """Any PettingZoo parallel environment: a registered id, or a ``module:function`` that builds one."""

    name: str = "pettingzoo"
    """Environment kind; selects the builder (do not change)."""
    id: str = MISSING
    """A PettingZoo registry id (rlkit/MultiCartPole-v0) or an entry point (mpe2.simple_spread_v3:parallel_env)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for the env's constructor, e.g. +env.kwargs.max_cycles=50."""
    reward_threshold: float | None = None
    """Mean evaluation return (every agent) at which the task counts as solved; empty: none."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        if not self.id:
            raise ConfigError("env.id is empty: name a PettingZoo id or a module:function entry point")


# ---------------------------------------------------------------------------------------------- callbacks
@dataclass
class EvalConfig:
    """Periodic deterministic evaluation during training."""

    every_steps: int = 10_000
    """Environment steps between evaluations (0: only one, at the end)."""
    episodes: int = 10
    """Episodes per evaluation, played in parallel copies of the env."""
    deterministic: bool = True
    """Greedy actions during evaluation."""
    stop_on_threshold: bool = False
    """Stop training at the first evaluation whose mean reaches the env's reward threshold."""


@dataclass
class CheckpointConfig:
    """Training checkpoints, from which an interrupted run continues exactly (``rlkit train resume=<run>``)."""

    every_steps: int = 0
    """Environment steps between checkpoints (0: by time only)."""
    every_seconds: float = 300.0
    """Wall seconds between checkpoints (0: by steps only). SIGTERM and SIGINT always write one."""
    keep_last: int = 2
    """Checkpoints kept; older ones are deleted."""
    keep_after_finish: bool = False
    """Keep the checkpoints once the run finished (they hold replay buffers, so they can be large)."""


@dataclass
class CallbacksConfig:
    """What runs beside training: evaluation, logging, progress bar, plug-ins."""

    eval: EvalConfig = field(default_factory=EvalConfig)
    """Periodic deterministic evaluation; keeps the best checkpoint."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Training checkpoints for continuing an interrupted run."""
    tensorboard: bool = True
    """Write TensorBoard events to <run>/tb."""
    progress_bar: bool = True
    """Show a progress bar when stderr is a terminal."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Plug-in callbacks, each a mapping with _target_ (a rlkit.callbacks.Callback subclass) and its kwargs."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        if self.eval.every_steps < 0:
            raise ConfigError(f"callbacks.eval.every_steps must be >= 0, got {self.eval.every_steps}")
        if self.eval.episodes < 1:
            raise ConfigError(f"callbacks.eval.episodes must be >= 1, got {self.eval.episodes}")
        ck = self.checkpoint
        if ck.every_steps < 0 or ck.every_seconds < 0:
            raise ConfigError("callbacks.checkpoint.every_steps and every_seconds must be >= 0, got "
                              f"{ck.every_steps} and {ck.every_seconds}")
        if ck.keep_last < 1:
            raise ConfigError(f"callbacks.checkpoint.keep_last must be >= 1, got {ck.keep_last}")
        for key, spec in self.extra.items():
            if not isinstance(spec, dict) or "_target_" not in spec:
                raise ConfigError(f"callbacks.extra.{key} needs a _target_ naming a Callback class")


# ---------------------------------------------------------------------------------------------- top level
@dataclass
class TrainConfig:
    """``rlkit train``: one training run."""

    env: Any = MISSING
    """Environment (config group env)."""
    agent: Any = MISSING
    """Agent (config group agent)."""
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    """Evaluation, logging and plug-in callbacks (config group callbacks)."""
    seed: int = 0
    """Seed of every random number generator (Python, NumPy, torch, environments)."""
    total_steps: int = 100_000
    """Environment steps to train for."""
    torch_threads: int = 1
    """torch.set_num_threads; small networks run fastest on one thread of a 2-core machine."""
    resume: str | None = None
    """Continue an interrupted run: its directory, or ``auto`` (the newest unfinished run of this config)."""

    def validate(self) -> None:
        """Check values that the types alone cannot, here and in each group."""
        if self.total_steps < 1:
            raise ConfigError(f"total_steps must be >= 1, got {self.total_steps}")
        if self.torch_threads < 1:
            raise ConfigError(f"torch_threads must be >= 1, got {self.torch_threads}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        for part in (self.env, self.agent, self.callbacks):
            part.validate()


@dataclass
class EvalRunConfig:
    """``rlkit eval``: play a trained run."""

    run: str = MISSING
    """Run directory to evaluate (runs/<env>/<agent>/<timestamp>)."""
    checkpoint: str = "best"
    """Checkpoint to load: best, last, or a path to a .safetensors file."""
    n_episodes: int = 5
    """Episodes to play."""
    render_mode: str | None = None
    """human (a pygame window), rgb_array, or empty for no rendering."""
    deterministic: bool = True
    """Greedy actions."""
    seed: int = 12345
    """Seed of the evaluation episodes."""
    video: bool = False
    """Record the episodes, rendered off-screen (rgb_array), to <run>/videos/eval-<checkpoint>-<time>.<format>."""
    video_format: str = "mp4"
    """mp4 (H.264) or gif."""
    video_fps: int | None = None
    """Frames per second of the video; empty: the env's render_fps (real time)."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        if self.n_episodes < 1:
            raise ConfigError(f"n_episodes must be >= 1, got {self.n_episodes}")
        if self.render_mode not in (None, "human", "rgb_array"):
            raise ConfigError(f"render_mode must be human, rgb_array or null, got {self.render_mode!r}")
        if self.video and self.render_mode == "human":
            raise ConfigError("video=true records frames rendered off-screen and cannot show a window as well: "
                              "drop render_mode=human (or set render_mode=rgb_array)")
        if self.video_format not in VIDEO_FORMATS:
            raise ConfigError(f"video_format must be one of {', '.join(VIDEO_FORMATS)}, got {self.video_format!r}")
        if self.video_fps is not None and self.video_fps < 1:
            raise ConfigError(f"video_fps must be >= 1 (or null for the env's render_fps), got {self.video_fps}")


# Plain registries: a config's ``name`` field picks its schema (and, in rlkit.factory, its builder).
ENV_SCHEMAS: dict[str, type] = {
    "balancing_pole": BalancingPoleConfig,
    "gym": GymEnvConfig,
    "multi_cartpole": MultiCartPoleConfig,
    "robotic_arm": RoboticArmConfig,
    "mpe": MPEConfig,
    "pettingzoo": PettingZooConfig,
}
AGENT_SCHEMAS: dict[str, type] = {
    "dqn": DQNConfig,
    "reinforce": ReinforceConfig,
    "maddpg": MADDPGConfig,
    "ppo": PPOConfig,
    "a2c": A2CConfig,
    "sac": SACConfig,
    "td3": TD3Config,
}


def env_schema(name: str) -> type:
    """The schema of an env config from its ``name``: the kind, or (for MPE) the scenario."""
    if name in MPE_SCENARIOS:
        return MPEConfig
    try:
        return ENV_SCHEMAS[name]
    except KeyError:
        raise ConfigError(f"unknown environment kind {name!r}; known: {sorted(ENV_SCHEMAS)}") from None


def check_known_keys(node: DictConfig, path: str = "") -> None:
    """Refuse keys that a typed node's dataclass does not declare.

    Hydra lets ``+agent.foo=1`` add a key even to a typed node, and ``OmegaConf.to_object`` would then set it
    as a stray attribute that nothing reads; a misspelt hyperparameter must fail instead.
    """
    object_type = OmegaConf.get_type(node)
    known = None
    if object_type is not None and dataclasses.is_dataclass(object_type):
        known = {f.name for f in dataclasses.fields(object_type)}
    for key in node:
        full = f"{path}{key}"
        if known is not None and key not in known:
            raise ConfigError(
                f"unknown key {full!r}: {object_type.__name__} has no field {key!r}. "
                f"Valid keys of {path.rstrip('.') or 'the config'}: {', '.join(sorted(known))}"
            )
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            check_known_keys(child, f"{full}.")


def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore as ``<group>/<name>_schema``."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalRunConfig)
    for name, schema in ENV_SCHEMAS.items():
        cs.store(group="env", name=f"{name}_schema", node=schema)
    for name, schema in AGENT_SCHEMAS.items():
        cs.store(group="agent", name=f"{name}_schema", node=schema)
    cs.store(group="callbacks", name="callbacks_schema", node=CallbacksConfig)
