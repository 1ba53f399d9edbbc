"""The report of a study read back from MLflow: `synevo report EXPERIMENT` and the end of
`synevo run`.

Loads the finished trial runs of an experiment into `report.TrialRecord`s (MLflow is the single
source, so a resumed study reports the same way as a fresh one), computes the tables and
figures of `report`, writes them to a folder and logs them under `report/` on the study's
parent run. Needs only the tracking URI and the experiment name, no study file.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import tempfile
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synevo.study import report
from synevo.study.agents import download_agent_scores
from synevo.study.report import TrialRecord
from synevo.tracking.mlflow_tracker import PARENT_TAG, STUDY_TAG, TRIAL_TAG, default_tracking_uri

logger = logging.getLogger(__name__)

REPORT_DIR = "report"
"""Where the report's files go in the parent run's artifacts."""
FILES = ("report.md", "results.csv", "scores.csv", "tests.csv")
FIGURES = ("learning_curves.png", "scores.png")
THRESHOLD_NOTE = (
    '"gym" thresholds are gymnasium\'s `reward_threshold`; "paper" thresholds are the ones '
    "the SynaptoGen authors used. The paper's MountainCar-v0 (-200) and Acrobot-v1 (-500) "
    "thresholds are the worst possible returns (every episode ends by time limit at that "
    "return), so every agent passes them; only the gym thresholds mean solved there."
)


@dataclass
class Report:
    """A written report: its markdown, the tables behind it and where its files are.

    `paths` maps each file name (`"report.md"`, `"results.csv"`, `"scores.csv"`,
    `"tests.csv"`, `"learning_curves.png"`, `"scores.png"`) to its local path;
    `parent_run_id` is the run they were logged to, None when there was none;
    `experiment_trials` counts the experiment's finished trials, reported or not.
    """

    experiment: str
    markdown: str
    out_dir: Path
    paths: dict[str, Path]
    parent_run_id: str | None
    records: list[TrialRecord]
    results: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    experiment_trials: int = 0


def write_report(
    tracking_uri: str | None,
    experiment_name: str,
    *,
    trial_names: Collection[str] | None = None,
    parent_run_id: str | None = None,
    out_dir: str | Path | None = None,
) -> Report:
    """Write the report of an experiment's finished trials and log it to a parent run.

    Args:
        tracking_uri: the MLflow store; None means `default_tracking_uri()`.
        trial_names: report only these trials (`task/label/seedN`), e.g. the trials of one
            `synevo run`, resumed ones included; None reports every finished trial.
        parent_run_id: the run the files are logged to, under `report/`; None means the
            experiment's latest parent run (tagged `synevo.study`, no parent of its own). If
            the experiment has none, the files are written but not logged (warning).
        out_dir: where the files are written (created if missing); None makes a temporary
            folder that is left in place for the caller.

    Raises:
        ValueError: for an unknown experiment (the available ones are named), no finished
            trial to report, or a parent run outside the experiment.
    """
    uri = tracking_uri or default_tracking_uri()
    client = _client(uri)
    experiment_id = _experiment_id(client, uri, experiment_name)
    latest = _latest_finished(client, experiment_id)
    records = _load_records(client, latest, experiment_name, trial_names)
    parent = _parent_run(client, experiment_id, experiment_name, parent_run_id)
    folder = (
        Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="synevo-report-"))
    )
    folder.mkdir(parents=True, exist_ok=True)

    # tables and figures
    results = report.results_table(records)
    scores = report.scores_table(records)
    tests = report.comparison_table(records)
    paths = {name: folder / name for name in FILES + FIGURES}
    report.plot_learning_curves(records, paths["learning_curves.png"])
    report.plot_scores(records, paths["scores.png"])
    markdown = _markdown(experiment_name, uri, parent, records, results, scores, tests)

    # files, then the parent run
    paths["report.md"].write_text(markdown)
    paths["results.csv"].write_text(report.table_csv(results))
    paths["scores.csv"].write_text(report.table_csv(scores))
    paths["tests.csv"].write_text(_tests_csv(tests))
    if parent is not None:
        for path in paths.values():
            client.log_artifact(parent, str(path), REPORT_DIR)
        logger.info("report of %s logged to run %s under %s/", experiment_name, parent, REPORT_DIR)
    logger.info("report of %d trials written to %s", len(records), folder)
    return Report(
        experiment_name,
        markdown,
        folder,
        paths,
        parent,
        records,
        results,
        scores,
        tests,
        experiment_trials=len(latest),
    )


# Reading MLflow
def _client(uri: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError as err:
        raise ImportError("synevo's report reads MLflow: pip install 'mlflow>=2.12'") from err
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client: Any, uri: str, name: str) -> str:
    """The id of the active experiment `name`.

    Raises:
        ValueError: if there is none, naming the active experiments of the store.
    """
    found = client.get_experiment_by_name(name)
    if found is None or found.lifecycle_stage != "active":
        names = sorted(e.name for e in client.search_experiments())
        raise ValueError(
            f"experiment_name {name!r} is not an active experiment in {uri}; "
            f"available experiments: {', '.join(names) or 'none'}"
        )
    return found.experiment_id


def _runs(client: Any, experiment_id: str, filter_string: str = "") -> list[Any]:
    """Every run of the experiment matching `filter_string`, newest first."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        runs += list(page)
        token = page.token
        if not token:
            return runs


def load_records(
    tracking_uri: str | None,
    experiment_name: str,
    *,
    trial_names: Collection[str] | None = None,
) -> list[TrialRecord]:
    """The latest FINISHED run of every trial of an experiment, as records (`write_report`).

    Raises:
        ValueError: for an unknown experiment or no finished trial to report.
    """
    uri = tracking_uri or default_tracking_uri()
    client = _client(uri)
    experiment_id = _experiment_id(client, uri, experiment_name)
    latest = _latest_finished(client, experiment_id)
    return _load_records(client, latest, experiment_name, trial_names)


def _latest_finished(client: Any, experiment_id: str) -> dict[str, Any]:
    """Trial name -> its latest FINISHED child run (tagged `synevo.trial`)."""
    latest: dict[str, Any] = {}
    for run in _runs(client, experiment_id, "attributes.status = 'FINISHED'"):
        tags = run.data.tags
        if TRIAL_TAG in tags and PARENT_TAG in tags:
            latest.setdefault(tags[TRIAL_TAG], run)
    return latest


def _load_records(
    client: Any,
    latest: dict[str, Any],
    experiment_name: str,
    trial_names: Collection[str] | None,
) -> list[TrialRecord]:
    """The runs of `latest` (`_latest_finished`), as records.

    Records come in the order the trials started; a trial without final metrics is skipped
    with a warning, and so are the names of `trial_names` that have no finished run.

    Raises:
        ValueError: if no finished trial is left to report.
    """
    if trial_names is not None:
        missing = sorted(set(trial_names) - set(latest))
        if missing:
            logger.warning("no finished run of %d trials: %s", len(missing), ", ".join(missing))
        wanted = set(trial_names)
        latest = {name: run for name, run in latest.items() if name in wanted}

    thresholds: dict[str, tuple[float | None, float | None]] = {}
    records = []
    for run in sorted(latest.values(), key=lambda run: run.info.start_time):
        if "final/return_mean" not in run.data.metrics:
            logger.warning("trial run %s has no final/return_mean; left out", run.info.run_id)
            continue
        task = run.data.tags.get("synevo.task", run.data.params.get("task", ""))
        if task not in thresholds:
            thresholds[task] = _task_thresholds(task)
        records.append(_record(client, run, *thresholds[task]))
    if not records:
        among = "" if trial_names is None else f" among the {len(trial_names)} requested"
        raise ValueError(
            f"experiment {experiment_name!r} has no FINISHED trial run{among} "
            f"(a child run tagged {TRIAL_TAG} with final metrics): nothing to report"
        )
    return records


def _task_thresholds(task: str) -> tuple[float | None, float | None]:
    """`(gym, paper)` thresholds of a task; None for both, with a warning, if unknown."""
    from synevo.evaluation import check_task

    try:
        info = check_task(task)
    except ValueError as err:
        logger.warning("no thresholds for task %r: %s", task, err)
        return None, None
    return info.gym_threshold, info.paper_threshold


def _record(client: Any, run: Any, gym: float | None, paper: float | None) -> TrialRecord:
    """A finished trial run as a record: tags, params, final metrics, curve and agents."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    run_id = run.info.run_id

    def tag(key: str) -> str:
        return tags.get(f"synevo.{key}", params.get(key, ""))

    curve = sorted((m.step, m.value) for m in client.get_metric_history(run_id, report.EVAL_KEY))
    return TrialRecord(
        name=tags[TRIAL_TAG],
        task=tag("task"),
        model=tag("model"),
        label=tag("label"),
        optimizer=tag("optimizer"),
        seed=int(tag("seed")),
        family=tags.get("synevo.family", "unknown"),
        final_return=metrics["final/return_mean"],
        env_steps=metrics.get("final/env_steps", float("nan")),
        eval_env_steps=metrics.get("final/eval_env_steps", float("nan")),
        wall_time=metrics.get("final/wall_time_s", float("nan")),
        genome_size=_number(params.get(report.GENOME_SIZE_KEY)),
        network_size=_number(params.get("model/network_size")),
        compression=_number(params.get("model/compression")),
        curve=[(float(step), float(value)) for step, value in curve],
        agent_scores=_agent_scores(client, run_id),
        gym_threshold=gym,
        paper_threshold=paper,
        run_id=run_id,
        start_time=run.info.start_time / 1000.0,
    )


def _number(text: str | None) -> int | float | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow's download progress bar off: one bar per trial would flood the terminal."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ[key]
        else:
            os.environ[key] = before


def _parent_run(
    client: Any, experiment_id: str, experiment_name: str, run_id: str | None
) -> str | None:
    """The run to log to: `run_id` after checking it, else the latest study run, else None.

    Raises:
        ValueError: if `run_id` belongs to another experiment.
    """
    if run_id is not None:
        found = client.get_run(run_id).info.experiment_id
        if found != experiment_id:
            raise ValueError(
                f"parent_run_id {run_id!r} is in experiment {found}, not in "
                f"{experiment_name!r} ({experiment_id})"
            )
        return run_id
    for run in _runs(client, experiment_id):
        if STUDY_TAG in run.data.tags and PARENT_TAG not in run.data.tags:
            return run.info.run_id
    logger.warning("experiment %r has no study run: the report is not logged", experiment_name)
    return None


# Markdown
def _date(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _markdown(
    experiment: str,
    uri: str,
    parent: str | None,
    records: list[TrialRecord],
    results: list[dict[str, Any]],
    scores: list[dict[str, Any]],
    tests: list[dict[str, Any]],
) -> str:
    """report.md: a header, the three tables and the two figures."""
    starts = [r.start_time for r in records if r.start_time is not None]
    started = f", started {_date(min(starts))} to {_date(max(starts))}" if starts else ""
    now = datetime.datetime.now(datetime.UTC).timestamp()
    variants = list(dict.fromkeys(r.label for r in records))
    header = [
        f"# Report of experiment `{experiment}`",
        "",
        f"- date: {_date(now)}",
        f"- trials: {len(records)} finished (latest run of each){started}",
        f"- tasks: {', '.join(dict.fromkeys(r.task for r in records))}",
        f"- variants: {', '.join(variants)}",
        f"- tracking: `{uri}`, parent run `{parent}`",
        "",
        THRESHOLD_NOTE,
    ]
    sections = {
        "Results over seeds": (
            "Final return: mean return of the best genome over its final greedy seeded "
            "episodes, one value per seed. `solved over` says whether the solved fractions "
            "count sampled agents (pooled over seeds) or seeds. Sizes: searched-vector "
            "(genome) size, network size, compression = network / searched."
        ),
        "Agent scores": (
            "An agent's score is its mean return over greedy seeded episodes: a network "
            "sampled from the trained genome, or a free-assembly seed applied to it. A "
            "variant without agents counts one agent per seed, its final return."
        ),
        "Pairwise tests": (
            "Mann-Whitney U (`scipy.stats.mannwhitneyu`, two-sided), Bonferroni-corrected "
            "within each task and level. Level `seeds`: one value per seed, independent "
            "replications. Level `agents`: agents pooled over seeds, the paper's protocol "
            "(agents of one genome are not independent replications). `P(a > b)`: "
            "probability of improvement, the effect size."
        ),
    }
    tables = [results, scores, tests]
    body = []
    for (title, note), rows in zip(sections.items(), tables, strict=True):
        text = report.table_markdown(rows).rstrip() if rows else "(none)"
        body += [f"## {title}", "", note, "", text, ""]
    body += ["## Figures", "", "![learning curves](learning_curves.png)", ""]
    body += ["![agent scores](scores.png)", ""]
    return "\n".join(header + [""] + body)


def _tests_csv(tests: list[Mapping[str, Any]]) -> str:
    """tests.csv, with its header even when no task has two variants to compare."""
    if tests:
        return report.table_csv(tests)
    columns = ["task", "level", "a", "b", "n a", "n b", "U", "p", "p Bonferroni"]
    return ",".join(columns + ["P(a > b)", "significant"]) + "\n"


def _agent_scores(client: Any, run_id: str) -> dict[str, list[float]]:
    with _no_progress_bar():
        return download_agent_scores(client, run_id)
