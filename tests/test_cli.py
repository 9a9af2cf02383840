import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import TINY, cli, run_cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("cli")
    out = run_cli(["train", *TINY, "seed=1"], cwd=cwd)
    assert out.returncode == 0, out.stderr
    runs = list((cwd / "runs" / "balancing_pole" / "dqn").iterdir())
    assert len(runs) == 1
    assert f"run: {runs[0]}" in out.stdout
    return runs[0]


def test_train_writes_a_complete_run_directory(trained_run):
    for rel in (".hydra/config.yaml", ".hydra/overrides.yaml", "summary.json",
                "checkpoints/best.safetensors", "checkpoints/last.safetensors"):
        assert (trained_run / rel).is_file(), rel
    # TensorBoard names a run by its event folder: what it is and the overrides it was given (display ones left out)
    (events,) = (trained_run / "tb").iterdir()
    assert events.name == ("balancing_pole__dqn__seed=1__"
                           "total_steps=1200,callbacks.eval.every_steps=500,callbacks.eval.episodes=2")
    assert list(events.glob("events.out.tfevents.*"))
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["seed"] == 1 and summary["steps"] == 1200


def test_eval_replays_the_run_with_human_rendering_headless(trained_run):
    out = run_cli(["eval", f"run={trained_run}", "render_mode=human", "n_episodes=2"], cwd=trained_run.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("episode ") == 2
    assert "2 episodes from" in out.stdout and "best.safetensors" in out.stdout and "±" in out.stdout


def test_eval_of_the_last_checkpoint_is_deterministic(trained_run):
    outs = [cli(["eval", f"run={trained_run}", "checkpoint=last", "n_episodes=3"], cwd=trained_run)
            for _ in range(2)]
    assert outs[0].returncode == 0, outs[0].stderr
    assert "last.safetensors" in outs[0].stdout
    assert outs[0].stdout == outs[1].stdout


def test_top_level_help_lists_the_commands(tmp_path):
    out = run_cli(["--help"], cwd=tmp_path)
    assert out.returncode == 0
    assert "train" in out.stdout and "eval" in out.stdout


def test_train_help_is_a_manual(tmp_path):
    out = cli(["train", "--help"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "env          balancing_pole, gym, mpe, multi_cartpole, pettingzoo, robotic_arm" in out.stdout
    assert "balancing_pole_dqn" in out.stdout
    assert "agent.learning_rate=0.0001" in out.stdout and "Adam learning rate" in out.stdout
    assert "_schema" not in out.stdout
    out = cli(["train", "--help", "experiment=balancing_pole_dqn"], cwd=tmp_path)
    assert "agent.learning_rate=0.0001" not in out.stdout  # shows the preset's values


# A table of user mistakes: each gets a short message naming the problem, a non-zero exit, no traceback.
BAD_INPUT = [
    (["train", "env=balancing_pol"],
     "choose one of: balancing_pole, gym, mpe, multi_cartpole, pettingzoo, robotic_arm. "
     "Did you mean env=balancing_pole?"),
    (["train", "agent=dqm"], "Did you mean agent=dqn?"),
    (["train", "agent.learning_rate=abc"], "agent.learning_rate"),
    (["train", "agent.lerning_rate=0.1"], "agent.lerning_rate"),
    (["train", "+agent.foo=1"], "unknown key 'agent.foo'"),
    (["train", "total_steps=-5"], "total_steps must be >= 1, got -5"),
    (["train", "env=gym"], "env.id has no value"),
    (["train", "env=gym", "env.id=CartPol-v1"], "env.id='CartPol-v1' cannot be made"),
    (["train", "env.continuous=true", "agent.action_bins=0"], "needs a Discrete action space"),
    (["train", "env=mpe", "env.name=simple_sprad_v3", "agent=maddpg"], "Did you mean simple_spread_v3?"),
    (["train", "env=gym", "env.id=CartPole-v1", "agent=sac"], "agent=sac (SAC) needs a Box action space"),
    (["train", "env=multi_cartpole", "env.coupling=-1", "agent=maddpg"],
     "env.coupling (spring stiffness) must be >= 0"),
    (["train", "env=pettingzoo", "env.id=nosuch/Env-v0", "agent=maddpg"], "is not in PettingZoo's registry"),
    (["train", "env=gym", "env.id=CartPole-v1", "agent=maddpg", "agent.tau=0"], "agent.tau=0.0 is out of range"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["eval"], "run has no value"),
    (["eval", "run=/no/such/run"], "run directory /no/such/run does not exist"),
    (["eval", "run=."], "is not an rlkit run directory"),
    (["eval", "run=.", "render_mode=window"], "render_mode must be human, rgb_array or null"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_gets_a_clear_error(tmp_path, args, message):
    out = cli(args, cwd=tmp_path)  # in-process: the same main(); test_debug_flag_shows_the_traceback runs a process
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.splitlines()) <= 12
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.safetensors"))


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_eval_of_damaged_runs_says_what_is_wrong(trained_run, tmp_path):
    no_ckpt = _copy_run(trained_run, tmp_path / "no_ckpt")
    for f in (no_ckpt / "checkpoints").iterdir():
        f.unlink()
    corrupt_ckpt = _copy_run(trained_run, tmp_path / "corrupt_ckpt")
    (corrupt_ckpt / "checkpoints" / "best.safetensors").write_bytes(b"not a checkpoint")
    corrupt_cfg = _copy_run(trained_run, tmp_path / "corrupt_cfg")
    (corrupt_cfg / ".hydra" / "config.yaml").write_text("env: [unclosed\n")
    foreign_cfg = _copy_run(trained_run, tmp_path / "foreign_cfg")
    (foreign_cfg / ".hydra" / "config.yaml").write_text("env: {name: mars_lander}\nagent: {name: dqn}\n")
    cases = [
        (no_ckpt, "has no best checkpoint"),
        (corrupt_ckpt, "is corrupt or not a safetensors file"),
        (corrupt_cfg, "config.yaml is corrupt"),
        (foreign_cfg, "names an env or agent this version of rlkit does not know"),
    ]
    for run, message in cases:
        out = cli(["eval", f"run={run}"], cwd=tmp_path)
        assert out.returncode == 2 and message in out.stderr, (run.name, out.stderr)
        assert "Traceback" not in out.stderr


def test_debug_flag_shows_the_traceback(tmp_path):
    out = cli(["eval", "run=/no/such/run"], cwd=tmp_path, env={"RLKIT_DEBUG": "1"})
    assert out.returncode != 0 and "Traceback" in out.stderr


@pytest.mark.slow  # a tree of processes of its own: tens of seconds
def test_non_editable_install_works_from_any_directory(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
         str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = wheels.glob("rlkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rlkit/configs/train.yaml" in names and "rlkit/configs/experiment/balancing_pole_dqn.yaml" in names
    assert "rlkit/envs/balancing_pole.py" in names and "rlkit/agents/sb3.py" in names
    # Hydra finds rlkit's launcher and sweeper in its namespace package, which no distribution may own.
    assert "hydra_plugins/rlkit_plugins/__init__.py" in names and "hydra_plugins/__init__.py" not in names
    assert not [n for n in names if n.split("/")[0] in ("envs", "agents", "configs", "tests", "scripts")]

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "SDL_VIDEODRIVER": "dummy"}
    code = "import sys; from rlkit.cli import main; sys.argv = ['rlkit', *sys.argv[1:]]; main()"
    out = subprocess.run([sys.executable, "-c", code, "train", *TINY],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    check = subprocess.run([sys.executable, "-c", "import rlkit.envs, rlkit.configs; print(rlkit.envs.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert check.stdout.startswith(str(site))
    assert list((elsewhere / "runs" / "balancing_pole" / "dqn").glob("*/summary.json"))


def test_closing_the_window_ends_the_evaluation_cleanly(trained_run):
    import pygame

    from rlkit.config import EvalRunConfig
    from rlkit.evaluate import evaluate_run

    def close_window(episode, played):
        pygame.event.post(pygame.event.Event(pygame.QUIT))  # as if the user clicked the window's close box

    report = evaluate_run(EvalRunConfig(run=str(trained_run), render_mode="human", n_episodes=4),
                          on_episode=close_window)
    assert len(report.rewards) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 and Wayland tell of a display by variables")
def test_eval_human_without_a_display_says_so_in_one_line(trained_run, monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    out = cli(["eval", f"run={trained_run}", "render_mode=human"], cwd=trained_run.parent)
    assert out.returncode == 2
    assert "render_mode=human needs a window, and none can open here" in out.stderr and "video=true" in out.stderr
    assert "Traceback" not in out.stderr and "episode 1" not in out.stdout


def test_reinforce_trains_and_evaluates_from_the_cli(tmp_path):
    out = cli(["train", "agent=reinforce", *(a for a in TINY if not a.startswith("total_steps=")), "total_steps=3000"],
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs" / "balancing_pole" / "reinforce").iterdir()
    out = cli(["eval", f"run={run}", "render_mode=human", "n_episodes=2"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "2 episodes from" in out.stdout


PAIRS = [(env, agent) for env in ("balancing_pole", "robotic_arm", "multi_cartpole")
         for agent in ("reinforce", "dqn", "maddpg")]


@pytest.mark.parametrize(("env", "agent"), PAIRS, ids=[f"{e}-{a}" for e, a in PAIRS])
def test_every_builtin_agent_trains_and_evaluates_on_every_builtin_env(tmp_path, env, agent):
    args = ["train", f"env={env}", f"agent={agent}", "total_steps=600", "callbacks.eval.every_steps=0",
            "callbacks.eval.episodes=1", "callbacks.progress_bar=false"]
    if agent in ("dqn", "maddpg"):
        args.append("agent.learning_starts=100")  # a few updates within the tiny budget
    out = cli(args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs" / env / agent).iterdir()
    log = (run / "train.log").read_text()
    if env == "multi_cartpole" and agent != "maddpg":
        assert "joint control of multi_cartpole's 2 agents" in log
    if agent == "dqn" and env != "balancing_pole":
        assert "discretised into 5 bins per dimension" in log
    if agent == "maddpg" and env != "multi_cartpole":
        assert "team of one agent (that is DDPG)" in log
    out = cli(["eval", f"run={run}", "n_episodes=1"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "1 episodes from" in out.stdout
