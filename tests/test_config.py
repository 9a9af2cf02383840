import dataclasses
import inspect
import re
from importlib.resources import files
from pathlib import Path

import gymnasium as gym
import pytest
import yaml
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError

from helpers import compose_cfg
from rlkit.agents.config import DQNConfig
from rlkit.config import (
    PLAIN_VALUES,
    CallbacksConfig,
    ConfigError,
    EvalConfig,
    EvalRunConfig,
    TrainConfig,
    check_group_choices,
    override_value,
)
from rlkit.envs import (
    BALANCING_POLE_ID,
    ROBOTIC_ARM_ID,
    BalancingPoleEnv,
    BalancingPoleVectorEnv,
    MultiCartPoleEnv,
    MultiCartPoleVectorEnv,
    RoboticArmEnv,
    RoboticArmVectorEnv,
)
from rlkit.envs.balancing_pole import BalancingPoleConfig
from rlkit.envs.robotic_arm import RoboticArmConfig
from rlkit.errors import RlkitError
from rlkit.factory import AGENTS, ENVS
from rlkit.manual import field_docs

ENV_SCHEMAS = {name: schema for name, (schema, _) in ENVS.items()}
AGENT_SCHEMAS = {name: schema for name, (schema, _) in AGENTS.items()}

CONFIGS = Path(str(files("rlkit.configs")))
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
ENV_CHOICES = {"balancing_pole": [], "gym": ["env.id=CartPole-v1"]}


@pytest.mark.parametrize("env", sorted(ENV_CHOICES))
@pytest.mark.parametrize("agent", sorted(AGENT_SCHEMAS))
def test_every_env_and_agent_choice_composes_to_its_schema(env, agent):
    cfg = compose_cfg([f"env={env}", f"agent={agent}", *ENV_CHOICES[env]])
    assert isinstance(cfg.env, ENV_SCHEMAS[env])
    assert isinstance(cfg.agent, AGENT_SCHEMAS[agent])
    assert isinstance(cfg.callbacks, CallbacksConfig)
    cfg.validate()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment):
    cfg = compose_cfg([f"experiment={experiment}"])
    cfg.validate()
    env, agent = experiment.split("_", 1)[0], experiment.rsplit("_", 1)[1]
    # <env>_<agent>.yaml: the env's kind (or, for MPE, its group) and the agent's name
    assert cfg.agent.name == agent
    assert cfg.env.name.startswith(env) or isinstance(cfg.env, ENV_SCHEMAS.get(env, type(None)))


def test_experiments_exist():
    assert "balancing_pole_dqn" in EXPERIMENTS


def test_eval_config_composes():
    cfg = compose_cfg(["run=some/dir", "render_mode=human"], config_name="eval")
    assert cfg.run == "some/dir" and cfg.render_mode == "human"


def test_defaults_of_dqn_are_sb3s_own():
    from stable_baselines3 import DQN

    sb3 = inspect.signature(DQN.__init__).parameters
    ours = compose_cfg([]).agent
    for f in dataclasses.fields(DQNConfig):
        if f.name == "device":
            continue  # cpu on purpose: small MLPs run faster there, and CPU runs are reproducible
        if f.name in sb3 and sb3[f.name].default is not inspect.Parameter.empty:
            assert getattr(ours, f.name) == sb3[f.name].default, f.name


def test_every_sb3_dqn_hyperparameter_is_overridable():
    from stable_baselines3 import DQN

    not_config = {"self", "policy", "env", "policy_kwargs", "tensorboard_log", "verbose", "seed", "device",
                  "_init_setup_model", "replay_buffer_class", "replay_buffer_kwargs"}
    names = {f.name for f in dataclasses.fields(DQNConfig)}
    missing = [p for p in inspect.signature(DQN.__init__).parameters if p not in not_config | names]
    assert not missing, f"DQN arguments without a config key: {missing}"


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigCompositionException) as e:
        compose_cfg(["agent.learning_rate=abc"])
    assert "agent.learning_rate" in str(e.value.__cause__ or e.value) or "agent.learning_rate" in str(e.value)


def test_unknown_key_is_refused():
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        compose_cfg(["agent.lerning_rate=0.1"])
    with pytest.raises(ConfigError, match="unknown key 'agent.foo'"):
        compose_cfg(["+agent.foo=1"])


def test_typo_in_a_group_choice_names_the_valid_ones():
    with pytest.raises(RlkitError, match=r"choose one of: balancing_pole, gym, .*\. Did you mean env=balancing_pole"):
        check_group_choices("train", ["env=balancing_pol"])
    check_group_choices("train", ["env=gym", "agent=dqn", "seed=3", "experiment=balancing_pole_dqn"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("total_steps=0", "total_steps must be >= 1"),
        ("agent.gamma=1.5", "agent.gamma=1.5 is out of range"),
        ("agent.net_arch=[]", "net_arch must list positive"),
        ("env.masspole=0", "env.masspole must be > 0"),
        ("callbacks.eval.episodes=0", "callbacks.eval.episodes must be between 1 and 1000"),
    ],
)
def test_cross_field_checks_quote_the_values(override, message):
    cfg = compose_cfg([override])
    with pytest.raises(ConfigError, match=re.escape(message)):
        cfg.validate()


def test_render_mode_is_checked():
    cfg = compose_cfg(["run=x", "render_mode=window"], config_name="eval")
    with pytest.raises(ConfigError, match="render_mode"):
        cfg.validate()


@pytest.mark.parametrize(
    "schema", [*ENV_SCHEMAS.values(), *AGENT_SCHEMAS.values(), CallbacksConfig, EvalConfig, TrainConfig,
               EvalRunConfig]
)
def test_every_schema_field_has_a_docstring(schema):
    docs = field_docs(schema)
    undocumented = [f.name for f in dataclasses.fields(schema) if not docs.get(f.name)]
    assert not undocumented, f"{schema.__name__} fields without a docstring: {undocumented}"


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_yaml_key_has_a_comment(path):
    lines = path.read_text().splitlines()
    assert isinstance(yaml.safe_load(path.read_text()), dict)
    assert lines[0].startswith("#"), f"{path.name} should start with a comment saying what it is"
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z_][\w.]*):\s*(.*)$", line)
        if not m or m.group(2) in ("defaults", "hydra"):
            continue
        if m.group(3) == "":
            continue  # a mapping whose keys are commented below it
        commented = "#" in m.group(3) or lines[i - 1].strip().startswith("#")
        assert commented, f"{path.name}: key {m.group(2)!r} has no comment (inline or on the line above)"


@pytest.mark.parametrize("env_class", [BalancingPoleEnv, BalancingPoleVectorEnv, MultiCartPoleEnv,
                                       MultiCartPoleVectorEnv, RoboticArmEnv, RoboticArmVectorEnv])
def test_env_constructors_have_no_defaults_of_their_own(env_class):
    # Every default is the schema's: the constructor takes the schema's fields as keyword arguments.
    params = inspect.signature(env_class.__init__).parameters
    assert [p for p in params if p not in ("self", "render_mode", "num_envs")] == ["params"]
    assert params["params"].kind is inspect.Parameter.VAR_KEYWORD


def test_envs_use_their_schemas_values_and_refuse_unknown_arguments():
    defaults = BalancingPoleConfig()
    env = gym.make(BALANCING_POLE_ID)
    assert (env.spec.max_episode_steps, env.spec.reward_threshold) == (500, 475.0)
    assert (env.spec.max_episode_steps, env.spec.reward_threshold) == (defaults.max_episode_steps,
                                                                       defaults.reward_threshold)
    for key in ("gravity", "masscart", "masspole", "length", "force_mag", "tau", "x_threshold", "continuous"):
        assert getattr(env.unwrapped, key) == getattr(defaults, key), key
    assert gym.make(BALANCING_POLE_ID, gravity=5.0).unwrapped.gravity == 5.0
    assert gym.spec(ROBOTIC_ARM_ID).max_episode_steps == RoboticArmConfig.max_episode_steps == 200
    typo = r"BalancingPole has no argument gravty \(did you mean gravity\?\); its arguments: gravity, masscart"
    with pytest.raises(TypeError, match=typo):
        gym.make(BALANCING_POLE_ID, gravty=5.0)
    with pytest.raises(TypeError, match="has no argument max_episode_steps"):
        BalancingPoleEnv(max_episode_steps=10)  # gym.make's argument, for the TimeLimit
    with pytest.raises(ValueError, match="env.masspole must be > 0"):
        gym.make(BALANCING_POLE_ID, masspole=0.0)


PLAIN = ["3", "-3", "+3", "0", "010", "1_000", "1__0", "1.5", ".5", "5.", "1e5", "1E-5", "1.5e+3", "1_0.2_5", "inf",
         "-INF", "nan", "infinity", "true", "False", "TRUE1", "null", "NULL", "nully", "abc", "a-b", "_x", "runs/x/y",
         "1abc", "1.5.3", "1-2", "-", "+a"]


@pytest.mark.parametrize("value", PLAIN)
def test_a_plain_value_reads_as_hydras_parser_reads_it(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    assert any(pattern.fullmatch(value) for pattern in PLAIN_VALUES.values())  # read without Hydra
    (override,) = OverridesParser.create().parse_overrides([f"key={value}"])
    expected, got = override.value(), override_value(value)
    assert type(got) is type(expected)
    assert got == expected or (got != got and expected != expected)  # nan


def test_values_that_are_not_one_plain_word_are_read_by_hydras_parser():
    assert override_value("[64, 64]") == [64, 64]
    assert override_value("'3'") == "3"
    assert override_value("") == ""
    with pytest.raises(ValueError, match="sweep"):
        override_value("0,1")
    with pytest.raises(ValueError):
        override_value("[1,")
