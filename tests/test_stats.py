"""The comparison statistics against hand-computed values and SciPy, and the report's tables
built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from synevo.study.report import comparison_table, results_table, table_csv, table_markdown
from synevo.study.stats import (
    bootstrap_ci,
    iqm,
    mean_ci,
    mean_ci_along,
    pairwise_mann_whitney,
    probability_of_improvement,
)
from synevo.study.trial import TrialOutcome, TrialSpec


def test_mean_ci_along_matches_the_t_interval_column_by_column():
    values = np.array([[1.0, 5.0, 2.0], [2.0, 5.0, 4.0], [3.0, 5.0, 9.0]])
    mean, low, high = mean_ci_along(values)

    np.testing.assert_allclose(mean, values.mean(axis=0))
    for column in range(3):
        x = values[:, column]
        if x.std() > 0:
            expected = stats.t.interval(0.95, 2, loc=x.mean(), scale=stats.sem(x))
            assert (low[column], high[column]) == pytest.approx(expected)
    assert low[1] == high[1] == 5.0  # a constant column has no spread
    assert mean_ci([1.0, 2.0, 3.0]) == pytest.approx((mean[0], low[0], high[0]))
    with pytest.raises(ValueError, match="shape"):
        mean_ci_along(np.ones(3))


def test_iqm_by_hand():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([9, 1, 8, 2, 7, 3, 6, 4, 5]) == pytest.approx(5.0)  # 2 cut each end of 9
    assert iqm([1.0, 2.0, 3.0, 1000.0]) == pytest.approx(2.5)  # the outlier is cut
    assert iqm([7.0]) == 7.0

    rows = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [8, 8, 8, 8, 0, 0, 0, 0]], dtype=float)
    np.testing.assert_allclose(iqm(rows, axis=1), [4.5, 4.0])
    with pytest.raises(ValueError, match="at least one"):
        iqm([])


def test_bootstrap_ci_contains_the_mean_and_is_reproducible():
    values = np.random.default_rng(1).normal(10.0, 2.0, size=12)
    mean, low, high = bootstrap_ci(values)

    assert mean == pytest.approx(values.mean())
    assert low < mean < high
    assert bootstrap_ci(values, seed=0) == (mean, low, high)
    assert bootstrap_ci(values, seed=1) != (mean, low, high)
    _, low90, high90 = bootstrap_ci(values, confidence=0.9)
    assert low < low90 < high90 < high


def test_bootstrap_ci_narrows_with_more_data_like_the_normal_interval():
    rng = np.random.default_rng(2)
    few, many = rng.normal(0.0, 1.0, size=10), rng.normal(0.0, 1.0, size=400)
    _, few_low, few_high = bootstrap_ci(few)
    mean, low, high = bootstrap_ci(many)

    assert high - low < (few_high - few_low) / 3
    # Percentile bootstrap of a mean: about 1.96 * s / sqrt(n) on each side for large n.
    half = 1.96 * many.std(ddof=0) / math.sqrt(many.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)


def test_bootstrap_ci_degenerate_samples():
    assert bootstrap_ci([3.5]) == (3.5, 3.5, 3.5)
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert bootstrap_ci([4.0, 4.0], statistic=iqm) == (4.0, 4.0, 4.0)

    # Tied seeds make BCa undefined (NaN); the percentile interval stays finite.
    estimate, low, high = bootstrap_ci([500.0, 500.0, 500.0, 500.0, 120.0], statistic=iqm)
    assert estimate == 500.0
    assert math.isfinite(low) and low < estimate <= high == 500.0

    for bad, match in [([], "non-empty"), ([1.0, math.nan], "finite")]:
        with pytest.raises(ValueError, match=match):
            bootstrap_ci(bad)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_ci([1.0, 2.0], resamples=0)


def test_probability_of_improvement_by_hand():
    assert probability_of_improvement([1, 2], [0, 3]) == 0.5  # 2 wins of 4 pairs
    assert probability_of_improvement([1, 1], [1, 1]) == 0.5  # all ties
    assert probability_of_improvement([2], [1, 2]) == 0.75  # one win, one tie
    assert probability_of_improvement([5, 6], [1, 2, 3]) == 1.0
    assert probability_of_improvement([1, 2, 3], [5, 6]) == 0.0
    with pytest.raises(ValueError, match="y must be a non-empty"):
        probability_of_improvement([1.0], [])


def test_probability_of_improvement_is_the_normalized_mann_whitney_u():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 6, size=9), rng.integers(1, 7, size=13)  # many ties
    u = stats.mannwhitneyu(x, y).statistic

    assert probability_of_improvement(x, y) == pytest.approx(u / (9 * 13))
    assert probability_of_improvement(x, y) + probability_of_improvement(y, x) == pytest.approx(1)


@pytest.fixture
def groups() -> dict[str, list[float]]:
    rng = np.random.default_rng(4)
    low = rng.normal(0.0, 1.0, size=10).tolist()
    return {
        "low": low,
        "high": rng.normal(100.0, 1.0, size=10).tolist(),
        "copy": list(low),
        "mixed": rng.normal(0.5, 1.0, size=7).tolist(),
    }


def test_pairwise_mann_whitney_matches_scipy_with_bonferroni(groups):
    rows = pairwise_mann_whitney(groups)

    assert [(r["a"], r["b"]) for r in rows] == [
        ("low", "high"),
        ("low", "copy"),
        ("low", "mixed"),
        ("high", "copy"),
        ("high", "mixed"),
        ("copy", "mixed"),
    ]
    for row in rows:
        a, b = groups[row["a"]], groups[row["b"]]
        test = stats.mannwhitneyu(a, b)
        assert (row["n a"], row["n b"]) == (len(a), len(b))
        assert row["U"] == test.statistic
        assert row["p"] == pytest.approx(test.pvalue)
        assert row["p Bonferroni"] == pytest.approx(min(1.0, 6 * test.pvalue))
        assert row["P(a > b)"] == pytest.approx(row["U"] / (len(a) * len(b)))
        assert row["significant"] == (row["p Bonferroni"] < 0.05)

    by_pair = {(r["a"], r["b"]): r for r in rows}
    separated, identical = by_pair["low", "high"], by_pair["low", "copy"]
    assert separated["significant"] and separated["P(a > b)"] == 0.0
    assert 6 * separated["p"] < 0.05
    assert not identical["significant"]
    assert identical["p"] == 1.0 and identical["P(a > b)"] == 0.5


def test_pairwise_mann_whitney_edge_cases(groups):
    assert pairwise_mann_whitney({"only": [1.0, 2.0]}) == []
    # Three against three seeds: the best two-sided exact p is 2 / C(6, 3) = 0.1.
    (row,) = pairwise_mann_whitney({"a": [4.0, 5.0, 6.0], "b": [1.0, 2.0, 3.0]})
    assert row["p"] == pytest.approx(0.1) and not row["significant"]

    one_sided = pairwise_mann_whitney(
        {"high": groups["high"], "low": groups["low"]}, alternative="greater"
    )
    assert one_sided[0]["p"] < 0.05 and one_sided[0]["P(a > b)"] == 1.0
    with pytest.raises(ValueError, match="alternative"):
        pairwise_mann_whitney(groups, alternative="bigger")
    with pytest.raises(ValueError, match="alpha"):
        pairwise_mann_whitney(groups, alpha=5.0)
    with pytest.raises(ValueError, match="groups\\['empty'\\]"):
        pairwise_mann_whitney({"a": [1.0], "empty": []})


def outcome(task: str, label: str, seed: int, final_return: float) -> TrialOutcome:
    spec = TrialSpec(
        task=task,
        model="synaptogen",
        model_settings={},
        optimizer=label,
        optimizer_settings={},
        label=label,
        seed=seed,
        budget=100,
    )
    return TrialOutcome(
        spec=spec,
        family="evolution",
        best_genome=torch.zeros(2),
        final_returns=[final_return],
        env_steps=100,
        eval_env_steps=10,
        wall_time=1.0,
        gym_threshold=475.0,
        paper_threshold=195.0,
    )


@pytest.fixture
def outcomes() -> list[TrialOutcome]:
    finals = {
        "snes": [500.0, 480.0, 470.0, 500.0, 490.0, 500.0, 460.0, 500.0, 495.0, 485.0],
        "dqn": [100.0, 150.0, 120.0, 90.0, 200.0, 110.0, 130.0, 140.0, 95.0, 105.0],
        "mlp": [100.0, 150.0, 120.0, 90.0, 200.0, 110.0, 130.0, 140.0, 95.0, 105.0],
    }
    trials = [
        outcome("CartPole-v1", label, seed, value)
        for label, values in finals.items()
        for seed, value in enumerate(values)
    ]
    return trials + [outcome("Acrobot-v1", "snes", 0, -90.0)]


def test_results_table_adds_iqm_and_bootstrap_columns(outcomes):
    snes, _, _, acrobot = results_table(outcomes)
    finals = [o.final_return for o in outcomes[:10]]

    assert snes["final return IQM"] == pytest.approx(iqm(finals))
    assert snes["final return IQM"] == pytest.approx(np.mean([480, 485, 490, 495, 500, 500]))
    boot = (snes["bootstrap 95% CI low"], snes["bootstrap 95% CI high"])
    assert boot == bootstrap_ci(finals)[1:]
    assert boot[0] < snes["final return mean"] < boot[1]
    assert acrobot["bootstrap 95% CI low"] == acrobot["bootstrap 95% CI high"] == -90.0


def test_comparison_table_tests_the_labels_of_each_task(outcomes):
    rows = comparison_table(outcomes)

    assert [(r["task"], r["a"], r["b"]) for r in rows] == [
        ("CartPole-v1", "snes", "dqn"),
        ("CartPole-v1", "snes", "mlp"),
        ("CartPole-v1", "dqn", "mlp"),
    ]  # Acrobot has one label: nothing to compare
    snes_dqn, _, dqn_mlp = rows
    assert snes_dqn["significant"] and snes_dqn["P(a > b)"] == 1.0
    assert snes_dqn["p Bonferroni"] == pytest.approx(3 * snes_dqn["p"])
    assert not dqn_mlp["significant"] and dqn_mlp["P(a > b)"] == 0.5

    assert {r["level"] for r in rows} == {"seeds (final return)"}  # no agents: one level

    markdown = table_markdown(rows)
    assert "### CartPole-v1" in markdown and "Acrobot" not in markdown
    header = "| level | a | b | n a | n b | U | p | p Bonferroni | P(a > b) | significant |"
    assert header in markdown
    assert "| seeds (final return) | snes | dqn | 10 | 10 | 100.00 | " in markdown
    assert f"| {snes_dqn['p']:.3g} | " in markdown  # small p-values keep their digits
    assert "| dqn | mlp | 10 | 10 | 50.00 | 1.00 | 1.00 | 0.50 | no |" in markdown
    assert table_csv(rows).splitlines()[0].startswith("task,level,a,b,n a,n b,U,p,")


def test_comparison_table_adds_the_agent_level(outcomes):
    outcomes[0].agent_scores = {"sampled": [500.0, 490.0, 480.0], "free_assembly": [9.0, 8.0]}
    rows = comparison_table(outcomes)

    pooled = [r for r in rows if r["level"] == "agents (pooled over seeds)"]
    groups = ["snes: sampled", "snes: free assembly", "dqn: seeds", "mlp: seeds"]
    assert [(r["a"], r["b"]) for r in pooled[:3]] == [(groups[0], g) for g in groups[1:]]
    (free_dqn,) = [r for r in pooled if r["a"] == groups[1] and r["b"] == groups[2]]
    expected = stats.mannwhitneyu([9.0, 8.0], [o.final_return for o in outcomes[10:20]])
    assert (free_dqn["n a"], free_dqn["n b"]) == (2, 10)
    assert free_dqn["p Bonferroni"] == pytest.approx(min(1.0, 6 * expected.pvalue))
    assert len(rows) == 3 + 6  # the seed level keeps its 3 pairs


# -- compact letter display -------------------------------------------------------------------


def test_compact_letters_of_known_cases():
    from synevo.study.stats import compact_letters

    assert compact_letters(["a", "b", "c"], []) == {"a": "a", "b": "a", "c": "a"}
    assert compact_letters(["a", "b", "c"], [("a", "b")]) == {"a": "a", "b": "b", "c": "ab"}
    every = [("x", "y"), ("x", "z"), ("y", "z")]
    assert compact_letters(["x", "y", "z"], every) == {"x": "a", "y": "b", "z": "c"}
    # a chain: 1 differs from 3 and 4, 2 from 4
    letters = compact_letters(["1", "2", "3", "4"], [("1", "3"), ("1", "4"), ("2", "4")])
    assert letters == {"1": "a", "2": "ab", "3": "bc", "4": "c"}


def test_compact_letters_share_a_letter_exactly_when_not_different():
    from synevo.study.stats import compact_letters

    rng = np.random.default_rng(3)
    names = [f"g{i}" for i in range(7)]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    for _ in range(30):
        different = [pair for pair in pairs if rng.random() < 0.4]
        letters = compact_letters(names, different)
        for a, b in pairs:
            shares = bool(set(letters[a]) & set(letters[b]))
            assert shares == ((a, b) not in different), (a, b, letters)
    with pytest.raises(ValueError, match="names groups"):
        compact_letters(["a"], [("a", "q")])
