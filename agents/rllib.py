"""RLlib's algorithms (PPO, APPO, IMPALA, DQN, SAC) behind rlkit's Agent interface, on Ray env runners.

Training::

    start Ray (a local instance on 127.0.0.1, or the cluster at RAY_ADDRESS) unless it is running
    build the RLlib algorithm: the env's copies on agent.num_env_runners Ray actors, the learner in this process
    repeat until total_steps:
        result = algorithm.train()                    one RLlib iteration: sample on the runners, update
        copy the policy's weights out of RLlib's learner into a plain torch network
        emit rlkit's events: each finished episode (from the runners' EpisodeReport callback), the update's metrics,
        the step count (evaluation and the best checkpoint use the plain torch network)
    stop the algorithm (and Ray, if this run started it)

The policy rlkit plays is RLlib's actor path rebuilt in plain torch (:class:`PolicyNet`: the same encoder layers and
action head, the same action distribution), so ``rlkit eval`` and ``rlkit.load`` need neither Ray nor RLlib, and
RLlib's own checkpoints (which unpickle) are never written or read. The value networks and optimizer state stay
inside RLlib: a run cannot be continued exactly. A multi-agent env trains one RLlib module per agent, through RLlib's
PettingZoo wrapper.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rlkit.agents.base import Agent
from rlkit.agents.config import ACTIVATIONS, RLlibConfig
from rlkit.agents.networks import activation_fn
from rlkit.callbacks import Callback, Episode
from rlkit.errors import ConfigError, RunDirError
from rlkit.ray_address import ADDRESS_ENV, check_reachable, local_on_loopback

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'rlkit[rllib]'"

# Where each algorithm's actor path lives in its RLModule's state dict: encoder layers, action head.
ACTOR_PATHS = {
    "PPO": ("encoder.actor_encoder.net.mlp.", "pi.net.mlp."),
    "APPO": ("encoder.actor_encoder.net.mlp.", "pi.net.mlp."),
    "IMPALA": ("encoder.actor_encoder.net.mlp.", "pi.net.mlp."),
    "DQN": ("encoder.net.mlp.", "af.net.mlp."),  # greedy on the advantages: the dueling value shifts all alike
    "SAC": ("pi_encoder.net.mlp.", "pi.net.mlp."),
}
# Action spaces each algorithm takes (RLlib's own support).
SUPPORTED_ACTIONS: dict[str, tuple[type, ...]] = {
    "PPO": (spaces.Discrete, spaces.Box), "APPO": (spaces.Discrete, spaces.Box),
    "IMPALA": (spaces.Discrete, spaces.Box), "DQN": (spaces.Discrete,), "SAC": (spaces.Box,)}



def check_spaces(algo: str, observation_space: gym.Space[Any], action_space: gym.Space[Any], label: str) -> None:
    """Refuse spaces the algorithm (or the plain torch policy) cannot take, in one line."""
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ConfigError(f"agent=rllib needs a flat Box observation space, but {label} has {observation_space}")
    wanted = SUPPORTED_ACTIONS[algo]
    if not isinstance(action_space, wanted):
        kinds = " or ".join(w.__name__ for w in wanted)
        other = "agent.algo=SAC or PPO" if algo == "DQN" else "agent.algo=DQN or PPO"
        raise ConfigError(f"agent.algo={algo} takes {kinds} actions, but {label}'s action space is {action_space}; "
                          f"use {other}")


# ---------------------------------------------------------------------------------------------- policy
class PolicyNet(nn.Module):
    """RLlib's actor path in plain torch: its encoder (activation after every layer) and its action head.

    Outputs: logits (Discrete; DQN: advantages), or mean and log-std (Box). A Box action is RLlib's: the mean
    (SAC: tanh of it) in [-1, 1] mapped onto the action bounds, as RLlib's ``normalize_actions`` does.
    """

    def __init__(self, cfg: RLlibConfig, observation_space: spaces.Box, action_space: gym.Space[Any]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for n_in, n_out in zip([int(np.prod(observation_space.shape)), *cfg.net_arch], cfg.net_arch, strict=False):
            layers += [nn.Linear(n_in, n_out), activation_fn(cfg.activation_fn)()]
        self.encoder = nn.Sequential(*layers)
        self.discrete = isinstance(action_space, spaces.Discrete)
        self.squashed = cfg.algo == "SAC"
        self.greedy = cfg.algo == "DQN"  # a Q-learner acts greedily, also when asked for a sample
        out = int(action_space.n) if isinstance(action_space, spaces.Discrete) else 2 * int(np.prod(action_space.shape))
        self.head = nn.Sequential(nn.Linear(cfg.net_arch[-1], out))
        if not self.discrete:
            assert isinstance(action_space, spaces.Box)
            self.action_shape = action_space.shape
            self.bounded = bool(np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all())
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1),
                                 persistent=False)
            self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1),
                                 persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The action distribution's inputs for a batch of observations."""
        return self.head(self.encoder(obs))

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic actions for a batch: argmax, or the mean (SAC: its tanh) mapped onto the bounds."""
        out = self(obs)
        if self.discrete:
            return out.argmax(-1)
        return self._to_bounds(out.chunk(2, dim=-1)[0])

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """Actions for a batch: :meth:`mode`, or a sample of the distribution (DQN: always greedy)."""
        if deterministic or self.greedy:
            return self.mode(obs)
        out = self(obs)
        if self.discrete:
            return torch.distributions.Categorical(logits=out).sample()
        mean, log_std = out.chunk(2, dim=-1)
        return self._to_bounds(mean + log_std.clamp(-20.0, 20.0).exp() * torch.randn_like(mean))

    def _to_bounds(self, action: torch.Tensor) -> torch.Tensor:
        # RLlib's normalize_actions: the policy acts in [-1, 1], mapped onto (and clipped to) finite bounds.
        if self.squashed:
            action = torch.tanh(action)
        if self.bounded:
            action = torch.maximum(torch.minimum(self.low + (action + 1.0) * (self.high - self.low) / 2.0,
                                                 self.high), self.low)
        return action.reshape(-1, *self.action_shape)

    def rllib_names(self, algo: str) -> dict[str, str]:
        """This network's state-dict names -> the names of the same tensors in RLlib's RLModule."""
        encoder, head = ACTOR_PATHS[algo]
        return {name: (encoder + name.removeprefix("encoder.") if name.startswith("encoder.")
                       else head + name.removeprefix("head."))
                for name in self.state_dict()}


# ---------------------------------------------------------------------------------------------- Ray
def import_rllib() -> Any:
    """``ray.rllib``, or a one-line error naming the extra that installs it."""
    local_on_loopback(os.environ.get(ADDRESS_ENV) or "local")
    try:
        import ray.rllib  # noqa: F401
        from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"agent=rllib needs RLlib ({e}); install it with {INSTALL_HINT}") from None
    import ray

    return ray


def check_picklable(make_env: Callable[[], Any], label: str) -> None:
    """Refuse, in one line, an env whose maker Ray cannot send to its env runners (it pickles it)."""
    from ray import cloudpickle

    try:
        cloudpickle.dumps(make_env)
    except Exception as e:  # PicklingError, TypeError, AttributeError: what cannot be pickled varies
        raise ConfigError(f"{label} cannot be sent to Ray's env runners ({type(e).__name__}: {e}); agent=rllib "
                          "needs an env whose maker can be pickled: create what cannot (locks, open files, "
                          "connections) inside the env's constructor") from None


def start_ray(ray: Any, num_cpus: int) -> bool:
    """Join the running Ray, the cluster at RAY_ADDRESS, or start a local instance on loopback; True if started."""
    if ray.is_initialized():
        return False
    address = os.environ.get(ADDRESS_ENV) or "local"
    if address not in ("local", "auto"):
        check_reachable(address)
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address == "local":
        kwargs["num_cpus"] = num_cpus or None
    try:
        ray.init(address=address, **kwargs)
    except Exception as e:  # ConnectionError, ValueError, RuntimeError: all the same to a user
        where = "a local instance" if address == "local" else f"the cluster at RAY_ADDRESS={address}"
        lines = [line for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
        raise ConfigError(f"agent=rllib cannot start or reach Ray at {where}: {lines[-1]}") from None
    return True


def rllib_algorithm_config(cfg: RLlibConfig, env_name: str, seed: int, agents: tuple[str, ...] = ()) -> Any:
    """RLlib's algorithm config for ``cfg``, its ``training()`` keys checked against the algorithm's.

    ``agents``: a multi-agent env's agents, each trained as its own RLModule (named as the agent).
    """
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from rlkit.agents.rllib_episodes import EpisodeReport

    module = importlib.import_module(f"ray.rllib.algorithms.{cfg.algo.lower()}")
    config = getattr(module, f"{cfg.algo}Config")()
    # An algorithm's training() takes its own keywords and passes the rest (**kwargs) on to its base classes'.
    known = sorted({p for cls in type(config).__mro__ if "training" in vars(cls)
                    for p in inspect.signature(vars(cls)["training"]).parameters if p not in ("self", "kwargs")})
    training = dict(cfg.training)
    for key in training:
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"agent.training.{key} is not an argument of RLlib's {cfg.algo}Config.training().{hint}")
    for key, value in (("lr", cfg.learning_rate), ("gamma", cfg.gamma),
                       ("train_batch_size_per_learner", cfg.train_batch_size)):
        if value is not None:
            training.setdefault(key, value)
    if agents:
        config = config.multi_agent(policies=set(agents), policy_mapping_fn=lambda agent_id, *_, **__: agent_id)
    return (config.environment(env_name)
            .framework("torch")
            .env_runners(num_env_runners=cfg.num_env_runners, num_envs_per_env_runner=cfg.num_envs_per_env_runner,
                         num_cpus_per_env_runner=1)
            .learners(num_learners=0, num_gpus_per_learner=0)
            .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(cfg.net_arch),
                                                        fcnet_activation=ACTIVATIONS[cfg.activation_fn],
                                                        vf_share_layers=False))
            .callbacks(EpisodeReport)
            .debugging(seed=seed, log_level="ERROR")
            .training(**training))


def finished_episodes(value: Any) -> list[tuple[float, int, dict[str, float]]]:
    """The iteration's ``rlkit_episodes`` as a list: RLlib gives NaN (or nothing) for none, the item itself for one."""
    if not isinstance(value, list | tuple):
        return []
    if len(value) == 3 and isinstance(value[2], dict):  # one episode: (return, length, agents' returns)
        return [tuple(value)]  # type: ignore[list-item]
    return [tuple(v) for v in value]  # type: ignore[misc]


def _numbers(metrics: Any, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of RLlib's nested learner results, by slash-joined name."""
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, dict):
            out.update(_numbers(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float | np.number) and not isinstance(value, bool) and np.isfinite(value):
            out[f"{prefix}{key}"] = float(value)
    return out


def parallel_env(env: Any) -> Any:
    """The PettingZoo parallel env inside rlkit's wrappers of a multi-agent env (its checks, its joint arrays)."""
    from rlkit.envs.adapters import ParallelArrayEnv

    while not isinstance(env, ParallelArrayEnv):
        env = env._inner if hasattr(env, "_inner") else env.env
    return env.env


def make_multi_agent(make_env: Callable[[], gym.Env]) -> Any:
    """RLlib's multi-agent env (its PettingZoo wrapper) of a new copy of a multi-agent env."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    return ParallelPettingZooEnv(parallel_env(make_env()))


# ---------------------------------------------------------------------------------------------- the agent
class RLlibAgent(Agent):
    """An RLlib algorithm trained on env runners; acting, saving and loading go through :class:`PolicyNet`.

    A multi-agent env (``agents`` given) trains one policy per agent (RLlib's multi-agent API, through its
    PettingZoo wrapper); ``act`` then takes and returns rlkit's joint arrays (agent axis second).
    """

    def __init__(self, cfg: RLlibConfig, make_env: Callable[[], gym.Env], label: str, seed: int,
                 training: bool = True, agents: tuple[str, ...] = ()) -> None:
        self.cfg, self.make_env, self.label, self.seed, self.agents = cfg, make_env, label, seed, agents
        env = make_env()
        self.observation_space, self.action_space = env.observation_space, env.action_space
        if agents:
            if getattr(env, "padded", False):
                env.close()
                raise ConfigError(f"agent=rllib trains agents with the same action space, and {label}'s differ; "
                                  "use agent=maddpg")
            inner = parallel_env(env)
            spaces_of = {a: (inner.observation_space(a), inner.action_space(a)) for a in agents}
        else:
            spaces_of = {"": (self.observation_space, self.action_space)}
        env.close()
        for agent, (obs_space, act_space) in spaces_of.items():
            check_spaces(cfg.algo, obs_space, act_space, f"{label}'s {agent}" if agent else label)
        if training:
            self._ray = import_rllib()
        if agents:
            self.policy: nn.Module = nn.ModuleDict({a: PolicyNet(cfg, *spaces_of[a]) for a in agents})
            self._sizes = [int(spaces_of[a][0].shape[0]) for a in agents]
        else:
            self.policy = PolicyNet(cfg, self.observation_space, self.action_space)
        self.num_steps = 0

    def _modules(self) -> dict[str, PolicyNet]:
        """The plain torch policies by RLlib module id."""
        if self.agents:
            return {a: self.policy[a] for a in self.agents}  # type: ignore[index]
        return {"default_policy": self.policy}  # type: ignore[dict-item]

    # -- training
    def learn(self, total_steps: int, callback: Callback) -> None:
        """RLlib iterations until ``total_steps`` environment steps (or a callback stops it)."""
        from ray.tune.registry import register_env

        from rlkit.agents.rllib_episodes import EPISODES_KEY

        ray = self._ray
        check_picklable(self.make_env, self.label)  # before Ray starts: the env runners get the env's maker
        started = start_ray(ray, self.cfg.num_cpus)
        algo = None
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            if self.cfg.num_env_runners > cpus:
                raise ConfigError(f"agent.num_env_runners={self.cfg.num_env_runners} needs as many CPUs (one per env "
                                  f"runner), but Ray has {cpus}; lower it, or raise agent.num_cpus")
            env_name = f"rlkit-{self.label}-{uuid.uuid4().hex[:8]}"
            make_env = self.make_env
            if self.agents:
                register_env(env_name, lambda _env_config: make_multi_agent(make_env))
            else:
                register_env(env_name, lambda _env_config: make_env())
            algo = rllib_algorithm_config(self.cfg, env_name, self.seed, self.agents).build_algo()
            self._check_module(algo)
            log.info("RLlib %s: %d env runner(s) x %d copies on %s", self.cfg.algo, self.cfg.num_env_runners,
                     self.cfg.num_envs_per_env_runner, "Ray's local instance" if started else "the running Ray")
            while self.num_steps < total_steps:
                t0 = time.perf_counter()
                result = algo.train()
                runners = result.get("env_runners", {})
                self.num_steps = int(runners.get("num_env_steps_sampled_lifetime", self.num_steps))
                self._pull_weights(algo)
                for ret, length, agents in finished_episodes(runners.get(EPISODES_KEY)):
                    if self.agents:  # each agent's return, then the team's mean under the plain tags
                        for agent in self.agents:
                            callback.on_episode_end(Episode(self.num_steps, agents.get(agent, 0.0), length, agent))
                        ret = float(np.mean([agents.get(a, 0.0) for a in self.agents]))
                    callback.on_episode_end(Episode(self.num_steps, ret, length))
                learners = result.get("learners", {})
                metrics = {f"{m}/{k}" if self.agents else k: v for m in self._modules()
                           for k, v in _numbers(learners.get(m, {})).items()}
                metrics["iteration_seconds"] = time.perf_counter() - t0
                callback.on_update(self.num_steps, metrics)
                if not callback.on_step(self.num_steps):
                    break
                callback.on_safe_point()
        finally:
            if algo is not None:
                algo.stop()
            if started:
                ray.shutdown()

    def _check_module(self, algo: Any) -> None:
        """The RLModules RLlib built hold the actor paths :class:`PolicyNet` expects, of the same shapes."""
        modules = self._modules()
        weights = algo.learner_group.get_weights(list(modules))
        for module_id, net in modules.items():
            for name, rllib_name in net.rllib_names(self.cfg.algo).items():
                ours, theirs = net.state_dict()[name], weights[module_id].get(rllib_name)
                if theirs is None or tuple(np.shape(theirs)) != tuple(ours.shape):
                    raise ConfigError(f"RLlib's {self.cfg.algo} module has no tensor {rllib_name} of shape "
                                      f"{tuple(ours.shape)}: this RLlib version's model layout is not one rlkit reads")

    def _pull_weights(self, algo: Any) -> None:
        """Copy the actor paths' weights out of RLlib's learner into the plain torch networks."""
        modules = self._modules()
        weights = algo.learner_group.get_weights(list(modules))
        for module_id, net in modules.items():
            net.load_state_dict({name: torch.as_tensor(np.asarray(weights[module_id][rllib_name]),
                                                       dtype=torch.float32)
                                 for name, rllib_name in net.rllib_names(self.cfg.algo).items()})

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions of the plain torch policy for a batch of observations (multi-agent: ``(n, agents, obs)``)."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        if not self.agents:
            return self.policy.act(x.reshape(len(x), -1), deterministic).numpy()  # type: ignore[operator]
        actions = [self.policy[a].act(x[:, i, :size], deterministic)  # type: ignore[index]
                   for i, (a, size) in enumerate(zip(self.agents, self._sizes, strict=True))]
        return torch.stack(actions, dim=1).numpy()

    # -- checkpoints: the actor paths' tensors only (RLlib keeps the value networks and optimizers)
    def saved_names(self) -> list[str]:
        """The plain torch policy (multi-agent: every agent's, by name)."""
        return ["policy"]

    def checkpoint_meta(self) -> dict[str, Any]:
        """What wrote the checkpoint, and the step count."""
        return {"agent": self.cfg.name, "algo": f"rllib-{self.cfg.algo}", "num_steps": int(self.num_steps)}

    def training_state(self) -> dict[str, Any]:
        """The step count; RLlib's value networks, optimizers and env runners are not part of it."""
        return {"num_steps": int(self.num_steps)}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Refused: RLlib's training state lives in its own (pickled) checkpoints, which rlkit never loads."""
        raise RunDirError("agent=rllib runs cannot be continued: RLlib keeps its value networks, optimizers and env "
                          "runners' state in its own pickled checkpoints, which rlkit never loads; the policy's "
                          "weights are in the run's checkpoints/, start a new run to train further")
