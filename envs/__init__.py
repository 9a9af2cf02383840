"""rlkit's environments, registered with Gymnasium under the ``rlkit/`` namespace.

Importing this package registers them::

    import gymnasium as gym
    import rlkit.envs
    env = gym.make("rlkit/BalancingPole-v1")

or, without importing it by hand, ``gym.make("rlkit.envs:rlkit/BalancingPole-v1")``.

The multi-agent cart-pole is registered with PettingZoo's registry (and, PettingZoo's older way, as a
``multi_cartpole_v0`` module with ``parallel_env()`` and ``env()``)::

    import pettingzoo
    import rlkit.envs
    env = pettingzoo.make("parallel", "rlkit/MultiCartPole-v0", num_agents=2)
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

if BALANCING_POLE_ID not in registry:
    register(
        id=BALANCING_POLE_ID,
        entry_point="rlkit.envs.balancing_pole:BalancingPoleEnv",
        vector_entry_point="rlkit.envs.balancing_pole:BalancingPoleVectorEnv",
        max_episode_steps=BalancingPoleConfig.max_episode_steps,
        reward_threshold=BalancingPoleConfig.reward_threshold,
    )

if ROBOTIC_ARM_ID not in registry:
    register(
        id=ROBOTIC_ARM_ID,
        entry_point="rlkit.envs.robotic_arm:RoboticArmEnv",
        vector_entry_point="rlkit.envs.robotic_arm:RoboticArmVectorEnv",
        max_episode_steps=RoboticArmConfig.max_episode_steps,
    )

if MULTI_CARTPOLE_ID not in pettingzoo.parallel_registry:
    pettingzoo.register("parallel", MULTI_CARTPOLE_ID, entry_point="rlkit.envs.multi_cartpole:MultiCartPoleEnv")
    pettingzoo.register("aec", MULTI_CARTPOLE_ID, entry_point="rlkit.envs.multi_cartpole:env")

__all__ = [
    "MULTI_CARTPOLE_ID",
    "BALANCING_POLE_ID",
    "BalancingPoleEnv",
    "BalancingPoleVectorEnv",
    "MultiCartPoleEnv",
    "MultiCartPoleVectorEnv",
    "ROBOTIC_ARM_ID",
    "RoboticArmEnv",
    "RoboticArmVectorEnv",
    "multi_cartpole_v0",
]
