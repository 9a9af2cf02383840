"""Config composition: the train/eval schemas, their registration in Hydra's ConfigStore, key and choice checks."""

from __future__ import annotations

import dataclasses
import difflib
import functools
from dataclasses import dataclass, field
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import MISSING, DictConfig, OmegaConf

from rlkit.errors import ConfigError, RlkitError
from rlkit.factory import AGENTS, ENVS
from rlkit.video import VIDEO_FORMATS


@dataclass
class EvalConfig:
    """Periodic deterministic evaluation during training."""

    every_steps: int = 10_000
    """Environment steps between evaluations (0: only one, at the end)."""
    episodes: int = 10
    """Episodes per evaluation, played in parallel copies of the env."""
    deterministic: bool = True
    """Greedy actions during evaluation."""
    stop_on_threshold: bool = False
    """Stop training at the first evaluation whose mean reaches the env's reward threshold."""


@dataclass
class CheckpointConfig:
    """Training checkpoints, from which an interrupted run continues exactly (``rlkit train resume=<run>``)."""

    every_steps: int = 0
    """Environment steps between checkpoints (0: by time only)."""
    every_seconds: float = 300.0
    """Wall seconds between checkpoints (0: by steps only). SIGTERM and SIGINT always write one."""
    keep_last: int = 2
    """Checkpoints kept; older ones are deleted."""
    keep_after_finish: bool = False
    """Keep the checkpoints once the run finished (they hold replay buffers, so they can be large)."""


def _has_target(node: Any) -> bool:
    """Whether a plain value holds a ``_target_`` key at any depth (Hydra would instantiate it)."""
    if isinstance(node, dict):
        return "_target_" in node or any(_has_target(v) for v in node.values())
    return isinstance(node, list) and any(_has_target(v) for v in node)


@dataclass
class CallbacksConfig:
    """What runs beside training: evaluation, logging, progress bar, plug-ins."""

    eval: EvalConfig = field(default_factory=EvalConfig)
    """Periodic deterministic evaluation; keeps the best checkpoint."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Training checkpoints for continuing an interrupted run."""
    tensorboard: bool = True
    """Write TensorBoard events to <run>/tb."""
    progress_bar: bool = True
    """Show a progress bar when stderr is a terminal."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Plug-in callbacks, each a mapping with _target_ (a rlkit.callbacks.Callback subclass) and its kwargs."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        if self.eval.every_steps < 0:
            raise ConfigError(f"callbacks.eval.every_steps must be >= 0, got {self.eval.every_steps}")
        if self.eval.episodes < 1:
            raise ConfigError(f"callbacks.eval.episodes must be >= 1, got {self.eval.episodes}")
        ck = self.checkpoint
        if ck.every_steps < 0 or ck.every_seconds < 0:
            raise ConfigError("callbacks.checkpoint.every_steps and every_seconds must be >= 0, got "
                              f"{ck.every_steps} and {ck.every_seconds}")
        if ck.keep_last < 1:
            raise ConfigError(f"callbacks.checkpoint.keep_last must be >= 1, got {ck.keep_last}")
        for key, spec in self.extra.items():
            if not isinstance(spec, dict) or "_target_" not in spec:
                raise ConfigError(f"callbacks.extra.{key} needs a _target_ naming a Callback class")
            if any(_has_target(v) for k, v in spec.items() if k != "_target_"):
                raise ConfigError(f"callbacks.extra.{key}: only its own _target_ is built; its arguments are plain "
                                  "values, and a nested _target_ is refused")


@dataclass
class TrainConfig:
    """``rlkit train``: one training run."""

    env: Any = MISSING
    """Environment (config group env)."""
    agent: Any = MISSING
    """Agent (config group agent)."""
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    """Evaluation, logging and plug-in callbacks (config group callbacks)."""
    seed: int = 0
    """Seed of every random number generator (Python, NumPy, torch, environments)."""
    total_steps: int = 100_000
    """Environment steps to train for."""
    torch_threads: int = 1
    """torch.set_num_threads; small networks run fastest on one thread of a 2-core machine."""
    resume: str | None = None
    """Continue an interrupted run: its directory, or ``auto`` (the newest unfinished run of this config)."""

    def validate(self) -> None:
        """Check values that the types alone cannot, here and in each group."""
        if self.total_steps < 1:
            raise ConfigError(f"total_steps must be >= 1, got {self.total_steps}")
        if self.torch_threads < 1:
            raise ConfigError(f"torch_threads must be >= 1, got {self.torch_threads}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        for part in (self.env, self.agent, self.callbacks):
            part.validate()


@dataclass
class EvalRunConfig:
    """``rlkit eval``: play a trained run."""

    run: str = MISSING
    """Run to evaluate: its directory (runs/<env>/<agent>/<time>), latest (the newest), or a folder of runs."""
    checkpoint: str = "best"
    """Checkpoint to load: best, last, or a path to a .safetensors file."""
    n_episodes: int = 5
    """Episodes to play."""
    render_mode: str | None = None
    """human (a pygame window), rgb_array, or empty for no rendering."""
    deterministic: bool = True
    """Greedy actions."""
    seed: int = 12345
    """Seed of the evaluation episodes."""
    video: bool = False
    """Record the episodes, rendered off-screen (rgb_array), to <run>/videos/eval-<checkpoint>-<time>.<format>."""
    video_format: str = "mp4"
    """mp4 (H.264) or gif."""
    video_fps: int | None = None
    """Frames per second of the video; empty: the env's render_fps (real time)."""
    trust_run: bool = False
    """Allow a run whose config names code to import (a module:Env id, a plug-in callback); only for runs you trust."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        if self.n_episodes < 1:
            raise ConfigError(f"n_episodes must be >= 1, got {self.n_episodes}")
        if self.render_mode not in (None, "human", "rgb_array"):
            raise ConfigError(f"render_mode must be human, rgb_array or null, got {self.render_mode!r}")
        if self.video and self.render_mode == "human":
            raise ConfigError("video=true records frames rendered off-screen and cannot show a window as well: "
                              "drop render_mode=human (or set render_mode=rgb_array)")
        if self.video_format not in VIDEO_FORMATS:
            raise ConfigError(f"video_format must be one of {', '.join(VIDEO_FORMATS)}, got {self.video_format!r}")
        if self.video_fps is not None and self.video_fps < 1:
            raise ConfigError(f"video_fps must be >= 1 (or null for the env's render_fps), got {self.video_fps}")


def check_known_keys(node: DictConfig, path: str = "") -> None:
    """Refuse keys that a typed node's dataclass does not declare (Hydra lets ``+agent.foo=1`` add them)."""
    object_type = OmegaConf.get_type(node)
    known = {f.name for f in dataclasses.fields(object_type)} if dataclasses.is_dataclass(object_type) else None
    for key in node:
        full = f"{path}{key}"
        if known is not None and key not in known:
            raise ConfigError(
                f"unknown key {full!r}: {object_type.__name__} has no field {key!r}. "
                f"Valid keys of {path.rstrip('.') or 'the config'}: {', '.join(sorted(known))}"
            )
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            check_known_keys(child, f"{full}.")


@functools.cache  # once per process: the ConfigStore keeps them
def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore as ``<group>/<name>_schema``."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalRunConfig)
    for group, registry in (("env", ENVS), ("agent", AGENTS)):
        for name, (schema, _) in registry.items():
            cs.store(group=group, name=f"{name}_schema", node=schema)
    cs.store(group="callbacks", name="callbacks_schema", node=CallbacksConfig)


CONFIG_MODULE = "rlkit.configs"  # the package of train.yaml, eval.yaml and the config groups


def hydra_configs() -> initialize_config_module:
    """Hydra's context for composing rlkit's configs, schemas registered (a ``with`` block)."""
    register_configs()
    return initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3")


def compose(overrides: list[str], config_name: str = "train") -> TrainConfig | EvalRunConfig:
    """The typed config that ``rlkit <command> <overrides>`` would run with, for programs and tests."""
    with hydra_configs():
        cfg = hydra_compose(config_name=config_name, overrides=overrides)
    check_known_keys(cfg)
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, TrainConfig | EvalRunConfig)
    return obj


def check_group_choices(config_name: str, overrides: list[str]) -> None:
    """Refuse ``GROUP=CHOICE`` naming no config of the group, listing the choices (Hydra's list has ``*_schema``)."""
    with hydra_configs():
        loader = GlobalHydra.instance().config_loader()
        groups = {g for g in loader.list_groups("") if g != "hydra"}
        groups |= {f"hydra/{g}" for g in loader.list_groups("hydra")}  # hydra/launcher, hydra/sweeper, ...
        # Configs in directories added with hydra.searchpath=[...] (e.g. a sweep's best preset) are choices too.
        searchpath = [a for a in overrides if a.lstrip("+").startswith("hydra.searchpath=")]
        for arg in overrides:
            group, sep, value = arg.partition("=")
            group = group.lstrip("~+").split("@")[0]
            if not sep or group not in groups or value in ("", "null"):
                continue
            options = loader.get_group_options(group, config_name=config_name, overrides=searchpath)
            choices = [c for c in options if not c.endswith("_schema")]
            for choice in value.split(","):  # a multirun sweep lists several choices: each must exist
                if choice not in choices:
                    close = difflib.get_close_matches(choice, choices, n=1)
                    hint = f" Did you mean {group}={close[0]}?" if close else ""
                    raise RlkitError(
                        f"{group}={choice} names no config in group {group!r}; "
                        f"choose one of: {', '.join(choices) or '(none)'}.{hint}"
                    )
