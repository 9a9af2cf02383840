"""The TensorBoard dashboards every run writes: the custom-scalars layout and the HParams entry."""

import re

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.hparams import metadata as hparams_metadata

from helpers import TINY, compose_cfg, read_scalars
from rlkit.callbacks import THRESHOLD_RUN, custom_scalars_layout
from rlkit.runs import event_dir
from rlkit.trainer import hparams_of, train


def _events(tb_dir):
    events = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def _layout(events) -> dict[str, dict[str, list[str]]]:
    tensor = events.Tensors(custom_scalar_metadata.CONFIG_SUMMARY_TAG)[0]
    layout = layout_pb2.Layout()
    layout.ParseFromString(tensor.tensor_proto.string_val[0])
    # A chart as its tag patterns: a multiline chart's regular expressions, a margin chart's one exact tag.
    return {c.title: {chart.title: list(chart.multiline.tag) if chart.HasField("multiline")
                      else [f"^{re.escape(t)}$" for t in {s.value for s in chart.margin.series}
                            | {s.lower for s in chart.margin.series} | {s.upper for s in chart.margin.series}]
                      for chart in c.chart} for c in layout.category}


def _hparams(events):
    content = events.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    start = hparams_metadata.parse_session_start_info_plugin_data(content["_hparams_/session_start_info"])
    experiment = hparams_metadata.parse_experiment_plugin_data(content["_hparams_/experiment"])
    values = {k: (v.string_value or v.number_value if v.WhichOneof("kind") != "bool_value" else v.bool_value)
              for k, v in start.hparams.items()}
    return values, [m.name.tag for m in experiment.metric_infos]


@pytest.mark.parametrize(
    ("overrides", "charts"),
    [
        (["env=balancing_pole", "agent=dqn", "agent.learning_rate=0.0005"],
         {"evaluation return", "training return", "training episode length"}),
        (["env=multi_cartpole", "agent=maddpg"],
         {"evaluation return", "training return", "training episode length", "evaluation return of cart_0",
          "evaluation return of cart_1", "training return of cart_0", "training return of cart_1"}),
        (["env=robotic_arm", "agent=reinforce", "agent.n_envs=2"],  # 2 copies: 200-step episodes end
         {"evaluation return", "evaluation success rate", "training return", "training episode length"}),
    ],
    ids=["balancing_pole", "multi_cartpole", "robotic_arm"],
)
def test_a_run_writes_the_custom_scalars_layout_and_its_hparams(tmp_path, overrides, charts):
    cfg = compose_cfg([*overrides, *TINY, "seed=3"])
    summary = train(cfg, tmp_path)
    events = _events(event_dir(tmp_path / "tb"))

    layout = _layout(events)
    assert list(layout) == ["rlkit: evaluation", "rlkit: training", "rlkit: speed"]
    assert {title for category in layout.values() for title in category} == charts | {"env steps per second"}
    assert set(layout["rlkit: evaluation"]) == {c for c in charts if c.startswith("evaluation")}
    scalars = read_scalars(tmp_path / "tb")
    # TensorBoard colours lines by run: a chart holds one tag, one the run logged, so its lines are the runs.
    for category in layout.values():
        for pattern in category.values():
            assert len(pattern) == 1 and [t for t in scalars if re.match(pattern[0], t)], (pattern, sorted(scalars))
    # No chart of its own in SCALARS for a constant: the thresholds are a run of their own, under the tags they
    # bound, and the HParams metrics are tags the run logs anyway.
    assert not [t for t in scalars if "threshold" in t or t.startswith("hparams/")]
    thresholds = read_scalars(event_dir(tmp_path / "tb") / THRESHOLD_RUN)
    expected = {}
    if summary["reward_threshold"] is not None:
        agents = [t.removeprefix("eval/mean_reward/") for t in scalars if t.startswith("eval/mean_reward/")]
        expected.update({tag: summary["reward_threshold"] for tag in
                         ["eval/mean_reward", *(f"eval/mean_reward/{a}" for a in agents)]})
    if summary["success_threshold"] is not None:
        expected["eval/success_rate"] = summary["success_threshold"]
    assert set(thresholds) == set(expected)
    for tag, points in thresholds.items():
        assert [v for _, v in points] == pytest.approx([expected[tag]] * len(points))  # float32 in the events
    assert [s for s, _ in thresholds[next(iter(expected))]] == [0, *(s for s, _ in scalars["eval/mean_reward"])]

    values, metrics = _hparams(events)
    assert values["seed"] == 3 and values["total_steps"] == 1200
    assert values["agent.name"] == cfg.agent.name and values["env.name"] == cfg.env.name
    if cfg.agent.name == "dqn":
        assert values["agent.learning_rate"] == pytest.approx(5e-4)
        assert values["agent.net_arch"] == "[64, 64]"  # a list, as JSON text
    assert {"eval/mean_reward", "eval/best_score", "time/steps_per_second"} <= set(metrics) <= set(scalars)
    best = summary["best_eval"]
    assert scalars["eval/best_score"][-1][1] == pytest.approx(best.get("score", best["mean_reward"]))
    assert [v for _, v in scalars["eval/best_score"]] == sorted(v for _, v in scalars["eval/best_score"])


def test_no_tensorboard_no_dashboards(tmp_path):
    train(compose_cfg(["env=balancing_pole", "agent=reinforce", *TINY, "callbacks.tensorboard=false"]), tmp_path)
    assert not (tmp_path / "tb").exists()


def test_hparams_flatten_the_config_to_scalars():
    cfg = compose_cfg(["env=robotic_arm", "agent=maddpg", "agent.net_arch=[32,32]"])
    flat = hparams_of(cfg)
    assert flat["agent.net_arch"] == "[32, 32]"
    assert flat["env.link_lengths"] == "[1.0, 0.7]"
    assert flat["env.fixed_target"] == "null"
    assert all(isinstance(v, bool | int | float | str) for v in flat.values())
    assert not any(k.startswith("callbacks") for k in flat)


def test_layout_without_success_rate_or_agents_has_only_the_plain_charts():
    layout = custom_scalars_layout(success_rate=False, agents=())
    # Evaluations are margin charts with an empty margin: TensorBoard draws those unsmoothed.
    assert layout["rlkit: evaluation"] == {"evaluation return": ["Margin", ["eval/mean_reward"] * 3]}
    assert layout["rlkit: training"] == {"training return": ["Multiline", ["^episode/reward$"]],
                                         "training episode length": ["Multiline", ["^episode/length$"]]}


def test_every_evaluation_chart_is_unsmoothed_and_every_other_chart_is_one_tag():
    layout = custom_scalars_layout(success_rate=True, agents=("cart_0", "cart_1"))
    assert layout["rlkit: evaluation"] == {
        title: ["Margin", [tag] * 3] for title, tag in [
            ("evaluation return", "eval/mean_reward"), ("evaluation success rate", "eval/success_rate"),
            ("evaluation return of cart_0", "eval/mean_reward/cart_0"),
            ("evaluation return of cart_1", "eval/mean_reward/cart_1")]}
    others = [chart for category in ("rlkit: training", "rlkit: speed") for chart in layout[category].values()]
    assert others and all(kind == "Multiline" and len(patterns) == 1 for kind, patterns in others)


def test_events_are_read_from_the_named_folder_and_from_tb_itself_in_older_runs(tmp_path):
    named = tmp_path / "new" / "tb" / "balancing_pole__dqn__seed=0"
    (named / THRESHOLD_RUN).mkdir(parents=True)
    (named / "events.out.tfevents.1").touch()
    (named / THRESHOLD_RUN / "events.out.tfevents.2").touch()
    assert event_dir(tmp_path / "new" / "tb") == named
    old = tmp_path / "old" / "tb"  # written before runs were named; continued since, with its threshold run
    (old / THRESHOLD_RUN).mkdir(parents=True)
    (old / "events.out.tfevents.1").touch()
    (old / THRESHOLD_RUN / "events.out.tfevents.2").touch()
    assert event_dir(old) == old
