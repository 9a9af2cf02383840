"""Teams of a multi-agent run and its objective: per-team evaluation, summary, TensorBoard and best checkpoint."""

import json
import re

import pytest

import rlkit
from helpers import TINY, cli, compose_cfg, read_scalars
from rlkit.callbacks import Evaluation
from rlkit.errors import ConfigError
from rlkit.factory import agent_teams
from rlkit.trainer import train

ADVERSARY = ("adversary_0", "agent_0", "agent_1")


def test_teams_default_to_the_agents_name_prefixes():
    assert agent_teams(ADVERSARY, {}, "x") == {"adversary": ("adversary_0",), "agent": ("agent_0", "agent_1")}
    assert agent_teams(("cart_0", "cart_1"), {}, "x") == {"cart": ("cart_0", "cart_1")}
    assert agent_teams(("leader", "follower_a"), {}, "x") == {"leader": ("leader",), "follower_a": ("follower_a",)}


def test_declared_teams_override_the_prefixes_and_must_hold_every_agent_once():
    declared = {"hunter": ["adversary_0", "agent_0"], "runner": ["agent_1"]}
    assert agent_teams(ADVERSARY, declared, "x") == {"hunter": ("adversary_0", "agent_0"), "runner": ("agent_1",)}
    with pytest.raises(ConfigError, match="env.teams.a names 'agent_2', which is not an agent of x.*Did you mean"):
        agent_teams(ADVERSARY, {"a": ["agent_2"]}, "x")
    with pytest.raises(ConfigError, match="agent_0 is in two teams"):
        agent_teams(ADVERSARY, {"a": ["agent_0", "adversary_0"], "b": ["agent_0", "agent_1"]}, "x")
    with pytest.raises(ConfigError, match="env.teams leaves out adversary_0, agent_1"):
        agent_teams(ADVERSARY, {"a": ["agent_0"]}, "x")
    with pytest.raises(ConfigError, match="cannot share its name with an agent"):
        agent_teams(ADVERSARY, {"agent_0": list(ADVERSARY)}, "x")


def test_the_score_is_the_worst_agent_cooperatively_and_the_scored_team_competitively():
    teams = {"adversary": ["adversary_0"], "agent": ["agent_0", "agent_1"]}
    rewards = {"adversary_0": [-2.0, -4.0], "agent_0": [1.0, 3.0], "agent_1": [5.0, 7.0]}
    cooperative = Evaluation(step=1, rewards=[0.0, 0.0], lengths=[1, 1], agent_rewards=rewards, teams=teams)
    assert cooperative.team_mean_rewards == {"adversary": -3.0, "agent": 4.0} and cooperative.score == -3.0
    competitive = Evaluation(step=1, rewards=[0.0, 0.0], lengths=[1, 1], agent_rewards=rewards, teams=teams,
                             scored_team="agent")
    assert competitive.score == 4.0


def test_a_competitive_run_reports_every_team_and_keeps_the_scored_teams_best(tmp_path, caplog):
    cfg = compose_cfg([*TINY, "agent=maddpg", "agent.learning_starts=200", "env=mpe", "env.name=simple_adversary_v3",
                       "callbacks.eval.every_steps=300", "env.objective=competitive", "env.objective_team=agent"])
    with caplog.at_level("INFO"):
        summary = train(cfg, tmp_path / "run")
    assert "episodes; adversary " in caplog.text and ", agent " in caplog.text  # the evaluation log lines
    assert summary["objective"] == "competitive" and summary["objective_team"] == "agent"
    assert summary["teams"] == {"adversary": ("adversary_0",), "agent": ("agent_0", "agent_1")}
    final = summary["final_eval"]
    agents = final["agent_mean_rewards"]
    assert final["team_mean_rewards"] == pytest.approx(
        {"adversary": agents["adversary_0"], "agent": (agents["agent_0"] + agents["agent_1"]) / 2})
    assert final["score"] == final["team_mean_rewards"]["agent"]
    scalars = read_scalars(tmp_path / "run" / "tb")
    team_curve = [v for _, v in scalars["eval/mean_reward/agent"]]
    assert len(team_curve) >= 4 and "eval/mean_reward/adversary" in scalars
    # The best checkpoint is the evaluation where the scored team did best, whatever the adversary did.
    assert summary["best_eval"]["score"] == pytest.approx(max(team_curve))
    assert summary["best_eval"]["team_mean_rewards"]["agent"] == pytest.approx(max(team_curve))
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["final_eval"]["team_mean_rewards"] == pytest.approx(final["team_mean_rewards"])


def test_a_cooperative_run_of_one_team_adds_no_team_curve(tmp_path):
    cfg = compose_cfg([*TINY, "total_steps=600", "agent=maddpg", "agent.learning_starts=300", "env=multi_cartpole"])
    summary = train(cfg, tmp_path / "run")
    assert summary["objective"] == "cooperative" and summary["objective_team"] is None
    assert summary["final_eval"]["score"] == min(summary["final_eval"]["agent_mean_rewards"].values())
    assert "eval/mean_reward/cart" not in read_scalars(tmp_path / "run" / "tb")


@pytest.mark.parametrize("overrides, message", [
    (["env.objective=competitive"], "env.objective=competitive scores one team: name it with env.objective_team"),
    (["env.objective=competitive", "env.objective_team=agnt"],
     "env.objective_team=agnt is not a team of simple_adversary_v3; its teams: adversary, agent. Did you mean agent?"),
    (["env.objective=versus"], "env.objective='versus' is not one of cooperative, competitive"),
    (["+env.teams={good:[agent_0,agent_1]}"], "env.teams leaves out adversary_0"),
])
def test_bad_teams_and_objectives_are_refused_in_one_line(tmp_path, overrides, message):
    out = cli(["train", "env=mpe", "env.name=simple_adversary_v3", "agent=maddpg", *overrides], cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()


def test_rlkit_eval_prints_every_teams_mean(tmp_path):
    out = cli(["train", *TINY[1:], "total_steps=400", "agent=maddpg", "agent.learning_starts=200", "env=mpe",
               "env.name=simple_adversary_v3"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs" / "simple_adversary_v3" / "maddpg").iterdir()
    out = cli(["eval", f"run={run}", "n_episodes=2"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "team adversary: mean reward" in out.stdout and "team agent: mean reward" in out.stdout


@pytest.fixture(scope="module")
def adversary_runs(tmp_path_factory):
    """Two tiny competitive runs of simple_adversary (seeds 0 and 1), and a cooperative cart-pole run."""
    root = tmp_path_factory.mktemp("crossplay")
    common = [*TINY, "agent.learning_starts=200", "env.name=simple_adversary_v3", "env.max_cycles=25",
              "env.objective=competitive", "env.objective_team=agent"]
    for seed in (0, 1):
        rlkit.train("mpe", "maddpg", overrides=[*common, f"seed={seed}"], run_dir=root / f"adv{seed}")
    rlkit.train("multi_cartpole", "maddpg", overrides=[*TINY, "total_steps=600"], run_dir=root / "carts")
    return root


def _team_means(stdout: str) -> dict[str, str]:
    return {line.split()[1].rstrip(":"): line for line in stdout.splitlines() if line.startswith("  team ")}


def test_cross_play_swaps_the_opponent_teams_actions_and_says_who_played_them(adversary_runs, tmp_path):
    adv0, adv1 = adversary_runs / "adv0", adversary_runs / "adv1"
    plain = cli(["eval", f"run={adv0}", "n_episodes=3"], tmp_path)
    itself = cli(["eval", f"run={adv0}", "n_episodes=3", f"opponent={adv0}"], tmp_path)
    other = cli(["eval", f"run={adv0}", "n_episodes=3", f"opponent={adv1}"], tmp_path)
    random = cli(["eval", f"run={adv0}", "n_episodes=3", "opponent=random"], tmp_path)
    assert plain.returncode == itself.returncode == other.returncode == random.returncode == 0, random.stderr
    # The run against itself plays exactly its own episodes; the opponent's team is the adversary (the scored
    # team is agent), and its line says who played it.
    assert [line for line in plain.stdout.splitlines() if line.startswith("episode")] == \
        [line for line in itself.stdout.splitlines() if line.startswith("episode")]
    assert _team_means(itself.stdout)["adversary"].endswith(f"(played by {adv0})")
    assert "played by" not in _team_means(itself.stdout)["agent"]
    assert _team_means(random.stdout)["adversary"].endswith("(played by random)")
    assert other.stdout != plain.stdout and random.stdout != plain.stdout
    again = cli(["eval", f"run={adv0}", "n_episodes=3", "opponent=random"], tmp_path)
    assert again.stdout == random.stdout  # random opponents are seeded by the evaluation's seed
    chosen = cli(["eval", f"run={adv0}", "n_episodes=1", "opponent=random", "opponent_team=agent"], tmp_path)
    assert _team_means(chosen.stdout)["agent"].endswith("(played by random)")


def test_cross_play_refuses_what_it_cannot_play(adversary_runs, tmp_path):
    adv0, carts = adversary_runs / "adv0", adversary_runs / "carts"
    cases = {
        (f"run={adv0}", "opponent=random", "opponent_team=agnet"): "opponent_team=agnet is not a team of .*"
                                                                   "Did you mean agent?",
        (f"run={adv0}", f"opponent={carts}"): "was trained on multi_cartpole .* cross-play needs the same agents",
        (f"run={carts}", "opponent=random"): "has one team \\(cart\\)",
        (f"run={adv0}", "opponent_team=agent"): "set opponent=<run dir> or opponent=random too",
        (f"run={adv0}", f"opponent={tmp_path / 'nope'}"): "nope",
    }
    for args, message in cases.items():
        result = cli(["eval", *args], tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        first = result.stderr.splitlines()[0]
        assert first.startswith("rlkit: error: ") and re.search(message, first), (args, result.stderr)


def test_policy_evaluate_plays_cross_play_as_rlkit_eval_does(adversary_runs):
    adv0, adv1 = adversary_runs / "adv0", adversary_runs / "adv1"
    policy = rlkit.load(adv0)
    own = policy.evaluate(n_episodes=3)
    itself = policy.evaluate(n_episodes=3, opponent=adv0)
    assert itself.agent_rewards == own.agent_rewards and itself.opponent_teams == ("adversary",)
    other = policy.evaluate(n_episodes=3, opponent=rlkit.load(adv1))  # a Policy: its run's best checkpoint
    assert other.agent_rewards == policy.evaluate(n_episodes=3, opponent=str(adv1)).agent_rewards
    assert other.rewards != own.rewards
    random = policy.evaluate(n_episodes=3, opponent="random")
    assert random.rewards != own.rewards
    assert policy.evaluate(n_episodes=3, opponent="random").rewards == random.rewards  # seeded by seed=
    assert set(random.team_mean_rewards()) == {"adversary", "agent"}
    with pytest.raises(ConfigError, match="Did you mean agent"):
        policy.evaluate(n_episodes=1, opponent="random", opponent_team="agnet")
