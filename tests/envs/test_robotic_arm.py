import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

from rlkit.envs import ROBOTIC_ARM_ID, RoboticArmEnv, RoboticArmVectorEnv


def _energy(q1, q2, w1, w2, g=0.0):
    """Energy of the default rods from first principles: link velocities, not the env's mass matrix."""
    (l1, l2), (m1, m2) = (1.0, 0.7), (1.0, 1.0)
    s1, c1, s12, c12 = math.sin(q1), math.cos(q1), math.sin(q1 + q2), math.cos(q1 + q2)
    v2x = -l1 * s1 * w1 - l2 / 2 * s12 * (w1 + w2)  # velocity of link 2's centre of mass
    v2y = l1 * c1 * w1 + l2 / 2 * c12 * (w1 + w2)
    kinetic = (0.5 * m1 * (l1 / 2) ** 2 * w1**2 + 0.5 * m1 * l1**2 / 12 * w1**2
               + 0.5 * m2 * (v2x**2 + v2y**2) + 0.5 * m2 * l2**2 / 12 * (w1 + w2) ** 2)
    return kinetic + g * (m1 * l1 / 2 * s1 + m2 * (l1 * s1 + l2 / 2 * s12))


def _at(env, q1, q2, w1=0.0, w2=0.0, target=(10.0, 10.0)):
    """``env`` in a chosen state; the default target is out of reach, so no step ends the episode."""
    env.reset(seed=0)
    env._state, env._target = (q1, q2, w1, w2), target
    return env


ZERO = np.zeros(2, dtype=np.float32)


@pytest.mark.parametrize(
    ("q", "tip"),
    [((0.0, 0.0), (1.7, 0.0)), ((math.pi / 2, 0.0), (0.0, 1.7)), ((0.0, math.pi / 2), (1.0, 0.7)),
     ((math.pi / 2, -math.pi / 2), (0.7, 1.0)), ((math.pi, math.pi), (-0.3, 0.0)),
     ((math.pi / 3, math.pi / 3), (0.5 - 0.35, math.sqrt(3) / 2 + 0.7 * math.sqrt(3) / 2))],
)
def test_forward_kinematics_at_known_angles(q, tip):
    env = _at(RoboticArmEnv(), *q, target=(0.5, 0.5))
    np.testing.assert_allclose(env.fingertip, tip, atol=1e-12)
    # The observation carries target - fingertip; with zero torque at rest the arm stays put.
    obs = env.step(ZERO)[0]
    np.testing.assert_allclose(obs[8:10], np.subtract((0.5, 0.5), tip), atol=1e-6)
    np.testing.assert_allclose(obs[:4], [math.cos(q[0]), math.sin(q[0]), math.cos(q[1]), math.sin(q[1])],
                               atol=1e-6)


def test_link_lengths_are_configurable():
    env = _at(RoboticArmEnv(link_lengths=(0.5, 0.25)), 0.0, math.pi / 2)
    np.testing.assert_allclose(env.fingertip, (0.5, 0.25), atol=1e-12)
    assert env.observation_space.high[6] == pytest.approx(0.75)


def test_energy_is_conserved_without_torque_damping_or_gravity():
    env = _at(RoboticArmEnv(damping=0.0, max_speed=50.0), 0.3, 1.0, 2.0, -3.0)
    e0 = _energy(*env._state)
    assert env.energy == pytest.approx(e0, rel=1e-12)  # the env's mass matrix agrees with first principles
    errors, moved = [], 0.0
    for _ in range(1000):  # 50 s of motion
        env.step(ZERO)
        errors.append(abs(_energy(*env._state) / e0 - 1.0))
        moved = max(moved, abs(env._state[1] - 1.0))
    assert max(errors) < 1e-5
    assert moved > 1.0  # the elbow really swung


def test_energy_is_conserved_with_gravity_and_dissipated_by_damping():
    env = _at(RoboticArmEnv(damping=0.0, gravity=True, max_speed=50.0), -math.pi / 2 + 1.0, 0.5)
    e0 = _energy(*env._state, g=9.81)
    swing = e0 + 9.81 * (0.5 + 1.0 + 0.35)  # above the energy of the arm hanging straight down
    for _ in range(400):
        env.step(ZERO)
        assert abs(_energy(*env._state, g=9.81) - e0) < 1e-4 * swing
    assert env.energy == pytest.approx(_energy(*env._state, g=9.81), rel=1e-12)

    env = _at(RoboticArmEnv(damping=0.2, max_speed=50.0), 0.3, 1.0, 2.0, -3.0)
    energies = [env.energy]
    for _ in range(100):
        env.step(ZERO)
        energies.append(env.energy)
    assert all(b < a for a, b in zip(energies, energies[1:], strict=False))


def test_torque_from_rest_accelerates_by_the_inverse_mass_matrix():
    env = _at(RoboticArmEnv(frame_skip=1, dt=1e-4, damping=0.0), 0.2, 0.9)
    env.step(np.array([1.0, -0.5], dtype=np.float32))
    # Rods of 1 kg: I1 = 1/12, I2 = 0.49/12, centres of mass at 0.5 and 0.35 m.
    c2 = math.cos(0.9)
    alpha = 1 / 12 + 0.49 / 12 + 0.5**2 + (1.0**2 + 0.35**2)
    beta, delta = 1.0 * 0.35, 0.49 / 12 + 0.35**2
    mass = np.array([[alpha + 2 * beta * c2, delta + beta * c2], [delta + beta * c2, delta]])
    qdd = np.linalg.solve(mass, [2.0, -1.0])  # torques: (1, -0.5) x max_torque 2
    np.testing.assert_allclose(np.array(env._state[2:]) / 1e-4, qdd, rtol=1e-3)


def test_simple_model_integrates_torque_as_acceleration():
    env = _at(RoboticArmEnv(model="simple", damping=0.0, frame_skip=10), 0.1, -0.2)
    env.step(np.array([1.0, -0.5], dtype=np.float32))
    t = 0.1  # 10 steps of 0.01 s; RK4 is exact for constant acceleration
    np.testing.assert_allclose(env._state, [0.1 + 0.5 * 2 * t**2, -0.2 - 0.5 * 1 * t**2, 2 * t, -t], rtol=1e-12)


def test_velocities_are_limited_and_angles_wrapped():
    env = _at(RoboticArmEnv(model="simple", max_speed=3.0), 0.0, 0.0)
    for _ in range(200):
        obs, *_ = env.step(np.ones(2, dtype=np.float32))
        q1, q2, w1, w2 = env._state
        assert -math.pi <= q1 < math.pi and -math.pi <= q2 < math.pi
        assert abs(w1) <= 3.0 and abs(w2) <= 3.0
    assert w1 == 3.0 and obs[4] == np.float32(3.0)  # a full turn per 2 s, and still wrapped


def test_reaching_the_target_terminates_with_success():
    env = gym.make(ROBOTIC_ARM_ID, fixed_target=(1.0, 0.7 - 0.03))
    env.reset(seed=0)
    env.unwrapped._state = (0.0, math.pi / 2, 0.0, 0.0)  # fingertip at (1.0, 0.7): 0.03 from the target
    obs, reward, terminated, truncated, info = env.step(ZERO)
    assert (terminated, truncated, info["is_success"]) == (True, False, True)
    assert info["distance"] == pytest.approx(0.03, abs=1e-9)
    assert reward == pytest.approx(-info["distance"])
    np.testing.assert_allclose(obs[8:10], [0.0, -0.03], atol=1e-6)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(ZERO)

    obs, info = env.reset()
    assert not info["is_success"] and info["distance"] >= 0.05  # never starts on the target
    env.unwrapped._state = (0.0, math.pi / 2, 0.0, 0.0)
    env.unwrapped._target = (1.0, 0.7 - 0.06)  # outside the tolerance: no success
    _, reward, terminated, _, info = env.step(np.array([0.5, -0.5], dtype=np.float32))
    assert not terminated and not info["is_success"]
    assert reward == pytest.approx(-info["distance"] - 0.01 * 0.5)


def test_truncation_at_the_step_limit():
    assert gym.spec(ROBOTIC_ARM_ID).max_episode_steps == 200
    env = gym.make(ROBOTIC_ARM_ID, max_episode_steps=5)
    env.reset(seed=1)
    results = [env.step(ZERO)[2:4] for _ in range(5)]
    assert results == [(False, False)] * 4 + [(False, True)]


def test_targets_are_uniform_in_area_within_reach():
    env = RoboticArmEnv()
    r2 = []
    for seed in range(1500):
        obs, _ = env.reset(seed=seed)
        r2.append(float(obs[6]) ** 2 + float(obs[7]) ** 2)
    r2 = np.array(r2)
    assert r2.min() >= 0.3**2 - 1e-6 and r2.max() < 1.7**2
    # Uniform in area means r^2 uniform on [0.09, 2.89): about half the targets below the middle.
    assert abs(np.mean(r2 < (0.09 + 2.89) / 2) - 0.5) < 0.05
    env = RoboticArmEnv(fixed_target=(0.2, -1.1))
    assert [tuple(env.reset(seed=s)[0][6:8]) for s in (1, 2)] == [(np.float32(0.2), np.float32(-1.1))] * 2


def test_same_seed_same_trajectory_different_seed_different():
    def rollout(seed):
        env = gym.make(ROBOTIC_ARM_ID)
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        return np.array([obs] + [env.step(env.action_space.sample())[0] for _ in range(30)])

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3), rollout(4))


@pytest.mark.parametrize("kwargs", [{}, {"model": "simple"}, {"gravity": True, "max_torque": 25.0},
                                    {"fixed_target": (0.5, 0.5)}])
def test_passes_gymnasium_env_checker(kwargs):
    check_env(gym.make(ROBOTIC_ARM_ID, **kwargs).unwrapped, skip_render_check=False)
    check_env(gym.make(ROBOTIC_ARM_ID, render_mode="rgb_array", **kwargs).unwrapped, skip_render_check=False)


@pytest.mark.parametrize("action", [np.array([1.5, 0.0]), np.array([np.nan, 0.0]), np.array([0.1]),
                                    np.zeros(3), 0.5, "ab", None, [0.1, "x"]])
def test_refuses_actions_outside_the_space(action):
    env = RoboticArmEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"outside the action space Box\(-1.0, 1.0, \(2,\), float32\)"):
        env.step(action)
    env.step([0.5, -1])  # lists and integers in range are fine


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"link_lengths": (1.0, 0.0)}, "link_lengths"), ({"link_masses": (1.0,)}, "link_masses"),
     ({"max_torque": 0.0}, "max_torque"), ({"damping": -1.0}, "damping"), ({"frame_skip": 0}, "frame_skip"),
     ({"tolerance": 2.0}, "tolerance"), ({"model": "mujoco"}, "model"), ({"render_mode": "window"}, "render_mode"),
     ({"fixed_target": (0.0, np.inf)}, "fixed_target"), ({"fixed_target": (1.0,)}, "fixed_target"),
     ({"gravity": -9.8}, "gravity")],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RoboticArmEnv(**kwargs)


def test_suspicious_arguments_warn():
    with pytest.warns(UserWarning, match="can never reach"):
        env = RoboticArmEnv(fixed_target=(3.0, 0.0))
    assert env.observation_space.high[6] == 3.0 and env.observation_space.high[8] == pytest.approx(4.7)
    with pytest.warns(UserWarning, match="gravity is ignored"):
        RoboticArmEnv(model="simple", gravity=True)


def test_rgb_array_frames_show_the_arm_moving():
    env = gym.make(ROBOTIC_ARM_ID, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (500, 500, 3) and first.dtype == np.uint8
    for _ in range(10):
        env.step(np.ones(2, dtype=np.float32))
    second = env.render()
    assert not np.array_equal(first, second)
    assert len(env.unwrapped._trail) == 11
    env.close()


def test_human_window_renders_and_closing_it_is_seen():
    import pygame

    env = gym.make(ROBOTIC_ARM_ID, render_mode="human", dt=0.002)  # 100 fps: a quick test
    assert env.metadata["render_fps"] == 100
    env.reset(seed=0)
    env.step(ZERO)
    assert not env.unwrapped.window_closed
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    env.step(ZERO)
    assert env.unwrapped.window_closed
    env.close()


def test_stepping_without_rendering_never_imports_pygame():
    code = (
        "import sys, numpy as np, gymnasium as gym, rlkit.envs\n"
        "env = gym.make('rlkit/RoboticArm-v1'); env.reset(seed=0)\n"
        "[env.step(np.zeros(2, dtype=np.float32)) for i in range(20)]\n"
        "assert 'pygame' not in sys.modules, 'pygame was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------- the batched env


def _lockstep(n, steps, seed, max_episode_steps=200, **kwargs):
    """Step a vector env and n single envs (seeds seed + i) with the same actions; count episode ends."""
    venv = gym.make_vec(ROBOTIC_ARM_ID, num_envs=n, max_episode_steps=max_episode_steps, **kwargs)
    singles = [gym.make(ROBOTIC_ARM_ID, max_episode_steps=max_episode_steps, **kwargs) for _ in range(n)]
    obs, info = venv.reset(seed=seed)
    resets = [e.reset(seed=seed + i) for i, e in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack([o for o, _ in resets]))
    np.testing.assert_array_equal(info["distance"], [i["distance"] for _, i in resets])
    rng = np.random.default_rng(seed)
    ended = [False] * n
    successes = truncations = 0
    for _ in range(steps):
        actions = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        obs, rew, term, trunc, info = venv.step(actions)
        for i, env in enumerate(singles):
            if ended[i]:  # NEXT_STEP autoreset: this step starts a new episode, reward 0
                o, inf = env.reset()
                expected = (o, 0.0, False, False, inf)
                ended[i] = False
            else:
                expected = env.step(actions[i])
                ended[i] = expected[2] or expected[3]
                successes += expected[2]
                truncations += expected[3]
            np.testing.assert_array_equal(obs[i], expected[0])
            assert (rew[i], term[i], trunc[i]) == expected[1:4]
            assert (info["distance"][i], info["is_success"][i]) == (expected[4]["distance"],
                                                                    expected[4]["is_success"])
    return successes, truncations


def test_vector_env_equals_the_single_env_bit_for_bit():
    # A wide tolerance, little friction (random torques then swing the arm about) and a short limit, so both
    # successes and truncations restart copies.
    successes, truncations = _lockstep(n=6, steps=300, seed=3, max_episode_steps=40, tolerance=1.0, damping=0.05)
    assert successes > 5 and truncations > 10


@pytest.mark.parametrize(
    "kwargs",
    [{"gravity": True, "max_torque": 25.0, "tolerance": 0.8},
     {"model": "simple", "max_torque": 10.0, "fixed_target": (0.8, -0.6), "tolerance": 0.8}],
)
def test_vector_env_equals_the_single_env_in_other_models(kwargs):
    successes, _ = _lockstep(n=3, steps=200, seed=5, max_episode_steps=50, **kwargs)
    assert successes > 0


def test_vector_env_is_the_registered_vector_entry_point():
    envs = gym.make_vec(ROBOTIC_ARM_ID, num_envs=3)
    assert isinstance(envs, RoboticArmVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.max_episode_steps == 200
    assert envs.single_observation_space == gym.make(ROBOTIC_ARM_ID).observation_space
    envs.reset(seed=0)
    obs, rewards, *_ = envs.step(envs.action_space.sample())
    assert obs.shape == (3, 10) and obs.dtype == np.float32 and rewards.dtype == np.float64


def test_vector_env_seeds_and_refusals():
    a, b = RoboticArmVectorEnv(num_envs=3), RoboticArmVectorEnv(num_envs=3)
    np.testing.assert_array_equal(a.reset(seed=5)[0], b.reset(seed=[5, 6, 7])[0])
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])  # unseeded resets continue each stream
    with pytest.raises(ValueError, match="2 seeds for 3 copies"):
        a.reset(seed=[1, 2])
    for bad in (np.full((3, 2), 1.5), np.zeros((3, 1)), np.array([[0.0, np.nan]] * 3), [["a", "b"]] * 3):
        with pytest.raises(ValueError, match=r"actions must be 3 pairs"):
            a.step(bad)
    with pytest.raises(ValueError, match="does not render"):
        RoboticArmVectorEnv(num_envs=2, render_mode="human")
    with pytest.raises(RuntimeError, match="before reset"):
        RoboticArmVectorEnv(num_envs=2).step(np.zeros((2, 2)))
