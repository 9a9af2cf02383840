"""rlkit's environments; importing this package registers them with Gymnasium and PettingZoo.

Also ``gym.make("rlkit.envs:rlkit/BalancingPole-v1")`` without the import, and PettingZoo's module way:
``from rlkit.envs import multi_cartpole_v0``, then ``multi_cartpole_v0.parallel_env()`` (or ``env()``, AEC).
"""

import pettingzoo
from gymnasium.envs.registration import register, registry

from rlkit.envs import multi_cartpole as multi_cartpole_v0
from rlkit.envs.balancing_pole import BalancingPoleConfig, BalancingPoleEnv, BalancingPoleVectorEnv
from rlkit.envs.multi_cartpole import MultiCartPoleEnv, MultiCartPoleVectorEnv
from rlkit.envs.robotic_arm import RoboticArmConfig, RoboticArmEnv, RoboticArmVectorEnv

BALANCING_POLE_ID = "rlkit/BalancingPole-v1"
MULTI_CARTPOLE_ID = "rlkit/MultiCartPole-v0"
ROBOTIC_ARM_ID = "rlkit/RoboticArm-v1"

for env_id, module, schema in ((BALANCING_POLE_ID, "balancing_pole:BalancingPole", BalancingPoleConfig),
                               (ROBOTIC_ARM_ID, "robotic_arm:RoboticArm", RoboticArmConfig)):
    if env_id not in registry:
        register(id=env_id, entry_point=f"rlkit.envs.{module}Env", vector_entry_point=f"rlkit.envs.{module}VectorEnv",
                 max_episode_steps=schema.max_episode_steps, reward_threshold=schema.reward_threshold)

if MULTI_CARTPOLE_ID not in pettingzoo.parallel_registry:
    pettingzoo.register("parallel", MULTI_CARTPOLE_ID, entry_point="rlkit.envs.multi_cartpole:MultiCartPoleEnv")
    pettingzoo.register("aec", MULTI_CARTPOLE_ID, entry_point="rlkit.envs.multi_cartpole:env")

__all__ = ["BALANCING_POLE_ID", "MULTI_CARTPOLE_ID", "ROBOTIC_ARM_ID", "BalancingPoleEnv", "BalancingPoleVectorEnv",
           "MultiCartPoleEnv", "MultiCartPoleVectorEnv", "RoboticArmEnv", "RoboticArmVectorEnv", "multi_cartpole_v0"]
