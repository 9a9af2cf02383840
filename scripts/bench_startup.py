"""Start-up of the ``rlkit`` command: wall and user-CPU seconds of its answers, and of training to its first step.

    python scripts/bench_startup.py              # each command 5 times, median
    python scripts/bench_startup.py --repeat 9

Each command runs as a fresh process of this Python (the console script's code, ``rlkit.cli.main()``) in
an empty temporary directory; help and version must exit 0, a config error must fail. ``rlkit train`` runs the
default config (the balancing pole, DQN) with a plug-in callback, :class:`FirstStep`, that ends the process
(exit 0, no clean-up) when training reports its first environment step.
``python -X importtime -c "import rlkit.cli"`` breaks the time of the import down module by module.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlkit.callbacks import Callback

MAIN = "from rlkit.cli import main; main()"
PYTHONPATH = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
COMMANDS = [
    (["--version"], True),
    (["--help"], True),
    (["train", "--help"], True),
    (["eval", "--help"], True),
    (["train", "env=nope"], False),  # unknown group choice
    (["train", "agent.foo=1"], False),  # unknown key
    (["train", "seed=abc"], False),  # bad type
    (["train", "agent=dqn", "agent.learning_rate=abc"], False),  # bad type in a group
    (["train", "agnet.learning_rate=1"], False),  # unknown key, a typo of a group
    (["train", "+callbacks.extra.first_step={_target_: bench_startup.FirstStep}"], True),  # to the first env step
]


class FirstStep(Callback):
    """Ends the process at training's first environment step: the time to it is the process's run time."""

    def _on_step(self) -> bool:
        os._exit(0)


def measure(args: list[str], ok: bool, repeat: int, cwd: str) -> tuple[float, float]:
    """Median wall and user-CPU seconds of ``rlkit <args>``."""
    walls, users = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", MAIN, *args], cwd=cwd, capture_output=True, text=True,
                             env={**os.environ, "SDL_VIDEODRIVER": "dummy", "PYTHONPATH": PYTHONPATH})
        walls.append(time.perf_counter() - start)
        users.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before)
        if (out.returncode == 0) != ok:
            sys.exit(f"rlkit {' '.join(args)} exited {out.returncode}:\n{out.stderr[-2000:]}")
    return statistics.median(walls), statistics.median(users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (the median is shown)")
    repeat = parser.parse_args().repeat
    print(f"{'command':<48} {'wall s':>7} {'user s':>7}")
    with tempfile.TemporaryDirectory() as cwd:
        for args, ok in COMMANDS:
            wall, user = measure(args, ok, repeat, cwd)
            shown = "train (to its first env step)" if "first_step" in " ".join(args) else " ".join(args)
            print(f"{'rlkit ' + shown:<48} {wall:7.2f} {user:7.2f}")


if __name__ == "__main__":
    main()
