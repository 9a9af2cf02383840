"""``train(cfg, run_dir)``: one training run, callable without Hydra."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import random
import shutil
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import get_object, instantiate

from rlkit.callbacks import Callback, CallbackList, Evaluation, ProgressBar, TensorBoardLogger, TrainingContext
from rlkit.config import TrainConfig
from rlkit.errors import ConfigError, EnvWorkerDied, TrainingDiverged, disk_full_errors, quiet_disk_full_in_threads
from rlkit.evaluate import PeriodicEvaluator
from rlkit.factory import build_agent, build_env
from rlkit.files import write_json
from rlkit.resume import (
    RESUME_DIR,
    Checkpointer,
    TrainingCheckpoint,
    checkpoints,
    continue_with,
    restore,
    stop_if_requested,
)
from rlkit.runs import SUMMARY_FILE, event_dir, flatten, keep_events, record_files, tb_run_name

log = logging.getLogger(__name__)

# Offset of the evaluation environments' seeds, so they never replay the training episodes' starts.
EVAL_SEED_OFFSET = 1_000_000


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run's results depend on."""
    versions = {"python": platform.python_version()}
    for pkg in ("rlkit", "torch", "numpy", "gymnasium", "stable-baselines3", "hydra-core"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions


def _evaluation_dict(e: Evaluation | None) -> dict[str, Any] | None:
    if e is None:
        return None
    out = {"step": e.step, "mean_reward": e.mean_reward, "std_reward": e.std_reward, "episodes": len(e.rewards)}
    if e.success_rate is not None:
        out["success_rate"] = e.success_rate
    if e.agent_rewards:  # multi-agent runs: solving and the best checkpoint go by the score (the env.objective)
        out.update(agent_mean_rewards={a: float(np.mean(r)) for a, r in e.agent_rewards.items()}, score=e.score,
                   team_mean_rewards=e.team_mean_rewards)
    return out


def _extra_callbacks(specs: dict[str, Any]) -> list[Callback]:
    callbacks = []
    for key, spec in specs.items():
        # The target is looked up and checked before anything is called: a config (a run directory's, when a
        # run is continued) naming a function such as os.system never gets it run.
        try:
            target = get_object(str(spec["_target_"]))
            is_callback = isinstance(target, type) and issubclass(target, Callback)
            callback = instantiate(spec, _recursive_=False) if is_callback else None
        except Exception as e:  # import errors of every kind; instantiate wraps argument errors
            raise ConfigError(f"callbacks.extra.{key} cannot be built: {e}") from None
        if callback is None:
            raise ConfigError(f"callbacks.extra.{key}._target_={spec['_target_']} is not a rlkit Callback class; "
                              "nothing was called")
        callbacks.append(callback)
    return callbacks


def hparams_of(cfg: TrainConfig) -> dict[str, bool | int | float | str]:
    """The run's hyperparameters for TensorBoard's HParams tab, dotted keys; non-scalars as JSON (the tab's need)."""
    nested = {"seed": cfg.seed, "total_steps": cfg.total_steps, "env": dataclasses.asdict(cfg.env),
              "agent": dataclasses.asdict(cfg.agent)}
    return {k: v if isinstance(v, bool | int | float | str) else json.dumps(v) for k, v in flatten(nested).items()}


def train(cfg: TrainConfig, run_dir: Path, callbacks: Sequence[Callback] = (),
          resume_from: TrainingCheckpoint | None = None) -> dict[str, Any]:
    """Train the configured agent on the configured env into ``run_dir`` (docs/runs.md); returns the run's summary.

    ``callbacks`` go after the configured ones; ``resume_from`` continues the run as if it had never stopped.

    Raises:
        RunInterrupted: SIGTERM or SIGINT arrived; a training checkpoint was written.
        TrainingDiverged: A loss diverged; the last good weights are in ``checkpoints/last.safetensors``.
        DiskFullError: The disk filled up; the message names the checkpoints left intact.
    """
    cfg.validate()
    stop_if_requested(run_dir)
    with disk_full_errors(run_dir, run_dir / "checkpoints"), quiet_disk_full_in_threads():
        run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.resume is not None:  # what the first part logged after its checkpoint (all, without one) goes
            keep_events(run_dir / "tb", None if resume_from is None else resume_from.step)
        torch.set_num_threads(cfg.torch_threads)
        if cfg.torch_threads > (cores := os.cpu_count() or 1):
            log.warning("torch_threads=%d is more than this machine's %d cores: the threads contend and training "
                        "runs slower; set torch_threads=%d or fewer", cfg.torch_threads, cores, cores)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)

        env_factory = build_env(cfg.env)
        agent = build_agent(cfg.agent, env_factory, seed=cfg.seed, training=True)
        log.info("%s %s on %s for %d steps (seed %d) in %s",
                 "training" if resume_from is None else f"continuing from step {resume_from.step}:",
                 cfg.agent.name, env_factory.label, cfg.total_steps, cfg.seed, run_dir)

        ev, ck = cfg.callbacks.eval, cfg.callbacks.checkpoint
        if ev.stop_on_threshold and env_factory.reward_threshold is None and env_factory.success_threshold is None:
            raise ConfigError(f"callbacks.eval.stop_on_threshold=true, but {env_factory.label} has no reward "
                              "threshold; set env.reward_threshold")
        evaluator = PeriodicEvaluator(lambda: env_factory.make(None), ev, seed=cfg.seed + EVAL_SEED_OFFSET)
        # The evaluator goes first: its final evaluation at the end must reach the logger before it flushes.
        every: list[Callback] = [evaluator]
        writer = None
        if cfg.callbacks.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            tb = run_dir / "tb"  # events in tb/<run name>/: TensorBoard names a run by its folder
            writer = SummaryWriter(log_dir=str(tb / tb_run_name(run_dir, env_factory.label, cfg.agent.name, cfg.seed)
                                               if resume_from is None else event_dir(tb)))
            every.append(TensorBoardLogger(hparams=hparams_of(cfg), agents=env_factory.agents))
        progress = ProgressBar(enabled=cfg.callbacks.progress_bar)
        every.append(progress)
        identity = {"env": env_factory.label, "agent": cfg.agent.name}
        checkpointer = Checkpointer(run_dir / RESUME_DIR, ck, identity)
        callback_list = CallbackList([*every, *_extra_callbacks(cfg.callbacks.extra), *callbacks, checkpointer])
        ctx = TrainingContext(agent=agent, run_dir=run_dir, total_steps=cfg.total_steps, callbacks=callback_list,
                              reward_threshold=env_factory.reward_threshold,
                              success_threshold=env_factory.success_threshold, writer=writer,
                              teams=env_factory.teams, scored_team=env_factory.scored_team)
        if resume_from is not None:
            restore(resume_from, agent, callback_list, identity, copies=env_factory.vectorization)
        callback_list.on_training_start(ctx)
        if resume_from is not None:
            ctx.start_time = time.perf_counter() - float(resume_from.state["elapsed"])
            resume_from.restore_rng()

        diverged: TrainingDiverged | None = None
        last = run_dir / "checkpoints" / "last.safetensors"
        try:  # a stop signal ends it with RunInterrupted, from the checkpointer
            try:
                with checkpointer.signals.installed():
                    agent.learn(cfg.total_steps, callback_list)
            except TrainingDiverged as e:
                diverged = e  # no final evaluation: its weights may be too large to play with
            except EnvWorkerDied as e:  # mid-step: the agent is not at a safe point, so the last checkpoint stands
                found = checkpoints(run_dir / RESUME_DIR)
                kept = f"its last training checkpoint is {found[-1]}; {continue_with(run_dir)}" if found else \
                    ("no training checkpoint was written before (callbacks.checkpoint.every_steps or every_seconds "
                     "sets how often)")
                raise EnvWorkerDied(f"{e}: the run stopped at step {callback_list.num_steps}; {kept}") from None
            steps = callback_list.num_steps
            if diverged is None:
                callback_list.on_training_end()
            saved_last = diverged is None or diverged.weights_finite  # never write NaN weights
            if saved_last:
                agent.save(last, {"step": steps})
        finally:
            progress.close()  # a stopped run's message goes below the bar
            if writer is not None:
                writer.close()
        wall = time.perf_counter() - ctx.start_time
        if not ck.keep_after_finish and diverged is None:  # a diverged run keeps its earlier training checkpoints
            shutil.rmtree(run_dir / RESUME_DIR, ignore_errors=True)

        summary = {
            **identity, "seed": cfg.seed, "total_steps": cfg.total_steps, "steps": steps,
            "episodes": callback_list.num_episodes, "wall_seconds": wall, "eval_seconds": evaluator.eval_seconds,
            "train_seconds": wall - evaluator.eval_seconds, "reward_threshold": env_factory.reward_threshold,
            "success_threshold": env_factory.success_threshold, "solved": evaluator.solved_at,
            "final_eval": _evaluation_dict(evaluator.last), "best_eval": _evaluation_dict(evaluator.best),
            "checkpoints": {"best": "checkpoints/best.safetensors" if evaluator.best else None,
                            "last": "checkpoints/last.safetensors" if saved_last else None},
            "resumed_from": None if resume_from is None else resume_from.step,
            "checkpoint_write_seconds": checkpointer.write_seconds, "versions": package_versions(),
        }
        if env_factory.teams:  # what solving and the best checkpoint went by
            summary.update(teams=env_factory.teams, objective="cooperative" if env_factory.scored_team is None else
                           "competitive", objective_team=env_factory.scored_team)
        if diverged is not None:
            summary["stopped"] = str(diverged).removeprefix("training ")  # "diverged at step ...: why"
        write_json(run_dir / SUMMARY_FILE, summary)
        record_files(run_dir)
        if diverged is not None:
            kept = f"the last good weights are in {last}" if saved_last else "its weights were not saved"
            raise TrainingDiverged(f"{diverged}. The run stopped; {kept}", diverged.weights_finite) from diverged
        return summary
