"""The multi-agent cart-pole the PettingZoo way: ``parallel_env()`` and ``env()`` (AEC) factories.

```python
from rlkit.envs import multi_cartpole_v0
env = multi_cartpole_v0.parallel_env(num_agents=3, coupling=2.0)
aec = multi_cartpole_v0.env()
```
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils import parallel_to_aec, wrappers

from rlkit.envs.multi_cartpole import MultiCartPoleEnv, MultiCartPoleVectorEnv


def parallel_env(**kwargs: Any) -> MultiCartPoleEnv:
    """A :class:`MultiCartPoleEnv` (PettingZoo Parallel API); keyword arguments as its constructor's."""
    return MultiCartPoleEnv(**kwargs)


def env(**kwargs: Any) -> Any:
    """The same environment through PettingZoo's AEC API (agents act in turn), with PettingZoo's checks."""
    return wrappers.OrderEnforcingWrapper(parallel_to_aec(parallel_env(**kwargs)))


def vector_env(num_envs: int, **kwargs: Any) -> MultiCartPoleVectorEnv:
    """``num_envs`` copies stepped together with arrays (see :class:`MultiCartPoleVectorEnv`)."""
    return MultiCartPoleVectorEnv(num_envs=num_envs, **kwargs)
