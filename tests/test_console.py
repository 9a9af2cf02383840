"""What a person sees in a terminal: the real CLI in a pseudo-terminal, so the progress bar shows."""

import fcntl
import io
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from helpers import TINY, cli
from rlkit.callbacks import Episode, ProgressBar, TrainingContext
from rlkit.signals import EXIT_INTERRUPTED


def _read_until(fd: int, proc: subprocess.Popen, seen: bytearray, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done(seen.decode(errors="replace")) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen.extend(os.read(fd, 65536))
            except OSError:  # the child closed the terminal
                return
        elif proc.poll() is not None:
            return


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_terminal_shows_each_evaluation_once_above_the_bar_and_ctrl_c_as_a_stop(tmp_path):
    rlkit = Path(sys.executable).parent / "rlkit"
    args = ["train", "agent=dqn", "total_steps=1000000", "callbacks.eval.every_steps=300", "callbacks.eval.episodes=1",
            "callbacks.tensorboard=false", "callbacks.checkpoint.every_seconds=0"]
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # rows, columns: a real window
    env = {k: v for k, v in os.environ.items() if k not in ("RLKIT_DEBUG", "HYDRA_FULL_ERROR")}
    env.update(SDL_VIDEODRIVER="dummy")
    proc = subprocess.Popen([str(rlkit), *args], cwd=tmp_path, stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    seen = bytearray()
    try:
        _read_until(main, proc, seen, lambda text: text.count("eval at step") >= 3, timeout=240)
        proc.send_signal(signal.SIGINT)
        _read_until(main, proc, seen, lambda text: "continue with" in text, timeout=120)
        proc.wait(timeout=60)
        _read_until(main, proc, seen, lambda text: False, timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    text = seen.decode(errors="replace")
    assert proc.returncode == EXIT_INTERRUPTED, text[-3000:]
    lines = text.replace("\r\n", "\n").split("\n")
    evals = [line for line in lines if "eval at step" in line]
    assert len(evals) >= 3 and not any("eval @" in line for line in lines), text[-3000:]  # each printed once
    # The bar is cleared before a log line: what is left on the line after its last carriage return is the log line.
    for line in evals:
        assert re.match(r"\s*\[\d{4}-\d\d-\d\d ", line.split("\r")[-1]), repr(line)
    assert "ep/s=" in text and "eps/s" not in text
    stop = next(line for line in lines if "continue with: rlkit train resume=" in line).split("\r")[-1]
    assert re.match(r"rlkit: stopped by SIGINT at step \d+ of 1000000; checkpoint \S+; continue with: rlkit train "
                    r"resume=\S+$", stop.strip()), repr(stop)
    assert "error" not in text.lower() and "RLKIT_DEBUG" not in text and "Traceback" not in text


def test_on_the_arm_each_evaluation_and_the_final_line_show_the_success_rate(tmp_path):
    out = cli(["train", "env=robotic_arm", "agent=reinforce", *TINY], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = out.stdout + out.stderr
    assert re.search(r"eval at step \d+: mean reward \S+ \+/- \S+ over 2 episodes, success \d+%", printed), printed
    assert re.search(r"final eval: \S+ ± \S+, success \d+%", out.stdout), out.stdout


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_counts_a_last_vector_step_past_total_steps_as_its_total(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = ProgressBar(refresh_steps=1)
    bar.on_training_start(TrainingContext(agent=None, run_dir=Path("."), total_steps=10, callbacks=None))
    for step in (4, 8, 12):  # three copies of an env: the last vector step passes 10 by 2
        bar.on_step(step)
    bar.on_training_end()
    last = terminal.getvalue().split("\r")[-1]
    assert "12/12" in last and "100%" in last and "ep/s=" in last, repr(last)


def test_the_bar_shows_each_teams_mean_beside_the_runs(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = ProgressBar(refresh_steps=1)
    teams = {"adversary": ("adversary_0",), "agent": ("agent_0", "agent_1")}
    bar.on_training_start(TrainingContext(agent=None, run_dir=Path("."), total_steps=10, callbacks=None, teams=teams))
    for name, reward in (("adversary_0", -4.0), ("agent_0", 1.0), ("agent_1", 2.0), (None, -1.0 / 3)):
        bar.on_episode_end(Episode(step=5, reward=reward, length=5, agent=name))
    bar.on_step(5)
    bar.on_training_end()
    last = terminal.getvalue().split("\r")[-1]
    assert "reward=-0.3 adversary=-4.0 agent=1.5" in last, repr(last)
