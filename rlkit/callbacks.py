"""rlkit's callback events, and the callbacks every run uses.

Every agent, native or SB3, emits the same events: a step was taken (``on_step``), an episode finished
(``on_episode_end``), an update was made (``on_update``), an evaluation finished (``on_evaluation``). SB3
agents get them through an adapter (``rlkit.agents.sb3``); native agents call the hooks directly. So one
TensorBoard logger serves every agent, and tags line up across them:

==========================  ================================================================
tag                         meaning
==========================  ================================================================
episode/reward              return of every finished training episode (x: env steps)
episode/length              length of every finished training episode
episode/reward/<agent>      per-agent return, multi-agent runs (episode/reward: the team's mean)
episode/length/<agent>      per-agent length, multi-agent runs
train/<metric>              the agent's update metrics: loss, learning_rate, exploration_rate...
eval/mean_reward            mean return of the periodic deterministic evaluation (team mean)
eval/mean_reward/<agent>    per-agent mean return of the evaluation, multi-agent runs
eval/success_rate           fraction of evaluation episodes ending in info["is_success"] (e.g. the arm)
eval/std_reward             its standard deviation
eval/mean_length            mean episode length of the evaluation
eval/reward_threshold       the env's reward threshold (a constant line), if it has one
eval/success_threshold      the env's success-rate threshold (a constant line), if it has one
time/steps_per_second       training throughput since the previous point
hparams/best_eval_score     best evaluation score, written at the end with the HParams entry
hparams/episodes            training episodes, likewise
==========================  ================================================================

The shape follows SB3's ``BaseCallback``: public hooks update counters and call no-op ``_on_*`` methods that
subclasses override; ``on_step`` returns False to stop training.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym
    from torch.utils.tensorboard import SummaryWriter

    from rlkit.agents.base import Agent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Episode:
    """A finished training episode."""

    step: int
    """Environment steps taken in the run when it finished."""
    reward: float
    """Undiscounted return."""
    length: int
    """Steps in the episode."""
    agent: str | None = None
    """The agent it belongs to, in multi-agent runs; None for the episode itself (in multi-agent runs, with
    the team's mean return). Only episodes with ``agent=None`` are counted."""


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

    @property
    def mean_reward(self) -> float:
        """Mean return over the evaluation episodes."""
        return float(np.mean(self.rewards))

    @property
    def score(self) -> float:
        """What solving and the best checkpoint are judged by.

        The mean return; in multi-agent runs the smallest of the agents' mean returns (every agent must reach
        the threshold).
        """
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
    writer: SummaryWriter | None = None
    start_time: float = field(default_factory=time.perf_counter)


class Callback:
    """Base class: override the ``_on_*`` methods you need."""

    def __init__(self) -> None:
        self.ctx: TrainingContext | None = None
        self.num_steps = 0
        self.num_episodes = 0

    # Public hooks, called by agents. ---------------------------------------------------------------
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
        """The agent is at a point where its ``training_state`` captures everything: a checkpoint may be taken.

        Agents call it between updates (or between vector steps); it may raise to stop training there.
        """
        self._on_safe_point()

    # A run that continues from a checkpoint restores every callback's state. ------------------------
    def state_dict(self) -> dict[str, Any]:
        """What this callback must remember across an interruption (plain values and arrays)."""
        return {"num_steps": self.num_steps, "num_episodes": self.num_episodes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; called before ``on_training_start`` of the continued run."""
        self.num_steps = int(state["num_steps"])
        self.num_episodes = int(state["num_episodes"])

    # To override. ------------------------------------------------------------------------------------
    def _on_training_start(self) -> None:
        pass

    def _on_step(self) -> bool:
        return True

    def _on_episode_end(self, episode: Episode) -> None:
        pass

    def _on_update(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def _on_evaluation(self, evaluation: Evaluation) -> None:
        pass

    def _on_training_end(self) -> None:
        pass

    def _on_safe_point(self) -> None:
        pass


class CallbackList(Callback):
    """Notifies many callbacks, in order; training stops when any ``on_step`` returns False."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        super().__init__()
        self.callbacks = list(callbacks)

    def on_training_start(self, ctx: TrainingContext) -> None:  # noqa: D102
        super().on_training_start(ctx)
        for cb in self.callbacks:
            cb.on_training_start(ctx)

    def on_step(self, num_steps: int) -> bool:  # noqa: D102
        self.num_steps = num_steps
        keep_going = True
        for cb in self.callbacks:
            # Every callback sees every step, even after one has asked to stop.
            keep_going = cb.on_step(num_steps) and keep_going
        return keep_going

    def on_episode_end(self, episode: Episode) -> None:  # noqa: D102
        self.num_episodes += episode.agent is None
        for cb in self.callbacks:
            cb.on_episode_end(episode)

    def on_update(self, step: int, metrics: dict[str, float]) -> None:  # noqa: D102
        for cb in self.callbacks:
            cb.on_update(step, metrics)

    def on_evaluation(self, evaluation: Evaluation) -> None:  # noqa: D102
        for cb in self.callbacks:
            cb.on_evaluation(evaluation)

    def on_training_end(self) -> None:  # noqa: D102
        for cb in self.callbacks:
            cb.on_training_end()

    def on_safe_point(self) -> None:  # noqa: D102
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


class TensorBoardLogger(Callback):
    """Writes every event to TensorBoard with the tags in this module's docstring.

    At the start it writes a custom-scalars layout (TensorBoard's CUSTOM SCALARS tab: training against
    evaluation return with the reward threshold, per-agent and team returns of multi-agent runs, the success
    rate, steps per second); at the end the run's hyperparameters with its final metrics (the HPARAMS tab,
    where the runs of a sweep can be compared).

    Args:
        throughput_every: Environment steps between ``time/steps_per_second`` points.
        hparams: The run's hyperparameters (flat, dotted keys), for the HParams tab; None: none written.
        agents: The agents of a multi-agent env (their return curves get a chart of their own).
    """

    def __init__(self, throughput_every: int = 1000, hparams: dict[str, Any] | None = None,
                 agents: Sequence[str] = ()) -> None:
        super().__init__()
        self.throughput_every = throughput_every
        self.hparams = hparams
        self.agents = tuple(agents)
        self._last_step = 0
        self._last_time = 0.0
        self._final: dict[str, float] = {}
        self._resumed = False

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {**super().state_dict(), "last_step": self._last_step, "final": dict(self._final)}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        super().load_state_dict(state)
        self._last_step = int(state["last_step"])
        self._final = {k: float(v) for k, v in state["final"].items()}
        self._resumed = True  # the layout and the first threshold points are in the events already

    def _writer(self) -> SummaryWriter:
        assert self.ctx is not None and self.ctx.writer is not None, "TensorBoardLogger needs a writer"
        return self.ctx.writer

    def _on_training_start(self) -> None:
        self._last_time = time.perf_counter()
        assert self.ctx is not None
        if self._resumed:
            return
        self._writer().add_custom_scalars(custom_scalars_layout(self.ctx.reward_threshold is not None,
                                                                self.ctx.success_threshold is not None,
                                                                self.agents))
        self._thresholds(0)

    def _thresholds(self, step: int) -> None:
        """The thresholds as constant series, so the layout's charts can draw them beside the curves."""
        assert self.ctx is not None
        if self.ctx.reward_threshold is not None:
            self._writer().add_scalar("eval/reward_threshold", self.ctx.reward_threshold, step)
        if self.ctx.success_threshold is not None:
            self._writer().add_scalar("eval/success_threshold", self.ctx.success_threshold, step)

    def _on_step(self) -> bool:
        if self.num_steps - self._last_step >= self.throughput_every:
            now = time.perf_counter()
            sps = (self.num_steps - self._last_step) / max(now - self._last_time, 1e-9)
            self._writer().add_scalar("time/steps_per_second", sps, self.num_steps)
            self._final["time/steps_per_second"] = sps
            self._last_step, self._last_time = self.num_steps, now
        return True

    def _on_episode_end(self, episode: Episode) -> None:
        suffix = "" if episode.agent is None else f"/{episode.agent}"
        w = self._writer()
        w.add_scalar(f"episode/reward{suffix}", episode.reward, episode.step)
        w.add_scalar(f"episode/length{suffix}", episode.length, episode.step)

    def _on_update(self, step: int, metrics: dict[str, float]) -> None:
        w = self._writer()
        for key, value in metrics.items():
            w.add_scalar(f"train/{key}", value, step)

    def _on_evaluation(self, evaluation: Evaluation) -> None:
        w = self._writer()
        w.add_scalar("eval/mean_reward", evaluation.mean_reward, evaluation.step)
        w.add_scalar("eval/std_reward", evaluation.std_reward, evaluation.step)
        w.add_scalar("eval/mean_length", float(np.mean(evaluation.lengths)), evaluation.step)
        for agent, rewards in evaluation.agent_rewards.items():
            w.add_scalar(f"eval/mean_reward/{agent}", float(np.mean(rewards)), evaluation.step)
        if evaluation.success_rate is not None:
            w.add_scalar("eval/success_rate", evaluation.success_rate, evaluation.step)
        self._thresholds(evaluation.step)
        self._final["eval/mean_reward"] = evaluation.mean_reward
        if evaluation.success_rate is not None:
            self._final["eval/success_rate"] = evaluation.success_rate
        best = self._final.get("hparams/best_eval_score", -math.inf)
        self._final["hparams/best_eval_score"] = max(best, evaluation.score)

    def _on_training_end(self) -> None:
        if self.hparams is not None:
            self._write_hparams()
        self._writer().flush()

    def _write_hparams(self) -> None:
        """The HParams tab's entry: hyperparameters, and the final metrics as the run's last scalar values."""
        from torch.utils.tensorboard.summary import hparams

        w = self._writer()
        # The HParams tab reads each metric as the last point of its tag: eval/ and time/ tags exist already.
        metrics = {**self._final, "hparams/episodes": float(self.num_episodes)}
        for tag in ("hparams/best_eval_score", "hparams/episodes"):
            if tag in metrics:
                w.add_scalar(tag, metrics[tag], self.num_steps)
        experiment, start, end = hparams(self.hparams, metrics)
        for summary in (experiment, start, end):
            w.file_writer.add_summary(summary)  # type: ignore[union-attr]


def custom_scalars_layout(reward_threshold: bool, success_threshold: bool,
                          agents: Sequence[str]) -> dict[str, dict[str, list[Any]]]:
    """TensorBoard's custom-scalars layout for a run (tags are regular expressions, one chart per entry)."""
    returns: dict[str, list[Any]] = {
        "training vs evaluation return": ["Multiline", ["^episode/reward$", "^eval/mean_reward$"]
                                          + (["^eval/reward_threshold$"] if reward_threshold else [])],
        "episode length": ["Multiline", ["^episode/length$", "^eval/mean_length$"]],
    }
    if success_threshold:
        returns["evaluation success rate"] = ["Multiline", ["^eval/success_rate$", "^eval/success_threshold$"]]
    if agents:
        returns["per-agent and team training return"] = ["Multiline", ["^episode/reward(/.*)?$"]]
        returns["per-agent and team evaluation return"] = ["Multiline", ["^eval/mean_reward(/.*)?$"]
                                                           + (["^eval/reward_threshold$"] if reward_threshold
                                                              else [])]
    return {"rlkit: returns": returns,
            "rlkit: speed": {"env steps per second": ["Multiline", ["^time/steps_per_second$"]]}}


class PeriodicEvaluator(Callback):
    """Every ``every_steps`` steps, plays ``episodes`` deterministic episodes and keeps the best checkpoint.

    The episodes run in parallel copies of the environment with one batched action call per step. Time
    spent evaluating (and saving the best checkpoint) is accounted separately so training time can be
    reported without it.

    Args:
        make_env: Builds one evaluation environment.
        every_steps: Environment steps between evaluations; 0 evaluates only at the end.
        episodes: Episodes per evaluation.
        deterministic: Greedy actions.
        seed: Seed of the evaluation environments (each copy gets ``seed + i``, once).
        stop_on_threshold: Stop training when the mean reaches the run's reward threshold.
    """

    def __init__(
        self,
        make_env: Callable[[], gym.Env],
        every_steps: int,
        episodes: int,
        deterministic: bool = True,
        seed: int = 0,
        stop_on_threshold: bool = False,
    ) -> None:
        super().__init__()
        self.make_env = make_env
        self.every_steps = every_steps
        self.episodes = episodes
        self.deterministic = deterministic
        self.seed = seed
        self.stop_on_threshold = stop_on_threshold
        self.envs: list[gym.Env] = []
        self.eval_seconds = 0.0
        self.best: Evaluation | None = None
        self.last: Evaluation | None = None
        self.solved_at: dict[str, float] | None = None
        self._next_eval = every_steps
        self._env_states: list[Any] | None = None

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        from rlkit.envs.state import env_state

        def evaluation(e: Evaluation | None) -> dict[str, Any] | None:
            return None if e is None else dataclasses.asdict(e)

        return {**super().state_dict(), "next_eval": self._next_eval, "eval_seconds": self.eval_seconds,
                "best": evaluation(self.best), "last": evaluation(self.last), "solved_at": self.solved_at,
                "envs": [env_state(env)[0] for env in self.envs]}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: D102
        super().load_state_dict(state)
        self._next_eval = int(state["next_eval"])
        self.eval_seconds = float(state["eval_seconds"])
        self.best = None if state["best"] is None else Evaluation(**state["best"])
        self.last = None if state["last"] is None else Evaluation(**state["last"])
        self.solved_at = state["solved_at"]
        self._env_states = state["envs"]

    def _on_training_start(self) -> None:
        from rlkit.envs.state import set_env_state
        from rlkit.evaluate import seed_envs

        self.envs = [self.make_env() for _ in range(self.episodes)]
        seed_envs(self.envs, self.seed)
        if self._env_states is not None:  # a continued run: the copies' random streams go on
            for env, env_state in zip(self.envs, self._env_states, strict=True):
                set_env_state(env, env_state)

    def _on_step(self) -> bool:
        if self.every_steps <= 0 or self.num_steps < self._next_eval:
            return True
        while self._next_eval <= self.num_steps:
            self._next_eval += self.every_steps
        self.evaluate()
        return not (self.stop_on_threshold and self.solved_at is not None)

    def evaluate(self) -> Evaluation:
        """Run one evaluation now, tell the other callbacks, keep the best checkpoint."""
        from rlkit.evaluate import play_episodes

        assert self.ctx is not None
        started = time.perf_counter()
        train_seconds = started - self.ctx.start_time - self.eval_seconds
        played = play_episodes(self.ctx.agent, self.envs, deterministic=self.deterministic)
        evaluation = Evaluation(step=self.num_steps, rewards=played.team_returns(), lengths=played.lengths,
                                agent_rewards=played.agent_returns(), success_rate=played.success_rate)
        self.last = evaluation
        if self.best is None or evaluation.score > self.best.score:
            self.best = evaluation
            self.ctx.agent.save(
                self.ctx.run_dir / "checkpoints" / "best.safetensors",
                {"step": self.num_steps, "eval_mean_reward": evaluation.mean_reward, "eval_score": evaluation.score},
            )
        if self.solved_at is None and self._solves(evaluation):
            self.solved_at = {"step": self.num_steps, "train_seconds": train_seconds}
        success = "" if evaluation.success_rate is None else f", success {evaluation.success_rate:.0%}"
        log.info("eval at step %d: mean reward %.1f +/- %.1f over %d episodes%s%s", self.num_steps,
                 evaluation.mean_reward, evaluation.std_reward, len(evaluation.rewards), success,
                 " (solved)" if self.solved_at is not None and self.solved_at["step"] == self.num_steps else "")
        self.eval_seconds += time.perf_counter() - started
        self.ctx.callbacks.on_evaluation(evaluation)
        return evaluation

    def _solves(self, evaluation: Evaluation) -> bool:
        """Every threshold the env has is met: the score's, and the success rate's."""
        assert self.ctx is not None
        met = []
        if self.ctx.reward_threshold is not None:
            met.append(evaluation.score >= self.ctx.reward_threshold)
        if self.ctx.success_threshold is not None and evaluation.success_rate is not None:
            met.append(evaluation.success_rate >= self.ctx.success_threshold)
        return bool(met) and all(met)

    def _on_training_end(self) -> None:
        if self.last is None or self.last.step != self.num_steps:
            self.evaluate()
        for env in self.envs:
            env.close()


class ProgressBar(Callback):
    """A terminal progress bar: steps, episodes per second, mean of the latest episode returns.

    Quiet when stderr is not a terminal (CI logs, pipes), or when ``enabled`` is False.
    """

    def __init__(self, enabled: bool = True, window: int = 20, refresh_steps: int = 500) -> None:
        super().__init__()
        self.enabled = enabled and sys.stderr.isatty()
        self.window: deque[float] = deque(maxlen=window)
        self.refresh_steps = refresh_steps
        self._bar: Any = None
        self._shown = 0

    def _on_training_start(self) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        assert self.ctx is not None
        self._bar = tqdm(total=self.ctx.total_steps, initial=self.num_steps, unit="step", dynamic_ncols=True,
                         file=sys.stderr)
        self._shown = self.num_steps

    def _on_step(self) -> bool:
        if self._bar is not None and self.num_steps - self._shown >= self.refresh_steps:
            self._refresh()
        return True

    def _refresh(self) -> None:
        assert self.ctx is not None
        self._bar.update(self.num_steps - self._shown)
        self._shown = self.num_steps
        elapsed = max(time.perf_counter() - self.ctx.start_time, 1e-9)
        reward = f"{np.mean(self.window):.1f}" if self.window else "-"
        self._bar.set_postfix_str(f"eps/s={self.num_episodes / elapsed:.1f} reward={reward}", refresh=False)

    def _on_episode_end(self, episode: Episode) -> None:
        if episode.agent is None:
            self.window.append(episode.reward)

    def _on_evaluation(self, evaluation: Evaluation) -> None:
        if self._bar is not None and math.isfinite(evaluation.mean_reward):
            self._bar.write(
                f"eval @ {evaluation.step} steps: {evaluation.mean_reward:.1f} ± {evaluation.std_reward:.1f}"
            )

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._refresh()
            self._bar.close()
