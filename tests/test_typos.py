"""The typos people make get one line naming the unknown key and the closest valid ones, exit 2, before Hydra."""

import dataclasses
import json

import pytest

from helpers import cli
from rlkit.config import check_override_keys
from rlkit.factory import AGENTS, ENVS

TYPOS = [
    (["train", "agent.lerning_rate=1e-3"],
     "unknown key 'agent.lerning_rate': no field 'lerning_rate' in agent=dqn (DQNConfig). "
     "Did you mean agent.learning_rate?"),
    (["train", "totl_steps=100"], "unknown key 'totl_steps': no field 'totl_steps' in TrainConfig. "
                                  "Did you mean total_steps?"),
    (["train", "-m", "seed=0,1", "totl_steps=100"], "Did you mean total_steps?"),
    (["train", "-m", "agent=dqn,reinforce", "agent.target_update_interval=5"],
     "no field 'target_update_interval' in agent=reinforce (ReinforceConfig)"),
    (["train", "experiment=balancing_pole_dqn", "agent.gradient_step=8"],
     "no field 'gradient_step' in any agent config. Did you mean agent.gradient_steps?"),
    (["train", "callbacks.eval.every_step=100"], "Did you mean callbacks.eval.every_steps?"),
    (["train", "agnt.learning_rate=1e-3"], "Did you mean agent?"),
    (["train", "+agent.lerning_rate=1e-3"], "Did you mean agent.learning_rate?"),
    (["eval", "run=somewhere", "n_episode=2"], "unknown key 'n_episode': no field 'n_episode' in EvalRunConfig. "
                                               "Did you mean n_episodes?"),
    (["verify", "run=somewhere", "step=5"], "unknown key 'step': rlkit verify takes run=, steps= and trust_run=. "
                                            "Did you mean steps=5?"),
    (["train", "seed=abc"], "seed=abc: Value 'abc' of type 'str' could not be converted to Integer"),
    (["train", "agent=dqn", "agent.net_arch=[64,x]"], "agent.net_arch=[64,x]: Value 'x' of type 'str' could not be "
                                                      "converted to Integer"),
    (["train", "-m", "seed=0,1", "callbacks.progress_bar=maybe"], "callbacks.progress_bar=maybe: Value 'maybe' is"),
    (["train", "-m", "hydra/sweeper=optun"], "choose one of: basic, optuna. Did you mean hydra/sweeper=optuna?"),
    (["trian"], "unknown command 'trian'; choose one of: train, eval, plot, verify, export. Did you mean rlkit train?"),
]


@pytest.mark.parametrize(("args", "message"), TYPOS, ids=[" ".join(a) for a, _ in TYPOS])
def test_a_typo_gets_one_line_with_the_closest_key_and_exit_2(tmp_path, args, message):
    out = cli(args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr.splitlines()[0], out.stderr
    assert "Could not override" not in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()  # nothing started


def _overrides(group, schema):
    """``group.key=value`` for every field, with a value of its type (its default, as Hydra's override syntax)."""
    def value(f):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if default is dataclasses.MISSING or isinstance(default, str) and default.startswith("?"):
            return "1"
        return json.dumps(default).replace('"', "'")  # JSON's null, lists and dicts parse as Hydra's

    return [f"{group}.{f.name}={value(f)}" for f in dataclasses.fields(schema)]


def test_every_declared_key_passes_the_check():
    for group, registry in (("env", ENVS), ("agent", AGENTS)):
        for name, (schema, _) in registry.items():
            check_override_keys("train", [f"{group}={name}", *_overrides(group, schema)])
    check_override_keys("train", ["seed=1", "total_steps=5", "callbacks.eval.every_steps=1", "callbacks.extra.x.y=1",
                                  "hydra.launcher.n_jobs=2", "hydra/launcher=basic", "experiment=balancing_pole_dqn",
                                  "agent.learning_rate=1", "~callbacks.extra", "+callbacks.extra.z._target_=x"])
    check_override_keys("eval", ["run=x", "n_episodes=2", "render_mode=human", "video=true"])
