"""Multi-agent envs as arrays with an agent axis, single-agent ones as a team of one, and joint control.

Agents observe flat Boxes (shorter ones zero-padded) and end together (else ValueError). Agents whose action spaces
differ (Discrete of any size, flat bounded Boxes of any size) act through a padded array: see :func:`padded_actions`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers import DiscretizeAction

from rlkit.envs.balancing_pole import reset_mask
from rlkit.envs.state import Snapshot


def _common_spaces(env: Any) -> tuple[list[str], spaces.Box, list[spaces.Space[Any]], list[int]]:
    """Agents, a common observation space (MPE's agents see different things), the action spaces, and sizes."""
    agents = list(env.possible_agents)
    obs_spaces = [env.observation_space(a) for a in agents]
    act_spaces = [env.action_space(a) for a in agents]
    if not all(isinstance(s, spaces.Box) and len(s.shape) == 1 for s in obs_spaces):
        raise ValueError(f"every agent's observations must be flat Boxes; this env has {obs_spaces}")
    sizes = [int(s.shape[0]) for s in obs_spaces]
    bounds = np.zeros((2, len(agents), max(sizes)), dtype=np.float32)
    for i, s in enumerate(obs_spaces):
        bounds[:, i, :sizes[i]] = s.low, s.high
    return agents, spaces.Box(bounds[0].min(0), bounds[1].max(0), dtype=np.float32), act_spaces, sizes


def padded_actions(act_spaces: list[spaces.Space[Any]]) -> spaces.Box:
    """The joint action of agents whose action spaces differ: one row per agent, zero-padded to the widest.

    A Discrete agent's row holds its action's index first; a Box agent's row its action. Raises ValueError for
    other spaces (only Discrete and flat bounded Boxes can be padded into one array).
    """
    widths = []
    for s in act_spaces:
        if isinstance(s, spaces.Discrete):
            widths.append(1)
        elif isinstance(s, spaces.Box) and len(s.shape) == 1 and np.isfinite(s.low).all() and \
                np.isfinite(s.high).all():
            widths.append(int(s.shape[0]))
        else:
            raise ValueError(f"agents with different action spaces must each have Discrete or flat bounded Box "
                             f"actions, got {s}")
    bounds = np.zeros((2, len(act_spaces), max(widths)), dtype=np.float32)
    for i, s in enumerate(act_spaces):
        if isinstance(s, spaces.Discrete):
            bounds[:, i, 0] = s.start, s.start + s.n - 1
        else:
            bounds[:, i, :widths[i]] = s.low, s.high  # type: ignore[attr-defined]
    return spaces.Box(bounds[0], bounds[1], dtype=np.float32)


def describe_spaces(agents: list[str], act_spaces: list[spaces.Space[Any]]) -> str:
    """``name: space`` of every agent, for messages."""
    return ", ".join(f"{a}: {s}" for a, s in zip(agents, act_spaces, strict=True))


def _joint_space(space: spaces.Space[Any], n: int) -> spaces.Space[Any]:
    """The space of n agents' values of ``space``, stacked on a leading agent axis."""
    if not isinstance(space, spaces.Discrete | spaces.Box):
        raise ValueError(f"agents' spaces must be Discrete or Box to be stacked into arrays, got {space}")
    return batch_space(space, n)


class ParallelArrayEnv(gym.Env):
    """A PettingZoo parallel env as a Gymnasium env of joint arrays (agent axis first), rewards one per agent.

    The team's episode ends when every agent is done: ``terminated`` if every agent terminated, else ``truncated``.
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        self.possible_agents, self.single_observation_space, self.agent_action_spaces, self._sizes = \
            _common_spaces(env)
        n = len(self.possible_agents)
        self.observation_space = _joint_space(self.single_observation_space, n)
        self.padded = any(s != self.agent_action_spaces[0] for s in self.agent_action_spaces[1:])
        """True where the agents' action spaces differ: actions are :func:`padded_actions` rows."""
        if not self.padded:
            self.single_action_space = self.agent_action_spaces[0]
            self.action_space = _joint_space(self.single_action_space, n)
        else:  # one padded row per agent; single_action_space: a row (the widest bounds over agents)
            self.action_space = padded_actions(self.agent_action_spaces)
            self.single_action_space = spaces.Box(self.action_space.low.min(0), self.action_space.high.max(0),
                                                  dtype=np.float32)
        self.metadata = dict(getattr(env, "metadata", {}))
        self.render_mode = getattr(env, "render_mode", None)

    @property
    def window_closed(self) -> bool:
        """True once the user has closed the wrapped env's human window."""
        return bool(getattr(self.env, "window_closed", False))

    def _stack(self, obs: dict[str, Any]) -> np.ndarray:
        out = np.zeros(self.observation_space.shape, dtype=np.float32)  # type: ignore[arg-type]
        for i, a in enumerate(self.possible_agents):
            out[i, :self._sizes[i]] = obs[a]
        return out

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the wrapped env; observations stacked in agent order."""
        super().reset(seed=seed)
        obs, infos = self.env.reset(seed=seed, options=options)
        missing = [a for a in self.possible_agents if a not in obs]
        if missing:
            raise ValueError(f"the env's reset left out agents {missing}; every agent must act from the start")
        return self._stack(obs), {"agents": infos}

    def step(self, action: Any) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        """Step with one action per agent (agent axis first)."""
        actions = np.asarray(action)
        if len(actions) != len(self.possible_agents):
            raise ValueError(f"expected one action per agent {self.possible_agents}, got an array of shape "
                             f"{actions.shape}")
        live = self.env.agents
        if len(live) != len(self.possible_agents):
            raise ValueError("step() after the episode ended, or with agents that left it mid-episode: "
                             f"live agents {live} of {self.possible_agents}")
        obs, rewards, terms, truncs, infos = self.env.step(
            {a: self._agent_action(i, actions[i]) for i, a in enumerate(self.possible_agents)})
        ended = [terms[a] or truncs[a] for a in self.possible_agents]
        if any(ended) and not all(ended):
            raise ValueError("agents of this env end their episodes at different times, which rlkit's "
                             f"multi-agent learners do not support (terminated {terms}, truncated {truncs})")
        terminated = all(terms[a] for a in self.possible_agents)
        truncated = all(ended) and not terminated
        reward = np.array([rewards[a] for a in self.possible_agents], dtype=np.float32)
        return self._stack(obs), reward, terminated, truncated, {"agents": infos}

    def _agent_action(self, i: int, action: np.ndarray) -> Any:
        """Agent ``i``'s action as its own space takes it (from its padded row, where spaces differ)."""
        space = self.agent_action_spaces[i]
        if isinstance(space, spaces.Discrete):
            return np.int64(np.ravel(action)[0] if self.padded else action)
        return action[:space.shape[0]] if self.padded else action  # type: ignore[index]

    def agent_row(self, i: int, action: Any) -> np.ndarray:
        """Agent ``i``'s action in its own space as its row of the joint action (where spaces differ: padded)."""
        if not self.padded:
            return np.asarray(action)
        row = np.zeros(self.action_space.shape[1], dtype=np.float32)  # type: ignore[index]
        row[:np.size(action)] = np.ravel(action)
        return row

    def render(self) -> Any:  # noqa: D102  (the base class's)
        return self.env.render()

    def close(self) -> None:  # noqa: D102  (the base class's)
        self.env.close()


class ParallelVectorEnv(Snapshot):
    """``num_envs`` copies of a PettingZoo parallel env made by ``make()``, stepped in turn, with the array API.

    Observations ``(num_envs, agents, obs_dim)``, actions ``(num_envs, agents, ...)``, rewards ``(num_envs, agents)``,
    flags ``(num_envs,)``; NEXT_STEP autoreset (reward 0); copy ``i`` reset with seed ``s`` gets ``s + i``.
    """

    _snapshot_attrs = ("_obs", "_prev_done")

    def __init__(self, make: Callable[[], Any], num_envs: int) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.envs = [ParallelArrayEnv(make()) for _ in range(num_envs)]
        first = self.envs[0]
        self.num_envs = num_envs
        self.possible_agents = first.possible_agents
        self.num_agents = len(self.possible_agents)
        self.single_observation_space = first.single_observation_space
        self.single_action_space, self.agent_action_spaces = first.single_action_space, first.agent_action_spaces
        self._obs = np.zeros((num_envs, *first.observation_space.shape), dtype=np.float32)  # type: ignore[misc]
        self._prev_done = np.zeros(num_envs, dtype=bool)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy, or those where ``options["reset_mask"]`` is True (Gymnasium's vector API)."""
        mask = reset_mask(options, self.num_envs)
        for i, env in enumerate(self.envs):
            if mask is None or mask[i]:
                self._obs[i] = env.reset(seed=None if seed is None else seed + i)[0]
                self._prev_done[i] = False
        return self._obs.copy(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy; copies that ended last step start a new episode instead."""
        actions = np.asarray(actions)
        n = self.num_envs
        rewards = np.zeros((n, self.num_agents), dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        for i, env in enumerate(self.envs):
            if self._prev_done[i]:
                self._obs[i] = env.reset()[0]
                continue
            self._obs[i], rewards[i], terminated[i], truncated[i], _ = env.step(actions[i])
        np.logical_or(terminated, truncated, out=self._prev_done)
        return self._obs.copy(), rewards, terminated, truncated, {}

    def close(self) -> None:  # noqa: D102  (the base class's)
        for env in self.envs:
            env.close()


class OneAgentVectorEnv:
    """A Gymnasium vector env (NEXT_STEP autoreset) seen as a team of one agent named ``agent_0``."""

    def __init__(self, envs: gym.vector.VectorEnv) -> None:
        self.envs = envs
        self.num_envs = envs.num_envs
        self.num_agents = 1
        self.possible_agents = ["agent_0"]
        self.single_observation_space = envs.single_observation_space
        self.single_action_space = envs.single_action_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy (or ``options["reset_mask"]``'s); observations gain an agent axis of length 1."""
        obs, infos = self.envs.reset(seed=seed, options=options)
        return obs[:, None], infos

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step with actions of shape (num_envs, 1, ...)."""
        obs, rewards, terminated, truncated, infos = self.envs.step(np.asarray(actions)[:, 0])
        return obs[:, None], np.asarray(rewards, dtype=np.float32)[:, None], terminated, truncated, infos

    def close(self) -> None:  # noqa: D102  (the base class's)
        self.envs.close()


class DiscretizedActions(DiscretizeAction):
    """Gymnasium's ``DiscretizeAction`` (a bounded 1-D Box as ``Discrete(bins ** dims)``) with the bins' endpoints.

    Action ``k`` sets dimension ``j`` to the ``(k // bins**j) % bins``-th of ``bins`` values from ``low[j]`` to
    ``high[j]`` (both included, so with odd ``bins`` zero is one). For value-based learners (DQN).
    """

    def __init__(self, env: gym.Env, bins: int) -> None:
        space = env.action_space
        if not (isinstance(space, spaces.Box) and len(space.shape) == 1 and np.isfinite(space.low).all()
                and np.isfinite(space.high).all()):
            raise ValueError(f"only a bounded 1-D Box action space can be discretised, got {space}")
        super().__init__(env, bins)
        self.values = np.linspace(space.low, space.high, bins, dtype=space.dtype).T  # (dims, bins)

    def action(self, action: Any) -> np.ndarray:
        """The Box action of a discrete index (or of an array of them, on the leading axis)."""
        k = np.asarray(action, dtype=np.int64)
        digits = (k[..., None] // self.bins ** np.arange(self.n_dims)) % self.bins  # (..., dims)
        return np.take_along_axis(self.values, digits.reshape(-1, self.n_dims).T, axis=1).T.reshape(
            *k.shape, self.n_dims)

    def revert_action(self, action: Any) -> int:
        """The index of the values nearest to a Box action (dimension 0 the fastest-changing digit)."""
        digits = np.abs(self.values - np.ravel(action)[:, None]).argmin(axis=1)
        return int(np.ravel_multi_index(digits[::-1], self.bins[::-1]))


class _Joint:
    """A team's joint observation (every agent's, concatenated) and joint action.

    The action is a flat Box of every agent's action, or one Discrete index per combination of the agents'
    discrete actions (agent 0's the fastest-changing digit).
    """

    def __init__(self, agent_space: spaces.Space[Any], observation_space: spaces.Box, agents: int) -> None:
        self.agents = agents
        self.observation_space = spaces.Box(np.tile(observation_space.low, agents),
                                            np.tile(observation_space.high, agents), dtype=np.float32)
        if isinstance(agent_space, spaces.Discrete):
            self.n = int(agent_space.n)
            self.space: spaces.Space[Any] = spaces.Discrete(self.n ** agents)
        elif isinstance(agent_space, spaces.Box) and len(agent_space.shape) == 1:
            self.n = 0
            self.space = spaces.Box(np.tile(agent_space.low, agents), np.tile(agent_space.high, agents),
                                    dtype=agent_space.dtype)  # type: ignore[arg-type]
        else:
            raise ValueError(f"joint control needs Discrete or flat Box agent actions, got {agent_space}")

    def split(self, action: Any) -> np.ndarray:
        """Joint action(s), leading axes kept -> per-agent actions (..., agents[, act_dim])."""
        a = np.asarray(action)
        if self.n:
            return (a.astype(np.int64)[..., None] // self.n ** np.arange(self.agents)) % self.n
        return a.reshape(*a.shape[:-1], self.agents, -1)


class JointControl(gym.Wrapper):
    """A :class:`ParallelArrayEnv` as one single-agent env, for single-agent learners to act for the team.

    Its observation and action are the joint ones (:class:`_Joint`); its reward is the team's mean.
    """

    def __init__(self, env: ParallelArrayEnv) -> None:
        super().__init__(env)
        self.joint = _Joint(env.single_action_space, env.single_observation_space, len(env.possible_agents))
        self.observation_space, self.action_space = self.joint.observation_space, self.joint.space

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the team; the observations concatenated."""
        obs, info = self.env.reset(**kwargs)
        return obs.reshape(-1), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Every agent's part of the joint action; the team's mean reward."""
        if not self.action_space.contains(np.asarray(action, dtype=getattr(self.action_space, "dtype", None))):
            raise ValueError(f"joint action {action!r} is outside the joint action space {self.action_space}")
        obs, rewards, terminated, truncated, info = self.env.step(self.joint.split(action))
        return obs.reshape(-1), float(np.mean(rewards)), terminated, truncated, info


class JointControlVectorEnv:
    """:class:`JointControl` over the array API of :class:`ParallelVectorEnv`, shaped as a Gymnasium vector env."""

    def __init__(self, envs: Any) -> None:
        self.envs = envs
        self.num_envs = envs.num_envs
        self.joint = _Joint(envs.single_action_space, envs.single_observation_space, envs.num_agents)
        self.single_observation_space, self.single_action_space = self.joint.observation_space, self.joint.space
        self.metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy (or ``options["reset_mask"]``'s); observations (copies, agents * obs_dim)."""
        obs, infos = self.envs.reset(seed=seed, options=options)
        return obs.reshape(self.num_envs, -1), infos

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step with one joint action per copy; rewards are each team's mean."""
        per_agent = self.joint.split(actions)
        if not self.joint.n:
            per_agent = per_agent.astype(np.float32)
        obs, rewards, terminated, truncated, infos = self.envs.step(per_agent)
        return obs.reshape(self.num_envs, -1), rewards.mean(axis=1), terminated, truncated, infos

    def close(self) -> None:  # noqa: D102  (the base class's)
        self.envs.close()
