"""The rlkit command answers help, --version and config errors without loading torch, SB3, PettingZoo or pygame."""

import subprocess
import sys

HEAVY = ("torch", "stable_baselines3", "pettingzoo", "pygame")

CHECK = f"""
import contextlib, io, sys
from rlkit.cli import main
for args in {{args}}:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(args)
            code = 0
        except SystemExit as e:
            code = e.code
    loaded = [m for m in {HEAVY} if m in sys.modules]
    print(args, code, loaded, repr(out.getvalue()[-200:]))
"""


def test_help_version_and_config_errors_leave_heavy_packages_unloaded(tmp_path):
    paths = [["--help"], ["--version"], ["train", "--help"], ["eval", "--help"], ["train", "env=nope"],
             ["train", "agent=dqn", "agent.learning_rate=abc"], ["train", "agent.foo=1"], ["train", "seed=abc"],
             ["eval", "run=x", "n_episodes=abc"], ["train", "experiment=balancing_pole_dqn", "--cfg", "job"]]
    out = subprocess.run([sys.executable, "-c", CHECK.format(args=paths)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300, env={"PATH": "/usr/bin:/bin", "SDL_VIDEODRIVER": "dummy"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(paths), out.stdout
    for args, line in zip(paths, lines, strict=True):
        assert line.startswith(f"{args} "), line
        assert " [] " in line, f"rlkit {' '.join(args)} imported {line}"
    assert "rlkit 0" in lines[1] and " 0 [] " in lines[1]
    assert " 2 [] " in lines[4]  # unknown group choice: rlkit's one-line error
    assert not list(tmp_path.iterdir()), "a failed start left files behind"
