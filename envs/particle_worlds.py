"""Multi-agent particle worlds in NumPy: mpe2's scenarios with every copy stepped by one set of array operations.

Single-copy dynamics, rewards and observations are those of mpe2 1.1 (PettingZoo's Multi-Agent Particle
Environments, ``mpe2.<scenario>.parallel_env``) step for step, and a copy reset with seed ``s`` starts where mpe2's
env reset with seed ``s`` starts (tested against mpe2).
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from rlkit.envs.adapters import padded_actions
from rlkit.envs.checks import check_agent_actions
from rlkit.envs.rendering import CanvasOwner
from rlkit.envs.state import Snapshot

# World constants of mpe2's core.World (MPE's units: positions in world units, dt in seconds).
DT = 0.1  # integration step
DAMPING = 0.25  # velocity lost per step
CONTACT_FORCE = 1e2  # stiffness of the soft contact between colliding entities
CONTACT_MARGIN = 1e-3  # softness of that contact
SENSITIVITY = 5.0  # action force of agents without their own ``accel``
MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])  # no-op, -x, +x, -y, +y


class _Scenario:
    """One scenario's entities and rules, over arrays with a leading copy axis.

    Its rules read the state of every copy from a :class:`_Worlds`: ``pos`` ``(copies, agents + landmarks, 2)``:
    agents first, as in mpe2's ``world.entities``; ``vel`` the agents' ``(copies, agents, 2)`` (landmarks never
    move); ``goal`` ``(copies,)`` the goal landmark (if any); ``key`` ``(copies,)`` a second landmark drawn at the
    start (simple_crypto_v3's private key); ``comm`` ``(copies, agents, dim_c)`` what each agent said last (zeros
    from silent agents). An agent that cannot move has ``accel`` 0: no force ever reaches it, so it stays where it
    started.
    """

    name: str
    agents: list[str]
    num_landmarks: int
    size: np.ndarray  # (entities,) radii
    collide: np.ndarray  # (entities,) bool: takes part in contacts
    accel: np.ndarray  # (agents,) force of a full action
    max_speed: np.ndarray  # (agents,) speed limit; inf: none
    obs_dims: list[int]  # each agent's observation length
    agent_color: np.ndarray
    landmark_color = np.array([0.25, 0.25, 0.25])
    dim_c = 0  # length of what an agent can say
    moves = "no-op, -x, +x, -y, +y"  # what the discrete actions mean, for error messages

    def action_spaces(self, continuous: bool) -> list[spaces.Space[Any]]:
        """Each agent's action space: mpe2's five moves (continuous: five values in [0, 1])."""
        return [spaces.Box(0.0, 1.0, (5,), dtype=np.float32) if continuous else spaces.Discrete(5)
                for _ in self.agents]

    def speak(self, actions: np.ndarray, continuous: bool) -> np.ndarray:
        """(copies, agents, dim_c): what each agent says this step, from the (padded) actions; nothing by default."""
        return np.zeros((len(actions), self.n, self.dim_c))

    def colors(self, goal: int) -> list[np.ndarray]:
        """Every entity's colour in a copy whose goal landmark is ``goal``, for rendering."""
        return [self.agent_color] * self.n + [self.landmark_color] * self.num_landmarks

    def draw_start(self, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
        """One copy's start positions (entities, 2), goal and key, drawn in the order mpe2's ``reset_world`` does."""
        agents = rng.uniform(-1, +1, (self.n, 2))
        return np.concatenate([agents, rng.uniform(-1, +1, (self.num_landmarks, 2))]), 0, 0

    def rewards(self, w: _Worlds) -> np.ndarray:
        """(copies, agents) rewards after a step."""
        raise NotImplementedError

    def observe(self, out: np.ndarray, w: _Worlds) -> None:
        """Write each agent's observation into ``out`` (copies, agents, longest obs_dim), zeros past its length."""
        raise NotImplementedError

    # Shared pieces of the scenarios' rules.

    @property
    def n(self) -> int:
        return len(self.agents)

    def relative(self, pos: np.ndarray) -> np.ndarray:
        """(copies, agents, entities, 2): every entity's position relative to each agent."""
        return pos[:, None] - pos[:, :self.n, None]

    def landmarks_seen(self, rel: np.ndarray) -> np.ndarray:
        """(copies, agents, 2 * landmarks): the landmarks relative to each agent, in order."""
        return rel[:, :, self.n:].reshape(len(rel), self.n, -1)

    @functools.cached_property
    def _others(self) -> tuple[np.ndarray, np.ndarray]:
        """Indices that pick, for each agent (rows), every other agent in order (columns)."""
        n = self.n
        return np.arange(n)[:, None], np.array([[j for j in range(n) if j != i] for i in range(n)]).reshape(n, n - 1)

    def others_seen(self, rel: np.ndarray) -> np.ndarray:
        """(copies, agents, 2 * (agents - 1)): the other agents relative to each agent, in order."""
        return rel[:, self._others[0], self._others[1]].reshape(len(rel), self.n, -1)

    def goal_seen(self, rel: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """(copies, agents, 2): the goal landmark relative to each agent."""
        return rel[np.arange(len(rel)), :, self.n + goal]

    def touching(self, rel: np.ndarray) -> np.ndarray:
        """(copies, agents, agents) whether two agents overlap (mpe2's ``is_collision``; an agent touches itself)."""
        n = self.n
        return np.sqrt(np.sum(np.square(rel[:, :, :n]), axis=-1)) < self.size[:n, None] + self.size[None, :n]


def _fill(out: np.ndarray, parts: list[np.ndarray], start: int = 0) -> int:
    """Write ``parts`` one after the other along the last axis of ``out`` from ``start``; where they end."""
    for p in parts:
        out[..., start:start + p.shape[-1]] = p
        start += p.shape[-1]
    return start


class Spread(_Scenario):
    """simple_spread_v3, cooperative navigation: N agents cover N landmarks without bumping into each other."""

    name = "simple_spread_v3"
    agent_color = np.array([0.35, 0.35, 0.85])

    def __init__(self, N: int = 3, local_ratio: float = 0.5) -> None:  # noqa: N803  (mpe2's argument name)
        if N < 1 or not 0.0 <= local_ratio <= 1.0:
            raise ValueError(f"simple_spread_v3 needs N >= 1 and 0 <= local_ratio <= 1, got N={N}, "
                             f"local_ratio={local_ratio}")
        self.agents = [f"agent_{i}" for i in range(N)]
        self.num_landmarks = N
        self.size = np.array([0.15] * N + [0.05] * N)
        self.collide = np.array([True] * N + [False] * N)
        self.accel, self.max_speed = np.full(N, SENSITIVITY), np.full(N, np.inf)
        self.local_ratio = float(local_ratio)
        self.obs_dims = [4 + 2 * N + 4 * (N - 1)] * N  # the last 2 * (N - 1): the others' messages, silent

    def rewards(self, w: _Worlds) -> np.ndarray:
        """Team: minus each landmark's distance to its nearest agent; own: -1 per other agent it touches; blended."""
        rel = self.relative(w.pos)
        team = -np.sum(np.sqrt(np.sum(np.square(rel[:, :, self.n:]), axis=-1)).min(axis=1), axis=1)
        own = -np.sum(self.touching(rel) & ~np.eye(self.n, dtype=bool), axis=2).astype(np.float64)
        return team[:, None] * (1 - self.local_ratio) + own * self.local_ratio

    def observe(self, out: np.ndarray, w: _Worlds) -> None:
        """Own velocity and position, landmarks and other agents relative to it; the others' messages are zeros."""
        rel = self.relative(w.pos)
        _fill(out, [w.vel, w.pos[:, :self.n], self.landmarks_seen(rel), self.others_seen(rel)])


class Adversary(_Scenario):
    """simple_adversary_v3, physical deception: N good agents know the goal landmark, one adversary must guess it."""

    name = "simple_adversary_v3"
    agent_color = np.array([0.35, 0.35, 0.85])

    def __init__(self, N: int = 2) -> None:  # noqa: N803  (mpe2's argument name)
        if N < 1:
            raise ValueError(f"simple_adversary_v3 needs N >= 1, got N={N}")
        self.agents = ["adversary_0", *(f"agent_{i}" for i in range(N))]
        self.num_landmarks = N
        self.size = np.array([0.15] * (N + 1) + [0.08] * N)
        self.collide = np.zeros(2 * N + 1, dtype=bool)
        self.accel, self.max_speed = np.full(N + 1, SENSITIVITY), np.full(N + 1, np.inf)
        self.obs_dims = [4 * N] + [4 * N + 2] * N

    def draw_start(self, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:  # noqa: D102  (the base class's)
        goal = int(rng.integers(self.num_landmarks))
        return super().draw_start(rng)[0], goal, 0

    def colors(self, goal: int) -> list[np.ndarray]:  # noqa: D102  (the base class's)
        colors = super().colors(goal)
        colors[0], colors[self.n + goal] = np.array([0.85, 0.35, 0.35]), np.array([0.15, 0.65, 0.15])
        return colors

    def rewards(self, w: _Worlds) -> np.ndarray:
        """Adversary: minus its distance to the goal; good agents: that distance minus their team's nearest one."""
        dist = np.sqrt(np.sum(np.square(self.goal_seen(self.relative(w.pos), w.goal)), axis=-1))
        good = -dist[:, 1:].min(axis=1) + dist[:, 0]
        return np.concatenate([-dist[:, :1], np.repeat(good[:, None], self.n - 1, axis=1)], axis=1)

    def observe(self, out: np.ndarray, w: _Worlds) -> None:
        """Landmarks and other agents relative to the agent; good agents see the goal before them."""
        rel = self.relative(w.pos)
        seen = np.concatenate([self.landmarks_seen(rel), self.others_seen(rel)], axis=-1)
        _fill(out[:, :1], [seen[:, :1]])
        _fill(out[:, 1:], [self.goal_seen(rel, w.goal)[:, 1:], seen[:, 1:]])


class Tag(_Scenario):
    """simple_tag_v3, predator-prey: slower adversaries chase faster good agents around obstacles."""

    name = "simple_tag_v3"
    agent_color = np.array([0.85, 0.35, 0.35])  # adversaries; good agents are green (``good_color``)
    good_color = np.array([0.35, 0.85, 0.35])

    def __init__(self, num_good: int = 1, num_adversaries: int = 3, num_obstacles: int = 2) -> None:
        if num_good < 1 or num_adversaries < 1 or num_obstacles < 0:
            raise ValueError("simple_tag_v3 needs num_good >= 1, num_adversaries >= 1 and num_obstacles >= 0, got "
                             f"{num_good}, {num_adversaries}, {num_obstacles}")
        self.num_adversaries = num_adversaries
        self.agents = [*(f"adversary_{i}" for i in range(num_adversaries)), *(f"agent_{i}" for i in range(num_good))]
        self.num_landmarks = num_obstacles
        self.size = np.array([0.075] * num_adversaries + [0.05] * num_good + [0.2] * num_obstacles)
        self.collide = np.ones(len(self.size), dtype=bool)
        self.accel = np.array([3.0] * num_adversaries + [4.0] * num_good)
        self.max_speed = np.array([1.0] * num_adversaries + [1.3] * num_good)
        common = 4 + 2 * num_obstacles + 2 * (self.n - 1)
        self.obs_dims = [common + 2 * num_good] * num_adversaries + [common + 2 * (num_good - 1)] * num_good

    def draw_start(self, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:  # noqa: D102  (the base class's)
        agents = rng.uniform(-1, +1, (self.n, 2))
        return np.concatenate([agents, rng.uniform(-0.9, +0.9, (self.num_landmarks, 2))]), 0, 0

    def rewards(self, w: _Worlds) -> np.ndarray:
        """Every adversary: +10 per adversary-prey contact; prey: -10 per contact and a penalty for leaving the area."""
        a, pos = self.num_adversaries, w.pos
        caught = self.touching(self.relative(pos))[:, :a, a:]  # (copies, adversaries, prey)
        out = np.empty((len(pos), self.n))
        out[:, :a] = 10.0 * np.sum(caught, axis=(1, 2))[:, None]
        out[:, a:] = -10.0 * np.sum(caught, axis=1)
        for p in range(2):
            out[:, a:] -= self._bound(np.abs(pos[:, a:self.n, p]))
        return out

    def colors(self, goal: int) -> list[np.ndarray]:  # noqa: D102  (the base class's)
        colors = super().colors(goal)
        colors[self.num_adversaries:self.n] = [self.good_color] * (self.n - self.num_adversaries)
        return colors

    @staticmethod
    def _bound(x: np.ndarray) -> np.ndarray:
        """mpe2's penalty for prey at ``x`` from the centre on an axis: none to 0.9, linear to 1, then exponential."""
        with np.errstate(over="ignore"):
            far = np.minimum(np.exp(2 * x - 2), 10)
        return np.where(x < 0.9, 0.0, np.where(x < 1.0, (x - 0.9) * 10, far))

    def observe(self, out: np.ndarray, w: _Worlds) -> None:
        """Own velocity and position, obstacles and other agents relative to it, and the other prey's velocities."""
        a, pos, vel, rel = self.num_adversaries, w.pos, w.vel, self.relative(w.pos)
        end = _fill(out, [vel, pos[:, :self.n], self.landmarks_seen(rel), self.others_seen(rel)])
        _fill(out[:, :a], [vel[:, None, a:].reshape(len(pos), 1, -1)], end)
        for g in range(a, self.n):
            _fill(out[:, g], [vel[:, [j for j in range(a, self.n) if j != g]].reshape(len(pos), -1)], end)


class SpeakerListener(_Scenario):
    """simple_speaker_listener_v4: a speaker that cannot move tells a listener which of 3 landmarks to go to."""

    name = "simple_speaker_listener_v4"
    agent_color = np.array([0.25, 0.25, 0.25])
    landmark_colors = np.array([[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]])
    dim_c = 3

    def __init__(self) -> None:
        self.agents = ["speaker_0", "listener_0"]
        self.num_landmarks = 3
        self.size = np.array([0.075] * 2 + [0.04] * 3)
        self.collide = np.zeros(5, dtype=bool)
        self.accel, self.max_speed = np.array([0.0, SENSITIVITY]), np.full(2, np.inf)  # the speaker cannot move
        self.obs_dims = [3, 11]

    def action_spaces(self, continuous: bool) -> list[spaces.Space[Any]]:
        """The speaker says one of 3 words (continuous: 3 values in [0, 1]); the listener moves."""
        return [spaces.Box(0.0, 1.0, (3,), dtype=np.float32) if continuous else spaces.Discrete(3),
                super().action_spaces(continuous)[1]]

    def draw_start(self, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:  # noqa: D102  (the base class's)
        goal = int(rng.integers(self.num_landmarks))
        return super().draw_start(rng)[0], goal, 0

    def speak(self, actions: np.ndarray, continuous: bool) -> np.ndarray:
        """The speaker's word: one-hot (continuous: its 3 values, clipped to [0, 1]); the listener is silent."""
        said = super().speak(actions, continuous)
        if continuous:
            said[:, 0] = np.clip(actions[:, 0, :3], 0.0, 1.0)
        else:
            said[:, 0] = np.eye(3)[actions[:, 0, 0].astype(np.int64)]
        return said

    def colors(self, goal: int) -> list[np.ndarray]:  # noqa: D102  (the base class's)
        return [self.agent_color, self.landmark_colors[goal] + 0.45, *self.landmark_colors]

    def rewards(self, w: _Worlds) -> np.ndarray:
        """Both agents: minus the squared distance from the listener to the goal landmark."""
        gap = w.pos[:, 1] - w.pos[np.arange(len(w.pos)), self.n + w.goal]
        return np.repeat(-np.sum(np.square(gap), axis=-1)[:, None], 2, axis=1)

    def observe(self, out: np.ndarray, w: _Worlds) -> None:
        """Speaker: the goal landmark's colour; listener: own velocity, the landmarks relative to it, the word."""
        out[:, 0, :3] = self.landmark_colors[w.goal]
        _fill(out[:, 1], [w.vel[:, 1], self.landmarks_seen(self.relative(w.pos))[:, 1], w.comm[:, 0]])


class Push(_Scenario):
    """simple_push_v3, keep-away: a good agent heads for the goal landmark; an adversary pushes it away.

    The good agent knows the goal (and wears its colour); the adversary sees only where everyone is.
    """

    name = "simple_push_v3"
    agent_color = np.array([0.25, 0.25, 0.25])

    def __init__(self) -> None:
        self.agents = ["adversary_0", "agent_0"]
        self.num_landmarks = 2
        self.size = np.full(4, 0.05)
        self.collide = np.array([True, True, False, False])
        self.accel, self.max_speed = np.full(2, SENSITIVITY), np.full(2, np.inf)
        self.obs_dims = [8, 19]
        # mpe2's colours, summed as mpe2 sums them: they are part of the good agent's observation
        self.landmark_colors = np.full((2, 3), 0.1)
        self.landmark_colors[[0, 1], [1, 2]] += 0.8
        self.good_colors = np.full((2, 3), 0.25)  # the good agent's colour, by goal
        self.good_colors[[0, 1], [1, 2]] += 0.5

    def draw_start(self, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:  # noqa: D102  (the base class's)
        goal = int(rng.integers(self.num_landmarks))
        return super().draw_start(rng)[0], goal, 0

    def colors(self, goal: int) -> list[np.ndarray]:  # noqa: D102  (the base class's)
        return [np.array([0.75, 0.25, 0.25]), self.good_colors[goal], *self.landmark_colors]

    def rewards(self, w: _Worlds) -> np.ndarray:
        """Good agent: minus its distance to the goal; adversary: that distance minus its own distance to the goal."""
        dist = np.sqrt(np.sum(np.square(self.goal_seen(self.relative(w.pos), w.goal)), axis=-1))
        return np.stack([dist[:, 1] - dist[:, 0], -dist[:, 1]], axis=1)

    def observe(self, out: np.ndarray, w: _Worlds) -> None:
        """Own velocity, landmarks and the other agent relative to it; the good agent sees the goal and colours too.

        The good agent's observation: velocity, the goal, its own colour (which tells the goal), the landmarks, their
        colours, the adversary; the adversary's: velocity, the landmarks, the good agent.
        """
        rel, copies = self.relative(w.pos), len(w.pos)
        marks, other = self.landmarks_seen(rel), self.others_seen(rel)
        _fill(out[:, 0], [w.vel[:, 0], marks[:, 0], other[:, 0]])
        _fill(out[:, 1], [w.vel[:, 1], self.goal_seen(rel, w.goal)[:, 1], self.good_colors[w.goal],
                          marks[:, 1], np.broadcast_to(self.landmark_colors.ravel(), (copies, 6)), other[:, 1]])


class Crypto(_Scenario):
    """simple_crypto_v3, covert communication: Alice tells Bob a 1-bit message over a channel that Eve hears too.

    Nobody moves; every agent says one of 4 words a step. Alice and Bob share a private key, drawn anew each
    episode, that they can learn to encrypt with.
    """

    name = "simple_crypto_v3"
    agent_color = np.array([0.25, 0.25, 0.25])
    dim_c = 4
    moves = "the 4 words"

    def __init__(self) -> None:
        self.agents = ["eve_0", "bob_0", "alice_0"]
        self.num_landmarks = 2
        self.size = np.full(5, 0.05)
        self.collide = np.zeros(5, dtype=bool)
        self.accel, self.max_speed = np.zeros(3), np.full(3, np.inf)  # nobody moves
        self.obs_dims = [4, 8, 8]
        self.words = np.eye(self.dim_c)  # landmark i's colour, and the message it stands for: word i

    def action_spaces(self, continuous: bool) -> list[spaces.Space[Any]]:
        """Every agent says one of 4 words (continuous: 4 values in [0, 1], said as they are)."""
        return [spaces.Box(0.0, 1.0, (4,), dtype=np.float32) if continuous else spaces.Discrete(4)
                for _ in self.agents]

    def draw_start(self, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:  # noqa: D102  (the base class's)
        goal = int(rng.integers(self.num_landmarks))
        key = int(rng.integers(self.num_landmarks))
        return super().draw_start(rng)[0], goal, key

    def speak(self, actions: np.ndarray, continuous: bool) -> np.ndarray:
        """Every agent's word: one-hot (continuous: its 4 values, clipped to [0, 1])."""
        return np.clip(actions, 0.0, 1.0).astype(np.float64) if continuous else self.words[actions]

    def colors(self, goal: int) -> list[np.ndarray]:  # noqa: D102  (the base class's)
        marks = [self.words[i, :3] for i in range(self.num_landmarks)]
        return [np.array([0.75, 0.25, 0.25]), marks[goal], self.agent_color, *marks]

    def rewards(self, w: _Worlds) -> np.ndarray:
        """Eve: minus her word's squared error from the message; Alice and Bob: Eve's error minus Bob's.

        A word of all zeros (possible with continuous actions) counts as saying nothing: no error.
        """
        error = np.sum(np.square(w.comm - self.words[w.goal][:, None]), axis=-1) * w.comm.any(axis=-1)
        eve, bob = error[:, 0], error[:, 1]
        return np.stack([-eve, eve - bob, eve - bob], axis=1)

    def observe(self, out: np.ndarray, w: _Worlds) -> None:
        """Alice: the message and the key; Bob: the key and what Alice said; Eve: what Alice said."""
        key, alice_said = self.words[w.key], w.comm[:, 2]
        _fill(out[:, 0], [alice_said])
        _fill(out[:, 1], [key, alice_said])
        _fill(out[:, 2], [self.words[w.goal], key])


SCENARIOS: dict[str, type[_Scenario]] = {s.name: s for s in (Spread, Adversary, Tag, SpeakerListener, Push, Crypto)}
"""The mpe2 scenarios with a batched NumPy version, by mpe2's name."""


def make_scenario(name: str, kwargs: dict[str, Any]) -> _Scenario:
    """The scenario ``name`` with mpe2's keyword arguments; an unknown one raises TypeError naming the closest."""
    cls = SCENARIOS[name]
    allowed = list(inspect.signature(cls.__init__).parameters)[1:]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        close = [a for a in allowed if a.lower() == unknown[0].lower()] or \
            difflib.get_close_matches(unknown[0], allowed, n=1)
        raise TypeError(f"the batched {name} has no argument {', '.join(unknown)}"
                        + (f" (did you mean {close[0]}?)" if close else "")
                        + f"; its arguments: {', '.join(allowed)} (env.batched=false runs mpe2's own env, which "
                          "takes all of mpe2's)")
    return cls(**kwargs)


class _Worlds(Snapshot):
    """``copies`` worlds of one scenario: state arrays, mpe2's physics, actions, and each copy's random stream."""

    _snapshot_attrs = ("pos", "vel", "goal", "key", "comm", "rngs")

    def __init__(self, scenario: _Scenario, copies: int, continuous_actions: bool) -> None:
        s = self.scenario = scenario
        self.copies, self.continuous = copies, continuous_actions
        self.pos = np.zeros((copies, s.n + s.num_landmarks, 2))
        self.vel = np.zeros((copies, s.n, 2))
        self.goal = np.zeros(copies, dtype=np.int64)
        self.key = np.zeros(copies, dtype=np.int64)
        self.comm = np.zeros((copies, s.n, s.dim_c))
        self.rngs = [np.random.default_rng() for _ in range(copies)]
        self._contacts = [j for j in range(len(s.size)) if s.collide[j]]
        self._touches = s.collide[:s.n, None] & (np.arange(s.n)[:, None] != np.array(self._contacts, dtype=np.int64))
        self._limited = bool(np.isfinite(s.max_speed).any())
        self._movable = bool(s.accel.any())
        self.obs_dims = s.obs_dims
        self.agent_action_spaces = s.action_spaces(continuous_actions)
        self.padded = any(a != self.agent_action_spaces[0] for a in self.agent_action_spaces[1:])
        """True where the agents' action spaces differ: actions are rows padded to the widest (adapters.py)."""
        if self.padded:
            rows = padded_actions(self.agent_action_spaces)
            self._low, self._high = rows.low, rows.high
            self.action_space: spaces.Space[Any] = spaces.Box(rows.low.min(0), rows.high.max(0), dtype=np.float32)
        else:
            self.action_space = self.agent_action_spaces[0]

    def reset(self, copies: np.ndarray, seed: int | None = None) -> None:
        """Start ``copies`` afresh, each from its own stream (copy ``b`` reseeded with ``seed + b`` when seeded)."""
        for b in copies:
            if seed is not None:
                self.rngs[b] = np.random.default_rng(seed + int(b))
            self.pos[b], self.goal[b], self.key[b] = self.scenario.draw_start(self.rngs[b])
        self.vel[copies] = 0.0
        self.comm[copies] = 0.0

    def forces(self, actions: np.ndarray) -> np.ndarray:
        """(copies, agents, 2) action forces: mpe2's ``_set_action`` (continuous: the differences of its 5 values)."""
        if not self._movable:
            return np.zeros((len(actions), self.scenario.n, 2))
        if self.continuous:
            a = np.clip(actions, 0.0, 1.0)
            u = np.stack([a[..., 2] - a[..., 1], a[..., 4] - a[..., 3]], axis=-1).astype(np.float64)
        else:
            u = MOVES[actions[..., 0].astype(np.int64) if self.padded else actions]
        return u * self.scenario.accel[:, None]

    def step(self, actions: np.ndarray) -> None:
        """mpe2's ``World.step`` for every copy: action and contact forces, then integration with damping."""
        s, pos, vel, n = self.scenario, self.pos, self.vel, self.scenario.n
        force = self.forces(actions)
        if self._contacts:  # soft contacts (mpe2's get_collision_force) with every other colliding entity j
            j = self._contacts
            delta = pos[:, :n, None] - pos[:, None, j]  # (copies, agents, contacts, 2): from entity j to the agent
            dist = np.sqrt(np.sum(np.square(delta), axis=-1))
            penetration = np.logaddexp(0, -(dist - (s.size[:n, None] + s.size[j])) / CONTACT_MARGIN) * CONTACT_MARGIN
            with np.errstate(divide="ignore", invalid="ignore"):  # an agent and itself: masked out below
                push = CONTACT_FORCE * delta / dist[..., None] * penetration[..., None]
            push[:, ~self._touches] = 0.0
            # Added to the action force one entity after another, in mpe2's order.
            force = np.concatenate([force[:, :, None], push], axis=2).sum(axis=2)
        if s.dim_c:
            self.comm = s.speak(actions, self.continuous)
        pos[:, :n] += vel * DT
        vel *= 1 - DAMPING
        vel += force * DT  # every agent's mass is 1
        if self._limited:
            speed = np.sqrt(np.square(vel[..., 0]) + np.square(vel[..., 1]))
            over = speed > s.max_speed
            if over.any():
                limit = np.broadcast_to(s.max_speed, over.shape)[over]
                vel[over] = vel[over] / speed[over][:, None] * limit[:, None]

    def observations(self) -> np.ndarray:
        """(copies, agents, longest obs_dim) float32, shorter observations zero-padded."""
        out = np.zeros((self.copies, self.scenario.n, max(self.obs_dims)), dtype=np.float32)
        self.scenario.observe(out, self)
        return out

    def rewards(self) -> np.ndarray:
        """(copies, agents) float32."""
        return self.scenario.rewards(self).astype(np.float32)

    def check(self, actions: np.ndarray, shape: tuple[int, ...]) -> str | None:
        """What is wrong with an array of actions, or None."""
        if self.padded:
            width = self._low.shape[1]
            if actions.shape != (*shape, width) or actions.dtype.kind != "f" or not np.isfinite(actions).all():
                return f"expected finite numbers of shape {(*shape, width)} (one row per agent, padded), got shape " \
                       f"{actions.shape} dtype {actions.dtype}"
            if self.continuous:
                return None
            index = actions[..., 0]
            if (index != np.round(index)).any() or (index < self._low[:, 0]).any() or (index > self._high[:, 0]).any():
                return "expected each agent's action index in column 0, a whole number within its space " \
                       f"({', '.join(str(a) for a in self.agent_action_spaces)})"
            return None
        if self.continuous:
            width = self.action_space.shape[0]
            if actions.shape != (*shape, width) or actions.dtype.kind != "f" or not np.isfinite(actions).all():
                return f"expected finite numbers of shape {(*shape, width)}, got shape {actions.shape} dtype " \
                       f"{actions.dtype}"
            return None
        assert isinstance(self.action_space, spaces.Discrete)
        last = int(self.action_space.n) - 1
        if actions.shape != shape or actions.dtype.kind not in "iu" or \
                (actions.astype(np.int64).view(np.uint64) > last).any():
            return f"expected integers 0-{last} ({self.scenario.moves}) of shape {shape}, got shape " \
                   f"{actions.shape} dtype {actions.dtype}"
        return None


def _build(name: str, max_cycles: int, continuous_actions: bool, kwargs: dict[str, Any], copies: int) -> _Worlds:
    if name not in SCENARIOS:
        raise ValueError(f"{name!r} has no batched version; batched scenarios: {', '.join(SCENARIOS)}")
    if max_cycles < 1:
        raise ValueError(f"max_cycles must be >= 1, got {max_cycles}")
    return _Worlds(make_scenario(name, kwargs), copies, continuous_actions)


class ParticleWorldEnv(Snapshot, CanvasOwner, ParallelEnv):
    """One multi-agent particle world: an mpe2 scenario as a PettingZoo parallel env, computed in NumPy.

    ## Description
    Agents are discs on a plane, pushed by their actions and by soft contacts, with damping (mpe2's ``World``:
    ``dt`` 0.1 s, damping 0.25, contact force 100, margin 0.001, mass 1). Scenarios (``name``):

    * ``simple_spread_v3`` (``N=3``, ``local_ratio=0.5``): N agents, N landmarks. Team reward: minus the sum over
      landmarks of the nearest agent's distance; each agent's own: -1 per other agent it touches; an agent gets
      ``team * (1 - local_ratio) + own * local_ratio``.
    * ``simple_adversary_v3`` (``N=2``): ``adversary_0`` and N good agents; N landmarks, one the goal (known to the
      good agents). Adversary: minus its distance to the goal; good agents: that distance minus their nearest's.
    * ``simple_tag_v3`` (``num_good=1, num_adversaries=3, num_obstacles=2``): adversaries (accel 3, top speed 1)
      get +10 each per contact with prey (accel 4, top speed 1.3), prey -10 per contact and a penalty beyond
      |x| or |y| = 0.9; obstacles block both.
    * ``simple_speaker_listener_v4``: ``speaker_0`` cannot move and sees the goal landmark's colour;
      ``listener_0`` sees the landmarks and the speaker's last word (3 values); both get minus the squared
      distance from the listener to the goal.
    * ``simple_push_v3`` (keep-away): ``adversary_0`` and ``agent_0``, who collide; 2 landmarks, one the goal
      (known to the good agent only). Good agent: minus its distance to the goal; adversary: that distance minus
      its own distance to the goal.
    * ``simple_crypto_v3`` (covert communication): ``eve_0``, ``bob_0``, ``alice_0``, who cannot move and each
      say one of 4 words a step. Alice sees a 1-bit message (one of 2 one-hot words) and a private key drawn each
      episode; Bob sees the key and Alice's last word; Eve only Alice's last word. Eve: minus the squared error of
      her word from the message; Alice and Bob: Eve's error minus Bob's (a word of all zeros counts as silence).

    ## Action Space (per agent)
    ``Discrete(5)``: no-op, -x, +x, -y, +y; with ``continuous_actions=True``, ``Box(0, 1, (5,))`` whose values
    2 - 1 and 4 - 3 are the x and y forces (clipped to the box, as mpe2 does). simple_speaker_listener_v4's
    speaker says one of 3 words: ``Discrete(3)`` (continuous: ``Box(0, 1, (3,))``, said as they are);
    simple_crypto_v3's agents say one of 4: ``Discrete(4)`` (continuous: ``Box(0, 1, (4,))``).

    ## Observation Space (per agent)
    mpe2's, in mpe2's order, float32; see each scenario's ``observations``.

    ## Starting State
    Agents and landmarks uniform in [-1, 1]^2 (tag's obstacles in [-0.9, 0.9]^2), at rest; drawn as mpe2 draws
    them, so a reset with seed ``s`` starts where mpe2's env reset with seed ``s`` starts.

    ## Episode End
    Truncation after ``max_cycles`` steps, for every agent; no termination.

    ## Arguments
    ``ParticleWorldEnv("simple_spread_v3", max_cycles=25, continuous_actions=False, render_mode=None, **scenario
    kwargs)``.

    ## Version History
    * v0: mpe2 1.1's dynamics, rewards and observations.
    """

    _snapshot_attrs = ("_worlds", "_steps", "agents")
    metadata = {"name": "particle_worlds_v0", "render_modes": ["human", "rgb_array"], "render_fps": 10,
                "is_parallelizable": True}

    def __init__(self, name: str = "simple_spread_v3", max_cycles: int = 25, continuous_actions: bool = False,
                 render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self._worlds = _build(name, max_cycles, continuous_actions, kwargs, 1)
        self.max_cycles, self.render_mode = max_cycles, render_mode
        self.possible_agents = list(self._worlds.scenario.agents)
        self.agents: list[str] = []
        # One space object per agent, so seeding one agent's space does not touch another's.
        self.observation_spaces = {a: spaces.Box(-np.inf, np.inf, (d,), dtype=np.float32)
                                   for a, d in zip(self.possible_agents, self._worlds.obs_dims, strict=True)}
        self.action_spaces = {a: copy.deepcopy(space)
                              for a, space in zip(self.possible_agents, self._worlds.agent_action_spaces, strict=True)}
        self._steps = 0

    def observation_space(self, agent: str) -> spaces.Space[Any]:  # noqa: D102  (PettingZoo's)
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:  # noqa: D102  (PettingZoo's)
        return self.action_spaces[agent]

    @property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """The agents' (agents, 2) and the landmarks' (landmarks, 2) positions."""
        n = self._worlds.scenario.n
        return self._worlds.pos[0, :n].copy(), self._worlds.pos[0, n:].copy()

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Draw a new start (mpe2's draws, from the seed's stream when seeded)."""
        self._worlds.reset(np.arange(1), seed)
        self._steps = 0
        self.agents = self.possible_agents[:]
        if self.render_mode == "human":
            self.render()
        return self._obs_dict(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool],
                                                     dict[str, bool], dict[str, dict[str, Any]]]:
        """Move every agent by its action for one ``dt``."""
        check_agent_actions("ParticleWorldEnv", self.agents, actions)
        w = self._worlds
        joint = self._padded(actions) if w.padded else np.asarray([np.asarray(actions[a]) for a in self.agents])[None]
        problem = w.check(joint, (1, len(self.agents)))
        if problem:
            raise ValueError(f"actions {actions!r} are outside the action space {w.action_space}: {problem}")
        w.step(joint)
        self._steps += 1
        truncated = self._steps >= self.max_cycles
        agents, obs, rewards = self.agents, self._obs_dict(), w.rewards()[0]
        if truncated:
            self.agents = []
        if self.render_mode == "human":
            self.render()
        return (obs, {a: float(rewards[i]) for i, a in enumerate(agents)}, dict.fromkeys(agents, False),
                dict.fromkeys(agents, truncated), {a: {} for a in agents})

    def _padded(self, actions: dict[str, Any]) -> np.ndarray:
        """Agents' actions in their own spaces as the (1, agents, width) rows the batched worlds take."""
        joint = np.zeros((1, *self._worlds._low.shape))
        for i, a in enumerate(self.agents):
            x, space = np.asarray(actions[a]), self.action_spaces[a]
            if isinstance(space, spaces.Discrete) != (x.dtype.kind in "iu") or \
                    x.shape != (() if isinstance(space, spaces.Discrete) else space.shape):
                raise ValueError(f"action {actions[a]!r} of {a} is outside its action space {space}")
            joint[0, i, :x.size] = x.ravel()
        return joint

    def _obs_dict(self) -> dict[str, np.ndarray]:
        obs = self._worlds.observations()[0]
        return {a: obs[i, :d] for i, (a, d) in enumerate(zip(self.possible_agents, self._worlds.obs_dims, strict=True))}

    def render(self) -> np.ndarray | None:
        """Agents and landmarks as discs, zoomed like mpe2's view to keep everyone in the frame."""
        canvas = self._frame(700, 700, f"rlkit: {self._worlds.scenario.name}")
        if canvas is None:
            return None
        s, pos = self._worlds.scenario, self._worlds.pos[0]
        scale = canvas.width / 2 * 0.9 / max(1.0, float(np.abs(pos).max()))  # pixels per world unit
        colors = s.colors(int(self._worlds.goal[0]))
        for k in [*range(s.n, len(pos)), *range(s.n)]:  # landmarks below agents
            x, y = pos[k] * scale + canvas.width / 2
            color = tuple(int(c * 200) for c in colors[k])
            canvas.circle(x, y, s.size[k] * scale, (0, 0, 0))
            canvas.circle(x, y, max(1.0, s.size[k] * scale - 1), color)  # type: ignore[arg-type]
        return canvas.finish()


class ParticleWorldVectorEnv(Snapshot):
    """``num_envs`` copies of :class:`ParticleWorldEnv` stepped at once (the array API of ``ParallelVectorEnv``).

    Actions ``(num_envs, agents)`` (continuous: ``(num_envs, agents, 5)``, simple_crypto_v3's ``(num_envs, agents,
    4)``; where the agents' spaces differ, as in simple_speaker_listener_v4, one padded row per agent,
    ``adapters.padded_actions``); observations ``(num_envs, agents, obs_dim)`` zero-padded to the longest agent's;
    rewards ``(num_envs, agents)``; NEXT_STEP autoreset (reward 0).
    Copy ``b`` reset with seed ``s`` equals the single env (and mpe2's) reset with seed ``s + b``.
    """

    _snapshot_attrs = ("_worlds", "_steps", "_prev_done", "_started")

    def __init__(self, num_envs: int = 1, name: str = "simple_spread_v3", max_cycles: int = 25,
                 continuous_actions: bool = False, **kwargs: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self._worlds = w = _build(name, max_cycles, continuous_actions, kwargs, num_envs)
        self.num_envs, self.max_cycles = num_envs, max_cycles
        self.possible_agents = list(w.scenario.agents)
        self.num_agents = len(self.possible_agents)
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (max(w.obs_dims),), dtype=np.float32)
        self.single_action_space, self.agent_action_spaces = w.action_space, w.agent_action_spaces
        self._steps = np.zeros(num_envs, dtype=np.int32)
        self._prev_done = np.zeros(num_envs, dtype=bool)
        self._started = False

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy; copy ``b`` gets seed ``seed + b``."""
        self._worlds.reset(np.arange(self.num_envs), seed)
        self._steps[:] = 0
        self._prev_done[:] = False
        self._started = True
        return self._worlds.observations(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy; copies that ended last step start a new episode instead."""
        if not self._started:
            raise RuntimeError("ParticleWorldVectorEnv.step() called before reset()")
        w, a = self._worlds, np.asarray(actions)
        problem = w.check(a, (self.num_envs, self.num_agents))
        if problem:
            raise ValueError(f"actions are outside the action space: {problem}")
        w.step(a)
        self._steps += 1
        rewards = w.rewards()
        if self._prev_done.any():
            copies = np.flatnonzero(self._prev_done)
            w.reset(copies)
            self._steps[copies] = 0
            rewards[copies] = 0.0
        truncated = self._steps >= self.max_cycles  # False for restarted copies: max_cycles >= 1
        self._prev_done[:] = truncated
        return w.observations(), rewards, np.zeros(self.num_envs, dtype=bool), truncated, {}

    def close(self) -> None:
        """Nothing to release."""
