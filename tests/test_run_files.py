"""A run directory's files are read bounded and typed: each damaged or crafted file gets one line naming it and
the bad key (exit 2), nothing is trained or played, and a file changed after the run wrote it is reported.

The runs are trained once per module; each test works on a copy.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf
from safetensors import safe_open
from safetensors.torch import save_file

from helpers import TINY, cli, compose_cfg
from rlkit.config import hydra_configs
from rlkit.errors import RunDirError
from rlkit.files import MAX_HEADER_BYTES, load_checkpoint
from rlkit.resume import RESUME_DIR, checkpoints, read_checkpoint
from rlkit.runs import CONFIG_FILE, FILES_FILE, changed_files, damaged_events, find_unfinished_run
from rlkit.trainer import train
from rlkit.verify import verify_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished REINFORCE run with its config, events, checksums and its training checkpoints kept."""
    run_dir = tmp_path_factory.mktemp("source") / "run"
    overrides = [*TINY, "agent=reinforce", "callbacks.checkpoint.every_steps=500",
                 "callbacks.checkpoint.keep_after_finish=true"]
    cfg = compose_cfg(overrides)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.structured(cfg), run_dir / CONFIG_FILE)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    train(cfg, run_dir)
    return run_dir


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def _one_line(out, *parts: str) -> None:
    """The CLI's refusal: exit 2, one ``rlkit: error:`` line naming each part, no traceback."""
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    line = out.stderr.splitlines()[0]
    assert line.startswith("rlkit: error: "), out.stderr
    for part in parts:
        assert part in line, line


def _eval(copy: Path, tmp_path: Path, *args: str):
    out = cli(["eval", f"run={copy}", "n_episodes=1", *args], cwd=tmp_path)
    assert "episode 1" not in out.stdout.lower()  # nothing played
    return out


# ------------------------------------------------------------------------------------------------ checkpoints
def _rewrite(path: Path, meta: str | None = None, **tensors: torch.Tensor) -> None:
    """Write ``path`` again with other metadata (raw JSON text) or some tensors replaced."""
    with safe_open(str(path), framework="pt") as f:
        saved = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        raw = f.metadata()["rlkit"]
    save_file({**saved, **tensors}, str(path), metadata={"rlkit": raw if meta is None else meta})


def _meta(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["rlkit"])


NESTED = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: NESTED, "metadata is corrupt: its JSON is nested more than 32 levels deep"),
    (lambda m: json.dumps({**m, "extra": json.loads("[" * 40 + "]" * 40)}), "nested more than 32 levels deep"),
    (lambda m: json.dumps([m]), "metadata is corrupt: it is a JSON array, not a JSON object"),
    (lambda m: json.dumps({**m, "num_steps": "abc"}), 'num_steps is "abc", not a whole number >= 0'),
    (lambda m: json.dumps(m).replace(f'"num_steps": {m["num_steps"]}', '"num_steps": 1e400'),
     "num_steps is Infinity, not a whole number >= 0"),
    (lambda m: json.dumps({**m, "optimizers": {"policy_opt": [{"lr": "abc", "params": [0]}]}}),
     "the param groups of policy_opt are not a list of objects of numbers"),
], ids=["deeply-nested", "nested-inside", "list", "num-steps-text", "num-steps-1e400", "param-group-text"])
def test_checkpoint_metadata_is_checked_before_use(tmp_path, run, edit, message):
    copy = _copy(run, tmp_path)
    last = copy / "checkpoints" / "last.safetensors"
    _rewrite(last, edit(_meta(last)))
    _one_line(_eval(copy, tmp_path, "checkpoint=last"), str(last), message)


@pytest.mark.parametrize(("dtype", "name"), [(torch.float64, "F64"), (torch.int64, "I64")])
def test_weights_of_another_dtype_are_refused_not_cast(tmp_path, run, dtype, name):
    copy = _copy(run, tmp_path)
    last = copy / "checkpoints" / "last.safetensors"
    with safe_open(str(last), framework="pt") as f:
        tensor = next(k for k in f.keys() if not k.startswith("policy_opt"))  # noqa: SIM118
        value = f.get_tensor(tensor)
    _rewrite(last, **{tensor: value.to(dtype)})
    _one_line(_eval(copy, tmp_path, "checkpoint=last"), str(last), f"tensor {tensor} is {str(dtype)[6:]}",
              "the agent's is float32")


def test_an_optimizer_moment_of_another_dtype_is_refused(tmp_path, run):
    copy = _copy(run, tmp_path)
    last = copy / "checkpoints" / "last.safetensors"
    with safe_open(str(last), framework="pt") as f:
        moment = next(k for k in f.keys() if k.endswith("exp_avg"))  # noqa: SIM118
        value = f.get_tensor(moment)
    _rewrite(last, **{moment: value.double()})
    _one_line(_eval(copy, tmp_path, "checkpoint=last"), f"tensor {moment} is float64")


def test_nan_weights_are_refused(tmp_path, run):
    copy = _copy(run, tmp_path)
    last = copy / "checkpoints" / "last.safetensors"
    with safe_open(str(last), framework="pt") as f:
        _rewrite(last, **{k: torch.full_like(f.get_tensor(k), float("nan")) for k in f.keys()})  # noqa: SIM118
    _one_line(_eval(copy, tmp_path, "checkpoint=last"), str(last), "holds NaN or infinite values: refused")


def test_a_huge_metadata_header_is_refused_before_it_is_parsed(tmp_path, run, monkeypatch):
    copy = _copy(run, tmp_path)
    last = copy / "checkpoints" / "last.safetensors"
    meta = _meta(last)
    _rewrite(last, json.dumps({**meta, "padding": "x" * (MAX_HEADER_BYTES + 1000)}))  # loadable, but too large
    monkeypatch.setattr("rlkit.files.safe_open", lambda *a, **k: pytest.fail("the header was parsed"))
    with pytest.raises(RunDirError, match=rf"{last} has a [\d,]+-byte header, over the limit of 8,388,608 bytes"):
        load_checkpoint(last)


# ------------------------------------------------------------------------------------------ training checkpoints
def _unfinished(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the run as if it had been killed: no summary, its newest training checkpoint to continue from."""
    copy = _copy(run, tmp_path)
    (copy / "summary.json").unlink()
    (copy / FILES_FILE).unlink()
    return copy, checkpoints(copy / RESUME_DIR)[-1]


def _resume_refused(copy: Path, tmp_path: Path, *parts: str) -> None:
    events = sorted(p.name for p in (copy / "tb").iterdir())
    out = cli(["train", f"resume={copy}"], cwd=tmp_path)
    _one_line(out, *parts)
    assert not (copy / "summary.json").exists()  # nothing trained
    assert sorted(p.name for p in (copy / "tb").iterdir()) == events


def _edit_state(step: Path, edit) -> Path:
    path = step / "state.json"
    doc = json.loads(path.read_text())
    path.write_text(edit(doc) if callable(edit) else edit)
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (NESTED, "is corrupt: its JSON is nested more than 32 levels deep"),
    (lambda d: json.dumps([d]), "is not in rlkit's format 2"),
    (lambda d: json.dumps({**d, "elapsed": "abc"}), 'elapsed is "abc", not a finite number'),
    (lambda d: json.dumps({**d, "elapsed": float("inf")}), "elapsed is Infinity, not a finite number"),
    (lambda d: json.dumps({**d, "agent_state": 5}), "agent_state is 5, not a JSON object"),
    (lambda d: json.dumps({**d, "step": "abc"}), 'step is "abc", not a whole number >= 0'),
    (lambda d: json.dumps({**d, "step": d["step"] + 100}), "but it is in step_"),
    (lambda d: json.dumps({**d, "rng": {**d["rng"], "python": [3, d["rng"]["python"][1][:600], None]}}),
     "rng.python is not a python random state (state vector is the wrong size)"),
    (lambda d: json.dumps({k: v for k, v in d.items() if k != "callbacks"}), "it has no callbacks"),
], ids=["deeply-nested", "list", "elapsed-text", "elapsed-inf", "agent-state-number", "step-text",
        "step-not-its-directory", "rng-wrong-size", "no-callbacks"])
def test_state_json_is_checked_before_use(tmp_path, run, edit, message):
    copy, step = _unfinished(run, tmp_path)
    path = _edit_state(step, edit)
    _resume_refused(copy, tmp_path, str(path), message)


def test_a_torch_random_state_of_the_wrong_size_is_refused(tmp_path, run):
    copy, step = _unfinished(run, tmp_path)
    doc = json.loads((step / "state.json").read_text())
    name = doc["rng"]["torch"]["__array__"]
    arrays = dict(np.load(step / "state.npz"))
    np.savez(step / "state.npz", **{**arrays, name: arrays[name][:100]})
    _resume_refused(copy, tmp_path, str(step / "state.json"), "rng.torch is not a torch random state")


def _add_member(npz: Path, name: str, data: bytes, compress: bool = False) -> None:
    with zipfile.ZipFile(npz, "a", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}.npy", data)


def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """The header of a ``.npy`` file of ``shape`` (its data left out)."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


def test_only_the_arrays_state_json_refers_to_are_read(tmp_path, run):
    _, step = _unfinished(run, tmp_path)
    # Either member, read, would fail: the first claims 8 TB, the second is no array at all.
    _add_member(step / "state.npz", "unreferenced", _npy_header("<f8", (10**12,)), compress=True)
    _add_member(step / "state.npz", "garbage", b"not an array")
    checkpoint = read_checkpoint(step)
    assert checkpoint.step == int(step.name[5:])


@pytest.mark.parametrize(("member", "compress", "message"), [
    (_npy_header("<f4", (10**12,)), False, "header says (1000000000000,) of float32, more than its 128 bytes"),
    (None, True, "is compressed (rlkit writes them uncompressed)"),
    (_npy_header("|O", (1,)), False, "holds Python objects (never unpickled)"),
], ids=["huge-shape", "compressed", "objects"])
def test_a_referenced_array_is_checked_from_its_header(tmp_path, run, member, compress, message):
    copy, step = _unfinished(run, tmp_path)
    doc = json.loads((step / "state.json").read_text())
    name = doc["agent_state"]["obs"]["__array__"]
    arrays = dict(np.load(step / "state.npz"))
    del arrays[name]
    np.savez(step / "state.npz", **arrays)
    if member is None:
        np.save(tmp_path / "obs.npy", np.zeros(3, np.float32))
        member = (tmp_path / "obs.npy").read_bytes()
    _add_member(step / "state.npz", name, member, compress)
    _resume_refused(copy, tmp_path, str(step / "state.npz"), f"array {name}", message)


# ------------------------------------------------------------------------------------------------ YAML aliases
BOMB = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else '0'] * 9)}]\n" for i in range(10))


def test_a_yaml_alias_bomb_in_a_run_config_is_refused_at_once(tmp_path, run):
    copy = _copy(run, tmp_path)
    config = copy / CONFIG_FILE
    config.write_text(BOMB + config.read_text())  # 10 levels of 9: 3.5 billion nodes from 1.2 KB
    assert len(BOMB) < 1300
    message = "uses the YAML alias *l0 (2:10): refused"
    _one_line(_eval(copy, tmp_path), str(config), message)
    _one_line(cli(["plot", str(copy), "--out", str(tmp_path / "c.png")], cwd=tmp_path), message)
    (copy / "summary.json").unlink()
    _one_line(cli(["train", f"resume={copy}"], cwd=tmp_path), message)


def test_resume_auto_never_resolves_another_run_config(tmp_path, monkeypatch):
    sentinel = tmp_path / "resolved"
    OmegaConf.register_new_resolver("rlkit_test_touch", lambda: sentinel.touch() or 1, replace=True)
    monkeypatch.chdir(tmp_path)
    overrides = ["agent=reinforce", *TINY]
    from hydra import compose

    with hydra_configs():
        parent = Path(str(compose(config_name="train", overrides=overrides, return_hydra_config=True)
                          .hydra.run.dir)).parent
    other = parent / "other"
    (other / RESUME_DIR / "step_000000000500").mkdir(parents=True)
    (other / RESUME_DIR / "step_000000000500" / "state.json").write_text("{}")
    cfg = OmegaConf.to_container(OmegaConf.structured(compose_cfg(overrides)))
    cfg["seed"] = "${rlkit_test_touch:}"
    (other / CONFIG_FILE).parent.mkdir()
    (other / CONFIG_FILE).write_text(yaml.safe_dump(cfg))
    assert find_unfinished_run(overrides) is None
    assert not sentinel.exists()


# -------------------------------------------------------------------------------------------------- checksums
def test_a_finished_run_records_the_checksums_of_what_it_wrote(run):
    recorded = json.loads((run / FILES_FILE).read_text())["sha256"]
    assert {"summary.json", "checkpoints/best.safetensors", "checkpoints/last.safetensors"} <= set(recorded)
    assert any(name.startswith("tb/") and "/events.out.tfevents." in name for name in recorded)
    assert changed_files(run) == [] and damaged_events(run / "tb") == []


def test_verify_reports_a_tampered_checkpoint_and_faked_summary(tmp_path, run):
    copy = _copy(run, tmp_path)
    best = copy / "checkpoints" / "best.safetensors"
    with safe_open(str(best), framework="pt") as f:
        name = next(iter(f.keys()))
        _rewrite(best, **{name: f.get_tensor(name) + 0.01})
    summary = json.loads((copy / "summary.json").read_text())
    summary["best_eval"]["mean_reward"] = 500.0
    (copy / "summary.json").write_text(json.dumps(summary))
    verdict = verify_run(copy, 1200)
    assert not verdict.differences  # the re-run repeats the logged values and the last weights...
    assert not verdict.identical  # ...but the run's files are not what it wrote
    assert verdict.damaged == [f"{copy / name} changed after the run wrote it (its SHA-256 is not the one in "
                               f"{FILES_FILE})" for name in ("checkpoints/best.safetensors", "summary.json")]


def test_verify_and_plot_name_a_truncated_event_file(tmp_path, run):
    copy = _copy(run, tmp_path)
    events = max((copy / "tb").glob("*/events.out.tfevents.*"), key=lambda p: p.stat().st_size)
    events.write_bytes(events.read_bytes()[:-3])  # inside its last record
    out = cli(["verify", f"run={copy}", "steps=1200"], cwd=tmp_path)
    assert out.returncode == 1
    assert f"{events} is truncated or damaged" in out.stdout
    assert f"{events} changed after the run wrote it" in out.stdout
    out = cli(["plot", str(copy), "--out", str(tmp_path / "c.png")], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"rlkit: warning: {events} is truncated or damaged" in out.stderr


def test_eval_warns_of_a_checkpoint_changed_after_the_run_wrote_it(tmp_path, run):
    copy = _copy(run, tmp_path)
    last = copy / "checkpoints" / "last.safetensors"
    with safe_open(str(last), framework="pt") as f:
        name = next(iter(f.keys()))
        _rewrite(last, **{name: f.get_tensor(name) * 2})
    out = cli(["eval", f"run={copy}", "checkpoint=last", "n_episodes=1"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"{last} changed after the run wrote it" in out.stdout + out.stderr
    out = cli(["eval", f"run={copy}", "checkpoint=best", "n_episodes=1"], cwd=tmp_path)
    assert "changed after" not in out.stdout + out.stderr
