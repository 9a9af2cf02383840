"""Test helpers: compose configs the way the CLI does, run the real CLI, tiny training budgets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

from rlkit.callbacks import Callback  # noqa: E402
from rlkit.config import compose  # noqa: E402
from rlkit.verify import read_scalars  # noqa: E402,F401  (tests read runs' scalars as verify does)

# Small enough for a fast test, long enough for episodes, updates and two evaluations to happen.
TINY = [
    "total_steps=1200",
    "callbacks.eval.every_steps=500",
    "callbacks.eval.episodes=2",
    "callbacks.progress_bar=false",
]


compose_cfg = compose  # the typed config that `rlkit <command> <overrides>` would run with


def run_cli(args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None):
    """Run the real `rlkit` console script in a subprocess."""
    rlkit = Path(sys.executable).parent / "rlkit"
    full_env = {k: v for k, v in os.environ.items() if k not in ("RLKIT_DEBUG", "HYDRA_FULL_ERROR")}
    full_env.update({"SDL_VIDEODRIVER": "dummy", **(env or {})})
    return subprocess.run(
        [str(rlkit), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )


class Recorder(Callback):
    """A plug-in callback (``callbacks.extra``) that records every event it sees."""

    instances: list[Recorder] = []

    def __init__(self, tag: str = "") -> None:
        super().__init__()
        self.tag = tag
        self.events: list[tuple] = []
        Recorder.instances.append(self)

    def _on_training_start(self):
        self.events.append(("start",))

    def _on_step(self):
        self.events.append(("step", self.num_steps))
        return True

    def _on_episode_end(self, episode):
        self.events.append(("episode", episode))

    def _on_update(self, step, metrics):
        self.events.append(("update", step, dict(metrics)))

    def _on_evaluation(self, evaluation):
        self.events.append(("evaluation", evaluation))

    def _on_training_end(self):
        self.events.append(("end",))

    def of(self, kind: str) -> list[tuple]:
        return [e for e in self.events if e[0] == kind]
