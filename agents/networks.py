"""Small network builders shared by the native agents."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def mlp(sizes: list[int], activation: str, out_gain: float = 1.0) -> nn.Sequential:
    """A float32 MLP ``sizes[0] -> ... -> sizes[-1]``, orthogonally initialised, no activation at the end.

    ``out_gain`` scales the last layer's initial weights: small values (0.01) start a policy near uniform.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(n_in, n_out)
        last = i == len(sizes) - 2
        nn.init.orthogonal_(linear.weight, gain=out_gain if last else nn.init.calculate_gain("relu")
                            if activation == "relu" else 1.0)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def grad_norm(parameters: list[torch.Tensor]) -> float:
    """The global L2 norm of the parameters' gradients."""
    norms = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    return float(torch.norm(torch.stack(norms))) if norms else 0.0
