"""rlkit's environments; importing this package registers them with Gymnasium (the multi-agent one: PettingZoo).

``rlkit.envs.multi_cartpole`` registers ``rlkit/MultiCartPole-v0`` with PettingZoo when imported. Also
``gym.make("rlkit.envs:rlkit/BalancingPole-v1")`` without the import, and PettingZoo's module way:
``from rlkit.envs import multi_cartpole_v0``, then ``multi_cartpole_v0.parallel_env()`` (or ``env()``, AEC).
The multi-agent cart-pole and PettingZoo are imported on first use, so composing a config does not load them.
"""

from importlib import import_module
from typing import Any

from gymnasium.envs.registration import register, registry

from rlkit.env_schemas import MULTI_CARTPOLE_ID, BalancingPoleConfig, RoboticArmConfig
from rlkit.envs.balancing_pole import BalancingPoleEnv, BalancingPoleVectorEnv
from rlkit.envs.robotic_arm import RoboticArmEnv, RoboticArmVectorEnv

BALANCING_POLE_ID = "rlkit/BalancingPole-v1"
ROBOTIC_ARM_ID = "rlkit/RoboticArm-v1"

for env_id, module, schema in ((BALANCING_POLE_ID, "balancing_pole:BalancingPole", BalancingPoleConfig),
                               (ROBOTIC_ARM_ID, "robotic_arm:RoboticArm", RoboticArmConfig)):
    if env_id not in registry:
        register(id=env_id, entry_point=f"rlkit.envs.{module}Env", vector_entry_point=f"rlkit.envs.{module}VectorEnv",
                 max_episode_steps=schema.max_episode_steps, reward_threshold=schema.reward_threshold)

_LAZY = {"multi_cartpole_v0": None, "MultiCartPoleEnv": "MultiCartPoleEnv",
         "MultiCartPoleVectorEnv": "MultiCartPoleVectorEnv"}  # from rlkit.envs.multi_cartpole, on first use


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rlkit.envs' has no attribute {name!r}")
    module = import_module("rlkit.envs.multi_cartpole")  # registers it with PettingZoo
    return module if _LAZY[name] is None else getattr(module, name)


__all__ = ["BALANCING_POLE_ID", "MULTI_CARTPOLE_ID", "ROBOTIC_ARM_ID", "BalancingPoleEnv", "BalancingPoleVectorEnv",
           "MultiCartPoleEnv", "MultiCartPoleVectorEnv", "RoboticArmEnv", "RoboticArmVectorEnv", "multi_cartpole_v0"]
