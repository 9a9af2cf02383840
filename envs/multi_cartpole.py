"""Multi-agent cart-pole: one cart per agent, each balancing its own pole, optionally joined by springs."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pettingzoo
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils import parallel_to_aec, wrappers

from rlkit.env_schemas import MULTI_CARTPOLE_ID, MultiCartPoleConfig
from rlkit.envs.balancing_pole import ResetStreams, _Physics, env_config, reset_mask, step_arrays
from rlkit.envs.checks import check_agent_actions
from rlkit.envs.rendering import CanvasOwner, draw_cart_pole
from rlkit.envs.state import Snapshot


class _Carts:
    """What the single and the batched env share: the balancing pole's physics plus springs, observations, checks."""

    def __init__(self, cfg: MultiCartPoleConfig) -> None:
        self.n = cfg.num_agents
        self.phys = _Physics(cfg)
        self.coupling = float(cfg.coupling)
        self.k_m = self.coupling * self.phys.inv_total_mass  # spring stiffness over total mass
        self.continuous = cfg.continuous
        self.observe_neighbours = cfg.observe_neighbours
        own, self.action_space = self.phys.spaces
        repeat = 3 if cfg.observe_neighbours else 1
        self.observation_space = spaces.Box(np.tile(own.low, repeat), np.tile(own.high, repeat), dtype=np.float32)
        self.push = np.array(self.phys.push)

    def step(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Push every cart by its (checked) action and the springs for ``tau`` seconds; which carts are out."""
        if self.continuous:
            force_m = actions.reshape(-1).astype(np.float64) * self.phys.force_mag
            force_m *= self.phys.inv_total_mass
        else:
            force_m = self.push.take(actions.reshape(-1).astype(np.int64))
        if self.k_m != 0.0 and self.n > 1:
            f, x = force_m.reshape(-1, self.n), state[0].reshape(-1, self.n)
            pull = (x[:, 1:] - x[:, :-1]) * self.k_m
            f[:, :-1] += pull  # cart i is pulled towards cart i + 1 ...
            f[:, 1:] -= pull  # ... and cart i + 1 towards cart i, by the same force
        return step_arrays(self.phys, state, force_m)

    def observations(self, state: np.ndarray) -> np.ndarray:
        """(copies, agents, obs_dim) float32: each cart's state, then its neighbours' (zeros past the ends)."""
        own = state.T.astype(np.float32).reshape(-1, self.n, 4)
        if not self.observe_neighbours:
            return own
        padded = np.zeros((own.shape[0], self.n + 2, 4), dtype=np.float32)
        padded[:, 1:-1] = own
        return np.concatenate([own, padded[:, :-2], padded[:, 2:]], axis=-1)

    def check(self, actions: np.ndarray, shape: tuple[int, ...]) -> str | None:
        """What is wrong with an array of actions, or None."""
        if self.continuous:
            if actions.shape != shape or actions.dtype.kind != "f" or not (np.abs(actions) <= 1.0).all():
                return f"expected finite numbers in [-1, 1] of shape {shape}, got shape {actions.shape} " \
                       f"dtype {actions.dtype}"
            return None
        if actions.shape != shape or actions.dtype.kind not in "iub" or \
                (actions.astype(np.int64).view(np.uint64) > 1).any():
            return f"expected integers 0 (push left) or 1 (push right) of shape {shape}, got shape " \
                   f"{actions.shape} dtype {actions.dtype}"
        return None


def max_cycles_alias(params: dict[str, Any]) -> dict[str, Any]:
    """``max_cycles``, PettingZoo's name for the episode limit, as ``max_episode_steps``."""
    if "max_cycles" not in params:
        return params
    params = dict(params)
    cycles = params.pop("max_cycles")
    if params.setdefault("max_episode_steps", cycles) != cycles:
        raise TypeError(f"max_cycles={cycles} and max_episode_steps={params['max_episode_steps']} name the same "
                        "limit: give one of them")
    return params


class MultiCartPoleEnv(Snapshot, CanvasOwner, ParallelEnv):
    """Several agents each balance a pole on their own cart; springs can couple neighbouring carts.

    ## Description
    ``num_agents`` balancing poles on parallel tracks; agent ``cart_i`` pushes cart ``i``. With ``coupling`` > 0 a
    spring pulls carts ``i`` and ``i + 1`` together with equal and opposite forces ``coupling * (x_{i+1} - x_i)``.

    ## Action Space (per agent)
    ``Box(-1, 1, (1,), float32)``, the push ``action * force_mag``; with ``continuous=False``, ``Discrete(2)``.

    ## Observation Space (per agent)
    The agent's cart-pole state ``(4,)``; with ``observe_neighbours=True``, ``(12,)``: then its left and right
    neighbours' (zeros where there is none). ``state()`` is every cart's, ``(4 * num_agents,)``.

    ## Rewards
    1 per step for every agent, the last one included: 500 at most, solved at 475.

    ## Episode End
    For the whole team: termination when any cart leaves its track or any pole falls; truncation at
    ``max_episode_steps``. Then ``agents`` is empty until ``reset``.

    ## Arguments
    ``multi_cartpole_v0.parallel_env(num_agents=2, coupling=2.0, render_mode="human")`` (``from rlkit.envs import
    multi_cartpole_v0``): the fields of :class:`MultiCartPoleConfig` but ``name`` and ``reward_threshold``;
    ``max_cycles``, PettingZoo's name, sets ``max_episode_steps``.
    Cart ``i`` reset with seed ``s`` starts as a balancing pole reset with seed ``s + i``.

    ## Version History
    * v0: initial version.
    """

    _snapshot_attrs = ("_state", "_streams", "_steps", "agents")
    metadata = {"name": "multi_cartpole_v0", "render_modes": ["human", "rgb_array"], "render_fps": 50,
                "is_parallelizable": True}

    def __init__(self, render_mode: str | None = None, **params: Any) -> None:
        cfg = env_config(MultiCartPoleConfig, max_cycles_alias(params), render_mode, self.metadata["render_modes"])
        self._carts = _Carts(cfg)
        self.max_episode_steps, self.render_mode = cfg.max_episode_steps, render_mode
        self.possible_agents = [f"cart_{i}" for i in range(cfg.num_agents)]
        self.agents: list[str] = []
        # One space object per agent, so seeding one agent's space does not touch another's.
        self.observation_spaces = {a: copy.deepcopy(self._carts.observation_space) for a in self.possible_agents}
        self.action_spaces = {a: copy.deepcopy(self._carts.action_space) for a in self.possible_agents}
        low, high = self._carts.observation_space.low[:4], self._carts.observation_space.high[:4]
        self.state_space = spaces.Box(np.tile(low, cfg.num_agents), np.tile(high, cfg.num_agents), dtype=np.float32)
        n = cfg.num_agents
        self._state = np.zeros((4, n))
        self._streams = ResetStreams(n)
        self._steps = 0

    def observation_space(self, agent: str) -> spaces.Space[Any]:  # noqa: D102  (PettingZoo's)
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:  # noqa: D102  (PettingZoo's)
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start every cart upright-ish: each state variable uniform in (-0.05, 0.05)."""
        self._streams.seed(seed)
        self._state[:] = self._streams.draw(np.arange(self._carts.n), -0.05, 0.05)
        self._steps = 0
        self.agents = self.possible_agents[:]
        if self.render_mode == "human":
            self.render()
        return self._obs_dict(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool],
                                                     dict[str, bool], dict[str, dict[str, Any]]]:
        """Apply every agent's push (and the springs) for ``tau`` seconds."""
        check_agent_actions("MultiCartPoleEnv", self.agents, actions)
        per_agent = [np.asarray(actions[a]) for a in self.agents]
        for agent, a in zip(self.agents, per_agent, strict=True):
            problem = self._carts.check(a.reshape(1) if a.shape == () else a, (1,))
            if problem:
                raise ValueError(f"action {actions[agent]!r} of {agent} is outside its action space "
                                 f"{self.action_spaces[agent]}: {problem}")
        fallen = self._carts.step(np.stack([a.reshape(-1) for a in per_agent]), self._state)
        self._steps += 1
        terminated = bool(fallen.any())
        truncated = self._steps >= self.max_episode_steps
        agents, obs = self.agents, self._obs_dict()
        if terminated or truncated:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return (obs, dict.fromkeys(agents, 1.0), dict.fromkeys(agents, terminated), dict.fromkeys(agents, truncated),
                {a: {} for a in agents})

    def state(self) -> np.ndarray:
        """Every cart's state, cart by cart: (x, x_dot, theta, theta_dot) * num_agents, float32."""
        return self._state.T.astype(np.float32).reshape(-1)

    def _obs_dict(self) -> dict[str, np.ndarray]:
        obs = self._carts.observations(self._state)[0]
        return {a: obs[i] for i, a in enumerate(self.possible_agents)}

    def render(self) -> np.ndarray | None:
        """Every cart on its own track, springs drawn between neighbours; a frame, or the window."""
        c, lane = self._carts, 110
        canvas = self._frame(600, 40 + lane * c.n, "rlkit: multi-agent cart-pole")
        if canvas is None:
            return None
        scale = canvas.width / (c.phys.x_threshold * 2 * 1.1)
        pole_len = min(lane - 25, scale * 2 * c.phys.public["length"])  # within its lane
        carts = []
        for i, (x, _, theta, _) in enumerate(self._state.T):
            track_y = canvas.height - 10 - lane * (i + 1)
            draw_cart_pole(canvas, x, theta, c.phys.x_threshold, scale, track_y, pole_len, cart_height=24.0)
            carts.append((x * scale + canvas.width / 2, track_y))
        if c.coupling > 0:
            for start, end in zip(carts[:-1], carts[1:], strict=True):
                canvas.line(start, end, (60, 140, 60), width=2)
        return canvas.finish()


class MultiCartPoleVectorEnv(Snapshot):
    """``num_envs`` copies of :class:`MultiCartPoleEnv` with the array API of ``adapters.ParallelVectorEnv``.

    Copy ``b`` reset with seed ``s`` equals the single env reset with seed ``s + b * num_agents``, bit for bit.
    """

    _snapshot_attrs = ("_state", "_streams", "_steps", "_prev_done", "_started")

    def __init__(self, num_envs: int = 1, **params: Any) -> None:
        """Create the copies; the arguments are those of :class:`MultiCartPoleEnv`, without rendering."""
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        cfg = env_config(MultiCartPoleConfig, max_cycles_alias(params), None, [])
        self._carts = _Carts(cfg)
        self.num_envs = num_envs
        self.num_agents = num_agents = cfg.num_agents
        self.max_episode_steps = cfg.max_episode_steps
        self.possible_agents = [f"cart_{i}" for i in range(num_agents)]
        self.single_observation_space = self._carts.observation_space
        self.single_action_space = self._carts.action_space
        n = num_envs * num_agents
        self._state = np.zeros((4, n))
        self._streams = ResetStreams(n)
        self._steps = np.zeros(num_envs, dtype=np.int32)
        self._prev_done = np.zeros(num_envs, dtype=bool)
        self._started = False

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy; cart ``i`` of copy ``b`` gets seed ``seed + b * num_agents + i``.

        ``options={"reset_mask": mask}`` (Gymnasium's vector API) resets only the copies where ``mask`` is True.
        """
        mask = reset_mask(options, self.num_envs)
        copies = np.arange(self.num_envs) if mask is None or not self._started else np.flatnonzero(mask)
        carts = (copies[:, None] * self.num_agents + np.arange(self.num_agents)).reshape(-1)
        self._streams.seed(seed, carts)
        self._state[:, carts] = self._streams.draw(carts, -0.05, 0.05)
        self._steps[copies] = 0
        self._prev_done[copies] = False
        self._started = True
        return self._carts.observations(self._state), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy; copies that ended last step start a new episode instead."""
        if not self._started:
            raise RuntimeError("MultiCartPoleVectorEnv.step() called before reset()")
        c = self._carts
        a = np.asarray(actions)
        shape = (self.num_envs, self.num_agents, 1) if c.continuous else (self.num_envs, self.num_agents)
        problem = c.check(a, shape)
        if problem:
            raise ValueError(f"actions are outside the action space: {problem}")
        fallen = c.step(a, self._state)
        terminated = fallen.reshape(self.num_envs, self.num_agents).any(axis=1)
        self._steps += 1
        rewards = np.ones((self.num_envs, self.num_agents), dtype=np.float32)
        if self._prev_done.any():
            copies = np.flatnonzero(self._prev_done)
            carts = (copies[:, None] * self.num_agents + np.arange(self.num_agents)).reshape(-1)
            self._state[:, carts] = self._streams.draw(carts, -0.05, 0.05)
            self._steps[copies] = 0
            rewards[copies] = 0.0
            terminated[copies] = False
        truncated = self._steps >= self.max_episode_steps  # False for restarted copies: max_episode_steps >= 1
        np.logical_or(terminated, truncated, out=self._prev_done)
        return c.observations(self._state), rewards, terminated, truncated, {}

    def close(self) -> None:
        """Nothing to release."""


# PettingZoo's module style (``from rlkit.envs import multi_cartpole_v0``, this module under that name).
parallel_env = MultiCartPoleEnv
vector_env = MultiCartPoleVectorEnv


def env(**kwargs: Any) -> Any:
    """The environment through PettingZoo's AEC API (agents act in turn), with PettingZoo's checks."""
    return wrappers.OrderEnforcingWrapper(parallel_to_aec(MultiCartPoleEnv(**kwargs)))


# Importing this module registers the env with PettingZoo (rlkit.envs imports it on first use, keeping PettingZoo
# out of processes that only compose configs).
if MULTI_CARTPOLE_ID not in pettingzoo.parallel_registry:
    pettingzoo.register("parallel", MULTI_CARTPOLE_ID, entry_point="rlkit.envs.multi_cartpole:MultiCartPoleEnv")
    pettingzoo.register("aec", MULTI_CARTPOLE_ID, entry_point="rlkit.envs.multi_cartpole:env")
