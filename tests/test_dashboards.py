"""The TensorBoard dashboards every run writes: the custom-scalars layout and the HParams entry."""

import re

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata
from tensorboard.plugins.hparams import metadata as hparams_metadata

from helpers import TINY, compose_cfg, read_scalars
from rlkit.callbacks import custom_scalars_layout
from rlkit.train import hparams_of, train


def _events(tb_dir):
    events = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def _layout(events) -> dict[str, dict[str, list[str]]]:
    tensor = events.Tensors(custom_scalar_metadata.CONFIG_SUMMARY_TAG)[0]
    layout = layout_pb2.Layout()
    layout.ParseFromString(tensor.tensor_proto.string_val[0])
    return {c.title: {chart.title: list(chart.multiline.tag) for chart in c.chart} for c in layout.category}


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
         {"training vs evaluation return", "episode length"}),
        (["env=multi_cartpole", "agent=maddpg"],
         {"training vs evaluation return", "episode length", "per-agent and team training return",
          "per-agent and team evaluation return"}),
        (["env=robotic_arm", "agent=reinforce", "agent.n_envs=2"],  # 2 copies: 200-step episodes end
         {"training vs evaluation return", "episode length", "evaluation success rate"}),
    ],
    ids=["balancing_pole", "multi_cartpole", "robotic_arm"],
)
def test_a_run_writes_the_custom_scalars_layout_and_its_hparams(tmp_path, overrides, charts):
    cfg = compose_cfg([*overrides, *TINY, "seed=3"])
    summary = train(cfg, tmp_path)
    events = _events(tmp_path / "tb")

    layout = _layout(events)
    assert set(layout["rlkit: returns"]) == charts
    assert layout["rlkit: speed"] == {"env steps per second": ["^time/steps_per_second$"]}
    scalars = read_scalars(tmp_path / "tb")
    # Every tag a chart names is one the run logged (the regexes match real tags).
    for chart in layout["rlkit: returns"].values():
        for pattern in chart:
            assert any(re.match(pattern, tag) for tag in scalars), (pattern, sorted(scalars))
    if summary["reward_threshold"] is not None:
        assert {v for _, v in scalars["eval/reward_threshold"]} == {summary["reward_threshold"]}
    else:
        assert "eval/reward_threshold" not in scalars

    values, metrics = _hparams(events)
    assert values["seed"] == 3 and values["total_steps"] == 1200
    assert values["agent.name"] == cfg.agent.name and values["env.name"] == cfg.env.name
    if cfg.agent.name == "dqn":
        assert values["agent.learning_rate"] == pytest.approx(5e-4)
        assert values["agent.net_arch"] == "[64, 64]"  # a list, as JSON text
    assert {"eval/mean_reward", "hparams/best_eval_score", "time/steps_per_second", "hparams/episodes"} <= set(metrics)
    best = summary["best_eval"]
    assert scalars["hparams/best_eval_score"][-1][1] == pytest.approx(best.get("score", best["mean_reward"]))
    assert scalars["hparams/episodes"][-1][1] == summary["episodes"]


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


def test_layout_without_thresholds_or_agents_has_only_the_plain_charts():
    layout = custom_scalars_layout(reward_threshold=False, success_threshold=False, agents=())
    assert layout["rlkit: returns"]["training vs evaluation return"] == [
        "Multiline", ["^episode/reward$", "^eval/mean_reward$"]]
