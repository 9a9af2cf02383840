"""The predator-prey, keep-away and covert-communication presets on a tiny budget: they compose, train, evaluate,
play cross-play against random opponents, and the benchmark reports each scenario's success measure."""

import re

import pytest
from bench_maddpg import mpe_once, random_returns

from helpers import cli, compose_cfg
from rlkit.factory import build_env

TINY = ["total_steps=400", "agent.n_envs=8", "agent.learning_starts=200", "agent.batch_size=64",
        "callbacks.eval.every_steps=200", "callbacks.eval.episodes=2", "callbacks.progress_bar=false",
        "callbacks.tensorboard=false"]
PRESETS = {  # preset: (scenario, its teams, the scored team, the opponent team cross-play replaces)
    "mpe_tag_maddpg": ("simple_tag_v3", {"adversary": ("adversary_0", "adversary_1", "adversary_2"),
                                         "agent": ("agent_0",)}, "adversary", "agent"),
    "mpe_push_maddpg": ("simple_push_v3", {"adversary": ("adversary_0",), "agent": ("agent_0",)}, "agent",
                        "adversary"),
    "mpe_crypto_maddpg": ("simple_crypto_v3", {"eve": ("eve_0",), "alice_bob": ("bob_0", "alice_0")}, "alice_bob",
                          "eve"),
}


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_evaluates_and_plays_against_random_opponents(preset, tmp_path):
    scenario, teams, scored, opponent = PRESETS[preset]
    env = build_env(compose_cfg([f"experiment={preset}"]).env)
    assert (env.label, env.teams, env.scored_team) == (scenario, teams, scored)
    out = cli(["train", f"experiment={preset}", *TINY, "hydra.run.dir=run"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = cli(["eval", "run=run", "n_episodes=2", "opponent=random"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = {m.group(1): m.group(0) for m in re.finditer(r"^  team (\w+): mean reward.*$", out.stdout, re.M)}
    assert set(lines) == set(teams), out.stdout
    assert lines[opponent].endswith("(played by random)") and "played by" not in lines[scored]


@pytest.mark.parametrize(("preset", "measures"), [("mpe_tag_maddpg", {"touches_per_episode"}),
                                                  ("mpe_crypto_maddpg", {"bob_decodes", "eve_decodes"})])
def test_the_benchmark_reports_the_scenarios_success_measure(preset, measures, tmp_path):
    r = mpe_once(preset, 0, tmp_path, TINY, episodes=3)
    assert measures <= set(r) and set(r["against_random"]) == set(PRESETS[preset][1])
    for team_played_randomly in r["against_random"].values():
        assert measures <= set(team_played_randomly)
    if preset == "mpe_crypto_maddpg":
        assert all(0.0 <= r[m] <= 1.0 for m in measures)
    else:
        random = random_returns(build_env(compose_cfg([f"experiment={preset}"]).env), episodes=5)
        # mpe2 pays every predator +10 per touch: the measure is the predators' return over 10
        assert random["touches_per_episode"] == pytest.approx(random["per_team"]["adversary"] / 10)
