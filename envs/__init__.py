"""rlkit's environments, registered with Gymnasium under the ``rlkit/`` namespace.

Importing this package registers them::

    import gymnasium as gym
    import rlkit.envs
    env = gym.make("rlkit/BalancingPole-v1")

or, without importing it by hand, ``gym.make("rlkit.envs:rlkit/BalancingPole-v1")``.
"""

from gymnasium.envs.registration import register, registry

from rlkit.envs.balancing_pole import BalancingPoleEnv, BalancingPoleVectorEnv

BALANCING_POLE_ID = "rlkit/BalancingPole-v1"

if BALANCING_POLE_ID not in registry:
    register(
        id=BALANCING_POLE_ID,
        entry_point="rlkit.envs.balancing_pole:BalancingPoleEnv",
        vector_entry_point="rlkit.envs.balancing_pole:BalancingPoleVectorEnv",
        max_episode_steps=500,
        reward_threshold=475.0,
    )

__all__ = ["BALANCING_POLE_ID", "BalancingPoleEnv", "BalancingPoleVectorEnv"]
