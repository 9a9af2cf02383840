"""The one small interface every rlkit agent implements, native or wrapped, its checkpoint, and shared plumbing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlkit.callbacks import Callback, Episode
from rlkit.errors import ConfigError, RunDirError
from rlkit.files import check_fields, load_checkpoint, optimizer_from_tensors, optimizer_to_tensors, save_checkpoint

CHECKPOINT_FORMAT = 2
"""2: optimizers' param groups under ``optimizers``. 1: at the top level of the metadata, by name."""
CHECKPOINT_META = {"format": int, "agent": str, "algo": str, "agents": list, "num_steps": int, "num_timesteps": int,
                   "step": int, "eval_mean_reward": float, "eval_score": float, "optimizers": dict}
"""The types of a checkpoint's metadata keys (those present), checked before any is used."""


def probe(make_vec: Callable[[int], Any], agent: str) -> Any:
    """One copy of the vector env, closed, for its spaces; refuses observations that are not a flat Box."""
    env = make_vec(1)
    env.close()
    space = env.single_observation_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(f"agent={agent} needs a flat Box observation space, but the environment has {space}")
    return env


def _check_tensors(path: Path, tensors: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> None:
    """Refuse a tensor of another dtype than the agent's own (loading would cast it silently), or not finite."""
    dtypes = {t.dtype for t in own.values()}
    for name, tensor in tensors.items():
        # An optimizer's moments exist only once it has stepped: until then, any dtype of the agent's fits them.
        wanted = {own[name].dtype} if name in own else dtypes
        if tensor.dtype not in wanted:
            names = " or ".join(sorted(str(d).removeprefix("torch.") for d in wanted))
            raise RunDirError(f"checkpoint {path}: tensor {name} is {str(tensor.dtype).removeprefix('torch.')}, but "
                              f"the agent's is {names}: refused, it was not written by this agent")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise RunDirError(f"checkpoint {path}: tensor {name} holds NaN or infinite values: refused (rlkit never "
                              "saves such weights; the file is damaged or was altered)")


def _param_groups(path: Path, name: str, groups: Any) -> list[dict[str, Any]]:
    """An optimizer's param groups from a checkpoint's metadata, checked: plain numbers, flags and lists of them."""
    def number(v: Any) -> bool:
        return v is None or isinstance(v, int | float)

    def plain(v: Any) -> bool:
        return number(v) or (isinstance(v, list) and all(map(number, v)))

    if not isinstance(groups, list) or not all(isinstance(g, dict) and all(map(plain, g.values())) for g in groups):
        raise RunDirError(f"checkpoint {path}'s metadata is corrupt: the param groups of {name} are not a list of "
                          "objects of numbers")
    return groups


class EpisodeStats:
    """The return and length of each copy's episode in progress, reported as an :class:`Episode` when it ends."""

    def __init__(self, copies: int, agents: list[str] | None = None) -> None:
        self.agents = agents or []
        self.returns = np.zeros((copies, len(self.agents)) if agents else copies)
        self.lengths = np.zeros(copies, dtype=np.int64)

    def step(self, rewards: np.ndarray, valid: np.ndarray, done: np.ndarray, num_steps: int, callback: Callback) -> int:
        """Count one vector step of the ``valid`` copies and report the episodes it ended; returns how many."""
        self.returns[valid] += rewards[valid]
        self.lengths += valid
        ended = np.flatnonzero(done & valid)
        for b in ended:
            for i, name in enumerate(self.agents):  # each agent's return, then the team's mean under the plain tags
                callback.on_episode_end(Episode(num_steps, float(self.returns[b, i]), int(self.lengths[b]), name))
            callback.on_episode_end(Episode(num_steps, float(self.returns[b].mean()), int(self.lengths[b])))
        self.returns[done] = 0.0
        self.lengths[done] = 0
        return len(ended)


class Agent(ABC):
    """A learner that the trainer, the evaluator and the callbacks drive the same way.

    Like SB3's ``_get_torch_save_params()``, an agent declares what its checkpoint holds (:meth:`saved_names`,
    :meth:`checkpoint_meta`); :meth:`save` and :meth:`load` write and read them as one safetensors file.
    """

    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]
    _resume: dict[str, Any] | None = None  # a training state for the next ``learn`` to continue from

    @abstractmethod
    def learn(self, total_steps: int, callback: Callback) -> None:
        """Train for ``total_steps`` environment steps (all copies together), emitting events to ``callback``."""

    @abstractmethod
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations of shape ``(n, *observation_space.shape)``."""

    # -- checkpoints
    def saved_names(self) -> list[str]:
        """The attributes (modules, optimizers) a checkpoint holds; their names prefix their tensors."""
        raise NotImplementedError

    def checkpoint_meta(self) -> dict[str, Any]:
        """JSON saved beside the tensors: ``agent`` (or ``algo``) names what wrote it; ``num_steps`` is restored."""
        raise NotImplementedError

    def get_parameters(self) -> dict[str, Any]:
        """State dicts (or plain tensors) by name, as SB3's ``get_parameters``."""
        return {name: getattr(self, name).state_dict() for name in self.saved_names()}

    def set_parameters(self, params: dict[str, Any]) -> None:
        """Load what :meth:`get_parameters` returns."""
        for name in self.saved_names():
            getattr(self, name).load_state_dict(params[name])

    def _tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """:meth:`get_parameters` as a checkpoint holds them: named tensors, and optimizers' param groups."""
        tensors: dict[str, torch.Tensor] = {}
        optimizers: dict[str, Any] = {}
        for name, value in self.get_parameters().items():
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach()
            elif "param_groups" in value:  # an optimizer's: moments as tensors, param groups as JSON
                opt_tensors, optimizers[name] = optimizer_to_tensors(value, name)
                tensors.update(opt_tensors)
            else:
                tensors.update({f"{name}.{k}": v for k, v in value.items()})
        return tensors, optimizers

    def save(self, path: Path, meta: dict[str, Any] | None = None) -> None:
        """Write weights and optimizer state to ``path`` atomically, with ``meta`` beside them."""
        tensors, optimizers = self._tensors()
        save_checkpoint(path, tensors, {"format": CHECKPOINT_FORMAT, **self.checkpoint_meta(),
                                        "optimizers": optimizers, **(meta or {})})

    def load(self, path: Path) -> dict[str, Any]:
        """Read a checkpoint written by :meth:`save` into networks of the same shape; returns its metadata.

        Its metadata's types, its tensors' dtypes (this agent's own) and their values (finite) are checked first.
        """
        tensors, meta = load_checkpoint(path)
        check_fields(meta, CHECKPOINT_META, f"checkpoint {path}'s metadata", required=False)
        if not isinstance(meta.get("format", 1), int) or meta.get("format", 1) > CHECKPOINT_FORMAT:
            raise RunDirError(f"checkpoint {path} has format {meta.get('format')!r}, newer than this rlkit reads "
                              f"({CHECKPOINT_FORMAT}): upgrade rlkit to load it")
        own = self.checkpoint_meta()
        written, expected = meta.get("algo") or meta.get("agent"), own.get("algo") or own.get("agent")
        if written != expected:
            raise RunDirError(f"checkpoint {path} was written by {written!r}, but the run's config builds {expected!r}")
        # Format 1 kept param groups at the top level (SB3's DQN: its one optimizer's as optimizer_param_groups).
        groups = meta.get("optimizers") or {"optimizer": meta.get("optimizer_param_groups"), **meta}
        _check_tensors(path, tensors, self._tensors()[0])
        params: dict[str, Any] = {}
        try:
            for name, value in self.get_parameters().items():
                if isinstance(value, torch.Tensor):
                    params[name] = tensors[name]
                elif "param_groups" in value:
                    params[name] = optimizer_from_tensors(tensors, _param_groups(path, name, groups.get(name)), name)
                else:
                    params[name] = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}
            self.set_parameters(params)
        except (RuntimeError, KeyError, ValueError) as e:
            raise RunDirError(f"checkpoint {path} does not fit the run's networks ({e})") from None
        if "num_steps" in own:
            self.num_steps = int(meta.get("num_steps", 0))
        return meta

    # Continuing an interrupted run (at ``on_safe_point``): replay buffers, the envs' state, episodes in progress.
    def training_state(self) -> dict[str, Any]:
        """Everything beyond :meth:`save` that ``learn`` needs to continue exactly (plain values, arrays)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be checkpointed mid-training")

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`training_state` (after :meth:`load`); the next ``learn`` continues from it."""
        self._resume = state
