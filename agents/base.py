"""The one small interface every rlkit agent implements, native or wrapped."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlkit.callbacks import Callback


class Agent(ABC):
    """A learner that the trainer, the evaluator and the callbacks drive the same way.

    ``learn`` emits rlkit's callback events (``on_step``, ``on_episode_end``, ``on_update``); the trainer
    calls ``on_training_start``/``on_training_end`` around it. ``act`` takes a batch of observations.
    ``save``/``load`` use one safetensors file (see :mod:`rlkit.files`), never pickle.
    """

    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]

    @abstractmethod
    def learn(self, total_steps: int, callback: Callback) -> None:
        """Train for ``total_steps`` environment steps (all copies together), emitting events to ``callback``."""

    @abstractmethod
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations of shape ``(n, *observation_space.shape)``."""

    @abstractmethod
    def save(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        """Write weights and optimizer state to ``path`` atomically, with ``meta`` beside them."""

    @abstractmethod
    def load(self, path: Path) -> dict[str, Any]:
        """Read a checkpoint written by :meth:`save`; returns its metadata."""

    # Continuing an interrupted run: everything ``save`` leaves out (replay buffers, the environments'
    # state, the episode in progress, random generators of the agent's own). Called at ``on_safe_point``.
    def training_state(self) -> dict[str, Any]:
        """Everything beyond :meth:`save` that ``learn`` needs to continue exactly (plain values, arrays)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be checkpointed mid-training")

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`training_state`; the next ``learn`` continues from it instead of starting anew."""
        raise NotImplementedError(f"{type(self).__name__} cannot continue from a checkpoint")
