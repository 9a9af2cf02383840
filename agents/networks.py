"""Small network builders shared by the agents."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from rlkit.agents.config import ACTIVATIONS
from rlkit.errors import TrainingDiverged


def activation_fn(name: str) -> type[nn.Module]:
    """The activation class of a config name (see :data:`rlkit.agents.config.ACTIVATIONS`)."""
    return getattr(nn, ACTIVATIONS[name])


def mlp(sizes: list[int], activation: str, out_gain: float = 1.0) -> nn.Sequential:
    """A float32 MLP ``sizes[0] -> ... -> sizes[-1]``, orthogonally initialised (the last layer with ``out_gain``)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(n_in, n_out)
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, gain=out_gain if last else nn.init.calculate_gain("relu")
                            if activation == "relu" else 1.0)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(activation_fn(activation)())
    return nn.Sequential(*layers)


def grad_norm(parameters: list[torch.Tensor]) -> float:
    """The global L2 norm of the parameters' gradients."""
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))) if grads else 0.0


class StackedMLP(nn.Module):
    """``count`` independent MLPs of one shape (each initialised as :func:`mlp`), evaluated by batched matmuls."""

    def __init__(self, count: int, sizes: list[int], activation: str, out_gain: float = 1.0,
                 layer_norm: bool = False) -> None:
        super().__init__()
        self.count, self.layer_norm = count, layer_norm  # layer_norm: LayerNorm without learned scale and shift
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        hidden_gain = nn.init.calculate_gain("relu") if activation == "relu" else 1.0
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            gain = out_gain if i == len(sizes) - 2 else hidden_gain
            w = torch.empty(count, n_in, n_out)
            for k in range(count):
                w[k] = nn.init.orthogonal_(torch.empty(n_out, n_in), gain=gain).T
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(count, 1, n_out)))
        self.activation = activation_fn(activation)()

    def forward(self, x: torch.Tensor, first: int | None = None) -> torch.Tensor:
        """Network ``k`` (of all or of the ``first``) maps ``x[k]``: (count, batch, in) -> (count, batch, out)."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if first is not None:
                w, b = w[:first], b[:first]
            x = torch.baddbmm(b, x, w)
            if i < last:
                if self.layer_norm:
                    x = nn.functional.layer_norm(x, x.shape[-1:])
                x = self.activation(x)
        return x


def refuse_diverging_steps(optimizer: torch.optim.Optimizer, what: str, step: Callable[[], int]) -> None:
    """Make ``optimizer.step()`` raise :class:`TrainingDiverged` on NaN or infinite gradients, before applying them."""

    def check(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        params = [p for group in opt.param_groups for p in group["params"]]
        norm = grad_norm(params)
        if math.isfinite(norm):
            return
        weights_finite = all(bool(torch.isfinite(p).all()) for p in params)
        raise TrainingDiverged(
            f"training diverged at step {step()}: the gradient of {what} is {'NaN' if math.isnan(norm) else 'inf'} "
            "(a NaN or infinite loss); "
            "the update was not applied"
            + ("" if weights_finite else ", but the weights were already NaN or infinite") + ". Try a smaller "
            "learning rate (agent.*learning_rate) or gradient clipping, and check the scale of the env's rewards and "
            "observations",
            weights_finite=weights_finite,
        )

    optimizer.register_step_pre_hook(check)
