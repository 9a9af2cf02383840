"""Config composition: the train/eval schemas, their registration in Hydra's ConfigStore, key and choice checks.

The checks of a command line read the schemas and the files of configs/ with OmegaConf alone, so a mistake is
refused before Hydra (and torch) is imported; the functions that compose import Hydra themselves.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.resources
import importlib.util
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING, DictConfig, OmegaConf

from rlkit.agents.config import AGENT_SCHEMAS
from rlkit.env_schemas import ENV_SCHEMAS
from rlkit.errors import ConfigError, RlkitError

if TYPE_CHECKING:
    from hydra import initialize_config_module
    from hydra.core.config_loader import ConfigLoader

MAX_SEED = 2**32 - 1  # numpy.random.seed takes no larger seed
MAX_EVAL_EPISODES = 1000  # an evaluation holds one env copy per episode


@dataclass
class EvalConfig:
    """Periodic deterministic evaluation during training."""

    every_steps: int = 10_000
    """Environment steps between evaluations (0: only one, at the end)."""
    episodes: int = 10
    """Episodes per evaluation, played in parallel copies of the env (at most 1000)."""
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
        if not 1 <= self.eval.episodes <= MAX_EVAL_EPISODES:
            raise ConfigError(f"callbacks.eval.episodes must be between 1 and {MAX_EVAL_EPISODES} (each is a copy of "
                              f"the env, played in parallel), got {self.eval.episodes}; for more, evaluate the "
                              "finished run: rlkit eval run=<run dir> n_episodes=N")
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
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be between 0 and {MAX_SEED} (2**32 - 1, NumPy's seed range), got {self.seed}")
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
    opponent: str | None = None
    """Cross-play of a multi-agent run with teams: the opponent team's actions come from this run (its best
    checkpoint; a run as for run=) or from random (uniform random actions); empty: the run plays every team."""
    opponent_team: str | None = None
    """The team that opponent= plays; empty: every team but the run's scored team (env.objective_team)."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        if self.opponent_team is not None and self.opponent is None:
            raise ConfigError(f"opponent_team={self.opponent_team} names the team that opponent= plays: set "
                              "opponent=<run dir> or opponent=random too")
        if self.n_episodes < 1:
            raise ConfigError(f"n_episodes must be >= 1, got {self.n_episodes}")
        if self.render_mode not in (None, "human", "rgb_array"):
            raise ConfigError(f"render_mode must be human, rgb_array or null, got {self.render_mode!r}")
        if self.video and self.render_mode == "human":
            raise ConfigError("video=true records frames rendered off-screen and cannot show a window as well: "
                              "drop render_mode=human (or set render_mode=rgb_array)")
        from rlkit.video import VIDEO_FORMATS  # NumPy: only once a config is complete

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
            raise ConfigError(unknown_key_message(full, object_type.__name__, sorted(known)))
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            check_known_keys(child, f"{full}.")


@functools.cache  # once per process: the ConfigStore keeps them
def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore as ``<group>/<name>_schema``."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalRunConfig)
    for group, schemas in (("env", ENV_SCHEMAS), ("agent", AGENT_SCHEMAS)):
        for name, schema in schemas.items():
            cs.store(group=group, name=f"{name}_schema", node=schema)
    cs.store(group="callbacks", name="callbacks_schema", node=CallbacksConfig)


CONFIG_MODULE = "rlkit.configs"  # the package of train.yaml, eval.yaml and the config groups


def hydra_configs() -> initialize_config_module:
    """Hydra's context for composing rlkit's configs, schemas registered (a ``with`` block)."""
    from hydra import initialize_config_module

    register_configs()
    return initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3")


def compose(overrides: list[str], config_name: str = "train") -> TrainConfig | EvalRunConfig:
    """The typed config that ``rlkit <command> <overrides>`` would run with, for programs and tests."""
    from hydra import compose as hydra_compose

    with hydra_configs():
        cfg = hydra_compose(config_name=config_name, overrides=overrides)
    check_known_keys(cfg)
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, TrainConfig | EvalRunConfig)
    return obj


def group_choices(loader: ConfigLoader) -> dict[str, list[str]]:
    """Each config group (``hydra/launcher`` and the like too) -> its choices, ``*_schema`` left out: one scan.

    The loader's own ``get_group_options`` copies the ConfigStore on every call; reading its sources does not.
    """
    from hydra.core.object_type import ObjectType

    sources = loader.get_sources()

    def listed(path: str, kind: ObjectType) -> list[str]:
        return sorted({name for source in sources if source.is_group(path) for name in source.list(path, kind)})

    groups = [g for g in listed("", ObjectType.GROUP) if g != "hydra"]
    groups += [f"hydra/{g}" for g in listed("hydra", ObjectType.GROUP)]
    return {g: [c for c in listed(g, ObjectType.CONFIG) if not c.endswith("_schema")] for g in groups}


def config_groups() -> dict[str, list[str]]:
    """Each config group of rlkit (a folder of configs/) -> its choices (the names of its YAML files)."""
    configs = importlib.resources.files(CONFIG_MODULE)
    return {group.name: sorted(f.name.removesuffix(".yaml") for f in group.iterdir() if f.name.endswith(".yaml"))
            for group in configs.iterdir() if group.is_dir() and not group.name.startswith("_")}


def _hydra_group_choices(config_name: str, group: str, searchpath: list[str]) -> list[str] | None:
    """The choices of a group Hydra knows (``hydra/launcher``; any, with ``hydra.searchpath``); None: no such group."""
    from hydra.core.global_hydra import GlobalHydra

    with hydra_configs():
        loader = GlobalHydra.instance().config_loader()
        known = group_choices(loader)
        if group not in known or not searchpath:
            return known.get(group)
        return [c for c in loader.get_group_options(group, config_name=config_name, overrides=searchpath)
                if not c.endswith("_schema")]


def check_group_choices(config_name: str, overrides: list[str]) -> None:
    """Refuse ``GROUP=CHOICE`` naming no config of the group, listing the choices (Hydra's list has ``*_schema``).

    rlkit's groups are read from configs/ without Hydra; Hydra's own (``hydra/launcher``) and configs in directories
    added with ``hydra.searchpath=[...]`` (e.g. a sweep's best preset) are Hydra's to list.
    """
    known = config_groups()
    searchpath = [a for a in overrides if a.lstrip("+").startswith("hydra.searchpath=")]
    for arg in overrides:
        group, sep, value = arg.partition("=")
        group = group.lstrip("~+").split("@")[0]
        if not sep or value in ("", "null") or (group not in known and not group.startswith("hydra/")):
            continue
        choices = known[group] if group in known and not searchpath else \
            _hydra_group_choices(config_name, group, searchpath)
        if choices is None:
            continue
        for choice in value.split(","):  # a multirun sweep lists several choices: each must exist
            if choice not in choices:
                close = difflib.get_close_matches(choice, choices, n=1)
                hint = f" Did you mean {group}={close[0]}?" if close else ""
                raise RlkitError(
                    f"{group}={choice} names no config in group {group!r}; "
                    f"choose one of: {', '.join(choices) or '(none)'}.{hint}"
                )
    _check_preset_fits(config_name, overrides, searchpath)


def _check_preset_fits(config_name: str, overrides: list[str], searchpath: list[str]) -> None:
    """Refuse ``experiment=<preset>`` with an env or agent its keys do not fit, naming the presets that do."""
    given = dict(a.partition("=")[::2] for a in overrides if a.partition("=")[0] in ("experiment", "env", "agent"))
    preset = given.pop("experiment", "")
    if not preset or not given or any("," in v for v in (preset, *given.values())):
        return
    from hydra import compose as hydra_compose
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException

    with hydra_configs():
        fixed = hydra_compose(config_name, [f"experiment={preset}", *searchpath],
                              return_hydra_config=True).hydra.runtime.choices
        changed = {group: value for group, value in given.items() if fixed.get(group) != value}
        if not changed:
            return
        try:
            hydra_compose(config_name, [f"experiment={preset}", *(f"{g}={v}" for g, v in given.items()), *searchpath])
        except ConfigCompositionException as e:
            if f"'experiment/{preset}'" not in str(e):
                return  # another problem: Hydra's own message says it
            env, agent = given.get("env", fixed.get("env")), given.get("agent", fixed.get("agent"))
            loader = GlobalHydra.instance().config_loader()
            fitting = [p for p in loader.get_group_options("experiment", config_name=config_name, overrides=searchpath)
                       if p.startswith(f"{env}_") and p.endswith(f"_{agent}")]
            instead = f"use experiment={' or experiment='.join(fitting)}, or" if fitting else "there is no preset " \
                f"for env={env} agent={agent}:"
            cause = ([line for line in str(e).splitlines()[1:] if line.strip()] or [str(e)])[0].strip()  # Key '...'
            raise RlkitError(f"experiment={preset} is the preset for env={fixed.get('env')} agent={fixed.get('agent')} "
                             f"and sets its keys, which do not fit {' '.join(f'{g}={v}' for g, v in changed.items())} "
                             f"({cause}); {instead} drop experiment=") from None


def check_multirun_args(args: Sequence[str]) -> None:
    """Refuse, before Hydra starts, command lines whose sweep cannot run; each with a one-line reason."""
    multirun = "-m" in args or "--multirun" in args
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            continue
        if key == "hydra/launcher" and value == "ray" and importlib.util.find_spec("ray") is None:
            raise RlkitError("hydra/launcher=ray needs ray, an optional extra: pip install 'rlkit[ray]'")
        if key == "hparams_search" and value not in ("", "null") and not multirun:
            raise RlkitError(f"hparams_search={value} is a hyperparameter search, which runs as a multirun: "
                             f"add -m (rlkit train -m hparams_search={value})")
        if key == "hydra/sweeper" and value == "optuna" and not multirun:
            raise RlkitError("hydra/sweeper=optuna runs as a multirun: add -m")


def check_repeated_keys(overrides: list[str]) -> None:
    """Refuse a key given twice on one command line (Hydra would silently take the last)."""
    seen: dict[str, str] = {}
    for arg in overrides:
        key, sep, _ = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or arg.startswith("-"):
            continue
        if key in seen:
            raise RlkitError(f"{key} is given twice ({seen[key]} and {arg}), and only one can count; give it once")
        seen[key] = arg


def unknown_key_message(full_key: str, owner: str, known: list[str]) -> str:
    """One line for a key no schema declares: the closest valid keys, or all of them when none is close."""
    parent, _, key = full_key.rpartition(".")
    def likeness(other: str) -> float:
        return difflib.SequenceMatcher(None, key, other).ratio()

    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    close = [c for c in close if likeness(c) >= likeness(close[0]) - 0.1]  # the clearly closest, not every near one
    prefix = f"{parent}." if parent else ""
    hint = (f"Did you mean {' or '.join(prefix + c for c in close)}?" if close
            else f"Valid keys of {parent or 'the config'}: {', '.join(sorted(known))}")
    return f"unknown key {full_key!r}: no field {key!r} in {owner}. {hint}"


def _schema_miss(schema: type, parts: list[str], prefix: str = "") -> tuple[str, list[str], str] | None:
    """Where the dotted key ``parts`` leaves ``schema``: (full key, the valid keys there, their owner), or None."""
    hints = typing.get_type_hints(schema)
    name = parts[0]
    if name not in hints:
        return prefix + name, list(hints), schema.__name__
    below = hints[name]
    if len(parts) > 1 and dataclasses.is_dataclass(below):
        return _schema_miss(below, parts[1:], f"{prefix}{name}.")  # type: ignore[arg-type]
    return None  # a leaf, or a dict, list or Any whose keys are free


def check_override_keys(config_name: str, overrides: list[str]) -> None:
    """Refuse ``KEY=VALUE`` naming a key no schema declares, before Hydra (whose message advises ``+KEY``).

    ``env.*`` and ``agent.*`` are checked against the chosen configs' schemas (each choice of a sweep); where an
    experiment or a config outside rlkit's may choose, against every env's or agent's. ``+KEY=VALUE`` too: only
    free mappings (``callbacks.extra``) take new keys. :func:`check_known_keys` checks the composed config again.
    """
    root = TrainConfig if config_name == "train" else EvalRunConfig
    configs = importlib.resources.files(CONFIG_MODULE)
    groups = set(config_groups())
    chosen: dict[str, str] = {}
    for entry in OmegaConf.load(str(configs / f"{config_name}.yaml")).get("defaults", []):
        if isinstance(entry, DictConfig) and len(entry) == 1:
            chosen.update({str(k): "null" if v is None else str(v) for k, v in entry.items()})
    pairs = [arg.partition("=") for arg in overrides]
    chosen.update({key.lstrip("+"): value for key, sep, value in pairs if sep and key.lstrip("+") in groups})
    registries = {"env": ENV_SCHEMAS, "agent": AGENT_SCHEMAS}
    for key, sep, value in pairs:
        key = key.lstrip("+")  # adding a key that no schema declares is refused as well
        if not sep or key[:1] == "~" or "/" in key or "@" in key or key.split(".")[0] == "hydra" or key in groups:
            continue
        parts = key.split(".")
        registry = registries.get(parts[0]) if config_name == "train" else None
        if registry is None or len(parts) == 1:
            miss = _schema_miss(root, parts)
            if miss is not None:
                raise ConfigError(unknown_key_message(miss[0], miss[2], miss[1]))
            _check_value(root, parts, key, value)
            continue
        names = chosen.get(parts[0], "").split(",")
        if chosen.get("experiment", "null") != "null" or any(n not in registry for n in names):
            misses = [_schema_miss(schema, parts[1:], f"{parts[0]}.") for schema in registry.values()]
            if all(misses):  # no env (agent) at all has it
                known = sorted({k for m in misses if m for k in m[1]})
                raise ConfigError(unknown_key_message(misses[0][0], f"any {parts[0]} config", known))  # type: ignore[index]
            continue
        for name in names:
            miss = _schema_miss(registry[name], parts[1:], f"{parts[0]}.")
            if miss is not None:
                raise ConfigError(unknown_key_message(miss[0], f"{parts[0]}={name} ({miss[2]})", miss[1]))
            _check_value(registry[name], parts[1:], key, value)


# Hydra's override grammar (OverrideLexer.g4) for a value of one token: a number, bool or null; a word is a string.
_DIGITS = r"[0-9](_?[0-9])*"
_POINT_FLOAT = rf"({_DIGITS})?\.{_DIGITS}|{_DIGITS}\."
PLAIN_VALUES = {
    "int": re.compile(r"[+-]?(0|[1-9](_?[0-9])*)"),
    "float": re.compile(rf"[+-]?({_POINT_FLOAT}|({_DIGITS}|{_POINT_FLOAT})[eE][+-]?[0-9]+|[Ii][Nn][Ff]|[Nn][Aa][Nn])"),
    "bool": re.compile(r"[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]"),
    "null": re.compile(r"[Nn][Uu][Ll][Ll]"),
    "str": re.compile(r"[A-Za-z0-9_.+/-]+"),
}


def override_value(value: str) -> Any:
    """The value Hydra reads from the right of ``KEY=VALUE``; Hydra's parser only for what is not one plain word.

    Raises ``ValueError`` for a sweep (``1,2``, ``range(3)``) and for what Hydra's parser refuses.
    """
    kind = next((k for k, pattern in PLAIN_VALUES.items() if pattern.fullmatch(value)), None)
    if kind is not None:
        return {"int": int, "float": float, "bool": lambda v: v.lower() == "true", "null": lambda v: None,
                "str": str}[kind](value)
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        (override,) = OverridesParser.create().parse_overrides([f"key={value}"])
    except Exception as e:  # a syntax error: Hydra's parser says where
        raise ValueError(str(e)) from None
    if override.is_sweep_override():
        raise ValueError(f"{value} is a sweep")
    return override.value()


def _check_value(schema: type, parts: list[str], key: str, value: str) -> None:
    """Refuse a value that ``key``'s declared type cannot hold, in one line (Hydra's message takes several)."""
    from omegaconf.errors import ValidationError

    try:
        parsed = override_value(value)
    except ValueError:  # a sweep's values are checked one by one in its jobs; Hydra reports a syntax error
        return
    try:
        OmegaConf.update(OmegaConf.structured(schema), ".".join(parts), parsed, merge=True)
    except ValidationError as e:
        raise ConfigError(f"{key}={value}: {str(e).splitlines()[0]}") from None
