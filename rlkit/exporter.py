"""``rlkit export run=<run dir> format=onnx|torchscript``: a run's deterministic policy as a file for deployment.

The file maps a float32 batch of observations (input ``obs``, shape ``(batch, *observation shape)``) to the
actions ``rlkit eval`` would take (output ``action``), in the env's own action space; a JSON file beside it
describes the spaces. A multi-agent run (MADDPG) gets one file per agent (docs/api.md).
"""

from __future__ import annotations

import copy
import io
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rlkit.errors import RlkitError
from rlkit.evaluate import LoadedRun, load_run
from rlkit.files import atomic_write, write_json

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
USAGE = ("usage: rlkit export run=<run dir> format=onnx|torchscript [checkpoint=best|last|<file>] [out=<dir>] "
         "[trust_run=true]   (files go to <run>/export/ unless out= names a folder)")


class ExportError(RlkitError):
    """This run's policy cannot be written as a file for deployment."""


class _ReinforcePolicy(nn.Module):
    """REINFORCE's greedy action: the argmax of the logits, or the Gaussian mean squashed or clipped into bounds."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:  # noqa: D102
        p = self.policy
        out = p.net(obs)
        if p.discrete:  # as Categorical(logits=out).logits.argmax(-1)
            return (out - out.logsumexp(-1, keepdim=True)).argmax(-1)
        mean = out[:, :p.act_dim] if p.state_dependent_std else out
        if p.squash:
            action = p.low + (torch.tanh(mean) + 1.0) * 0.5 * (p.high - p.low)
        else:
            action = torch.maximum(torch.minimum(mean, p.high), p.low)
        return action.reshape(-1, *p.action_shape)


class _SB3Policy(nn.Module):
    """An SB3 policy's deterministic ``predict``: its ``_predict``, then unscaled or clipped, or un-discretised."""

    def __init__(self, policy: nn.Module, space: spaces.Space[Any], discretized: Any) -> None:
        super().__init__()
        self.policy, self.box = policy, isinstance(space, spaces.Box)
        self.squash = bool(getattr(policy, "squash_output", False))
        if self.box:
            self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32))
        self.discretized = discretized is not None
        if discretized is not None:  # index k -> dimension j takes values[j, (k // bins**j) % bins]
            dims = int(discretized.n_dims)
            bins = np.broadcast_to(np.asarray(discretized.bins, dtype=np.int64), (dims,))
            self.register_buffer("bins", torch.as_tensor(bins.copy()))
            self.register_buffer("powers", torch.as_tensor(bins ** np.arange(dims)))
            self.register_buffer("values", torch.as_tensor(discretized.values))  # (dims, bins)
            self.register_buffer("rows", torch.arange(dims))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:  # noqa: D102
        action = self.policy._predict(obs, deterministic=True)
        if self.discretized:
            digits = (action.reshape(-1, 1) // self.powers) % self.bins  # (batch, dims)
            return self.values[self.rows, digits]
        if self.box:
            action = action.reshape(-1, *self.low.shape)
            if self.squash:  # SB3's unscale_action: [-1, 1] -> [low, high]
                return self.low + 0.5 * (action + 1.0) * (self.high - self.low)
            return torch.maximum(torch.minimum(action, self.high), self.low)
        return action.reshape(-1)


class _MADDPGActor(nn.Module):
    """One MADDPG agent's greedy action from its own actor (the target actor where evaluation uses it)."""

    def __init__(self, agent: Any, index: int) -> None:
        super().__init__()
        actor = agent.target_actor if agent.cfg.eval_target_actor else agent.actor
        k = 0 if agent.cfg.share_parameters else index
        self.weights = nn.ParameterList([nn.Parameter(w[k:k + 1].detach().clone()) for w in actor.weights])
        self.biases = nn.ParameterList([nn.Parameter(b[k:k + 1].detach().clone()) for b in actor.biases])
        self.activation, self.mirror, self.discrete = actor.activation, agent.cfg.mirror_symmetry, agent.discrete
        if not agent.discrete:
            self.register_buffer("low", agent._low.clone())
            self.register_buffer("high", agent._high.clone())

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(0)  # (1, batch, in): StackedMLP's layout, so the same batched matmuls
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = self.activation(x)
        return x.squeeze(0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = 0.5 * (self._net(obs) - self._net(-obs)) if self.mirror else self._net(obs)
        if self.discrete:
            return out.argmax(-1)
        return self.low + (torch.tanh(out) + 1.0) * 0.5 * (self.high - self.low)


class _RLlibPolicy(nn.Module):
    """An RLlib policy's deterministic action, from rlkit's plain torch copy of its actor path."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.policy.mode(obs)


def policy_modules(loaded: LoadedRun) -> dict[str | None, nn.Module]:
    """The run's deterministic policy as modules (obs batch in, action batch out): one, or one per agent by name."""
    from rlkit.agents.joint_control import JointControlAgent
    from rlkit.agents.maddpg import MADDPG
    from rlkit.agents.reinforce import Reinforce
    from rlkit.agents.rllib import RLlibAgent
    from rlkit.agents.sb3 import SB3Agent

    agent, name = loaded.agent, loaded.config.agent.name
    if isinstance(agent, JointControlAgent):
        raise ExportError(f"agent={name} controls {loaded.env.label}'s agents jointly: its actions are split "
                          "among the agents outside its network, so there is no per-agent policy to export. "
                          "Train it with agent=maddpg for one exportable policy per agent")
    if isinstance(agent, Reinforce):
        modules: dict[str | None, nn.Module] = {None: _ReinforcePolicy(copy.deepcopy(agent.policy))}
    elif isinstance(agent, SB3Agent):
        modules = {None: _SB3Policy(copy.deepcopy(agent.model.policy), agent.action_space, agent._discretized)}
    elif isinstance(agent, RLlibAgent):
        modules = {None: _RLlibPolicy(copy.deepcopy(agent.policy))}
    elif isinstance(agent, MADDPG):
        modules = ({None: _MADDPGActor(agent, 0)} if agent.single_agent else
                   {a: _MADDPGActor(agent, i) for i, a in enumerate(agent.agents)})
    else:
        raise ExportError(f"agent={name} ({type(agent).__name__}) has no export: rlkit exports REINFORCE, MADDPG, "
                          "stable-baselines3's and RLlib's algorithms")
    for module in modules.values():  # copies: the loaded agent's own networks keep their gradients
        module.eval().requires_grad_(False)
    return modules


def space_json(space: spaces.Space[Any]) -> dict[str, Any]:
    """A space as JSON: Box with shape, dtype and bounds (null where unbounded), Discrete with n and start."""
    if isinstance(space, spaces.Box):
        def bounds(a: np.ndarray) -> Any:
            return [None if not math.isfinite(v) else v for v in a.astype(float).ravel().tolist()]
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype), "low": bounds(space.low),
                "high": bounds(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    return {"type": type(space).__name__, "repr": str(space)}


def _write(module: nn.Module, example: torch.Tensor, path: Path, fmt: str) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's and the exporter's deprecation notices
        if fmt == "torchscript":
            traced = torch.jit.trace(module, example)
            atomic_write(path, _saved_bytes(traced))
            return
        try:
            import onnx  # noqa: F401  (torch.onnx needs it)
        except ImportError:
            raise ExportError("format=onnx needs the onnx package: pip install 'rlkit[export]'") from None
        buffer = io.BytesIO()
        torch.onnx.export(module, (example,), buffer, input_names=["obs"], output_names=["action"],
                          dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, dynamo=False)
        atomic_write(path, buffer.getvalue())


def _saved_bytes(traced: torch.jit.ScriptModule) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    return buffer.getvalue()


def export_run(loaded: LoadedRun, fmt: str, out: Path | None = None) -> list[Path]:
    """Write ``loaded``'s policy as ``fmt`` into ``out`` (default ``<run>/export``); returns the files written.

    Files: ``<checkpoint>.<ext>`` (multi-agent: ``<checkpoint>-<agent>.<ext>``) and ``<checkpoint>.json``.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format={fmt} is not an export format; choose one of: {', '.join(FORMATS)}")
    modules = policy_modules(loaded)
    folder = loaded.dir / "export" if out is None else out
    folder.mkdir(parents=True, exist_ok=True)
    env = loaded.env.make(None)
    env.close()
    stem = loaded.checkpoint.stem
    description: dict[str, Any] = {
        "format": fmt, "run": str(loaded.dir), "checkpoint": str(loaded.checkpoint), "env": loaded.env.label,
        "agent": loaded.config.agent.name, "input": "obs (float32, shape (batch, *observation_space.shape))",
        "output": "action (shape (batch, *action_space.shape); a Discrete action is an int64 index)",
    }
    written = []
    for name, module in modules.items():
        if name is None:
            obs_space, act_space = env.observation_space, env.action_space
        else:
            obs_space, act_space = loaded.agent.observation_space, getattr(env, "single_action_space", env.action_space)
        example = torch.as_tensor(np.stack([obs_space.sample() for _ in range(2)]), dtype=torch.float32)
        path = folder / f"{stem}{'' if name is None else '-' + name}{FORMATS[fmt]}"
        _write(module, example, path, fmt)
        written.append(path)
        entry = {"file": path.name, "observation_space": space_json(obs_space), "action_space": space_json(act_space)}
        if name is None:
            description.update(entry)
        else:
            description.setdefault("agents", {})[name] = entry
    json_path = folder / f"{stem}.json"
    write_json(json_path, description)
    return [*written, json_path]


def main(argv: Sequence[str]) -> None:
    """``rlkit export``: writes the files and names them."""
    if {"-h", "--help"} & set(argv):
        print(__doc__.split("\n\n")[0] + "\n\n" + USAGE)
        sys.exit(0)
    values = {"checkpoint": "best", "trust_run": "false"}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep and "run" not in values:  # a positional run directory, as rlkit eval <dir>
            key, value = "run", arg
        elif not sep or key not in ("run", "format", "checkpoint", "out", "trust_run"):
            raise RlkitError(f"rlkit export takes run=, format=, checkpoint=, out=, trust_run=, not {arg!r}\n{USAGE}")
        values[key] = value
    for needed in ("run", "format"):
        if needed not in values:
            raise RlkitError(f"rlkit export needs {needed}=\n{USAGE}")
    if values["format"] not in FORMATS:
        raise RlkitError(f"format={values['format']} is not an export format; choose one of: {', '.join(FORMATS)}")
    if values["trust_run"] not in ("true", "false"):
        raise RlkitError(f"trust_run must be true or false, got {values['trust_run']!r}")
    loaded = load_run(values["run"], values["checkpoint"], values["trust_run"] == "true")
    for path in export_run(loaded, values["format"], Path(values["out"]) if "out" in values else None):
        print(f"wrote {path}")
