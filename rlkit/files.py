"""Files written atomically: JSON documents, and checkpoints (named tensors and a JSON document) as safetensors.

safetensors stores only raw tensor bytes and strings, so loading a checkpoint can never execute code from it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from rlkit.errors import RunDirError, disk_full_errors

_META_KEY = "rlkit"
MAX_HEADER_BYTES = 8 << 20
"""The largest safetensors header read: rlkit's are a few KB (tensor names, shapes, offsets and its metadata)."""


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
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (files created, renamed into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    """Read a checkpoint written by :func:`save_checkpoint`; clear errors for missing or corrupt files.

    Its header is bounded (:data:`MAX_HEADER_BYTES`) and its metadata must be a JSON object; the caller checks
    the metadata's keys (:func:`check_fields`) and the tensors' dtypes.
    """
    if not path.is_file():
        raise RunDirError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(9)
    # A safetensors file starts with its header's length (8 bytes, little-endian) and then ``{``.
    header_bytes = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
    if head[8:9] == b"{" and header_bytes > MAX_HEADER_BYTES:
        raise RunDirError(f"checkpoint {path} has a {header_bytes:,}-byte header, over the limit of "
                          f"{MAX_HEADER_BYTES:,} bytes (rlkit writes a few KB): refused, it was not read")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
            raw_meta = (f.metadata() or {}).get(_META_KEY)
    except (SafetensorError, OSError, ValueError) as e:
        # Even a damaged safetensors file is told apart from a pickle (``\x80`` and its protocol, 2 to 5) and a zip
        # of pickles (torch.save's, SB3's).
        pickle = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
        if head[8:9] != b"{" and (pickle or head[:4] == b"PK\x03\x04"):
            kind = "a pickle" if pickle else "a zip archive (torch.save's or SB3's format, which holds pickles)"
            raise RunDirError(f"checkpoint {path} is {kind}, which can run code when loaded: refused. rlkit "
                              "never unpickles; its checkpoints are safetensors files written by rlkit") from None
        raise RunDirError(f"checkpoint {path} is corrupt or not a safetensors file ({e})") from None
    if raw_meta is None:
        raise RunDirError(f"checkpoint {path} has no rlkit metadata: it was not written by rlkit")
    meta = parse_json(raw_meta, f"checkpoint {path}'s metadata")
    if not isinstance(meta, dict):
        raise RunDirError(f"checkpoint {path}'s metadata is corrupt: it is {_kind(meta)}, not a JSON object")
    return tensors, meta


MAX_JSON_DEPTH = 32
"""The deepest nesting of JSON read from a run directory (rlkit writes fewer than 10 levels)."""


def parse_json(text: str | bytes, where: str) -> Any:
    """JSON from a run directory; :class:`RunDirError` naming ``where`` if it is not JSON or nested too deeply."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{where} is corrupt ({e})") from None
    except RecursionError:
        doc = None
    else:
        stack = [(doc, 1)]  # its depth, without recursion: what reads it next may recurse
        while stack:
            node, depth = stack.pop()
            if depth > MAX_JSON_DEPTH:
                break
            children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
            stack.extend((child, depth + 1) for child in children)
        else:
            return doc
    raise RunDirError(f"{where} is corrupt: its JSON is nested more than {MAX_JSON_DEPTH} levels deep")


FIELD_KINDS: dict[Any, str] = {int: "a whole number >= 0", float: "a finite number", str: "a string",
                               bool: "true or false", dict: "a JSON object", list: "a JSON array"}
"""The types :func:`check_fields` knows, as its messages name them."""


def _kind(value: Any) -> str:
    """A JSON value as a message shows it: the value itself if short, else its kind."""
    if isinstance(value, dict | list):
        return FIELD_KINDS[type(value)]
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fits(value: Any, kind: Any) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, kind)


def check_fields(doc: dict[str, Any], schema: dict[str, Any], where: str, required: bool = True) -> None:
    """Check that each key of ``schema`` in ``doc`` has the type it names (a :data:`FIELD_KINDS` key).

    Raises :class:`RunDirError` naming ``where`` and the first bad key; a missing key too, if ``required``.
    """
    for key, kind in schema.items():
        if key not in doc:
            if required:
                raise RunDirError(f"{where} is corrupt: it has no {key}")
        elif not _fits(doc[key], kind):
            raise RunDirError(f"{where} is corrupt: {key} is {_kind(doc[key])}, not {FIELD_KINDS[kind]}")


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
