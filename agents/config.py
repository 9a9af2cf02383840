"""The agents' config schemas: every default and its documentation. No torch here, so composing stays fast."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from rlkit.errors import ConfigError

ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "elu": "ELU", "leaky_relu": "LeakyReLU", "gelu": "GELU",
               "silu": "SiLU"}
"""``activation_fn`` names and the ``torch.nn`` classes they stand for (looked up in rlkit.agents.networks)."""


def check_agent(cfg: Any, ranges: dict[str, bool]) -> None:
    """Raise for the first field whose range check is False (quoting its value), then check the network."""
    for key, ok in ranges.items():
        if not ok:
            raise ConfigError(f"agent.{key}={getattr(cfg, key)} is out of range")
    if not cfg.net_arch or any(n < 1 for n in cfg.net_arch):
        raise ConfigError(f"agent.net_arch must list positive layer sizes, got {cfg.net_arch}")
    if cfg.activation_fn not in ACTIVATIONS:
        raise ConfigError(f"agent.activation_fn={cfg.activation_fn!r} is unknown; choose one of {sorted(ACTIVATIONS)}")


def memory_needed(cfg: Any, obs_size: int, action_size: int) -> dict[str, int]:
    """Bytes of float32 memory an agent allocates before it learns, by the key that sets them; a lower bound.

    ``agent.net_arch``: one network from observation to action with its gradients and Adam's two moments (agents
    have two or more); ``agent.buffer_size``: the replay buffer's observations, next observations, actions,
    rewards and flags.
    """
    layers = [obs_size, *cfg.net_arch, action_size]
    params = sum((n_in + 1) * n_out for n_in, n_out in zip(layers, layers[1:], strict=False))
    needed = {"agent.net_arch": 4 * 4 * params}
    if hasattr(cfg, "buffer_size"):
        obs_copies = 1 if getattr(cfg, "optimize_memory_usage", False) else 2
        needed["agent.buffer_size"] = 4 * cfg.buffer_size * (obs_copies * obs_size + action_size + 3)
    return needed


# ---------------------------------------------------------------------------------------------- stable-baselines3
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
    """Torch device: cpu, cuda, or auto (SB3's default is auto; small MLPs are faster and reproducible on CPU)."""

    def _ranges(self) -> dict[str, bool]:  # range checks of the fields, by name; subclasses add theirs
        return {"n_envs": self.n_envs >= 1, "learning_rate": self.learning_rate > 0, "gamma": 0.0 <= self.gamma <= 1.0}

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        check_agent(self, self._ranges())


@dataclass
class OnPolicyConfig(SB3Config):
    """The rollout arguments PPO and A2C share."""

    n_steps: int = 2048
    """Steps per copy in each rollout (between updates)."""
    gae_lambda: float = 0.95
    """GAE lambda (1: plain n-step advantages)."""
    ent_coef: float = 0.0
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight."""
    max_grad_norm: float = 0.5
    """Gradient clipping norm."""
    normalize_advantage: bool = True
    """Standardise advantages (PPO: per minibatch)."""

    def _ranges(self) -> dict[str, bool]:
        return {**super()._ranges(), "n_steps": self.n_steps >= 1, "gae_lambda": 0.0 <= self.gae_lambda <= 1.0}


@dataclass
class PPOConfig(OnPolicyConfig):
    """Proximal Policy Optimization through stable-baselines3; the defaults are SB3's own."""

    name: str = "ppo"
    algo: str = "PPO"
    batch_size: int = 64
    """Minibatch size."""
    n_epochs: int = 10
    """Passes over each rollout."""
    clip_range: float = 0.2
    """Clipping of the probability ratio."""
    target_kl: float | None = None
    """Stop an update's epochs early past this KL divergence; empty: never."""

    def _ranges(self) -> dict[str, bool]:
        return {**super()._ranges(), "batch_size": self.batch_size >= 1, "n_epochs": self.n_epochs >= 1,
                "clip_range": self.clip_range > 0}


@dataclass
class A2CConfig(OnPolicyConfig):
    """Advantage Actor-Critic through stable-baselines3; the defaults are SB3's own."""

    name: str = "a2c"
    algo: str = "A2C"
    learning_rate: float = 7e-4
    n_steps: int = 5
    gae_lambda: float = 1.0
    normalize_advantage: bool = False
    use_rms_prop: bool = True
    """RMSprop (true) or Adam (false)."""


@dataclass
class OffPolicyConfig(SB3Config):
    """The replay-buffer arguments DQN, SAC and TD3 share."""

    buffer_size: int = 1_000_000
    """Replay buffer capacity, in transitions."""
    learning_starts: int = 100
    """Environment steps collected before learning starts."""
    batch_size: int = 256
    """Minibatch size of each gradient step."""
    tau: float = 0.005
    """Soft update coefficient of the target networks (1 = hard copy)."""
    train_freq: int = 1
    """Environment steps (per copy) between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase (-1: as many as steps collected)."""
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer sizes of the actor and the critics."""
    activation_fn: str = "relu"

    def _ranges(self) -> dict[str, bool]:
        return {**super()._ranges(), "buffer_size": self.buffer_size >= 1, "learning_starts": self.learning_starts >= 0,
                "batch_size": self.batch_size >= 1, "tau": 0.0 < self.tau <= 1.0, "train_freq": self.train_freq >= 1}


@dataclass
class DQNConfig(OffPolicyConfig):
    """Deep Q-Network through stable-baselines3; the defaults are SB3's own (but device: cpu)."""

    name: str = "dqn"
    algo: str = "DQN"
    learning_rate: float = 1e-4
    batch_size: int = 32
    tau: float = 1.0
    train_freq: int = 4
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer sizes of the Q-network."""
    n_steps: int = 1
    """Steps of n-step returns in the TD target (1: plain one-step DQN)."""
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
    action_bins: int = 5
    """Continuous (bounded Box) actions are discretised into this many values per dimension (0: refuse them)."""

    def _ranges(self) -> dict[str, bool]:
        return {**super()._ranges(), "action_bins": self.action_bins == 0 or self.action_bins >= 2,
                "n_steps": self.n_steps >= 1, "target_update_interval": self.target_update_interval >= 1,
                "exploration_fraction": 0.0 <= self.exploration_fraction <= 1.0,
                "exploration_initial_eps": 0.0 <= self.exploration_initial_eps <= 1.0,
                "exploration_final_eps": 0.0 <= self.exploration_final_eps <= 1.0}


@dataclass
class SACConfig(OffPolicyConfig):
    """Soft Actor-Critic through stable-baselines3 (continuous actions); the defaults are SB3's own."""

    name: str = "sac"
    algo: str = "SAC"
    ent_coef: str = "auto"
    """Entropy coefficient: a number, auto (learned), or auto_<initial value>."""
    target_entropy: str = "auto"
    """Target entropy of the learned coefficient: auto (-action dims) or a number."""
    target_update_interval: int = 1
    """Gradient steps between target network updates."""


@dataclass
class TD3Config(OffPolicyConfig):
    """Twin Delayed DDPG through stable-baselines3 (continuous actions); the defaults are SB3's own."""

    name: str = "td3"
    algo: str = "TD3"
    learning_rate: float = 1e-3
    net_arch: list[int] = field(default_factory=lambda: [400, 300])
    policy_delay: int = 2
    """Critic updates per actor (and target) update."""
    target_policy_noise: float = 0.2
    """Standard deviation of the smoothing noise on target actions."""
    target_noise_clip: float = 0.5
    """Clip of that noise."""
    action_noise_std: float = 0.1
    """Gaussian exploration noise, as a fraction of the action range's half-width (SB3 has none by default)."""


# ---------------------------------------------------------------------------------------------- native agents
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
    """Gradient steps on the value baseline per update (per minibatch with n_epochs/batch_size)."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before returns and advantages, so the baseline learns returns of that scale."""
    gae_lambda: float = 1.0
    """Lambda of GAE(lambda) advantages from the baseline; 1: Monte-Carlo returns minus the baseline (REINFORCE)."""
    clip_range: float | None = None
    """If set: PPO's clipped surrogate, the probability ratio clipped to 1 +- clip_range; null: plain REINFORCE loss."""
    n_epochs: int = 1
    """Passes over each batch (more than 1 needs clip_range)."""
    batch_size: int = 0
    """Steps per minibatch of each pass, shuffled (0: one step on the whole batch; a size needs clip_range)."""
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
        check_agent(self, {
            "n_envs": self.n_envs >= 1, "episodes_per_update": self.episodes_per_update >= 1,
            "steps_per_update": self.steps_per_update >= 0, "gamma": 0.0 <= self.gamma <= 1.0,
            "learning_rate": self.learning_rate > 0, "value_learning_rate": self.value_learning_rate > 0,
            "value_gradient_steps": self.value_gradient_steps >= 1, "entropy_coef": self.entropy_coef >= 0,
            "max_grad_norm": self.max_grad_norm >= 0, "reward_scale": self.reward_scale > 0,
            "gae_lambda": 0.0 <= self.gae_lambda <= 1.0, "clip_range": self.clip_range is None or self.clip_range > 0,
            "n_epochs": self.n_epochs >= 1, "batch_size": self.batch_size >= 0,
        })
        if self.gae_lambda < 1.0 and not self.baseline:
            raise ConfigError(f"agent.gae_lambda={self.gae_lambda} computes advantages from the value baseline: set "
                              "agent.baseline=true, or agent.gae_lambda=1.0")
        if self.clip_range is None and (self.n_epochs > 1 or self.batch_size > 0):
            key = "n_epochs" if self.n_epochs > 1 else "batch_size"
            raise ConfigError(f"agent.{key}={getattr(self, key)} reuses a batch for several steps, which needs the "
                              "clipped surrogate: set agent.clip_range (e.g. 0.2)")
        if self.steps_per_update > 0 and not self.baseline:
            raise ConfigError(f"agent.steps_per_update={self.steps_per_update} cuts episodes, whose returns must be "
                              "bootstrapped with the value baseline: set agent.baseline=true, or batch by whole "
                              "episodes with agent.steps_per_update=0")
        if 0 < self.steps_per_update < self.n_envs:
            raise ConfigError(f"agent.steps_per_update={self.steps_per_update} is less than one step of the "
                              f"{self.n_envs} copies (agent.n_envs)")


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
    gumbel_hard: bool = True
    """Discrete actions reach the critics as one-hots (straight-through Gumbel-softmax); false: as the relaxed
    samples, stored in the buffer, drawn for the actor update and the targets (the MADDPG paper's code); the env
    always gets the sample's argmax."""
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
    """For envs unchanged by negating every observation and action (cart-poles): odd actors, mirrored minibatches."""
    critic_layer_norm: bool = False
    """LayerNorm (without learned scale and shift) on every hidden layer of the critics."""
    eval_target_actor: bool = False
    """Deterministic actions (evaluations, rlkit eval) from the target actors, steadier than the latest weights."""
    signalling_agents: list[str] = field(default_factory=list)
    """Discrete agents whose actions are messages (e.g. [speaker_0]): their actors also maximise the mutual
    information between observation and message (positive signalling, Eccles et al., 2019), so different
    observations get different words before any listener uses them."""
    signalling_coef: float = 0.1
    """Weight of the signalling agents' mutual information (in nats) in their actor loss."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        check_agent(self, {
            "n_envs": self.n_envs >= 1, "buffer_size": self.buffer_size >= 1,
            "learning_starts": self.learning_starts >= 0, "batch_size": self.batch_size >= 1,
            "gamma": 0.0 <= self.gamma <= 1.0, "tau": 0.0 < self.tau <= 1.0,
            "actor_learning_rate": self.actor_learning_rate > 0, "critic_learning_rate": self.critic_learning_rate > 0,
            "train_every": self.train_every >= 1, "gradient_steps": self.gradient_steps >= 1,
            "noise_start": self.noise_start >= 0, "noise_end": self.noise_end >= 0,
            "noise_fraction": 0.0 <= self.noise_fraction <= 1.0,
            "noise_correlation": 0.0 <= self.noise_correlation < 1.0,
            "gumbel_temperature": self.gumbel_temperature > 0, "max_grad_norm": self.max_grad_norm >= 0,
            "action_l2": self.action_l2 >= 0, "target_noise": self.target_noise >= 0,
            "target_noise_clip": self.target_noise_clip >= 0, "policy_delay": self.policy_delay >= 1,
            "n_step": self.n_step >= 1, "signalling_coef": self.signalling_coef >= 0,
        })


# ---------------------------------------------------------------------------------------------- RLlib
RLLIB_ALGOS = ("PPO", "APPO", "IMPALA", "DQN", "SAC")
"""The RLlib algorithms ``agent=rllib`` trains (RLlib's new API stack, torch)."""


@dataclass
class RLlibConfig:
    """An RLlib algorithm on RLlib's env runners (Ray actors); rlkit plays its policy in plain torch.

    Empty (null) numbers keep RLlib's own default for the algorithm.
    """

    name: str = "rllib"
    """Agent kind; selects the builder (do not change)."""
    algo: str = "PPO"
    """RLlib algorithm: PPO, APPO, IMPALA, DQN (discrete actions) or SAC (continuous actions)."""
    num_env_runners: int = 2
    """Env runners (Ray actors, one CPU each) that step environment copies; 0: sample in the training process."""
    num_envs_per_env_runner: int = 1
    """Environment copies each env runner steps as one vector env."""
    learning_rate: float | None = None
    """Learning rate (RLlib's ``lr``); empty: RLlib's default for the algorithm."""
    gamma: float | None = None
    """Discount factor; empty: RLlib's default (0.99)."""
    train_batch_size: int | None = None
    """RLlib's ``train_batch_size_per_learner``: PPO, APPO, IMPALA: steps per update; DQN, SAC: the replay
    minibatch. Empty: RLlib's default."""
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer sizes of the policy (and value) encoders (RLlib's ``fcnet_hiddens``)."""
    activation_fn: str = "tanh"
    """Activation of the hidden layers: relu, tanh, elu, leaky_relu, gelu, silu (RLlib's ``fcnet_activation``)."""
    training: dict[str, Any] = field(default_factory=dict)
    """More keyword arguments of the algorithm config's ``training()``, e.g. +agent.training.num_epochs=6."""
    num_cpus: int = 0
    """CPUs of a local Ray instance started for the run (0: all of this machine's); unused with RAY_ADDRESS."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        if self.algo not in RLLIB_ALGOS:
            close = difflib.get_close_matches(self.algo.upper(), RLLIB_ALGOS, n=1, cutoff=0.4)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"agent.algo={self.algo} is not an RLlib algorithm rlkit trains; choose one of "
                              f"{', '.join(RLLIB_ALGOS)}.{hint}")
        check_agent(self, {
            "num_env_runners": self.num_env_runners >= 0, "num_envs_per_env_runner": self.num_envs_per_env_runner >= 1,
            "learning_rate": self.learning_rate is None or self.learning_rate > 0,
            "gamma": self.gamma is None or 0.0 <= self.gamma <= 1.0,
            "train_batch_size": self.train_batch_size is None or self.train_batch_size >= 1,
            "num_cpus": self.num_cpus >= 0,
        })


AGENT_SCHEMAS: dict[str, type] = {
    "dqn": DQNConfig,
    "reinforce": ReinforceConfig,
    "maddpg": MADDPGConfig,
    "ppo": PPOConfig,
    "a2c": A2CConfig,
    "sac": SACConfig,
    "td3": TD3Config,
    "rllib": RLlibConfig,
}
"""Agent schemas by config ``name``."""
