"""The batched particle worlds against mpe2, their PettingZoo API, the batched copies, rendering and selection."""

import importlib
import logging

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from helpers import TINY, cli, compose_cfg
from rlkit.envs.particle_worlds import ParticleWorldEnv, ParticleWorldVectorEnv
from rlkit.envs.state import env_state, set_env_state
from rlkit.errors import ConfigError
from rlkit.factory import build_env
from rlkit.resume import pack, unpack

SCENARIOS = [("simple_spread_v3", {}), ("simple_spread_v3", {"N": 4, "local_ratio": 0.2}),
             ("simple_adversary_v3", {}), ("simple_adversary_v3", {"N": 3}),
             ("simple_tag_v3", {}), ("simple_tag_v3", {"num_good": 2, "num_adversaries": 2, "num_obstacles": 1}),
             ("simple_speaker_listener_v4", {}), ("simple_push_v3", {}), ("simple_crypto_v3", {})]
IDS = ["spread", "spread-4", "adversary", "adversary-3", "tag", "tag-2-2-1", "speaker-listener", "push", "crypto"]


def mpe2_env(name, continuous=False, **kwargs):
    return importlib.import_module(f"mpe2.{name}").parallel_env(max_cycles=25, continuous_actions=continuous, **kwargs)


def random_actions(rng, env, continuous):
    """One action per agent of a PettingZoo env, each from its own space (speakers have fewer)."""
    spaces = [env.action_space(a) for a in env.possible_agents]
    return {a: rng.uniform(0, 1, s.shape).astype(np.float32) if continuous else rng.integers(0, s.n)
            for a, s in zip(env.possible_agents, spaces, strict=True)}


def as_rows(envs, actions):
    """Per-copy action dicts as the batched env's array (one padded row per agent where spaces differ)."""
    rows = np.array([[a for a in acts.values()] for acts in actions])
    return rows[..., None].astype(np.float32) if envs.single_action_space.shape == (1,) else rows


def world_state(env):
    """mpe2's world as the batched env's arrays: entity positions, agent velocities, goal and key landmarks, what
    each agent said."""
    world = env.unwrapped.world
    pos = np.array([e.state.p_pos for e in world.entities])
    vel = np.array([a.state.p_vel for a in world.agents])
    goal = getattr(world.agents[0], "_goal_b", None) or getattr(world.agents[0], "_goal_a", None)
    goal = world.landmarks.index(goal) if goal in world.landmarks else 0
    key = getattr(world.agents[-1], "_key", None)  # simple_crypto_v3's: Alice's key is a landmark's colour
    key = int(np.argmax(key)) if key is not None else 0
    return pos, vel, goal, key, np.array([a.state.c for a in world.agents])


def crowd(env, rng):
    """Put every agent of an mpe2 world next to the first one or an obstacle, so that contacts happen."""
    world = env.unwrapped.world
    anchor = world.landmarks[0] if "tag" in env.unwrapped.metadata["name"] else world.agents[0]
    for agent in world.agents:
        if agent is not anchor:
            agent.state.p_pos = anchor.state.p_pos + rng.uniform(-0.15, 0.15, 2)


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize(("name", "kwargs"), SCENARIOS, ids=IDS)
def test_a_seeded_episode_is_mpe2s_step_for_step(name, kwargs, continuous):
    ref, ours = mpe2_env(name, continuous, **kwargs), ParticleWorldEnv(name, continuous_actions=continuous, **kwargs)
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        expected, _ = ref.reset(seed=seed)
        obs, _ = ours.reset(seed=seed)
        assert list(obs) == ref.possible_agents
        for a in ref.agents:
            np.testing.assert_array_equal(obs[a], expected[a])  # the same start, drawn from the seed as mpe2 does
        while ref.agents:
            acts = random_actions(rng, ref, continuous)
            expected, e_rew, e_term, e_trunc, _ = ref.step(acts)
            obs, rew, term, trunc, _ = ours.step(acts)
            assert (term, trunc) == (e_term, e_trunc)
            for a in expected:
                assert obs[a].dtype == np.float32 and obs[a].shape == expected[a].shape
                np.testing.assert_allclose(obs[a], expected[a], rtol=0, atol=1e-6)
                assert rew[a] == pytest.approx(e_rew[a], rel=1e-6, abs=1e-6)
        assert not ours.agents


@pytest.mark.parametrize(("name", "kwargs"), SCENARIOS, ids=IDS)
def test_every_batched_copy_steps_as_mpe2_from_a_copied_state(name, kwargs):
    """mpe2 worlds crowded so that agents collide, their states copied into one batched env, stepped together."""
    copies, rng = 4, np.random.default_rng(1)
    refs = [mpe2_env(name, **kwargs) for _ in range(copies)]
    envs = ParticleWorldVectorEnv(copies, name, **kwargs)
    envs.reset(seed=0)
    for b, ref in enumerate(refs):
        ref.reset(seed=100 + b)
        if b % 2:
            crowd(ref, rng)
        w = envs._worlds
        w.pos[b], w.vel[b], w.goal[b], w.key[b], comm = world_state(ref)
        w.comm[b] = comm[:, :w.comm.shape[2]]
    contacts = 0
    for _ in range(25):
        actions = [random_actions(rng, ref, False) for ref in refs]
        obs, rewards, terminated, truncated, _ = envs.step(as_rows(envs, actions))
        for b, ref in enumerate(refs):
            expected, e_rew, _, e_trunc, _ = ref.step(actions[b])
            for i, a in enumerate(ref.possible_agents):
                n = len(expected[a])
                np.testing.assert_allclose(obs[b, i, :n], expected[a], rtol=0, atol=1e-6)
                assert not obs[b, i, n:].any()  # zero-padded to the longest observation
                assert rewards[b, i] == pytest.approx(e_rew[a], rel=1e-6, abs=1e-6)
            assert truncated[b] == all(e_trunc.values()) and not terminated[b]
        world = refs[1].unwrapped.world
        contacts += sum(int(np.linalg.norm(x.state.p_pos - y.state.p_pos) < x.size + y.size)
                        for x in world.agents for y in world.entities if x is not y and x.collide and y.collide)
    if name not in ("simple_adversary_v3", "simple_speaker_listener_v4", "simple_crypto_v3"):  # no collisions
        assert contacts > 0


def test_copy_b_seeded_s_is_the_single_env_seeded_s_plus_b_and_autoresets():
    envs, single = ParticleWorldVectorEnv(3, max_cycles=2), ParticleWorldEnv(max_cycles=2)
    obs, _ = envs.reset(seed=5)
    expected, _ = single.reset(seed=7)
    np.testing.assert_array_equal(obs[2], np.stack(list(expected.values())))
    actions = np.array([[1, 2, 3]] * 3)
    for _ in range(2):
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        expected, e_rew, *_ = single.step({"agent_0": 1, "agent_1": 2, "agent_2": 3})
    np.testing.assert_array_equal(obs[2], np.stack(list(expected.values())))
    np.testing.assert_array_equal(rewards[2], np.array(list(e_rew.values()), dtype=np.float32))
    assert truncated.all() and not terminated.any()
    obs, rewards, terminated, truncated, _ = envs.step(actions)  # the autoreset step
    assert (rewards == 0).all() and not (terminated | truncated).any()
    np.testing.assert_array_equal(obs[2], np.stack(list(single.reset()[0].values())))  # the copy's own stream


def test_a_snapshot_continues_exactly_through_a_training_checkpoints_format():
    factory = build_env(compose_cfg(["env=mpe", "env.name=simple_tag_v3", "env.max_cycles=5"]).env)
    a, b = factory.make_vec(4), factory.make_vec(4)
    a.reset(seed=3)
    b.reset(seed=99)
    plan = np.random.default_rng(0).integers(0, 5, (16, 4, 4))
    for act in plan[:4]:
        a.step(act)
    state, exact = env_state(a)
    assert exact
    set_env_state(b, unpack(*pack(state)))  # as a training checkpoint stores it, without pickle
    for act in plan[4:]:  # through autoresets, which draw from each copy's restored stream
        for x, y in zip(a.step(act)[:4], b.step(act)[:4], strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", ["simple_spread_v3", "simple_adversary_v3", "simple_tag_v3",
                                  "simple_speaker_listener_v4", "simple_push_v3", "simple_crypto_v3"])
def test_pettingzoo_api_and_seed_tests(name):
    parallel_api_test(ParticleWorldEnv(name), num_cycles=60)
    parallel_seed_test(lambda: ParticleWorldEnv(name))


def test_bad_actions_and_arguments_are_refused():
    envs = ParticleWorldVectorEnv(2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="integers 0-4"):
        envs.step(np.full((2, 3), 5))
    with pytest.raises(ValueError, match="shape"):
        envs.step(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="did you mean local_ratio"):
        ParticleWorldEnv("simple_spread_v3", local_ration=0.5)
    with pytest.raises(ValueError, match="no batched version"):
        ParticleWorldEnv("simple_reference_v3")
    crypto = ParticleWorldVectorEnv(2, "simple_crypto_v3")
    crypto.reset(seed=0)
    with pytest.raises(ValueError, match=r"integers 0-3 \(the 4 words\)"):
        crypto.step(np.full((2, 3), 4))


@pytest.mark.parametrize("name", ["simple_tag_v3", "simple_speaker_listener_v4", "simple_push_v3", "simple_crypto_v3"])
def test_renders_one_copy(name):
    env = ParticleWorldEnv(name, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (700, 700, 3) and frame.dtype == np.uint8
    assert (frame != 255).any(axis=-1).sum() > 1000  # discs drawn on the white ground
    env.close()


def test_env_mpe_is_batched_unless_told_otherwise(caplog):
    batched = build_env(compose_cfg(["env=mpe"]).env)
    assert isinstance(batched.make_vec(8).envs, ParticleWorldVectorEnv)
    assert batched.agents == ("agent_0", "agent_1", "agent_2")
    assert isinstance(batched.make(None).env.env, ParticleWorldEnv)
    assert not isinstance(build_env(compose_cfg(["env=mpe", "env.batched=false"]).env).make_vec(2).envs,
                          ParticleWorldVectorEnv)
    with caplog.at_level(logging.INFO):
        build_env(compose_cfg(["env=mpe", "env.name=simple_reference_v3"]).env)
    assert "simple_reference_v3 has no batched version" in caplog.text
    with pytest.raises(ConfigError, match="env.kwargs do not fit simple_spread_v3: .*did you mean N"):
        build_env(compose_cfg(["env=mpe", "+env.kwargs.n=4"]).env)


def test_a_batched_mpe_run_trains_and_renders_one_copy_in_eval(tmp_path):
    tiny = [a for a in TINY if not a.startswith("total_steps=")]
    out = cli(["train", *tiny, "total_steps=400", "env=mpe", "env.name=simple_tag_v3", "agent=maddpg",
               "agent.learning_starts=200", "agent.n_envs=8"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = (tmp_path / "runs" / "simple_tag_v3" / "maddpg").iterdir()
    out = cli(["eval", f"run={run}", "render_mode=human", "n_episodes=1"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "adversary_0: mean reward" in out.stdout


def test_speaker_listener_takes_each_agents_own_actions_and_trains_batched(tmp_path):
    env = ParticleWorldEnv("simple_speaker_listener_v4")
    env.reset(seed=0)
    assert [env.action_space(a).n for a in env.possible_agents] == [3, 5]
    with pytest.raises(ValueError, match="index in column 0"):
        env.step({"speaker_0": 3, "listener_0": 0})  # the speaker has 3 words
    with pytest.raises(ValueError, match="outside its action space"):
        env.step({"speaker_0": np.zeros(3, dtype=np.float32), "listener_0": 0})
    envs = build_env(compose_cfg(["env=mpe", "env.name=simple_speaker_listener_v4"]).env).make_vec(4)
    assert isinstance(envs.envs, ParticleWorldVectorEnv)
    tiny = [a for a in TINY if not a.startswith("total_steps=")]
    for continuous in ("false", "true"):
        out = cli(["train", *tiny, "total_steps=400", "env=mpe", "env.name=simple_speaker_listener_v4",
                   f"env.continuous_actions={continuous}", "agent=maddpg", "agent.learning_starts=200",
                   "agent.n_envs=8", f"hydra.run.dir=runs/{continuous}"], cwd=tmp_path)
        assert out.returncode == 0, out.stderr


def test_crypto_counts_a_word_of_zeros_as_silence_as_mpe2_does():
    ref, ours = mpe2_env("simple_crypto_v3", True), ParticleWorldEnv("simple_crypto_v3", continuous_actions=True)
    ref.reset(seed=3)
    ours.reset(seed=3)
    silent, said = np.zeros(4, dtype=np.float32), np.array([0.0, 1.0, 0.0, 0.0], dtype=np.float32)
    for acts in ({"eve_0": silent, "bob_0": silent, "alice_0": said}, {"eve_0": said, "bob_0": silent,
                                                                       "alice_0": -said}):
        expected, e_rew, *_ = ref.step(acts)
        obs, rew, *_ = ours.step(acts)
        assert rew == pytest.approx(e_rew)
        for a in expected:
            np.testing.assert_array_equal(obs[a], expected[a])
    assert rew["eve_0"] in (0.0, -2.0) and rew["bob_0"] == -rew["eve_0"]  # Bob silent: no error of his own
