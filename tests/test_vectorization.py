"""env.vectorization: the env's copies in subprocesses (async) or Ray actors (ray), and their bad input.

The env is tests/slow_env.py (a fixed cost per step, 0 here unless a test needs time to pass). Ray tests start a
local Ray instance (loopback only, 2 actors) once for the module and are marked slow.
"""

from __future__ import annotations

import importlib.util
import re
import socket
import threading

import numpy as np
import pytest
from slow_env import SlowEnv

from helpers import TINY, cli, compose_cfg, read_scalars
from rlkit.errors import ConfigError, EnvWorkerDied
from rlkit.factory import build_agent, build_env

SLOW = ["env=gym", "env.id=slow_env:SlowEnv-v0", "+env.kwargs.step_seconds=0"]
BASE = [a for a in TINY if not a.startswith(("total_steps=", "callbacks.eval.every_steps="))]
NO_EVAL = [*BASE, "callbacks.eval.every_steps=0"]
SHORT = ["total_steps=400", "callbacks.eval.every_steps=200"]  # on Ray actors each vector step is a round trip
REINFORCE = ["agent=reinforce", "agent.n_envs=4", "agent.steps_per_update=64"]


def make_vec(mode: str, n: int = 3, extra: tuple[str, ...] = (), env: tuple[str, ...] = tuple(SLOW)):
    cfg = compose_cfg([*env, f"env.vectorization={mode}", *extra])
    cfg.validate()
    return build_env(cfg.env).make_vec(n)


def rollout(envs, steps: int = 120) -> list[np.ndarray]:
    """Observations, rewards and flags of ``steps`` vector steps with fixed actions, seed 1."""
    obs, _ = envs.reset(seed=1)
    out = [obs]
    multi_agent = hasattr(envs, "num_agents")  # the multi-agent cart-pole: a push in [-1, 1] per agent
    try:
        for t in range(steps):
            actions = np.arange(envs.num_envs) % 2 ^ (t % 2)
            if multi_agent:
                actions = np.repeat(actions[:, None, None] - 0.4, envs.num_agents, axis=1).astype(np.float32)
            obs, rewards, terminated, truncated, _ = envs.step(actions)
            out += [obs, rewards, terminated, truncated]
    finally:
        envs.close()
    return out


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def train(tmp_path, name: str, *args: str) -> dict:
    """A run's scalars (but time/); TINY's budget unless ``args`` set total_steps and callbacks.eval.every_steps."""
    budget = [] if any(a.startswith("total_steps=") for a in args) else ["total_steps=1200",
                                                                         "callbacks.eval.every_steps=500"]
    out = cli(["train", *BASE, *budget, *SLOW, *args, f"hydra.run.dir={tmp_path / name}"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return {t: v for t, v in read_scalars(tmp_path / name / "tb").items() if not t.startswith("time/")}


# --- bad input without Ray

@pytest.mark.parametrize(("override", "message"), [
    ("env.vectorization=asinc", "env.vectorization='asinc' is not one of sync, async, ray. Did you mean async?"),
    ("env.ray_actors=0", "env.ray_actors must be >= 1, got 0"),
])
def test_bad_values_are_refused_with_the_closest_choice(override, message):
    cfg = compose_cfg([*SLOW, override])
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("?", r"\?")):
        cfg.validate()


def test_missing_ray_is_named_before_anything_is_built(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    cfg = compose_cfg([*SLOW, "env.vectorization=ray"])
    env = build_env(cfg.env)  # playing a run needs no Ray: its env steps in this process
    env.make(None).close()
    with pytest.raises(ConfigError, match=r"env.vectorization=ray needs Ray, an optional extra: pip install "
                                          r"'rlkit\[ray\]' \(or env.vectorization=async"):
        env.make_vec(1)
    for agent in ("reinforce", "maddpg", "ppo"):  # built to act (rlkit eval): no copies elsewhere, no Ray
        build_agent(compose_cfg([*SLOW, f"agent={agent}"]).agent, env, seed=0, training=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("address", "message"), [
    ("127.0.0.1:{port}", r"no Ray cluster answers at 127.0.0.1:{port} \(RAY_ADDRESS\): Connection refused"),
    ("nonsense", r"RAY_ADDRESS='nonsense' is not a Ray address"),
])
def test_no_cluster_at_ray_address_fails_fast_in_one_line(monkeypatch, address, message):
    port = closed_port()
    monkeypatch.setenv("RAY_ADDRESS", address.format(port=port))
    cfg = compose_cfg([*SLOW, "env.vectorization=ray"])
    with pytest.raises(ConfigError, match=message.format(port=port)):
        build_env(cfg.env).make_vec(1)


def test_the_command_refuses_a_missing_cluster_in_one_line_and_leaves_no_run(tmp_path):
    port = closed_port()
    out = cli(["train", *TINY, *SLOW, *REINFORCE, "env.vectorization=ray", f"hydra.run.dir={tmp_path / 'run'}"],
              cwd=tmp_path, env={"RAY_ADDRESS": f"127.0.0.1:{port}"})
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines()[0] == (f"rlkit: error: no Ray cluster answers at 127.0.0.1:{port} (RAY_ADDRESS): "
                                          "Connection refused. Start one there with `ray start --head "
                                          f"--port={port}`, or unset RAY_ADDRESS to run on a new local instance")
    assert not (tmp_path / "run").exists()


# --- async: Gymnasium's AsyncVectorEnv

MULTI_AGENT = ("env=pettingzoo", "env.id=rlkit/MultiCartPole-v0")  # PettingZoo's way: copies stepped in turn


def test_async_copies_step_as_the_in_process_ones():
    assert same(rollout(make_vec("sync")), rollout(make_vec("async")))
    # rlkit's batched balancing pole against its single copies, each in a process
    assert same(rollout(make_vec("sync", env=("env=balancing_pole",))),
                rollout(make_vec("async", env=("env=balancing_pole",))))
    episodes = rollout(make_vec("sync", env=MULTI_AGENT))
    assert any(done.any() for done in episodes[3::4])  # autoresets included
    assert same(episodes, rollout(make_vec("async", env=MULTI_AGENT)))


def test_async_training_repeats_the_sync_run(tmp_path):
    sync = train(tmp_path, "sync", *REINFORCE)
    assert sync["episode/reward"]
    assert train(tmp_path, "async", *REINFORCE, "env.vectorization=async") == sync


def test_sb3_trains_with_async_copies(tmp_path):
    scalars = train(tmp_path, "ppo", "agent=ppo", "agent.n_envs=2", "agent.n_steps=64", "agent.batch_size=64",
                    "env.vectorization=async")
    assert scalars["episode/reward"]


@pytest.mark.parametrize("mode", ["async", "ray"])
def test_an_env_that_does_not_pickle_is_refused_in_one_line(mode):
    from rlkit.envs.remote import AsyncCopies, RayVectorEnv

    lock = threading.Lock()

    def make():  # holds a lock, which no process can be sent
        with lock:
            return SlowEnv()

    with pytest.raises(ConfigError, match=r"^slow cannot be sent to another process: its maker does not pickle "
                                          r"\(TypeError: cannot pickle '_thread.lock' object\); register the env in "
                                          r"an importable module \(env.id=mymodule:MyEnv-v0\), or use "
                                          r"env.vectorization=sync$"):
        AsyncCopies([make, make], "slow") if mode == "async" else RayVectorEnv(make, 2, 2, "slow")


def test_a_dead_copy_process_stops_the_run_at_its_checkpoint_and_resume_finishes_it(tmp_path):
    # 4 copies each die at their step 120 (env step 480 or so); the checkpoint is at 256. Resumed, new copies take
    # 344 / 4 = 86 steps each to reach 600: they finish.
    run = tmp_path / "run"
    out = cli(["train", *NO_EVAL, *SLOW, *REINFORCE, "total_steps=600", "env.vectorization=async",
               "+env.kwargs.die_at_step=120", "callbacks.checkpoint.every_steps=256", f"hydra.run.dir={run}"],
              cwd=tmp_path)
    assert out.returncode == EnvWorkerDied.exit_code, out.stderr
    lines = [line for line in out.stderr.splitlines() if "died mid-run" in line]
    assert len(lines) == 1, out.stderr
    assert "of slow_env:SlowEnv-v0 died mid-run" in lines[0] and "the run stopped at step 4" in lines[0], lines[0]
    assert f"its last training checkpoint is {run}/checkpoints/resume/step_000000000256" in lines[0], lines[0]
    assert f"continue with: rlkit train resume={run}" in lines[0], lines[0]

    resumed = cli(["train", f"resume={run}", "trust_run=true"], cwd=tmp_path)  # the run's env.id imports slow_env
    assert resumed.returncode == 0, resumed.stderr
    said = [line for line in (resumed.stdout + resumed.stderr).splitlines() if "env.vectorization=async" in line]
    assert len(said) == 1 and "the copies start new episodes" in said[0], resumed.stdout + resumed.stderr
    assert "steps: 600" in resumed.stdout


# --- ray: copies on Ray actors, a local instance started here (loopback only)

@pytest.fixture(scope="class")
def ray_instance():
    pytest.importorskip("ray")
    from rlkit.envs.remote import connect

    ray = connect(2)
    yield ray
    ray.shutdown()


@pytest.mark.slow
class TestOnRay:
    """One local Ray instance for these tests, shut down after the last of them."""

    def test_ray_copies_step_as_the_in_process_ones_and_train(self, ray_instance, tmp_path):
        # 5 copies over 2 actors (3 + 2): the copies' seeds follow their place in the run, not their actor.
        assert same(rollout(make_vec("sync", 5)), rollout(make_vec("ray", 5, ("env.ray_actors=2",))))
        assert same(rollout(make_vec("sync", env=MULTI_AGENT)), rollout(make_vec("ray", env=MULTI_AGENT)))
        sync = train(tmp_path, "sync", *REINFORCE, *SHORT)
        assert sync["episode/reward"]
        assert train(tmp_path, "ray", *REINFORCE, *SHORT, "env.vectorization=ray", "env.ray_actors=2") == sync


    def test_maddpg_trains_a_single_agent_env_on_ray_actors(self, ray_instance, tmp_path):
        scalars = train(tmp_path, "maddpg", "agent=maddpg", "agent.n_envs=4", "agent.learning_starts=200", *SHORT,
                        "env.vectorization=ray")
        assert scalars["episode/reward"]


    def test_sb3_trains_with_copies_on_ray_actors(self, ray_instance, tmp_path):
        scalars = train(tmp_path, "ppo", "agent=ppo", "agent.n_envs=3", "agent.n_steps=64", "agent.batch_size=64",
                        *SHORT, "env.vectorization=ray")
        assert scalars["episode/reward"]


    def test_a_dead_actor_stops_the_run_naming_it_and_the_checkpoint(self, ray_instance, tmp_path):
        run = tmp_path / "run"
        out = cli(["train", *NO_EVAL, "total_steps=1200", *SLOW, *REINFORCE, "env.vectorization=ray",
                   "+env.kwargs.die_at_step=120", "callbacks.checkpoint.every_steps=256", f"hydra.run.dir={run}"],
                  cwd=tmp_path)
        assert out.returncode == EnvWorkerDied.exit_code, out.stderr
        lines = [line for line in out.stderr.splitlines() if "died mid-run" in line]
        assert len(lines) == 1, out.stderr
        # Every copy dies at the same step: whichever actor Ray reports first is named, with its copies.
        assert re.search(r"Ray actor (0 \(copies 0-1\)|1 \(copies 2-3\)) of slow_env:SlowEnv-v0 died mid-run "
                         r"\(ActorDiedError: ", lines[0]), lines[0]
        assert "the run stopped at step" in lines[0] and "common causes" not in lines[0], lines[0]
        assert f"its last training checkpoint is {run}/checkpoints/resume/step_" in lines[0], lines[0]
