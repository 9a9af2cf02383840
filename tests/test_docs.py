"""Every ``rlkit ...`` command shown in README.md and docs/ parses: its config composes (no training), or, for
plot, verify and export, its arguments are the program's. A transcript line (``$ rlkit ...``) may show a refusal,
but as rlkit's own message, not a parser's crash.
"""

import functools
import re
import shlex
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from rlkit import config
from rlkit.cli import positional_run
from rlkit.errors import RlkitError
from rlkit.exporter import FORMATS

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ("env", "agent", "experiment", "hparams_search", "callbacks")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown_commands():
    """(page, line, transcript?, command) for each rlkit command in a fenced code block."""
    for page in PAGES:
        fenced, pending = False, ""
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if line.startswith("```"):
                fenced = not fenced
                continue
            if not fenced:
                continue
            if pending:
                line, pending = pending + " " + line.strip(), ""
            match = re.match(r"\s*(\$ )?(rlkit (?:train|eval|plot|verify|export)\b.*)", line)
            if not match:
                continue
            text = re.sub(r"\s+#\s.*$", "", match.group(2)).strip()
            if text.endswith("\\"):
                pending = text[:-1]
                continue
            yield pytest.param(bool(match.group(1)), text, id=f"{page.name}:{number}")


def _jobs(overrides):
    """Jobs of a multirun's sweep, every override parsed as the command line's: the first, and one per other choice
    of a config group (env=a,b); an interval sweep is the sweeper's to draw from."""
    first, choices = [], []
    for o in OverridesParser.create().parse_overrides(overrides):
        if not o.is_sweep_override():
            first.append(o.input_line)
        elif o.is_discrete_sweep():
            key, values = o.get_key_element(), list(o.sweep_string_iterator())
            first.append(f"{key}={values[0]}")
            if key in GROUPS or "/" in key:
                choices += [(len(first) - 1, f"{key}={v}") for v in values[1:]]
    return [first, *([*first[:i], choice, *first[i + 1:]] for i, choice in choices)]


@functools.cache  # a command shown on several pages composes once
def _compose(job, name):
    config.compose(list(job), name)


def check(command):
    """Compose (train, eval) or parse (plot, verify, export) ``rlkit <command>``; raises on a mistake."""
    words = shlex.split(re.sub(r"<[^>]+>", "placeholder", command))[1:]
    name, args = words[0], [a for a in words[1:] if a not in ("-m", "--multirun", "--help", "...")]
    if name in ("train", "eval"):
        args = [a for a in args if not a.startswith("trust_run=")] if name == "train" else positional_run(args)
        for job in _jobs(args):
            if not any(a.startswith(("resume=", "hydra.searchpath=")) for a in job):  # these need a real run, sweep
                _compose(tuple(job), name)
    elif name == "plot":
        from rlkit.plot import main

        try:
            main(args)  # the folders shown do not exist here: rlkit's error says so, after parsing
        except RlkitError as e:
            assert "does not exist" in str(e) or "no TensorBoard" in str(e) or "no run" in str(e), e
    else:
        keys = {"verify": {"run", "steps", "trust_run"}, "export": {"run", "format", "checkpoint", "out", "trust_run"}}
        given = dict(a.split("=", 1) for a in args)
        assert set(given) <= keys[name], f"rlkit {name} takes {sorted(keys[name])}, not {sorted(set(given))}"
        assert name != "export" or given.get("format") in [*FORMATS, "onnx|torchscript"]


@pytest.mark.parametrize("transcript, command", list(shown_commands()))
def test_shown_command_parses(transcript, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if transcript:
        try:
            check(command)
        except RlkitError:
            pass  # a documented refusal
        except Exception as e:  # Hydra's and OmegaConf's own errors are what rlkit shows for a bad key or type
            assert type(e).__module__.startswith(("hydra", "omegaconf")), f"{command}: {type(e).__name__}: {e}"
    else:
        check(command)


def test_the_pages_show_commands():
    assert len(list(shown_commands())) > 40
