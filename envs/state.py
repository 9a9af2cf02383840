"""The state protocol that lets a run stop and continue exactly (exact where every innermost env is a Snapshot)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.random.Generator):
        return {"bit_generator": value.bit_generator.state}
    if isinstance(value, Snapshot):
        return value.get_state()
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(current: Any, value: Any) -> Any:
    if isinstance(current, np.ndarray):
        return np.array(value, dtype=current.dtype)
    if isinstance(current, Snapshot):
        current.set_state(value)
        return current
    if isinstance(value, dict) and "bit_generator" in value:
        return generator_from_state(value["bit_generator"])
    if isinstance(value, list):
        same = isinstance(current, list | tuple) and len(current) == len(value)
        out = [_decode(c, v) for c, v in zip(current if same else [None] * len(value), value, strict=True)]
        return tuple(out) if isinstance(current, tuple) else out
    return value


def generator_from_state(state: dict[str, Any]) -> np.random.Generator:
    """A NumPy generator whose bit generator (of the recorded kind) is in the recorded state."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


class Snapshot:
    """Mixin: ``get_state``/``set_state`` over the attributes named in ``_snapshot_attrs``, as plain values."""

    _snapshot_attrs: tuple[str, ...] = ()

    def get_state(self) -> dict[str, Any]:
        """The object's whole state as plain values (arrays, numbers, lists, dicts)."""
        return {name: _encode(getattr(self, name)) for name in self._snapshot_attrs}

    def set_state(self, state: dict[str, Any]) -> None:
        """Put back a state from :meth:`get_state` of an object built with the same arguments."""
        if missing := [name for name in self._snapshot_attrs if name not in state]:
            raise ValueError(f"{type(self).__name__} state lacks {missing}")
        for name in self._snapshot_attrs:
            setattr(self, name, _decode(getattr(self, name), state[name]))


def _children(env: Any) -> Iterator[tuple[str, Any]]:
    """The environments a layer wraps: ``env`` of a wrapper, ``envs`` of a vector env or adapter."""
    if (inner := env.__dict__.get("env")) is not None:
        yield "env", inner
    copies = env.__dict__.get("envs")
    if isinstance(copies, list | tuple):
        for i, copy in enumerate(copies):
            yield f"envs.{i}", copy
    elif copies is not None:
        yield "envs", copies


def _public(env: Any, leaf: bool) -> dict[str, Any]:
    """What a layer of another library shows of its state."""
    if callable(getattr(env, "get_episode_rewards", None)):  # SB3's Monitor
        return {k: _encode(getattr(env, k)) for k in ("rewards", "needs_reset", "total_steps")}  # episode so far
    if leaf and isinstance(env, gym.Env):
        return {"np_random": _encode(env.np_random)}
    return {}


def env_state(env: Any) -> tuple[dict[str, Any], bool]:
    """A snapshot of ``env`` and every layer it wraps (wrappers, vector envs, adapters), and whether it is exact."""
    children = list(_children(env))
    layer: dict[str, Any] = {"own": env.get_state()} if isinstance(env, Snapshot) else \
        {"public": _public(env, leaf=not children)}
    exact = isinstance(env, Snapshot) or bool(children)
    for key, child in children:
        layer[key], child_exact = env_state(child)
        exact = exact and child_exact
    return layer, exact


def set_env_state(env: Any, state: dict[str, Any]) -> None:
    """Put a snapshot from :func:`env_state` back into an environment built the same way (outer layers first)."""
    if isinstance(env, Snapshot):
        env.set_state(state["own"])
    for k, v in state.get("public", {}).items():
        setattr(env, k, _decode(getattr(env, k), v))
    for key, child in _children(env):
        if key not in state:
            raise ValueError(f"the snapshot has no state for {type(env).__name__}.{key}")
        set_env_state(child, state[key])
