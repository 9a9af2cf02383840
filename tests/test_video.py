"""`rlkit eval video=true`: deterministic episodes rendered off-screen to a video file in the run directory."""

import re
from pathlib import Path

import gymnasium as gym
import imageio_ffmpeg
import numpy as np
import pytest

import rlkit.envs  # noqa: F401  (registers rlkit/BalancingPole-v1)
from helpers import TINY, cli
from rlkit.config import EvalRunConfig
from rlkit.errors import ConfigError
from rlkit.evaluate import evaluate_run


def read_video(path: Path) -> tuple[np.ndarray, float]:
    """Decode every frame of a video: (frames, height, width, 3) uint8, and its frame rate."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(f, dtype=np.uint8).reshape(height, width, 3) for f in reader]
    return np.stack(frames), meta["fps"]


def train_run(run: Path, overrides: list[str]) -> Path:
    """A tiny run trained by the CLI's main() (which also saves the config that evaluation rebuilds from)."""
    out = cli(["train", *TINY, *overrides, f"hydra.run.dir={run}"], cwd=run.parent)
    assert out.returncode == 0, out.stderr
    return run


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("video") / "run", ["seed=1"])


def test_mp4_has_a_frame_per_step_and_per_reset(dqn_run):
    report = evaluate_run(EvalRunConfig(run=str(dqn_run), n_episodes=3, video=True))
    video = report.video
    assert video is not None and video.parent == dqn_run / "videos"
    assert re.fullmatch(r"eval-best-\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-\d{6}\.mp4", video.name)
    assert video.stat().st_size > 0
    frames, fps = read_video(video)
    # Each episode: the frame after reset, then one after every step (its last included).
    assert len(frames) == sum(report.lengths) + 3
    assert frames.shape[1:] == (400, 600, 3) and fps == 50  # the balancing pole's size and render_fps
    assert (frames < 64).any()  # the black cart is drawn
    assert not (frames == frames[0]).all()  # and it moves


def test_gif_from_the_cli_starts_with_the_seeded_reset_frame(dqn_run):
    out = cli(["eval", f"run={dqn_run}", "video=true", "video_format=gif", "video_fps=25", "n_episodes=2"],
              cwd=dqn_run)
    assert out.returncode == 0, out.stderr
    (line,) = [s for s in out.stdout.splitlines() if s.startswith("video: ")]
    video = Path(line.removeprefix("video: "))
    assert video.parent == dqn_run / "videos" and video.suffix == ".gif"
    lengths = [int(n) for n in re.findall(r"length (\d+)", out.stdout)]
    frames, fps = read_video(video)
    assert len(lengths) == 2 and len(frames) == sum(lengths) + 2
    assert fps == 25
    # The evaluation seeds its env with seed=12345: the first frame is that reset, drawn off-screen.
    env = gym.make("rlkit/BalancingPole-v1", render_mode="rgb_array")
    env.reset(seed=12345)
    expected = env.render()
    env.close()
    assert np.abs(frames[0].astype(int) - expected.astype(int)).mean() < 1.0  # a 256-colour palette per frame


def test_multi_agent_video_shows_every_cart_in_one_frame(tmp_path):
    run = train_run(tmp_path / "run", ["env=multi_cartpole", "agent=maddpg", "agent.learning_starts=300",
                                       "agent.n_envs=4"])
    report = evaluate_run(EvalRunConfig(run=str(run), n_episodes=2, video=True))
    assert report.video is not None and set(report.agent_rewards) == {"cart_0", "cart_1"}
    frames, _ = read_video(report.video)
    assert len(frames) == sum(report.lengths) + 2
    assert frames.shape[1:] == (260, 600, 3)  # two lanes of 110 px and a 40 px margin
    half = frames.shape[1] // 2
    assert (frames[0, :half] < 64).any() and (frames[0, half:] < 64).any()  # a black cart in each lane


def test_video_with_a_window_is_refused(dqn_run):
    with pytest.raises(ConfigError, match="drop render_mode=human"):
        EvalRunConfig(run=str(dqn_run), video=True, render_mode="human").validate()
    out = cli(["eval", f"run={dqn_run}", "video=true", "render_mode=human"], cwd=dqn_run)
    assert out.returncode == 2
    assert "video=true records frames rendered off-screen and cannot show a window" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("overrides", "message"), [
    ({"video_format": "avi"}, "video_format must be one of mp4, gif, got 'avi'"),
    ({"video_fps": 0}, "video_fps must be >= 1"),
])
def test_bad_video_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        EvalRunConfig(run="x", video=True, **overrides).validate()


def test_without_video_an_evaluation_writes_nothing(dqn_run):
    before = sorted(dqn_run.rglob("*"))
    report = evaluate_run(EvalRunConfig(run=str(dqn_run), n_episodes=1))
    assert report.video is None
    assert sorted(dqn_run.rglob("*")) == before
