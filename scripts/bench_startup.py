"""Start-up of the ``rlkit`` command: wall and user-CPU seconds of the answers that need no training.

    python scripts/bench_startup.py              # each command 5 times, median
    python scripts/bench_startup.py --repeat 9

Each command runs as a fresh process of this Python (the console script's code, ``rlkit.cli.main()``) in
an empty temporary directory; help and version must exit 0, a config error must fail.
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

MAIN = "from rlkit.cli import main; main()"
COMMANDS = [
    (["--version"], True),
    (["--help"], True),
    (["train", "--help"], True),
    (["eval", "--help"], True),
    (["train", "env=nope"], False),  # unknown group choice
    (["train", "agent.foo=1"], False),  # unknown key
    (["train", "seed=abc"], False),  # bad type
    (["train", "agent=dqn", "agent.learning_rate=abc"], False),  # bad type in a group
]


def measure(args: list[str], ok: bool, repeat: int, cwd: str) -> tuple[float, float]:
    """Median wall and user-CPU seconds of ``rlkit <args>``."""
    walls, users = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", MAIN, *args], cwd=cwd, capture_output=True, text=True,
                             env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
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
            print(f"{'rlkit ' + ' '.join(args):<48} {wall:7.2f} {user:7.2f}")


if __name__ == "__main__":
    main()
