"""A single-agent learner acting for a whole team: the joint-control adapter for multi-agent envs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlkit.agents.base import Agent
from rlkit.callbacks import Callback


class JointControlAgent(Agent):
    """Wraps a single-agent learner trained on :class:`rlkit.envs.adapters.JointControl` (a multi-agent env seen whole).

    ``act`` takes the multi-agent env's arrays, ``(n, agents, obs_dim)``, and returns every agent's action (``split``
    turns joint actions into per-agent ones), so multi-agent runs are evaluated alike whatever learns them.
    """

    def __init__(self, inner: Agent, split: Any) -> None:
        self.inner, self.split = inner, split
        self.observation_space, self.action_space = inner.observation_space, inner.action_space

    def learn(self, total_steps: int, callback: Callback) -> None:
        """The learner's own training, on the joint-control env."""
        self.inner.learn(total_steps, callback)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Every agent's action for observations of shape (n, agents, obs_dim)."""
        obs = np.asarray(obs)
        actions = self.split(self.inner.act(obs.reshape(len(obs), -1), deterministic=deterministic))
        return actions.astype(np.float32) if actions.dtype.kind == "f" else actions

    def save(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        """The learner's checkpoint."""
        self.inner.save(path, meta)

    def load(self, path: Path) -> dict[str, Any]:
        """Load the learner's checkpoint."""
        return self.inner.load(path)

    def training_state(self) -> dict[str, Any]:
        """The learner's training state."""
        return self.inner.training_state()

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore the learner's training state."""
        self.inner.load_training_state(state)
