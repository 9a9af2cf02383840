"""Benchmark: MADDPG on the 2-agent cart-pole (time to solve) and on MPE simple_spread_v3 (final reward).

(a) ``experiment=multi_cartpole_maddpg`` (2 agents, coupling 0; ``--preset`` picks another, e.g. the coupled
    one) for seeds 0..n-1, one at a time, stopping
    at the first evaluation where every agent's mean return reaches 475 (``stop_on_threshold``). Reports
    per seed and as medians: training wall seconds (evaluation excluded), env steps, and training
    throughput in env steps per second, learning included.
(b) ``experiment=mpe_maddpg`` on ``simple_spread_v3`` (3 agents, 25-step episodes, PettingZoo's default
    local_ratio 0.5; ``--preset`` picks another particle-world preset, e.g. mpe_speaker_listener_maddpg) for
    its whole budget. Reports the final deterministic evaluation over 100 episodes next to uniformly random
    actions: the mean return of every agent and of every team (PettingZoo's per-agent rewards), and, on
    simple_spread, for comparison with papers that report the original MPE's team quantities, the mean over
    the episode's steps of the summed distance from each landmark to its nearest agent, and collisions per
    episode; on simple_tag, touches per episode (predator-prey contacts, the paper's measure); on simple_crypto,
    how often Bob and Eve decode Alice's message (the share of steps whose word is the message). With more than
    one team (speaker and listener; adversary and good agents) also cross-play: every team's return (and the
    success measure) with each team in turn played by uniformly random actions (as ``rlkit eval opponent=random``).
    On simple_speaker_listener the speaker played by random actions is the "random words" ablation: the trained
    listener hearing uniformly random words; its gap to the trained speaker's words shows whether they communicate.

Usage::

    python scripts/bench_maddpg.py                      # both parts, 5 seeds for (a), 3 for (b)
    python scripts/bench_maddpg.py --part solve --seeds 5 --json maddpg.json
    python scripts/bench_maddpg.py --part solve --preset multi_cartpole_coupled_maddpg
    python scripts/bench_maddpg.py --part mpe --seeds 3
    python scripts/bench_maddpg.py --part mpe --preset mpe_speaker_listener_maddpg
    python scripts/bench_maddpg.py --part mpe --preset mpe_tag_maddpg     # also mpe_push_maddpg, mpe_crypto_maddpg
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rlkit.trainer
from rlkit.config import compose
from rlkit.evaluate import CrossPlay
from rlkit.factory import build_agent, build_env

QUIET = ["callbacks.tensorboard=false", "callbacks.progress_bar=false"]


def solve_once(preset: str, seed: int, workdir: Path, extra: list[str]) -> dict[str, Any]:
    cfg = compose([f"experiment={preset}", "callbacks.eval.stop_on_threshold=true", *QUIET,
                   f"seed={seed}", *extra])
    s = rlkit.trainer.train(cfg, workdir / f"solve{seed}")
    solved = s["solved"]
    return {"seed": seed, "solved": solved is not None, "steps": solved["step"] if solved else s["steps"],
            "train_seconds": solved["train_seconds"] if solved else s["train_seconds"],
            "steps_per_second": s["steps"] / s["train_seconds"], "best_score": s["best_eval"]["score"]}


def bench_solve(preset: str, seeds: int, extra: list[str]) -> dict[str, Any]:
    print(f"(a) MADDPG, experiment={preset} {' '.join(extra)}: until every agent's deterministic evaluation "
          f"mean reaches 475, {seeds} seeds")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            r = solve_once(preset, seed, Path(tmp), extra)
            runs.append(r)
            state = "solved" if r["solved"] else f"NOT solved (best {r['best_score']:.0f})"
            print(f"    seed {seed}: {state} after {r['train_seconds']:6.1f} s, {r['steps']:>8,} env steps, "
                  f"{r['steps_per_second']:,.0f} env steps/s with learning", flush=True)
    inf = float("inf")
    summary = {
        "runs": runs,
        "solved": f"{sum(r['solved'] for r in runs)}/{len(runs)}",
        "median_train_seconds": statistics.median(r["train_seconds"] if r["solved"] else inf for r in runs),
        "median_steps": statistics.median(r["steps"] if r["solved"] else inf for r in runs),
        "median_steps_per_second": statistics.median(r["steps_per_second"] for r in runs),
    }
    print(f"    solved {summary['solved']}, median {summary['median_train_seconds']:.1f} s, "
          f"{summary['median_steps']:,.0f} env steps, {summary['median_steps_per_second']:,.0f} env steps/s")
    return summary


SPREAD_AGENT_RADIUS = 0.15  # simple_spread_v3's agents: two touch when their centres are within 0.3
TAG_REWARD_PER_TOUCH = 10.0  # simple_tag_v3: every adversary gets +10 for each adversary-prey contact of a step
CRYPTO_WRONG_WORD = 1.0  # simple_crypto_v3: a word's squared error from the message is 0 if right, 2 if wrong
SUCCESS = ("touches_per_episode", "bob_decodes", "eve_decodes")  # the success measures of :func:`_success`


def _positions(env: Any) -> tuple[np.ndarray, np.ndarray]:
    """The agents' and the landmarks' positions in the world behind a built env (the batched one or mpe2's)."""
    inner = env.env.env  # CheckedEnv -> ParallelArrayEnv -> the PettingZoo env
    if hasattr(inner, "positions"):
        return inner.positions
    world = inner.unwrapped.world
    return np.array([a.state.p_pos for a in world.agents]), np.array([lm.state.p_pos for lm in world.landmarks])


def _success(label: str, names: list[str], rewards: np.ndarray) -> dict[str, float]:
    """The scenario's success measure from one episode's (steps, agents) rewards, which pay exactly for it.

    simple_tag: touches per episode; simple_crypto: the share of steps on which Bob's, and Eve's, word is the
    message; nothing elsewhere.
    """
    if label.startswith("simple_tag"):
        return {"touches_per_episode": float(rewards[:, names.index("adversary_0")].sum() / TAG_REWARD_PER_TOUCH)}
    if label.startswith("simple_crypto"):
        eve_error = -rewards[:, names.index("eve_0")]
        bob_error = eve_error - rewards[:, names.index("bob_0")]  # Alice and Bob get Eve's error minus Bob's
        return {"bob_decodes": float(np.mean(bob_error < CRYPTO_WRONG_WORD)),
                "eve_decodes": float(np.mean(eve_error < CRYPTO_WRONG_WORD))}
    return {}


def _play(agent: Any, env_factory: Any, episodes: int, seed: int) -> dict[str, Any]:
    """Play greedy episodes; every agent's and team's mean return, and the scenario's own measures."""
    env = env_factory.make(None)
    spread = env_factory.label.startswith("simple_spread")
    returns, dist_per_step, collisions, success = [], [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total = np.zeros(len(env.possible_agents))
        dists, hits, steps = [], 0, []
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs[None])[0])
            total += reward
            steps.append(reward)
            done = terminated or truncated
            if not spread:
                continue
            pos, marks = _positions(env)
            dists.append(np.linalg.norm(pos[None] - marks[:, None], axis=-1).min(axis=1).sum())
            gaps = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
            hits += int(((gaps < 2 * SPREAD_AGENT_RADIUS) & ~np.eye(len(pos), dtype=bool)).sum() // 2)
        returns.append(total)
        dist_per_step.append(float(np.mean(dists)) if spread else 0.0)
        collisions.append(hits)
        success.append(_success(env_factory.label, list(env.possible_agents), np.array(steps)))
    names = list(env.possible_agents)
    env.close()
    r = np.array(returns)
    out: dict[str, Any] = {
        "agent_return": float(r.mean()), "team_return_sum": float(r.sum(axis=1).mean()),
        "per_agent": {a: float(r[:, i].mean()) for i, a in enumerate(names)},
        "per_team": {t: float(r[:, [names.index(a) for a in members]].mean())
                     for t, members in env_factory.teams.items()}}
    if spread:
        out.update(landmark_distance_per_step=float(np.mean(dist_per_step)),
                   collisions_per_episode=float(np.mean(collisions)))
    out.update({k: float(np.mean([s[k] for s in success])) for k in success[0]})
    return out


def _words_per_goal(agent: Any) -> list[int]:
    """The speaker's greedy word for each goal landmark (simple_speaker_listener: it sees the goal's colour)."""
    from rlkit.envs.particle_worlds import SpeakerListener

    colours = SpeakerListener.landmark_colors
    obs = np.zeros((len(colours), agent.n_agents, agent.obs_dim), dtype=np.float32)
    obs[:, 0, :colours.shape[1]] = colours
    return [int(np.asarray(a).reshape(-1)[0]) for a in agent.act(obs)[:, 0]]


def mpe_once(preset: str, seed: int, workdir: Path, extra: list[str], episodes: int = 100) -> dict[str, Any]:
    cfg = compose([f"experiment={preset}", *QUIET, f"seed={seed}", *extra])
    run = workdir / f"mpe{seed}"
    s = rlkit.trainer.train(cfg, run)
    env = build_env(cfg.env)
    agent = build_agent(cfg.agent, env, seed=seed, training=False)
    agent.load(run / "checkpoints" / "last.safetensors")
    q = _play(agent, env, episodes, seed=10_000 + 100 * seed)
    if len(env.teams) > 1:  # cross-play: each team in turn played by random actions
        probe = env.make(None)
        agents = list(probe.possible_agents)
        q["against_random"] = {}
        for team, members in env.teams.items():
            player = CrossPlay(agent, None, [agents.index(a) for a in members], probe, seed=10_000 + 100 * seed)
            played = _play(player, env, episodes, seed=10_000 + 100 * seed)
            q["against_random"][team] = {**played["per_team"], **{k: played[k] for k in SUCCESS if k in played}}
            if team == "speaker":  # the trained listener hearing random words: does it use the speaker's?
                q["random_words_agent_return"] = played["agent_return"]
                q["words_per_goal"] = _words_per_goal(agent)
        probe.close()
    return {"seed": seed, "steps": s["steps"], "train_seconds": s["train_seconds"],
            "steps_per_second": s["steps"] / s["train_seconds"], **q}


class _UniformRandom:
    """Uniformly random actions, each agent's from its own space: the reference point of the MPE figures."""

    def __init__(self, env: Any, seed: int) -> None:
        self.spaces = [s for s in env.agent_action_spaces]
        self.row = env.agent_row
        for i, space in enumerate(self.spaces):
            space.seed(seed + i)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return np.array([[self.row(i, s.sample()) for i, s in enumerate(self.spaces)] for _ in range(len(obs))])


def random_returns(env_factory: Any, episodes: int = 100) -> dict[str, Any]:
    """What uniformly random actions get on the env: :func:`_play`'s figures, on the same episodes' seeds."""
    probe = env_factory.make(None)
    try:
        return _play(_UniformRandom(probe, 0), env_factory, episodes, seed=10_000)
    finally:
        probe.close()


def _line(q: dict[str, Any]) -> str:
    """Per-agent (and, with more than one team, per-team) returns, and the scenario's quantities."""
    parts = [f"{a} {v:.2f}" for a, v in q["per_agent"].items()]
    if len(q["per_team"]) > 1:
        parts.append("teams: " + ", ".join(f"{t} {v:.2f}" for t, v in q["per_team"].items()))
    if "landmark_distance_per_step" in q:
        parts.append(f"landmark distance {q['landmark_distance_per_step']:.3f} per step, "
                     f"{q['collisions_per_episode']:.2f} collisions per episode")
    parts += [f"{k.replace('_', ' ')} {q[k]:.2f}" for k in SUCCESS if k in q]
    return "; ".join(parts)


def bench_mpe(preset: str, seeds: int, extra: list[str]) -> dict[str, Any]:
    env = build_env(compose([f"experiment={preset}", *extra]).env)
    print(f"(b) MADDPG, experiment={preset} on {env.label} {' '.join(extra)}: 100 greedy episodes "
          f"after the whole budget, {seeds} seeds")
    random = random_returns(env)
    print(f"    uniformly random actions: mean return per agent {random['agent_return']:.2f}: {_line(random)}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            r = mpe_once(preset, seed, Path(tmp), extra)
            runs.append(r)
            print(f"    seed {seed}: {r['steps']:,} env steps in {r['train_seconds']:.0f} s: mean return per agent "
                  f"{r['agent_return']:.2f}: {_line(r)}", flush=True)
            for team, per_team in r.get("against_random", {}).items():
                print(f"        {team} played by random actions: " +
                      ", ".join(f"{t} {v:.2f}" for t, v in per_team.items()), flush=True)
            if "random_words_agent_return" in r:
                gap = r["agent_return"] - r["random_words_agent_return"]
                print(f"        random words (the speaker's replaced by uniformly random ones): mean return per agent "
                      f"{r['random_words_agent_return']:.2f}, {gap:+.2f} for the trained speaker's words; the trained "
                      f"speaker's word for goals 0, 1, 2: {r['words_per_goal']}", flush=True)
    keys = [k for k in ("agent_return", "team_return_sum", "landmark_distance_per_step", "collisions_per_episode",
                        *SUCCESS, "random_words_agent_return", "train_seconds") if k in runs[0]]
    summary: dict[str, Any] = {"runs": runs, "random": random,
                               **{f"median_{k}": statistics.median(r[k] for r in runs) for k in keys}}
    if "random_words_agent_return" in runs[0]:
        summary["words_gaps"] = [r["agent_return"] - r["random_words_agent_return"] for r in runs]
        print(f"    trained words minus random words, per agent: "
              f"{', '.join(f'{g:+.2f}' for g in summary['words_gaps'])} (min {min(summary['words_gaps']):+.2f})")
    summary["median_per_team"] = {t: statistics.median(r["per_team"][t] for r in runs) for t in random["per_team"]}
    print("    median: " + ", ".join(f"{k} {summary['median_' + k]:.3f}" for k in keys) + "; per team: " +
          ", ".join(f"{t} {v:.2f}" for t, v in summary["median_per_team"].items()))
    if "against_random" in runs[0]:
        summary["median_against_random"] = {
            random_team: {t: statistics.median(r["against_random"][random_team][t] for r in runs)
                          for t in runs[0]["against_random"][random_team]} for random_team in random["per_team"]}
        for random_team, per_team in summary["median_against_random"].items():
            print(f"    median, {random_team} played by random actions: " +
                  ", ".join(f"{t} {v:.2f}" for t, v in per_team.items()))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--part", choices=("solve", "mpe", "all"), default="all")
    parser.add_argument("--seeds", type=int, default=None, help="seeds (default 5 for solve, 3 for mpe)")
    parser.add_argument("--preset", default=None,
                        help="the part's preset (default multi_cartpole_maddpg for solve, mpe_maddpg for mpe), e.g. "
                             "multi_cartpole_coupled_maddpg, mpe_speaker_listener_maddpg")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    if args.part in ("solve", "all"):
        results["solve"] = bench_solve(args.preset or "multi_cartpole_maddpg", args.seeds or 5, args.overrides)
    if args.part in ("mpe", "all"):
        results["mpe"] = bench_mpe(args.preset or "mpe_maddpg", args.seeds or 3, args.overrides)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
