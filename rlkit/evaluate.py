"""Playing trained agents: the periodic evaluation during training, and ``rlkit eval``."""

from __future__ import annotations

import dataclasses
import difflib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlkit.agents.base import Agent
from rlkit.callbacks import Callback, Evaluation
from rlkit.config import EvalConfig, EvalRunConfig, TrainConfig
from rlkit.envs.state import env_state, set_env_state
from rlkit.errors import ConfigError, RunDirError
from rlkit.factory import EnvFactory, build_agent, build_env
from rlkit.runs import changed_files, load_run_config, resolve_run
from rlkit.video import VideoWriter

log = logging.getLogger(__name__)

def seed_envs(envs: Sequence[gym.Env], seed: int) -> None:
    """Seed each copy once (``seed + i``); later resets continue its random stream."""
    for i, env in enumerate(envs):
        env.reset(seed=seed + i)
        env.action_space.seed(seed + i)


@dataclass
class Played:
    """Episodes played, in env order: returns (multi-agent: the mean over agents) and lengths."""

    rewards: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    agent_rewards: dict[str, list[float]] = field(default_factory=dict)
    """Multi-agent envs: every agent's returns."""
    successes: list[bool] = field(default_factory=list)
    """``info["is_success"]`` at each episode's end, where the env reports it at every end."""
    checkpoint: Path | None = None
    """``rlkit eval``: the checkpoint played, and the video it wrote."""
    video: Path | None = None
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """``rlkit eval`` of a multi-agent run: its teams."""
    opponent_teams: tuple[str, ...] = ()
    """``rlkit eval opponent=``: the teams the opponent played."""

    def team_mean_rewards(self) -> dict[str, float]:
        """Every team's mean return (the mean of its agents'), where there are two teams or more."""
        if len(self.teams) < 2 or not self.agent_rewards:
            return {}
        return {t: float(np.mean([np.mean(self.agent_rewards[a]) for a in agents])) for t, agents in self.teams.items()}

    def add(self, other: Played) -> None:
        """Count ``other``'s episodes too."""
        self.rewards += other.rewards
        self.lengths += other.lengths
        self.successes += other.successes
        for name, r in other.agent_rewards.items():
            self.agent_rewards.setdefault(name, []).extend(r)


def play_episodes(agent: Agent | CrossPlay, envs: Sequence[gym.Env], deterministic: bool = True,
                  stop: Callable[[], bool] | None = None, record: Callable[[int], Any] | None = None) -> Played:
    """Play one episode in each env, all stepped together with one batched ``act`` per step.

    Once ``stop()`` is True (checked after every step) only the finished episodes are returned. ``record(i)`` is
    called after env ``i``'s reset and after each of its steps: what a video records.
    """
    record = record or (lambda i: None)
    obs = []
    for i, env in enumerate(envs):
        obs.append(env.reset()[0])
        record(i)
    agents = list(getattr(envs[0], "possible_agents", []))
    returns = np.zeros((len(envs), len(agents)) if agents else len(envs))
    lengths = [0] * len(envs)
    success: list[bool | None] = [None] * len(envs)
    active = list(range(len(envs)))
    finished: list[int] = []
    while active:
        actions = agent.act(np.stack([obs[i] for i in active]), deterministic=deterministic)
        still = []
        for j, i in enumerate(active):
            o, r, terminated, truncated, info = envs[i].step(actions[j])
            returns[i] += r
            lengths[i] += 1
            record(i)
            if terminated or truncated:
                finished.append(i)
                if "is_success" in info:
                    success[i] = bool(info["is_success"])
            else:
                obs[i] = o
                still.append(i)
        active = still
        if stop is not None and stop():
            break
    done = sorted(finished)
    reported = [success[i] for i in done if success[i] is not None]
    team = returns[done].mean(axis=1) if agents else returns[done]
    return Played(rewards=[float(x) for x in team], lengths=[lengths[i] for i in done],
                  agent_rewards={a: [float(x) for x in returns[done, k]] for k, a in enumerate(agents)},
                  successes=reported if len(reported) == len(done) else [])


class PeriodicEvaluator(Callback):
    """Every ``cfg.every_steps`` steps, plays ``cfg.episodes`` episodes in parallel and keeps the best checkpoint."""

    _state_attrs = (*Callback._state_attrs, "_next_eval", "eval_seconds", "solved_at")

    def __init__(self, make_env: Callable[[], gym.Env], cfg: EvalConfig, seed: int = 0) -> None:
        super().__init__()
        self.make_env, self.cfg, self.seed = make_env, cfg, seed
        self.envs: list[gym.Env] = []
        self.eval_seconds = 0.0  # counted apart, so that the training time can be reported without it
        self.best: Evaluation | None = None
        self.last: Evaluation | None = None
        self.solved_at: dict[str, float] | None = None
        self._next_eval = cfg.every_steps
        self._env_states: list[Any] | None = None

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        best, last = (None if e is None else dataclasses.asdict(e) for e in (self.best, self.last))
        return {**super().state_dict(), "best": best, "last": last, "envs": [env_state(e)[0] for e in self.envs]}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        super().load_state_dict(state)
        self.best, self.last = (None if e is None else Evaluation(**e) for e in (state["best"], state["last"]))
        self._env_states = state["envs"]

    def _on_training_start(self) -> None:
        self.envs = [self.make_env() for _ in range(self.cfg.episodes)]
        seed_envs(self.envs, self.seed)
        if self._env_states is not None:  # a continued run: the copies' random streams go on
            for env, saved in zip(self.envs, self._env_states, strict=True):
                set_env_state(env, saved)

    def _on_step(self) -> bool:
        if self.cfg.every_steps <= 0 or self.num_steps < self._next_eval:
            return True
        while self._next_eval <= self.num_steps:
            self._next_eval += self.cfg.every_steps
        self.evaluate()
        return not (self.cfg.stop_on_threshold and self.solved_at is not None)

    def evaluate(self) -> Evaluation:
        """Run one evaluation now, tell the other callbacks, keep the best checkpoint."""
        assert self.ctx is not None
        started = time.perf_counter()
        train_seconds = started - self.ctx.start_time - self.eval_seconds
        played = play_episodes(self.ctx.agent, self.envs, deterministic=self.cfg.deterministic)
        evaluation = Evaluation(step=self.num_steps, rewards=played.rewards, lengths=played.lengths,
                                agent_rewards=played.agent_rewards,
                                success_rate=float(np.mean(played.successes)) if played.successes else None,
                                teams={t: list(a) for t, a in self.ctx.teams.items()},
                                scored_team=self.ctx.scored_team)
        self.last = evaluation
        if self.best is None or evaluation.score > self.best.score:
            self.best = evaluation
            meta = {"step": self.num_steps, "eval_mean_reward": evaluation.mean_reward, "eval_score": evaluation.score}
            self.ctx.agent.save(self.ctx.run_dir / "checkpoints" / "best.safetensors", meta)
        # Solved: every threshold the env has is met, the score's and the success rate's.
        pairs = ((evaluation.score, self.ctx.reward_threshold), (evaluation.success_rate, self.ctx.success_threshold))
        met = [value >= threshold for value, threshold in pairs if value is not None and threshold is not None]
        solved_now = self.solved_at is None and bool(met) and all(met)
        if solved_now:
            self.solved_at = {"step": self.num_steps, "train_seconds": train_seconds}
        success = "" if evaluation.success_rate is None else f", success {evaluation.success_rate:.0%}"
        if len(evaluation.teams) > 1 and evaluation.team_mean_rewards:
            success += "; " + ", ".join(f"{t} {m:.1f}" for t, m in evaluation.team_mean_rewards.items())
        log.info("eval at step %d: mean reward %.1f +/- %.1f over %d episodes%s%s", self.num_steps,
                 evaluation.mean_reward, evaluation.std_reward, len(evaluation.rewards), success,
                 " (solved)" if solved_now else "")
        self.eval_seconds += time.perf_counter() - started
        self.ctx.callbacks.on_evaluation(evaluation)
        return evaluation

    def _on_training_end(self) -> None:
        if self.last is None or self.last.step != self.num_steps:
            self.evaluate()
        for env in self.envs:
            env.close()


def resolve_checkpoint(run_dir: Path, which: str) -> Path:
    """The checkpoint file for ``best``, ``last`` or an explicit path; ``best`` falls back to ``last``."""
    ckpt_dir = run_dir / "checkpoints"
    if which not in ("best", "last"):
        path = Path(which).expanduser()
        if not path.is_file():
            raise RunDirError(f"checkpoint={which} does not exist")
        return path
    path = ckpt_dir / f"{which}.safetensors"
    if path.is_file():
        return path
    last = ckpt_dir / "last.safetensors"
    if which == "best" and last.is_file():
        log.warning("%s has no best checkpoint; using the last one", run_dir)
        return last
    present = sorted(p.name for p in ckpt_dir.glob("*.safetensors"))
    raise RunDirError(f"{run_dir} has no {which} checkpoint ({path} is missing; present: {present or 'none'}). "
                      "Was the run interrupted before its first evaluation?")


@dataclass
class LoadedRun:
    """A trained run's env factory and agent, rebuilt from its own config, with a checkpoint's weights loaded."""

    dir: Path
    config: TrainConfig
    env: EnvFactory
    agent: Agent
    checkpoint: Path
    meta: dict[str, Any]
    """The checkpoint's metadata (its step, evaluation score...)."""


def load_run(run: str | Path, checkpoint: str = "best", trust: bool = False) -> LoadedRun:
    """Rebuild a run (``run=`` as :func:`rlkit.runs.resolve_run` reads it) and load a checkpoint, never unpickling.

    ``checkpoint``: best, last or a file; ``trust`` as for :func:`rlkit.runs.load_run_config`.

    Raises:
        RunDirError: The run directory or checkpoint is missing, corrupt or written by another agent or env.
    """
    run_dir = resolve_run(run)
    train_cfg = load_run_config(run_dir, trust)
    path = resolve_checkpoint(run_dir, checkpoint)
    if path.resolve().parent == (run_dir / "checkpoints").resolve():
        for problem in changed_files(run_dir, [f"checkpoints/{path.name}"]):
            log.warning("%s; what it plays may not be what the run trained", problem)
    env_factory = build_env(train_cfg.env)
    agent = build_agent(train_cfg.agent, env_factory, seed=train_cfg.seed, training=False)
    meta = agent.load(path)
    return LoadedRun(dir=run_dir, config=train_cfg, env=env_factory, agent=agent, checkpoint=path, meta=meta)


class CrossPlay:
    """A run's agents with one team's actions taken from another run's agents, or uniformly random (``None``)."""

    def __init__(self, agent: Agent, opponent: Agent | None, rows: list[int], env: gym.Env, seed: int) -> None:
        self.agent, self.opponent, self.rows, self.env = agent, opponent, rows, env
        for i in rows:
            env.agent_action_spaces[i].seed(seed + i)  # type: ignore[attr-defined]

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The run's actions, with the opponent team's rows replaced by the opponent's."""
        actions = np.array(self.agent.act(obs, deterministic=deterministic))
        if self.opponent is not None:
            actions[:, self.rows] = self.opponent.act(obs, deterministic=deterministic)[:, self.rows]
            return actions
        spaces = self.env.agent_action_spaces  # type: ignore[attr-defined]
        for n in range(len(obs)):
            for i in self.rows:
                actions[n, i] = self.env.agent_row(i, spaces[i].sample())  # type: ignore[attr-defined]
        return actions


def opponent_rows(loaded: LoadedRun, team: str | None) -> tuple[tuple[str, ...], list[int]]:
    """The opponent's teams and their agents' rows: ``team``, else every team but the run's scored one."""
    teams, agents = loaded.env.teams, list(loaded.env.agents)
    if len(teams) < 2:
        what = f"one team ({', '.join(teams)})" if teams else "a single agent"
        raise ConfigError(f"opponent= plays one team of a multi-agent run against another; {loaded.dir} has {what}")
    if team is None:
        if loaded.env.scored_team is None:
            raise ConfigError(f"{loaded.dir} is cooperative (no env.objective_team): name the team that opponent= "
                              f"plays with opponent_team=<team>, one of {', '.join(teams)}")
        others = tuple(t for t in teams if t != loaded.env.scored_team)
        return others, [agents.index(a) for t in others for a in teams[t]]
    if team not in teams:
        close = difflib.get_close_matches(team, list(teams), n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(f"opponent_team={team} is not a team of {loaded.dir}; its teams: {', '.join(teams)}.{hint}")
    return (team,), [agents.index(a) for a in teams[team]]


def load_opponent(loaded: LoadedRun, env: gym.Env, cfg: EvalRunConfig) -> tuple[tuple[str, ...], CrossPlay]:
    """``opponent=``: the opponent's teams and the player of the run against them."""
    assert cfg.opponent is not None
    teams, rows = opponent_rows(loaded, cfg.opponent_team)
    if cfg.opponent == "random":
        return teams, CrossPlay(loaded.agent, None, rows, env, cfg.seed)
    other = load_run(cfg.opponent, "best", cfg.trust_run)
    probe = other.env.make()
    try:
        mine = (loaded.env.agents, env.observation_space, env.agent_action_spaces)  # type: ignore[attr-defined]
        theirs = (other.env.agents, probe.observation_space, getattr(probe, "agent_action_spaces", None))
    finally:
        probe.close()
    if mine != theirs:
        raise ConfigError(f"opponent={cfg.opponent} was trained on {other.env.label} with agents "
                          f"{', '.join(other.env.agents) or '(single-agent)'}, whose observations or actions differ "
                          f"from {loaded.env.label}'s ({', '.join(loaded.env.agents)}): cross-play needs the same "
                          "agents and spaces")
    return teams, CrossPlay(loaded.agent, other.agent, rows, env, cfg.seed)


def evaluate_run(cfg: EvalRunConfig, on_episode: Callable[[int, Played], Any] | None = None,
                 loaded: LoadedRun | None = None) -> Played:
    """Rebuild a run's env and agent from its own config, load a checkpoint and play episodes (``loaded``: already)."""
    cfg.validate()
    if loaded is None:
        loaded = load_run(cfg.run, cfg.checkpoint, cfg.trust_run)
    run_dir, checkpoint, env_factory, agent = loaded.dir, loaded.checkpoint, loaded.env, loaded.agent
    env = env_factory.make("rgb_array" if cfg.video else cfg.render_mode)
    seed_envs([env], cfg.seed)

    def window_closed() -> bool:
        return bool(getattr(env.unwrapped, "window_closed", False))

    report, video = Played(checkpoint=checkpoint, teams=env_factory.teams), None
    player: Agent | CrossPlay = agent
    try:
        if cfg.opponent is not None:
            report.opponent_teams, player = load_opponent(loaded, env, cfg)
        if cfg.video:  # <run>/videos/eval-<checkpoint>-<time>.<format>
            folder = run_dir / "videos"
            try:
                folder.mkdir(exist_ok=True)
            except OSError as e:
                raise RunDirError(f"cannot write a video into {folder}: {e.strerror}") from None
            stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
            fps = cfg.video_fps or env.metadata.get("render_fps") or 30  # 30: the env's metadata has none
            video = VideoWriter(folder / f"eval-{checkpoint.stem}-{stamp}.{cfg.video_format}", fps=fps)
        for episode in range(cfg.n_episodes):
            played = play_episodes(player, [env], deterministic=cfg.deterministic, stop=window_closed,
                                   record=None if video is None else lambda _: video.append(env.render()))
            if not played.lengths:  # the user closed the window mid-episode
                break
            report.add(played)
            if on_episode is not None:
                on_episode(episode, played)
            if window_closed():
                break
    finally:
        env.close()
        if video is not None:
            video.close()  # an interrupted evaluation still leaves a playable video of what it played
    report.video = video.path if video is not None and video.frames else None
    return report

