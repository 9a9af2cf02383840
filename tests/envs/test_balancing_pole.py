import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlkit.envs
from rlkit.envs import BALANCING_POLE_ID, BalancingPoleEnv
from rlkit.errors import ConfigError


def test_one_step_matches_hand_computed_physics():
    env = BalancingPoleEnv()
    env.reset(seed=0)
    env._state = (0.0, 0.0, 0.0, 0.0)
    obs, reward, terminated, truncated, _ = env.step(1)
    # Upright pole at rest, pushed right with 10 N (m_c = 1, m_p = 0.1, l = 0.5, g = 9.8):
    #   temp     = 10 / 1.1                                      = 9.090909
    #   theta_dd = (0 - 9.090909) / (0.5 * (4/3 - 0.1 / 1.1))   = -14.634146
    #   x_dd     = 9.090909 - 0.05 * (-14.634146) / 1.1          = 9.756098
    # Euler with tau = 0.02: velocities gain tau * acceleration, positions keep the old (zero) velocity.
    np.testing.assert_allclose(obs, [0.0, 0.19512196, 0.0, -0.29268292], rtol=1e-6, atol=1e-7)
    assert obs.dtype == np.float32
    assert (reward, terminated, truncated) == (1.0, False, False)

    # A leaning, moving pole, pushed left: x=0.1, x_dot=-0.2, theta=0.05, theta_dot=0.3.
    env._state = (0.1, -0.2, 0.05, 0.3)
    obs, *_ = env.step(0)
    s, c = math.sin(0.05), math.cos(0.05)
    temp = (-10 + 0.05 * 0.09 * s) / 1.1
    theta_dd = (9.8 * s - c * temp) / (0.5 * (4 / 3 - 0.1 * c * c / 1.1))
    x_dd = temp - 0.05 * theta_dd * c / 1.1
    expected = [0.1 + 0.02 * -0.2, -0.2 + 0.02 * x_dd, 0.05 + 0.02 * 0.3, 0.3 + 0.02 * theta_dd]
    np.testing.assert_allclose(obs, expected, rtol=1e-6)


def test_trajectory_equals_gymnasium_cartpole():
    ours, theirs = gym.make(BALANCING_POLE_ID), gym.make("CartPole-v1")
    o1, _ = ours.reset(seed=7)
    o2, _ = theirs.reset(seed=7)
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(2000):
        np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-7)
        a = int(rng.integers(2))
        o1, r1, te1, tr1, _ = ours.step(a)
        o2, r2, te2, tr2, _ = theirs.step(a)
        assert (r1, te1, tr1) == (r2, te2, tr2)
        if te1 or tr1:
            episodes += 1
            seed = int(rng.integers(1_000_000))
            o1, _ = ours.reset(seed=seed)
            o2, _ = theirs.reset(seed=seed)
    assert episodes > 10


@pytest.mark.parametrize("continuous", [False, True])
def test_passes_gymnasium_env_checker(continuous):
    # Made through the registry so the checker also tries every render mode (headless, SDL's dummy driver).
    check_env(gym.make(BALANCING_POLE_ID, continuous=continuous).unwrapped, skip_render_check=False)
    check_env(gym.make(BALANCING_POLE_ID, continuous=continuous, render_mode="rgb_array").unwrapped,
              skip_render_check=False)


def test_registration_limits_and_threshold():
    spec = gym.spec(BALANCING_POLE_ID)
    assert spec.max_episode_steps == 500
    assert spec.reward_threshold == 475.0


def test_same_seed_same_trajectory_different_seed_different():
    def rollout(seed):
        env = gym.make(BALANCING_POLE_ID)
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        out = [obs]
        for _ in range(50):
            obs, _, te, tr, _ = env.step(env.action_space.sample())
            out.append(obs)
            if te or tr:
                obs, _ = env.reset()
        return np.array(out)

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3), rollout(4))


def test_termination_rewards_the_last_step_and_truncation_is_separate():
    env = gym.make(BALANCING_POLE_ID)
    env.reset(seed=0)
    env.unwrapped._state = (2.39, 1.0, 0.0, 0.0)
    _, reward, terminated, truncated, _ = env.step(1)
    assert (reward, terminated, truncated) == (1.0, True, False)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)

    env = gym.make(BALANCING_POLE_ID, max_episode_steps=5)
    env.reset(seed=0)
    results = [env.step(i % 2)[1:4] for i in range(5)]
    assert results[-1] == (1.0, False, True)
    assert all(r == (1.0, False, False) for r in results[:-1])


def test_angle_limit_terminates():
    env = BalancingPoleEnv()
    env.reset(seed=0)
    env._state = (0.0, 0.0, math.radians(11.99), 5.0)
    _, _, terminated, _, _ = env.step(1)
    assert terminated


@pytest.mark.parametrize("action", [2, -1, 0.5, 1.0, "1", None, np.array([0, 1]), np.array(1.0)])
def test_discrete_refuses_actions_outside_the_space(action):
    env = BalancingPoleEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(action)


@pytest.mark.parametrize("action", [np.array([1.5]), np.array([np.nan]), np.array([0.1, 0.2]), 3])
def test_continuous_refuses_actions_outside_the_space(action):
    env = BalancingPoleEnv(continuous=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(action)


def test_numpy_integer_and_0d_actions_are_accepted():
    env = BalancingPoleEnv()
    env.reset(seed=0)
    env.step(np.int64(1))
    env.step(np.array(0))


def test_continuous_full_force_equals_discrete_push():
    a, b = BalancingPoleEnv(), BalancingPoleEnv(continuous=True)
    a.reset(seed=1)
    b.reset(seed=1)
    for act in (1, 0, 0, 1):
        oa = a.step(act)[0]
        ob = b.step(np.array([1.0 if act else -1.0], dtype=np.float32))[0]
        np.testing.assert_array_equal(oa, ob)


def test_physical_constants_are_configurable():
    heavy = BalancingPoleEnv(gravity=20.0, masspole=0.5, length=1.0)
    base = BalancingPoleEnv()
    for env in (heavy, base):
        env.reset(seed=0)
        env._state = (0.0, 0.0, 0.05, 0.0)
    assert not np.allclose(heavy.step(1)[0], base.step(1)[0])
    with pytest.raises(ValueError, match="masscart must be > 0"):
        BalancingPoleEnv(masscart=-1.0)
    with pytest.raises(ValueError, match="render_mode"):
        BalancingPoleEnv(render_mode="window")


def test_rgb_array_frames_have_a_fixed_shape_and_show_the_state():
    env = gym.make(BALANCING_POLE_ID, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (400, 600, 3) and first.dtype == np.uint8
    for _ in range(8):
        env.step(1)
    second = env.render()
    assert second.shape == first.shape
    assert not np.array_equal(first, second)  # the cart moved
    env.close()


def test_human_rendering_where_no_window_can_open_is_refused(monkeypatch):
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")  # no X server there: SDL would fall back to drawing off-screen, unseen
    env = gym.make(BALANCING_POLE_ID, render_mode="human")
    with pytest.raises(ConfigError, match="none can open here .*chose its (offscreen|dummy) driver.*video=true"):
        env.reset(seed=0)
    env.close()


def test_human_window_renders_and_closing_it_is_seen():
    import pygame

    env = gym.make(BALANCING_POLE_ID, render_mode="human")
    env.reset(seed=0)
    env.step(0)
    assert not env.unwrapped.window_closed
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    env.step(1)
    assert env.unwrapped.window_closed
    env.close()


def test_training_without_rendering_never_imports_pygame():
    code = (
        "import sys, gymnasium as gym, rlkit.envs\n"
        "env = gym.make('rlkit/BalancingPole-v1'); env.reset(seed=0)\n"
        "[env.step(i % 2) for i in range(20)]\n"
        "assert 'pygame' not in sys.modules, 'pygame was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gymnasium_users_can_make_it_without_importing_rlkit_first():
    code = "import gymnasium as gym; e = gym.make('rlkit.envs:rlkit/BalancingPole-v1'); print(e.reset(seed=0)[0])"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip().startswith("[")


def test_registration_is_idempotent():
    import importlib

    importlib.reload(rlkit.envs)
    assert gym.spec(BALANCING_POLE_ID).max_episode_steps == 500
