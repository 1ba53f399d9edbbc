"""Study files: valid files map onto the dataclasses, every mistake names its field."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import tomllib
from pathlib import Path
from typing import Any

import pytest

from synevo.study.config import (
    OVERRIDE_KEYS,
    EvaluationConfig,
    ExecutionConfig,
    ModelConfig,
    OptimizerConfig,
    StudyConfig,
    apply_overrides,
    load_study,
    parse_assignment,
    parse_value,
    study_from_dict,
    validate_names,
    warn_suspicious,
)

REPO = Path(__file__).resolve().parents[1]

STUDY = """
name = "quickstart"
tasks = ["CartPole-v1"]
seeds = [1, 2]
budget = 200_000

[model]
name = "synaptogen"
genes = 16
hidden = [128]

[evaluation]
eval_every = 5_000

[execution]
workers = 2
parallel = "population"

[[optimizers]]
name = "dqn"
learning_rate = 3e-4

[[optimizers]]
name = "snes"
label = "snes64"
popsize = 64
"""


def base() -> dict[str, Any]:
    """The parsed STUDY, a fresh copy per call."""
    return copy.deepcopy(tomllib.loads(STUDY))


def names_modules_ready() -> None:
    """Skip unless the task, model and optimizer registries can be imported."""
    for module, attr in [
        ("synevo.evaluation", "check_task"),
        ("synevo.models", "build_model"),
        ("synevo.optimizers", "make_optimizer"),
    ]:
        try:
            getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            pytest.skip(f"{module}.{attr} is not available yet: {e}")


# Valid files


def test_study_maps_onto_dataclasses():
    config = study_from_dict(base())

    assert config == StudyConfig(
        name="quickstart",
        tasks=("CartPole-v1",),
        seeds=(1, 2),
        budget=200_000,
        models=(ModelConfig("synaptogen", {"genes": 16, "hidden": [128]}),),
        optimizers=(
            OptimizerConfig("dqn", "dqn", {"learning_rate": 3e-4}),
            OptimizerConfig("snes", "snes64", {"popsize": 64}),
        ),
        evaluation=EvaluationConfig(eval_every=5_000, eval_episodes=20, final_episodes=100),
        execution=ExecutionConfig(workers=2, parallel="population"),
    )
    assert config.models[0].label == "synaptogen"


def test_optional_tables_take_defaults():
    table = base()
    del table["evaluation"], table["execution"]

    config = study_from_dict(table)

    assert config.evaluation == EvaluationConfig(10_000, 20, 100)
    assert config.execution == ExecutionConfig(workers=None, parallel="trials")


def test_models_array_of_tables():
    table = base()
    del table["model"]
    table["models"] = [{"name": "synaptogen", "genes": 8}, {"name": "mlp", "label": "plain"}]

    config = study_from_dict(table)

    assert [m.label for m in config.models] == ["synaptogen", "plain"]
    assert config.models[1] == ModelConfig("mlp", {}, "plain")


def test_configs_are_frozen():
    config = study_from_dict(base())
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.budget = 5  # type: ignore[misc]


def test_quickstart_file_has_a_valid_structure():
    with open(REPO / "studies" / "quickstart.toml", "rb") as f:
        config = study_from_dict(tomllib.load(f))

    assert config.tasks == ("CartPole-v1",)
    assert [o.label for o in config.optimizers] == ["dqn", "snes", "cem"]
    assert len(config.trials()) == 6


# Invalid files: (change to the valid study, substrings the message must hold)


def _set(path: str, value: Any):
    def change(table: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            table = table[int(key)] if isinstance(table, list) else table[key]
        if isinstance(table, list):
            table[int(last)] = value
        elif value is _DELETE:
            del table[last]
        else:
            table[last] = value

    return change


_DELETE = object()

INVALID = {
    "missing name": (_set("name", _DELETE), ["name is required"]),
    "empty name": (_set("name", ""), ["name must be", "''"]),
    "missing tasks": (_set("tasks", _DELETE), ["tasks is required"]),
    "empty tasks": (_set("tasks", []), ["tasks must", "[]"]),
    "tasks as string": (_set("tasks", "CartPole-v1"), ["tasks must be a list", "'CartPole-v1'"]),
    "task not a string": (_set("tasks", ["CartPole-v1", 3]), ["tasks[1]", "3"]),
    "duplicate task": (_set("tasks", ["A-v0", "A-v0"]), ["tasks[1] = 'A-v0'", "tasks[0]"]),
    "budget 0": (_set("budget", 0), ["budget must be an integer > 0", "got 0"]),
    "negative budget": (_set("budget", -10), ["budget", "-10"]),
    "float budget": (_set("budget", 2.5e5), ["budget", "250000.0"]),
    "bool budget": (_set("budget", True), ["budget", "True"]),
    "empty seeds": (_set("seeds", []), ["seeds must", "[]"]),
    "string seed": (_set("seeds", [1, "2"]), ["seeds[1]", "'2'", "integer"]),
    "float seed": (_set("seeds", [1.5]), ["seeds[0]", "1.5"]),
    "negative seed": (_set("seeds", [-1]), ["seeds[0]", "-1", ">= 0"]),
    "duplicate seed": (_set("seeds", [1, 2, 1]), ["seeds[2] = 1", "seeds[0]", "distinct"]),
    "unknown top-level key": (
        _set("budjet", 5),
        ["unknown key(s) ['budjet']", "allowed", "budget"],
    ),
    "both model and models": (_set("models", [{"name": "mlp"}]), ["[model]", "[[models]]"]),
    "no model": (_set("model", _DELETE), ["[model]", "[[models]]"]),
    "model as array": (_set("model", [{"name": "mlp"}]), ["model must be a table"]),
    "model without name": (_set("model.name", _DELETE), ["model.name is required"]),
    "bad model name": (_set("model.name", "syn aptogen"), ["model.name", "'syn aptogen'"]),
    "no optimizers": (_set("optimizers", []), ["optimizers must hold at least one"]),
    "optimizers as table": (_set("optimizers", {"name": "dqn"}), ["optimizers must be an array"]),
    "optimizer without name": (
        _set("optimizers.1.name", _DELETE),
        ["optimizers[1].name is required"],
    ),
    "empty optimizer name": (_set("optimizers.1.name", ""), ["optimizers[1].name", "''"]),
    "slash in label": (_set("optimizers.0.label", "a/b"), ["optimizers[0].label", "'a/b'"]),
    "duplicate labels": (
        _set("optimizers.1.label", "dqn"),
        ["optimizers[1].label = 'dqn'", "optimizers[0].label", "distinct"],
    ),
    "unknown evaluation key": (
        _set("evaluation.eval_evry", 5),
        ["evaluation: unknown key(s) ['eval_evry']", "eval_every"],
    ),
    "eval_every 0": (_set("evaluation.eval_every", 0), ["evaluation.eval_every", "got 0"]),
    "final_episodes -1": (
        _set("evaluation.final_episodes", -1),
        ["evaluation.final_episodes", "-1"],
    ),
    "evaluation not a table": (_set("evaluation", 3), ["evaluation must be a table"]),
    "negative agents": (_set("evaluation.agents", -1), ["evaluation.agents", "-1", ">= 0"]),
    "float agents": (_set("evaluation.agents", 2.0), ["evaluation.agents", "2.0"]),
    "agent_episodes 0": (
        _set("evaluation.agent_episodes", 0),
        ["evaluation.agent_episodes", "> 0", "got 0"],
    ),
    "bool free_assembly": (
        _set("evaluation.free_assembly", True),
        ["evaluation.free_assembly", "True"],
    ),
    "unknown execution key": (
        _set("execution.worker", 2),
        ["execution: unknown key(s) ['worker']", "workers"],
    ),
    "bad parallel": (
        _set("execution.parallel", "generations"),
        ["execution.parallel", "'generations'", "['trials', 'population']"],
    ),
    "negative workers": (_set("execution.workers", -1), ["execution.workers", "-1", ">= 0"]),
    "string workers": (_set("execution.workers", "2"), ["execution.workers", "'2'"]),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_study_names_the_field(case: str):
    change, expected = INVALID[case]
    table = base()
    change(table)

    with pytest.raises(ValueError) as info:
        study_from_dict(table)

    for text in expected:
        assert text in str(info.value)


def test_duplicate_model_labels_are_rejected():
    table = base()
    del table["model"]
    table["models"] = [{"name": "synaptogen", "genes": 8}, {"name": "synaptogen", "genes": 32}]

    with pytest.raises(ValueError, match=r"models\[1\]\.label = 'synaptogen'"):
        study_from_dict(table)

    table["models"][1]["label"] = "synaptogen-g32"
    assert study_from_dict(table).models[1].label == "synaptogen-g32"


def test_colliding_trial_labels_are_rejected():
    table = base()
    del table["model"]
    table["models"] = [{"name": "mlp", "label": "a-b"}, {"name": "mlp", "label": "a"}]
    table["optimizers"] = [{"name": "dqn", "label": "c"}, {"name": "snes", "label": "b-c"}]

    with pytest.raises(ValueError, match="trial label 'a-b-c'"):
        study_from_dict(table)


def test_direct_construction_validates():
    with pytest.raises(ValueError, match="budget"):
        StudyConfig("s", ["CartPole-v1"], [1], 0, [ModelConfig("mlp")], [OptimizerConfig("dqn")])
    with pytest.raises(ValueError, match=r"optimizers\[0\] must be of type OptimizerConfig"):
        StudyConfig("s", ["CartPole-v1"], [1], 10, [ModelConfig("mlp")], ["dqn"])


def test_not_toml_is_a_value_error(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\nbudget = 200 000\n')

    with pytest.raises(ValueError, match=r"study file .*bad\.toml is not valid TOML: .*line"):
        load_study(path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope.toml does not exist"):
        load_study(tmp_path / "nope.toml")


def test_load_study_prefixes_the_file(tmp_path: Path):
    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace("budget = 200_000", "budget = 0"))

    with pytest.raises(ValueError, match=r"^study file .*s\.toml: budget must be .* got 0$"):
        load_study(path)


# Trials and overrides


def test_trials_are_the_cross_product():
    table = base()
    del table["model"]
    table["tasks"] = ["CartPole-v1", "Acrobot-v1"]
    table["models"] = [{"name": "synaptogen", "genes": 8}, {"name": "mlp"}]
    table["optimizers"].append({"name": "pgpe"})
    config = study_from_dict(table)

    trials = config.trials()

    assert len(trials) == 2 * 2 * 3 * 2
    assert len({t.name for t in trials}) == len(trials)
    assert trials[0].name == "CartPole-v1/synaptogen-dqn/seed1"
    assert trials[-1].name == "Acrobot-v1/mlp-pgpe/seed2"
    assert sorted({t.label for t in trials}) == sorted(
        f"{m}-{o}" for m in ["synaptogen", "mlp"] for o in ["dqn", "snes64", "pgpe"]
    )
    snes = next(t for t in trials if t.label == "synaptogen-snes64")
    assert (snes.model, snes.optimizer) == ("synaptogen", "snes")
    assert snes.model_settings == {"genes": 8}
    assert snes.optimizer_settings == {"popsize": 64}
    assert (snes.budget, snes.eval_every, snes.eval_episodes, snes.final_episodes) == (
        200_000,
        5_000,
        20,
        100,
    )


def test_single_model_labels_are_optimizer_labels():
    config = study_from_dict(base())

    trials = config.trials()

    assert [t.name for t in trials] == [
        "CartPole-v1/dqn/seed1",
        "CartPole-v1/dqn/seed2",
        "CartPole-v1/snes64/seed1",
        "CartPole-v1/snes64/seed2",
    ]


def test_trial_settings_are_copies():
    config = study_from_dict(base())

    trial = config.trials()[0]
    trial.optimizer_settings["learning_rate"] = 1.0
    trial.model_settings["hidden"].append(64)

    assert config.optimizers[0].settings == {"learning_rate": 3e-4}
    assert config.models[0].settings["hidden"] == [128]


def test_overrides_return_a_modified_copy():
    config = study_from_dict(base())

    changed = config.with_overrides(budget=1_000, seeds=[7, 8, 9], workers=0)

    assert (changed.budget, changed.seeds, changed.execution.workers) == (1_000, (7, 8, 9), 0)
    assert changed.execution.parallel == "population"
    assert (config.budget, config.seeds, config.execution.workers) == (200_000, (1, 2), 2)
    assert config.with_overrides() == config
    assert len(changed.trials()) == 2 * 3


def test_overrides_are_validated():
    config = study_from_dict(base())

    with pytest.raises(ValueError, match="budget must be an integer > 0, got 0"):
        config.with_overrides(budget=0)
    with pytest.raises(ValueError, match=r"seeds\[1\] = 1 repeats seeds\[0\]"):
        config.with_overrides(seeds=[1, 1])
    with pytest.raises(ValueError, match="workers must be an integer >= 0"):
        config.with_overrides(workers=-2)


def test_eval_every_beyond_budget_warns(caplog: pytest.LogCaptureFixture):
    config = study_from_dict(base())

    warn_suspicious(config)
    assert caplog.records == []
    warn_suspicious(config.with_overrides(budget=1_000))
    assert "evaluation.eval_every = 5000 exceeds budget = 1000" in caplog.text


# Names known to the registries (needs synevo.evaluation, synevo.models, synevo.optimizers)


def test_quickstart_file_loads():
    names_modules_ready()

    config = load_study(REPO / "studies" / "quickstart.toml")

    assert config.name == "quickstart"
    assert len(config.trials()) == 6


NAME_ERRORS = {
    "unknown task": ("tasks", ["CartPol-v1"], ["tasks[0] = 'CartPol-v1'"]),
    "renamed task": ("tasks", ["LunarLander-v2"], ["tasks[0] = 'LunarLander-v2'", "v3"]),
    "continuous task": (
        "tasks",
        ["CartPole-v1", "MountainCarContinuous-v0"],
        ["tasks[1] = 'MountainCarContinuous-v0'", "discrete"],
    ),
    "unknown model": ("model", {"name": "synaptogenn"}, ["model (synaptogenn)", "synaptogen"]),
    "unknown model setting": (
        "model",
        {"name": "synaptogen", "genez": 16},
        ["model (synaptogen)", "genez"],
    ),
    "unknown optimizer": (
        "optimizers",
        [{"name": "dqn"}, {"name": "snez"}],
        ["optimizers[1] (snez)", "'snez'", "snes"],
    ),
    "unknown optimizer setting": (
        "optimizers",
        [{"name": "snes", "popsiz": 8}],
        ["optimizers[0] (snes)", "popsiz"],
    ),
}


@pytest.mark.parametrize("case", list(NAME_ERRORS))
def test_validate_names(case: str):
    names_modules_ready()
    key, value, expected = NAME_ERRORS[case]
    table = base()
    table[key] = value
    config = study_from_dict(table)

    with pytest.raises(ValueError) as info:
        validate_names(config)

    for text in expected:
        assert text in str(info.value)


def test_validate_names_accepts_the_valid_study():
    names_modules_ready()

    validate_names(study_from_dict(base()))


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("mlp", "agents", ["evaluation.agents = 5", "model (mlp)", "deterministic", "synaptogen"]),
        ("gcm", "agents", ["evaluation.agents = 5", "model (gcm)", "synaptogen"]),
        ("gcm", "free_assembly", ["evaluation.free_assembly = 5", "model (gcm)", "synaptogen"]),
    ],
)
def test_agents_need_a_model_that_samples(name: str, field: str, expected: list[str]):
    names_modules_ready()
    table = base()
    table["model"] = {"name": name, "hidden": [8]}
    table["evaluation"][field] = 5
    config = study_from_dict(table)

    with pytest.raises(ValueError) as info:
        validate_names(config)

    for text in expected:
        assert text in str(info.value)


def test_agent_settings_reach_every_trial():
    table = base()
    table["evaluation"] |= {"agents": 100, "agent_episodes": 10, "free_assembly": 50}
    config = study_from_dict(table)
    validate_names(config)

    spec = config.trials()[0]

    assert (spec.agents, spec.agent_episodes, spec.free_assembly) == (100, 10, 50)
    assert spec.params() | {"agents": 100, "free_assembly": 50} == spec.params()
    assert study_from_dict(base()).trials()[0].agents == 0


# Command-line overrides (--set KEY=VALUE)


@pytest.mark.parametrize(
    ("text", "value"),
    [("2", 2), ("2e4", 20_000), ("5E+5", 500_000), ("3e-4", 3e-4), ("1.0", 1.0)]
    + [("[1, 2]", [1, 2]), ('"x"', "x"), ("CartPole-v1", "CartPole-v1"), ("true", True)]
    + [("500_000", 500_000), ("a = 1", "a = 1")],
)
def test_override_values_are_toml(text: str, value: Any):
    parsed = parse_value(text)

    assert parsed == value and type(parsed) is type(value)


def test_overrides_reach_every_kind_of_key():
    sets = [
        "budget=2e4",
        "seeds=[3]",
        "evaluation.agents=2",
        "execution.workers=1",
        "model.genes=8",
        "optimizers.snes64.popsize=16",
        "optimizers.0.learning_rate=1e-3",
    ]

    config = study_from_dict(apply_overrides(base(), [parse_assignment(s) for s in sets]))

    assert (config.budget, config.seeds, config.evaluation.agents) == (20_000, (3,), 2)
    assert config.execution.workers == 1
    assert config.models[0].settings["genes"] == 8
    assert config.optimizers[1].settings["popsize"] == 16
    assert config.optimizers[0].settings["learning_rate"] == 1e-3
    assert study_from_dict(base()).optimizers[1].settings["popsize"] == 64


def test_overrides_pick_models_by_label_or_index():
    table = base()
    del table["model"]
    table["models"] = [{"name": "synaptogen"}, {"name": "synaptogen", "label": "bio"}]

    changed = apply_overrides(table, [("models.bio.genes", 39), ("models.0.genes", 8)])

    assert [m.get("genes") for m in changed["models"]] == [8, 39]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("budjet=5", ["override 'budjet'", "allowed", "evaluation.<key>"]),
        ("evaluation.agent=2", ["override 'evaluation.agent'", "allowed", "'agents'"]),
        ("execution=1", ["override 'execution'", "allowed"]),
        ("optimizers.cmaes.popsize=4", ["'cmaes'", "labels: ['dqn', 'snes64']", "index 0..1"]),
        ("optimizers.popsize=4", ["override 'optimizers.popsize'", "allowed"]),
        ("models.0.genes=4", ["no [[models]]"]),
    ],
)
def test_bad_override_keys_name_the_key_and_the_allowed_ones(text: str, expected: list[str]):
    with pytest.raises(ValueError) as info:
        apply_overrides(base(), [parse_assignment(text)])

    for part in expected:
        assert part in str(info.value)


def test_an_assignment_needs_a_key_and_an_equals_sign():
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("budget")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("=5")
    assert len(OVERRIDE_KEYS) == 9


def test_overrides_are_applied_before_validation(tmp_path: Path):
    names_modules_ready()
    path = tmp_path / "study.toml"
    path.write_text(STUDY)

    with pytest.raises(ValueError, match=r"study file .*budget must be an integer > 0, got 0"):
        load_study(path, [("budget", 0)])
    with pytest.raises(ValueError, match="model.*genez"):
        load_study(path, [("model.genez", 4)])
    assert load_study(path, [("tasks", ["Acrobot-v1"])]).tasks == ("Acrobot-v1",)


@pytest.mark.parametrize("name", ["paper", "bottleneck"])
def test_shipped_studies_load(name: str):
    names_modules_ready()

    config = load_study(REPO / "studies" / f"{name}.toml")

    assert set(config.tasks) == {"CartPole-v1", "MountainCar-v0", "LunarLander-v3", "Acrobot-v1"}
    assert config.budget == 500_000 if name == "paper" else config.budget > 0
    if name == "paper":
        assert (config.evaluation.agents, config.evaluation.free_assembly) == (100, 100)
        assert config.evaluation.agent_episodes == 10
    else:
        assert len(config.seeds) >= 5 and config.evaluation.agents == 0
        assert {m.name for m in config.models} == {"synaptogen", "gcm", "gnetwork", "mlp"}
