"""Run directories: reading a run's config back, and writing its summary."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.config import AGENT_SCHEMAS, TrainConfig, check_known_keys, env_schema
from rlkit.errors import ConfigError, RunDirError, disk_full_errors

CONFIG_FILE = Path(".hydra") / "config.yaml"
SUMMARY_FILE = "summary.json"


def load_run_config(run_dir: Path) -> TrainConfig:
    """The typed training config a run was made with, from ``<run>/.hydra/config.yaml``."""
    if not run_dir.exists():
        raise RunDirError(f"run directory {run_dir} does not exist")
    if not run_dir.is_dir():
        raise RunDirError(f"run={run_dir} is not a directory")
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not an rlkit run directory: {CONFIG_FILE} is missing")
    try:
        raw = OmegaConf.load(path)
    except Exception as e:  # YAML scanner/parser errors have no common base class worth naming
        raise RunDirError(f"{path} is corrupt: {e}") from None
    if not OmegaConf.is_dict(raw) or "env" not in raw or "agent" not in raw:
        raise RunDirError(f"{path} is corrupt: it has no env and agent sections")
    try:
        env_type = env_schema(raw.env.name)
        agent_schema = AGENT_SCHEMAS[raw.agent.name]
    except (KeyError, OmegaConfBaseException, ConfigError) as e:
        raise RunDirError(f"{path} names an env or agent this version of rlkit does not know ({e})") from None
    try:
        base = OmegaConf.structured(TrainConfig)
        base.env = OmegaConf.structured(env_type)
        base.agent = OmegaConf.structured(agent_schema)
        merged = OmegaConf.merge(base, raw)
        check_known_keys(merged)
        cfg = OmegaConf.to_object(merged)
    except (OmegaConfBaseException, ConfigError) as e:
        raise RunDirError(f"{path} does not fit the current config schema: {e}") from None
    assert isinstance(cfg, TrainConfig)
    return cfg


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as one level of dotted keys; lists and empty mappings stay values."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}{key}." if isinstance(value, dict) and value else f"{prefix}{key}"))
    return out


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half of one."""
    with disk_full_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
