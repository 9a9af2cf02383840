"""rlkit from Python: ``rlkit.train``, ``rlkit.load`` and ``rlkit.export`` (docs/api.md).

The same config composition and checks as ``rlkit train``, the same run directories, the same loading as
``rlkit eval``; nothing reads ``sys.argv`` or needs Hydra's ``@main``, so it runs twice in one process and in a
notebook.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from rlkit.config import TrainConfig, check_group_choices, check_known_keys, hydra_configs
from rlkit.errors import ConfigError, RlkitError, RunDirError
from rlkit.runs import CONFIG_FILE, claim_run_dir

__all__ = ["Policy", "Run", "export", "load", "train"]

_PLAIN = re.compile(r"[\w.:/+\-]+")  # a value the override grammar takes as it is


def _value(value: Any) -> str:
    """A Python value as Hydra's override grammar writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_value(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.fullmatch(text) and text not in ("null", "true", "false"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _override_list(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={_value(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a dict or a list of key=value strings, got the string {overrides!r}")
    return [str(o) for o in overrides]


def _args(env: str | None, agent: str | None, experiment: str | None,
          overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """The command line's overrides for these arguments."""
    return [*([f"env={env}"] if env else []), *([f"agent={agent}"] if agent else []),
            *([f"experiment={experiment}"] if experiment else []), *_override_list(overrides)]


def compose_train(env: str | None = None, agent: str | None = None, *, experiment: str | None = None,
                  overrides: Mapping[str, Any] | Sequence[str] | None = None) -> tuple[TrainConfig, DictConfig, str]:
    """The typed config ``rlkit train`` would run with, untyped (as .hydra/config.yaml), and its default run dir.

    Raises:
        ConfigError: An unknown group choice or key, a wrong type or value, as on the command line.
    """
    args = _args(env, agent, experiment, overrides)
    if any(a.lstrip("+~").startswith(("hydra.", "hydra/", "resume=")) for a in args):
        raise ConfigError("rlkit.train takes config keys; Hydra's own settings and resume= belong to the command "
                          "line (rlkit train ...)")
    try:
        check_group_choices("train", args)
        with hydra_configs():
            cfg = compose(config_name="train", overrides=args, return_hydra_config=True)
        run_dir = str(cfg.hydra.run.dir)
        with open_dict(cfg):
            del cfg["hydra"]
        check_known_keys(cfg)
        train_cfg = OmegaConf.to_object(cfg)
        assert isinstance(train_cfg, TrainConfig)
        train_cfg.validate()
    except ConfigError:
        raise
    except RlkitError as e:
        raise ConfigError(str(e)) from None
    except (HydraException, OmegaConfBaseException) as e:  # an unknown key, a wrong type, a parse error
        why = str(e).splitlines()[0] + (f" ({str(e.__cause__).splitlines()[0]})" if e.__cause__ else "")
        raise ConfigError(f"{' '.join(args) or 'the default config'}: {why}") from None
    return train_cfg, cfg, run_dir


@dataclass
class Run:
    """A finished training run: its directory (the layout ``rlkit train`` writes) and its ``summary.json``."""

    dir: Path
    summary: dict[str, Any]

    def load(self, checkpoint: str = "best") -> Policy:
        """This run's policy (:func:`load`)."""
        return load(self.dir, checkpoint)


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Copy rlkit's log messages (INFO and above) into ``path``, as ``rlkit train`` writes its train.log."""
    logger = logging.getLogger("rlkit")
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


def train(env: str | None = None, agent: str | None = None, *, experiment: str | None = None,
          overrides: Mapping[str, Any] | Sequence[str] | None = None, run_dir: str | Path | None = None) -> Run:
    """Train one run, as ``rlkit train env=<env> agent=<agent> experiment=<preset> <overrides>`` does.

    Args:
        env: A config of the env group (balancing_pole, robotic_arm, multi_cartpole, gym, mpe, pettingzoo); None:
            train.yaml's default, or the experiment's.
        agent: A config of the agent group (dqn, reinforce, maddpg, ppo, a2c, sac, td3); None: as ``env``.
        experiment: A tuned preset (configs/experiment/), e.g. ``balancing_pole_dqn``.
        overrides: ``{"total_steps": 20000, "agent.learning_rate": 5e-4}`` or ``["total_steps=20000", ...]``.
        run_dir: Where the run goes; default ``runs/<env>/<agent>/<time>`` as on the command line. It must be new.

    Returns:
        The run: ``.dir`` and ``.summary`` (its summary.json).

    Raises:
        ConfigError: A config mistake, found before anything is built or written.
        RunDirError: ``run_dir`` already holds another run.
    """
    from rlkit.trainer import train as train_run

    train_cfg, cfg, default_dir = compose_train(env, agent, experiment=experiment, overrides=overrides)
    path = Path(default_dir if run_dir is None else run_dir).expanduser()
    claim_run_dir(path, CONFIG_FILE.parent.name)
    OmegaConf.save(cfg, path / CONFIG_FILE)  # what rlkit eval, verify and resume read back
    overrides_file = path / CONFIG_FILE.parent / "overrides.yaml"
    OmegaConf.save(OmegaConf.create(_args(env, agent, experiment, overrides)), overrides_file)
    with _log_to(path / "train.log"):
        summary = train_run(train_cfg, path)
    return Run(dir=path, summary=summary)


class Policy:
    """A trained run's deterministic (or sampling) policy, loaded without unpickling anything.

    ``predict`` takes what the run's env returns (:meth:`make_env`), one observation or a batch, and returns
    actions in the env's own action space, as ``rlkit eval`` plays them.
    """

    def __init__(self, loaded: Any) -> None:
        self._loaded = loaded
        self.dir: Path = loaded.dir
        """The run directory."""
        self.checkpoint: Path = loaded.checkpoint
        """The checkpoint file loaded."""
        self.config: TrainConfig = loaded.config
        """The run's config."""
        self.agents: tuple[str, ...] = loaded.env.agents
        """A multi-agent env's agents; empty for a single-agent env."""
        env = loaded.env.make(None)
        env.close()
        self.observation_space, self.action_space = env.observation_space, env.action_space
        """The env's spaces (a multi-agent env's: stacked, agent axis first)."""

    def __repr__(self) -> str:
        return f"Policy({self.config.agent.name} on {self._loaded.env.label}, {self.checkpoint})"

    def predict(self, obs: Any, deterministic: bool = True) -> Any:
        """Actions for one observation or a batch.

        Single-agent: ``obs`` of the observation space's shape gives one action; with a leading batch axis, a batch.
        Multi-agent: a dict ``{agent: observation or batch}`` gives a dict of actions; an array as the env returns
        it (agents on the first axis, or a batch of those) gives an array.
        """
        if self.agents and isinstance(obs, Mapping):
            missing = [a for a in self.agents if a not in obs]
            if missing:
                raise ValueError(f"predict needs every agent's observation; missing: {', '.join(missing)}")
            width = self.observation_space.shape[-1]
            rows = [np.asarray(obs[a], dtype=np.float32) for a in self.agents]
            single = rows[0].ndim == 1
            batch = [r[None] if single else r for r in rows]
            stacked = np.zeros((len(batch[0]), len(self.agents), width), dtype=np.float32)
            for i, r in enumerate(batch):
                stacked[:, i, :r.shape[-1]] = r  # observations narrower than the widest are zero-padded
            actions = self._loaded.agent.act(stacked, deterministic=deterministic)
            return {a: actions[0, i] if single else actions[:, i] for i, a in enumerate(self.agents)}
        x = np.asarray(obs, dtype=np.float32)
        shape = self.observation_space.shape
        if x.shape == shape:
            return self._loaded.agent.act(x[None], deterministic=deterministic)[0]
        if x.shape[1:] == shape:
            return self._loaded.agent.act(x, deterministic=deterministic)
        raise ValueError(f"predict takes an observation of shape {shape} or a batch (n, *{shape}), got {x.shape}"
                         + (f", or a dict keyed by agent ({', '.join(self.agents)})" if self.agents else ""))

    def make_env(self, render_mode: str | None = None) -> Any:
        """A new copy of the run's env, built from its config (``render_mode``: None, human or rgb_array)."""
        return self._loaded.env.make(render_mode)

    def evaluate(self, n_episodes: int = 5, seed: int = 12345, deterministic: bool = True,
                 render_mode: str | None = None, opponent: str | Path | Policy | None = None,
                 opponent_team: str | None = None) -> Any:
        """Play ``n_episodes`` episodes as ``rlkit eval`` does (the same seeds give the same episodes).

        ``opponent`` (a multi-agent run with teams): cross-play as ``rlkit eval opponent=``, the opponent team's
        actions taken from another run (a run directory, or a loaded Policy: its run's best checkpoint) or
        ``"random"``; ``opponent_team`` names that team (default: every team but the run's scored one).

        Returns:
            The episodes played: ``.rewards``, ``.lengths``, ``.agent_rewards`` (multi-agent), ``.successes``,
            ``.team_mean_rewards()`` and, in cross-play, ``.opponent_teams``.
        """
        from rlkit.config import EvalRunConfig
        from rlkit.evaluate import evaluate_run

        if isinstance(opponent, Policy):
            opponent = opponent.dir
        cfg = EvalRunConfig(run=str(self.dir), checkpoint=str(self.checkpoint), n_episodes=n_episodes,
                            render_mode=render_mode, deterministic=deterministic, seed=seed,
                            opponent=None if opponent is None else str(opponent), opponent_team=opponent_team)
        return evaluate_run(cfg, loaded=self._loaded)


def load(path: str | Path, checkpoint: str = "best", trust_run: bool = False) -> Policy:
    """The policy of a run: its directory (``latest``, or a folder of runs: the newest) or a checkpoint file in it.

    Args:
        path: A run directory, ``latest``, a folder of runs, or ``<run>/checkpoints/<name>.safetensors``.
        checkpoint: best (falls back to last), last, or a checkpoint file; ignored when ``path`` is a file.
        trust_run: Allow a run whose config names code to import (docs/safety.md).

    Raises:
        RunDirError: The path is missing, not a run, or its checkpoint is corrupt, foreign or of another agent.
    """
    from rlkit.evaluate import load_run

    path = Path(path).expanduser()
    if path.is_file():
        if path.parent.name != "checkpoints" or not (path.parent.parent / CONFIG_FILE).is_file():
            raise RunDirError(f"{path} is a file outside a run's checkpoints/ folder: rlkit.load rebuilds the env and "
                              f"agent from the run's {CONFIG_FILE}, so give the run directory or a checkpoint in it")
        path, checkpoint = path.parent.parent, str(path)
    return Policy(load_run(path, checkpoint, trust_run))


def export(path: str | Path, format: str = "onnx", checkpoint: str = "best",  # noqa: A002 (the CLI's key)
           out: str | Path | None = None, trust_run: bool = False) -> list[Path]:
    """``rlkit export``: write a run's deterministic policy as ONNX or TorchScript; returns the files written."""
    from rlkit.evaluate import load_run
    from rlkit.exporter import export_run

    return export_run(load_run(path, checkpoint, trust_run), format, None if out is None else Path(out))

