"""Reproducibility: the same config and seed give bit-identical runs for every agent, and ``rlkit verify``
checks it for a user's own run."""

from __future__ import annotations

import pytest

from helpers import TINY, compose_cfg, run_cli
from rlkit.errors import RlkitError, RunDirError
from rlkit.trainer import train
from rlkit.verify import main as verify_main
from rlkit.verify import verify_run

# Every agent kind, each on an env it fits: the whole run is re-run, final weights included.
RUNS = {
    "reinforce": ["agent=reinforce"],
    "dqn": ["agent=dqn", "agent.learning_starts=200"],
    "maddpg": ["env=multi_cartpole", "agent=maddpg", "agent.learning_starts=200"],
    "ppo": ["agent=ppo", "agent.n_steps=128", "total_steps=600"],
    # Two of the arm's 200-step episodes, and 100 gradient steps on small batches after the first 300 steps.
    "sac": ["env=robotic_arm", "agent=sac", "agent.learning_starts=300", "agent.batch_size=64", "total_steps=400"],
}


def _run(tmp_path, overrides):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    cfg = compose_cfg([*TINY, *overrides])
    # What Hydra would write: rlkit verify rebuilds the run from it.
    from omegaconf import OmegaConf

    (run / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    train(cfg, run)
    return run, cfg


@pytest.mark.parametrize("agent", sorted(RUNS))
def test_every_agent_repeats_its_run_bit_for_bit(tmp_path, agent):
    run, cfg = _run(tmp_path, RUNS[agent])
    verdict = verify_run(run, steps=cfg.total_steps)
    assert verdict.weights_compared
    assert verdict.compared["episode/reward"] > 0
    assert verdict.identical, verdict.differences


def test_verify_of_the_first_steps_and_of_a_run_that_does_not_repeat(tmp_path, capsys):
    run, _ = _run(tmp_path, ["agent=dqn", "agent.learning_starts=200"])
    verify_main([f"run={run}", "steps=700"])
    out = capsys.readouterr().out
    assert "identical" in out
    # The same directory with another seed in its config: the re-run cannot match what was logged.
    config = run / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("seed: 0", "seed: 1"))
    with pytest.raises(SystemExit) as stop:
        verify_main([f"run={run}", "steps=700"])
    assert stop.value.code == 1
    assert "DIFFERENT" in capsys.readouterr().out


def test_verify_refuses_bad_arguments_in_one_line(tmp_path):
    with pytest.raises(RlkitError, match="needs run="):
        verify_main([])
    with pytest.raises(RlkitError, match="steps must be an integer"):
        verify_main(["run=x", "steps=many"])
    with pytest.raises(RunDirError, match="does not exist"):
        verify_main([f"run={tmp_path / 'missing'}"])
    out = run_cli(["verify", "run=nowhere"], cwd=tmp_path)
    assert out.returncode == 2 and "run directory nowhere does not exist" in out.stderr
