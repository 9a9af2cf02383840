"""Snapshots of environments, so that a training run can stop and later continue exactly where it was.

rlkit's own environments (single and batched) name the attributes that make up their state in
``_snapshot_attrs``; :class:`Snapshot` turns them into plain values (NumPy arrays, numbers, lists and dicts,
random generators as their bit generator's state) and back. :func:`env_state` walks an environment through
its wrappers (Gymnasium's ``TimeLimit`` and ``OrderEnforcing``, SB3's ``Monitor``, rlkit's adapters, vector
envs' copies) and records every layer; :func:`set_env_state` puts a snapshot back into an environment built
the same way.

A snapshot is *exact* when the innermost environment of every copy is one of rlkit's (it knows its whole
state). Other environments give their random generator and their wrappers' counters only: a run continued
from such a snapshot starts their episodes anew.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from gymnasium.wrappers import PassiveEnvChecker

# Attributes of wrappers and envs from other libraries that hold episode state (Gymnasium's TimeLimit,
# OrderEnforcing and Env; SB3's Monitor; Gymnasium's SyncVectorEnv).
_KNOWN_ATTRS = ("_elapsed_steps", "_has_reset", "rewards", "needs_reset", "total_steps", "_np_random",
                "_autoreset_envs")


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
    """Mixin: ``get_state``/``set_state`` over the attributes named in ``_snapshot_attrs``."""

    _snapshot_attrs: tuple[str, ...] = ()

    def get_state(self) -> dict[str, Any]:
        """The environment's whole state as plain values (arrays, numbers, lists, dicts)."""
        return {name: _encode(getattr(self, name)) for name in self._snapshot_attrs}

    def set_state(self, state: dict[str, Any]) -> None:
        """Put back a state from :meth:`get_state` of an environment built with the same arguments."""
        missing = [name for name in self._snapshot_attrs if name not in state]
        if missing:
            raise ValueError(f"{type(self).__name__} state lacks {missing}")
        for name in self._snapshot_attrs:
            setattr(self, name, _decode(getattr(self, name), state[name]))


def _children(env: Any) -> Iterator[tuple[str, Any]]:
    """The environments a layer wraps: ``env`` of a wrapper, ``envs`` of a vector env or adapter."""
    inner = env.__dict__.get("env")
    if inner is not None:
        yield "env", inner
    copies = env.__dict__.get("envs")
    if isinstance(copies, list | tuple):
        for i, copy in enumerate(copies):
            yield f"envs.{i}", copy
    elif copies is not None:
        yield "envs", copies


def env_state(env: Any) -> tuple[dict[str, Any], bool]:
    """A snapshot of ``env`` and everything it wraps, and whether the snapshot is exact (see the module)."""
    own = isinstance(env, Snapshot)
    layer: dict[str, Any] = (
        {"own": env.get_state()} if own
        else {"attrs": {k: _encode(env.__dict__[k]) for k in _KNOWN_ATTRS if k in env.__dict__}}
    )
    exact, found = True, False
    for key, child in _children(env):
        layer[key], child_exact = env_state(child)
        exact, found = exact and child_exact, True
    return layer, exact and (own or found)


def set_env_state(env: Any, state: dict[str, Any]) -> None:
    """Put a snapshot from :func:`env_state` back into an environment built the same way."""
    if isinstance(env, Snapshot):
        env.set_state(state["own"])
    for k, v in state.get("attrs", {}).items():
        env.__dict__[k] = _decode(env.__dict__.get(k), v)
    if isinstance(env, PassiveEnvChecker):  # its one-time checks ran before the snapshot
        env.checked_reset = env.checked_step = env.checked_data_reuse = True
    for key, child in _children(env):
        if key not in state:
            raise ValueError(f"the snapshot has no state for {type(env).__name__}.{key}")
        set_env_state(child, state[key])
