"""Typed schemas for every config group, registered in Hydra's ConfigStore.

Each YAML in ``configs/<group>/`` starts with ``defaults: [<name>_schema, _self_]`` so Hydra checks its keys
and types against the dataclass here at composition time: an unknown key or a value of the wrong type fails
before any work starts. Cross-field checks live in ``validate()`` methods and raise :class:`ConfigError`.

The string after each field is its documentation; ``rlkit train --help`` prints it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from dataclasses import dataclass, field
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import MISSING, DictConfig, OmegaConf

from rlkit.errors import ConfigError, RlkitError


def _check_ranges(prefix: str, obj: Any, checks: dict[str, bool]) -> None:
    """Raise for the first key whose check is False, quoting its value."""
    for key, ok in checks.items():
        if not ok:
            raise ConfigError(f"{prefix}.{key}={getattr(obj, key)} is out of range")


def _check_network(net_arch: list[int], activation_fn: str) -> None:
    if not net_arch or any(n < 1 for n in net_arch):
        raise ConfigError(f"agent.net_arch must list positive layer sizes, got {net_arch}")
    if activation_fn not in ACTIVATIONS:
        raise ConfigError(f"agent.activation_fn={activation_fn!r} is unknown; choose one of {sorted(ACTIVATIONS)}")


ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu", "gelu", "silu")
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


# ---------------------------------------------------------------------------------------------- agents
@dataclass
class DQNConfig:
    """Deep Q-Network through stable-baselines3; the defaults are SB3's own."""

    name: str = "dqn"
    """Agent kind; selects the builder (do not change)."""
    algo: str = "DQN"
    """stable-baselines3 algorithm class."""
    policy: str = "MlpPolicy"
    """SB3 policy class name."""
    n_envs: int = 1
    """Environment copies stepped together (SB3 DummyVecEnv)."""
    learning_rate: float = 1e-4
    """Adam learning rate."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity, in transitions."""
    learning_starts: int = 100
    """Environment steps collected before learning starts."""
    batch_size: int = 32
    """Minibatch size of each gradient step."""
    tau: float = 1.0
    """Soft update coefficient of the target network (1 = hard copy)."""
    gamma: float = 0.99
    """Discount factor."""
    n_steps: int = 1
    """Steps of n-step returns in the TD target (1: plain one-step DQN)."""
    train_freq: int = 4
    """Environment steps (per copy) between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase (-1: as many as steps collected)."""
    target_update_interval: int = 10_000
    """Environment steps between target network updates."""
    exploration_fraction: float = 0.1
    """Fraction of total_steps over which epsilon decays linearly."""
    exploration_initial_eps: float = 1.0
    """Initial epsilon of epsilon-greedy exploration."""
    exploration_final_eps: float = 0.05
    """Final epsilon of epsilon-greedy exploration."""
    max_grad_norm: float = 10.0
    """Gradient clipping norm."""
    optimize_memory_usage: bool = False
    """SB3's memory-efficient replay buffer variant."""
    stats_window_size: int = 100
    """Episodes averaged in SB3's own rollout statistics."""
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of the Q-network."""
    activation_fn: str = "relu"
    """Activation of the hidden layers: relu, tanh, elu, leaky_relu, gelu, silu."""
    device: str = "cpu"
    """Torch device: cpu, cuda, or auto (SB3's default is auto; small MLPs are faster and reproducible on CPU)."""
    action_bins: int = 5
    """Continuous (bounded Box) actions are discretised into this many values per dimension (0: refuse them)."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        checks = {
            "action_bins": self.action_bins == 0 or self.action_bins >= 2,
            "learning_rate": self.learning_rate > 0,
            "buffer_size": self.buffer_size >= 1,
            "batch_size": self.batch_size >= 1,
            "n_envs": self.n_envs >= 1,
            "n_steps": self.n_steps >= 1,
            "train_freq": self.train_freq >= 1,
            "learning_starts": self.learning_starts >= 0,
            "target_update_interval": self.target_update_interval >= 1,
            "gamma": 0.0 <= self.gamma <= 1.0,
            "tau": 0.0 < self.tau <= 1.0,
            "exploration_fraction": 0.0 <= self.exploration_fraction <= 1.0,
            "exploration_initial_eps": 0.0 <= self.exploration_initial_eps <= 1.0,
            "exploration_final_eps": 0.0 <= self.exploration_final_eps <= 1.0,
        }
        _check_ranges("agent", self, checks)
        _check_network(self.net_arch, self.activation_fn)


@dataclass
class SB3Config:
    """What every stable-baselines3 algorithm shares; subclasses add their own arguments with SB3's defaults."""

    name: str = MISSING
    """Agent kind; selects the builder (do not change)."""
    algo: str = MISSING
    """stable-baselines3 algorithm class."""
    policy: str = "MlpPolicy"
    """SB3 policy class name."""
    n_envs: int = 1
    """Environment copies stepped together (SB3 DummyVecEnv)."""
    learning_rate: float = 3e-4
    """Adam learning rate (RMSprop for A2C)."""
    gamma: float = 0.99
    """Discount factor."""
    stats_window_size: int = 100
    """Episodes averaged in SB3's own rollout statistics."""
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of the policy and value (or Q) networks."""
    activation_fn: str = "tanh"
    """Activation of the hidden layers: relu, tanh, elu, leaky_relu, gelu, silu."""
    device: str = "cpu"
    """Torch device: cpu, cuda, or auto."""

    def _common_checks(self) -> dict[str, bool]:
        return {"n_envs": self.n_envs >= 1, "learning_rate": self.learning_rate > 0, "gamma": 0.0 <= self.gamma <= 1.0}

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        _check_ranges("agent", self, self._common_checks())
        _check_network(self.net_arch, self.activation_fn)


@dataclass
class PPOConfig(SB3Config):
    """Proximal Policy Optimization through stable-baselines3; the defaults are SB3's own."""

    name: str = "ppo"
    """Agent kind; selects the builder (do not change)."""
    algo: str = "PPO"
    """stable-baselines3 algorithm class."""
    n_steps: int = 2048
    """Steps per copy in each rollout."""
    batch_size: int = 64
    """Minibatch size."""
    n_epochs: int = 10
    """Passes over each rollout."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """Clipping of the probability ratio."""
    normalize_advantage: bool = True
    """Standardise advantages per minibatch."""
    ent_coef: float = 0.0
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    target_kl: float | None = None
    """Stop an update's epochs early past this KL divergence; empty: never."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        checks = {**self._common_checks(), "n_steps": self.n_steps >= 1, "batch_size": self.batch_size >= 1,
                  "n_epochs": self.n_epochs >= 1, "gae_lambda": 0.0 <= self.gae_lambda <= 1.0,
                  "clip_range": self.clip_range > 0}
        _check_ranges("agent", self, checks)
        _check_network(self.net_arch, self.activation_fn)


@dataclass
class A2CConfig(SB3Config):
    """Advantage Actor-Critic through stable-baselines3; the defaults are SB3's own."""

    name: str = "a2c"
    """Agent kind; selects the builder (do not change)."""
    algo: str = "A2C"
    """stable-baselines3 algorithm class."""
    learning_rate: float = 7e-4
    """RMSprop (or Adam) learning rate."""
    n_steps: int = 5
    """Steps per copy between updates."""
    gae_lambda: float = 1.0
    """GAE lambda (1: plain n-step advantages)."""
    ent_coef: float = 0.0
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    use_rms_prop: bool = True
    """RMSprop (true) or Adam (false)."""
    normalize_advantage: bool = False
    """Standardise advantages."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        checks = {**self._common_checks(), "n_steps": self.n_steps >= 1, "gae_lambda": 0.0 <= self.gae_lambda <= 1.0}
        _check_ranges("agent", self, checks)
        _check_network(self.net_arch, self.activation_fn)


@dataclass
class _OffPolicySB3Config(SB3Config):
    """The replay-buffer arguments SAC and TD3 share."""

    buffer_size: int = 1_000_000
    """Replay buffer capacity, in transitions."""
    learning_starts: int = 100
    """Environment steps collected before learning starts."""
    batch_size: int = 256
    """Minibatch size of each gradient step."""
    tau: float = 0.005
    """Soft update coefficient of the target networks."""
    train_freq: int = 1
    """Environment steps (per copy) between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase (-1: as many as steps collected)."""
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer sizes of the actor and the critics."""
    activation_fn: str = "relu"
    """Activation of the hidden layers: relu, tanh, elu, leaky_relu, gelu, silu."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        checks = {**self._common_checks(), "buffer_size": self.buffer_size >= 1,
                  "learning_starts": self.learning_starts >= 0, "batch_size": self.batch_size >= 1,
                  "tau": 0.0 < self.tau <= 1.0, "train_freq": self.train_freq >= 1}
        _check_ranges("agent", self, checks)
        _check_network(self.net_arch, self.activation_fn)


@dataclass
class SACConfig(_OffPolicySB3Config):
    """Soft Actor-Critic through stable-baselines3 (continuous actions); the defaults are SB3's own."""

    name: str = "sac"
    """Agent kind; selects the builder (do not change)."""
    algo: str = "SAC"
    """stable-baselines3 algorithm class."""
    ent_coef: str = "auto"
    """Entropy coefficient: a number, auto (learned), or auto_<initial value>."""
    target_entropy: str = "auto"
    """Target entropy of the learned coefficient: auto (-action dims) or a number."""
    target_update_interval: int = 1
    """Gradient steps between target network updates."""


@dataclass
class TD3Config(_OffPolicySB3Config):
    """Twin Delayed DDPG through stable-baselines3 (continuous actions); the defaults are SB3's own."""

    name: str = "td3"
    """Agent kind; selects the builder (do not change)."""
    algo: str = "TD3"
    """stable-baselines3 algorithm class."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    net_arch: list[int] = field(default_factory=lambda: [400, 300])
    """Hidden layer sizes of the actor and the critics."""
    policy_delay: int = 2
    """Critic updates per actor (and target) update."""
    target_policy_noise: float = 0.2
    """Standard deviation of the smoothing noise on target actions."""
    target_noise_clip: float = 0.5
    """Clip of that noise."""
    action_noise_std: float = 0.1
    """Gaussian exploration noise, as a fraction of the action range's half-width (SB3 has none by default)."""


@dataclass
class ReinforceConfig:
    """REINFORCE (Monte-Carlo policy gradient), native PyTorch, on N environment copies stepped together."""

    name: str = "reinforce"
    """Agent kind; selects the builder (do not change)."""
    n_envs: int = 16
    """Environment copies stepped together (a Gymnasium vector env)."""
    episodes_per_update: int = 16
    """Whole episodes collected with the current policy per update (when steps_per_update is 0)."""
    steps_per_update: int = 0
    """If > 0: update every this many env steps instead, bootstrapping cut episodes (needs baseline)."""
    gamma: float = 0.99
    """Discount factor of the reward-to-go."""
    learning_rate: float = 3e-3
    """Adam learning rate of the policy."""
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of the policy (and of the value baseline)."""
    activation_fn: str = "tanh"
    """Activation of the hidden layers: relu, tanh, elu, leaky_relu, gelu, silu."""
    normalize_returns: bool = True
    """Standardise the batch's returns (or advantages, with a baseline) to mean 0, std 1."""
    baseline: bool = True
    """Learn a value baseline V(s): advantage = return - V(s); also bootstraps truncated episodes."""
    value_learning_rate: float = 1e-2
    """Adam learning rate of the value baseline."""
    value_gradient_steps: int = 1
    """Gradient steps on the value baseline per update."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus in the policy loss."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0: no clipping)."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (Box actions)."""
    state_dependent_std: bool = False
    """Gaussian policy: log-std from a network head instead of one free parameter per action dimension."""
    squash: bool = True
    """Gaussian policy: tanh-squash samples into the action bounds (false: clip them)."""
    device: str = "cpu"
    """Torch device: cpu or cuda."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        checks = {
            "n_envs": self.n_envs >= 1,
            "episodes_per_update": self.episodes_per_update >= 1,
            "steps_per_update": self.steps_per_update >= 0,
            "gamma": 0.0 <= self.gamma <= 1.0,
            "learning_rate": self.learning_rate > 0,
            "value_learning_rate": self.value_learning_rate > 0,
            "value_gradient_steps": self.value_gradient_steps >= 1,
            "entropy_coef": self.entropy_coef >= 0,
            "max_grad_norm": self.max_grad_norm >= 0,
        }
        _check_ranges("agent", self, checks)
        _check_network(self.net_arch, self.activation_fn)
        if self.steps_per_update > 0 and not self.baseline:
            raise ConfigError(
                f"agent.steps_per_update={self.steps_per_update} cuts episodes, whose returns must be "
                "bootstrapped with the value baseline: set agent.baseline=true, or batch by whole episodes "
                "with agent.steps_per_update=0"
            )
        if 0 < self.steps_per_update < self.n_envs:
            raise ConfigError(
                f"agent.steps_per_update={self.steps_per_update} is less than one step of the "
                f"{self.n_envs} copies (agent.n_envs)"
            )


@dataclass
class MADDPGConfig:
    """MADDPG (centralised critics, decentralised actors), native PyTorch; with one agent it is DDPG."""

    name: str = "maddpg"
    """Agent kind; selects the builder (do not change)."""
    n_envs: int = 16
    """Environment copies stepped together."""
    buffer_size: int = 200_000
    """Replay buffer capacity, in (joint) transitions."""
    learning_starts: int = 2_000
    """Environment steps of uniformly random actions collected before learning starts."""
    batch_size: int = 256
    """Minibatch size of each gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.01
    """Soft update coefficient of the target networks."""
    actor_learning_rate: float = 1e-3
    """Adam learning rate of the actors."""
    critic_learning_rate: float = 1e-3
    """Adam learning rate of the critics."""
    train_every: int = 1
    """Vector steps (of all n_envs copies) between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase."""
    noise_start: float = 0.3
    """Initial standard deviation of the Gaussian exploration noise (actions scaled to [-1, 1])."""
    noise_end: float = 0.05
    """Final standard deviation of the exploration noise."""
    noise_fraction: float = 0.5
    """Fraction of total_steps over which the noise decays linearly from noise_start to noise_end."""
    noise_correlation: float = 0.0
    """Step-to-step correlation of the noise in an episode (AR(1), i.e. Ornstein-Uhlenbeck-like); 0: independent."""
    gumbel_temperature: float = 1.0
    """Temperature of the Gumbel-softmax (discrete actions)."""
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of every actor and critic."""
    activation_fn: str = "relu"
    """Activation of the hidden layers: relu, tanh, elu, leaky_relu, gelu, silu."""
    share_parameters: bool = False
    """One actor and one critic for all agents (homogeneous agents; the critic gets an agent id)."""
    max_grad_norm: float = 0.0
    """Gradient clipping norm (0: no clipping)."""
    action_l2: float = 1e-3
    """Weight of the penalty on the actors' squared pre-activations (keeps tanh and logits unsaturated)."""
    twin_critics: bool = False
    """TD3: two critics per agent, the target uses the smaller estimate."""
    target_noise: float = 0.0
    """TD3: standard deviation of the noise on the target actions (continuous actions; 0: none)."""
    target_noise_clip: float = 0.5
    """TD3: the target noise is clipped to +- this."""
    policy_delay: int = 1
    """Critic updates per actor (and target actor) update; TD3 uses 2."""
    n_step: int = 1
    """Steps of the returns in the TD target (1: one-step MADDPG)."""
    ego_critic: bool = False
    """Each agent's critic sees the agents in order starting from itself (for shared critics)."""
    mirror_symmetry: bool = False
    """The env is unchanged when every observation and action is negated (cart-poles, springs included): odd
    actors, and every minibatch is half mirrored. Only for envs with that symmetry."""
    critic_layer_norm: bool = False
    """LayerNorm (without learned scale and shift) on every hidden layer of the critics."""
    eval_target_actor: bool = False
    """Deterministic actions (evaluations, rlkit eval) come from the target actors, the Polyak average of the
    actors' recent weights (``tau``), which are steadier than the latest weights."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        checks = {
            "n_envs": self.n_envs >= 1,
            "buffer_size": self.buffer_size >= 1,
            "learning_starts": self.learning_starts >= 0,
            "batch_size": self.batch_size >= 1,
            "gamma": 0.0 <= self.gamma <= 1.0,
            "tau": 0.0 < self.tau <= 1.0,
            "actor_learning_rate": self.actor_learning_rate > 0,
            "critic_learning_rate": self.critic_learning_rate > 0,
            "train_every": self.train_every >= 1,
            "gradient_steps": self.gradient_steps >= 1,
            "noise_start": self.noise_start >= 0,
            "noise_end": self.noise_end >= 0,
            "noise_fraction": 0.0 <= self.noise_fraction <= 1.0,
            "noise_correlation": 0.0 <= self.noise_correlation < 1.0,
            "gumbel_temperature": self.gumbel_temperature > 0,
            "max_grad_norm": self.max_grad_norm >= 0,
            "action_l2": self.action_l2 >= 0,
            "target_noise": self.target_noise >= 0,
            "target_noise_clip": self.target_noise_clip >= 0,
            "policy_delay": self.policy_delay >= 1,
            "n_step": self.n_step >= 1,
        }
        _check_ranges("agent", self, checks)
        _check_network(self.net_arch, self.activation_fn)


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


@functools.cache  # once per process: the ConfigStore keeps them
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


# ---------------------------------------------------------------------------------------------- composition
CONFIG_MODULE = "rlkit.configs"
"""The package that holds train.yaml, eval.yaml and the config groups."""


def hydra_configs() -> initialize_config_module:
    """Hydra's context for composing rlkit's configs, schemas registered (a ``with`` block)."""
    register_configs()
    return initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3")


def compose(overrides: list[str], config_name: str = "train") -> TrainConfig | EvalRunConfig:
    """The typed config that ``rlkit <command> <overrides>`` would run with, for programs and tests."""
    with hydra_configs():
        cfg = hydra_compose(config_name=config_name, overrides=overrides)
    check_known_keys(cfg)
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, TrainConfig | EvalRunConfig)
    return obj


def check_group_choices(config_name: str, overrides: list[str]) -> None:
    """Refuse ``GROUP=CHOICE`` overrides naming no config of the group, listing the valid choices.

    Hydra refuses them too, but its message also lists the ``*_schema`` configs and its search path.
    """
    with hydra_configs():
        loader = GlobalHydra.instance().config_loader()
        groups = {g for g in loader.list_groups("") if g != "hydra"}
        groups |= {f"hydra/{g}" for g in loader.list_groups("hydra")}  # hydra/launcher, hydra/sweeper, ...
        # Configs in directories added with hydra.searchpath=[...] (e.g. a sweep's best preset) are choices too.
        searchpath = [a for a in overrides if a.lstrip("+").startswith("hydra.searchpath=")]
        for arg in overrides:
            group, sep, value = arg.partition("=")
            group = group.lstrip("~+").split("@")[0]
            if not sep or group not in groups or value in ("", "null"):
                continue
            options = loader.get_group_options(group, config_name=config_name, overrides=searchpath)
            choices = [c for c in options if not c.endswith("_schema")]
            for choice in value.split(","):  # a multirun sweep lists several choices: each must exist
                if choice not in choices:
                    close = difflib.get_close_matches(choice, choices, n=1)
                    hint = f" Did you mean {group}={close[0]}?" if close else ""
                    raise RlkitError(
                        f"{group}={choice} names no config in group {group!r}; "
                        f"choose one of: {', '.join(choices) or '(none)'}.{hint}"
                    )
