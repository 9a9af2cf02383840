"""The ``rlkit`` command: picks the subcommand and hands the rest of the command line to Hydra.

This is the only module that uses Hydra's decorator. It turns the composed config into typed dataclasses and
calls plain functions (``rlkit.train.train``, ``rlkit.evaluate.evaluate_run``) that tests can call directly.
``rlkit plot`` is no Hydra app: it takes paths and options (argparse, in ``rlkit.plot``).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import os
import statistics
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from rlkit.config import EvalRunConfig, TrainConfig, check_known_keys, register_configs
from rlkit.errors import DEBUG_ENV, JobFailed, RlkitError, error_text
from rlkit.multirun import check_multirun_args, is_serial_launcher, register_plugins
from rlkit.resume import RESUME_DIR, checkpoints, latest_checkpoint
from rlkit.runs import SUMMARY_FILE, load_run_config

CONFIG_MODULE = "rlkit.configs"

register_configs()
register_plugins()

USER_ERRORS = (RlkitError, MissingMandatoryValue, OmegaConfBaseException)


def _message(e: BaseException) -> str:
    if isinstance(e, MissingMandatoryValue):
        key = getattr(e, "full_key", "") or "a key"
        return f"{key} has no value; set it on the command line ({key}=...)"
    if isinstance(e, RlkitError) and e.args:
        return str(e.args[0]).strip()
    return str(e).strip()


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Print a user's mistake as one paragraph and exit 2; ``RLKIT_DEBUG=1`` shows the traceback."""
    try:
        yield
    except USER_ERRORS as e:
        if os.environ.get(DEBUG_ENV):
            raise
        print(error_text(_message(e)), file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    except KeyboardInterrupt:
        print("rlkit: interrupted", file=sys.stderr)
        sys.exit(130)


@contextlib.contextmanager
def _job_errors() -> Iterator[None]:
    """In a multirun job, a user's mistake fails that job instead of exiting the process.

    Hydra reports the first failed job after its batch, without a traceback; a joblib or Ray worker process,
    which other jobs share, must not exit.
    """
    try:
        yield
    except USER_ERRORS as e:
        if os.environ.get(DEBUG_ENV):
            raise
        raise JobFailed(_message(e)) from None


@hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name="train", version_base="1.3")
def _train(cfg: DictConfig) -> dict[str, Any]:
    """Train one run; in a multirun, its summary is the job's return value (the Optuna sweeper's objective)."""
    from rlkit.train import train

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    with _job_errors() if multirun else _user_errors():
        check_known_keys(cfg)
        train_cfg = OmegaConf.to_object(cfg)
        assert isinstance(train_cfg, TrainConfig)
        if multirun and not is_serial_launcher(hydra_cfg.launcher):
            train_cfg.callbacks.progress_bar = False  # parallel jobs' bars would draw over each other
        run_dir = Path(hydra_cfg.runtime.output_dir)
        summary = train(train_cfg, run_dir,
                        resume_from=latest_checkpoint(run_dir) if train_cfg.resume is not None else None)
        final = summary["final_eval"]
        line = f"run: {run_dir}\nsteps: {summary['steps']}  wall: {summary['wall_seconds']:.1f}s"
        if final is not None:
            line += f"  final eval: {final['mean_reward']:.1f} ± {final['std_reward']:.1f}"
        if summary["solved"] is not None:
            line += f"  solved at step {summary['solved']['step']}"
        print(line)
    return summary


@hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name="eval", version_base="1.3")
def _eval(cfg: DictConfig) -> None:
    from rlkit.evaluate import evaluate_run

    with _user_errors():
        check_known_keys(cfg)
        eval_cfg = OmegaConf.to_object(cfg)
        assert isinstance(eval_cfg, EvalRunConfig)
        report = evaluate_run(eval_cfg, on_episode=_print_episode)
        if not report.rewards:
            print("no episode finished (window closed)")
            return
        print(
            f"{len(report.rewards)} episodes from {report.checkpoint}: "
            f"mean reward {report.mean:.2f} ± {report.std:.2f}"
        )
        if report.successes:
            print(f"  success rate {sum(report.successes) / len(report.successes):.0%}")
        for name, rewards in report.agent_rewards.items():
            print(f"  {name}: mean reward {statistics.fmean(rewards):.2f} ± {statistics.pstdev(rewards):.2f}")
        if report.video is not None:
            print(f"video: {report.video}")


def _print_episode(index: int, played: Any) -> None:
    line = f"episode {index + 1}: reward {played.team_returns()[0]:.1f}, length {played.lengths[0]}"
    per_agent = played.agent_returns()
    if per_agent:
        line += " (" + ", ".join(f"{name} {r[0]:.1f}" for name, r in per_agent.items()) + ")"
    print(line)


def _verify(argv: list[str]) -> None:
    from rlkit.verify import main as verify_main

    verify_main(argv)


def _plot(argv: list[str]) -> None:
    import warnings

    from rlkit.plot import main as plot_main

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        print(f"rlkit: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        plot_main(argv)


# command -> (function, Hydra config name, one line of help). A command without a config name is a plain
# program that gets its arguments (``rlkit plot``).
COMMANDS: dict[str, tuple[Callable[..., Any], str | None, str]] = {
    "train": (_train, "train", "train an agent: rlkit train env=balancing_pole agent=dqn seed=3"),
    "eval": (_eval, "eval", "play a trained run: rlkit eval run=runs/<env>/<agent>/<time> render_mode=human"),
    "plot": (_plot, None, "learning curves, mean and 95% interval over seeds: rlkit plot runs/multirun/<time>"),
    "verify": (_verify, None, "re-run a run's first steps and check they repeat bit for bit: rlkit verify "
                              "run=<run dir> steps=5000"),
}

USAGE = """usage: rlkit <command> [KEY=VALUE ...] [--help]

commands:
{commands}

train and eval take Hydra overrides (KEY=VALUE, GROUP=CHOICE, -m for a multirun).
`rlkit <command> --help` lists its config groups, keys, values and what each means;
`rlkit <command> --hydra-help` shows Hydra's own options. plot takes directories: `rlkit plot --help`;
verify takes run=<run dir> steps=N."""


def compose(overrides: list[str], config_name: str = "train") -> TrainConfig | EvalRunConfig:
    """The typed config that ``rlkit <command> <overrides>`` would run with, for programs and tests."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=overrides)
    check_known_keys(cfg)
    obj = OmegaConf.to_object(cfg)
    assert isinstance(obj, TrainConfig | EvalRunConfig)
    return obj


# ---------------------------------------------------------------------------------------------- resume
# Overrides a continued run may change: how it reports and checkpoints, not what it computes.
RESUME_MAY_CHANGE = ("callbacks.progress_bar=", "callbacks.checkpoint.", "torch_threads=")


def resume_overrides(args: list[str]) -> list[str]:
    """``rlkit train resume=<run dir>`` (or ``resume=auto``) as the overrides that continue that run.

    The run's own overrides (``.hydra/overrides.yaml``), so its config composes again, plus ``resume`` and
    ``hydra.run.dir`` so that Hydra writes into the run's directory. ``resume=auto`` picks the newest unfinished
    run of the config the other overrides compose, or starts a new run if there is none.
    """
    value = next(a.split("=", 1)[1] for a in args if a.startswith("resume="))
    others = [a for a in args if not a.startswith("resume=")]
    if "-m" in others or "--multirun" in others:
        raise RlkitError("resume= continues one run; it cannot be combined with -m")
    if value in ("", "null"):
        return others
    if value == "auto":
        found = find_unfinished_run(others)
        if found is None:
            print("resume=auto: no unfinished run of this config with a checkpoint; starting a new run",
                  file=sys.stderr)
            return others
        print(f"resume=auto: continuing {found}", file=sys.stderr)
        run = found
    else:
        run = Path(value)
        changed = [a for a in others if not a.startswith(RESUME_MAY_CHANGE)]
        if changed:
            raise RlkitError(
                f"resume={value} continues the run with its own config, so it takes no other overrides "
                f"(got {' '.join(changed)}); only {', '.join(k.rstrip('=.') for k in RESUME_MAY_CHANGE)} may change"
            )
    load_run_config(run)  # a clear error for a missing or corrupt run directory
    if (run / SUMMARY_FILE).is_file():
        raise RlkitError(f"{run} has finished ({SUMMARY_FILE} exists): there is nothing to continue")
    latest_checkpoint(run)  # a clear error if there is no checkpoint
    saved = OmegaConf.load(run / ".hydra" / "overrides.yaml")
    keys = {a.split("=", 1)[0] for a in others}
    kept = [str(o) for o in saved if not str(o).startswith(("resume=", "hydra.")) and str(o).split("=", 1)[0]
            not in keys]
    return [*kept, *others, f"resume={run}", f"hydra.run.dir={run}"]


def find_unfinished_run(overrides: list[str]) -> Path | None:
    """The newest unfinished run with these overrides' config and a training checkpoint, or None.

    Runs are looked for beside the directory a new run with these overrides would get.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=overrides, return_hydra_config=True)
    parent = Path(str(cfg.hydra.run.dir)).parent
    wanted = _comparable(cfg)
    candidates = []
    for run in parent.glob("*"):
        config = run / ".hydra" / "config.yaml"
        found = checkpoints(run / RESUME_DIR)
        if not config.is_file() or (run / SUMMARY_FILE).is_file() or not found:
            continue
        try:
            same = _comparable(OmegaConf.load(config)) == wanted
        except Exception:  # an unreadable config is some other run's problem, not a match
            continue
        if same:
            candidates.append((found[-1].stat().st_mtime, run))
    return max(candidates)[1] if candidates else None


def _comparable(cfg: DictConfig | Any) -> dict[str, Any]:
    """A composed or saved training config as plain values, without Hydra's section and ``resume``."""
    kept = OmegaConf.masked_copy(cfg, [k for k in cfg if k not in ("hydra", "resume")])
    container = OmegaConf.to_container(kept, resolve=True)
    assert isinstance(container, dict)
    return container


# ---------------------------------------------------------------------------------------------- help
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (attribute docstrings, read from its source)."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__[:-1]):  # a subclass's docstrings override its bases'
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(base)))
        except (OSError, TypeError):
            continue
        docs.update(_own_field_docs(tree.body[0].body))  # type: ignore[attr-defined]
    return docs


def _own_field_docs(body: list[ast.stmt]) -> dict[str, str]:
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _as_override(value: Any) -> str:
    """A value as it would be typed on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_as_override(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_as_override(v)}" for k, v in value.items()) + "}"
    return str(value)


def _describe(node: DictConfig, prefix: str, rows: list[tuple[str, str, str]]) -> None:
    """One row per leaf key of a composed config: ``key=value``, its docstring, the dotted key."""
    node_type = OmegaConf.get_type(node)
    docs = field_docs(node_type) if node_type is not None and dataclasses.is_dataclass(node_type) else {}
    for key in node:
        full = f"{prefix}{key}"
        child = node._get_node(key)
        if OmegaConf.is_missing(node, key):
            rows.append((f"{full}=???", docs.get(str(key), "") + " (required)", full))
        elif isinstance(child, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(child)):
            _describe(child, f"{full}.", rows)
        else:
            value = OmegaConf.to_container(child) if OmegaConf.is_config(child) else node[key]
            rows.append((f"{full}={_as_override(value)}", docs.get(str(key), ""), full))


def print_manual(command: str, config_name: str, overrides: list[str]) -> None:
    """``rlkit <command> --help``: groups and their choices, then every key with its value and meaning."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
        loader = GlobalHydra.instance().config_loader()
        # Only training composes groups; eval's config has none of its own.
        groups = [g for g in loader.list_groups("") if g != "hydra"] if config_name == "train" else []
        print(f"usage: rlkit {command} [GROUP=CHOICE ...] [KEY=VALUE ...]\n\n{COMMANDS[command][2]}\n")
        if groups:
            print("config groups (GROUP=CHOICE):")
            for group in sorted(groups):
                choices = [c for c in loader.get_group_options(group) if not c.endswith("_schema")]
                print(f"  {group:<12} {', '.join(choices)}")
            print("\nmultiruns (-m; see the README's Sweeps section):")
            for group, default in (("hydra/launcher", "joblib"), ("hydra/sweeper", "basic")):
                others = [c for c in loader.get_group_options(group) if c != default]
                print(f"  {group:<14} {', '.join([f'{default} (default)', *others])}")
            print()
    with _user_errors():
        check_known_keys(cfg)
    rows: list[tuple[str, str, str]] = []
    _describe(cfg, "", rows)
    top_docs = field_docs(OmegaConf.get_type(cfg))
    print("keys (KEY=VALUE), with the values the overrides above give:")
    width = min(max(len(r[0]) for r in rows), 44)
    section = ""
    for shown, doc, key in rows:
        head = key.split(".")[0] if "." in key else ""
        if head != section:
            section = head
            print(f"\n  {head}: {top_docs.get(head, '')}" if head else "\n  top level:")
        print(f"  {shown:<{width}}  {doc}")


def check_group_choices(config_name: str, overrides: list[str]) -> None:
    """Refuse ``GROUP=CHOICE`` overrides naming no config of the group, listing the valid choices.

    Hydra refuses them too, but its message also lists the ``*_schema`` configs and its search path.
    """
    import difflib

    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        groups = {g for g in loader.list_groups("") if g != "hydra"}
        groups |= {f"hydra/{g}" for g in loader.list_groups("hydra")}  # hydra/launcher, hydra/sweeper, ...
        # Configs in directories added with hydra.searchpath=[...] (e.g. a sweep's best preset) are choices too.
        searchpath = [a for a in overrides if a.lstrip("+").startswith("hydra.searchpath=")]
        for arg in overrides:
            group, sep, value = arg.partition("=")
            group = group.lstrip("~+").split("@")[0]
            if not sep or group not in groups or value in ("", "null"):
                continue
            options = loader.get_group_options(group, config_name=config_name, overrides=searchpath)
            choices = [c for c in options if not c.endswith("_schema")]
            # A multirun sweep lists several choices: each must exist.
            for choice in value.split(","):
                if choice not in choices:
                    close = difflib.get_close_matches(choice, choices, n=1)
                    hint = f" Did you mean {group}={close[0]}?" if close else ""
                    raise RlkitError(
                        f"{group}={choice} names no config in group {group!r}; "
                        f"choose one of: {', '.join(choices) or '(none)'}.{hint}"
                    )


# ---------------------------------------------------------------------------------------------- entry
def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rlkit`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    commands = "\n".join(f"  {name:<6} {text}" for name, (_, _, text) in COMMANDS.items())
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE.format(commands=commands))
        return
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"rlkit: error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}",
              file=sys.stderr)
        sys.exit(2)
    func, config_name, _ = COMMANDS[command]
    if config_name is None:
        with _user_errors():
            func(rest)
        return
    with _user_errors():
        check_group_choices(config_name, [a for a in rest if not a.startswith("-")])
        if command == "train":
            check_multirun_args(rest)
            if any(a.startswith("resume=") for a in rest):
                rest = resume_overrides(rest)
    if os.environ.get(DEBUG_ENV):
        os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # errors inside Hydra's multirun too
    if "--help" in rest or "-h" in rest:
        overrides = [a for a in rest if a not in ("--help", "-h")]
        try:
            print_manual(command, config_name, overrides)
        except Exception as e:  # composition errors: Hydra's message is the useful part
            if os.environ.get(DEBUG_ENV):
                raise
            print(f"rlkit: error: {e}", file=sys.stderr)
            sys.exit(2)
        return
    # Hydra reads sys.argv: drop the subcommand word so it sees only its overrides.
    sys.argv = [f"rlkit-{command}", *rest]
    func()


if __name__ == "__main__":
    main()
