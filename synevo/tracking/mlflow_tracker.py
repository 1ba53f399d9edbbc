"""The MLflow sink of a study: one experiment per study, one parent run per invocation of the
study, one child run per trial.

Only the driver process writes to MLflow, through `mlflow.MlflowClient` with explicit run ids
(never the fluent active-run API: trials finish interleaved). MLflow is imported where it is
used, so importing synevo stays light.

Tags a trial run carries (the runner passes all but the first two):

| tag | value |
|---|---|
| `mlflow.parentRunId` | the study's parent run (set here; nests the run in the MLflow UI) |
| `synevo.study` | the study name (set here, inherited from the parent run) |
| `synevo.trial` | the trial name, `task/label/seed<n>`; resuming matches on it |
| `synevo.family` | `gradient` or `evolution` |
| `synevo.optimizer` | optimizer registry name, e.g. `dqn`, `snes` |
| `synevo.model` | model registry name, e.g. `synaptogen` |
| `synevo.task` | gymnasium environment id |
| `synevo.seed` | the trial seed |
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)

STATUSES = ("FINISHED", "FAILED", "KILLED")
STUDY_TAG = "synevo.study"
TRIAL_TAG = "synevo.trial"
PARENT_TAG = "mlflow.parentRunId"

# MLflow's limits (mlflow.utils.validation): values longer than these are rejected.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000


def default_tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else a SQLite store `mlflow.db` in the working directory."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{os.path.abspath('mlflow.db')}"


def _mlflow_client(tracking_uri: str):
    """An `mlflow.MlflowClient`, with an install hint when MLflow is missing."""
    try:
        from mlflow import MlflowClient
    except ImportError as err:
        raise ImportError(
            "synevo's tracking needs MLflow: pip install 'mlflow>=2.12' (or pip install synevo)"
        ) from err
    return MlflowClient(tracking_uri=tracking_uri)


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {list(STATUSES)}, got {status!r}")
    return status


def _clip(key: str, value: Any, limit: int) -> str:
    """`value` as a string of at most `limit` characters, warning when it is cut."""
    text = str(value)
    if len(text) > limit:
        logger.warning("%r is %d characters; MLflow keeps %d, cut", key, len(text), limit)
        text = text[: limit - 3] + "..."
    return text


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StudyTracker:
    """Writes a study's runs to one MLflow experiment, closing every run it opened.

    Use it as a context manager: on leaving the block with an exception, every run this
    tracker opened and did not end is marked FAILED (KILLED for a KeyboardInterrupt), so no run
    is left RUNNING; on a normal exit the open study run ends FINISHED.

    Args:
        tracking_uri: an MLflow tracking URI (`sqlite:///...`, `http://...`); None means
            `default_tracking_uri()`.
        experiment: the experiment name, one per study; created if missing, else reused.
        artifact_location: where a newly created experiment stores artifacts; None keeps
            MLflow's default (`./mlruns/<experiment id>` for a database store, the server's
            artifact destination over HTTP). Ignored when the experiment exists.
    """

    def __init__(
        self,
        tracking_uri: str | None,
        experiment: str,
        *,
        artifact_location: str | None = None,
    ):
        if not experiment:
            raise ValueError(f"experiment must be a non-empty name, got {experiment!r}")
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.experiment = experiment
        self.client = _mlflow_client(self.tracking_uri)
        self.experiment_id = self._experiment_id(artifact_location)
        self.study_run_id: str | None = None
        self.study = experiment
        self._open: list[str] = []
        logger.info(
            "tracking experiment %r (id %s) at %s",
            experiment,
            self.experiment_id,
            self.tracking_uri,
        )

    def _experiment_id(self, artifact_location: str | None) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            if found.lifecycle_stage != "active":
                raise ValueError(
                    f"experiment {self.experiment!r} is deleted; restore it in MLflow "
                    "or choose another study name"
                )
            return found.experiment_id
        return self.client.create_experiment(self.experiment, artifact_location)

    # Runs
    def start_study(self, params: Mapping[str, Any], tags: Mapping[str, Any]) -> str:
        """Open the parent run of this invocation, named `<study>-<YYYYmmdd-HHMMSS>`.

        The study name is `tags["synevo.study"]` if given, else the experiment name.

        Raises:
            RuntimeError: if this tracker already started a study.
        """
        if self.study_run_id is not None:
            raise RuntimeError(f"study run {self.study_run_id} already started on this tracker")
        self.study = str(tags.get(STUDY_TAG, self.experiment))
        run_name = f"{self.study}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.study_run_id = self._create_run(run_name, params, {**tags, STUDY_TAG: self.study})
        return self.study_run_id

    def start_trial(self, name: str, params: Mapping[str, Any], tags: Mapping[str, Any]) -> str:
        """Open a child run of the study run for one trial; `params` is the whole trial config.

        `synevo.trial` is set to `name` unless `tags` gives it.

        Raises:
            RuntimeError: if `start_study` was not called first.
        """
        if self.study_run_id is None:
            raise RuntimeError("start_study must be called before start_trial")
        run_tags = {TRIAL_TAG: name, **tags, PARENT_TAG: self.study_run_id, STUDY_TAG: self.study}
        return self._create_run(name, params, run_tags)

    def _create_run(self, name: str, params: Mapping[str, Any], tags: Mapping[str, Any]) -> str:
        clipped_tags = {k: _clip(k, v, MAX_TAG_LENGTH) for k, v in tags.items()}
        run = self.client.create_run(self.experiment_id, tags=clipped_tags, run_name=name)
        run_id = run.info.run_id
        self._open.append(run_id)
        self.log_params(run_id, params)
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log params (values stringified, cut at MLflow's 6000 characters)."""
        from mlflow.entities import Param

        entries = [Param(k, _clip(k, v, MAX_PARAM_LENGTH)) for k, v in params.items()]
        for chunk in _chunks(entries, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, params=chunk)

    def end_trial(self, run_id: str, status: str = "FINISHED") -> None:
        """Close a trial run with status FINISHED, FAILED or KILLED.

        Raises:
            ValueError: for another status.
        """
        self._end(run_id, _check_status(status))

    def end_study(self, status: str = "FINISHED") -> None:
        """Close the study run; trials still open end KILLED (or with `status` if not FINISHED).

        Raises:
            ValueError: for a status other than FINISHED, FAILED or KILLED.
            RuntimeError: if no study was started.
        """
        _check_status(status)
        if self.study_run_id is None:
            raise RuntimeError("end_study called before start_study")
        orphans = [run_id for run_id in self._open if run_id != self.study_run_id]
        if orphans:
            logger.warning("%d trial run(s) still open at the end of the study", len(orphans))
        for run_id in orphans:
            self._end(run_id, "KILLED" if status == "FINISHED" else status)
        if self.study_run_id in self._open:
            self._end(self.study_run_id, status)

    def _end(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)
        if run_id in self._open:
            self._open.remove(run_id)

    def __enter__(self) -> StudyTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            if self.study_run_id is not None and self._open:
                self.end_study("FINISHED")
            return
        status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
        for run_id in list(reversed(self._open)):
            # A failing store must not hide the exception that brought us here.
            try:
                self._end(run_id, status)
            except Exception:
                logger.exception("could not mark run %s as %s", run_id, status)

    # Logging
    def log_history(self, run_id: str, rows: Sequence[Mapping[str, float]]) -> None:
        """Log history rows as metrics at step `int(row["env_steps"])`, one batch per call.

        Non-finite values are skipped (DEBUG log); batches are cut at MLflow's 1000 metrics.

        Raises:
            ValueError: if a row has no `env_steps`.
        """
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = []
        for index, row in enumerate(rows):
            if "env_steps" not in row:
                raise ValueError(f"history row {index} has no 'env_steps': {sorted(row)}")
            step = int(row["env_steps"])
            values = {k: v for k, v in row.items() if k != "env_steps"}
            metrics += [Metric(k, v, now, step) for k, v in self._finite(values, step).items()]
        self._log_metric_entities(run_id, metrics)

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int | None = None
    ) -> None:
        """Log metrics at `step` (0 if None); non-finite values are skipped."""
        from mlflow.entities import Metric

        step = 0 if step is None else int(step)
        now = int(time.time() * 1000)
        entities = [Metric(k, v, now, step) for k, v in self._finite(metrics, step).items()]
        self._log_metric_entities(run_id, entities)

    def _log_metric_entities(self, run_id: str, metrics: list[Any]) -> None:
        for chunk in _chunks(metrics, MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=chunk)

    @staticmethod
    def _finite(metrics: Mapping[str, Any], step: int) -> dict[str, float]:
        out = {}
        for key, value in metrics.items():
            value = float(value)
            if math.isfinite(value):
                out[key] = value
            else:
                logger.debug("skipping non-finite metric %s=%s at step %d", key, value, step)
        return out

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set tags on a run (values stringified, cut at MLflow's 8000 characters)."""
        from mlflow.entities import RunTag

        entries = [RunTag(k, _clip(k, v, MAX_TAG_LENGTH)) for k, v in tags.items()]
        for chunk in _chunks(entries, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, tags=chunk)

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None
    ) -> None:
        """Copy a local file or directory into the run's artifacts, under `artifact_path`."""
        self.client.log_artifact(run_id, os.fspath(local_path), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Store `text` as the artifact `artifact_file`, e.g. `"results.md"`."""
        self.client.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, fig: Any, artifact_file: str) -> None:
        """Store a matplotlib figure as the artifact `artifact_file`, e.g. `"curve.png"`."""
        self.client.log_figure(run_id, fig, artifact_file)

    # Resuming
    def find_finished_trials(self, study_name: str | None = None) -> dict[str, str]:
        """Map the trial name of every FINISHED trial run of a study to its run id.

        Searches this experiment for child runs tagged `synevo.study = study_name` (default:
        the study name of this tracker); when a trial finished more than once, the latest
        run wins.
        """
        study = self.study if study_name is None else study_name
        found: dict[str, str] = {}
        page_token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string="attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                page_token=page_token,
            )
            for run in page:
                tags = run.data.tags
                if tags.get(STUDY_TAG) == study and PARENT_TAG in tags and TRIAL_TAG in tags:
                    found.setdefault(tags[TRIAL_TAG], run.info.run_id)
            page_token = page.token
            if not page_token:
                return found
