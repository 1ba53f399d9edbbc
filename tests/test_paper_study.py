"""studies/paper.toml at micro scale through the command line, its report read back from MLflow.

Two tasks, tiny budgets and two agents of each kind: every piece of the paper's protocol runs
(DQN and SNES on both models, sampled and free-assembly agents, the report), only small.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("CartPole-v1", "Acrobot-v1")
MICRO = (
    *("--budget", "1000", "--seeds", "1", "--tasks", ",".join(TASKS)),
    *("--set", "evaluation.agents=2", "--set", "evaluation.free_assembly=2"),
    *("--set", "evaluation.agent_episodes=2", "--set", "evaluation.eval_every=1000"),
    *("--set", "evaluation.eval_episodes=2", "--set", "evaluation.final_episodes=3"),
    *("--set", "optimizers.snes.popsize=4", "--set", "optimizers.snes.samples=1"),
)


def synevo(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    command = [sys.executable, "-m", "synevo", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=900)


def undated(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if "date" not in line.lower()]


@pytest.fixture(scope="module")
def paper_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paper")
    study = str(ROOT / "studies" / "paper.toml")
    done = synevo(folder, "run", study, *MICRO, "--workers", "0", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    return folder, client, client.get_experiment_by_name("paper")


def test_every_trial_scores_its_agents(paper_study):
    _, client, experiment = paper_study
    runs = client.search_runs([experiment.experiment_id], "tags.`synevo.trial` != ''")
    # 2 tasks x {synaptogen G=16, bio G=39} x {dqn, snes} x 1 seed
    assert len(runs) == 8 and all(run.info.status == "FINISHED" for run in runs)
    for run in runs:
        metrics = run.data.metrics
        assert metrics["agents/sampled_count"] == 2 and metrics["agents/free_assembly_count"] == 2
        assert 0.0 <= metrics["agents/sampled_solved_paper"] <= 1.0
    genes = {run.data.params["label"]: run.data.params["model.genes"] for run in runs}
    assert genes["synaptogen-dqn"] == "16" and genes["bio-snes"] == "39"


def test_the_report_is_logged_to_the_parent_run(paper_study, tmp_path):
    _, client, experiment = paper_study
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]

    def get(name: str) -> Path:
        return Path(client.download_artifacts(parent.info.run_id, f"report/{name}", str(tmp_path)))

    markdown = get("report.md").read_text()
    assert all(task in markdown for task in TASKS)
    assert "Mann-Whitney" in markdown and "Bonferroni" in markdown

    with get("scores.csv").open() as handle:
        scores = list(csv.DictReader(handle))
    # one row per task x label x kind of agent, each summarizing its 2 agents
    assert len(scores) == 2 * 4 * 2
    assert {row["kind"] for row in scores} == {"sampled", "free_assembly"}
    assert all(row["agents"] == "2" for row in scores)
    with get("tests.csv").open() as handle:
        levels = {row["level"] for row in csv.DictReader(handle)}
    assert levels == {"seeds (final return)", "agents (pooled over seeds)"}
    for figure in ("scores.png", "learning_curves.png"):
        assert get(figure).read_bytes().startswith(b"\x89PNG")


def test_synevo_report_rewrites_it_from_mlflow_alone(paper_study):
    folder, _, _ = paper_study
    done = synevo(folder, "report", "paper", "--out", "again")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "report of 8 trials" in done.stdout
    again = (folder / "again" / "report.md").read_text()
    first = (folder / "reports" / "paper" / "report.md").read_text()
    # same tables; only the date line may differ
    assert undated(again) == undated(first)


def test_report_of_an_unknown_experiment_names_the_known_ones(paper_study):
    folder, _, _ = paper_study
    done = synevo(folder, "report", "papr")
    assert done.returncode == 2
    assert "papr" in done.stderr and "paper" in done.stderr
