import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from rlkit.envs import BALANCING_POLE_ID, BalancingPoleVectorEnv


def _lockstep(n, steps, seed, continuous=False, max_episode_steps=500, **physics):
    """Step a vector env and n single envs (seeds seed + i) with the same actions; count mismatches."""
    venv = gym.make_vec(BALANCING_POLE_ID, num_envs=n, continuous=continuous,
                        max_episode_steps=max_episode_steps, **physics)
    singles = [gym.make(BALANCING_POLE_ID, continuous=continuous, max_episode_steps=max_episode_steps,
                        **physics) for _ in range(n)]
    obs, _ = venv.reset(seed=seed)
    np.testing.assert_array_equal(obs, np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(singles)]))
    rng = np.random.default_rng(seed)
    ended = [False] * n
    episodes = truncations = 0
    for _ in range(steps):
        actions = rng.uniform(-1, 1, (n, 1)).astype(np.float32) if continuous else rng.integers(0, 2, n)
        obs, rew, term, trunc, _ = venv.step(actions)
        for i, env in enumerate(singles):
            if ended[i]:  # NEXT_STEP autoreset: this step starts a new episode, reward 0
                expected = (env.reset()[0], 0.0, False, False)
                ended[i] = False
            else:
                o, r, te, tr, _ = env.step(actions[i] if continuous else int(actions[i]))
                expected = (o, r, te, tr)
                if te or tr:
                    ended[i] = True
                    episodes += 1
                    truncations += tr
            np.testing.assert_array_equal(obs[i], expected[0])
            assert (rew[i], term[i], trunc[i]) == expected[1:]
    return episodes, truncations


def test_registered_as_the_vector_entry_point():
    envs = gym.make_vec(BALANCING_POLE_ID, num_envs=3)
    assert isinstance(envs, BalancingPoleVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.max_episode_steps == 500
    assert envs.single_observation_space == gym.make(BALANCING_POLE_ID).observation_space


def test_transitions_equal_the_single_env_bit_for_bit():
    episodes, _ = _lockstep(n=6, steps=1500, seed=3)
    assert episodes > 100


def test_truncation_and_continuous_actions_equal_the_single_env():
    _, truncations = _lockstep(n=4, steps=300, seed=1, max_episode_steps=15)
    assert truncations > 10
    episodes, _ = _lockstep(n=4, steps=600, seed=2, continuous=True, gravity=5.0, length=0.8)
    assert episodes > 5


def test_wide_angle_limits_use_cosine_and_still_match():
    episodes, _ = _lockstep(n=3, steps=400, seed=4, theta_threshold_degrees=120.0, x_threshold=4.0)
    assert episodes > 3


def test_seed_lists_and_continuing_streams():
    a = BalancingPoleVectorEnv(num_envs=3)
    b = BalancingPoleVectorEnv(num_envs=3)
    np.testing.assert_array_equal(a.reset(seed=5)[0], b.reset(seed=[5, 6, 7])[0])
    # A reset without a seed continues each copy's stream, as a single env's would.
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    with pytest.raises(ValueError, match="2 seeds for 3 copies"):
        a.reset(seed=[1, 2])


@pytest.mark.parametrize(
    "actions",
    [np.array([0, 1, 2]), np.array([0, -1, 1]), np.array([0.0, 1.0, 1.0]), np.array([0, 1]), [[0], [1], [0]]],
)
def test_refuses_actions_outside_the_space(actions):
    envs = BalancingPoleVectorEnv(num_envs=3)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be 3 integers"):
        envs.step(actions)


@pytest.mark.parametrize("actions", [np.full((3, 1), 1.5), np.array([[0.1], [np.nan], [0.0]]), np.zeros((3, 2))])
def test_continuous_refuses_actions_outside_the_space(actions):
    envs = BalancingPoleVectorEnv(num_envs=3, continuous=True)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="finite numbers in"):
        envs.step(actions)


def test_bad_construction_and_use():
    with pytest.raises(ValueError, match="num_envs"):
        BalancingPoleVectorEnv(num_envs=0)
    with pytest.raises(ValueError, match="does not render"):
        BalancingPoleVectorEnv(num_envs=2, render_mode="human")
    with pytest.raises(RuntimeError, match="before reset"):
        BalancingPoleVectorEnv(num_envs=2).step(np.zeros(2, dtype=np.int64))


def test_accepts_other_integer_dtypes():
    envs = BalancingPoleVectorEnv(num_envs=4)
    envs.reset(seed=0)
    for dtype in (np.int32, np.uint8, np.bool_):
        obs, *_ = envs.step(np.array([0, 1, 1, 0]).astype(dtype))
        assert obs.shape == (4, 4) and obs.dtype == np.float32


def test_step_parts_benchmark_times_each_part():
    # scripts/bench_reinforce.py --part step reaches into the env's parts: it must keep up with them.
    from bench_reinforce import bench_step_parts

    parts = bench_step_parts(n=8, calls=5, repeats=1)
    assert list(parts) == ["physics and observations", "+ action check", "+ restarts", "whole step",
                           "CartPoleVectorEnv step"]
    assert all(0.0 < us < 1e6 for us in parts.values())
