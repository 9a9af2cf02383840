"""Run directories: reading a run's config and events back, claiming a directory, what ``resume=`` continues."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

from hydra import compose
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.config import TrainConfig, check_known_keys, hydra_configs
from rlkit.errors import ConfigError, RlkitError, RunDirError, user_errors
from rlkit.factory import lookup

CONFIG_FILE = Path(".hydra") / "config.yaml"
SUMMARY_FILE = "summary.json"
SWEEP_MARKER = ".rlkit-sweep"  # created exclusively when a sweep starts: the directory is that sweep's
# Overrides a continued run replays from its overrides.yaml: config keys, never Hydra's own (callbacks, launchers).
CONFIG_KEYS = ("env", "agent", "callbacks", "experiment", "hparams_search", "seed", "total_steps", "torch_threads")


def named_code(raw: Any) -> list[str]:
    """What loading a run's config would import or call: modules named by ids and plug-in callbacks."""
    found = []
    env = raw.get("env") or {}
    if env.get("name") in ("gym", "pettingzoo") and ":" in str(env.get("id", "")):
        found.append(f"env.id={env['id']} (imports {str(env['id']).partition(':')[0]})")
    for key, spec in (raw.get("callbacks") or {}).get("extra", {}).items():
        target = str(spec.get("_target_", "")) if isinstance(spec, dict) else ""
        if not target.startswith("rlkit."):
            found.append(f"callbacks.extra.{key}._target_={target}")
    return found


def load_run_config(run_dir: Path, trust: bool = False) -> TrainConfig:
    """A run's typed config, read as data: no resolvers; code it names (:func:`named_code`) only with ``trust``."""
    if not run_dir.exists():
        raise RunDirError(f"run directory {run_dir} does not exist")
    if not run_dir.is_dir():
        raise RunDirError(f"run={run_dir} is not a directory")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not an rlkit run directory: {CONFIG_FILE} is missing")
    try:
        raw = OmegaConf.load(path)  # a safe YAML loader: tags such as !!python/object are errors, never calls
    except Exception as e:  # YAML scanner/parser errors have no common base class worth naming
        tag = re.search(r"tag:yaml.org,2002:(python/\S*?)'", str(e))
        if tag:
            raise RunDirError(f"{path} holds the YAML tag !!{tag.group(1)}, which would run code: refused. rlkit "
                              "reads a run's config as plain data and never runs code from it") from None
        raise RunDirError(f"{path} is corrupt: {e}") from None
    if not OmegaConf.is_dict(raw) or "env" not in raw or "agent" not in raw:
        raise RunDirError(f"{path} is corrupt: it has no env and agent sections")
    plain = OmegaConf.to_container(raw, resolve=False)
    if resolver := re.search(r"\$\{[^}]*:[^}]*\}", str(plain)):
        raise RunDirError(f"{path} calls the resolver {resolver.group(0)}: refused. rlkit reads a run's config as "
                          "plain data, without resolvers that read the environment")
    if (code := named_code(plain)) and not trust:
        raise RunDirError(f"{path} names code that would run: {', '.join(code)}. rlkit runs no code from a run "
                          "directory unless you trust where it came from: add trust_run=true to allow it")
    try:
        env_type, agent_schema = lookup("env", raw.env.name)[0], lookup("agent", raw.agent.name)[0]
    except (KeyError, OmegaConfBaseException, ConfigError) as e:
        raise RunDirError(f"{path} names an env or agent this version of rlkit does not know ({e})") from None
    try:
        merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), {"env": env_type, "agent": agent_schema}, raw)
        check_known_keys(merged)
        cfg = OmegaConf.to_object(merged)
    except (OmegaConfBaseException, ConfigError) as e:
        raise RunDirError(f"{path} does not fit the current config schema: {e}") from None
    assert isinstance(cfg, TrainConfig)
    return cfg


def event_dir(tb_dir: Path) -> Path:
    """The folder of a run's event files: ``tb/<run name>/``, or ``tb/`` itself in a run written before it was named."""
    if any(tb_dir.glob("events.out.tfevents.*")):  # such a run, continued, has its threshold run in tb/threshold/
        return tb_dir
    named = sorted(p.parent for p in tb_dir.glob("*/events.out.tfevents.*"))
    return named[0] if named else tb_dir


# Overrides that change how a run is shown or where it goes, not what it is: left out of its TensorBoard name.
NOT_IN_NAME = ("env=", "agent=", "seed=", "hydra", "callbacks.progress_bar=", "callbacks.tensorboard=", "resume=",
               "trust_run=", "torch_threads=")


def tb_run_name(run_dir: Path, env: str, agent: str, seed: int) -> str:
    """The run's name in TensorBoard's run list: ``<env>__<agent>__seed=<seed>``, then its other overrides.

    A sweep's job names the overrides that vary between its jobs (those its sweep was not given as they are), so
    it reads ``balancing_pole__dqn__seed=1__agent.learning_rate=0.001`` rather than ``multirun/<time>/3/tb``.
    """
    def overrides(path: Path, *keys: str) -> list[str]:
        if not path.is_file():
            return []
        node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        for key in keys:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        return [str(o) for o in node] if isinstance(node, list) else []

    common = set(overrides(run_dir.parent / "multirun.yaml", "hydra", "overrides", "task"))
    others = ",".join(o for o in overrides(run_dir / CONFIG_FILE.parent / "overrides.yaml")
                      if o not in common and not o.lstrip("+~").startswith(NOT_IN_NAME))
    name = "__".join([env, agent, f"seed={seed}", *([others] if others else [])])
    return re.sub(r"[^\w.,=+@-]", "_", name)[:200]  # one folder name: no / or : from an env id or a value


def read_events(tb_dir: Path) -> Any:
    """A run's TensorBoard events as an ``EventAccumulator``: every scalar, without those a continued run purged."""
    tb_dir = event_dir(tb_dir)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})  # 0: all, not a sample of 10,000
    tb_log = logging.getLogger("tensorboard")
    level = tb_log.level
    tb_log.setLevel(logging.ERROR)  # it warns of the purge a continued run asked for
    try:
        acc.Reload()
    finally:
        tb_log.setLevel(level)
    return acc


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as one level of dotted keys; lists and empty mappings stay values."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}{key}." if isinstance(value, dict) and value else f"{prefix}{key}"))
    return out


def claim_run_dir(run_dir: Path, marker: str = ".hydra") -> None:
    """Make ``run_dir`` this run's own by one atomic ``mkdir`` of ``marker`` (of two processes, one gets it).

    A directory with another run's marker, summary, checkpoints or TensorBoard events is refused.
    """
    _claim(run_dir, f"{marker}/", (SUMMARY_FILE, "checkpoints", "tb"))


def claim_sweep_dir(sweep_dir: Path) -> None:
    """:func:`claim_run_dir` for a multirun's directory (its jobs' run directories are numbered inside it)."""
    _claim(sweep_dir, SWEEP_MARKER, ("multirun.yaml", "jobs.csv", "0"))


def _claim(directory: Path, marker: str, leftovers: tuple[str, ...]) -> None:
    """Create ``marker`` (a directory if it ends in /, else a file) exclusively; refuse ``leftovers``."""
    directory.mkdir(parents=True, exist_ok=True)
    path, is_dir = directory / marker, marker.endswith("/")
    try:
        path.mkdir() if is_dir else path.open("x").close()
    except FileExistsError:
        found = [marker]
    else:
        found = [n for n in leftovers if (directory / n).exists()]
        if found:
            path.rmdir() if is_dir else path.unlink()
    if found:
        raise RunDirError(
            f"{directory} already holds another run ({found[0]} exists); rlkit never writes into another run's "
            "directory. Choose a new hydra.run.dir (hydra.sweep.dir for -m), or leave it to the default, which is "
            "new for every start"
        )


class ClaimRunDir(Callback):
    """Hydra callback (in ``train.yaml``): claim the run's or sweep's directory before Hydra writes into it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim ``hydra.run.dir``, unless the run continues in it (``resume=``: the directory is its own)."""
        if config.get("resume") is not None:
            return
        with user_errors():
            claim_run_dir(Path(str(config.hydra.run.dir)), str(config.hydra.output_subdir or ".hydra"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim ``hydra.sweep.dir``."""
        with user_errors():
            claim_sweep_dir(Path(str(config.hydra.sweep.dir)))


# Overrides a continued run may change: how it reports and checkpoints, not what it computes.
RESUME_MAY_CHANGE = ("callbacks.progress_bar=", "callbacks.checkpoint.", "torch_threads=")


def resume_overrides(args: list[str], trust: bool = False) -> list[str]:
    """``resume=<run dir>`` (or ``resume=auto``) as the overrides that continue that run, in its own directory.

    Only its overrides of :data:`CONFIG_KEYS` are replayed; ``trust`` as for :func:`load_run_config`.
    """
    from rlkit.resume import latest_checkpoint  # torch: only once a run is to be continued

    value = next(a.split("=", 1)[1] for a in args if a.startswith("resume="))
    others = [a for a in args if not a.startswith("resume=")]
    if "-m" in others or "--multirun" in others:
        raise RlkitError("resume= continues one run; it cannot be combined with -m")
    if value in ("", "null"):
        return others
    if value == "auto":
        run = find_unfinished_run(others)
        if run is None:
            print("resume=auto: no unfinished run of this config with a checkpoint; starting a new run",
                  file=sys.stderr)
            return others
        print(f"resume=auto: continuing {run}", file=sys.stderr)
    else:
        run = Path(value)
        changed = [a for a in others if not a.startswith(RESUME_MAY_CHANGE)]
        if changed:
            raise RlkitError(
                f"resume={value} continues the run with its own config, so it takes no other overrides "
                f"(got {' '.join(changed)}); only {', '.join(k.rstrip('=.') for k in RESUME_MAY_CHANGE)} may change"
            )
    load_run_config(run, trust)  # a clear error for a missing or corrupt run directory, or one naming code
    if (run / SUMMARY_FILE).is_file():
        raise RlkitError(f"{run} has finished ({SUMMARY_FILE} exists): there is nothing to continue")
    latest_checkpoint(run)  # a clear error if there is no checkpoint
    saved = OmegaConf.load(run / ".hydra" / "overrides.yaml")
    keys = {a.split("=", 1)[0] for a in others}
    kept = [str(o) for o in saved if str(o).split("=", 1)[0] not in keys
            and str(o).lstrip("+~").split("=", 1)[0].split(".", 1)[0].split("@", 1)[0] in CONFIG_KEYS]
    return [*kept, *others, f"resume={run}", f"hydra.run.dir={run}"]


def find_unfinished_run(overrides: list[str]) -> Path | None:
    """The newest unfinished run with these overrides' config and a checkpoint, beside where a new one would go."""
    from rlkit.resume import RESUME_DIR, checkpoints

    with hydra_configs():
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    parent = Path(str(cfg.hydra.run.dir)).parent
    wanted = _comparable(cfg)
    candidates = []
    for run in parent.glob("*"):
        config = run / CONFIG_FILE
        found = checkpoints(run / RESUME_DIR)
        if not config.is_file() or (run / SUMMARY_FILE).is_file() or not found:
            continue
        try:
            same = _comparable(OmegaConf.load(config)) == wanted
        except Exception:  # an unreadable config is some other run's problem, not a match
            continue
        if same:
            candidates.append((found[-1].stat().st_mtime, run))
    return max(candidates)[1] if candidates else None


def _comparable(cfg: DictConfig) -> Any:
    """A composed or saved training config as plain values, without Hydra's section and ``resume``."""
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k not in ("hydra", "resume")]),
                                  resolve=True)
