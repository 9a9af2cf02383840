"""Test helpers: compose configs the way the CLI does, run the real CLI, tiny training budgets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import rlkit.cli  # noqa: E402,F401  (registers the schemas)
from rlkit.callbacks import Callback  # noqa: E402
from rlkit.config import EvalRunConfig, TrainConfig, check_known_keys  # noqa: E402

# Small enough for a fast test, long enough for episodes, updates and two evaluations to happen.
TINY = [
    "total_steps=1200",
    "callbacks.eval.every_steps=500",
    "callbacks.eval.episodes=2",
    "callbacks.progress_bar=false",
]


def compose_cfg(overrides: list[str], config_name: str = "train"):
    """The typed config that `rlkit <command> <overrides>` would run with."""
    with initialize_config_module(config_module="rlkit.configs", version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    check_known_keys(cfg)
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, TrainConfig if config_name == "train" else EvalRunConfig)
    return obj


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


def read_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a run's TensorBoard events: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
