"""The multi-agent cart-pole's config schema, apart from the env so that composing a config needs no PettingZoo."""

from __future__ import annotations

from dataclasses import dataclass

from rlkit.envs.balancing_pole import BalancingPoleConfig
from rlkit.errors import ConfigError

MULTI_CARTPOLE_ID = "rlkit/MultiCartPole-v0"
"""PettingZoo id (registered when rlkit.envs.multi_cartpole is imported)."""


@dataclass
class MultiCartPoleConfig(BalancingPoleConfig):
    """The multi-agent cart-pole (PettingZoo parallel env): one cart and pole per agent, optional springs."""

    name: str = "multi_cartpole"
    """Environment kind; selects the builder (do not change)."""
    continuous: bool = True
    """Continuous force in [-1, 1] per agent (false: discrete push left/right)."""
    num_agents: int = 2
    """Carts, one agent each."""
    coupling: float = 0.0
    """Stiffness (N/m) of the springs joining neighbouring carts (0: independent carts)."""
    observe_neighbours: bool = False
    """Each agent also observes its left and right neighbours' cart-pole states."""

    def validate(self) -> None:
        """Check values that the types alone cannot."""
        super().validate()
        if self.num_agents < 1:
            raise ConfigError(f"env.num_agents must be >= 1, got {self.num_agents}")
        if not self.coupling >= 0:
            raise ConfigError(f"env.coupling (spring stiffness) must be >= 0, got {self.coupling}")
