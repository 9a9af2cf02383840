"""A Hydra launcher that runs each job of a multirun as a Ray task: ``rlkit train -m hydra/launcher=ray ...``.

Not Hydra's ``hydra-ray-launcher``: it requires cloudpickle<3 and boto3 (so python-dateutil<3) and caps aiohttp<4,
against rlkit's pins (constraints.txt). Ray is an optional extra (``pip install 'rlkit[ray]'``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from rlkit.multirun import SweepError
from rlkit.ray_address import ADDRESS_ENV, LOOPBACK, check_reachable, local_on_loopback

log = logging.getLogger(__name__)



@dataclass
class RayInitConf:
    """Arguments of ``ray.init``: which cluster, or what local instance to start."""

    address: str | None = None
    """Cluster: host:port of its head, ray://host:port, auto (`ray start` here) or local (new); empty: RAY_ADDRESS."""
    num_cpus: int | None = None
    """CPUs of a local instance started by the sweep (empty: all cores); ignored when connecting."""
    include_dashboard: bool = False
    """Start Ray's dashboard with a local instance (needs ray[default])."""
    runtime_env: dict[str, Any] | None = None
    """Ray runtime environment of the jobs, e.g. {env_vars: {...}}; empty: the driver's environment."""


@dataclass
class RayRemoteConf:
    """Options of each job's Ray task (``.options(...)``)."""

    num_cpus: float | None = None
    """CPUs reserved per job; empty: the job's torch_threads, so Ray runs as many jobs at once as cores allow."""
    num_gpus: float = 0
    """GPUs reserved per job."""
    max_retries: int = 0
    """Re-runs of a job whose worker died (0: report it failed; a re-run would start its run directory over)."""


@dataclass
class RayConf:
    """Where (``init``) and how (``remote``) the jobs run on Ray."""

    init: RayInitConf = field(default_factory=RayInitConf)
    remote: RayRemoteConf = field(default_factory=RayRemoteConf)


@dataclass
class RayLauncherConf:
    """``hydra/launcher=ray``: each job a Ray task."""

    _target_: str = "hydra_plugins.rlkit_plugins.RayLauncher"
    ray: RayConf = field(default_factory=RayConf)


class RayLauncher(Launcher):
    """Runs a multirun's jobs as Ray tasks and gathers their results in job order."""

    def __init__(self, ray: DictConfig) -> None:
        self.ray_cfg = ray

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Keep what ``launch`` needs (Hydra calls this once per multirun)."""
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Submit one task per job, wait for all, return their ``JobReturn`` in job order."""
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        loopback_if_local(self.ray_cfg.init)
        try:
            import ray
        except ImportError:
            raise SweepError("hydra/launcher=ray needs Ray, an optional extra: pip install 'rlkit[ray]'") from None
        where = connect(ray, self.ray_cfg.init)
        cwd = str(self.config.hydra.runtime.cwd)
        # Workers may start elsewhere (the head's directory): give them the absolute sweep directory.
        sweep_dir = Path(cwd) / str(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Launching %d jobs on Ray (%s), sweep output dir: %s", len(job_overrides), where, sweep_dir)
        remote = ray.remote(run_job_remotely)
        singleton_state = Singleton.get_state()
        pending = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
                sweep_config.hydra.job.num = idx
                sweep_config.hydra.sweep.dir = str(sweep_dir)
            ref = remote.options(**task_options(self.ray_cfg.remote, sweep_config)).remote(
                self.hydra_context, self.task_function, sweep_config, singleton_state, cwd)
            pending.append((idx, list(overrides), ref))
        returns = []
        try:
            for idx, overrides, ref in pending:
                try:
                    returns.append(ray.get(ref))
                except ray.exceptions.RayError as e:  # Ray itself failed the task (worker killed, cancelled)
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    error = SweepError(f"job {idx} did not finish on Ray: {type(e).__name__}: {first}")
                    returns.append(JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=error))
        except KeyboardInterrupt:
            for _, _, ref in pending:
                ray.cancel(ref, force=True)
            raise
        return returns


def run_job_remotely(hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig,
                     singleton_state: dict[Any, Any], cwd: str) -> JobReturn:
    """A job, inside a Ray worker: Hydra's state as in the driver, then ``run_job`` as every launcher does."""
    from hydra.core.hydra_config import HydraConfig

    setup_globals()
    Singleton.set_state(singleton_state)
    if os.path.isdir(cwd):  # the driver's directory when the worker is on its machine: relative paths agree
        os.chdir(cwd)
    HydraConfig.instance().set_config(config)
    return run_job(hydra_context=hydra_context, task_function=task_function, config=config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def task_options(remote: DictConfig, sweep_config: DictConfig) -> dict[str, Any]:
    """``.options(...)`` of one job's task: CPUs from torch_threads unless set, no retries unless set."""
    num_cpus = remote.num_cpus if remote.num_cpus is not None else sweep_config.get("torch_threads", 1)
    return {"num_cpus": num_cpus, "num_gpus": remote.num_gpus, "max_retries": remote.max_retries,
            "retry_exceptions": False}


def cluster_address(init: DictConfig) -> str:
    """The Ray address a sweep uses: the launcher's, else RAY_ADDRESS, else ``local`` (a new instance)."""
    # Without an address ray.init would join a cluster that `ray start` left on this machine; "local" means a
    # new instance for this sweep, as documented (address=auto joins that cluster on purpose).
    return init.address or os.environ.get(ADDRESS_ENV) or "local"


def loopback_if_local(init: DictConfig) -> None:
    """Before Ray is imported: a new local instance serves this machine only, so it listens on 127.0.0.1."""
    local_on_loopback(cluster_address(init))


def connect(ray: Any, init: DictConfig) -> str:
    """Connect to (or start) the configured cluster once per process; returns a description of it."""
    address = cluster_address(init)
    where = "local instance" if address == "local" else f"cluster at {address}"
    if ray.is_initialized():
        return where
    source = "hydra.launcher.ray.init.address" if init.address else ADDRESS_ENV
    # Ray merges log lines of different workers that differ only in numbers; every job's result matters here.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs: dict[str, Any] = {"include_dashboard": init.include_dashboard, "log_to_driver": True}
    if init.runtime_env:
        kwargs["runtime_env"] = OmegaConf.to_container(init.runtime_env, resolve=True)
    if address == "local":
        kwargs.update(num_cpus=init.num_cpus, dashboard_host=LOOPBACK)
    elif address != "auto":  # left to Ray
        check_reachable(address, source, SweepError)
    try:
        ray.init(address=address, **kwargs)
    except Exception as e:  # ConnectionError, ValueError, AuthenticationError, RuntimeError: all the same to a user
        text = str(e).strip()
        if "auth" in text.lower() and "token" in text.lower():
            reason = ("the cluster requires token authentication: set RAY_AUTH_MODE=token and give its token in "
                      "RAY_AUTH_TOKEN (or ~/.ray/auth_token)")
        else:
            reason = f"{type(e).__name__}: {([line for line in text.splitlines() if line.strip()] or [''])[-1]}"
        at = "a new local instance" if address == "local" else f"{address} ({source})"
        raise SweepError(f"cannot start or reach Ray at {at}: {reason}") from None
    return where


