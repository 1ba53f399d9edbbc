"""Resuming a study: trials that already finished in MLflow are read back, not run again.

A finished trial is reused only if its recorded params equal the params the study would give
it now (same budget, seed, model and optimizer settings); otherwise it runs again.
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any

import torch

from synevo.study.agents import download_agent_scores
from synevo.study.trial import TrialOutcome, TrialSpec

logger = logging.getLogger(__name__)

_CURVE_KEYS = ("eval/return_mean", "rollout/return_mean")


def load_finished(tracker: Any, specs: list[TrialSpec]) -> dict[str, TrialOutcome]:
    """Outcomes of the `specs` that finished before with the same params, by trial name."""
    finished = tracker.find_finished_trials()
    outcomes = {}
    for spec in specs:
        run_id = finished.get(spec.name)
        if run_id is None:
            continue
        run = tracker.client.get_run(run_id)
        wanted = {k: str(v) for k, v in spec.params().items()}
        if any(run.data.params.get(k) != v for k, v in wanted.items()):
            logger.warning("trial %s finished with other settings; running it again", spec.name)
            continue
        outcomes[spec.name] = _outcome(tracker.client, run, spec)
    return outcomes


def _outcome(client: Any, run: Any, spec: TrialSpec) -> TrialOutcome:
    """Rebuild a `TrialOutcome` from a finished run's metrics and its `genome.pt`."""
    from synevo.evaluation import check_task

    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(run.info.run_id, "genome.pt", folder)
        saved = torch.load(path, weights_only=True)

    rows: dict[int, dict[str, float]] = {}
    for key in _CURVE_KEYS:
        for metric in client.get_metric_history(run.info.run_id, key):
            rows.setdefault(metric.step, {"env_steps": float(metric.step)})[key] = metric.value

    agent_scores = download_agent_scores(client, run.info.run_id)
    metrics, params, task = run.data.metrics, run.data.params, check_task(spec.task)
    return TrialOutcome(
        spec=spec,
        family=run.data.tags.get("synevo.family", "unknown"),
        best_genome=saved["genome"],
        final_returns=[float(r) for r in saved["final_returns"]],
        env_steps=int(metrics["final/env_steps"]),
        eval_env_steps=int(metrics["final/eval_env_steps"]),
        wall_time=float(metrics["final/wall_time_s"]),
        history=[rows[step] for step in sorted(rows)],
        model_info={k: _number(v) for k, v in params.items() if k.startswith("model/")},
        gym_threshold=task.gym_threshold,
        paper_threshold=task.paper_threshold,
        agent_scores=agent_scores,
    )


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
