"""scripts/bench_suite.py end to end on one preset with a tiny budget: JSON, Markdown and plot, resuming."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import bench_suite
import pytest

from helpers import cli

TINY = ["--override", "total_steps=1000", "--override", "callbacks.eval.every_steps=500",
        "--override", "callbacks.eval.episodes=2"]


def _rlkit_in_process(command, **_):
    """The suite's ``rlkit train`` runs through ``rlkit.cli.main`` in this process: no process start-up per run."""
    assert Path(command[0]).name == "rlkit", command
    return cli(command[1:], cwd=Path.cwd())


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bench_suite, "subprocess", SimpleNamespace(run=_rlkit_in_process))
        code = bench_suite.main(["--presets", "balancing_pole_reinforce:2", "--seeds", "5", "--out",
                                 str(out / "runs"), "--json", str(out / "suite.json"), "--markdown",
                                 str(out / "suite.md"), "--plot", str(out / "plots"), *TINY])
    assert code == 0
    return out


def test_json_has_every_seed_and_the_preset_figures(suite):
    results = json.loads((suite / "suite.json").read_text())
    preset = results["presets"]["balancing_pole_reinforce"]
    assert [r["seed"] for r in preset["runs"]] == [0, 1]
    assert preset["budget"] == 1000 and preset["seeds"] == 2 and preset["reward_threshold"] == 475.0
    for run in preset["runs"]:
        assert (suite / "runs" / "balancing_pole_reinforce" / f"seed{run['seed']}" / "summary.json").is_file()
        assert run["steps"] >= 1000 and run["final_eval"]["mean_reward"] > 0
        assert run["solved"] == (run["steps_to_threshold"] is not None)
    solved = [r for r in preset["runs"] if r["solved"]]
    assert preset["solved"] == len(solved)
    assert (preset["steps_to_threshold"] is None) == (not solved)
    assert preset["final_mean_reward"]["min"] <= preset["final_mean_reward"]["median"]


def test_markdown_has_one_row_per_preset(suite):
    lines = (suite / "suite.md").read_text().splitlines()
    assert lines[0].startswith("| preset | threshold | budget | solved |")
    rows = [line for line in lines[2:] if line.startswith("|")]
    assert len(rows) == 1 and rows[0].startswith("| `balancing_pole_reinforce` | return 475 | 1,000 |")


def test_plot_per_env_family(suite):
    png = suite / "plots" / "balancing_pole.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.with_suffix(".csv").read_text().startswith("group,x_kind,x,mean,low,high,n_runs")


def test_finished_runs_are_not_run_again(suite, capsys):
    code = bench_suite.main(["--presets", "balancing_pole_reinforce", "--seeds", "2", "--out", str(suite / "runs"),
                             "--json", str(suite / "again.json"), "--markdown", str(suite / "again.md"),
                             "--plot", str(suite / "plots"), *TINY])
    assert code == 0
    assert capsys.readouterr().out.count("(done before)") == 2
    assert json.loads((suite / "again.json").read_text())["presets"] == \
        json.loads((suite / "suite.json").read_text())["presets"]


@pytest.mark.parametrize(("presets", "message"), [
    ("balancing_pole_dqn,cartpole_ppo", "unknown preset(s) cartpole_ppo; valid presets: balancing_pole_dqn,"),
    ("balancing_pole_dqn:0", "'balancing_pole_dqn:0': the number of seeds must be a whole number >= 1"),
])
def test_bad_presets_are_a_one_line_error(capsys, presets, message):
    assert bench_suite.main(["--presets", presets]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
