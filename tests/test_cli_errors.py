"""The command line turns every bad study into one line on stderr and exit code 2."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

STUDY = """
name = "cli-test"
tasks = ["CartPole-v1"]
seeds = [1, 2]
budget = 1_000

[evaluation]
eval_every = 500

[model]
name = "mlp"
hidden = [8]

[[optimizers]]
name = "snes"
popsize = 8
"""


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


def synevo(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `python -m synevo ARGS` in `cwd` with the repository on the path."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "synevo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_error(cwd: Path, result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("synevo: error:")
    for text in expected:
        assert text in lines[0]
    assert not (cwd / "mlflow.db").exists()
    assert not (cwd / "mlruns").exists()


def write_study(cwd: Path, text: str) -> str:
    (cwd / "study.toml").write_text(text)
    return "study.toml"


def test_malformed_toml(tmp_path: Path):
    study = write_study(tmp_path, STUDY.replace("budget = 1_000", "budget = 1 000"))

    result = synevo(tmp_path, "run", study)

    assert_one_line_error(tmp_path, result, "study.toml is not valid TOML", "line 5")


def test_budget_zero(tmp_path: Path):
    study = write_study(tmp_path, STUDY.replace("budget = 1_000", "budget = 0"))

    result = synevo(tmp_path, "run", study)

    assert_one_line_error(tmp_path, result, "budget must be an integer > 0, got 0")


def test_missing_file(tmp_path: Path):
    result = synevo(tmp_path, "run", "nowhere.toml")

    assert_one_line_error(tmp_path, result, "study file nowhere.toml does not exist")


def test_ui_without_a_store(tmp_path: Path):
    result = synevo(tmp_path, "ui")

    assert_one_line_error(tmp_path, result, "no MLflow store", "mlflow.db")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('"CartPole-v1"', '"CartPol-v1"', ["tasks[0] = 'CartPol-v1'", "CartPole-v1"]),
        (
            '"CartPole-v1"',
            '"MountainCarContinuous-v0"',
            ["tasks[0] = 'MountainCarContinuous-v0'", "discrete"],
        ),
        ('name = "snes"', 'name = "snez"', ["optimizers[0] (snez)", "'snez'"]),
    ],
    ids=["unknown task", "continuous task", "unknown optimizer"],
)
def test_unknown_names(tmp_path: Path, old: str, new: str, expected: list[str]):
    names_modules_ready()
    study = write_study(tmp_path, STUDY.replace(old, new))

    result = synevo(tmp_path, "run", study)

    assert_one_line_error(tmp_path, result, *expected)


def test_budget_override_zero(tmp_path: Path):
    names_modules_ready()
    study = write_study(tmp_path, STUDY)

    result = synevo(tmp_path, "run", study, "--budget", "0")

    assert_one_line_error(tmp_path, result, "budget must be an integer > 0, got 0")


def test_check_lists_the_trials(tmp_path: Path):
    names_modules_ready()
    study = write_study(tmp_path, STUDY)

    result = synevo(tmp_path, "check", study, "--quiet")

    assert result.returncode == 0, result.stderr
    assert "2 trials of 1,000 env steps each" in result.stdout
    assert "CartPole-v1/snes/seed1" in result.stdout
    assert "CartPole-v1/snes/seed2" in result.stdout
    assert not (tmp_path / "mlflow.db").exists()


def test_set_with_an_unknown_key(tmp_path: Path):
    names_modules_ready()
    study = write_study(tmp_path, STUDY)

    result = synevo(tmp_path, "run", study, "--set", "evaluation.agent=2")

    assert_one_line_error(tmp_path, result, "override 'evaluation.agent'", "allowed", "'agents'")


def test_set_agents_on_a_model_that_cannot_sample(tmp_path: Path):
    names_modules_ready()
    study = write_study(tmp_path, STUDY)

    result = synevo(tmp_path, "check", study, "--set", "evaluation.agents=2")

    assert_one_line_error(tmp_path, result, "evaluation.agents = 2", "model (mlp)", "synaptogen")


def test_check_applies_set_and_tasks(tmp_path: Path):
    names_modules_ready()
    study = write_study(tmp_path, STUDY)

    result = synevo(
        tmp_path,
        "check",
        study,
        "--quiet",
        "--set",
        "budget=2e3",
        "--set",
        "optimizers.snes.popsize=16",
        "--tasks",
        "Acrobot-v1,CartPole-v1",
        "--seeds",
        "5",
    )

    assert result.returncode == 0, result.stderr
    assert "2 trials of 2,000 env steps each" in result.stdout
    assert "Acrobot-v1/snes/seed5" in result.stdout
    assert "CartPole-v1/snes/seed5" in result.stdout
