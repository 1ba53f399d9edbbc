"""The report read back from a real SQLite MLflow store filled the way the runner fills it."""

from __future__ import annotations

import csv
import io
import time

import numpy as np
import pytest
from scipy import stats

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402

from synevo.study.experiment_report import load_records, write_report  # noqa: E402
from synevo.study.trial import TrialSpec  # noqa: E402
from synevo.tracking import StudyTracker  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPERIMENT = "paper-micro"
FINALS = {
    ("CartPole-v1", "snes"): [480.0, 500.0, 450.0],
    ("CartPole-v1", "dqn"): [200.0, 250.0, 300.0],
    ("CartPole-v1", "mlp"): [100.0, 120.0, 90.0],
    ("MountainCar-v0", "snes"): [-150.0, -120.0, -200.0],
    ("MountainCar-v0", "dqn"): [-105.0, -200.0, -100.0],
    ("MountainCar-v0", "mlp"): [-200.0, -200.0, -190.0],
}
OPTIMIZERS = {"snes": ("synaptogen", "snes", "evolution"), "dqn": ("synaptogen", "dqn", "gradient")}
OPTIMIZERS["mlp"] = ("mlp", "snes", "evolution")
SIZES = {"model/genome_size": 1200, "model/network_size": 4802, "model/compression": 4.0017}


def agents(task: str, label: str, seed: int, final: float) -> dict[str, list[float]]:
    """Synthetic agent scores: sampled around the final return, free assembly far below."""
    if label == "mlp":
        return {}
    rng = np.random.default_rng(100 * seed + len(task) + len(label))
    out = {"sampled": np.round(rng.normal(final, 25.0, size=10), 2).tolist()}
    if label == "snes":
        out["free_assembly"] = np.round(rng.normal(final - 150.0, 10.0, size=10), 2).tolist()
    return out


def log_trial(tracker: StudyTracker, task: str, label: str, seed: int, final: float) -> str:
    """One finished trial run with the runner's tags, params, metrics and artifacts."""
    model, optimizer, family = OPTIMIZERS[label]
    spec = TrialSpec(task, model, {"genes": 4}, optimizer, {}, label, seed, budget=3000)
    tags = {"synevo.task": task, "synevo.model": model, "synevo.optimizer": optimizer}
    tags |= {"synevo.label": label, "synevo.seed": str(seed)}
    run_id = tracker.start_trial(spec.name, spec.params(), tags)
    history = [
        {"env_steps": float(step), "eval/return_mean": final * step / 3000 + seed}
        for step in (0, 1000, 2000, 3000)
    ]
    tracker.log_history(run_id, history)
    tracker.set_tags(run_id, {"synevo.family": family})
    tracker.log_params(run_id, SIZES)
    summary = {"final/return_mean": final, "final/env_steps": 3000.0 + seed}
    summary |= {"final/eval_env_steps": 500.0, "final/wall_time_s": 2.0 + seed}
    tracker.log_metrics(run_id, summary, step=3000)
    scores = agents(task, label, seed, final)
    if scores:
        rows = [f"{kind},{i},{s}" for kind, values in scores.items() for i, s in enumerate(values)]
        tracker.log_text(run_id, "\n".join(["kind,agent,score", *rows]) + "\n", "agents.csv")
    tracker.end_trial(run_id, "FINISHED")
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """Two invocations of one study: the first ran one trial with an older result and had a
    failed trial; the second ran every trial. Plus an experiment without finished trials."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    location = (root / "artifacts").as_uri()

    with StudyTracker(uri, EXPERIMENT, artifact_location=location) as tracker:
        first = tracker.start_study({}, {"synevo.study": EXPERIMENT})
        log_trial(tracker, "CartPole-v1", "snes", 0, 10.0)  # superseded below
        failed = tracker.start_trial("CartPole-v1/dqn/seed9", {}, {"synevo.task": "CartPole-v1"})
        tracker.end_trial(failed, "FAILED")
    time.sleep(0.01)
    with StudyTracker(uri, EXPERIMENT) as tracker:
        second = tracker.start_study({}, {"synevo.study": EXPERIMENT})
        for (task, label), finals in FINALS.items():
            for seed, final in enumerate(finals):
                log_trial(tracker, task, label, seed, final)

    with StudyTracker(uri, "nothing-finished", artifact_location=location) as tracker:
        tracker.start_study({}, {"synevo.study": "nothing-finished"})
        failed = tracker.start_trial("CartPole-v1/snes/seed0", {}, {})
        tracker.end_trial(failed, "FAILED")
    return {"uri": uri, "first": first, "second": second, "root": root}


@pytest.fixture(scope="module")
def written(store, tmp_path_factory):
    return write_report(store["uri"], EXPERIMENT, out_dir=tmp_path_factory.mktemp("report"))


def rows_of(rows, task, **match):
    return [r for r in rows if r["task"] == task and all(r[k] == v for k, v in match.items())]


def test_records_are_the_latest_finished_runs(written):
    records = {r.name: r for r in written.records}

    assert len(records) == 18  # the failed run is left out
    snes0 = records["CartPole-v1/snes/seed0"]
    assert snes0.final_return == 480.0  # the second invocation's run, not the older 10.0
    assert (snes0.model, snes0.optimizer, snes0.family) == ("synaptogen", "snes", "evolution")
    assert snes0.curve == [(0.0, 0.0), (1000.0, 160.0), (2000.0, 320.0), (3000.0, 480.0)]
    assert snes0.agent_scores == agents("CartPole-v1", "snes", 0, 480.0)
    assert (snes0.genome_size, snes0.network_size, snes0.compression) == (1200, 4802, 4.0017)
    assert (snes0.gym_threshold, snes0.paper_threshold) == (475.0, 195.0)
    assert records["CartPole-v1/mlp/seed2"].agent_scores == {}
    assert records["MountainCar-v0/dqn/seed2"].env_steps == 3002.0
    assert [r.name for r in written.records[:3]] == [f"CartPole-v1/snes/seed{s}" for s in range(3)]


def test_load_records_alone(store):
    records = load_records(store["uri"], EXPERIMENT, trial_names={"CartPole-v1/mlp/seed1"})
    assert [(r.name, r.final_return) for r in records] == [("CartPole-v1/mlp/seed1", 120.0)]


def test_results_table_matches_scipy(written):
    (snes,) = rows_of(written.results, "CartPole-v1", label="snes")
    finals = np.array(FINALS["CartPole-v1", "snes"])

    assert snes["seeds"] == 3
    assert snes["final return mean"] == pytest.approx(finals.mean())
    assert snes["final return IQM"] == pytest.approx(stats.trim_mean(finals, 0.25))
    t_low, t_high = stats.t.interval(0.95, 2, loc=finals.mean(), scale=stats.sem(finals))
    assert (snes["t 95% CI low"], snes["t 95% CI high"]) == pytest.approx((t_low, t_high))
    boot = stats.bootstrap(
        (finals,), np.mean, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    assert snes["bootstrap 95% CI low"] == pytest.approx(boot.low)
    assert snes["bootstrap 95% CI high"] == pytest.approx(boot.high)

    sampled = np.concatenate([agents("CartPole-v1", "snes", s, f)["sampled"] for s, f in
                              enumerate(finals)])  # fmt: skip
    assert snes["solved over"] == "30 sampled agents"
    assert snes["solved (gym >= 475)"] == pytest.approx(np.mean(sampled >= 475))
    assert snes["solved (paper >= 195)"] == 1.0
    assert (snes["env steps mean"], snes["wall time s mean"]) == (3001.0, 3.0)
    assert (snes["genome size"], snes["compression"]) == (1200, 4.0017)

    (mlp,) = rows_of(written.results, "MountainCar-v0", label="mlp")
    assert mlp["solved over"] == "3 seeds"  # no agents: the seeds' final returns
    assert mlp["solved (gym >= -110)"] == 0.0 and mlp["solved (paper >= -200)"] == 1.0


def test_tests_match_mannwhitneyu_with_bonferroni(written):
    seeds = rows_of(written.tests, "CartPole-v1", level="seeds (final return)")
    assert [(r["a"], r["b"]) for r in seeds] == [("snes", "dqn"), ("snes", "mlp"), ("dqn", "mlp")]
    a, b = FINALS["CartPole-v1", "snes"], FINALS["CartPole-v1", "dqn"]
    expected = stats.mannwhitneyu(a, b)
    assert seeds[0]["p"] == pytest.approx(expected.pvalue)
    assert seeds[0]["p Bonferroni"] == pytest.approx(min(1.0, 3 * expected.pvalue))
    assert seeds[0]["P(a > b)"] == 1.0

    pooled = rows_of(written.tests, "CartPole-v1", level="agents (pooled over seeds)")
    groups = ["snes: sampled", "snes: free assembly", "dqn: sampled", "mlp: seeds"]
    assert len(pooled) == 6 and (pooled[0]["a"], pooled[0]["b"]) == tuple(groups[:2])
    free = [
        score
        for seed, final in enumerate(FINALS["CartPole-v1", "snes"])
        for score in agents("CartPole-v1", "snes", seed, final)["free_assembly"]
    ]
    (row,) = [r for r in pooled if (r["a"], r["b"]) == ("snes: free assembly", "mlp: seeds")]
    expected = stats.mannwhitneyu(free, FINALS["CartPole-v1", "mlp"])
    assert (row["n a"], row["n b"]) == (30, 3)
    assert row["p Bonferroni"] == pytest.approx(min(1.0, 6 * expected.pvalue))

    scores = {r["group"]: r for r in rows_of(written.scores, "CartPole-v1")}
    assert list(scores) == groups
    assert scores["snes: free assembly"]["score mean"] == pytest.approx(np.mean(free))
    assert scores["mlp: seeds"]["agents"] == 3


def test_files_and_markdown(written):
    assert sorted(written.paths) == sorted(
        ["report.md", "results.csv", "scores.csv", "tests.csv", "learning_curves.png", "scores.png"]
    )
    for name in ("learning_curves.png", "scores.png"):
        data = written.paths[name].read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 10_000

    markdown = written.paths["report.md"].read_text()
    assert markdown == written.markdown
    assert markdown.startswith(f"# Report of experiment `{EXPERIMENT}`")
    assert (
        "- trials: 18 finished" in markdown and "- tasks: CartPole-v1, MountainCar-v0" in markdown
    )
    assert "worst possible returns" in markdown
    assert "| snes | synaptogen | snes | evolution | 3 | 476.67 |" in markdown
    results = list(csv.DictReader(io.StringIO(written.paths["results.csv"].read_text())))
    assert len(results) == 6 and results[0]["label"] == "snes"


def test_artifacts_are_logged_to_the_latest_parent_run(store, written, tmp_path):
    client = MlflowClient(store["uri"])
    assert written.parent_run_id == store["second"]

    listed = {item.path for item in client.list_artifacts(store["second"], "report")}
    assert listed == {f"report/{name}" for name in written.paths}
    path = client.download_artifacts(store["second"], "report/report.md", str(tmp_path))
    assert open(path).read() == written.markdown
    png = client.download_artifacts(store["second"], "report/scores.png", str(tmp_path))
    assert open(png, "rb").read() == written.paths["scores.png"].read_bytes()


def test_trial_names_and_parent_run(store, tmp_path):
    names = [f"MountainCar-v0/{label}/seed{seed}" for label in ("snes", "dqn") for seed in (0, 1)]
    written = write_report(
        store["uri"], EXPERIMENT, trial_names=names + ["Acrobot-v1/snes/seed0"],
        parent_run_id=store["first"], out_dir=tmp_path,
    )  # fmt: skip

    assert sorted(r.name for r in written.records) == sorted(names)
    assert [r["label"] for r in written.results] == ["snes", "dqn"]
    assert {r["task"] for r in written.tests} == {"MountainCar-v0"}
    listed = MlflowClient(store["uri"]).list_artifacts(store["first"], "report")
    assert len(listed) == 6


def test_errors_name_what_is_wrong(store, tmp_path):
    with pytest.raises(ValueError, match=f"available experiments: .*{EXPERIMENT}"):
        write_report(store["uri"], "no-such-study", out_dir=tmp_path)
    with pytest.raises(ValueError, match="'nothing-finished' has no FINISHED trial run"):
        write_report(store["uri"], "nothing-finished", out_dir=tmp_path)
    with pytest.raises(ValueError, match="among the 1 requested"):
        write_report(store["uri"], EXPERIMENT, trial_names=["x/y/seed0"], out_dir=tmp_path)

    other = MlflowClient(store["uri"]).get_experiment_by_name("nothing-finished")
    foreign = MlflowClient(store["uri"]).search_runs([other.experiment_id])[0].info.run_id
    with pytest.raises(ValueError, match="parent_run_id"):
        write_report(store["uri"], EXPERIMENT, parent_run_id=foreign, out_dir=tmp_path)
