"""``reset(options={"reset_mask": mask})``, Gymnasium's vector API: only the masked copies start over."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

from rlkit.envs import BALANCING_POLE_ID, ROBOTIC_ARM_ID, MultiCartPoleEnv, MultiCartPoleVectorEnv


@pytest.mark.parametrize("env_id", [BALANCING_POLE_ID, ROBOTIC_ARM_ID])
def test_a_masked_reset_equals_gymnasiums_sync_vector_env(env_id):
    n = 4
    ours = gym.make_vec(env_id, num_envs=n, max_episode_steps=30)
    reference = SyncVectorEnv([lambda: gym.make(env_id, max_episode_steps=30) for _ in range(n)])
    np.testing.assert_array_equal(ours.reset(seed=7)[0], reference.reset(seed=7)[0])
    ours.action_space.seed(0)
    masks = [np.array([True, False, False, True]), np.array([False, True, False, False])]
    for t in range(80):
        actions = ours.action_space.sample()
        obs, rew, term, trunc, _ = ours.step(actions)
        expected = reference.step(actions)
        np.testing.assert_array_equal(obs, expected[0])
        np.testing.assert_array_equal(rew, expected[1])
        np.testing.assert_array_equal(term, expected[2])
        np.testing.assert_array_equal(trunc, expected[3])
        if t % 13 == 5:  # mid-episode: the masked copies start over, seeded or on their own streams
            options = {"reset_mask": masks[t % 2]}
            seed = 100 + t if t % 2 else None
            before = obs.copy()
            obs = ours.reset(seed=seed, options=dict(options))[0]
            np.testing.assert_array_equal(obs, reference.reset(seed=seed, options=dict(options))[0])
            kept = ~options["reset_mask"]
            np.testing.assert_array_equal(obs[kept], before[kept])
            assert not np.array_equal(obs[~kept], before[~kept])


def test_the_multi_agent_vector_env_resets_only_masked_copies():
    n, agents = 3, 2
    venv = MultiCartPoleVectorEnv(num_envs=n, num_agents=agents)
    single = MultiCartPoleEnv(num_agents=agents)
    venv.reset(seed=0)
    for _ in range(5):
        obs = venv.step(np.zeros((n, agents, 1), dtype=np.float32))[0]
    mask = np.array([False, True, False])
    reset_obs, _ = venv.reset(seed=50, options={"reset_mask": mask})
    np.testing.assert_array_equal(reset_obs[~mask], obs[~mask])
    # Copy b reset with seed s is the single env reset with seed s + b * num_agents.
    expected = single.reset(seed=50 + 1 * agents)[0]
    np.testing.assert_array_equal(reset_obs[1], np.stack([expected[a] for a in single.possible_agents]))
    # The copy starts its episode over: it runs max_episode_steps from the reset, the others from the start.
    steps = venv._steps.copy()
    assert steps.tolist() == [5, 0, 5]


@pytest.mark.parametrize("mask, error", [
    (np.array([True, False]), ValueError),  # wrong shape
    (np.array([1, 0, 1]), TypeError),  # not bool
    (np.zeros(3, dtype=bool), ValueError),  # resets nothing
])
def test_a_bad_reset_mask_is_refused_like_gymnasiums(mask, error):
    for venv in (gym.make_vec(BALANCING_POLE_ID, num_envs=3), MultiCartPoleVectorEnv(num_envs=3)):
        venv.reset(seed=0)
        with pytest.raises(error, match="reset_mask"):
            venv.reset(options={"reset_mask": mask})
