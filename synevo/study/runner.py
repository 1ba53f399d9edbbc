"""The study runner: expands a study into trials, runs them, and records them in MLflow.

Trials run in the driver one after another (`workers = 0`, or `parallel = "population"`,
where each evolution generation is split over Ray workers instead), or as Ray tasks, one CPU
each (`parallel = "trials"`). Either way every metric reaches MLflow from the driver only:
tasks send their history rows back through a Ray queue. A failed trial is recorded as a
FAILED run and the others go on; finished trials are never lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synevo.optimizers.base import Metrics, Problem, Reporter
from synevo.seeding import final_seeds
from synevo.study.agents import AGENTS_FILE, agents_csv, score_trial_agents
from synevo.study.resume import load_finished
from synevo.study.trial import TrialOutcome, TrialSpec
from synevo.threads import set_threads

logger = logging.getLogger(__name__)


@dataclass
class StudyResult:
    """What `run_study` hands back to the command line."""

    outcomes: list[TrialOutcome]
    failures: dict[str, str]
    rows: list[dict[str, Any]]
    table_markdown: str
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    wall_time: float
    skipped: list[str] = field(default_factory=list)
    report_dir: Path | None = None
    experiment_trials: int = 0  # finished in the study's experiment, this run's and earlier


def run_trial(spec: TrialSpec, report: Reporter | None = None, workers: int = 0) -> TrialOutcome:
    """Run one trial: optimize, then score the best genome on `final_episodes` episodes.

    Args:
        workers: Ray workers for evolution generations; 0 evaluates in-process.
    """
    from synevo.evaluation import Evaluator, check_task
    from synevo.models import build_model
    from synevo.optimizers import make_optimizer

    start = time.perf_counter()
    task = check_task(spec.task)
    model = build_model(spec.model, task.obs_dim, task.n_actions, **spec.model_settings)
    optimizer = make_optimizer(spec.optimizer, spec.optimizer_settings)
    problem = Problem(
        model, spec.task, spec.budget, spec.seed, spec.eval_every, spec.eval_episodes, workers
    )
    logger.info("trial %s: searching %d genome values", spec.name, model.genome_size)
    result = optimizer.run(problem, report)

    # final score on episodes no checkpoint has seen
    with torch.no_grad():
        network = model.weights(result.best_genome.unsqueeze(0))
    final = Evaluator(spec.task).evaluate(network, final_seeds(spec.seed, spec.final_episodes))
    eval_steps = int(result.history[-1].get("eval/env_steps", 0)) if result.history else 0

    # the paper's protocol: agents sampled from (or freely assembled with) the best genome
    agent_scores, agent_steps = score_trial_agents(
        model,
        result.best_genome,
        spec.task,
        spec.seed,
        spec.agents,
        spec.agent_episodes,
        spec.free_assembly,
    )
    return TrialOutcome(
        spec=spec,
        family=optimizer.family,
        best_genome=result.best_genome,
        final_returns=[float(r) for r in final.returns[0]],
        env_steps=result.env_steps,
        eval_env_steps=eval_steps + final.env_steps + agent_steps,
        wall_time=time.perf_counter() - start,
        history=result.history,
        model_info={
            **model.describe(),
            **{f"optimizer/{k}": v for k, v in optimizer.params(spec.task).items()},
        },
        gym_threshold=task.gym_threshold,
        paper_threshold=task.paper_threshold,
        agent_scores=agent_scores,
    )


def _trial_task(spec: TrialSpec, queue: Any) -> TrialOutcome:
    """A trial as a Ray task: one torch and BLAS thread, history rows sent back through `queue`.

    Rows are sent without waiting for them to land: a Ray task blocked in `ray.get` lends its
    CPU to the next pending task, so a blocking `queue.put` per row would let more trials run
    than there are CPUs. The sends are awaited once, before the outcome is returned.
    """
    import ray

    set_threads(1)
    sent: list[Any] = []
    outcome = run_trial(spec, report=lambda row: sent.append(_send(queue, (spec.name, row))))
    ray.get(sent)
    return outcome


def _send(queue: Any, item: Any) -> Any:
    """Put `item` on a `ray.util.queue.Queue` (unbounded) without blocking; returns the ref."""
    return queue.actor.put_nowait.remote(item)


class _Recorder:
    """Driver-side bookkeeping of trials: MLflow runs, progress bars, outcomes."""

    def __init__(self, tracker: Any, specs: list[TrialSpec], progress: bool):
        self.tracker, self.progress = tracker, progress
        self.specs = {s.name: s for s in specs}
        self.runs: dict[str, str] = {}
        self.bars: dict[str, Any] = {}
        self.outcomes: list[TrialOutcome] = []
        self.failures: dict[str, str] = {}

    def _run_id(self, name: str) -> str:
        if name not in self.runs:
            spec = self.specs[name]
            tags = {
                "synevo.trial": name,
                "synevo.task": spec.task,
                "synevo.model": spec.model,
                "synevo.optimizer": spec.optimizer,
                "synevo.label": spec.label,
                "synevo.seed": str(spec.seed),
            }
            self.runs[name] = self.tracker.start_trial(name, spec.params(), tags)
        return self.runs[name]

    def row(self, name: str, row: Metrics) -> None:
        """One history row of a running trial."""
        self.tracker.log_history(self._run_id(name), [row])
        bar = self._bar(name) if self.progress else None
        if bar is not None and not bar.disable:
            bar.update(int(row["env_steps"]) - bar.n)
            if "eval/return_mean" in row:
                bar.set_postfix(eval=f"{row['eval/return_mean']:.1f}")
        elif "eval/return_mean" in row:  # no bars: say where the trial stands in the log
            logger.info(
                "trial %s: %s env steps, checkpoint return %.1f",
                name,
                f"{int(row['env_steps']):,}",
                row["eval/return_mean"],
            )

    def _bar(self, name: str):
        if name not in self.bars:
            from tqdm.auto import tqdm

            self.bars[name] = tqdm(
                total=self.specs[name].budget,
                desc=name,
                unit="step",
                position=len(self.bars),
                dynamic_ncols=True,
                leave=True,
                disable=None,  # no bars where stderr is not a terminal
            )
        return self.bars[name]

    def done(self, outcome: TrialOutcome) -> None:
        """A finished trial: final metrics, artifacts, run closed."""
        from synevo.study.report import plot_trial_curve

        run_id = self._run_id(outcome.spec.name)
        self.tracker.set_tags(run_id, {"synevo.family": outcome.family})
        self.tracker.log_params(run_id, outcome.model_info)
        self.tracker.log_metrics(run_id, outcome.summary(), step=outcome.env_steps)
        with tempfile.TemporaryDirectory() as folder:
            curve, genome = Path(folder) / "learning_curve.png", Path(folder) / "genome.pt"
            plot_trial_curve(outcome.history, curve, outcome.spec.name)
            saved = {
                "genome": outcome.best_genome,
                "final_returns": outcome.final_returns,
                "spec": outcome.spec.params(),
            }
            torch.save(saved, genome)
            self.tracker.log_artifact(run_id, curve)
            self.tracker.log_artifact(run_id, genome)
        if outcome.agent_scores:
            self.tracker.log_metrics(run_id, outcome.agent_metrics(), step=outcome.env_steps)
            self.tracker.log_text(run_id, agents_csv(outcome.agent_scores), AGENTS_FILE)
        self.tracker.end_trial(run_id, "FINISHED")
        self.outcomes.append(outcome)
        bar = self.bars.get(outcome.spec.name)
        if bar is not None and not bar.disable:
            bar.total = bar.n  # an evolution strategy may end below the budget
            bar.set_postfix(final=f"{outcome.final_return:.1f}")
        logger.info("trial %s: final return %.1f", outcome.spec.name, outcome.final_return)

    def failed(self, name: str, error: BaseException) -> None:
        """A trial that raised: its run is marked FAILED with the reason; the study goes on."""
        message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        run_id = self._run_id(name)
        self.tracker.set_tags(run_id, {"synevo.error": message})
        self.tracker.end_trial(run_id, "FAILED")
        self.failures[name] = message
        logger.error("trial %s failed: %s", name, message)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _run_in_driver(specs: list[TrialSpec], recorder: _Recorder, workers: int) -> None:
    for spec in specs:
        try:
            recorder.done(run_trial(spec, lambda row, n=spec.name: recorder.row(n, row), workers))
        except Exception as error:  # noqa: BLE001 - one trial's failure must not stop the study
            recorder.failed(spec.name, error)


def _run_as_tasks(specs: list[TrialSpec], recorder: _Recorder) -> None:
    import ray
    from ray.util.queue import Queue

    queue = Queue()
    task = ray.remote(num_cpus=1, max_retries=0)(_trial_task)
    pending = {task.remote(spec, queue): spec for spec in specs}

    def drain() -> None:
        for name, row in queue.get_nowait_batch(queue.qsize()):
            recorder.row(name, row)

    try:
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            drain()
            for ref in finished:
                spec = pending.pop(ref)
                try:
                    recorder.done(ray.get(ref))
                except Exception as error:  # noqa: BLE001 - keep the other trials going
                    recorder.failed(spec.name, getattr(error, "cause", None) or error)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        queue.shutdown()


def run_study(
    config: Any,
    *,
    tracking_uri: str | None = None,
    ray_address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    resume: bool = False,
    report_dir: str | Path | None = None,
) -> StudyResult:
    """Run every trial of `config` (a `StudyConfig`) and record the study in MLflow.

    At the end the report of this invocation's trials (resumed ones included) is written to
    `report_dir` (a temporary folder if None) and logged to the parent run under `report/`.

    Args:
        workers: overrides the study's `execution.workers` (None: the study's, else all CPUs).
        resume: reuse trials that already finished in this experiment with the same params.
    """
    from synevo.distributed import init_ray
    from synevo.tracking import StudyTracker

    start = time.perf_counter()
    specs = config.trials()
    workers = _resolve_workers(config, workers)
    as_tasks = workers > 0 and config.execution.parallel == "trials"
    if workers > 0:
        init_ray(ray_address, num_cpus=workers if not ray_address else None)

    with StudyTracker(tracking_uri, config.name) as tracker:
        parent = tracker.start_study(
            _study_params(config, len(specs), workers), {"synevo.study": config.name}
        )
        recorder = _Recorder(tracker, specs, progress)
        reused = load_finished(tracker, specs) if resume else {}
        recorder.outcomes.extend(reused.values())
        todo = [spec for spec in specs if spec.name not in reused]
        if reused:
            logger.info("resuming: %d of %d trials already finished", len(reused), len(specs))
            tracker.set_tags(parent, {"synevo.resumed_trials": len(reused)})
        try:
            if as_tasks and len(todo) > 1:
                _run_as_tasks(todo, recorder)
            else:
                _run_in_driver(todo, recorder, workers)
        finally:
            recorder.close()

        order = {spec.name: i for i, spec in enumerate(specs)}
        recorder.outcomes.sort(key=lambda outcome: order[outcome.spec.name])
        written = _write_report(tracker, config.name, parent, recorder.outcomes, report_dir)
        tracker.end_study("FINISHED" if recorder.outcomes else "FAILED")

    return StudyResult(
        outcomes=recorder.outcomes,
        failures=recorder.failures,
        rows=written.results if written else [],
        table_markdown=_summary_markdown(written),
        report_dir=written.out_dir if written and report_dir is not None else None,
        parent_run_id=parent,
        experiment_id=tracker.experiment_id,
        tracking_uri=tracker.tracking_uri,
        wall_time=time.perf_counter() - start,
        skipped=list(reused),
        experiment_trials=written.experiment_trials if written else 0,
    )


def _resolve_workers(config: Any, workers: int | None) -> int:
    if workers is None:
        workers = config.execution.workers
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = in-process), got {workers}")
    return int(workers)


def _study_params(config: Any, trials: int, workers: int) -> dict[str, Any]:
    return {
        "study": config.name,
        "tasks": ",".join(config.tasks),
        "seeds": ",".join(str(s) for s in config.seeds),
        "budget": config.budget,
        "models": ",".join(m.name for m in config.models),
        "optimizers": ",".join(o.label for o in config.optimizers),
        "trials": trials,
        "workers": workers,
        "parallel": config.execution.parallel,
    }


def _write_report(tracker, study: str, parent: str, outcomes, report_dir) -> Any:
    """The report of this invocation's trials, logged to its parent run; None if none finished.

    A failing report is logged, not raised: the finished trials are safe in MLflow and
    `synevo report STUDY` can write it again.
    """
    from synevo.study.experiment_report import write_report

    if not outcomes:
        return None
    names = [outcome.spec.name for outcome in outcomes]
    try:
        with contextlib.ExitStack() as stack:
            folder = report_dir or stack.enter_context(tempfile.TemporaryDirectory())
            return write_report(
                tracker.tracking_uri,
                study,
                trial_names=names,
                parent_run_id=parent,
                out_dir=folder,
            )
    except Exception:  # noqa: BLE001 - the trials are recorded; the report can be redone
        logger.exception("the report failed; write it again with: synevo report %s", study)
        return None


def _summary_markdown(written: Any) -> str:
    """The results table and the seed-level pairwise tests, for the terminal."""
    from synevo.study import report

    if written is None:
        return ""
    markdown = report.table_markdown(written.results)
    seed_tests = [row for row in written.tests if row["level"] == report.LEVELS[0]]
    if seed_tests:
        heading = "## Pairwise Mann-Whitney U tests over seeds (Bonferroni per task)"
        markdown = f"{markdown.rstrip()}\n\n{heading}\n\n{report.table_markdown(seed_tests)}"
    return markdown
