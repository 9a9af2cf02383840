"""Env copies off the training process: Gymnasium's ``AsyncVectorEnv`` on this machine, or Ray actors anywhere.

Both keep Gymnasium's vector API with NEXT_STEP autoreset (as rlkit's batched envs): the step after an episode's end
resets that copy (reward 0, the action ignored). Copy ``i`` reset with seed ``s`` gets ``s + i``, as in a
``SyncVectorEnv``, so the copies' episodes equal the in-process ones for the same seed and actions.

A copy's process or actor that dies raises :class:`~rlkit.errors.EnvWorkerDied`; the trainer stops the run with it
(docs/environments.md). Ray is imported only by :func:`connect`, and connecting follows rlkit.ray_launcher: a new
local instance listens on 127.0.0.1 only, a cluster named by RAY_ADDRESS is probed first (fast failure).
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.async_vector_env import AsyncState
from gymnasium.vector.utils import concatenate, create_empty_array

from rlkit.errors import ConfigError, EnvWorkerDied
from rlkit.ray_address import ADDRESS_ENV, LOOPBACK, check_reachable, local_on_loopback

START_TIMEOUT_S = 120.0  # for the actors to be placed and build their copies


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


def check_pickles(make: Callable[[], Any], label: str) -> None:
    """Refuse, in one line, a maker that cannot be sent to another process (cloudpickle, as Gymnasium and Ray do)."""
    import cloudpickle

    try:
        cloudpickle.dumps(make)
    except Exception as e:  # TypeError, PicklingError, AttributeError...: the message names the object
        raise ConfigError(f"{label} cannot be sent to another process: its maker does not pickle ({_first_line(e)}); "
                          "register the env in an importable module (env.id=mymodule:MyEnv-v0), or use "
                          "env.vectorization=sync") from None


class AsyncCopies(gym.vector.AsyncVectorEnv):
    """Gymnasium's ``AsyncVectorEnv`` (one subprocess per copy, NEXT_STEP autoreset) whose dead copy is named.

    The copies' processes start from a fork server (``forkserver``, as SB3's ``SubprocVecEnv``): never a fork of
    the training process, whose torch and Ray threads a fork would copy mid-flight. Their makers are pickled
    (cloudpickle) to them. A copy whose process ends (killed, or ``os._exit``) makes Gymnasium's pipes fail with
    ``EOFError`` or ``ConnectionError``; that becomes :class:`EnvWorkerDied`, and every other copy is closed.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], label: str) -> None:
        self.label = label
        for make in env_fns[:1]:
            check_pickles(make, label)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["rlkit.envs.checks"])  # imported once by the server, not by every copy
        try:
            super().__init__(list(env_fns), autoreset_mode=AutoresetMode.NEXT_STEP, context="forkserver")
        except (EOFError, ConnectionError) as e:  # a copy's process ended while starting; its traceback is above
            raise ConfigError(f"{label}'s copies could not be made in subprocesses: a copy's process ended as it "
                              f"started ({_first_line(e)}); its error is printed above") from None

    def step_wait(self, timeout: float | None = None) -> Any:  # noqa: D102  (the base class's)
        try:
            return super().step_wait(timeout)
        except (EOFError, ConnectionError, BrokenPipeError) as e:
            raise self._died(e) from None

    def reset_wait(self, timeout: float | None = None) -> Any:  # noqa: D102  (the base class's)
        try:
            return super().reset_wait(timeout)
        except (EOFError, ConnectionError, BrokenPipeError) as e:
            raise self._died(e) from None

    def _died(self, e: BaseException) -> EnvWorkerDied:
        dead = [i for i, p in enumerate(self.processes) if not p.is_alive()]
        codes = ", ".join(str(self.processes[i].exitcode) for i in dead)
        which = f"copy {dead[0]} (exit code {codes})" if len(dead) == 1 else \
            f"copies {', '.join(map(str, dead))} (exit codes {codes})" if dead else "a copy"
        self._state = AsyncState.DEFAULT  # nothing left to wait for: close ends the other copies
        self.close(terminate=True)
        return EnvWorkerDied(f"the process of {which} of {self.label} died mid-run ({_first_line(e)})")


class AgentRewardsInInfo(gym.Wrapper):  # type: ignore[type-arg]
    """A multi-agent copy for :class:`AsyncCopies`: its rewards in ``info["agent_rewards"]``, the reward their sum.

    Gymnasium's subprocess gives a copy that resets (NEXT_STEP) the reward 0, a number, which cannot be stacked with
    the other copies' arrays; infos of any shape can.
    """

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:  # noqa: D102  (the base class's)
        obs, rewards, terminated, truncated, info = self.env.step(action)
        return obs, float(np.sum(rewards)), terminated, truncated, {**info, "agent_rewards": rewards}


class _CopiesActor:
    """Inside a Ray actor: ``num_envs`` copies stepped in turn, NEXT_STEP autoreset, one call per vector step."""

    def __init__(self, make: Callable[[], gym.Env], num_envs: int) -> None:
        self.envs = [make() for _ in range(num_envs)]
        self.autoreset = np.zeros(num_envs, dtype=bool)
        agents = getattr(self.envs[0], "possible_agents", None)  # a multi-agent copy: one reward per agent
        self.no_reward = 0.0 if agents is None else np.zeros(len(agents), dtype=np.float32)

    def spaces(self) -> tuple[gym.Space[Any], gym.Space[Any], dict[str, Any]]:
        env = self.envs[0]
        return env.observation_space, env.action_space, dict(env.metadata)

    def reset(self, seeds: list[int | None], mask: list[bool]) -> tuple[list[Any], list[dict[str, Any]]]:
        obs, infos = [], []
        for env, seed, do in zip(self.envs, seeds, mask, strict=True):
            o, info = env.reset(seed=seed) if do else (None, {})
            obs.append(o)
            infos.append(info)
        self.autoreset[np.asarray(mask, dtype=bool)] = False
        return obs, infos

    def step(self, actions: Any) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        n = len(self.envs)
        obs, rewards, infos = [], [], []
        terminated, truncated = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        for i, env in enumerate(self.envs):
            if self.autoreset[i]:
                o, info = env.reset()
                r = self.no_reward
            else:
                o, r, terminated[i], truncated[i], info = env.step(actions[i])
            obs.append(o)
            rewards.append(r)
            infos.append(info)
        self.autoreset = terminated | truncated
        return obs, np.array(rewards), terminated, truncated, infos

    def close(self) -> None:
        for env in self.envs:
            env.close()


def connect(actors: int) -> Any:
    """The ``ray`` module, connected to RAY_ADDRESS's cluster or a new local instance (loopback only)."""
    if importlib.util.find_spec("ray") is None:
        raise ConfigError("env.vectorization=ray needs Ray, an optional extra: pip install 'rlkit[ray]' (or "
                          "env.vectorization=async: subprocesses on this machine)")
    address = os.environ.get(ADDRESS_ENV) or "local"
    local_on_loopback(address)
    if address not in ("local", "auto"):
        check_reachable(address)
    import ray

    if ray.is_initialized():  # a run inside a Ray task (the Ray sweep launcher), or a second vector env
        return ray
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if address == "local":  # room for every actor, whatever the core count: they wait on the copies' steps
        kwargs.update(num_cpus=max(os.cpu_count() or 1, actors), dashboard_host=LOOPBACK)
    saved = os.environ.get("PYTHONPATH")
    if address == "local":  # the instance's workers import what this process can (an env's module on sys.path)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [*sys.path, saved or ""] if p and os.path.isdir(p))
    try:
        ray.init(address=address, **kwargs)
    except Exception as e:  # ConnectionError, ValueError, RuntimeError: all the same to a user
        at = "a new local instance" if address == "local" else f"{address} ({ADDRESS_ENV})"
        raise ConfigError(f"env.vectorization=ray cannot start or reach Ray at {at}: {_first_line(e)}") from None
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return ray


class RayVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies from ``make()`` spread over ``actors`` Ray actors, each stepping its share as one call.

    One vector step sends every actor its copies' actions at once and waits for all: the copies step in parallel
    across actors, in turn within one. ``make`` is pickled to the actors (cloudpickle) and called there: the env's
    module must be importable on the workers (``env.id=mymodule:MyEnv-v0`` imports it, which registers the id).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, make: Callable[[], gym.Env], num_envs: int, actors: int, label: str) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.label = label
        check_pickles(make, label)
        self._ray = ray = connect(actors)
        self.num_envs = num_envs
        actors = min(actors, num_envs)
        sizes = [num_envs // actors + (i < num_envs % actors) for i in range(actors)]
        self._slices = [slice(sum(sizes[:i]), sum(sizes[:i + 1])) for i in range(actors)]
        remote = ray.remote(num_cpus=1, max_restarts=0)(_CopiesActor)
        self._actors = [remote.remote(make, size) for size in sizes]
        try:
            found = ray.get([a.spaces.remote() for a in self._actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise ConfigError(f"Ray placed no {actors} actors (1 CPU each) for {label}'s copies within "
                              f"{START_TIMEOUT_S:.0f} s: the cluster has too few free CPUs; lower env.ray_actors") \
                from None
        except ray.exceptions.RayError as e:
            self.close()
            cause = getattr(e, "cause", None) or e
            raise ConfigError(f"{label}'s copies could not be made on a Ray worker: {_first_line(cause)}") from None
        obs_space, act_space, env_metadata = found[0]
        self.single_observation_space, self.single_action_space = obs_space, act_space
        self.observation_space = gym.vector.utils.batch_space(obs_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(act_space, num_envs)
        self.metadata = {**env_metadata, "autoreset_mode": AutoresetMode.NEXT_STEP}
        self.render_mode = None
        self._obs = create_empty_array(obs_space, num_envs)
        self._last: list[Any] = [None] * num_envs
        self.copy_infos: list[dict[str, Any]] = [{} for _ in range(num_envs)]
        """The last step's info of each copy, as the copy returned it (Gymnasium's vector info merges them)."""

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset every copy (or ``options["reset_mask"]``'s); copy ``i`` gets ``seed + i``."""
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)] if not isinstance(seed, Sequence) \
            else list(seed)
        mask = np.ones(self.num_envs, dtype=bool) if not options or "reset_mask" not in options else \
            np.asarray(options["reset_mask"], dtype=bool)
        parts = self._call("reset", [((seeds[s], mask[s].tolist())) for s in self._slices])
        infos: dict[str, Any] = {}
        for s, (obs, part_infos) in zip(self._slices, parts, strict=True):
            for j, (o, info) in enumerate(zip(obs, part_infos, strict=True), start=s.start):
                if mask[j]:
                    self._last[j] = o
                    infos = self._add_info(infos, info, j)
        return self._batch(), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy (those whose episode ended last step reset instead)."""
        actions = list(gym.vector.utils.iterate(self.action_space, actions))
        parts = self._call("step", [(actions[s],) for s in self._slices])
        rewards = np.concatenate([part[1] for part in parts])
        terminated, truncated = np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool)
        infos: dict[str, Any] = {}
        self.copy_infos = []
        for s, (obs, _, term, trunc, part_infos) in zip(self._slices, parts, strict=True):
            self._last[s] = obs
            terminated[s], truncated[s] = term, trunc
            self.copy_infos += part_infos
            for j, info in enumerate(part_infos, start=s.start):
                infos = self._add_info(infos, info, j)
        return self._batch(), rewards, terminated, truncated, infos

    def _batch(self) -> Any:
        return concatenate(self.single_observation_space, self._last, self._obs).copy()

    def _call(self, method: str, args: list[tuple[Any, ...]]) -> list[Any]:
        ray = self._ray
        refs = [getattr(a, method).remote(*a_args) for a, a_args in zip(self._actors, args, strict=True)]
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as e:  # the env raised: its own error, as in the training process
            self.close()
            raise (e.cause if isinstance(e.cause, Exception) else e) from None
        except ray.exceptions.RayActorError as e:  # the actor's process died (or its node): its copies are gone
            dead = next((i for i, ref in enumerate(refs) if not self._alive(ref)), None)
            which = f"Ray actor {dead} (copies {self._slices[dead].start}-{self._slices[dead].stop - 1})" \
                if dead is not None else "a Ray actor"
            self.close()
            first = (str(e).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")  # then Ray's possible causes
            raise EnvWorkerDied(f"{which} of {self.label} died mid-run ({type(e).__name__}: {first})") from None

    def _alive(self, ref: Any) -> bool:
        try:
            self._ray.get(ref, timeout=0)
        except self._ray.exceptions.RayActorError:
            return False
        except Exception:  # an error of the env itself, or still running: that actor lives
            return True
        return True

    def close_extras(self, **kwargs: Any) -> None:
        """End the actors (their copies with them)."""
        for actor in getattr(self, "_actors", []):
            self._ray.kill(actor)
        self._actors = []


class ParallelCopies:
    """A multi-agent env's copies elsewhere with :class:`~rlkit.envs.adapters.ParallelVectorEnv`'s array API.

    ``envs``: an :class:`AsyncCopies` or :class:`RayVectorEnv` of ``ParallelArrayEnv`` copies; ``probe``: one copy,
    for the agents and their spaces.
    """

    def __init__(self, envs: gym.vector.VectorEnv, probe: Any) -> None:
        self.envs = envs
        self.num_envs = envs.num_envs
        self.possible_agents = list(probe.possible_agents)
        self.num_agents = len(self.possible_agents)
        self.single_observation_space = probe.single_observation_space
        self.single_action_space, self.agent_action_spaces = probe.single_action_space, probe.agent_action_spaces
        self.metadata = envs.metadata

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy (copy ``i`` with ``seed + i``); observations ``(copies, agents, obs_dim)``."""
        return self.envs.reset(seed=seed, options=options)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step with actions ``(copies, agents, ...)``; rewards ``(copies, agents)``."""
        obs, rewards, terminated, truncated, infos = self.envs.step(np.asarray(actions))
        if np.ndim(rewards) == 1:  # AsyncCopies: each copy's rewards in its info (AgentRewardsInInfo)
            rewards = np.zeros((self.num_envs, self.num_agents), dtype=np.float32)
            if "agent_rewards" in infos:
                stepped = infos.pop("_agent_rewards")
                rewards[stepped] = infos.pop("agent_rewards")[stepped]
        return obs, np.asarray(rewards, dtype=np.float32), terminated, truncated, infos

    def close(self) -> None:  # noqa: D102  (the base class's)
        self.envs.close()
