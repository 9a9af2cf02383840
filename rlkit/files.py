"""Files written atomically: JSON documents, and checkpoints (named tensors and a JSON document) as safetensors.

safetensors stores only raw tensor bytes and strings, so loading a checkpoint can never execute code from it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from rlkit.errors import RunDirError, disk_full_errors

_META_KEY = "rlkit"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, fsync, rename, fsync the directory.

    A reader sees the old file or the new one, never half of one; a full disk raises :class:`DiskFullError`.
    """
    with disk_full_errors(path, path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` and ``meta`` to ``path`` atomically (see :func:`atomic_write`)."""
    # safetensors refuses views that share storage: a contiguous copy of each. Serialised in memory and written by
    # Python, so a full disk is an OSError with its errno (safetensors' save_file gives a SafetensorError, text only).
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    atomic_write(path, save(flat, metadata={_META_KEY: json.dumps(meta)}))


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; clear errors for missing or corrupt files."""
    if not path.is_file():
        raise RunDirError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
            raw_meta = (f.metadata() or {}).get(_META_KEY)
    except (SafetensorError, OSError, ValueError) as e:
        # A safetensors file starts with its header's length (8 bytes) and then ``{``, so even a damaged one is told
        # apart from a pickle (``\x80`` and its protocol, 2 to 5) and a zip of pickles (torch.save's, SB3's).
        with open(path, "rb") as f:
            head = f.read(9)
        pickle = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
        if head[8:9] != b"{" and (pickle or head[:4] == b"PK\x03\x04"):
            kind = "a pickle" if pickle else "a zip archive (torch.save's or SB3's format, which holds pickles)"
            raise RunDirError(f"checkpoint {path} is {kind}, which can run code when loaded: refused. rlkit "
                              "never unpickles; its checkpoints are safetensors files written by rlkit") from None
        raise RunDirError(f"checkpoint {path} is corrupt or not a safetensors file ({e})") from None
    if raw_meta is None:
        raise RunDirError(f"checkpoint {path} has no rlkit metadata: it was not written by rlkit")
    try:
        meta = json.loads(raw_meta)
    except json.JSONDecodeError as e:
        raise RunDirError(f"checkpoint {path} has corrupt metadata ({e})") from None
    return tensors, meta


def optimizer_to_tensors(state: dict[str, Any], prefix: str) -> tuple[dict[str, torch.Tensor], Any]:
    """Split an optimizer's ``state_dict()`` into tensors (per-parameter moments) and JSON (its param groups)."""
    tensors = {f"{prefix}.state.{idx}.{key}": value if isinstance(value, torch.Tensor) else torch.tensor(value)
               for idx, pstate in state["state"].items() for key, value in pstate.items()}
    return tensors, state["param_groups"]


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], param_groups: Any, prefix: str) -> dict[str, Any]:
    """Inverse of :func:`optimizer_to_tensors`: the optimizer's state dict."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    head = f"{prefix}.state."
    for name, value in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": param_groups}
