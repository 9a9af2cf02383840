"""Test helpers: compose configs the way the CLI does, run the real CLI, tiny training budgets."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import traceback
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


def cli(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``rlkit <args>`` run in this process: what `run_cli` returns, without a new process's ~2 s of imports.

    The same code path as the console script (``rlkit.cli.main``); ``SystemExit`` becomes the return code, and an
    exception that escapes prints its traceback and returns 1, as Python does for a process. The working
    directory, environment, ``sys.argv`` and the logging set-up Hydra installs are restored afterwards.
    """
    from rlkit.cli import main

    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv[:], os.getcwd()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    for key in ("RLKIT_DEBUG", "HYDRA_FULL_ERROR"):
        os.environ.pop(key, None)
    os.environ.update(env or {})
    out, err, code = io.StringIO(), io.StringIO(), 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                if isinstance(e.code, str):
                    err.write(e.code + "\n")
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv[:] = saved_argv
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return subprocess.CompletedProcess(["rlkit", *args], code, out.getvalue(), err.getvalue())


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
