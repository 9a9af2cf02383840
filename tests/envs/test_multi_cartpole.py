import numpy as np
import pytest
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, parallel_seed_test

from rlkit.envs import BalancingPoleEnv, multi_cartpole_v0
from rlkit.envs.multi_cartpole import MultiCartPoleEnv, MultiCartPoleVectorEnv

CONFIGS = [{}, {"continuous": False}, {"num_agents": 4, "coupling": 2.0, "observe_neighbours": True}]


@pytest.mark.parametrize("kwargs", CONFIGS, ids=["default", "discrete", "coupled-4"])
def test_pettingzoo_api_and_seed_tests(kwargs):
    parallel_api_test(multi_cartpole_v0.parallel_env(**kwargs), num_cycles=600)
    parallel_seed_test(lambda: multi_cartpole_v0.parallel_env(**kwargs))
    api_test(multi_cartpole_v0.env(**kwargs), num_cycles=200)


def test_pettingzoo_max_cycles_test():
    max_cycles_test(multi_cartpole_v0)


def test_max_cycles_is_pettingzoos_name_for_the_episode_limit():
    assert MultiCartPoleEnv(max_cycles=7).max_episode_steps == 7
    assert MultiCartPoleVectorEnv(max_cycles=7).max_episode_steps == 7
    assert MultiCartPoleEnv(max_cycles=7, max_episode_steps=7).max_episode_steps == 7
    with pytest.raises(TypeError, match="max_cycles=7 and max_episode_steps=9 name the same limit"):
        MultiCartPoleEnv(max_cycles=7, max_episode_steps=9)


@pytest.mark.parametrize("continuous", [True, False])
def test_uncoupled_carts_are_balancing_poles_bit_for_bit(continuous):
    env = MultiCartPoleEnv(num_agents=3, continuous=continuous)
    poles = [BalancingPoleEnv(continuous=continuous) for _ in range(3)]
    rng = np.random.default_rng(0)
    for episode in range(5):
        obs, _ = env.reset(seed=10 * episode)
        for i, pole in enumerate(poles):
            np.testing.assert_array_equal(obs[f"cart_{i}"], pole.reset(seed=10 * episode + i)[0])
        while env.agents:
            acts = {a: (rng.uniform(-1, 1, 1).astype(np.float32) if continuous else int(rng.integers(2)))
                    for a in env.agents}
            obs, rew, term, trunc, _ = env.step(acts)
            fell = []
            for i, pole in enumerate(poles):
                o, r, te, _, _ = pole.step(acts[f"cart_{i}"])
                np.testing.assert_array_equal(obs[f"cart_{i}"], o)
                assert rew[f"cart_{i}"] == r == 1.0
                fell.append(te)
            assert all(term.values()) == any(fell)  # a team task: one pole down ends it for everyone


def test_the_spring_forces_are_equal_and_opposite():
    env = MultiCartPoleEnv(num_agents=2, coupling=3.0)
    env.reset(seed=0)
    env._state[:] = 0.0
    env._state[0] = [-0.2, 0.3]  # carts apart, everything else at rest
    zero = np.zeros(1, dtype=np.float32)
    env.step({"cart_0": zero, "cart_1": zero})
    x_dot = env._state[1]
    assert x_dot[0] > 0 > x_dot[1]  # pulled towards each other
    assert x_dot[0] == -x_dot[1]  # with equal masses: equal and opposite accelerations
    # Without the spring nothing moves.
    free = MultiCartPoleEnv(num_agents=2, coupling=0.0)
    free.reset(seed=0)
    free._state[:] = 0.0
    free._state[0] = [-0.2, 0.3]
    free.step({"cart_0": zero, "cart_1": zero})
    assert not free._state[1].any()


def test_neighbour_observations_are_laid_out_own_left_right():
    env = MultiCartPoleEnv(num_agents=3, observe_neighbours=True)
    obs, _ = env.reset(seed=1)
    own = [obs[f"cart_{i}"][:4] for i in range(3)]
    np.testing.assert_array_equal(obs["cart_1"][4:8], own[0])
    np.testing.assert_array_equal(obs["cart_1"][8:], own[2])
    assert not obs["cart_0"][4:8].any() and not obs["cart_2"][8:].any()
    np.testing.assert_array_equal(env.state(), np.concatenate(own))


def test_truncation_ends_the_episode_for_everyone():
    env = MultiCartPoleEnv(num_agents=2, max_episode_steps=3)
    env.reset(seed=0)
    zero = np.zeros(1, dtype=np.float32)
    for _ in range(2):
        _, _, term, trunc, _ = env.step({a: zero for a in env.agents})
        assert not any(trunc.values())
    _, _, term, trunc, _ = env.step({a: zero for a in env.agents})
    assert all(trunc.values()) and not any(term.values()) and env.agents == []
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step({"cart_0": zero, "cart_1": zero})


@pytest.mark.parametrize(
    ("actions", "match"),
    [({"cart_0": np.zeros(1, np.float32)}, "missing"),
     ({"cart_0": np.zeros(1, np.float32), "cart_1": np.zeros(1, np.float32), "cart_9": 0}, "unknown"),
     ({"cart_0": np.array([1.5], np.float32), "cart_1": np.zeros(1, np.float32)}, "outside its action space"),
     ({"cart_0": np.array([np.nan], np.float32), "cart_1": np.zeros(1, np.float32)}, "outside its action space")],
)
def test_bad_actions_are_refused(actions, match):
    env = MultiCartPoleEnv(num_agents=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(actions)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_agents"):
        MultiCartPoleEnv(num_agents=0)
    with pytest.raises(ValueError, match="coupling"):
        MultiCartPoleEnv(coupling=-1.0)
    with pytest.raises(ValueError, match="masspole"):
        MultiCartPoleEnv(masspole=0.0)


@pytest.mark.parametrize("kwargs", [{"coupling": 0.0}, {"coupling": 2.5, "observe_neighbours": True},
                                    {"continuous": False, "coupling": 1.0, "max_episode_steps": 40}])
def test_vector_env_equals_single_envs_bit_for_bit(kwargs):
    copies, agents = 3, 2
    venv = MultiCartPoleVectorEnv(num_envs=copies, num_agents=agents, **kwargs)
    singles = [MultiCartPoleEnv(num_agents=agents, **kwargs) for _ in range(copies)]
    obs, _ = venv.reset(seed=7)
    for b, env in enumerate(singles):
        o, _ = env.reset(seed=7 + b * agents)
        np.testing.assert_array_equal(obs[b], np.stack([o[a] for a in env.possible_agents]))
    continuous = kwargs.get("continuous", True)
    rng = np.random.default_rng(1)
    ended = [False] * copies
    episodes = 0
    for _ in range(400):
        acts = (rng.uniform(-1, 1, (copies, agents, 1)).astype(np.float32) if continuous
                else rng.integers(0, 2, (copies, agents)))
        obs, rew, term, trunc, _ = venv.step(acts)
        for b, env in enumerate(singles):
            if ended[b]:
                o, _ = env.reset()
                expected = (np.stack([o[a] for a in env.possible_agents]), 0.0, False, False)
                ended[b] = False
            else:
                o, r, te, tr, _ = env.step({a: acts[b, i] if continuous else int(acts[b, i])
                                            for i, a in enumerate(env.possible_agents)})
                expected = (np.stack([o[a] for a in env.possible_agents]), 1.0, te["cart_0"], tr["cart_0"])
                ended[b] = te["cart_0"] or tr["cart_0"]
                episodes += ended[b]
            np.testing.assert_array_equal(obs[b], expected[0])
            assert (rew[b] == expected[1]).all() and (term[b], trunc[b]) == expected[2:]
    assert episodes > 10


def test_vector_env_refuses_bad_actions():
    venv = MultiCartPoleVectorEnv(num_envs=2, num_agents=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        venv.step(np.zeros((2, 2), dtype=np.float32))  # continuous actions need shape (2, 2, 1)


@pytest.mark.parametrize("render_mode", ["rgb_array", "human"])
def test_renders_every_cart_in_one_frame(render_mode):
    env = MultiCartPoleEnv(num_agents=3, coupling=1.0, render_mode=render_mode)
    env.reset(seed=0)
    frame = env.render()
    if render_mode == "rgb_array":
        assert frame.shape == (40 + 110 * 3, 600, 3) and frame.dtype == np.uint8
    else:
        assert frame is None and not env.window_closed
    env.close()


def test_registered_with_pettingzoo():
    import pettingzoo

    from rlkit.envs import MULTI_CARTPOLE_ID

    env = pettingzoo.make("parallel", MULTI_CARTPOLE_ID, num_agents=3, coupling=1.0)
    assert isinstance(env, MultiCartPoleEnv) and env.possible_agents == ["cart_0", "cart_1", "cart_2"]
    aec = pettingzoo.make("aec", MULTI_CARTPOLE_ID, num_agents=2)
    aec.reset(seed=0)
    assert aec.agent_selection == "cart_0"
