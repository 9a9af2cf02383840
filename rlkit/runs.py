"""Run directories: reading a run's config back, and writing its summary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.config import TrainConfig, check_known_keys
from rlkit.errors import ConfigError, RunDirError
from rlkit.factory import lookup

CONFIG_FILE = Path(".hydra") / "config.yaml"
SUMMARY_FILE = "summary.json"
SWEEP_MARKER = ".rlkit-sweep"
"""Created (exclusively) in a multirun's directory when its sweep starts: the directory is that sweep's."""


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
        raw = OmegaConf.load(path)  # a safe YAML loader: tags such as !!python/object are errors, never calls
    except Exception as e:  # YAML scanner/parser errors have no common base class worth naming
        tag = re.search(r"tag:yaml.org,2002:(python/\S*?)'", str(e))
        if tag:
            raise RunDirError(f"{path} holds the YAML tag !!{tag.group(1)}, which would run code: refused. rlkit "
                              "reads a run's config as plain data and never runs code from it") from None
        raise RunDirError(f"{path} is corrupt: {e}") from None
    if not OmegaConf.is_dict(raw) or "env" not in raw or "agent" not in raw:
        raise RunDirError(f"{path} is corrupt: it has no env and agent sections")
    try:
        env_type, agent_schema = lookup("env", raw.env.name)[0], lookup("agent", raw.agent.name)[0]
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


# ---------------------------------------------------------------------------------------------- claiming
def claim_run_dir(run_dir: Path, marker: str = ".hydra") -> None:
    """Make ``run_dir`` this run's own, or refuse it if it holds another run.

    ``marker`` (Hydra's ``.hydra/``, where the run's config goes) is created with one atomic ``mkdir``: of two
    processes given the same directory, even in the same microsecond, only one gets it. A directory with a
    summary, checkpoints or TensorBoard events from a run that had no marker is refused too.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        (run_dir / marker).mkdir()
    except FileExistsError:
        raise _taken(run_dir, f"{marker}/") from None
    _refuse_leftovers(run_dir, run_dir / marker, (SUMMARY_FILE, "checkpoints", "tb"))


def claim_sweep_dir(sweep_dir: Path) -> None:
    """:func:`claim_run_dir` for a multirun's directory (its jobs' run directories are numbered inside it)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    try:
        (sweep_dir / SWEEP_MARKER).open("x").close()
    except FileExistsError:
        raise _taken(sweep_dir, SWEEP_MARKER) from None
    _refuse_leftovers(sweep_dir, sweep_dir / SWEEP_MARKER, ("multirun.yaml", "jobs.csv", "0"))


def _refuse_leftovers(directory: Path, marker: Path, names: tuple[str, ...]) -> None:
    found = [n for n in names if (directory / n).exists()]
    if found:
        marker.rmdir() if marker.is_dir() else marker.unlink()
        raise _taken(directory, found[0])


def _taken(directory: Path, evidence: str) -> RunDirError:
    return RunDirError(
        f"{directory} already holds another run ({evidence} exists); rlkit never writes into another run's "
        "directory. Choose a new hydra.run.dir (hydra.sweep.dir for -m), or leave it to the default, which is "
        "new for every start"
    )


class ClaimRunDir(Callback):
    """Hydra callback (configured in ``train.yaml``): claim the run's or sweep's directory before Hydra writes.

    Hydra writes ``.hydra/config.yaml`` into the run directory before rlkit's code starts, so the claim happens
    in ``on_run_start``/``on_multirun_start``; a refusal is printed like any rlkit error (exit status 2).
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim ``hydra.run.dir``, unless the run continues in it (``resume=``: the directory is its own)."""
        from rlkit.cli import _user_errors

        if config.get("resume") is not None:
            return
        with _user_errors():
            claim_run_dir(Path(str(config.hydra.run.dir)), str(config.hydra.output_subdir or ".hydra"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Claim ``hydra.sweep.dir``."""
        from rlkit.cli import _user_errors

        with _user_errors():
            claim_sweep_dir(Path(str(config.hydra.sweep.dir)))
