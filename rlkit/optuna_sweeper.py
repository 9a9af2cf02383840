"""Hyperparameter search with Optuna as a Hydra sweeper (``rlkit train -m hparams_search=...``; docs/sweeps.md).

Each trial trains one job per seed; its value is the mean of their objectives. Written here, not taken from
``hydra-optuna-sweeper``: that needs optuna<3 (whose storage fails on SQLAlchemy 2) and averages no seeds.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, RunMode, TaskFunction
from omegaconf import DictConfig, OmegaConf

from rlkit.manual import as_override
from rlkit.multirun import SweepError, failure_message, parallel_jobs, preset_yaml
from rlkit.signals import GUARD

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "random")
RESULTS_FILE = "optimization_results.yaml"


@dataclass
class OptunaSweeperConf:
    """``hydra/sweeper=optuna``: an Optuna search over ``params``, several seeds per trial."""

    _target_: str = "hydra_plugins.rlkit_plugins.OptunaSweeper"  # Hydra takes plugins from hydra_plugins only
    n_trials: int = 20
    """Trials to run."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Seeds every trial trains, one job each; the trial's value is the mean of their objectives."""
    objective: str = "final_eval.mean_reward"
    """Key of a run's summary.json that scores it (final_eval.score, final_eval.success_rate, ...)."""
    direction: str = "maximize"
    """maximize or minimize the objective."""
    parallel_trials: int | None = None
    """Trials launched together; empty: the launcher's parallel jobs / seeds, so every core has a job."""
    sampler: str = "tpe"
    """tpe (Optuna's default, Bayesian) or random."""
    sampler_seed: int | None = None
    """Seed of the sampler, for a repeatable sequence of trials; empty: random."""
    study_name: str | None = None
    """Name of the study in storage (to resume it); empty: a new name."""
    storage: str | None = None
    """Optuna storage URL, e.g. sqlite:///runs/optuna.db, to resume or share a search; empty: in memory."""
    params: dict[str, Any] = field(default_factory=dict)
    """Search space: key -> sweep expression; a plain value is fixed."""
    preset: str = "best"
    """Name of the preset written for the best trial: <sweep dir>/experiment/<preset>.yaml."""


@dataclass
class Dimension:
    """One searched key: Optuna's parameter ``name``, the override's ``key`` (with any +/++ prefix)."""

    name: str
    key: str
    expression: str
    distribution: Any


class OptunaSweeper(Sweeper):
    """Runs an Optuna study whose trials are multirun jobs."""

    def __init__(self, **conf: Any) -> None:
        self.conf = OmegaConf.structured(OptunaSweeperConf(**conf))

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Instantiate the configured launcher (Hydra calls this once per multirun)."""
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> dict[str, Any]:
        """Run ``n_trials`` trials; write the results and the best trial's preset; return the results."""
        assert self.config is not None  # the base class declares it Optional; setup() sets it
        conf = self.conf
        if conf.direction not in ("maximize", "minimize"):
            raise SweepError(f"hydra.sweeper.direction={conf.direction!r}: use maximize or minimize")
        if conf.sampler not in SAMPLERS:
            raise SweepError(f"hydra.sweeper.sampler={conf.sampler!r}: use one of {', '.join(SAMPLERS)}")
        if conf.n_trials < 1:
            raise SweepError(f"hydra.sweeper.n_trials must be >= 1, got {conf.n_trials}")
        if not conf.seeds:
            raise SweepError("hydra.sweeper.seeds is empty: every trial trains at least one seed, e.g. [0, 1, 2]")
        if conf.parallel_trials is not None and conf.parallel_trials < 1:
            raise SweepError(f"hydra.sweeper.parallel_trials must be >= 1 or null, got {conf.parallel_trials}")
        if not conf.preset or "/" in conf.preset:
            raise SweepError(f"hydra.sweeper.preset={conf.preset!r} must be a file name without a directory")
        dimensions, fixed = search_space(conf.params, arguments)
        import optuna  # slow to import: only once a search starts
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}[conf.sampler]
        try:
            study = optuna.create_study(study_name=conf.study_name, storage=conf.storage,
                                        sampler=sampler(seed=conf.sampler_seed), direction=conf.direction,
                                        load_if_exists=conf.storage is not None)
        except Exception as e:  # bad storage URL, unreachable database, a study with another direction
            raise SweepError(f"hydra.sweeper.storage={conf.storage!r}: cannot open the study: {e}") from None

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        n_seeds = len(conf.seeds)
        parallel = conf.parallel_trials or max(1, math.ceil(parallel_jobs(self.config.hydra.launcher) / n_seeds))
        log.info("Optuna search: %d trials of %d seed(s) each, %d at a time, %s %s over %s",
                 conf.n_trials, n_seeds, parallel, conf.direction, conf.objective,
                 ", ".join(d.name for d in dimensions))
        distributions = {d.name: d.distribution for d in dimensions}
        trials: list[dict[str, Any]] = []
        job_idx = 0
        while len(trials) < conf.n_trials:
            asked = [study.ask(distributions) for _ in range(min(parallel, conf.n_trials - len(trials)))]
            batch = []
            for trial in asked:
                overrides = [*fixed, *(f"{d.key}={override_value(trial.params[d.name])}" for d in dimensions)]
                trial.set_user_attr("overrides", overrides)
                batch += [[*overrides, f"seed={seed}"] for seed in conf.seeds]
            try:  # compose every job first, so a bad key fails once, here, with its name
                self.validate_batch_is_legal(batch)
            except HydraException as e:
                raise SweepError(f"a trial's overrides do not compose ({' '.join(batch[0])}): {e}") from None
            returns = self.launcher.launch(batch, initial_job_idx=job_idx)
            if GUARD.poll() is not None:  # stopped: no more trials; the index lists the interrupted jobs
                return {}
            for i, trial in enumerate(asked):
                jobs = list(range(job_idx + i * n_seeds, job_idx + (i + 1) * n_seeds))
                trials.append(self._tell(study, trial, returns[i * n_seeds:(i + 1) * n_seeds], jobs))
            job_idx += len(batch)

        failed = sum(t["state"] != "COMPLETE" for t in trials)
        if failed == len(trials):
            first = trials[0]
            raise SweepError(f"all {len(trials)} trials failed; the first (jobs {_span(first['jobs'])}): "
                             f"{first['error']}")
        best = study.best_trial
        results = {"study": study.study_name, "direction": conf.direction, "objective": conf.objective,
                   "seeds": list(conf.seeds), "best_trial": best.number, "best_value": best.value,
                   "best_params": dict(best.params), "best_overrides": list(best.user_attrs.get("overrides", [])),
                   "trials": trials}
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / RESULTS_FILE).write_text(yaml.safe_dump(results, sort_keys=False))
        preset = self.write_preset(best, dimensions, sweep_dir)
        seeds, absolute = ", ".join(map(str, conf.seeds)), preset.parent.parent.resolve()
        print(f"best of {len(trials)} trials" + (f" ({failed} failed)" if failed else "")
              + f": trial {best.number}, {conf.objective} {best.value:.4g} over seeds {seeds}\n"
              f"  {' '.join(f'{k}={override_value(v)}' for k, v in best.params.items())}\n"
              f"  results: {sweep_dir / RESULTS_FILE}\n"
              f"  preset:  {preset}\n"
              f"  train it: rlkit train experiment={conf.preset} 'hydra.searchpath=[file://{absolute}]'")
        return results

    def _tell(self, study: Any, trial: Any, returns: Sequence[JobReturn], jobs: list[int]) -> dict[str, Any]:
        """Tell Optuna a trial's value (the mean over its seeds) or its failure; returns its record."""
        from optuna.trial import TrialState

        objective = self.conf.objective
        record: dict[str, Any] = {"number": trial.number, "state": "FAIL", "value": None,
                                  "params": dict(trial.params), "seed_values": [], "jobs": jobs, "error": None}
        failed = [(job, r) for job, r in zip(jobs, returns, strict=True) if r.status != JobStatus.COMPLETED]
        if failed:  # _return_value: the property would re-raise the job's error
            record["error"] = f"job {failed[0][0]}: {failure_message(failed[0][1]._return_value)}"
        else:
            values = [objective_value(r._return_value, objective, job) for job, r in zip(jobs, returns, strict=True)]
            if any(v is None or math.isnan(v) for v in values):
                record["error"] = f"{objective} is empty in jobs {_span(jobs)}"
            else:
                record.update(state="COMPLETE", value=statistics.fmean(values), seed_values=values)
        if record["error"]:
            study.tell(trial, state=TrialState.FAIL)
            log.warning("trial %d (jobs %s) failed: %s", trial.number, _span(jobs), record["error"])
        else:
            study.tell(trial, record["value"])
            best = study.best_trial
            log.info("trial %d (jobs %s): %s %.4g (seeds: %s); best: trial %d, %.4g", trial.number, _span(jobs),
                     objective, record["value"], ", ".join(f"{v:.4g}" for v in record["seed_values"]),
                     best.number, best.value)
        return record

    def write_preset(self, best: Any, dimensions: Sequence[Dimension], sweep_dir: Path) -> Path:
        """Write the best trial as ``<sweep dir>/experiment/<preset>.yaml``; returns its path."""
        assert self.config is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        config_name = self.config.hydra.job.config_name
        overrides = list(best.user_attrs.get("overrides", []))
        best_cfg = loader.load_sweep_config(self.config, [*overrides, f"seed={self.conf.seeds[0]}"])
        choices = best_cfg.hydra.runtime.choices
        bare = loader.load_configuration(config_name=config_name, overrides=[], run_mode=RunMode.RUN)
        groups = {g: choices[g] for g in ("env", "agent")} | {  # then the groups whose choice is not the default
            g: c for g, c in choices.items()
            if "/" not in g and g not in ("experiment", "hparams_search") and c != bare.hydra.runtime.choices.get(g)}
        base = loader.load_configuration(config_name=config_name,
                                         overrides=[f"{g}={c}" for g, c in groups.items()], run_mode=RunMode.RUN)
        absolute = Path(str(self.config.hydra.runtime.cwd)) / sweep_dir
        header = [
            f"Best trial of an Optuna search (rlkit's sweeper): trial {best.number}, {self.conf.objective} "
            f"{best.value:.4g}",
            f"(the mean over seeds {', '.join(map(str, self.conf.seeds))}). Sweep: {absolute}",
            "Searched:", *(f"  {d.name}: {d.expression}" for d in dimensions),
            "Train it:",
            f"  rlkit train experiment={self.conf.preset} 'hydra.searchpath=[file://{absolute}]'",
            "Keep it: copy this file to configs/experiment/<env>_<agent>.yaml (or <env>_<variant>_<agent>.yaml)",
            "and train it with experiment=<that name>.",
        ]
        task = [k for k in best_cfg if k != "hydra"]  # what the task function receives
        text = preset_yaml(OmegaConf.masked_copy(best_cfg, task), OmegaConf.masked_copy(base, task), groups, header,
                           keep=[d.name for d in dimensions])
        path = sweep_dir / "experiment" / f"{self.conf.preset}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


def search_space(params: DictConfig | dict[str, Any], arguments: Sequence[str]) -> tuple[list[Dimension], list[str]]:
    """The searched dimensions and the fixed overrides; the command line adds to ``params`` or fixes a key."""
    parser = OverridesParser.create()
    dimensions: dict[str, Dimension] = {}
    fixed: list[str] = []
    declared = OmegaConf.to_container(params, resolve=True) if OmegaConf.is_config(params) else dict(params)
    assert isinstance(declared, dict)
    for key, expression in declared.items():
        text = expression if isinstance(expression, str) else as_override(expression)
        override = _parse(parser, f"{key}={text}", f"hydra.sweeper.params.{key}")
        if override.is_sweep_override():
            dimensions[override.key_or_group] = _dimension(override, text)
        else:
            fixed.append(f"{key}={text}")
    for argument in arguments:
        override = _parse(parser, argument, argument)
        if override.key_or_group == "seed":
            raise SweepError(f"{argument}: with hydra/sweeper=optuna every trial trains the seeds of "
                             "hydra.sweeper.seeds; set those instead, e.g. hydra.sweeper.seeds=[0,1,2]")
        if override.is_sweep_override():
            dimensions[override.key_or_group] = _dimension(override, argument.partition("=")[2])
        else:  # a plain value fixes the key, even one the declared space searches
            dimensions.pop(override.key_or_group, None)
            fixed = [f for f in fixed if f.partition("=")[0] != override.key_or_group]
            fixed.append(argument)
    if not dimensions:
        raise SweepError("nothing to search: declare ranges in hydra.sweeper.params (see configs/hparams_search/) "
                         "or give them on the command line, e.g. 'agent.learning_rate=tag(log, interval(1e-4, 1e-2))'")
    return list(dimensions.values()), fixed


def _parse(parser: OverridesParser, text: str, where: str) -> Override:
    try:
        return parser.parse_override(text)
    except HydraException as e:
        reason = str(e).strip().splitlines()[-1]
        raise SweepError(f"{where}: cannot read {text.partition('=')[2]!r} as a value or sweep: {reason}") from None


def _dimension(override: Override, expression: str) -> Dimension:
    """Optuna's distribution for a sweep: interval (ints if both ends are), int range with its step, categories."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    name = override.key_or_group
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if log_scale and not value.start > 0:
            raise SweepError(f"{name}={expression}: a log scale needs a start > 0")
        if isinstance(value.start, int) and isinstance(value.end, int):
            dist: Any = IntDistribution(value.start, value.end, log=log_scale)
        else:
            dist = FloatDistribution(float(value.start), float(value.end), log=log_scale)
    elif isinstance(value, RangeSweep) and not value.shuffle and all(
            isinstance(v, int) for v in (value.start, value.stop, value.step)):
        values = list(override.sweep_iterator())
        if not values:
            raise SweepError(f"{name}={expression} is empty (range excludes its end)")
        dist = IntDistribution(min(values), max(values), step=abs(int(value.step)))
    elif isinstance(value, ChoiceSweep | RangeSweep):
        pairs = zip(override.sweep_iterator(), override.sweep_string_iterator(), strict=True)
        choices = [v if isinstance(v, bool | int | float) else s for v, s in pairs]
        dist = CategoricalDistribution(choices)
    else:
        raise SweepError(f"{name}={expression}: Optuna can search interval(...), range(...) and choice(...) only")
    return Dimension(name=name, key=override.get_key_element(), expression=expression, distribution=dist)


def override_value(value: Any) -> str:
    """A sampled value as an override's value; floats keep 4 significant digits, far finer than a search resolves."""
    if isinstance(value, float):
        value = float(f"{value:.4g}")
    return value if isinstance(value, str) else as_override(value)


def objective_value(summary: Any, key: str, job: int) -> float | None:
    """The value of a dotted key of a run's summary (the task's return value)."""
    node = summary
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            keys = ", ".join(sorted(node)) if isinstance(node, dict) else "none"
            raise SweepError(f"hydra.sweeper.objective={key}: job {job}'s summary has no {part!r} "
                             f"(keys there: {keys})")
        node = node[part]
    if node is None:
        return None
    if not isinstance(node, int | float):
        raise SweepError(f"hydra.sweeper.objective={key} is not a number in job {job}'s summary: {node!r}")
    return float(node)


def _span(jobs: Sequence[int]) -> str:
    return f"{jobs[0]}-{jobs[-1]}" if len(jobs) > 1 else str(jobs[0])
