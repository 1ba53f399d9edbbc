"""The study runner in-process: a failing trial is recorded as FAILED and loses no other work."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from synevo.study import runner
from synevo.study.config import study_from_dict, validate_names

STUDY = {
    "name": "faulty",
    "tasks": ["CartPole-v1"],
    "seeds": [1, 2],
    "budget": 600,
    "model": {"name": "synaptogen", "genes": 4, "hidden": [8]},
    "evaluation": {"eval_every": 300, "eval_episodes": 2, "final_episodes": 3},
    "execution": {"workers": 0},
    "optimizers": [{"name": "snes", "popsize": 4}],
}


def test_a_failing_trial_is_marked_failed_and_the_others_are_kept(tmp_path, monkeypatch):
    real = runner.run_trial

    def fails_on_seed_2(spec, report=None, workers=0):
        if spec.seed == 2:
            report({"env_steps": 0.0, "eval/return_mean": 9.0})
            raise ValueError("genomes contain NaN or inf values (members [0])")
        return real(spec, report, workers)

    monkeypatch.setattr(runner, "run_trial", fails_on_seed_2)
    config = study_from_dict(STUDY)
    validate_names(config)
    uri = f"sqlite:///{tmp_path}/mlflow.db"

    result = runner.run_study(config, tracking_uri=uri, progress=False)

    assert [o.spec.seed for o in result.outcomes] == [1]
    assert list(result.failures) == ["CartPole-v1/snes/seed2"]
    assert "NaN" in result.failures["CartPole-v1/snes/seed2"]
    client = MlflowClient(uri)
    runs = {r.info.run_name: r for r in client.search_runs([result.experiment_id])}
    assert runs["CartPole-v1/snes/seed1"].info.status == "FINISHED"
    assert runs["CartPole-v1/snes/seed2"].info.status == "FAILED"
    assert "NaN" in runs["CartPole-v1/snes/seed2"].data.tags["synevo.error"]
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"


def test_workers_must_not_be_negative(tmp_path):
    config = study_from_dict(STUDY)
    with pytest.raises(ValueError, match="workers must be >= 0"):
        runner.run_study(config, tracking_uri=f"sqlite:///{tmp_path}/m.db", workers=-1)


def test_agents_reach_mlflow_and_come_back_on_resume(tmp_path):
    study = {
        **STUDY,
        "name": "agents",
        "seeds": [1],
        "model": {**STUDY["model"], "sampler": "fast"},
        "evaluation": {**STUDY["evaluation"], "agents": 3, "agent_episodes": 2},
    }
    study["evaluation"]["free_assembly"] = 2
    config = study_from_dict(study)
    validate_names(config)
    uri = f"sqlite:///{tmp_path}/mlflow.db"

    first = runner.run_study(config, tracking_uri=uri, progress=False)
    again = runner.run_study(config, tracking_uri=uri, progress=False, resume=True)

    outcome = first.outcomes[0]
    assert {k: len(v) for k, v in outcome.agent_scores.items()} == {
        "sampled": 3,
        "free_assembly": 2,
    }
    assert again.skipped == ["CartPole-v1/snes/seed1"]
    assert again.outcomes[0].agent_scores == outcome.agent_scores

    client = MlflowClient(uri)
    run = client.search_runs(
        [first.experiment_id], "attributes.run_name = 'CartPole-v1/snes/seed1'"
    )
    metrics, params = run[0].data.metrics, run[0].data.params
    assert metrics["agents/sampled_count"] == 3
    assert metrics["agents/free_assembly_mean"] == pytest.approx(
        sum(outcome.agent_scores["free_assembly"]) / 2
    )
    assert 0 <= metrics["agents/sampled_solved_gym"] <= 1
    assert params["agents"] == "3" and params["free_assembly"] == "2"
    path = client.download_artifacts(run[0].info.run_id, "agents.csv", str(tmp_path))
    lines = open(path).read().splitlines()
    assert lines[0] == "kind,agent,score"
    assert lines[1].startswith("sampled,0,") and lines[4].startswith("free_assembly,0,")
    assert len(lines) == 1 + 3 + 2
    agent_steps = 2 * (3 + 2) * 8  # CartPole episodes last at least 8 steps
    assert outcome.eval_env_steps >= 3 * 8 + agent_steps
