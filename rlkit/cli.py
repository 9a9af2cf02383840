"""The ``rlkit`` command: train and eval through Hydra's decorator (its only user), plot and verify as programs.

``rlkit --help`` and ``--version`` answer from the standard library alone, and a config error from OmegaConf and the
schemas alone (rlkit.config's checks); Hydra, the plug-ins and torch are imported after them, so each function
imports what it uses (scripts/bench_startup.py times it).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig


def _train(cfg: DictConfig) -> dict[str, Any]:
    """Train one run; in a multirun, its summary is the job's return value (the Optuna sweeper's objective)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from rlkit import config
    from rlkit.errors import user_errors
    from rlkit.multirun import job_errors, parallel_jobs
    from rlkit.resume import RESUME_DIR, RunInterrupted, checkpoints, latest_checkpoint
    from rlkit.runs import removed_if_refused
    from rlkit.trainer import train

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    run_dir = Path(hydra_cfg.runtime.output_dir)
    # A refused single run leaves no directory; a multirun job's keeps its job.json, which the sweep's index names.
    new = not multirun and cfg.get("resume") is None
    with job_errors() if multirun else user_errors(), removed_if_refused(run_dir, f"{hydra_cfg.job.name}.log", new):
        config.check_known_keys(cfg)
        train_cfg = OmegaConf.to_object(cfg)
        assert isinstance(train_cfg, config.TrainConfig)
        if multirun and parallel_jobs(hydra_cfg.launcher) > 1:
            train_cfg.callbacks.progress_bar = False  # parallel jobs' bars would draw over each other
        resume = train_cfg.resume is not None and checkpoints(run_dir / RESUME_DIR)  # none: it starts again
        try:
            summary = train(train_cfg, run_dir, resume_from=latest_checkpoint(run_dir) if resume else None)
        except RunInterrupted as e:
            if not multirun:
                raise
            return {"interrupted": str(e)}  # the sweep lists the job as interrupted, and stops (multirun.py)
        line = f"run: {run_dir}\nsteps: {summary['steps']}  wall: {summary['wall_seconds']:.1f}s"
        if (final := summary["final_eval"]) is not None:
            line += f"  final eval: {final['mean_reward']:.1f} ± {final['std_reward']:.1f}"
            line += f", success {final['success_rate']:.0%}" if "success_rate" in final else ""
        if summary["solved"] is not None:
            line += f"  solved at step {summary['solved']['step']}"
        print(line)
    return summary


def _eval(cfg: DictConfig) -> None:
    from omegaconf import OmegaConf

    from rlkit import config
    from rlkit.errors import user_errors
    from rlkit.evaluate import evaluate_run

    with user_errors():
        config.check_known_keys(cfg)
        eval_cfg = OmegaConf.to_object(cfg)
        assert isinstance(eval_cfg, config.EvalRunConfig)
        report = evaluate_run(eval_cfg, on_episode=_print_episode)
        if not report.rewards:
            print("no episode finished (window closed)")
            return
        print(f"{len(report.rewards)} episodes from {report.checkpoint}: "
              f"mean reward {statistics.fmean(report.rewards):.2f} ± {statistics.pstdev(report.rewards):.2f}")
        if report.successes:
            print(f"  success rate {sum(report.successes) / len(report.successes):.0%}")
        for name, rewards in report.agent_rewards.items():
            print(f"  {name}: mean reward {statistics.fmean(rewards):.2f} ± {statistics.pstdev(rewards):.2f}")
        for team, mean in report.team_mean_rewards().items():
            by = f" (played by {eval_cfg.opponent})" if team in report.opponent_teams else ""
            print(f"  team {team}: mean reward {mean:.2f}{by}")
        if report.video is not None:
            print(f"video: {report.video}")


def _print_episode(index: int, played: Any) -> None:
    line = f"episode {index + 1}: reward {played.rewards[0]:.1f}, length {played.lengths[0]}"
    if played.agent_rewards:
        line += " (" + ", ".join(f"{name} {r[0]:.1f}" for name, r in played.agent_rewards.items()) + ")"
    print(line)


def _program(module: str) -> Callable[[list[str]], None]:
    return lambda argv: importlib.import_module(module).main(argv)


# command -> (function, Hydra config name or None for a plain program that gets its arguments, one line of help)
COMMANDS: dict[str, tuple[Callable[..., Any], str | None, str]] = {
    "train": (_train, "train", "train an agent: rlkit train env=balancing_pole agent=dqn seed=3"),
    "eval": (_eval, "eval", "play a trained run: rlkit eval run=runs/<env>/<agent>/<time> render_mode=human"),
    "plot": (_program("rlkit.plot"), None,
             "learning curves, mean and 95% interval over seeds: rlkit plot runs/multirun/<time>"),
    "verify": (_program("rlkit.verify"), None,
               "re-run a run's first steps and check they repeat bit for bit: rlkit verify run=<run dir> steps=5000"),
    "export": (_program("rlkit.exporter"), None,
               "the policy as a file for deployment: rlkit export run=<run dir> format=onnx|torchscript"),
}

USAGE = """usage: rlkit <command> [KEY=VALUE ...] [--help]

commands:
{commands}

train and eval take Hydra overrides (KEY=VALUE, GROUP=CHOICE, -m for a multirun).
`rlkit <command> --help` lists its config groups, keys, values and what each means;
`rlkit <command> --hydra-help` shows Hydra's own options. plot takes directories: `rlkit plot --help`;
verify takes run=<run dir> steps=N; export: `rlkit export --help`. run= also takes latest (the newest run under
runs/) or a folder of runs (its newest). `rlkit --version` prints the version."""


def positional_run(args: list[str]) -> list[str]:
    """``rlkit eval <run dir>``: a plain path (not an option's value) is the run, quoted for Hydra's parser."""
    def quoted(path: str) -> str:
        return "run='{}'".format(path.replace("\\", "\\\\").replace("'", "\\'"))

    return [quoted(a) if "=" not in a and not a.startswith("-") and not (i and args[i - 1].startswith("-")) else a
            for i, a in enumerate(args)]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rlkit`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    commands = "\n".join(f"  {name:<6} {text}" for name, (_, _, text) in COMMANDS.items())
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE.format(commands=commands))
        return
    if args[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(f"rlkit {version('rlkit')}")
        return
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, COMMANDS, n=1)
        print(f"rlkit: error: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}"
              + (f". Did you mean rlkit {close[0]}?" if close else ""), file=sys.stderr)
        sys.exit(2)
    from rlkit import config  # the schemas and the command line's checks: OmegaConf, no Hydra
    from rlkit.errors import DEBUG_ENV, RlkitError, user_errors

    func, config_name, summary = COMMANDS[command]
    if command == "eval":
        rest = positional_run(rest)
    with user_errors():
        if command != "plot":  # plot takes directories, not KEY=VALUE overrides
            config.check_repeated_keys(rest)
        if config_name is None:
            func(rest)
            return
        if any(a.lstrip("~+").startswith("hydra/") for a in rest):  # Hydra's groups: rlkit's plug-ins are choices too
            import hydra_plugins.rlkit_plugins  # noqa: F401
        config.check_group_choices(config_name, [a for a in rest if not a.startswith("-")])
        if command == "train":
            config.check_multirun_args(rest)
            trust = [a for a in rest if a.startswith("trust_run=")]
            rest = [a for a in rest if a not in trust]
            if any(a.startswith("resume=") for a in rest):
                from rlkit.runs import resume_overrides

                rest = resume_overrides(rest, trust == ["trust_run=true"])
            elif trust:
                raise RlkitError("trust_run= applies to resume=<run dir> (and rlkit eval, verify), not to a new run")
        config.check_override_keys(config_name, [a for a in rest if not a.startswith("-")])
    if os.environ.get(DEBUG_ENV):
        os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # errors inside Hydra's multirun too
    if "--help" in rest or "-h" in rest:
        from rlkit.manual import print_manual

        print_manual(command, summary, config_name, [a for a in rest if a not in ("--help", "-h")])
        return
    import hydra

    # "as": Hydra's plugin scan may have imported it without binding it
    import hydra_plugins.rlkit_plugins as rlkit_plugins
    from rlkit.signals import GUARD

    config.register_configs()
    rlkit_plugins.register()
    # Hydra reads sys.argv: drop the subcommand word so it sees only its overrides.
    sys.argv = [f"rlkit-{command}", *rest]
    # From here on, SIGTERM and SIGINT stop a training run (or sweep) at its next safe point, even one still starting.
    with GUARD.installed() if command == "train" else contextlib.nullcontext():
        hydra.main(config_path=f"pkg://{config.CONFIG_MODULE}", config_name=config_name, version_base="1.3")(func)()


if __name__ == "__main__":
    main()
