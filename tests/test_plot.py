"""`rlkit plot`: learning curves of a sweep's runs, mean and 95% t-interval over seeds, as a PNG and a CSV."""

import csv
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from helpers import TINY, cli, read_scalars, run_cli
from rlkit.plot import Group, Run, curves, group_runs, load_runs, moving_average, reward_thresholds


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A multirun's directory: DQN and REINFORCE, seeds 0 and 1 each (jobs 0-3), tiny budgets.

    Made in this process, one job after the other (Hydra's basic launcher): the sweep's directory is the same
    as the parallel launcher's (tests/test_sweeps.py), without starting a process per job."""
    root = tmp_path_factory.mktemp("plot")
    out = cli(["train", "-m", "hydra/launcher=basic", "agent=dqn,reinforce", "seed=0,1", *TINY,
               f"hydra.sweep.dir={root / 'sweep'}"], cwd=root)
    assert out.returncode == 0, out.stderr
    return root / "sweep"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_plot_of_a_sweep_writes_a_png_and_the_numbers_drawn(sweep, tmp_path):
    out = run_cli(["plot", str(sweep), "--out", str(tmp_path / "curves.png")], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "agent=dqn: 2 runs (seeds 0, 1)" in out.stdout and "agent=reinforce: 2 runs (seeds 0, 1)" in out.stdout
    with Image.open(tmp_path / "curves.png") as png:
        assert png.format == "PNG" and png.size == (1200, 500)
    rows = read_csv(tmp_path / "curves.csv")
    assert list(rows[0]) == ["group", "x_kind", "x", "mean", "low", "high", "n_runs"]
    assert Counter((r["group"], r["x_kind"], r["n_runs"]) for r in rows) == {
        ("agent=dqn", "steps", "2"): 200, ("agent=dqn", "wall", "2"): 200,
        ("agent=reinforce", "steps", "2"): 200, ("agent=reinforce", "wall", "2"): 200,
    }
    for r in rows:
        assert float(r["low"]) <= float(r["mean"]) <= float(r["high"])
    steps = [float(r["x"]) for r in rows if r["group"] == "agent=dqn" and r["x_kind"] == "steps"]
    assert steps == sorted(steps) and steps[-1] <= 1200


def test_default_output_goes_into_the_first_directory(sweep):
    out = cli(["plot", str(sweep / "0"), "--x", "steps", "--tag", "eval/mean_reward"], cwd=sweep)
    assert out.returncode == 0, out.stderr
    assert (sweep / "0" / "learning_curves.png").is_file()
    rows = read_csv(sweep / "0" / "learning_curves.csv")
    # One run: labelled by env and agent, its curve alone (no interval), steps only.
    assert {(r["group"], r["x_kind"], r["n_runs"]) for r in rows} == {("balancing_pole, dqn", "steps", "1")}
    assert all(r["low"] == r["mean"] == r["high"] for r in rows)


def test_the_curve_is_the_mean_of_the_seeds_with_a_t_interval(sweep):
    runs = load_runs([sweep / "0", sweep / "1"], tag="eval/mean_reward")
    (group,) = group_runs(runs)
    assert [r.config["seed"] for r in group.runs] == [0, 1]
    (curve,) = curves([group], x="steps", points=8)
    # Both seeds evaluate at steps 500, 1000 and 1200: the grid spans them, ends included.
    assert curve.x[0] == 500 and curve.x[-1] == 1200 and len(curve.x) == 8
    logged = [dict(read_scalars(sweep / str(job) / "tb")["eval/mean_reward"]) for job in (0, 1)]
    for i, step in ((0, 500), (-1, 1200)):
        values = [v[step] for v in logged]
        half = stats.t.ppf(0.975, 1) * np.std(values, ddof=1) / math.sqrt(2)
        assert curve.mean[i] == pytest.approx(np.mean(values))
        # the 95% t-interval, clipped to the range of the runs' values (with 2 seeds t = 12.7 reaches far beyond)
        assert curve.high[i] == pytest.approx(min(curve.mean[i] + half, curve.runs.max()))
        assert curve.low[i] == pytest.approx(max(curve.mean[i] - half, curve.runs.min()))


def test_runs_without_the_tag_are_left_out_with_a_warning(sweep):
    with pytest.warns(UserWarning, match="2 of 4 runs logged no scalar 'train/loss'"):
        runs = load_runs([sweep], tag="train/loss")  # DQN's; REINFORCE logs train/policy_loss
    assert [r.config["agent.name"] for r in runs] == ["dqn", "dqn"]


def _run(seed: int, steps: list[float], values: list[float], **config) -> Run:
    base = {"env.name": "balancing_pole", "agent.name": "dqn", "agent.learning_rate": 1e-4, "seed": seed,
            "callbacks.progress_bar": True}
    return Run(path=Path(f"run{seed}"), config={**base, **config}, summary={"env": "balancing_pole",
               "agent": base["agent.name"], "steps": steps[-1]}, steps=np.array(steps, dtype=float),
               wall=np.array(steps, dtype=float) / 100, values=np.array(values, dtype=float))


def test_groups_are_labelled_by_what_differs_between_them():
    runs = [
        _run(0, [0, 1], [0, 1]),
        _run(1, [0, 1], [0, 1], **{"callbacks.progress_bar": False}),  # display only: same group
        _run(0, [0, 1], [0, 1], **{"agent.learning_rate": 1e-3}),
        _run(0, [0, 1], [0, 1], **{"agent.name": "reinforce", "agent.learning_rate": 1e-2, "agent.batch": 16}),
    ]
    groups = group_runs(runs)
    assert [(g.label, len(g.runs)) for g in groups] == [
        ("agent=dqn agent.learning_rate=0.0001", 2),
        ("agent=dqn agent.learning_rate=0.001", 1),
        ("agent=reinforce", 1),  # its own keys differ from DQN's, but only its choice tells it apart
    ]
    assert [g.label for g in group_runs(runs[2:3] + runs[:1])] == [
        "agent.learning_rate=0.001", "agent.learning_rate=0.0001"]


def test_labels_take_the_fewest_keys_and_budget_keys_only_when_they_tell_groups_apart():
    slow = {"agent.learning_rate": 1e-3, "callbacks.eval.every_steps": 2000, "total_steps": 30000}
    runs = [_run(0, [0, 1], [0, 1]), _run(0, [0, 1], [0, 1], **slow)]
    assert [g.label for g in group_runs(runs)] == ["agent.learning_rate=0.0001", "agent.learning_rate=0.001"]
    runs = [_run(0, [0, 1], [0, 1], **{"total_steps": t, "callbacks.eval.every_steps": 500}) for t in (2e4, 3e4)]
    assert [g.label for g in group_runs(runs)] == ["total_steps=20000.0", "total_steps=30000.0"]  # only it differs
    # two keys, each alone ambiguous: both named
    runs = [_run(0, [0, 1], [0, 1], **{"agent.gamma": g, "agent.learning_rate": lr}) for g, lr in
            ((0.9, 1e-3), (0.9, 1e-4), (0.99, 1e-3))]
    assert [g.label for g in group_runs(runs)] == [
        "agent.learning_rate=0.001 agent.gamma=0.9", "agent.learning_rate=0.0001 agent.gamma=0.9",
        "agent.learning_rate=0.001 agent.gamma=0.99"]


def test_episode_tags_are_smoothed_by_default_and_the_title_says_so(sweep, tmp_path):
    out = cli(["plot", str(sweep), "--out", str(tmp_path / "c.png"), "--x", "steps"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    groups = group_runs(load_runs([sweep]))
    (dqn, *_), (raw, *_) = curves(groups, smooth=20), curves(groups, smooth=1)  # 20 episodes: the default
    rows = [float(r["mean"]) for r in read_csv(tmp_path / "c.csv") if r["group"] == dqn.group]
    np.testing.assert_allclose(rows, dqn.mean)
    assert not np.allclose(rows, raw.mean)
    with Image.open(tmp_path / "c.png") as png:
        assert png.size == (1200, 500)


def test_reward_thresholds_name_their_env_when_the_runs_mix_envs():
    pole, arm = _run(0, [0, 1], [0, 1]), _run(1, [0, 1], [0, 1], **{"env.name": "robotic_arm"})
    pole.summary["reward_threshold"] = 475.0
    arm.summary.update(env="robotic_arm", reward_threshold=None)
    assert reward_thresholds([pole]) == {475.0: "reward threshold 475"}
    assert reward_thresholds([pole, arm]) == {475.0: "reward threshold 475 (balancing_pole)"}
    assert reward_thresholds([arm]) == {}


def test_runs_are_interpolated_onto_the_range_they_share():
    a = _run(0, [0, 10], [0, 10])
    b = _run(1, [0, 5, 20], [2, 2, 2])
    with pytest.warns(UserWarning, match="the runs of g trained for 10 to 20 steps"):
        (curve,) = curves([Group("g", [a, b])], x="steps", points=3)
    assert curve.x.tolist() == [0, 5, 10]  # b goes on to 20; a does not
    assert curve.mean.tolist() == [1, 3.5, 6]
    half = stats.t.ppf(0.975, 1) * np.abs(curve.runs[0] - curve.runs[1]) / 2  # std of two / sqrt(2)
    np.testing.assert_allclose(curve.high, np.minimum(curve.mean + half, 10))  # clipped to the values seen: 0-10
    np.testing.assert_allclose(curve.low, np.maximum(curve.mean - half, 0))
    (wall,) = curves([Group("g", [a, b])], x="wall", points=3)
    assert wall.x.tolist() == [0, 0.05, 0.1]


def test_moving_average_is_trailing():
    assert moving_average(np.array([1.0, 2, 3, 4]), 2).tolist() == [1, 1.5, 2.5, 3.5]
    assert moving_average(np.array([1.0, 2]), 1).tolist() == [1, 2]


def test_plot_help_and_top_level_help(tmp_path):
    out = cli(["plot", "--help"], cwd=tmp_path)
    assert out.returncode == 0 and "--tag" in out.stdout and "95%" in out.stdout
    out = cli(["--help"], cwd=tmp_path)
    assert "plot" in out.stdout


BAD_INPUT = [
    (["/no/such/dir"], "rlkit: error: /no/such/dir does not exist"),
    (["{empty}"], "rlkit: error: no rlkit run directories under"),
    (["{sweep}", "--tag", "eval/mean_rewrd"],
     "rlkit: error: none of the 4 runs logged a scalar 'eval/mean_rewrd'; their tags: "),
    (["{sweep}", "--out", "{empty}/curves.svg"], "rlkit: error: --out must name a .png file"),
    (["{sweep}", "--smooth", "0"], "rlkit: error: --smooth must be >= 1"),
    (["{sweep}", "--out", "{empty}/no/curves.png"], "the folder {empty}/no does not exist"),
    ([], "the following arguments are required: DIR"),
    (["{sweep}", "--x", "time"], "argument --x: invalid choice: 'time'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[" ".join(a) or "no dirs" for a, _ in BAD_INPUT])
def test_bad_input_gets_a_one_line_error(sweep, tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = cli(["plot", *(a.format(sweep=sweep, empty=empty) for a in args)], cwd=tmp_path)
    assert out.returncode == 2
    message = message.format(empty=empty)
    assert message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]
    assert not list(tmp_path.rglob("*.png"))
