"""The comparison over a study's trials: a results table with confidence intervals over seeds,
pairwise tests between the variants of each task, and learning curves against env steps.

Pure functions of `TrialOutcome` lists; nothing here talks to MLflow or Ray. Figures are drawn
on `matplotlib.figure.Figure` objects rendered by the Agg canvas, without pyplot, so no
display is needed, the caller's backend is left alone and no figure stays registered.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synevo.study.stats import bootstrap_ci, iqm, pairwise_mann_whitney

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from synevo.study.trial import TrialOutcome

logger = logging.getLogger(__name__)

EVAL_KEY = "eval/return_mean"
ROLLOUT_KEY = "rollout/return_mean"
STEPS_KEY = "env_steps"
GENOME_SIZE_KEY = "model/genome_size"
GRID_POINTS = 200


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval `(mean, low, high)` of independent samples.

    The half-width is `t_{(1+confidence)/2, n-1} * s / sqrt(n)` with `s` the sample standard
    deviation (ddof=1). A single value has no spread to estimate: `low = high = mean`.

    Raises:
        ValueError: for no values or a confidence outside (0, 1).
    """
    from scipy import stats

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("values must hold at least one value, got none")
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    half = stats.t.ppf((1.0 + confidence) / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return mean, mean - float(half), mean + float(half)


def _groups(outcomes: Sequence[TrialOutcome]) -> dict[tuple[str, str], list[TrialOutcome]]:
    """Outcomes grouped by (task, label), in first-seen order, each sorted by seed."""
    groups: dict[tuple[str, str], list[TrialOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault((outcome.spec.task, outcome.spec.label), []).append(outcome)
    return {key: sorted(group, key=lambda o: o.spec.seed) for key, group in groups.items()}


def _one(key: str, values: Sequence[Any]) -> Any:
    """The value all trials of a group share; the first one, with a warning, if they differ."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        logger.warning("trials of one row disagree on %s: %s; reporting the first", key, distinct)
    return distinct[0]


def _solved_column(source: str, threshold: float) -> str:
    return f"solved ({source} >= {threshold:g})"


def results_table(outcomes: Sequence[TrialOutcome]) -> list[dict[str, Any]]:
    """One row per (task, label), aggregated over seeds, rows in first-seen order.

    Columns: task, label, model, family, seeds, final return mean with its 95% Student-t
    interval (`mean_ci`, "95% CI low/high"), the percentile bootstrap 95% interval of the
    same mean (`stats.bootstrap_ci`, seed 0, "bootstrap 95% CI low/high"), the interquartile
    mean over seeds (`stats.iqm`), min and max over seeds, the fraction of seeds whose final
    return reaches gymnasium's threshold (`"solved (gym >= 475)"`) and the paper's
    (`"solved (paper >= 195)"`; a column is left out when the task has no such threshold),
    mean training env steps, mean wall time and the searched genome size. The solved columns'
    names carry the threshold, so tables over several tasks have one pair of columns per task.
    """
    rows = []
    for (task, label), group in _groups(outcomes).items():
        finals = [o.final_return for o in group]
        mean, low, high = mean_ci(finals)
        _, boot_low, boot_high = bootstrap_ci(finals)
        row: dict[str, Any] = {
            "task": task,
            "label": label,
            "model": _one("model", [o.spec.model for o in group]),
            "family": _one("family", [o.family for o in group]),
            "seeds": len(group),
            "final return mean": mean,
            "95% CI low": low,
            "95% CI high": high,
            "bootstrap 95% CI low": boot_low,
            "bootstrap 95% CI high": boot_high,
            "final return IQM": iqm(finals),
            "final return min": min(finals),
            "final return max": max(finals),
        }
        for source, attribute in [("gym", "gym_threshold"), ("paper", "paper_threshold")]:
            threshold = _one(attribute, [getattr(o, attribute) for o in group])
            if threshold is not None:
                solved = sum(final >= threshold for final in finals) / len(finals)
                row[_solved_column(source, threshold)] = solved
        row["env steps mean"] = float(np.mean([o.env_steps for o in group]))
        row["wall time s mean"] = float(np.mean([o.wall_time for o in group]))
        row["genome size"] = _one("genome size", [o.model_info.get(GENOME_SIZE_KEY) for o in group])
        rows.append(row)
    return rows


def comparison_table(
    outcomes: Sequence[TrialOutcome], alternative: str = "two-sided"
) -> list[dict[str, Any]]:
    """Pairwise Mann-Whitney U tests between the labels of each task, on the seeds' final returns.

    One row per task and pair of labels (`stats.pairwise_mann_whitney`): `"task"`, then
    `"a"`, `"b"`, `"n a"`, `"n b"` (seeds), `"U"`, `"p"`, `"p Bonferroni"`, `"P(a > b)"`
    (probability of improvement) and `"significant"` (corrected p < 0.05). The Bonferroni
    family is one task's pairs. Tasks and labels keep their first-seen order; a task with a
    single label has no rows. `table_markdown` and `table_csv` render the rows.
    """
    by_task: dict[str, dict[str, list[float]]] = {}
    for (task, label), group in _groups(outcomes).items():
        by_task.setdefault(task, {})[label] = [o.final_return for o in group]

    rows = []
    for task, finals in by_task.items():
        for pair in pairwise_mann_whitney(finals, alternative=alternative):
            rows.append({"task": task, **pair})
    return rows


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0.0 and abs(value) < 0.1:
            return f"{value:.3g}"  # p-values keep their digits
        if not math.isfinite(value) or abs(value) < 1000:
            return f"{value:.2f}"
        return f"{value:,.0f}"
    return str(value)


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as markdown: one table per task, under a `### <task>` heading."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_task.setdefault(str(row["task"]), []).append(row)

    blocks = []
    for task, task_rows in by_task.items():
        columns = [c for c in _columns(task_rows) if c != "task"]
        lines = [f"### {task}", "", "| " + " | ".join(columns) + " |"]
        lines.append("|" + "|".join("---" for _ in columns) + "|")
        for row in task_rows:
            lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def table_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as CSV over the union of the rows' columns (blank where a row has none)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _curve(history: Sequence[Mapping[str, float]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """`(env_steps, values)` of the rows that hold `key` and a finite value, sorted by steps."""
    points = sorted(
        (float(row[STEPS_KEY]), float(row[key]))
        for row in history
        if key in row and STEPS_KEY in row and math.isfinite(float(row[key]))
    )
    steps = np.array([p[0] for p in points])
    values = np.array([p[1] for p in points])
    return steps, values


def seed_band(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = GRID_POINTS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over seeds of curves interpolated on a common grid of env steps.

    The grid spans only the steps every seed covers (no extrapolation). Curves are
    `(steps (n,), values (n,))` pairs; empty ones are ignored.

    Returns:
        `(grid (points,), mean (points,), low (points,), high (points,))`; one point when the
        seeds share a single step.

    Raises:
        ValueError: if every curve is empty.
    """
    curves = [(s, v) for s, v in curves if s.size]
    if not curves:
        raise ValueError("seed_band needs at least one non-empty curve")
    start = max(float(s[0]) for s, _ in curves)
    stop = min(float(s[-1]) for s, _ in curves)
    grid = np.linspace(start, stop, points) if stop > start else np.array([stop])
    values = np.stack([np.interp(grid, s, v) for s, v in curves])
    return grid, values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def _draw_thresholds(ax: Axes, gym: float | None, paper: float | None) -> None:
    if gym is not None and gym == paper:
        ax.axhline(gym, color="black", linestyle="--", label=f"gym = paper threshold ({gym:g})")
        return
    if gym is not None:
        ax.axhline(gym, color="black", linestyle="--", label=f"gym threshold ({gym:g})")
    if paper is not None:
        ax.axhline(paper, color="grey", linestyle="--", label=f"paper threshold ({paper:g})")


def _new_figure(panels: int) -> tuple[Figure, list[Axes]]:
    """A figure with `panels` axes, at most two per row."""
    from matplotlib.figure import Figure

    ncols = min(panels, 2)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(6.0 * ncols, 4.0 * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, index + 1) for index in range(panels)]
    return fig, axes


def _save(fig: Figure, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    logger.debug("wrote %s", path)


def plot_learning_curves(outcomes: Sequence[TrialOutcome], path: str | os.PathLike) -> Figure:
    """Checkpoint evaluation return against env steps: one panel per task, one curve per label.

    Each curve is the mean over seeds of `eval/return_mean`, interpolated on the steps all
    seeds cover; the shaded band spans the min to the max over seeds. The gymnasium and paper
    thresholds are dashed lines. Saved as PNG to `path`; the figure is returned.

    Raises:
        ValueError: for no outcomes.
    """
    if not outcomes:
        raise ValueError("outcomes must hold at least one trial outcome, got none")
    groups = _groups(outcomes)
    tasks = list(dict.fromkeys(task for task, _ in groups))
    fig, axes = _new_figure(len(tasks))

    for task, ax in zip(tasks, axes, strict=True):
        for (group_task, label), group in groups.items():
            if group_task != task:
                continue
            curves = [_curve(o.history, EVAL_KEY) for o in group]
            if not any(steps.size for steps, _ in curves):
                logger.warning("no %s in the history of %s on %s", EVAL_KEY, label, task)
                continue
            grid, mean, low, high = seed_band(curves)
            (line,) = ax.plot(grid, mean, marker="o" if grid.size == 1 else None)
            seeds = f"{len(group)} seed" + ("s" if len(group) > 1 else "")
            line.set_label(f"{label} (mean of {seeds})")
            ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)

        first = next(o for o in outcomes if o.spec.task == task)
        _draw_thresholds(ax, first.gym_threshold, first.paper_threshold)
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return (band: min-max over seeds)")
        ax.legend(fontsize="small")

    _save(fig, path)
    return fig


def plot_trial_curve(
    history: Sequence[Mapping[str, float]], path: str | os.PathLike, title: str
) -> Figure:
    """One trial's `eval/return_mean` and `rollout/return_mean` against env steps, as PNG.

    A key absent from the history is left out of the plot; the figure is returned.
    """
    fig, (ax,) = _new_figure(1)
    for key, style in [(EVAL_KEY, "o-"), (ROLLOUT_KEY, "-")]:
        steps, values = _curve(history, key)
        if steps.size:
            ax.plot(steps, values, style, label=key, markersize=3)
    ax.set_title(title)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    if ax.lines:
        ax.legend(fontsize="small")
    else:
        logger.warning("no %s or %s in the history of %s", EVAL_KEY, ROLLOUT_KEY, title)
    _save(fig, path)
    return fig
