"""The rlkit command answers help, --version and config errors without loading torch, SB3, PettingZoo or pygame.

Config errors are found before Hydra, Gymnasium or NumPy are imported either: that is what makes them fast.
"""

import subprocess
import sys

HEAVY = ("torch", "stable_baselines3", "pettingzoo", "pygame")
CONFIG = ("hydra", "omegaconf", "numpy", "gymnasium", "rlkit.config")  # what --help and --version need not either
COMPOSING = ("hydra", "numpy", "gymnasium")  # what a config error needs not either

CHECK = f"""
import contextlib, io, sys
from rlkit.cli import main
args = sys.argv[1:]
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
    errors = [["train", "env=nope"], ["train", "agent=dqn", "agent.learning_rate=abc"], ["train", "agent.foo=1"],
              ["train", "seed=abc"], ["train", "agent=dqn", "seed=abc"], ["train", "agnet.learning_rate=1"],
              ["train", "-m", "agent=dqn,reinforce", "agent.target_update_interval=5"],
              ["eval", "run=x", "n_episodes=abc"]]
    paths = [["--help"], ["--version"], ["train", "--help"], ["eval", "--help"], *errors,
             ["train", "experiment=balancing_pole_dqn", "--cfg", "job"]]
    fields = []
    for args in paths:  # each in a process of its own: what it imports is its own
        out = subprocess.run([sys.executable, "-c", CHECK, *args], capture_output=True, text=True, cwd=tmp_path,
                             timeout=120, env={"PATH": "/usr/bin:/bin", "SDL_VIDEODRIVER": "dummy"})
        assert out.returncode == 0, out.stderr
        fields.append(out.stdout.strip().split(" | ", 4))
    for args, (shown, _, heavy, _, _) in zip(paths, fields, strict=True):
        assert shown == str(args), fields
        assert heavy == "[]", f"rlkit {' '.join(args)} imported {heavy}"
    assert fields[0][1:4] == fields[1][1:4] == ["0", "[]", "[]"], fields[:2]  # --help, --version: no Hydra, no NumPy
    assert "rlkit 0" in fields[1][4]
    for args, (_, code, _, config, text) in zip(errors, fields[4:-1], strict=True):
        assert code == "2" and "RLKIT_DEBUG=1 for the traceback" in text, (args, text)  # rlkit's one-line error
        composing = [m for m in COMPOSING if f"'{m}'" in config]
        assert not composing, f"rlkit {' '.join(args)} imported {composing} before refusing it"
    assert not list(tmp_path.iterdir()), "a failed start left files behind"
