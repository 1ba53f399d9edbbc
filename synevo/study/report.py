"""The comparison over a study's trials: the results table, the agent scores, the pairwise tests
between variants of each task, and the figures (learning curves, score distributions).

Everything here is a pure function of `TrialRecord`s, the plain summary of one finished trial;
`experiment_report` reads them from MLflow, `record_from_outcome` builds one from an in-memory
`TrialOutcome` (the functions taking "trials" accept both). Nothing here talks to MLflow or
Ray. Figures are drawn on `matplotlib.figure.Figure` objects rendered by the Agg canvas,
without pyplot, so no display is needed and no figure stays registered.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synevo.study.stats import (
    bootstrap_ci,
    compact_letters,
    iqm,
    mean_ci,
    mean_ci_along,
    pairwise_mann_whitney,
)

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
KIND_NAMES = {"sampled": "sampled", "free_assembly": "free assembly"}
"""How the kinds of `agents.csv` read in group names: `"snes: free assembly"`."""
SEEDS_KIND = "seeds"
"""The group kind of a variant without agents: one score per seed, its final return."""
LEVELS = ("seeds (final return)", "agents (pooled over seeds)")
MAX_BRACKETS_GROUPS = 6
"""Above this many groups in a panel, significance brackets would hide the data."""


@dataclass
class TrialRecord:
    """What the report needs of one finished trial.

    Args:
        final_return: mean return of the best genome over the final greedy seeded episodes.
        curve: checkpoint evaluations `(env steps, eval/return_mean)`, sorted by steps.
        agent_scores: scores by agent kind (`"sampled"`, `"free_assembly"`), one per agent:
            its mean return over greedy seeded episodes; empty when the trial scored none.
    """

    name: str
    task: str
    model: str
    label: str
    optimizer: str
    seed: int
    family: str
    final_return: float
    env_steps: float
    eval_env_steps: float
    wall_time: float
    genome_size: int | None = None
    network_size: int | None = None
    compression: float | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)
    agent_scores: dict[str, list[float]] = field(default_factory=dict)
    gym_threshold: float | None = None
    paper_threshold: float | None = None
    run_id: str | None = None
    start_time: float | None = None


def record_from_outcome(outcome: TrialOutcome) -> TrialRecord:
    """The record of an in-memory trial outcome, the same as `experiment_report` reads back."""
    spec, info = outcome.spec, outcome.model_info
    steps, values = _curve(outcome.history, EVAL_KEY)
    return TrialRecord(
        name=spec.name,
        task=spec.task,
        model=spec.model,
        label=spec.label,
        optimizer=spec.optimizer,
        seed=spec.seed,
        family=outcome.family,
        final_return=outcome.final_return,
        env_steps=float(outcome.env_steps),
        eval_env_steps=float(outcome.eval_env_steps),
        wall_time=float(outcome.wall_time),
        genome_size=info.get(GENOME_SIZE_KEY),
        network_size=info.get("model/network_size"),
        compression=info.get("model/compression"),
        curve=list(zip(steps.tolist(), values.tolist(), strict=True)),
        agent_scores={kind: list(scores) for kind, scores in outcome.agent_scores.items()},
        gym_threshold=outcome.gym_threshold,
        paper_threshold=outcome.paper_threshold,
    )


def _as_records(trials: Sequence[TrialRecord | TrialOutcome]) -> list[TrialRecord]:
    return [t if isinstance(t, TrialRecord) else record_from_outcome(t) for t in trials]


def _groups(trials: Sequence[TrialRecord]) -> dict[tuple[str, str], list[TrialRecord]]:
    """Records grouped by (task, label), in first-seen order, each sorted by seed."""
    groups: dict[tuple[str, str], list[TrialRecord]] = {}
    for record in trials:
        groups.setdefault((record.task, record.label), []).append(record)
    return {key: sorted(group, key=lambda r: r.seed) for key, group in groups.items()}


def _tasks(trials: Sequence[TrialRecord]) -> list[str]:
    return list(dict.fromkeys(record.task for record in trials))


def _one(key: str, values: Sequence[Any]) -> Any:
    """The value all trials of a group share; the first one, with a warning, if they differ."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        logger.warning("trials of one row disagree on %s: %s; reporting the first", key, distinct)
    return distinct[0]


def _thresholds(group: Sequence[TrialRecord]) -> dict[str, float]:
    """`{"gym": ..., "paper": ...}` of a group of one task, leaving out undefined ones."""
    found = {
        "gym": _one("gym threshold", [r.gym_threshold for r in group]),
        "paper": _one("paper threshold", [r.paper_threshold for r in group]),
    }
    return {source: value for source, value in found.items() if value is not None}


def _solved(scores: np.ndarray, thresholds: Mapping[str, float]) -> dict[str, float]:
    """Fraction of `scores (n,)` at or past each threshold; the column names carry it."""
    return {
        f"solved ({source} >= {value:g})": float(np.mean(scores >= value))
        for source, value in thresholds.items()
    }


# Tables
def results_table(trials: Sequence[TrialRecord | TrialOutcome]) -> list[dict[str, Any]]:
    """One row per (task, label), aggregated over seeds, rows in first-seen order.

    Columns: task, label, model, optimizer, family, seeds; over the seeds' final returns the
    mean with its Student-t 95% interval (`stats.mean_ci`, "t 95% CI low/high") and its
    percentile bootstrap 95% interval (`stats.bootstrap_ci`, seed 0, "bootstrap 95% CI
    low/high"), and the interquartile mean (`stats.iqm`); the fraction past gymnasium's
    threshold (`"solved (gym >= 475)"`) and the paper's (`"solved (paper >= 195)"`; left out
    when the task has none) over the sampled agents of every seed when every seed has some,
    else over the seeds' final returns, `"solved over"` saying which; mean training and
    evaluation env steps, mean wall time, the searched-vector size, the network size and the
    compression (network / searched).
    """
    rows = []
    for (task, label), group in _groups(_as_records(trials)).items():
        finals = np.array([r.final_return for r in group])
        mean, low, high = mean_ci(finals)
        _, boot_low, boot_high = bootstrap_ci(finals)
        row: dict[str, Any] = {
            "task": task,
            "label": label,
            "model": _one("model", [r.model for r in group]),
            "optimizer": _one("optimizer", [r.optimizer for r in group]),
            "family": _one("family", [r.family for r in group]),
            "seeds": len(group),
            "final return mean": mean,
            "final return IQM": iqm(finals),
            "t 95% CI low": low,
            "t 95% CI high": high,
            "bootstrap 95% CI low": boot_low,
            "bootstrap 95% CI high": boot_high,
        }
        sampled = [r.agent_scores.get("sampled", []) for r in group]
        if all(sampled):
            row["solved over"] = f"{sum(map(len, sampled))} sampled agents"
            row.update(_solved(np.concatenate(sampled), _thresholds(group)))
        else:
            if any(sampled):
                logger.warning("%s on %s: not every seed has sampled agents", label, task)
            row["solved over"] = f"{len(group)} seeds"
            row.update(_solved(finals, _thresholds(group)))
        row["env steps mean"] = float(np.mean([r.env_steps for r in group]))
        row["eval env steps mean"] = float(np.mean([r.eval_env_steps for r in group]))
        row["wall time s mean"] = float(np.mean([r.wall_time for r in group]))
        row["genome size"] = _one("genome size", [r.genome_size for r in group])
        row["network size"] = _one("network size", [r.network_size for r in group])
        row["compression"] = _one("compression", [r.compression for r in group])
        rows.append(row)
    return rows


def score_groups(trials: Sequence[TrialRecord | TrialOutcome]) -> dict[str, dict[str, Any]]:
    """The agent scores of each task by group, as the scores figure and agent tests use them.

    A variant whose trials scored agents gives one group per kind, pooled over seeds
    (`"snes: sampled"`, `"snes: free assembly"`); a variant without agents gives one group of
    its seeds' final returns (`"mlp: seeds"`), each seed standing for one agent.

    Returns:
        `{task: {group: (label, kind, seeds, scores (n,))}}` in first-seen order.
    """
    out: dict[str, dict[str, Any]] = {}
    for (task, label), group in _groups(_as_records(trials)).items():
        kinds = list(dict.fromkeys(kind for r in group for kind in r.agent_scores))
        groups = out.setdefault(task, {})
        if not kinds:
            finals = np.array([r.final_return for r in group])
            groups[f"{label}: {SEEDS_KIND}"] = (label, SEEDS_KIND, len(group), finals)
        for kind in kinds:
            scores = np.concatenate([r.agent_scores.get(kind, []) for r in group])
            seeds = sum(kind in r.agent_scores for r in group)
            name = f"{label}: {KIND_NAMES.get(kind, kind)}"
            groups[name] = (label, kind, seeds, scores)
    return out


def scores_table(trials: Sequence[TrialRecord | TrialOutcome]) -> list[dict[str, Any]]:
    """One row per task and score group (`score_groups`): the distribution of agent scores.

    Columns: task, group, label, kind, seeds, agents, score mean, IQM, bootstrap 95% CI of
    the mean (seed 0), and the fraction of agents past each threshold.
    """
    records = _as_records(trials)
    rows = []
    for task, groups in score_groups(records).items():
        thresholds = _thresholds(_task_records(records, task))
        for name, (label, kind, seeds, scores) in groups.items():
            _, low, high = bootstrap_ci(scores)
            row = {"task": task, "group": name, "label": label, "kind": kind, "seeds": seeds}
            row |= {"agents": scores.size, "score mean": float(scores.mean())}
            row |= {"score IQM": iqm(scores), "bootstrap 95% CI low": low}
            row |= {"bootstrap 95% CI high": high, **_solved(scores, thresholds)}
            rows.append(row)
    return rows


def comparison_table(
    trials: Sequence[TrialRecord | TrialOutcome], alternative: str = "two-sided"
) -> list[dict[str, Any]]:
    """Pairwise Mann-Whitney U tests within each task, at two levels, Bonferroni per level.

    `"seeds (final return)"`: between the labels, one value per seed, the test that holds
    with few agents per genome; `"agents (pooled over seeds)"`: between the `score_groups`,
    the paper's protocol, present only for tasks where some variant scored agents. One row
    per task, level and pair (`stats.pairwise_mann_whitney`): `"task"`, `"level"`, `"a"`,
    `"b"`, `"n a"`, `"n b"`, `"U"`, `"p"`, `"p Bonferroni"` (the family is one task's
    pairs at one level), `"P(a > b)"` (probability of improvement) and `"significant"`.
    """
    records = _as_records(trials)
    seeds: dict[str, dict[str, list[float]]] = {}
    for (task, label), group in _groups(records).items():
        seeds.setdefault(task, {})[label] = [r.final_return for r in group]
    agents = score_groups(records)

    rows = []
    for task in _tasks(records):
        levels = [(LEVELS[0], seeds[task])]
        if any(kind != SEEDS_KIND for _, kind, _, _ in agents[task].values()):
            levels.append((LEVELS[1], {k: g[3] for k, g in agents[task].items()}))
        for level, groups in levels:
            for pair in pairwise_mann_whitney(groups, alternative=alternative):
                rows.append({"task": task, "level": level, **pair})
    return rows


# Rendering
def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        if value != 0.0 and abs(value) < 0.1:
            return f"{value:.3g}"  # p-values keep their digits
        if not math.isfinite(value) or abs(value) < 1000:
            return f"{value:.2f}"
        return f"{value:,.0f}"
    return str(value)


def _merge_intervals(columns: list[str]) -> list[str]:
    """`"X low"`, `"X high"` column pairs shown as one `"X"` column in markdown."""
    return [
        c[: -len(" low")] if c.endswith(" low") and c[: -len("low")] + "high" in columns else c
        for c in columns
        if not (c.endswith(" high") and c[: -len("high")] + "low" in columns)
    ]


def _markdown_cell(row: Mapping[str, Any], column: str) -> str:
    if column in row or f"{column} low" not in row:
        return _cell(row.get(column))
    return f"[{_cell(row[column + ' low'])}, {_cell(row[column + ' high'])}]"


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as markdown: one table per task, under a `### <task>` heading.

    A pair of columns `"X low"`, `"X high"` shows as one column `"X"` holding `[low, high]`.
    """
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_task.setdefault(str(row["task"]), []).append(row)

    blocks = []
    for task, task_rows in by_task.items():
        columns = _merge_intervals([c for c in _columns(task_rows) if c != "task"])
        lines = [f"### {task}", "", "| " + " | ".join(columns) + " |"]
        lines.append("|" + "|".join("---" for _ in columns) + "|")
        for row in task_rows:
            lines.append("| " + " | ".join(_markdown_cell(row, c) for c in columns) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def table_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table as CSV over the union of the rows' columns (blank where a row has none)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# Figures
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
    curves: Sequence[tuple[np.ndarray, np.ndarray]],
    points: int = GRID_POINTS,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds of curves interpolated on a common grid of env steps, with its t CI.

    The grid spans only the steps every seed covers (no extrapolation). Curves are
    `(steps (n,), values (n,))` pairs; empty ones are ignored. The band is the Student-t
    interval of the mean at each grid point (`stats.mean_ci_along`).

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
    return grid, *mean_ci_along(values, confidence)


def _draw_thresholds(ax: Axes, thresholds: Mapping[str, float]) -> None:
    """Dashed threshold lines, named as ticks of a right-hand axis (outside the data)."""
    gym, paper = thresholds.get("gym"), thresholds.get("paper")
    if gym is not None and gym == paper:
        lines = [("gym = paper", gym, "black")]
    else:
        lines = [("gym", gym, "black"), ("paper", paper, "grey")]
    lines = [(source, value, color) for source, value, color in lines if value is not None]
    for source, value, color in lines:
        ax.axhline(value, color=color, linestyle="--", linewidth=1, label=f"{source} ({value:g})")
    if lines:
        names = ax.secondary_yaxis("right")
        names.set_yticks([v for _, v, _ in lines], [f"{s} {v:g}" for s, v, _ in lines])
        for label, (_, _, color) in zip(names.get_yticklabels(), lines, strict=True):
            label.set_color(color)
            label.set_fontsize("small")


def _new_figure(panels: int, width: float = 6.0) -> tuple[Figure, list[Axes]]:
    """A figure with `panels` axes of `width` inches, at most two per row."""
    from matplotlib.figure import Figure

    ncols = min(panels, 2)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(width * ncols, 4.0 * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, index + 1) for index in range(panels)]
    return fig, axes


def _save(fig: Figure, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    logger.debug("wrote %s", path)


def plot_learning_curves(
    trials: Sequence[TrialRecord | TrialOutcome], path: str | os.PathLike
) -> Figure:
    """Checkpoint evaluation return against env steps: one panel per task, one curve per label.

    Each curve is the mean over seeds of `eval/return_mean`, interpolated on the steps all
    seeds cover, with its 95% Student-t band (`seed_band`); a label keeps its colour across
    panels and the legend sits under the panels. Thresholds are dashed lines named at the
    right edge. Saved as PNG to `path`; the figure is returned.

    Raises:
        ValueError: for no trials.
    """
    records = _as_records(trials)
    if not records:
        raise ValueError("trials must hold at least one trial, got none")
    groups = _groups(records)
    colors = _label_colors(records)
    fig, axes = _new_figure(len(_tasks(records)))

    handles = {}
    for task, ax in zip(_tasks(records), axes, strict=True):
        for (group_task, label), group in groups.items():
            if group_task != task:
                continue
            curves = [_curve_arrays(record) for record in group]
            if not any(steps.size for steps, _ in curves):
                logger.warning("no %s in the trials of %s on %s", EVAL_KEY, label, task)
                continue
            grid, mean, low, high = seed_band(curves)
            marker = "o" if grid.size == 1 else None
            (handles[label],) = ax.plot(grid, mean, color=colors[label], marker=marker, label=label)
            ax.fill_between(grid, low, high, color=colors[label], alpha=0.2, linewidth=0)
        _draw_thresholds(ax, _thresholds(_task_records(records, task)))
        ax.set_title(task)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return (episode sum)")

    fig.suptitle("Mean over seeds, band: 95% t interval", fontsize="medium")
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=6)
    _save(fig, path)
    return fig


def _label_colors(records: Sequence[TrialRecord]) -> dict[str, str]:
    """A colour per label, the same in every panel and figure."""
    labels = dict.fromkeys(record.label for record in records)
    return {label: f"C{index % 10}" for index, label in enumerate(labels)}


def _curve_arrays(record: TrialRecord) -> tuple[np.ndarray, np.ndarray]:
    """The record's curve as `(steps (n,), values (n,))`."""
    steps = np.array([step for step, _ in record.curve], dtype=np.float64)
    values = np.array([value for _, value in record.curve], dtype=np.float64)
    return steps, values


def _task_records(records: Sequence[TrialRecord], task: str) -> list[TrialRecord]:
    return [record for record in records if record.task == task]


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*"


def _bracket_levels(pairs: Sequence[tuple[int, int]]) -> list[int]:
    """A stacking level per `(left, right)` bracket: the lowest one free over its span."""
    taken: list[list[tuple[int, int]]] = []
    levels = []
    for a, b in pairs:
        level = next(
            (i for i, spans in enumerate(taken) if all(b < lo or a > hi for lo, hi in spans)),
            len(taken),
        )
        if level == len(taken):
            taken.append([])
        taken[level].append((a, b))
        levels.append(level)
    return levels


def _draw_brackets(ax: Axes, groups: Mapping[str, np.ndarray]) -> None:
    """Brackets with stars over the pairs a Bonferroni-corrected Mann-Whitney U test separates."""
    if len(groups) < 2:
        return
    pairs = [row for row in pairwise_mann_whitney(groups) if row["significant"]]
    if len(groups) > MAX_BRACKETS_GROUPS:
        _draw_letters(ax, groups, pairs)
        return
    position = {name: index + 1 for index, name in enumerate(groups)}
    pairs.sort(key=lambda row: position[row["b"]] - position[row["a"]])
    spans = [(position[row["a"]], position[row["b"]]) for row in pairs]
    top = max(float(np.max(scores)) for scores in groups.values())
    height = top - min(float(np.min(scores)) for scores in groups.values()) or 1.0

    levels = _bracket_levels(spans)
    for row, (a, b), level in zip(pairs, spans, levels, strict=True):
        y = top + height * (0.08 + 0.14 * level)
        tick = height * 0.02
        ax.plot([a, a, b, b], [y - tick, y, y, y - tick], color="black", linewidth=0.8)
        ax.text((a + b) / 2, y, _stars(row["p Bonferroni"]), ha="center", va="bottom")
    if levels:
        ax.set_ylim(top=top + height * (0.2 + 0.14 * max(levels)))


def _draw_letters(
    ax: Axes, groups: Mapping[str, np.ndarray], different: Sequence[Mapping[str, Any]]
) -> None:
    """A compact letter display over the groups: those sharing a letter do not differ."""
    letters = compact_letters(list(groups), [(row["a"], row["b"]) for row in different])
    top = max(float(np.max(scores)) for scores in groups.values())
    height = top - min(float(np.min(scores)) for scores in groups.values()) or 1.0
    for x, name in enumerate(groups, start=1):
        ax.text(x, top + 0.06 * height, letters[name], ha="center", va="bottom")
    ax.set_ylim(top=top + 0.18 * height)


def plot_scores(trials: Sequence[TrialRecord | TrialOutcome], path: str | os.PathLike) -> Figure:
    """Agent scores per task: a box and the jittered points of every `score_groups` group.

    Significant pairs (Mann-Whitney U over the group's agents, Bonferroni within the panel)
    are bracketed: * p < 0.05, ** p < 0.01, *** p < 0.001; panels of more than
    `MAX_BRACKETS_GROUPS` groups carry a compact letter display instead (groups sharing a
    letter are not significantly different). Saved as PNG to `path`.

    Raises:
        ValueError: for no trials.
    """
    records = _as_records(trials)
    if not records:
        raise ValueError("trials must hold at least one trial, got none")
    by_task = score_groups(records)
    most = max(len(groups) for groups in by_task.values())
    fig, axes = _new_figure(len(by_task), width=max(5.0, 1.1 * most + 2.0))
    colors = _label_colors(records)
    jitter = np.random.default_rng(0)

    for (task, groups), ax in zip(by_task.items(), axes, strict=True):
        scores = {name: group[3] for name, group in groups.items()}
        positions = np.arange(1, len(scores) + 1)
        box = {"widths": 0.5, "showfliers": False, "medianprops": {"color": "black"}}
        ax.boxplot(list(scores.values()), positions=positions, **box)
        for x, (label, _, _, values) in zip(positions, groups.values(), strict=True):
            xs = x + jitter.uniform(-0.15, 0.15, values.size)
            ax.scatter(xs, values, s=8, alpha=0.5, color=colors[label], linewidths=0)
        ticks = [f"{name}\n(n={values.size})" for name, values in scores.items()]
        ax.set_xticks(positions, ticks, rotation=30, ha="right", fontsize="small")
        _draw_thresholds(ax, _thresholds(_task_records(records, task)))
        _draw_brackets(ax, scores)
        ax.set_title(task)
        ax.set_ylabel("agent score (mean greedy return)")

    fig.suptitle(
        "Agent scores (a 'seeds' group: one final return per seed)\n"
        "Mann-Whitney U, Bonferroni per task: * p<0.05  ** p<0.01  *** p<0.001; "
        f"over {MAX_BRACKETS_GROUPS} groups, groups sharing a letter do not differ (p>=0.05)",
        fontsize="small",
    )
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
