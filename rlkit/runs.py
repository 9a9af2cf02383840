"""Run directories: reading a run's config and events back, claiming a directory, what ``resume=`` continues."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml
from hydra import compose
from hydra.core.override_parser.types import Quote, QuotedString
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.config import TrainConfig, check_known_keys, hydra_configs
from rlkit.errors import ConfigError, RlkitError, RunDirError, RunStopped, user_errors

CONFIG_FILE = Path(".hydra") / "config.yaml"
SUMMARY_FILE = "summary.json"
FILES_FILE = "files.json"  # the SHA-256 of every file the run wrote (WRITTEN), recorded when it finished
WRITTEN = (SUMMARY_FILE, "checkpoints/*.safetensors", "tb/**/*")
MAX_YAML_BYTES = 1 << 20  # a run's config is a few KB
SWEEP_MARKER = ".rlkit-sweep"  # created exclusively when a sweep starts: the directory is that sweep's
RUN_LOCK = ".rlkit-lock"  # locked by the process training in a run directory (it holds that process's id)
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


def read_yaml(path: Path) -> Any:
    """A YAML file of a run directory as OmegaConf data, unresolved; bounded in size, without aliases or tags."""
    if path.stat().st_size > MAX_YAML_BYTES:
        raise RunDirError(f"{path} is {path.stat().st_size >> 20} MiB, over the limit of {MAX_YAML_BYTES >> 20} MiB "
                          "for a run's config (rlkit writes a few KB): refused")
    text = path.read_text(errors="replace")
    try:
        # Aliases are refused before anything is built: a few nested ones expand into billions of nodes.
        alias = next((t for t in yaml.scan(text, Loader=yaml.SafeLoader) if isinstance(t, yaml.AliasToken)), None)
        if alias is not None:
            raise RunDirError(f"{path} uses the YAML alias *{alias.value} ({alias.start_mark.line + 1}:"
                              f"{alias.start_mark.column + 1}): refused, rlkit never writes aliases and they can "
                              "expand without bound")
        return OmegaConf.create(text)  # a safe YAML loader: tags such as !!python/object are errors, never calls
    except RunDirError:
        raise
    except Exception as e:  # YAML scanner/parser errors have no common base class worth naming
        tag = re.search(r"tag:yaml.org,2002:(python/\S*?)'", str(e))
        if tag:
            raise RunDirError(f"{path} holds the YAML tag !!{tag.group(1)}, which would run code: refused. rlkit "
                              "reads a run's config as plain data and never runs code from it") from None
        raise RunDirError(f"{path} is corrupt: {e}") from None


def _refuse_resolvers(path: Path, plain: Any) -> None:
    if resolver := re.search(r"\$\{[^}]*:[^}]*\}", str(plain)):
        raise RunDirError(f"{path} calls the resolver {resolver.group(0)}: refused. rlkit reads a run's config as "
                          "plain data, without resolvers that read the environment")


RUNS_ROOT = Path("runs")  # where ``rlkit train`` puts runs (train.yaml's hydra.run.dir), relative to the working dir


def resolve_run(run: str | Path) -> Path:
    """The run directory that ``run=`` names: ``latest``, a run directory, or a folder of runs.

    ``latest`` is the newest run under ``runs/``; a folder of runs (e.g. ``runs/balancing_pole/dqn``) gives the newest
    in it; newest by when its config was written.

    Anything else comes back as given, for :func:`load_run_config` to say what is wrong with it.
    """
    folder = RUNS_ROOT if str(run) == "latest" else Path(run).expanduser()
    if str(run) != "latest" and (not folder.is_dir() or (folder / CONFIG_FILE).is_file()):
        return folder
    configs = [p for p in folder.glob(f"**/{CONFIG_FILE.as_posix()}") if p.is_file()]
    if configs:
        return max(configs, key=lambda p: p.stat().st_mtime).parent.parent
    if str(run) == "latest":
        raise RunDirError(f"run=latest: there is no run under {RUNS_ROOT}/ (in {Path.cwd()}); train one with "
                          "rlkit train, or give run=<run dir>")
    return folder


def load_run_config(run_dir: Path, trust: bool = False) -> TrainConfig:
    """A run's typed config, read as data: no resolvers; code it names (:func:`named_code`) only with ``trust``."""
    from rlkit.factory import lookup  # Gymnasium: Hydra's plug-in scan imports this module, for every command

    if not run_dir.exists():
        raise RunDirError(f"run directory {run_dir} does not exist")
    if not run_dir.is_dir():
        raise RunDirError(f"run={run_dir} is not a directory")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not an rlkit run directory: {CONFIG_FILE} is missing")
    raw = read_yaml(path)
    if not OmegaConf.is_dict(raw) or "env" not in raw or "agent" not in raw:
        raise RunDirError(f"{path} is corrupt: it has no env and agent sections")
    plain = OmegaConf.to_container(raw, resolve=False)
    _refuse_resolvers(path, plain)
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
        node = OmegaConf.to_container(read_yaml(path), resolve=False)
        for key in keys:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        return [str(o) for o in node] if isinstance(node, list) else []

    common = set(overrides(run_dir.parent / "multirun.yaml", "hydra", "overrides", "task"))
    others = ",".join(o for o in overrides(run_dir / CONFIG_FILE.parent / "overrides.yaml")
                      if o not in common and not o.lstrip("+~").startswith(NOT_IN_NAME))
    name = "__".join([env, agent, f"seed={seed}", *([others] if others else [])])
    return re.sub(r"[^\w.,=+@-]", "_", name)[:200]  # one folder name: no / or : from an env id or a value


def read_events(tb_dir: Path) -> Any:
    """A run's TensorBoard events as an ``EventAccumulator``: every scalar."""
    tb_dir = event_dir(tb_dir)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})  # 0: all, not a sample of 10,000
    tb_log = logging.getLogger("tensorboard")
    level = tb_log.level
    tb_log.setLevel(logging.ERROR)  # it warns of a last record cut short by a kill (damaged_events names it)
    try:
        acc.Reload()
    finally:
        tb_log.setLevel(level)
    return acc


def damaged_events(tb_dir: Path) -> list[str]:
    """Event files in ``tb_dir`` whose records are cut off, as messages; TensorBoard's reader stops there silently.

    In each folder only the newest file is checked: an older one is the first part of a continued run, killed,
    and what it lost after its checkpoint was written again in the newer one.
    """
    def created(path: Path) -> tuple[int, str]:  # events.out.tfevents.<unix time>.<host>.<pid>.<n>
        stamp = path.name.split(".")[3]
        return int(stamp) if stamp.isdigit() else 0, path.name

    newest: dict[Path, Path] = {}
    for path in tb_dir.rglob("events.out.tfevents.*"):
        if path.parent not in newest or created(path) > created(newest[path.parent]):
            newest[path.parent] = path
    found = []
    for path in sorted(newest.values()):
        size, pos = path.stat().st_size, 0
        with open(path, "rb") as f:
            while pos < size:  # a record: its length (8 bytes), their CRC (4), the data, its CRC (4)
                f.seek(pos)
                head = f.read(8)
                end = pos + 12 + int.from_bytes(head, "little") + 4 if len(head) == 8 else size + 1
                if end > size:
                    found.append(f"{path} is truncated or damaged: its record at byte {pos} of {size} is cut off, "
                                 "so every value logged after it is missing")
                    break
                pos = end
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _written(run_dir: Path) -> dict[str, Path]:
    return {p.relative_to(run_dir).as_posix(): p for pattern in WRITTEN for p in sorted(run_dir.glob(pattern))
            if p.is_file()}


def record_files(run_dir: Path) -> None:
    """Write ``files.json``: the SHA-256 of each file the finished run wrote (:data:`WRITTEN`)."""
    from rlkit.files import write_json  # torch: only once a run has trained

    write_json(run_dir / FILES_FILE, {"sha256": {name: _sha256(p) for name, p in _written(run_dir).items()}})


def changed_files(run_dir: Path, names: Iterable[str] | None = None) -> list[str]:
    """Files the run wrote that changed, went missing or were added since (``files.json``), as messages.

    ``names`` (paths relative to the run) limits the check to them; a run without ``files.json`` (unfinished,
    or from an older rlkit) has nothing to check.
    """
    path = run_dir / FILES_FILE
    if not path.is_file():
        return []
    try:
        recorded = json.loads(path.read_bytes()).get("sha256")
    except (ValueError, RecursionError, AttributeError):  # not JSON, nested too deeply, not an object
        recorded = None
    if not isinstance(recorded, dict):
        return [f"{path} is corrupt: it is not a JSON object of the files' sha256"]
    present = _written(run_dir)
    found = []
    for name in sorted(set(recorded) | set(present) if names is None else names):
        if name not in recorded:
            found.append(f"{run_dir / name} was not written by the run (it is not in {FILES_FILE})")
        elif name not in present:
            found.append(f"{run_dir / name} is missing (the run wrote it)")
        elif _sha256(present[name]) != recorded[name]:
            found.append(f"{run_dir / name} changed after the run wrote it (its SHA-256 is not the one in "
                         f"{FILES_FILE})")
    return found


def keep_events(tb_dir: Path, last_step: int | None) -> None:
    """Cut a run's TensorBoard events back to the steps up to ``last_step`` (None: none), before it continues.

    What a continued run logs again then appears once, for every reader of event files. The kept records are
    written into ``<tb>.new/`` (same file names), which then replaces ``tb/`` by two renames; a kill at any point
    leaves the old or the new events whole, and the next start finishes or undoes the swap.
    """
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    from rlkit.files import fsync_dir

    new, old = tb_dir.with_name(f"{tb_dir.name}.new"), tb_dir.with_name(f"{tb_dir.name}.old")
    if not tb_dir.exists() and new.exists():
        new.rename(tb_dir)  # killed between the renames: the new events are complete
    shutil.rmtree(new, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    if not tb_dir.is_dir():
        return
    if last_step is None:
        shutil.rmtree(tb_dir)
        return
    tb_log = logging.getLogger("tensorboard")
    level = tb_log.level
    tb_log.setLevel(logging.ERROR)  # it warns of a last record cut short by a kill: that one is dropped
    try:
        for path in sorted(tb_dir.rglob("events.out.tfevents.*")):
            target = new / path.relative_to(tb_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as f:
                writer = RecordWriter(f)
                for record in RawEventFileLoader(str(path)).Load():
                    if Event.FromString(record).step <= last_step:
                        writer.write(record)
                f.flush()
                os.fsync(f.fileno())
    finally:
        tb_log.setLevel(level)
    new.mkdir(exist_ok=True)
    for directory in (*(p for p in new.rglob("*") if p.is_dir()), new):
        fsync_dir(directory)
    tb_dir.rename(old)
    new.rename(tb_dir)
    fsync_dir(tb_dir.parent)
    shutil.rmtree(old)


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
    key = "hydra.sweep.dir" if marker == SWEEP_MARKER else "hydra.run.dir"
    path, is_dir = directory / marker, marker.endswith("/")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.mkdir() if is_dir else path.open("x").close()
    except FileExistsError:
        if not directory.is_dir():
            raise RunDirError(f"cannot create the directory {directory}: a file is in the way. "
                              f"Choose another {key}") from None
        found = [marker]
    except OSError as e:  # a read-only file system, a name too long, no permission
        raise RunDirError(f"cannot create the directory {directory}: {e.strerror or e}. "
                          f"Choose another {key}") from None
    else:
        found = [n for n in leftovers if (directory / n).exists()]
        if found:
            path.rmdir() if is_dir else path.unlink()
    if found:
        unfinished = (directory / CONFIG_FILE).is_file() and not (directory / SUMMARY_FILE).exists()
        raise RunDirError(
            f"{directory} already holds another run ({found[0]} exists); rlkit never writes into another run's "
            "directory. Choose a new hydra.run.dir (hydra.sweep.dir for -m), or leave it to the default, which is "
            "new for every start" + (f"; to continue that run: rlkit train {shlex.quote(f'resume={directory}')}"
                                     if unfinished else "")
        )


HYDRA_FILES = frozenset({"config.yaml", "hydra.yaml", "overrides.yaml"})  # what Hydra writes into .hydra/


@contextlib.contextmanager
def removed_if_refused(run_dir: Path, log_file: str, new: bool = True) -> Iterator[None]:
    """Remove a ``new`` run's directory if the block fails before anything but Hydra's files is in it.

    A config refused after Hydra made the directory (a value out of range, more memory than the machine has)
    then leaves nothing behind: its folder goes, and the empty folders above it inside the working directory.
    """
    try:
        yield
    except RunStopped:  # a deliberate stop: its message says how to continue the run, so the directory stays
        raise
    except Exception:
        if new and _only_hydra_files(run_dir, log_file):
            unlock_run_dir(run_dir)
            shutil.rmtree(run_dir, ignore_errors=True)
            cwd = Path.cwd().resolve()
            for parent in run_dir.resolve().parents:
                if cwd not in parent.parents:
                    break
                try:
                    parent.rmdir()  # only if empty
                except OSError:
                    break
        raise


def _only_hydra_files(run_dir: Path, log_file: str) -> bool:
    try:
        names = {p.name for p in run_dir.iterdir()}
        hydra = {p.name for p in (run_dir / ".hydra").iterdir()}
    except OSError:
        return False
    return names <= {".hydra", log_file, RUN_LOCK} and hydra <= HYDRA_FILES


_locks: dict[Path, IO[str]] = {}  # the run directories this process trains in, and their open lock files


def lock_run_dir(run_dir: Path) -> None:
    """Lock ``run_dir`` for this process until :func:`unlock_run_dir` or its end: a second process is refused.

    An ``flock`` on :data:`RUN_LOCK`: the system drops it when the process ends, however it ends.
    """
    key = run_dir.resolve()
    unlock_run_dir(key)  # an earlier run in this process that ended without unlocking (an error)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        f = open(run_dir / RUN_LOCK, "a+")  # noqa: SIM115  (open while the run trains)
    except OSError as e:
        raise RunDirError(f"cannot train in {run_dir}: {e.strerror or e} ({e.filename or run_dir})") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip()
        f.close()
        raise RunDirError(f"{run_dir} is in use: process {pid or '(starting)'} trains in it. Wait for it to end, or "
                          "stop it (SIGTERM) and continue the run afterwards with resume=") from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    _locks[key] = f


def unlock_run_dir(run_dir: Path) -> None:
    """Release :func:`lock_run_dir`'s lock, if this process holds it."""
    f = _locks.pop(run_dir.resolve(), None)
    if f is not None:
        f.close()


class ClaimRunDir(Callback):
    """Hydra callback (in ``train.yaml``): claim the run's or sweep's directory before Hydra writes into it.

    A run's process also locks its directory while it trains (:func:`lock_run_dir`), so a ``resume=`` of a run that
    is still going (or of one another ``resume=`` continues) is refused.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim ``hydra.run.dir`` (unless the run continues in it: ``resume=``, the directory is its own); lock it."""
        run_dir = Path(str(config.hydra.run.dir))
        with user_errors():
            if config.get("resume") is None:
                claim_run_dir(run_dir, str(config.hydra.output_subdir or ".hydra"))
            lock_run_dir(run_dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Lock a sweep's job's directory (a new one: only a ``resume=`` of it could compete)."""
        if config.hydra.mode == RunMode.MULTIRUN:
            lock_run_dir(Path(config.hydra.runtime.output_dir))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Unlock the run's directory."""
        unlock_run_dir(Path(config.hydra.runtime.output_dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim ``hydra.sweep.dir``."""
        with user_errors():
            claim_sweep_dir(Path(str(config.hydra.sweep.dir)))


# Overrides a continued run may change: how it reports and checkpoints, not what it computes.
RESUME_MAY_CHANGE = ("callbacks.progress_bar=", "callbacks.checkpoint.", "torch_threads=")


def resume_overrides(args: list[str], trust: bool = False) -> list[str]:
    """``resume=<run dir>`` (or ``resume=auto``) as the overrides that continue that run, in its own directory.

    Only its overrides of :data:`CONFIG_KEYS` are replayed; ``trust`` as for :func:`load_run_config`. A run stopped
    before its first training checkpoint starts again from step 0.
    """
    from rlkit.resume import RESUME_DIR, checkpoints  # torch: only once a run is to be continued

    value = _unquote(next(a.split("=", 1)[1] for a in args if a.startswith("resume=")))
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
        others = [a for a in others if not a.startswith("hydra.run.dir=")]
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
    if not checkpoints(run / RESUME_DIR):
        print(f"resume: {run} stopped before its first training checkpoint; starting it again from step 0",
              file=sys.stderr)
    saved = read_yaml(run / ".hydra" / "overrides.yaml")
    keys = {a.split("=", 1)[0] for a in others}
    kept = [str(o) for o in saved if str(o).split("=", 1)[0] not in keys
            and str(o).lstrip("+~").split("=", 1)[0].split(".", 1)[0].split("@", 1)[0] in CONFIG_KEYS]
    quoted = QuotedString(text=str(run), quote=Quote.single).with_quotes()  # a path may hold spaces, quotes, =
    return [*kept, *others, f"resume={quoted}", f"hydra.run.dir={quoted}"]


def _unquote(value: str) -> str:
    """A value the shell passed on with its quotes (``resume="'my runs/x'"``) without them."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def find_unfinished_run(overrides: list[str]) -> Path | None:
    """The newest unfinished run with these overrides' config and a checkpoint, beside where a new one would go.

    With ``hydra.run.dir=`` among the overrides (a scheduler's requeue), only that directory, checkpoint or not.
    """
    from rlkit.resume import RESUME_DIR, checkpoints

    with hydra_configs():
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    fixed = any(a.startswith("hydra.run.dir=") for a in overrides)
    wanted = _comparable(cfg)
    candidates = []
    for run in [Path(str(cfg.hydra.run.dir))] if fixed else Path(str(cfg.hydra.run.dir)).parent.glob("*"):
        config = run / CONFIG_FILE
        found = checkpoints(run / RESUME_DIR)
        if not config.is_file() or (run / SUMMARY_FILE).is_file() or not (found or fixed):
            continue
        try:
            saved = read_yaml(config)
            _refuse_resolvers(config, OmegaConf.to_container(saved, resolve=False))
            same = _comparable(saved) == wanted
        except Exception:  # an unreadable config, or one calling resolvers, is some other run's problem, not a match
            continue
        if same:
            candidates.append((found[-1].stat().st_mtime if found else 0.0, run))
    return max(candidates)[1] if candidates else None


def _comparable(cfg: DictConfig) -> Any:
    """A composed or saved training config as plain values, without Hydra's section and ``resume``.

    A saved one is resolved only once :func:`_refuse_resolvers` passed it: its interpolations name its own keys.
    """
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k not in ("hydra", "resume")]),
                                  resolve=True)
