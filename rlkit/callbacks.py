"""The callback events every agent emits (SB3's ``BaseCallback`` shape), the TensorBoard logger, the progress bar."""

from __future__ import annotations

import contextlib
import math
import re
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

    from rlkit.agents.base import Agent


@dataclass(frozen=True)
class Episode:
    """A finished training episode."""

    step: int
    """Environment steps taken in the run when it finished."""
    reward: float
    length: int
    agent: str | None = None
    """Multi-agent runs: the agent it belongs to; None (the only ones counted) for the team's mean return."""


@dataclass(frozen=True)
class Evaluation:
    """The result of one deterministic evaluation."""

    step: int
    rewards: list[float]
    """Return of every episode (multi-agent: the mean over agents)."""
    lengths: list[int]
    agent_rewards: dict[str, list[float]] = field(default_factory=dict)
    """Multi-agent runs: every agent's return of every episode."""
    success_rate: float | None = None
    """Fraction of episodes that ended with ``info["is_success"]``, for envs that report it."""
    teams: dict[str, list[str]] = field(default_factory=dict)
    """Multi-agent runs: every team's agents."""
    scored_team: str | None = None
    """Competitive runs: the team whose mean return is the score."""

    @property
    def mean_reward(self) -> float:
        """Mean return over the evaluation episodes."""
        return float(np.mean(self.rewards))

    @property
    def team_mean_rewards(self) -> dict[str, float]:
        """Every team's mean return (the mean of its agents'), where the agents' returns are known."""
        if not self.agent_rewards:
            return {}
        return {t: float(np.mean([np.mean(self.agent_rewards[a]) for a in agents]))
                for t, agents in self.teams.items()}

    @property
    def score(self) -> float:
        """What solving and the best checkpoint go by: the mean return; multi-agent, see below.

        Cooperative runs: the smallest agent's mean return; competitive ones: the scored team's.
        """
        if self.agent_rewards and self.scored_team is not None:
            return self.team_mean_rewards[self.scored_team]
        if self.agent_rewards:
            return min(float(np.mean(r)) for r in self.agent_rewards.values())
        return self.mean_reward

    @property
    def std_reward(self) -> float:
        """Standard deviation of the returns."""
        return float(np.std(self.rewards))


@dataclass
class TrainingContext:
    """What callbacks can see of the run they serve."""

    agent: Agent
    run_dir: Path
    total_steps: int
    callbacks: CallbackList
    """The run's whole callback list, to emit events to the others (e.g. an evaluation)."""
    reward_threshold: float | None = None
    success_threshold: float | None = None
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scored_team: str | None = None
    writer: SummaryWriter | None = None
    start_time: float = field(default_factory=time.perf_counter)


class Callback:
    """Base class: override the ``_on_*`` hooks you need; a continued run restores the ``_state_attrs``."""

    _state_attrs: tuple[str, ...] = ("num_steps", "num_episodes")

    def __init__(self) -> None:
        self.ctx: TrainingContext | None = None
        self.num_steps = 0
        self.num_episodes = 0

    def on_training_start(self, ctx: TrainingContext) -> None:
        """Training is about to start."""
        self.ctx = ctx
        self._on_training_start()

    def on_step(self, num_steps: int) -> bool:
        """Environment steps so far (all copies); return False to stop training."""
        self.num_steps = num_steps
        return self._on_step()

    def on_episode_end(self, episode: Episode) -> None:
        """A training episode finished (or, with ``episode.agent`` set, one agent's part of it)."""
        self.num_episodes += episode.agent is None
        self._on_episode_end(episode)

    def on_update(self, step: int, metrics: dict[str, float]) -> None:
        """The agent made an update; ``metrics`` are named without the ``train/`` prefix."""
        self._on_update(step, metrics)

    def on_evaluation(self, evaluation: Evaluation) -> None:
        """A periodic evaluation finished."""
        self._on_evaluation(evaluation)

    def on_training_end(self) -> None:
        """Training ended (budget reached, or stopped)."""
        self._on_training_end()

    def on_safe_point(self) -> None:
        """The agent's ``training_state`` captures everything now: a checkpoint may be taken, or training stopped."""
        self._on_safe_point()

    def state_dict(self) -> dict[str, Any]:
        """What this callback must remember across an interruption (plain values and arrays)."""
        return {name: getattr(self, name) for name in self._state_attrs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; called before ``on_training_start`` of the continued run."""
        for name in self._state_attrs:
            setattr(self, name, state[name])

    # The hooks subclasses override (SB3's shape): no-ops here.
    def _on_training_start(self) -> None: ...
    def _on_step(self) -> bool: return True
    def _on_episode_end(self, episode: Episode) -> None: ...
    def _on_update(self, step: int, metrics: dict[str, float]) -> None: ...
    def _on_evaluation(self, evaluation: Evaluation) -> None: ...
    def _on_training_end(self) -> None: ...
    def _on_safe_point(self) -> None: ...


class CallbackList(Callback):
    """Notifies many callbacks, in order; training stops when any ``on_step`` returns False."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        super().__init__()
        self.callbacks = list(callbacks)

    def _on_training_start(self) -> None:
        assert self.ctx is not None
        for cb in self.callbacks:
            cb.on_training_start(self.ctx)

    def _on_step(self) -> bool:
        # Every callback sees every step, even after one has asked to stop.
        return all([cb.on_step(self.num_steps) for cb in self.callbacks])

    def _on_episode_end(self, episode: Episode) -> None:
        for cb in self.callbacks:
            cb.on_episode_end(episode)

    def _on_update(self, step: int, metrics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_update(step, metrics)

    def _on_evaluation(self, evaluation: Evaluation) -> None:
        for cb in self.callbacks:
            cb.on_evaluation(evaluation)

    def _on_training_end(self) -> None:
        for cb in self.callbacks:
            cb.on_training_end()

    def _on_safe_point(self) -> None:
        for cb in self.callbacks:
            cb.on_safe_point()

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {**super().state_dict(), "callbacks": [cb.state_dict() for cb in self.callbacks]}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        super().load_state_dict(state)
        if len(state["callbacks"]) != len(self.callbacks):
            raise ValueError(f"the checkpoint has the state of {len(state['callbacks'])} callbacks, but this run "
                             f"has {len(self.callbacks)}")
        for cb, cb_state in zip(self.callbacks, state["callbacks"], strict=True):
            cb.load_state_dict(cb_state)


THRESHOLD_RUN = "threshold"
"""The folder, inside a run's event folder, of its thresholds: a run of their own, so they share the charts of
the tags they bound (``eval/mean_reward``, ``eval/success_rate``) in their own colour instead of a chart each."""


class TensorBoardLogger(Callback):
    """Writes every event to TensorBoard, a custom-scalars layout at the start and an HParams entry at the end."""

    _state_attrs = (*Callback._state_attrs, "_last_step", "_final")

    def __init__(self, throughput_every: int = 1000, hparams: dict[str, Any] | None = None,
                 agents: Sequence[str] = ()) -> None:
        super().__init__()
        self.throughput_every, self.hparams, self.agents = throughput_every, hparams, tuple(agents)
        self._last_step = 0
        self._last_time = 0.0
        self._final: dict[str, float] = {}
        self._resumed = False

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        super().load_state_dict(state)
        self._resumed = True  # the layout and the first threshold points are in the events already

    def _on_training_start(self) -> None:
        self._last_time = time.perf_counter()
        assert self.ctx is not None and self.ctx.writer is not None, "TensorBoardLogger needs a writer"
        self._writer: SummaryWriter = self.ctx.writer
        self._threshold_writer: SummaryWriter | None = None
        if self.ctx.reward_threshold is not None or self.ctx.success_threshold is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._threshold_writer = SummaryWriter(str(Path(self._writer.log_dir) / THRESHOLD_RUN))
        if not self._resumed:
            self._writer.add_custom_scalars(custom_scalars_layout(self.ctx.success_threshold is not None, self.agents))
            self._thresholds(0)

    def _thresholds(self, step: int) -> None:
        # Constant series under the tags they bound, in the threshold run (THRESHOLD_RUN), at every evaluation.
        assert self.ctx is not None
        if self._threshold_writer is None:
            return
        reward_tags = ["eval/mean_reward", *(f"eval/mean_reward/{agent}" for agent in self.agents)]
        for tags, value in ((reward_tags, self.ctx.reward_threshold),
                            (["eval/success_rate"], self.ctx.success_threshold)):
            for tag in tags if value is not None else ():
                self._threshold_writer.add_scalar(tag, value, step)
        self._threshold_writer.flush()  # a few points per evaluation; none lost if training stops abruptly

    def _on_step(self) -> bool:
        if self.num_steps - self._last_step >= self.throughput_every:
            now = time.perf_counter()
            sps = (self.num_steps - self._last_step) / max(now - self._last_time, 1e-9)
            self._writer.add_scalar("time/steps_per_second", sps, self.num_steps)
            self._final["time/steps_per_second"] = sps
            self._last_step, self._last_time = self.num_steps, now
        return True

    def _on_episode_end(self, episode: Episode) -> None:
        suffix = "" if episode.agent is None else f"/{episode.agent}"
        self._writer.add_scalar(f"episode/reward{suffix}", episode.reward, episode.step)
        self._writer.add_scalar(f"episode/length{suffix}", episode.length, episode.step)

    def _on_update(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(f"train/{key}", value, step)

    def _on_evaluation(self, evaluation: Evaluation) -> None:
        w, step = self._writer, evaluation.step
        w.add_scalar("eval/mean_reward", evaluation.mean_reward, step)
        w.add_scalar("eval/std_reward", evaluation.std_reward, step)
        w.add_scalar("eval/mean_length", float(np.mean(evaluation.lengths)), step)
        for agent, rewards in evaluation.agent_rewards.items():
            w.add_scalar(f"eval/mean_reward/{agent}", float(np.mean(rewards)), step)
        if len(evaluation.teams) > 1:
            for team, mean in evaluation.team_mean_rewards.items():
                w.add_scalar(f"eval/mean_reward/{team}", mean, step)
        if evaluation.success_rate is not None:
            w.add_scalar("eval/success_rate", evaluation.success_rate, step)
            self._final["eval/success_rate"] = evaluation.success_rate
        best = max(self._final.get("eval/best_score", -math.inf), evaluation.score)
        w.add_scalar("eval/best_score", best, step)
        self._thresholds(step)
        self._final.update({"eval/mean_reward": evaluation.mean_reward, "eval/best_score": best})

    def _on_training_end(self) -> None:
        if self.hparams is not None:
            from torch.utils.tensorboard.summary import hparams

            # The HParams tab reads each metric as the last point of a tag the run logged already.
            for summary in hparams(self.hparams, self._final):
                self._writer.file_writer.add_summary(summary)  # type: ignore[union-attr]
        self._writer.flush()
        if self._threshold_writer is not None:
            self._threshold_writer.close()


def custom_scalars_layout(success_rate: bool, agents: Sequence[str]) -> dict[str, dict[str, list[Any]]]:
    """TensorBoard's custom-scalars layout for a run: one chart per tag (regular expressions), the key ones first.

    TensorBoard colours a line by its run, so a chart holds one tag: its lines are the runs shown, each in its
    colour, and the threshold run's constant line where the env has a threshold. Evaluation charts are margin
    charts with an empty margin (value, lower and upper one tag): TensorBoard never smooths those, so a solving
    evaluation reads as its value (a multiline chart's default smoothing reads a first 500 after 420 as ~360).
    """
    def chart(tag: str) -> list[Any]:
        return ["Multiline", [f"^{re.escape(tag)}$"]]

    def unsmoothed(tag: str) -> list[Any]:
        return ["Margin", [tag, tag, tag]]

    evaluation = {"evaluation return": unsmoothed("eval/mean_reward")}
    if success_rate:
        evaluation["evaluation success rate"] = unsmoothed("eval/success_rate")
    training = {"training return": chart("episode/reward"), "training episode length": chart("episode/length")}
    for agent in agents:
        evaluation[f"evaluation return of {agent}"] = unsmoothed(f"eval/mean_reward/{agent}")
        training[f"training return of {agent}"] = chart(f"episode/reward/{agent}")
    return {"rlkit: evaluation": evaluation, "rlkit: training": training,
            "rlkit: speed": {"env steps per second": chart("time/steps_per_second")}}


class ProgressBar(Callback):
    """A terminal progress bar: steps, episodes per second, mean of the latest returns; quiet off a terminal.

    A multi-agent run with two teams or more shows each team's mean too.

    While it shows, log lines go through it (tqdm's ``logging_redirect_tqdm``): each is written above the bar,
    which stays one line at the bottom.
    """

    def __init__(self, enabled: bool = True, window: int = 20, refresh_steps: int = 500) -> None:
        super().__init__()
        self.enabled = enabled and sys.stderr.isatty()
        self.window: deque[float] = deque(maxlen=window)
        self.team_windows: dict[str, deque[float]] = {}
        self._team_of: dict[str, str] = {}
        self.refresh_steps = refresh_steps
        self._bar: Any = None
        self._logs_through_bar: contextlib.ExitStack | None = None

    def _on_training_start(self) -> None:
        if self.enabled:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            assert self.ctx is not None
            if len(self.ctx.teams) > 1:  # each team's agents' latest returns
                self._team_of = {a: t for t, agents in self.ctx.teams.items() for a in agents}
                self.team_windows = {t: deque(maxlen=self.window.maxlen * len(agents))  # type: ignore[operator]
                                     for t, agents in self.ctx.teams.items()}
            self._bar = tqdm(total=self.ctx.total_steps, initial=self.num_steps, unit="step", dynamic_ncols=True,
                             file=sys.stderr)
            self._logs_through_bar = contextlib.ExitStack()
            self._logs_through_bar.enter_context(logging_redirect_tqdm())

    def _on_step(self) -> bool:
        if self._bar is not None and self.num_steps - self._bar.n >= self.refresh_steps:
            self._refresh()
        return True

    def _refresh(self) -> None:
        assert self.ctx is not None
        if self.num_steps > self._bar.total:  # a vector env's last step can pass total_steps by a few copies
            self._bar.total = self.num_steps
        self._bar.update(self.num_steps - self._bar.n)
        elapsed = max(time.perf_counter() - self.ctx.start_time, 1e-9)
        reward = f"{np.mean(self.window):.1f}" if self.window else "-"
        teams = "".join(f" {t}={np.mean(w):.1f}" for t, w in self.team_windows.items() if w)
        self._bar.set_postfix_str(f"ep/s={self.num_episodes / elapsed:.1f} reward={reward}{teams}", refresh=False)

    def _on_episode_end(self, episode: Episode) -> None:
        if episode.agent is None:
            self.window.append(episode.reward)
        elif episode.agent in self._team_of:
            self.team_windows[self._team_of[episode.agent]].append(episode.reward)

    def _on_training_end(self) -> None:
        self.close()

    def close(self) -> None:
        """Leave the bar at the step training ended or stopped at, and log lines as they were (idempotent)."""
        if self._bar is not None:
            self._refresh()
            self._bar.close()
            self._bar = None
        if self._logs_through_bar is not None:
            self._logs_through_bar.close()
            self._logs_through_bar = None
