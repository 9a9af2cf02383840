"""``rlkit verify run=<run dir> steps=N``: does this machine reproduce a run's first N steps bit for bit?

It trains the run's config again in a temporary directory and compares what both logged (docs/runs.md); it checks
the run's files against the checksums the run recorded, and its event files for truncation.
"""

from __future__ import annotations

import difflib
import math
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlkit.callbacks import Callback
from rlkit.errors import RlkitError, RunDirError
from rlkit.runs import changed_files, damaged_events, read_events, resolve_run

USAGE = ("usage: rlkit verify run=<run dir> [steps=N] [trust_run=true]   (N: environment steps to re-run, default "
         "5000; trust_run: allow a run whose config names code to import)")
COMPARED = ("episode/", "eval/mean_reward", "eval/success_rate", "train/")
"""Tag prefixes compared; time/ tags measure speed, which never repeats."""


def read_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in TensorBoard events: tag -> [(step, value)], in logging order."""
    acc = read_events(tb_dir)
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


class _StopAt(Callback):
    """Stops training once ``steps`` environment steps are taken."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def _on_step(self) -> bool:
        return self.num_steps < self.steps


@dataclass
class Verdict:
    """What ``rlkit verify`` found: values compared per tag, and the differences (none: identical)."""

    steps: int
    compared: dict[str, int] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)
    weights_compared: bool = False
    damaged: list[str] = field(default_factory=list)
    """The run's files that changed after it wrote them (``files.json``), and its truncated event files."""
    copies: str = "sync"
    """The run's ``env.vectorization``: copies elsewhere repeat from step 0, but a resume started new episodes."""

    @property
    def identical(self) -> bool:
        """No difference in any compared value, and the run's files as it wrote them."""
        return not self.differences and not self.damaged


def compare(original: dict[str, list[tuple[int, float]]], rerun: dict[str, list[tuple[int, float]]],
            steps: int, whole: bool) -> Verdict:
    """Compare two runs' scalars logged before step ``steps`` (up to and at it if ``whole``).

    A re-run stopped early updates and evaluates at its stop step where the run went on, so that step is left out.
    """
    verdict = Verdict(steps=steps)
    for tag in sorted(t for t in set(original) | set(rerun) if t.startswith(COMPARED)):
        mine, theirs = ([p for p in run.get(tag, []) if p[0] < steps or (whole and p[0] == steps)]
                        for run in (rerun, original))
        verdict.compared[tag] = len(theirs)
        for i, (a, b) in enumerate(zip(theirs, mine, strict=False)):
            if a[0] != b[0] or not (a[1] == b[1] or (math.isnan(a[1]) and math.isnan(b[1]))):
                verdict.differences.append(f"{tag} #{i + 1}: the run logged {a[1]!r} at step {a[0]}, the re-run "
                                           f"{b[1]!r} at step {b[0]}")
                break
        else:
            if len(theirs) != len(mine):
                verdict.differences.append(f"{tag}: the run logged {len(theirs)} values before step {steps}, the "
                                           f"re-run {len(mine)}")
    return verdict


def verify_run(run_dir: Path, steps: int, trust: bool = False) -> Verdict:
    """Re-run the first ``steps`` steps of ``run_dir`` and compare; the final weights too if it covers the run."""
    import numpy as np

    from rlkit.files import load_checkpoint
    from rlkit.runs import load_run_config
    from rlkit.trainer import train

    cfg = load_run_config(run_dir, trust)
    if steps < 1:
        raise RlkitError(f"steps must be >= 1, got {steps}")
    tb = run_dir / "tb"
    if not tb.is_dir():
        raise RunDirError(f"{run_dir} has no TensorBoard events (tb/) to compare with; it was trained with "
                          "callbacks.tensorboard=false")
    damaged = [*changed_files(run_dir), *damaged_events(tb)]
    original = read_scalars(tb)
    if not any(t.startswith("episode/") for t in original):
        raise RunDirError(f"{tb} has no episode scalars to compare with")
    cfg.resume = None
    cfg.callbacks.progress_bar = False
    cfg.callbacks.checkpoint.every_seconds = cfg.callbacks.checkpoint.every_steps = 0
    whole = steps >= cfg.total_steps
    with tempfile.TemporaryDirectory(prefix="rlkit-verify-") as tmp:
        summary = train(cfg, Path(tmp), callbacks=[] if whole else [_StopAt(steps)])
        verdict = compare(original, read_scalars(Path(tmp) / "tb"), int(summary["steps"]), whole)
        verdict.damaged, verdict.copies = damaged, getattr(cfg.env, "vectorization", "sync")
        last = run_dir / "checkpoints" / "last.safetensors"
        if whole and last.is_file():
            theirs, _ = load_checkpoint(last)
            mine, _ = load_checkpoint(Path(tmp) / "checkpoints" / "last.safetensors")
            verdict.weights_compared = True
            name = next((n for n in sorted(set(theirs) | set(mine)) if n not in theirs or n not in mine
                         or not np.array_equal(theirs[n].numpy(), mine[n].numpy())), None)
            if name is not None:
                verdict.differences.append(f"final weights differ: {name}")
    return verdict


def main(argv: Sequence[str]) -> None:
    """``rlkit verify``: prints the verdict; exits 1 if the re-run differs."""
    if {"-h", "--help"} & set(argv):
        print(__doc__.split("\n\n")[0] + "\n\n" + USAGE)
        sys.exit(0)
    values = {"steps": "5000", "trust_run": "false"}
    for key, sep, value in (arg.partition("=") for arg in argv):
        if not sep or key not in values and key != "run":
            close = difflib.get_close_matches(key, ["run", *values], n=1) if sep else []
            if close:
                raise RlkitError(f"unknown key {key!r}: rlkit verify takes run=, steps= and trust_run=. "
                                 f"Did you mean {close[0]}={value}?")
            raise RlkitError(f"rlkit verify takes run=<run dir> and steps=N, not {key + sep + value!r}\n{USAGE}")
        values[key] = value
    if "run" not in values:
        raise RlkitError(f"rlkit verify needs run=<run dir>\n{USAGE}")
    try:
        steps = int(values["steps"])
    except ValueError:
        raise RlkitError(f"steps must be an integer, got {values['steps']!r}") from None
    run_dir = resolve_run(values["run"])
    if values["trust_run"] not in ("true", "false"):
        raise RlkitError(f"trust_run must be true or false, got {values['trust_run']!r}")
    verdict = verify_run(run_dir, steps, values["trust_run"] == "true")
    print(f"re-ran {verdict.steps} steps of {run_dir}: compared {sum(verdict.compared.values())} logged values "
          f"over {len(verdict.compared)} tags" + (" and the final weights" if verdict.weights_compared else ""))
    if verdict.damaged:
        print("DAMAGED (what the run wrote is not what is there now):\n  " + "\n  ".join(verdict.damaged))
    if verdict.differences:
        print("DIFFERENT:\n  " + "\n  ".join(verdict.differences))
        if verdict.copies != "sync":
            print(f"(env.vectorization={verdict.copies}: if the run was resumed, its env copies started new episodes "
                  "there, so it differs from that step on; before it, it repeats exactly)")
    if not verdict.identical:
        sys.exit(1)
    print("identical: this machine reproduces the run bit for bit")
