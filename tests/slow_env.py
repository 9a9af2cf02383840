"""A test env whose every step costs a fixed time, for env copies in other processes (``env.vectorization``).

``rlkit train env=gym env.id=slow_env:SlowEnv-v0`` (with ``tests/`` on the Python path, as pytest and
scripts/bench_vectorization.py put it) makes Gymnasium import this module, which registers the id.

Task: the observation is four numbers drawn uniformly from [-1, 1] at every step; action 1 earns reward 1 when
the first is positive, action 0 when it is not; episodes end after 50 steps. Deterministic for a seed.

Arguments: ``step_seconds`` (the cost of one step, 5 ms by default), ``busy`` (spend it computing, as a simulator
does, instead of sleeping, as a game waiting for its frame does), ``die_at_step`` (> 0: the process ends abruptly,
``os._exit``, at that step of this copy, counted over its episodes: a crashed worker).
"""

from __future__ import annotations

import os
import time
from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "SlowEnv-v0"


class SlowEnv(gym.Env):
    """See the module's docstring."""

    metadata = {"render_modes": []}

    def __init__(self, step_seconds: float = 0.005, busy: bool = False, die_at_step: int = 0,
                 render_mode: str | None = None) -> None:
        self.step_seconds, self.busy, self.die_at_step = step_seconds, busy, die_at_step
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._obs = np.zeros(4, dtype=np.float32)
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._obs = self.np_random.uniform(-1.0, 1.0, 4).astype(np.float32)
        return self._obs.copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._steps += 1
        if self.die_at_step and self._steps >= self.die_at_step:
            os._exit(3)
        self._spend(self.step_seconds)
        reward = float(int(action) == int(self._obs[0] > 0))
        self._obs = self.np_random.uniform(-1.0, 1.0, 4).astype(np.float32)
        return self._obs.copy(), reward, False, False, {}

    def _spend(self, seconds: float) -> None:
        if not self.busy:
            time.sleep(seconds)
            return
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=SlowEnv, max_episode_steps=50)
