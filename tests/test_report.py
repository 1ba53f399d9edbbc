"""The results table and plots on hand-made trial outcomes with known aggregates."""

from __future__ import annotations

import csv
import io
import math
import struct

import numpy as np
import pytest
import torch
from scipy import stats

from synevo.study.report import (
    _bracket_levels,
    mean_ci,
    plot_learning_curves,
    plot_scores,
    plot_trial_curve,
    record_from_outcome,
    results_table,
    score_groups,
    scores_table,
    seed_band,
    table_csv,
    table_markdown,
)
from synevo.study.trial import TrialOutcome, TrialSpec

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
THRESHOLDS = {"CartPole-v1": (475.0, 195.0), "MountainCar-v0": (-110.0, -200.0)}


def outcome(
    task: str,
    label: str,
    seed: int,
    final_returns: list[float],
    *,
    family: str = "evolution",
    history: list[dict[str, float]] | None = None,
    agent_scores: dict[str, list[float]] | None = None,
) -> TrialOutcome:
    spec = TrialSpec(
        task=task,
        model="synaptogen",
        model_settings={"genes": 4},
        optimizer=label,
        optimizer_settings={},
        label=label,
        seed=seed,
        budget=1000,
    )
    gym, paper = THRESHOLDS[task]
    return TrialOutcome(
        spec=spec,
        family=family,
        best_genome=torch.zeros(3),
        final_returns=final_returns,
        env_steps=1000 * (seed + 1),
        eval_env_steps=10,
        wall_time=float(seed + 1),
        history=history or [],
        model_info={"model/genome_size": 3724, "model/network_size": 4802},
        gym_threshold=gym,
        paper_threshold=paper,
        agent_scores=agent_scores or {},
    )


def eval_history(steps: list[int], returns: list[float]) -> list[dict[str, float]]:
    """Evaluation rows interleaved with rollout-only rows, as an optimizer reports them."""
    rows = []
    for step, value in zip(steps, returns, strict=True):
        rows.append({"env_steps": float(step), "rollout/return_mean": value / 2})
        rows.append({"env_steps": float(step), "eval/return_mean": value})
    return rows


@pytest.fixture
def outcomes() -> list[TrialOutcome]:
    return [
        outcome(
            "CartPole-v1",
            "snes",
            1,
            [200.0, 190.0],
            history=eval_history([0, 100, 200], [0, 30, 40]),
        ),
        outcome(
            "CartPole-v1",
            "snes",
            0,
            [500.0, 480.0],
            history=eval_history([0, 100, 200], [0, 10, 20]),
        ),
        outcome("CartPole-v1", "snes", 2, [100.0], history=eval_history([0, 50, 250], [0, 5, 25])),
        outcome(
            "CartPole-v1",
            "dqn",
            0,
            [300.0],
            family="gradient",
            history=eval_history([0, 80], [9, 99]),
            agent_scores={"sampled": [480.0, 300.0, 100.0, 490.0], "free_assembly": [5.0, 7.0]},
        ),
        outcome("MountainCar-v0", "snes", 0, [-150.0], history=eval_history([0, 10], [-200, -150])),
        outcome("MountainCar-v0", "snes", 1, [-100.0], history=eval_history([0, 10], [-200, -100])),
    ]


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def test_mean_ci_matches_the_t_interval():
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.302653, s = 1, n = 3
    assert mean == pytest.approx(2.0)
    assert high - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert mean - low == pytest.approx(2.4841, abs=1e-4)

    _, low90, high90 = mean_ci([1.0, 2.0, 3.0], confidence=0.9)
    assert high90 - 2.0 == pytest.approx(2.919986 / math.sqrt(3), rel=1e-6)
    assert low < low90 < high90 < high


def test_mean_ci_edge_cases():
    assert mean_ci([7.5]) == (7.5, 7.5, 7.5)
    assert mean_ci([4.0, 4.0]) == (4.0, 4.0, 4.0)
    with pytest.raises(ValueError, match="at least one"):
        mean_ci([])
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=95)


def test_record_from_outcome(outcomes):
    record = record_from_outcome(outcomes[3])

    assert (record.name, record.task, record.label, record.seed) == (
        "CartPole-v1/dqn/seed0",
        "CartPole-v1",
        "dqn",
        0,
    )
    assert (record.final_return, record.env_steps, record.wall_time) == (300.0, 1000.0, 1.0)
    assert record.curve == [(0.0, 9.0), (80.0, 99.0)]  # eval rows only
    assert record.agent_scores["free_assembly"] == [5.0, 7.0]
    assert (record.genome_size, record.network_size, record.compression) == (3724, 4802, None)


def test_results_table_aggregates_over_seeds(outcomes):
    rows = results_table(outcomes)
    assert [(r["task"], r["label"]) for r in rows] == [
        ("CartPole-v1", "snes"),
        ("CartPole-v1", "dqn"),
        ("MountainCar-v0", "snes"),
    ]
    snes, dqn, car = rows

    finals = [490.0, 195.0, 100.0]
    assert snes["seeds"] == 3
    assert (snes["optimizer"], snes["family"]) == ("snes", "evolution")
    assert snes["final return mean"] == pytest.approx(np.mean(finals))
    assert snes["final return IQM"] == pytest.approx(stats.trim_mean(finals, 0.25))
    assert (snes["t 95% CI low"], snes["t 95% CI high"]) == pytest.approx(mean_ci(finals)[1:])
    assert snes["solved over"] == "3 seeds"
    assert snes["solved (gym >= 475)"] == pytest.approx(1 / 3)
    assert snes["solved (paper >= 195)"] == pytest.approx(2 / 3)  # 195 itself counts
    assert snes["env steps mean"] == 2000.0
    assert snes["wall time s mean"] == 2.0
    assert (snes["genome size"], snes["network size"]) == (3724, 4802)

    assert dqn["family"] == "gradient"
    assert dqn["seeds"] == 1
    assert dqn["t 95% CI low"] == dqn["t 95% CI high"] == 300.0
    assert dqn["solved over"] == "4 sampled agents"  # not the seed's final return
    assert dqn["solved (gym >= 475)"] == 0.5 and dqn["solved (paper >= 195)"] == 0.75

    assert car["solved (gym >= -110)"] == 0.5
    assert car["solved (paper >= -200)"] == 1.0
    assert "solved (gym >= 475)" not in car


def test_score_groups_one_group_per_agent_kind(outcomes):
    groups = score_groups(outcomes)

    assert list(groups["CartPole-v1"]) == ["snes: seeds", "dqn: sampled", "dqn: free assembly"]
    label, kind, seeds, scores = groups["CartPole-v1"]["snes: seeds"]
    assert (label, kind, seeds) == ("snes", "seeds", 3)
    np.testing.assert_allclose(scores, [490.0, 195.0, 100.0])  # seed order
    assert groups["CartPole-v1"]["dqn: free assembly"][3].tolist() == [5.0, 7.0]

    rows = scores_table(outcomes)
    free = next(r for r in rows if r["group"] == "dqn: free assembly")
    assert (free["agents"], free["score mean"], free["solved (paper >= 195)"]) == (2, 6.0, 0.0)


def test_tables_render_every_row(outcomes):
    rows = results_table(outcomes)

    markdown = table_markdown(rows)
    assert "### CartPole-v1" in markdown and "### MountainCar-v0" in markdown
    assert "| label | model | optimizer | family | seeds | final return mean |" in markdown
    assert "| t 95% CI | bootstrap 95% CI | solved over |" in markdown  # low/high merged
    assert "solved (gym >= 475) | solved (paper >= 195)" in markdown
    assert "| snes | synaptogen | snes | evolution | 3 | 261.67 |" in markdown
    low, high = rows[0]["t 95% CI low"], rows[0]["t 95% CI high"]
    assert f"| [{low:.2f}, {high:.2f}] |" in markdown
    table_lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table_lines) == 2 + 3  # two headers, three rows

    parsed = list(csv.DictReader(io.StringIO(table_csv(rows))))
    assert len(parsed) == 3
    assert float(parsed[0]["final return mean"]) == pytest.approx(rows[0]["final return mean"])
    assert float(parsed[0]["t 95% CI low"]) == pytest.approx(low)
    assert parsed[2]["solved (gym >= -110)"] == "0.5"
    assert parsed[2]["solved (gym >= 475)"] == ""


def test_seed_band_interpolates_on_the_shared_steps():
    curves = [
        (np.array([0.0, 100.0, 200.0]), np.array([0.0, 10.0, 20.0])),
        (np.array([0.0, 100.0, 200.0]), np.array([0.0, 30.0, 40.0])),
        (np.array([0.0, 50.0, 250.0]), np.array([0.0, 5.0, 25.0])),
    ]
    grid, mean, low, high = seed_band(curves, points=5)
    np.testing.assert_allclose(grid, [0, 50, 100, 150, 200])
    # The third seed at step 100 is 5 + 50/200 * 20 = 10, at step 200 it is 20.
    assert mean[2] == pytest.approx((10 + 30 + 10) / 3)
    assert (low[2], high[2]) == pytest.approx(mean_ci([10.0, 30.0, 10.0])[1:])
    assert mean[4] == pytest.approx((20 + 40 + 20) / 3)
    assert low[0] == high[0] == 0.0  # every seed starts at 0: no spread

    grid, mean, _, _ = seed_band([(np.array([5.0]), np.array([3.0])), curves[0]])
    assert grid.tolist() == [5.0] and mean[0] == pytest.approx((3.0 + 0.5) / 2)
    with pytest.raises(ValueError, match="non-empty"):
        seed_band([(np.array([]), np.array([]))])


def test_learning_curves_one_panel_per_task(outcomes, tmp_path):
    path = tmp_path / "plots" / "curves.png"
    fig = plot_learning_curves(outcomes, path)

    width, height = png_size(path)
    assert (width, height) == (1200, 400)  # two 6 x 4 inch panels side by side at 100 dpi
    assert [ax.get_title() for ax in fig.axes] == ["CartPole-v1", "MountainCar-v0"]
    cartpole, car = fig.axes
    assert cartpole.get_xlabel() == "environment steps"
    labels = [line.get_label() for line in cartpole.lines]
    assert labels == ["snes", "dqn", "gym (475)", "paper (195)"]
    x, y = cartpole.lines[0].get_data()
    assert (x[0], x[-1]) == (0.0, 200.0)  # only the steps every seed covers
    assert y[-1] == pytest.approx((20 + 40 + 20) / 3)
    assert cartpole.lines[2].get_linestyle() == "--"
    assert car.lines[0].get_color() == cartpole.lines[0].get_color()  # snes in both panels
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["snes", "dqn"]


def test_scores_plot_marks_significant_pairs(tmp_path):
    rng = np.random.default_rng(0)
    trials = [
        outcome("CartPole-v1", label, 0, [mean], agent_scores={"sampled": scores.tolist()})
        for label, mean in [("snes", 400.0), ("dqn", 100.0), ("gcm", 101.0)]
        for scores in [mean + rng.normal(0.0, 5.0, 20)]
    ]
    fig = plot_scores(trials, tmp_path / "scores.png")

    assert png_size(tmp_path / "scores.png")[0] > 0
    (ax,) = fig.axes
    assert ax.get_title() == "CartPole-v1"
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "snes: sampled\n(n=20)",
        "dqn: sampled\n(n=20)",
        "gcm: sampled\n(n=20)",
    ]
    stars = [t.get_text() for t in ax.texts if set(t.get_text()) == {"*"}]
    assert stars == ["***", "***"]  # snes against each; dqn and gcm overlap
    assert len(ax.collections) == 3  # one strip of points per group


def test_scores_plot_letters_a_crowded_panel(tmp_path):
    rng = np.random.default_rng(1)
    means = [400.0, 402.0, 100.0, 101.0, 250.0, 99.0, 401.0]  # three clusters
    trials = [
        outcome("CartPole-v1", f"v{i}", 0, [m], agent_scores={"sampled": scores.tolist()})
        for i, m in enumerate(means)
        for scores in [m + rng.normal(0.0, 3.0, 30)]
    ]
    fig = plot_scores(trials, tmp_path / "scores.png")

    (ax,) = fig.axes
    letters = [t.get_text() for t in ax.texts if t.get_text().isalpha()]
    assert len(letters) == len(means)
    # the same cluster shares a letter, different clusters none
    assert letters[0] == letters[1] == letters[6]
    assert letters[2] == letters[3] == letters[5]
    assert len({letters[0], letters[2], letters[4]}) == 3
    assert not any(set(t.get_text()) == {"*"} for t in ax.texts)


def test_bracket_levels_stack_only_overlapping_spans():
    assert _bracket_levels([(1, 2), (3, 4), (2, 3), (1, 4)]) == [0, 0, 1, 2]


def test_learning_curves_refuse_no_outcomes(tmp_path):
    with pytest.raises(ValueError, match="trials"):
        plot_learning_curves([], tmp_path / "x.png")


def test_trial_curve(tmp_path):
    history = eval_history([0, 100, 200], [1.0, 5.0, math.nan])
    fig = plot_trial_curve(history, tmp_path / "trial.png", "CartPole-v1/snes/seed0")

    assert png_size(tmp_path / "trial.png")[0] > 0
    (ax,) = fig.axes
    assert ax.get_title() == "CartPole-v1/snes/seed0"
    curves = {line.get_label(): line.get_xydata().tolist() for line in ax.lines}
    assert curves["eval/return_mean"] == [[0.0, 1.0], [100.0, 5.0]]  # NaN dropped
    assert len(curves["rollout/return_mean"]) == 2
