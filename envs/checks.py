"""Checks, on every step, of what environments return and are given: non-finite values, wrong action shapes."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from rlkit.envs.state import Snapshot
from rlkit.errors import EnvError

# The ufunc itself: half the call overhead of ndarray.sum on small arrays. Summed in float64, so large finite
# float32 observations do not overflow.
_sum = np.add.reduce


def bad_number(value: Any) -> str | None:
    """What makes a number, array, or dict/tuple of them unfit to learn from (``"contains NaN at index 2"``)."""
    if type(value) is np.ndarray and value.dtype.kind == "f" and math.isfinite(_sum(value, None, np.float64)):
        return None  # the hot path: a float array whose sum is finite holds only finite numbers
    if isinstance(value, float | np.floating):  # a single env's reward: no array needed
        return None if math.isfinite(value) else f"is {_name(value)}"
    if isinstance(value, bool | int | np.integer | np.bool_):
        return None
    if value is None:  # NumPy would read it as NaN
        return "is not a number: None"
    if isinstance(value, dict):
        return next((f"at key {k!r} {p}" for k, v in value.items() if (p := bad_number(v)) is not None), None)
    if isinstance(value, tuple):
        return next((f"at position {i} {p}" for i, v in enumerate(value) if (p := bad_number(v)) is not None), None)
    try:
        arr = np.asarray(value)
        if arr.dtype.kind in "biu":
            return None
        if arr.dtype.kind not in "fc":
            arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        return f"is not a number: {_short(value)}"
    finite = np.isfinite(arr)
    if finite.all():
        return None
    where = np.argwhere(~finite)
    first = arr[tuple(where[0])]
    if arr.ndim == 0:
        return f"is {_name(first)}"
    index = int(where[0][0]) if arr.ndim == 1 else tuple(int(i) for i in where[0])
    more = f", {len(where)} non-finite values in all" if len(where) > 1 else ""
    return f"contains {_name(first)} at index {index}{more}"


def _name(x: Any) -> str:
    x = complex(x)
    bad = x.real if not math.isfinite(x.real) else x.imag
    return "NaN" if math.isnan(bad) else ("inf" if bad > 0 else "-inf")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


_ADVICE = "rlkit cannot learn from it. Check the environment's physics and its observation and reward computations"


def _shape(action: Any) -> tuple[int, ...]:
    """``np.shape`` without its cost for the common cases (an int, an array)."""
    if isinstance(action, int):
        return ()
    shape = getattr(action, "shape", None)
    return np.shape(action) if shape is None else shape


class _Checked(Snapshot):
    """What :class:`CheckedEnv` and :class:`CheckedVectorEnv` share; their counters are in env snapshots."""

    _snapshot_attrs: tuple[str, ...] = ("_step",)
    label: str
    _inner: Any
    _action_shape: tuple[int, ...] | None
    _step: int

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("env", "envs"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def reset(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset, and check the first observation(s)."""
        obs, info = self._inner.reset(*args, **kwargs)
        self._started()
        if bad_number(obs) is not None:
            self._refuse({"observation": obs}, self._where(reset=True))
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Check the action's shape, step, and check the observation(s) and the reward(s)."""
        if self._action_shape is not None and _shape(action) != self._action_shape:
            raise EnvError(self._misfit(action))
        obs, reward, terminated, truncated, info = self._inner.step(action)
        self._step += 1
        if bad_number(obs) is not None or bad_number(reward) is not None:
            self._refuse({"observation": obs, "reward": reward}, self._where())
        return obs, reward, terminated, truncated, info

    def _started(self) -> None:
        self._step = 0

    def _where(self, reset: bool = False) -> str:
        return "at reset" if reset else f"step {self._step}"

    def _misfit(self, action: Any) -> str:
        raise NotImplementedError

    def _refuse(self, values: dict[str, Any], where: str) -> None:
        for what, value in values.items():
            if (problem := bad_number(value)) is not None:
                raise EnvError(f"{what} from {self.label} {problem} ({where}); {_ADVICE}")


class CheckedEnv(_Checked, gym.Wrapper):  # type: ignore[type-arg]
    """An env that refuses (:class:`EnvError`) NaN or infinite outputs, non-numbers, and actions of the wrong shape."""

    _snapshot_attrs = ("_step", "_episode")

    def __init__(self, env: gym.Env, label: str, copy: int | None = None) -> None:
        gym.Wrapper.__init__(self, env)
        self.label, self._inner = label, env
        self._copy = "" if copy is None else f"copy {copy}, "
        self._action_shape = env.action_space.shape  # None for spaces without one (Dict, Tuple, ...): not checked
        self._episode = self._step = 0

    def set_state(self, state: dict[str, Any]) -> None:
        """Put back :meth:`get_state`, and bring Gymnasium's wrappers below to the same step of the episode.

        A reset is their public way in; the env's own state is put back after it (``set_env_state`` restores outer
        layers first). Then TimeLimit counts the steps since that reset, as this wrapper does.
        """
        self.env.reset()
        super().set_state(state)
        self.env.set_wrapper_attr("_elapsed_steps", self._step, force=False)

    def _started(self) -> None:
        self._episode += 1
        self._step = 0

    def _where(self, reset: bool = False) -> str:
        where = f"at the reset of episode {self._episode}" if reset else f"episode {self._episode}, step {self._step}"
        return self._copy + where

    def _misfit(self, action: Any) -> str:
        return (f"action for {self.label} has shape {np.shape(action)}, but its action space {self.env.action_space} "
                f"takes actions of shape {self._action_shape}: {_short(action)}")


class CheckedVectorEnv(_Checked):
    """:class:`CheckedEnv` for a Gymnasium vector env or rlkit's multi-agent array API, with the copy in the message."""

    def __init__(self, envs: Any, label: str) -> None:
        self.envs = self._inner = envs
        self.label = label
        lead = (envs.num_envs, envs.num_agents) if hasattr(envs, "num_agents") else (envs.num_envs,)
        shape = envs.single_action_space.shape
        self._action_shape = None if shape is None else (*lead, *shape)
        self._step = 0

    def _misfit(self, action: Any) -> str:
        return (f"actions for {self.envs.num_envs} copies of {self.label} have shape {np.shape(action)}, but the env "
                f"takes {self._action_shape} (action space {self.envs.single_action_space})")

    def _refuse(self, values: dict[str, Any], where: str) -> None:
        """Find the first copy something is wrong in, and say what, as for a single env."""
        for what, batch in values.items():
            if bad_number(batch) is None:
                continue
            for copy, value in enumerate(batch if isinstance(batch, np.ndarray) else np.asarray(batch, dtype=object)):
                super()._refuse({what: value}, f"copy {copy}, {where}")  # raises at the first bad copy
            super()._refuse({what: batch}, where)


def check_agent_actions(env: str, agents: list[str], actions: dict[str, Any]) -> None:
    """Refuse a parallel env's ``step(actions)`` before ``reset()``, or with agents missing or unknown."""
    if not agents:
        raise RuntimeError(f"{env}.step() called before reset() or after the episode ended")
    unknown, missing = set(actions) - set(agents), [a for a in agents if a not in actions]
    if unknown or missing:
        raise ValueError(f"actions must name every agent {agents} once; missing {missing}, unknown {sorted(unknown)}")
