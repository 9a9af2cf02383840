"""The rlkit command answers help, --version and config errors without loading torch, SB3, PettingZoo or pygame."""

import subprocess
import sys

HEAVY = ("torch", "stable_baselines3", "pettingzoo", "pygame")
CONFIG = ("hydra", "omegaconf", "numpy", "gymnasium", "rlkit.config")  # what --help and --version need not either

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
    print(args, code, loaded, [m for m in {CONFIG} if m in sys.modules], repr(out.getvalue()[-200:]), sep=" | ")
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
    fields = [line.split(" | ", 4) for line in lines]
    for args, (shown, _, heavy, _, _) in zip(paths, fields, strict=True):
        assert shown == str(args), lines
        assert heavy == "[]", f"rlkit {' '.join(args)} imported {heavy}"
    assert fields[0][1:4] == fields[1][1:4] == ["0", "[]", "[]"], lines[:2]  # --help, --version: no Hydra, no NumPy
    assert "rlkit 0" in fields[1][4]
    assert fields[4][1] == "2"  # unknown group choice: rlkit's one-line error
    assert not list(tmp_path.iterdir()), "a failed start left files behind"
