import numpy as np
import pytest
import torch

from helpers import TINY, Recorder, cli, compose_cfg
from rlkit.agents.reinforce import Reinforce, discounted_returns, generalized_advantages, policy_loss
from rlkit.callbacks import CallbackList
from rlkit.errors import ConfigError
from rlkit.factory import build_agent, build_env
from rlkit.trainer import train


def test_reward_to_go_by_hand():
    # Two copies, four steps, gamma 0.5.
    # copy 0: an episode of 3 steps that terminates at t=2, then an autoreset step (not valid) at t=3.
    # copy 1: an episode truncated at t=1 with V(s_final) = 10, then a new one cut at t=3 with V = 4.
    rewards = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 0.0], [0.0, 3.0]])
    ends = np.array([[False, False], [False, True], [True, False], [False, True]])
    bootstrap = np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 0.0], [0.0, 4.0]])
    valid = np.array([[True, True], [True, True], [True, False], [False, True]])
    g = discounted_returns(rewards, ends, bootstrap, valid, gamma=0.5)
    # copy 0: G2 = 1, G1 = 1 + 0.5 * 1 = 1.5, G0 = 1 + 0.5 * 1.5 = 1.75
    # copy 1: G1 = 2 + 0.5 * 10 = 7, G0 = 1 + 0.5 * 7 = 4.5; t=2 invalid; G3 = 3 + 0.5 * 4 = 5
    np.testing.assert_allclose(g, [[1.75, 4.5], [1.5, 7.0], [1.0, 0.0], [0.0, 5.0]])


def test_policy_loss_by_hand():
    logp = torch.tensor([-0.5, -1.0, -0.2])
    g = torch.tensor([1.0, 2.0, 3.0])
    no_entropy = torch.zeros(3)
    loss, _ = policy_loss(logp, g, None, no_entropy, normalize=False, entropy_coef=0.0)
    assert float(loss) == pytest.approx(-(-0.5 * 1 - 1.0 * 2 - 0.2 * 3) / 3)  # 1.0333
    # Normalised: (G - 2) / std(G, unbiased) = [-1, 0, 1]
    loss, adv = policy_loss(logp, g, None, no_entropy, normalize=True, entropy_coef=0.0)
    np.testing.assert_allclose(adv.numpy(), [-1.0, 0.0, 1.0], atol=1e-6)
    assert float(loss) == pytest.approx(-(0.5 + 0.0 - 0.2) / 3)
    # With a baseline V = [0.5, 1.5, 2.0]: A = [0.5, 0.5, 1.0]; entropy bonus 0.1 * mean(1) = 0.1
    loss, adv = policy_loss(logp, g, torch.tensor([0.5, 1.5, 2.0]), torch.ones(3), normalize=False,
                            entropy_coef=0.1)
    np.testing.assert_allclose(adv.numpy(), [0.5, 0.5, 1.0])
    assert float(loss) == pytest.approx(-(-0.25 - 0.5 - 0.2) / 3 - 0.1)


def test_baseline_gradient_does_not_flow_into_the_policy_loss():
    values = torch.tensor([0.5, 1.5], requires_grad=True)
    loss, _ = policy_loss(torch.tensor([-0.1, -0.2], requires_grad=True), torch.tensor([1.0, 2.0]), values,
                          torch.zeros(2), normalize=True, entropy_coef=0.0)
    loss.backward()
    assert values.grad is None


# The grid of test_reward_to_go_by_hand, with values V(s_t) (those of the invalid steps are never used).
GRID = {"rewards": np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 0.0], [0.0, 3.0]]),
        "values": np.array([[1.0, 2.0], [2.0, 4.0], [4.0, 99.0], [99.0, 2.0]]),
        "ends": np.array([[False, False], [False, True], [True, False], [False, True]]),
        "bootstrap": np.array([[0.0, 0.0], [0.0, 10.0], [0.0, 0.0], [0.0, 4.0]]),
        "valid": np.array([[True, True], [True, True], [True, False], [False, True]])}


def test_generalized_advantages_by_hand():
    a = generalized_advantages(**GRID, gamma=0.5, lam=0.5)  # gamma * lambda = 0.25
    # copy 0, terminated at t=2: d2 = 1 - 4 = -3, A2 = -3; d1 = 1 + 0.5 * 4 - 2 = 1, A1 = 1 + 0.25 * -3 = 0.25;
    #   d0 = 1 + 0.5 * 2 - 1 = 1, A0 = 1 + 0.25 * 0.25 = 1.0625
    # copy 1, truncated at t=1 (V = 10): d1 = 2 + 5 - 4 = 3 = A1; d0 = 1 + 0.5 * 4 - 2 = 1, A0 = 1 + 0.25 * 3 = 1.75;
    #   t=2 invalid; cut at t=3 (V = 4): d3 = 3 + 2 - 2 = 3 = A3
    np.testing.assert_allclose(a, [[1.0625, 1.75], [0.25, 3.0], [-3.0, 0.0], [0.0, 3.0]])
    # lambda = 1: the Monte-Carlo returns minus the baseline, as plain REINFORCE uses them.
    g = discounted_returns(GRID["rewards"], GRID["ends"], GRID["bootstrap"], GRID["valid"], gamma=0.5)
    a1 = generalized_advantages(**GRID, gamma=0.5, lam=1.0)
    np.testing.assert_allclose(a1[GRID["valid"]], (g - GRID["values"])[GRID["valid"]])


def test_clipped_policy_loss_by_hand():
    # Ratios 1.5, 0.5, 1.5, 0.5 against advantages 1, 1, -1, -1 with clip 0.2: the pessimistic terms are
    # min(1.5, 1.2) = 1.2 (clipped), min(0.5, 0.8) = 0.5, min(-1.5, -1.2) = -1.5, min(-0.5, -0.8) = -0.8 (clipped).
    old = torch.log(torch.tensor([0.2, 0.4, 0.2, 0.4]))
    logp = torch.log(torch.tensor([0.3, 0.2, 0.3, 0.2])).requires_grad_()
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss, _ = policy_loss(logp, adv, None, torch.zeros(4), normalize=False, entropy_coef=0.0, old_logp=old,
                          clip_range=0.2)
    assert float(loss.detach()) == pytest.approx(-(1.2 + 0.5 - 1.5 - 0.8) / 4)
    loss.backward()
    # d loss / d log pi = -ratio * A / 4 where unclipped, 0 where the clip holds the term.
    np.testing.assert_allclose(logp.grad.numpy(), [0.0, -0.5 / 4, 1.5 / 4, 0.0], atol=1e-6)


@pytest.mark.parametrize(("overrides", "message"), [
    (["agent.clip_range=0"], r"agent.clip_range=0.0 is out of range"),
    (["agent.clip_range=-0.2"], r"agent.clip_range=-0.2 is out of range"),
    (["agent.gae_lambda=1.5"], r"agent.gae_lambda=1.5 is out of range"),
    (["agent.n_epochs=0", "agent.clip_range=0.2"], r"agent.n_epochs=0 is out of range"),
    (["agent.batch_size=-1", "agent.clip_range=0.2"], r"agent.batch_size=-1 is out of range"),
    (["agent.reward_scale=0"], r"agent.reward_scale=0.0 is out of range"),
    (["agent.n_epochs=4"], r"agent.n_epochs=4 reuses a batch .* set agent.clip_range"),
    (["agent.batch_size=256"], r"agent.batch_size=256 reuses a batch .* set agent.clip_range"),
    (["agent.gae_lambda=0.95", "agent.baseline=false"], r"agent.gae_lambda=0.95 computes advantages from the "
     r"value baseline: set agent.baseline=true"),
])
def test_bad_ppo_options_are_refused_naming_the_key(overrides, message):
    cfg = compose_cfg(["agent=reinforce", *overrides])
    with pytest.raises(ConfigError, match=message):
        cfg.agent.validate()


def test_a_refused_clip_range_exits_2_with_one_line(tmp_path):
    result = cli(["train", "agent=reinforce", "agent.clip_range=0", *TINY], cwd=tmp_path)
    assert result.returncode == 2
    assert "agent.clip_range=0.0 is out of range" in result.stderr and "Traceback" not in result.stderr


def test_ppo_options_update_in_epochs_of_minibatches_and_repeat_with_the_seed(tmp_path):
    options = ["agent.n_envs=4", "agent.steps_per_update=64", "agent.gae_lambda=0.9", "agent.clip_range=0.2",
               "agent.n_epochs=3", "agent.batch_size=16"]
    _, agent = _agent(options)
    rec = Recorder()
    agent.learn(640, CallbackList([rec]))
    metrics = [u[2] for u in rec.of("update")]
    assert [u[1] for u in rec.of("update")] == list(range(64, 641, 64))
    assert {"clip_fraction", "value_loss", "explained_variance"} <= set(metrics[0])
    assert any(m["clip_fraction"] > 0 for m in metrics)  # later minibatches move the policy away from pi_old

    def rewards(seed, name):
        Recorder.instances.clear()
        cfg = compose_cfg(["agent=reinforce", *options, *TINY, "total_steps=3000", f"seed={seed}",
                           "+callbacks.extra.rec._target_=helpers.Recorder"])
        train(cfg, tmp_path / name)
        return [e[1].reward for e in Recorder.instances[-1].of("episode")]

    assert rewards(3, "a") == rewards(3, "b")


def _agent(overrides, seed=0):
    cfg = compose_cfg(["agent=reinforce", *overrides])
    env = build_env(cfg.env)
    return cfg, build_agent(cfg.agent, env, seed=seed)


def test_truncated_episodes_bootstrap_from_the_baseline():
    _, agent = _agent(["env.max_episode_steps=5", "agent.n_envs=4", "agent.episodes_per_update=8"])
    rec = Recorder()
    agent.learn(40, CallbackList([rec]))
    ro = agent._rollout
    t = ro.t
    lengths = [e[1].length for e in rec.of("episode")]
    assert lengths and all(n <= 5 for n in lengths)
    truncated_rows = ro.ends[:t] & (ro.bootstrap[:t] != 0)
    assert truncated_rows.any(), "truncations must be bootstrapped with V(s_final)"
    # The bootstrap is the baseline's value of the final observation, not zero (a failure).
    assert np.all(np.abs(ro.bootstrap[:t][truncated_rows]) > 0)


def test_without_a_baseline_truncation_is_not_bootstrapped_and_steps_mode_is_refused():
    _, agent = _agent(["env.max_episode_steps=5", "agent.baseline=false", "agent.n_envs=2"])
    agent.learn(20, CallbackList([]))
    assert not agent._rollout.bootstrap.any()
    cfg = compose_cfg(["agent=reinforce", "agent.baseline=false", "agent.steps_per_update=64"])
    with pytest.raises(ConfigError, match="bootstrapped with the value baseline"):
        cfg.agent.validate()


def test_each_update_uses_exactly_its_batch_of_whole_fresh_episodes(tmp_path):
    Recorder.instances.clear()
    cfg = compose_cfg(["agent=reinforce", "agent.n_envs=4", "agent.episodes_per_update=6", "total_steps=3000",
                       "callbacks.eval.every_steps=0", "callbacks.progress_bar=false",
                       "+callbacks.extra.rec._target_=helpers.Recorder"])
    train(cfg, tmp_path / "run")
    rec = Recorder.instances[-1]
    counts, n = [], 0
    for e in rec.events:
        if e[0] == "episode":
            n += 1
        elif e[0] == "update":
            counts.append(n)
            n = 0
    assert len(counts) > 3
    assert all(c == 6 for c in counts[:-1]), counts  # the last batch may be cut by the budget
    metrics = [e[2] for e in rec.of("update")]
    assert {"policy_loss", "value_loss", "entropy", "grad_norm", "learning_rate"} <= set(metrics[0])


def test_steps_mode_updates_every_n_steps():
    _, agent = _agent(["agent.n_envs=4", "agent.steps_per_update=64"])
    rec = Recorder()
    agent.learn(640, CallbackList([rec]))
    assert [u[1] for u in rec.of("update")] == list(range(64, 641, 64))


@pytest.mark.parametrize(
    "overrides",
    [[], ["env.continuous=true"], ["env.continuous=true", "agent.squash=false"],
     ["env.continuous=true", "agent.state_dependent_std=true"], ["env=gym", "env.id=Pendulum-v1"]],
    ids=["discrete", "gaussian-squashed", "gaussian-clipped", "gaussian-state-std", "pendulum"],
)
def test_discrete_and_box_actions_stay_in_the_space(overrides):
    cfg, agent = _agent([*overrides, "agent.n_envs=2", "agent.episodes_per_update=2"])
    agent.learn(200, CallbackList([]))
    space = agent.action_space
    obs = np.stack([agent.observation_space.sample() for _ in range(32)]).astype(np.float32)
    for deterministic in (True, False):
        actions = agent.act(obs, deterministic=deterministic)
        assert actions.shape == (32, *space.shape)
        assert all(space.contains(a.astype(space.dtype)) for a in actions)


def test_squash_into_infinite_bounds_is_refused():
    import gymnasium as gym

    from rlkit.agents.reinforce import Policy

    cfg = compose_cfg(["agent=reinforce"]).agent
    with pytest.raises(ConfigError, match="squash"):
        Policy(cfg, gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-np.inf, np.inf, (2,)))


def test_checkpoint_round_trip_gives_identical_actions(tmp_path):
    _, agent = _agent(["agent.n_envs=2", "agent.episodes_per_update=2"])
    agent.learn(300, CallbackList([]))
    agent.save(tmp_path / "c.safetensors", {"step": 300})
    _, other = _agent(["agent.n_envs=2"], seed=9)
    obs = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    assert not np.array_equal(agent.policy.net[0].weight.detach(), other.policy.net[0].weight.detach())
    assert other.load(tmp_path / "c.safetensors")["step"] == 300
    np.testing.assert_array_equal(agent.act(obs), other.act(obs))
    for a, b in zip(agent.policy_opt.state.values(), other.policy_opt.state.values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"])


def test_same_seed_same_episode_rewards(tmp_path):
    def rewards(seed, name):
        Recorder.instances.clear()
        cfg = compose_cfg(["agent=reinforce", *TINY, "total_steps=4000", f"seed={seed}",
                           "+callbacks.extra.rec._target_=helpers.Recorder"])
        train(cfg, tmp_path / name)
        return [e[1].reward for e in Recorder.instances[-1].of("episode")]

    first = rewards(3, "a")
    assert first == rewards(3, "b")
    assert first != rewards(4, "c")


def test_observation_spaces_it_cannot_handle_are_refused_before_training():
    cfg = compose_cfg(["agent=reinforce", "env=gym", "env.id=FrozenLake-v1"])
    with pytest.raises(ConfigError, match="flat Box observation space"):
        Reinforce(cfg.agent, build_env(cfg.env).make_vec, seed=0)
