import json

import numpy as np
import pytest
import torch

from helpers import TINY, Recorder, compose_cfg, read_scalars
from rlkit.callbacks import Callback, CallbackList
from rlkit.errors import ConfigError
from rlkit.trainer import train

RECORDER = ["+callbacks.extra.rec._target_=helpers.Recorder"]


def _train(tmp_path, overrides, name="run"):
    Recorder.instances.clear()
    cfg = compose_cfg([*TINY, *RECORDER, *overrides])
    summary = train(cfg, tmp_path / name)
    return summary, Recorder.instances[-1]


def test_a_run_directory_holds_everything(tmp_path):
    summary, _ = _train(tmp_path, [])
    run = tmp_path / "run"
    assert (run / "checkpoints" / "best.safetensors").is_file()
    assert (run / "checkpoints" / "last.safetensors").is_file()
    assert list((run / "tb").glob("*/events.out.tfevents.*"))
    on_disk = json.loads((run / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["steps"] == 1200 and on_disk["episodes"] > 10
    assert on_disk["final_eval"]["step"] == 1200 and on_disk["final_eval"]["episodes"] == 2
    assert on_disk["best_eval"]["mean_reward"] >= on_disk["final_eval"]["mean_reward"]
    assert 0 < on_disk["train_seconds"] <= on_disk["wall_seconds"]
    assert set(on_disk["versions"]) >= {"python", "torch", "gymnasium", "stable-baselines3", "rlkit"}


def test_dqn_emits_rlkit_events_in_order(tmp_path):
    summary, rec = _train(tmp_path, [])
    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    steps = [e[1] for e in rec.of("step")]
    assert steps == list(range(1, 1201))
    episodes = [e[1] for e in rec.of("episode")]
    assert len(episodes) == summary["episodes"]
    # The balancing pole pays 1 per step, so every return equals its length.
    assert all(ep.reward == ep.length for ep in episodes)
    assert sum(ep.length for ep in episodes) <= 1200
    updates = rec.of("update")
    losses = [u for u in updates if "loss" in u[2]]
    assert losses and all(u[1] > 100 for u in losses)  # SB3 DQN starts learning after 100 steps
    assert {"loss", "exploration_rate", "learning_rate"} <= set().union(*(u[2] for u in updates))
    evals = [e[1].step for e in rec.of("evaluation")]
    assert evals == [500, 1000, 1200]  # every 500 steps, and once more at the end
    # The final evaluation comes after the last step, before the end.
    assert kinds.index("end") > max(i for i, k in enumerate(kinds) if k == "evaluation")


def test_tensorboard_events_hold_the_documented_tags(tmp_path):
    summary, rec = _train(tmp_path, [])
    scalars = read_scalars(tmp_path / "run" / "tb")
    for tag in ("episode/reward", "episode/length", "train/loss", "train/exploration_rate",
                "eval/mean_reward", "eval/std_reward", "eval/mean_length", "time/steps_per_second"):
        assert tag in scalars, f"{tag} missing; have {sorted(scalars)}"
    episodes = [e[1] for e in rec.of("episode")]
    assert [(s, v) for s, v in scalars["episode/reward"]] == [(ep.step, ep.reward) for ep in episodes]
    assert [s for s, _ in scalars["eval/mean_reward"]] == [500, 1000, 1200]


def test_same_seed_same_episode_rewards_and_weights(tmp_path):
    runs = [_train(tmp_path, ["seed=5"], name=f"r{i}") for i in range(2)]
    rewards = [[e[1].reward for e in rec.of("episode")] for _, rec in runs]
    assert rewards[0] == rewards[1]
    from rlkit.files import load_checkpoint

    w = [load_checkpoint(tmp_path / f"r{i}" / "checkpoints" / "last.safetensors")[0] for i in range(2)]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    _, other = _train(tmp_path, ["seed=6"], name="r2")
    assert [e[1].reward for e in other.of("episode")] != rewards[0]


def test_stop_on_threshold_ends_training_at_the_first_solving_evaluation(tmp_path):
    summary, rec = _train(tmp_path, ["env.reward_threshold=5", "callbacks.eval.stop_on_threshold=true",
                                     "total_steps=5000"])
    assert summary["solved"] == {"step": 500, "train_seconds": pytest.approx(summary["solved"]["train_seconds"])}
    assert summary["steps"] == 500
    assert summary["final_eval"]["step"] == 500


def test_stop_on_threshold_needs_a_threshold(tmp_path):
    cfg = compose_cfg([*TINY, "env=gym", "env.id=Pendulum-v1", "callbacks.eval.stop_on_threshold=true"])
    with pytest.raises(ConfigError):
        train(cfg, tmp_path / "run")


def test_a_plugin_that_is_not_a_callback_is_refused(tmp_path):
    cfg = compose_cfg([*TINY, "+callbacks.extra.bad._target_=collections.OrderedDict"])
    with pytest.raises(ConfigError, match="not a rlkit Callback"):
        train(cfg, tmp_path / "run")
    cfg = compose_cfg([*TINY, "+callbacks.extra.bad._target_=no.such.Thing"])
    with pytest.raises(ConfigError, match="cannot be built"):
        train(cfg, tmp_path / "run")
    # A function is never called, whatever its arguments (a crafted run config continued with resume=).
    marker = tmp_path / "ran"
    cfg = compose_cfg([*TINY, "+callbacks.extra.bad._target_=os.system",
                       f"+callbacks.extra.bad.command='touch {marker}'"])
    with pytest.raises(ConfigError, match="os.system is not a rlkit Callback class; nothing was called"):
        train(cfg, tmp_path / "run")
    assert not marker.exists()


def test_any_gymnasium_env_trains(tmp_path):
    summary, _ = _train(tmp_path, ["env=gym", "env.id=CartPole-v1"])
    assert summary["env"] == "CartPole-v1" and summary["reward_threshold"] == 475.0


def test_dqn_refuses_continuous_actions_it_may_not_discretise_before_training(tmp_path):
    cfg = compose_cfg([*TINY, "env.continuous=true", "agent.action_bins=0"])
    with pytest.raises(ConfigError, match="needs a Discrete action space"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_dqn_discretises_continuous_actions_and_says_so(tmp_path, caplog):
    with caplog.at_level("INFO"):
        summary, _ = _train(tmp_path, ["env=robotic_arm", "env.max_episode_steps=50", "agent.action_bins=3"])
    assert "discretised into 3 bins per dimension, Discrete(9)" in caplog.text
    # The evaluation plays the bare env: the agent hands it the torques its discrete actions stand for.
    assert summary["final_eval"]["episodes"] == 2 and np.isfinite(summary["final_eval"]["mean_reward"])
    from rlkit.factory import build_agent, build_env

    cfg = compose_cfg(["env=robotic_arm", "agent.action_bins=3"])
    agent = build_agent(cfg.agent, build_env(cfg.env), seed=0, training=False)
    torques = agent.act(np.zeros((4, 10), dtype=np.float32))
    assert torques.shape == (4, 2) and set(np.unique(torques)) <= {-1.0, 0.0, 1.0}


def test_discretised_actions_cover_the_box_evenly():
    import gymnasium as gym

    import rlkit.envs  # noqa: F401
    from rlkit.envs.adapters import DiscretizedActions

    env = DiscretizedActions(gym.make("rlkit/RoboticArm-v1"), 5)
    assert env.action_space.n == 25
    assert env.action(0).tolist() == [-1.0, -1.0] and env.action(12).tolist() == [0.0, 0.0]
    assert env.action(np.array([1, 5])).tolist() == [[-0.5, -1.0], [-1.0, -0.5]]
    with pytest.raises(ValueError, match="bounded 1-D Box"):
        DiscretizedActions(gym.make("CartPole-v1"), 5)


class _StopAt(Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def _on_step(self):
        return self.num_steps < self.at


def test_callback_list_stops_when_any_callback_says_so_but_tells_all():
    rec, stop = Recorder(), _StopAt(3)
    cl = CallbackList([stop, rec])
    assert cl.on_step(1) and cl.on_step(2)
    assert cl.on_step(3) is False
    assert rec.of("step") == [("step", 1), ("step", 2), ("step", 3)]


def test_progress_bar_is_quiet_without_a_terminal(tmp_path, capsys):
    _train(tmp_path, ["callbacks.progress_bar=true"])
    captured = capsys.readouterr()
    assert "step/s" not in captured.err and "it/s" not in captured.err


def test_dqn_with_several_env_copies_counts_every_step_and_episode(tmp_path):
    summary, rec = _train(tmp_path, ["agent.n_envs=3", "total_steps=1500"])
    steps = [e[1] for e in rec.of("step")]
    assert steps == list(range(3, 1501, 3))  # SB3 counts the steps of all copies together
    episodes = [e[1] for e in rec.of("episode")]
    assert len(episodes) == summary["episodes"] > 30
    assert sum(ep.length for ep in episodes) <= 1500


@pytest.mark.parametrize("agent", ["reinforce", "maddpg"])
def test_the_robotic_arm_trains_with_continuous_agents(tmp_path, agent):
    summary, rec = _train(tmp_path, ["env=robotic_arm", f"agent={agent}", "env.max_episode_steps=50"])
    assert summary["env"] == "robotic_arm" and summary["steps"] >= 1200
    assert all(ep.length <= 50 for _, ep in rec.of("episode"))
    assert summary["final_eval"]["episodes"] == 2


def test_evaluations_report_the_success_rate_of_envs_that_have_one(tmp_path):
    summary, rec = _train(tmp_path, ["env=robotic_arm", "agent=reinforce", "env.max_episode_steps=30",
                                     "env.tolerance=1.0"])
    rates = [e[1].success_rate for e in rec.of("evaluation")]
    assert rates and all(r is not None and 0.0 <= r <= 1.0 for r in rates)
    assert summary["final_eval"]["success_rate"] == rates[-1]
    assert "eval/success_rate" in read_scalars(tmp_path / "run" / "tb")
    balancing, _ = _train(tmp_path / "b", [])
    assert "success_rate" not in balancing["final_eval"]


def test_a_success_threshold_solves_and_stops_training(tmp_path):
    summary, _ = _train(tmp_path, ["env=robotic_arm", "agent=reinforce", "env.tolerance=1.5", "env.damping=0.05",
                                   "env.success_threshold=0.5", "callbacks.eval.stop_on_threshold=true"])
    assert summary["solved"] is not None and summary["steps"] == summary["solved"]["step"] < 1200  # stopped there
    assert summary["success_threshold"] == 0.5 and summary["final_eval"]["success_rate"] >= 0.5


@pytest.mark.parametrize("overrides", [["agent.train_freq=256"], ["agent=ppo", "agent.n_steps=512"]],
                         ids=["dqn, rollouts of 256", "ppo, rollouts of 512"])
def test_sb3_trains_exactly_total_steps_whatever_its_rollout_length(tmp_path, overrides):
    summary, rec = _train(tmp_path, [*overrides, "total_steps=1100", "callbacks.eval.every_steps=550"])
    # SB3 alone would go on to the end of its rollout: 1280 (5 x 256) or 1536 (3 x 512) steps.
    assert summary["steps"] == 1100 and rec.of("step")[-1] == ("step", 1100)
    assert [e[1].step for e in rec.of("evaluation")] == [550, 1100]  # no extra evaluation after the last periodic one
