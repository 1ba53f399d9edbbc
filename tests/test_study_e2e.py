"""A micro study end to end through the command line, read back through the MLflow client.

The same study runs three ways: trials as tasks on a Ray runtime the command line starts
itself, everything in-process (`--workers 0`), and evolution generations split over the test
session's Ray cluster (reached by address) with a tracking server over HTTP. The final
returns must be the same every way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[1]

MICRO = """
name = "micro"
tasks = ["CartPole-v1"]
seeds = [1, 2]
budget = 2000

[model]
name = "synaptogen"
genes = 4
hidden = [8]

[evaluation]
eval_every = 1000
eval_episodes = 3
final_episodes = 5

[execution]
parallel = "{parallel}"

{optimizers}
"""

DQN = '[[optimizers]]\nname = "dqn"\nlearning_starts = 100\ntrain_freq = 4\ngradient_steps = 1\n'
SNES = '[[optimizers]]\nname = "snes"\npopsize = 8\n'


def run_cli(folder: Path, study: str, *args: str, ray_address: str | None = None):
    """`synevo run` in a subprocess; returns the completed process."""
    path = folder / "study.toml"
    path.write_text(study)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    if ray_address:
        env["RAY_ADDRESS"] = ray_address
    command = [sys.executable, "-m", "synevo", "run", str(path), "--no-progress", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def finals(uri: str) -> dict[str, float]:
    """final/return_mean of every finished trial run of the micro study, by trial name."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("micro")
    runs = client.search_runs([experiment.experiment_id], "tags.`synevo.trial` != ''")
    return {r.data.tags["synevo.trial"]: r.data.metrics["final/return_mean"] for r in runs}


@pytest.fixture(scope="module")
def local_ray_study(tmp_path_factory):
    """DQN and SNES trials as tasks on a local Ray runtime started by synevo itself."""
    folder = tmp_path_factory.mktemp("local")
    study = MICRO.format(parallel="trials", optimizers=DQN + SNES)
    done = run_cli(folder, study, "--workers", "2")
    return folder, done


def test_the_cli_runs_a_study_and_prints_the_table(local_ray_study):
    folder, done = local_ray_study
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| dqn |" in done.stdout and "| snes |" in done.stdout
    assert "95% CI" in done.stdout
    assert "local runtime with 2 CPUs" in done.stderr
    assert (folder / "mlflow.db").exists()


def test_mlflow_holds_the_study(local_ray_study):
    folder, _ = local_ray_study
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    experiment = client.get_experiment_by_name("micro")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {f.path for f in client.list_artifacts(parent.info.run_id, "report")} == {
        f"report/{name}"
        for name in ("report.md", "results.csv", "scores.csv", "tests.csv")
        + ("learning_curves.png", "scores.png")
    }
    logged = client.download_artifacts(parent.info.run_id, "report/report.md", str(folder))
    assert "Mann-Whitney" in Path(logged).read_text()
    # the same report is written beside the study for reading without MLflow
    assert Path(logged).read_text() == (folder / "reports" / "micro" / "report.md").read_text()

    for run in children:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert run.info.status == "FINISHED"
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["synevo.family"] == (
            "gradient" if params["optimizer"] == "dqn" else "evolution"
        )
        assert params["task"] == "CartPole-v1" and params["budget"] == "2000"
        assert params["model.genes"] == "4" and params["model/genome_size"] == "196"
        assert metrics["final/episodes"] == 5
        if params["optimizer"] == "dqn":  # the paper's CartPole settings, resolved
            assert params["optimizer/batch_size"] == "64" and params["optimizer/gamma"] == "0.99"
        assert -1e9 < metrics["final/return_mean"] <= 500

        curve = client.get_metric_history(run.info.run_id, "eval/return_mean")
        steps = [m.step for m in curve]
        assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 2
        artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert artifacts == {"learning_curve.png", "genome.pt"}

        local = client.download_artifacts(run.info.run_id, "genome.pt", str(folder))
        genome = torch.load(local, weights_only=True)["genome"]
        assert genome.shape == (196,)


def test_in_process_run_gives_the_same_returns(local_ray_study, tmp_path):
    folder, _ = local_ray_study
    study = MICRO.format(parallel="trials", optimizers=DQN + SNES)
    done = run_cli(tmp_path, study, "--workers", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert finals(f"sqlite:///{tmp_path}/mlflow.db") == finals(f"sqlite:///{folder}/mlflow.db")


def test_cluster_by_address_and_tracking_server(
    local_ray_study, ray_address, mlflow_server, tmp_path
):
    """Generations split over the session's cluster, logged to a server: same SNES returns."""
    folder, _ = local_ray_study
    study = MICRO.format(parallel="population", optimizers=SNES)
    done = run_cli(
        tmp_path, study, "--workers", "2", "--tracking-uri", mlflow_server, ray_address=ray_address
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"cluster at {ray_address}" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "mlflow.db").exists()
    local = {k: v for k, v in finals(f"sqlite:///{folder}/mlflow.db").items() if "/snes/" in k}
    assert finals(mlflow_server) == local


def test_resume_reuses_finished_trials(local_ray_study):
    folder, first = local_ray_study
    study = MICRO.format(parallel="trials", optimizers=DQN + SNES)
    done = run_cli(folder, study, "--workers", "0", "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 trials finished (4 reused from earlier runs)" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| dqn | synaptogen")]
    before = [line for line in first.stdout.splitlines() if line.startswith("| dqn | synaptogen")]
    assert len(rows) == 1 and rows == before
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    experiment = client.get_experiment_by_name("micro")
    runs = client.search_runs([experiment.experiment_id])
    assert sum("mlflow.parentRunId" in r.data.tags for r in runs) == 4
    assert "finished trials, all reported by" not in done.stdout


def test_a_run_of_part_of_a_study_points_to_the_whole_report(local_ray_study):
    folder, _ = local_ray_study
    study = MICRO.format(parallel="trials", optimizers=DQN + SNES)
    done = run_cli(folder, study, "--workers", "0", "--resume", "--seeds", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 trials finished (2 reused from earlier runs)" in done.stdout
    hint = "this report covers this run's 2 trials; the experiment has 4 finished trials"
    assert hint in done.stdout
    assert "synevo report micro" in done.stdout
