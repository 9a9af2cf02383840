"""A run directory from elsewhere is data: no route through rlkit runs code it names without trust_run=true.

Each test plants a payload that would create a sentinel file, and checks the file never appears.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from helpers import TINY, cli, compose_cfg
from rlkit.config import EvalRunConfig
from rlkit.errors import RlkitError, RunDirError
from rlkit.evaluate import evaluate_run
from rlkit.trainer import train
from rlkit.verify import verify_run

CONFIG = Path(".hydra") / "config.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("source") / "run"
    cfg = compose_cfg([*TINY, "agent=reinforce", "callbacks.checkpoint.every_steps=500",
                       "callbacks.checkpoint.keep_after_finish=true"])
    train(cfg, run_dir)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / CONFIG).write_text(yaml.safe_dump(_plain(cfg)))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*TINY, "agent=reinforce"]))
    return run_dir


def _plain(cfg) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg))


@pytest.fixture
def payload(tmp_path, monkeypatch):
    """A module on sys.path whose import (or whose ``touch``) creates the sentinel; returns (name, sentinel)."""
    name = f"payload_{uuid.uuid4().hex}"
    sentinel = tmp_path / "pwned"
    (tmp_path / f"{name}.py").write_text(f"from pathlib import Path\nPath({str(sentinel)!r}).touch()\n"
                                         "def touch(*args, **kwargs):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, sentinel
    sys.modules.pop(name, None)


def _copy(run: Path, tmp_path: Path, edit) -> Path:
    copy = tmp_path / "shared_run"
    shutil.copytree(run, copy)
    config = yaml.safe_load((copy / CONFIG).read_text())
    edit(config)
    (copy / CONFIG).write_text(yaml.safe_dump(config))
    return copy


def test_eval_refuses_an_env_id_that_imports_a_module_in_the_run(tmp_path, run, payload):
    name, sentinel = payload
    copy = _copy(run, tmp_path, lambda c: c.update(env={"name": "gym", "id": f"{name}:Zen-v0"}))
    with pytest.raises(RunDirError, match=rf"names code that would run: env.id={name}:Zen-v0 \(imports {name}\)"
                                          r".*add trust_run=true"):
        evaluate_run(EvalRunConfig(run=str(copy)))
    assert not sentinel.exists() and name not in sys.modules


def test_eval_refuses_a_pettingzoo_entry_point_that_loads_code_shipped_in_the_run(tmp_path, run):
    sentinel = tmp_path / "pwned"

    def edit(c):
        c["env"] = {"name": "pettingzoo", "id": "torch.hub:load", "reward_threshold": None,
                    "kwargs": {"repo_or_dir": str(tmp_path / "shared_run"), "model": "env", "source": "local"}}

    copy = _copy(run, tmp_path, edit)
    (copy / "hubconf.py").write_text(f"from pathlib import Path\nPath({str(sentinel)!r}).touch()\n")
    with pytest.raises(RunDirError, match="env.id=torch.hub:load"):
        evaluate_run(EvalRunConfig(run=str(copy)))
    assert not sentinel.exists()


def test_trust_run_allows_what_the_user_consents_to(tmp_path, run, payload):
    name, sentinel = payload
    copy = _copy(run, tmp_path, lambda c: c.update(env={"name": "gym", "id": f"{name}:Zen-v0"}))
    with pytest.raises(RlkitError, match="cannot be made by Gymnasium"):  # imported, as asked: no such env in it
        evaluate_run(EvalRunConfig(run=str(copy), trust_run=True))
    assert sentinel.exists()


def test_verify_refuses_a_nested_target_in_a_plug_in_callback(tmp_path, run, payload):
    name, sentinel = payload
    extra = {"bar": {"_target_": "rlkit.callbacks.ProgressBar", "enabled": {"_target_": f"{name}.touch"}}}
    copy = _copy(run, tmp_path, lambda c: c["callbacks"].update(extra=extra))
    with pytest.raises(RlkitError, match="a nested _target_ is refused"):
        verify_run(copy, 600)
    assert not sentinel.exists() and name not in sys.modules


def test_verify_refuses_a_plug_in_callback_from_outside_rlkit(tmp_path, run, payload):
    name, sentinel = payload
    copy = _copy(run, tmp_path, lambda c: c["callbacks"].update(extra={"x": {"_target_": f"{name}.Callback"}}))
    with pytest.raises(RunDirError, match=rf"callbacks.extra.x._target_={name}.Callback.*trust_run=true"):
        verify_run(copy, 600)
    assert not sentinel.exists() and name not in sys.modules


def test_resume_replays_no_hydra_override_from_the_run(tmp_path, run, payload):
    name, sentinel = payload
    copy = _copy(run, tmp_path, lambda c: None)
    (copy / "summary.json").unlink()  # unfinished: it has training checkpoints to continue from
    overrides = yaml.safe_load((copy / ".hydra" / "overrides.yaml").read_text())
    overrides.append(f"+hydra.callbacks.pwn={{_target_: {name}.touch}}")
    (copy / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    out = cli(["train", f"resume={copy}"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (copy / "summary.json").is_file() and not sentinel.exists() and name not in sys.modules


def test_resume_refuses_a_run_naming_code_without_trust(tmp_path, run, payload):
    name, sentinel = payload
    copy = _copy(run, tmp_path, lambda c: c["callbacks"].update(extra={"x": {"_target_": f"{name}.Callback"}}))
    (copy / "summary.json").unlink()
    out = cli(["train", f"resume={copy}"], cwd=tmp_path)
    assert out.returncode == 2 and "add trust_run=true" in out.stderr
    assert not sentinel.exists() and name not in sys.modules


def test_a_run_config_calling_a_resolver_is_refused_and_plot_shows_no_secret(tmp_path, run, monkeypatch):
    monkeypatch.setenv("RLKIT_FAKE_SECRET", "hunter2")
    copy = _copy(run, tmp_path, lambda c: c["agent"].update(activation_fn="${oc.env:RLKIT_FAKE_SECRET}"))
    with pytest.raises(RunDirError, match=r"calls the resolver \$\{oc.env:RLKIT_FAKE_SECRET\}"):
        evaluate_run(EvalRunConfig(run=str(copy)))
    other = tmp_path / "other"
    shutil.copytree(run, other)
    out = cli(["plot", str(copy), str(other), "--out", str(tmp_path / "curves.png")], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "hunter2" not in out.stdout + (tmp_path / "curves.csv").read_text()
