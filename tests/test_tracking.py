"""StudyTracker against real MLflow stores: a SQLite file under tmp_path and an HTTP server."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402

from synevo.tracking import StudyTracker, default_tracking_uri  # noqa: E402

TRIAL_TAGS = {
    "synevo.family": "evolution",
    "synevo.optimizer": "snes",
    "synevo.model": "synaptogen",
    "synevo.task": "CartPole-v1",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, Path]:
    """One SQLite store per module (creating its tables takes seconds) and an artifact root."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root}/mlflow.db", root / "artifacts"


@pytest.fixture
def tracker(store, request) -> StudyTracker:
    """A tracker on a fresh experiment named after the test."""
    uri, artifacts = store
    name = request.node.name
    return StudyTracker(uri, name, artifact_location=(artifacts / name).as_uri())


def trial_tags(seed: int) -> dict[str, str]:
    return {**TRIAL_TAGS, "synevo.seed": str(seed)}


def runs_by_name(tracker: StudyTracker) -> dict[str, mlflow.entities.Run]:
    runs = MlflowClient(tracker.tracking_uri).search_runs([tracker.experiment_id])
    return {run.info.run_name: run for run in runs}


def test_default_tracking_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.org:5000")
    assert default_tracking_uri() == "http://example.org:5000"

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert default_tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"


def test_study_round_trip(tracker, tmp_path):
    import matplotlib.figure

    long_value = "x" * 7000
    with tracker:
        study_id = tracker.start_study({"budget": 1000}, {"synevo.study": "demo"})
        a = tracker.start_trial("CartPole-v1/snes/seed0", {"seed": 0, "long": long_value}, {})
        b = tracker.start_trial("CartPole-v1/snes/seed1", {"seed": 1, "hidden": [128]}, {})
        tracker.set_tags(a, trial_tags(0))
        tracker.set_tags(b, trial_tags(1))

        tracker.log_history(
            a,
            [
                {"env_steps": 100, "rollout/return_mean": 10.0},
                {"env_steps": 250.0, "rollout/return_mean": 20.0, "eval/return_mean": 30.0},
                {"env_steps": 400, "rollout/return_mean": math.nan, "eval/return_mean": 50.0},
            ],
        )
        tracker.log_metrics(a, {"final/return_mean": 42.0, "final/bad": math.inf}, step=400)

        note = tmp_path / "genome.txt"
        note.write_text("0.1 0.2\n")
        tracker.log_artifact(a, note, "genome")
        tracker.log_text(a, "| a |\n", "summary.md")
        fig = matplotlib.figure.Figure()
        fig.add_subplot().plot([0, 1], [1, 0])
        tracker.log_figure(a, fig, "curve.png")

        tracker.end_trial(a)
        tracker.end_trial(b, "FAILED")
        tracker.end_study()

    client = MlflowClient(tracker.tracking_uri)
    runs = runs_by_name(tracker)
    parent = client.get_run(study_id)
    assert parent.info.run_name.startswith("demo-")
    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"budget": "1000"}

    run_a = runs["CartPole-v1/snes/seed0"]
    assert run_a.info.run_id == a
    assert run_a.info.status == "FINISHED"
    assert runs["CartPole-v1/snes/seed1"].info.status == "FAILED"
    assert runs["CartPole-v1/snes/seed1"].data.params["hidden"] == "[128]"
    assert len(run_a.data.params["long"]) == 6000
    assert run_a.data.tags["mlflow.parentRunId"] == study_id
    assert run_a.data.tags["synevo.study"] == "demo"
    assert run_a.data.tags["synevo.trial"] == "CartPole-v1/snes/seed0"
    assert run_a.data.tags["synevo.optimizer"] == "snes"

    rollout = client.get_metric_history(a, "rollout/return_mean")
    assert [(m.step, m.value) for m in rollout] == [(100, 10.0), (250, 20.0)]
    evals = client.get_metric_history(a, "eval/return_mean")
    assert [(m.step, m.value) for m in evals] == [(250, 30.0), (400, 50.0)]
    assert "env_steps" not in run_a.data.metrics
    assert run_a.data.metrics["final/return_mean"] == 42.0
    assert "final/bad" not in run_a.data.metrics

    listed = {f.path for f in client.list_artifacts(a)}
    assert listed == {"genome", "summary.md", "curve.png"}
    assert [f.path for f in client.list_artifacts(a, "genome")] == ["genome/genome.txt"]


def test_history_over_the_batch_limit(tracker):
    rows = [
        {"env_steps": step, **{f"m/{k}": float(k + step) for k in range(400)}}
        for step in (10, 20, 30)
    ]
    with tracker:
        tracker.start_study({}, {})
        run_id = tracker.start_trial("t", {f"p{k}": k for k in range(250)}, {})
        tracker.log_history(run_id, rows)

    client = MlflowClient(tracker.tracking_uri)
    run = client.get_run(run_id)
    assert len(run.data.params) == 250
    assert len(run.data.metrics) == 400
    history = client.get_metric_history(run_id, "m/399")
    assert sorted((m.step, m.value) for m in history) == [(10, 409.0), (20, 419.0), (30, 429.0)]


def test_exception_leaves_no_run_running(tracker):
    with pytest.raises(RuntimeError, match="trial crashed"):
        with tracker:
            tracker.start_study({}, {})
            done = tracker.start_trial("done", {}, {})
            tracker.start_trial("open", {}, {})
            tracker.end_trial(done)
            raise RuntimeError("trial crashed")

    statuses = {name: run.info.status for name, run in runs_by_name(tracker).items()}
    assert statuses.pop("done") == "FINISHED"
    assert sorted(statuses.values()) == ["FAILED", "FAILED"]


def test_keyboard_interrupt_marks_runs_killed(tracker):
    with pytest.raises(KeyboardInterrupt):
        with tracker:
            tracker.start_study({}, {})
            tracker.start_trial("open", {}, {})
            raise KeyboardInterrupt

    statuses = [run.info.status for run in runs_by_name(tracker).values()]
    assert statuses == ["KILLED", "KILLED"]


def test_normal_exit_closes_forgotten_runs(tracker):
    with tracker:
        study_id = tracker.start_study({}, {})
        tracker.start_trial("forgotten", {}, {})

    runs = runs_by_name(tracker)
    assert runs["forgotten"].info.status == "KILLED"
    assert MlflowClient(tracker.tracking_uri).get_run(study_id).info.status == "FINISHED"


def test_resume_finds_only_finished_trials(store, tracker):
    with pytest.raises(RuntimeError, match="interrupted"):
        with tracker:
            tracker.start_study({}, {"synevo.study": "s"})
            for name, status in [("a", "FINISHED"), ("b", "FAILED"), ("c", "KILLED")]:
                tracker.end_trial(tracker.start_trial(name, {}, {}), status)
            tracker.start_trial("d", {}, {})
            raise RuntimeError("interrupted")
    finished_a = runs_by_name(tracker)["a"].info.run_id

    # Another study's trials in the same experiment do not count.
    uri, _ = store
    other = StudyTracker(uri, tracker.experiment)
    with other:
        other.start_study({}, {"synevo.study": "other"})
        other.end_trial(other.start_trial("e", {}, {}))

    again = StudyTracker(uri, tracker.experiment)
    assert again.experiment_id == tracker.experiment_id
    assert again.find_finished_trials("s") == {"a": finished_a}
    assert set(again.find_finished_trials("other")) == {"e"}


def test_misuse_is_refused(tracker):
    with pytest.raises(RuntimeError, match="start_study"):
        tracker.start_trial("t", {}, {})
    with tracker:
        run_id = tracker.start_study({}, {})
        with pytest.raises(ValueError, match="status"):
            tracker.end_trial(run_id, "DONE")
        with pytest.raises(RuntimeError, match="already started"):
            tracker.start_study({}, {})
    with pytest.raises(ValueError, match="experiment"):
        StudyTracker(tracker.tracking_uri, "")


def test_round_trip_over_http(mlflow_server, tmp_path):
    tracker = StudyTracker(mlflow_server, "http-study")
    with tracker:
        tracker.start_study({"budget": 500}, {})
        run_id = tracker.start_trial("CartPole-v1/snes/seed0", {"seed": 0}, trial_tags(0))
        tracker.log_history(run_id, [{"env_steps": 50, "eval/return_mean": 9.5}])
        tracker.log_text(run_id, "hello", "note.txt")
        tracker.end_trial(run_id)

    client = MlflowClient(mlflow_server)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"seed": "0"}
    assert run.data.tags["synevo.seed"] == "0"
    history = client.get_metric_history(run_id, "eval/return_mean")
    assert [(m.step, m.value) for m in history] == [(50, 9.5)]
    assert [f.path for f in client.list_artifacts(run_id)] == ["note.txt"]
    assert tracker.find_finished_trials() == {"CartPole-v1/snes/seed0": run_id}
