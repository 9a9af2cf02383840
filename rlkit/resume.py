"""Continuing interrupted runs: training checkpoints (docs/runs.md), the checkpointing callback."""

from __future__ import annotations

import json
import logging
import os
import random
import shlex
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlkit.callbacks import Callback
from rlkit.config import CheckpointConfig
from rlkit.errors import DISK_FULL, DiskFullError, RunDirError, RunStopped
from rlkit.files import check_fields, fsync_dir, parse_json
from rlkit.signals import GUARD

log = logging.getLogger(__name__)

RESUME_DIR = Path("checkpoints") / "resume"
STATE_FORMAT = 2  # 2: env snapshots through the state protocol (rlkit.envs.state)
STATE_SCHEMA = {"format": int, "step": int, "env": str, "agent": str, "elapsed": float, "agent_state": dict,
                "callbacks": dict, "rng": dict}
"""The keys of a training checkpoint's ``state.json`` and their types, checked before any is used."""


class RunInterrupted(RunStopped):
    """A run stopped on a signal, its checkpoint written; the CLI exits with :data:`EXIT_INTERRUPTED`."""


def pack(tree: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """Split a tree of dicts, lists and values into JSON and arrays; arrays become ``{"__array__": key}``."""
    arrays: dict[str, np.ndarray] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, np.ndarray):
            arrays[key := f"a{len(arrays)}"] = node
            return {"__array__": key}
        if isinstance(node, torch.Tensor):
            arrays[key := f"a{len(arrays)}"] = node.detach().cpu().numpy().copy()
            return {"__array__": key, "torch": True}
        if isinstance(node, dict):
            return {str(k): walk(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v) for v in node]
        return node.item() if isinstance(node, np.generic) else node

    return walk(tree), arrays


def unpack(doc: Any, arrays: Any) -> Any:
    """Inverse of :func:`pack`."""
    if isinstance(doc, dict):
        if "__array__" in doc:
            value = np.array(arrays[str(doc["__array__"])])
            return torch.from_numpy(value) if doc.get("torch") else value
        return {k: unpack(v, arrays) for k, v in doc.items()}
    if isinstance(doc, list):
        return [unpack(v, arrays) for v in doc]
    return doc


def global_rng_state() -> dict[str, Any]:
    """Python's, NumPy's (legacy global) and torch's random states."""
    version, internal, gauss = random.getstate()
    return {"python": [version, list(internal), gauss], "numpy": np.random.get_state(legacy=False),
            "torch": torch.get_rng_state()}


@dataclass
class TrainingCheckpoint:
    """A training checkpoint read back: where it is, its step, and its state (arrays restored)."""

    path: Path
    step: int
    state: dict[str, Any]

    def restore_rng(self) -> None:
        """Put back Python's, NumPy's and torch's global random states (:func:`global_rng_state`)."""
        version, internal, gauss = self.state["rng"]["python"]
        random.setstate((version, tuple(internal), gauss))
        np.random.set_state(self.state["rng"]["numpy"])
        torch.set_rng_state(self.state["rng"]["torch"])


def restore(checkpoint: TrainingCheckpoint, agent: Any, callbacks: Callback, identity: dict[str, str],
            copies: str = "sync") -> None:
    """Put a training checkpoint's state into a freshly built agent and callbacks (before training starts).

    ``copies``: the run's ``env.vectorization``; copies in other processes (async, ray) cannot be recorded, so
    they start new episodes, said in one line.
    """
    state = checkpoint.state
    if {k: state.get(k) for k in identity} != identity:
        raise RunDirError(f"training checkpoint {checkpoint.path} is of {state.get('agent')!r} on "
                          f"{state.get('env')!r}, but this run trains {identity['agent']!r} on {identity['env']!r}")
    agent.load(checkpoint.path / "agent.safetensors")
    try:
        agent.load_training_state(state["agent_state"])
        callbacks.load_state_dict(state["callbacks"])
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as e:
        raise RunDirError(f"training checkpoint {checkpoint.path} does not fit this run ({e})") from None
    if copies != "sync":
        log.warning("env.vectorization=%s: the env copies live in other processes, which a checkpoint cannot record; "
                    "the agent, its optimizer, buffers and callbacks resume exactly, the copies start new episodes, so "
                    "the continued run will not repeat the uninterrupted run exactly", copies)
    elif not state["agent_state"].get("envs_exact", True):
        log.warning("%s cannot record its environments' state (only rlkit's own environments can): the continued "
                    "run starts new episodes, so it will not repeat the uninterrupted run exactly", identity["env"])


def write_checkpoint(directory: Path, step: int, agent: Any, state: dict[str, Any]) -> Path:
    """Write ``<directory>/step_<step>/`` atomically: files fsynced in a temporary directory, then renamed."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step_{step:012d}"
    if (final / "state.json").is_file():
        return final  # the same step again (a stop signal right after a periodic checkpoint)
    tmp = Path(tempfile.mkdtemp(prefix=f".step_{step:012d}.", suffix=".tmp", dir=directory))
    try:
        agent.save(tmp / "agent.safetensors", {"step": step})
        doc, arrays = pack({"format": STATE_FORMAT, "step": step, **state})
        for name, write in (("state.npz", lambda f: np.savez(f, **arrays)),
                            ("state.json", lambda f: f.write(json.dumps(doc).encode()))):
            with open(tmp / name, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        fsync_dir(tmp)
        os.replace(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (isinstance(e, OSError) and e.errno in DISK_FULL):
            raise
        previous = checkpoints(directory)
        kept = f"the previous one, {previous[-1]}, is intact" if previous else "there was no earlier one"
        raise DiskFullError(f"disk full while writing the training checkpoint {final} ({e.strerror or e}); {kept}. "
                            "Free some space and continue with rlkit train resume=<run dir>") from e
    fsync_dir(directory)
    return final


def read_checkpoint(path: Path) -> TrainingCheckpoint:
    """Read a training checkpoint directory; clear errors if it is missing, incomplete, corrupt or altered.

    ``state.json`` is checked against :data:`STATE_SCHEMA` and its directory's step; of ``state.npz`` only the
    arrays ``state.json`` refers to are read, each after its header (:func:`_read_arrays`).
    """
    doc_path, npz_path = path / "state.json", path / "state.npz"
    for p in (doc_path, npz_path, path / "agent.safetensors"):
        if not p.is_file():
            raise RunDirError(f"training checkpoint {path} is incomplete: {p.name} is missing")
    doc = parse_json(doc_path.read_bytes(), f"training checkpoint {doc_path}")
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise RunDirError(f"training checkpoint {doc_path} is not in rlkit's format {STATE_FORMAT} (another rlkit "
                          "version wrote it?); it cannot be continued: start the run anew")
    where = f"training checkpoint {doc_path}"
    check_fields(doc, STATE_SCHEMA, where)
    if f"step_{doc['step']:012d}" != path.name:
        raise RunDirError(f"{where} is corrupt: its step is {doc['step']}, but it is in {path.name}: refused (the "
                          "file was altered or moved)")
    state = unpack(doc, _read_arrays(npz_path, _array_names(doc)))
    _check_rng(where, state["rng"])
    return TrainingCheckpoint(path=path, step=doc["step"], state=state)


def _array_names(doc: Any) -> set[str]:
    """The ``state.npz`` members a ``state.json`` refers to (:func:`pack`)."""
    if isinstance(doc, dict):
        if "__array__" in doc:
            return {str(doc["__array__"])}
        return set().union(*map(_array_names, doc.values()))
    if isinstance(doc, list):
        return set().union(*map(_array_names, doc))
    return set()


def _read_arrays(npz_path: Path, names: set[str]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of a ``state.npz`` and no other member, each header checked before its data is read.

    A ``.npz`` is a zip of ``.npy`` files, read here without unpickling (``allow_pickle=False``). rlkit writes
    them uncompressed (``np.savez``), so an array's size is bounded by the file's.
    """
    def corrupt(why: str) -> RunDirError:
        return RunDirError(f"training checkpoint {npz_path} is corrupt or not a plain .npz: {why}")

    arrays = {}
    try:
        with zipfile.ZipFile(npz_path) as npz:  # reads the member list only
            for name in sorted(names):
                try:
                    info = npz.getinfo(f"{name}.npy")
                except KeyError:
                    raise corrupt(f"it has no array {name}") from None
                if info.compress_type != zipfile.ZIP_STORED:
                    raise corrupt(f"array {name} is compressed (rlkit writes them uncompressed)")
                with npz.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                if dtype.hasobject:
                    raise corrupt(f"array {name} holds Python objects (never unpickled)")
                if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > info.file_size:
                    raise corrupt(f"array {name}'s header says {shape} of {dtype}, more than its "
                                  f"{info.file_size} bytes")
                with npz.open(info) as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
    except RunDirError:
        raise
    except Exception as e:  # a broken zip or header (zipfile, NumPy's format module): no common base worth naming
        raise corrupt(str(e)) from None
    return arrays


def _check_rng(where: str, rng: dict[str, Any]) -> None:
    """Set each saved random state on a new generator: a state of the wrong size or kind is refused here."""
    setters = {"python": lambda s: random.Random().setstate((s[0], tuple(s[1]), s[2])),
               "numpy": lambda s: np.random.RandomState().set_state(s),
               "torch": lambda s: torch.Generator().set_state(s)}
    for key, set_state in setters.items():
        try:
            set_state(rng[key])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as e:
            raise RunDirError(f"{where} is corrupt: rng.{key} is not a {key} random state ({e})") from None


def checkpoints(directory: Path) -> list[Path]:
    """The complete training checkpoints in ``directory``, oldest first (leftovers of a crash excluded)."""
    return sorted(p for p in directory.glob("step_*") if p.is_dir() and (p / "state.json").is_file())


def latest_checkpoint(run_dir: Path) -> TrainingCheckpoint:
    """The newest complete training checkpoint of a run; RunDirError if there is none."""
    found = checkpoints(run_dir / RESUME_DIR)
    if not found:
        raise RunDirError(f"{run_dir} has no training checkpoint to continue from ({RESUME_DIR}/step_* is missing); "
                          "runs write one every callbacks.checkpoint.every_steps steps or every_seconds seconds, "
                          "and on SIGTERM")
    return read_checkpoint(found[-1])


def continue_with(run_dir: Path) -> str:
    """The hint that ends a stop's message, the run directory quoted for a shell."""
    return f"continue with: rlkit train {shlex.quote(f'resume={run_dir}')}"


def stop_if_requested(run_dir: Path) -> None:
    """Raise :class:`RunInterrupted` if a stop was asked for already (while the run started, or by its sweep)."""
    if (stop := GUARD.poll()) is not None:
        raise RunInterrupted(f"stopped by {stop} before training started; nothing was lost; {continue_with(run_dir)}")


class Checkpointer(Callback):
    """At the agent's safe points, writes a training checkpoint when one is due or a stop signal arrived.

    After a stop request (:data:`rlkit.signals.GUARD`), training stops there with :class:`RunInterrupted`. It goes
    last in the callback list: it saves every callback's state, the agent's and the global random states.
    """

    _state_attrs = (*Callback._state_attrs, "_next_step")

    def __init__(self, directory: Path, cfg: CheckpointConfig, identity: dict[str, str]) -> None:
        super().__init__()
        self.directory, self.identity, self.signals = directory, identity, GUARD
        self.every_steps, self.every_seconds, self.keep_last = cfg.every_steps, cfg.every_seconds, max(1, cfg.keep_last)
        self._next_step = cfg.every_steps
        self._last_time = time.monotonic()
        self.write_seconds: list[float] = []

    def _on_safe_point(self) -> None:
        stop = self.signals.poll()
        due = (self.every_steps > 0 and self.num_steps >= self._next_step) or \
            (self.every_seconds > 0 and time.monotonic() - self._last_time >= self.every_seconds)
        path = None
        if (stop is not None or due) and self.num_steps > 0:
            path = self.save()
        if stop is not None:
            assert self.ctx is not None
            where = f"checkpoint {path}" if path else "no checkpoint (nothing trained yet)"
            raise RunInterrupted(f"stopped by {stop} at step {self.num_steps} of {self.ctx.total_steps}; {where}; "
                                 f"{continue_with(self.ctx.run_dir)}")

    def save(self) -> Path:
        """Write a checkpoint now; returns its directory."""
        assert self.ctx is not None
        started = time.perf_counter()
        if self.every_steps > 0:
            self._next_step = (self.num_steps // self.every_steps + 1) * self.every_steps
        if self.ctx.writer is not None:
            self.ctx.writer.flush()  # every event up to this step is on disk before the checkpoint exists
        state = {**self.identity, "elapsed": time.perf_counter() - self.ctx.start_time,
                 "agent_state": self.ctx.agent.training_state(), "callbacks": self.ctx.callbacks.state_dict(),
                 "rng": global_rng_state()}
        path = write_checkpoint(self.directory, self.num_steps, self.ctx.agent, state)
        for old in checkpoints(self.directory)[:-self.keep_last]:
            shutil.rmtree(old, ignore_errors=True)
        for leftover in self.directory.glob(".step_*.tmp"):  # a crash mid-write; never a complete checkpoint
            shutil.rmtree(leftover, ignore_errors=True)
        self._last_time = time.monotonic()
        self.write_seconds.append(time.perf_counter() - started)
        log.info("checkpoint at step %d: %s (%.2f s)", self.num_steps, path, self.write_seconds[-1])
        return path
