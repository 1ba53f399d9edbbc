"""The statistics of a comparison over seeds: Student-t and bootstrap confidence intervals,
interquartile mean, probability of improvement and Bonferroni-corrected pairwise Mann-Whitney U
tests.

Pure functions of 1-D samples (one value per seed or per agent), built on `scipy.stats`.
Conventions follow Agarwal et al. 2021 ("Deep RL at the edge of the statistical precipice",
arXiv 2108.13264) for the IQM, the percentile bootstrap and the probability of improvement,
and the SynaptoGen paper's protocol (pairwise Mann-Whitney U tests, Bonferroni-corrected).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

logger = logging.getLogger(__name__)

ALTERNATIVES = ("two-sided", "less", "greater")


def _sample(values: ArrayLike, name: str) -> np.ndarray:
    """`values` as a non-empty, finite float64 vector `(n,)`.

    Raises:
        ValueError: for a sample that is empty, not 1-D or holds NaN or infinity.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sample, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must hold finite values only, got {x.tolist()}")
    return x


def mean_ci(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval `(mean, low, high)` of independent samples.

    The half-width is `t_{(1+confidence)/2, n-1} * s / sqrt(n)` with `s` the sample standard
    deviation (ddof=1). A single value has no spread to estimate: `low = high = mean`.

    Raises:
        ValueError: for no values or a confidence outside (0, 1).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("values must hold at least one value, got none")
    mean, low, high = mean_ci_along(x[:, None], confidence)
    return float(mean[0]), float(low[0]), float(high[0])


def mean_ci_along(
    values: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`mean_ci` of every column of `values (n, points)` at once: three arrays `(points,)`.

    The half-width is `scipy.stats.t.ppf` times `scipy.stats.sem`; with one row, or a
    constant column, the interval collapses onto the mean.

    Raises:
        ValueError: for an array that is not 2-D with at least one row, or a confidence
            outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"values must be (n, points) with n >= 1, got shape {x.shape}")
    mean = x.mean(axis=0)
    if x.shape[0] == 1:
        return mean, mean.copy(), mean.copy()
    half = stats.t.ppf((1.0 + confidence) / 2.0, x.shape[0] - 1) * stats.sem(x, axis=0)
    return mean, mean - half, mean + half


def iqm(values: ArrayLike, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean: the mean of the values left after cutting 25% from each end.

    `scipy.stats.trim_mean(values, 0.25)`: `floor(n / 4)` values are cut from each end, so
    IQM([1, ..., 8]) = mean(3, 4, 5, 6) = 4.5. With `axis=None` (the default) the values are
    flattened and a float is returned; with an axis, an array of IQMs along that axis, which
    lets `scipy.stats.bootstrap` evaluate all resamples at once.

    Raises:
        ValueError: for no values.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("values must hold at least one value, got none")
    result = stats.trim_mean(x, 0.25, axis=axis)
    return float(result) if axis is None else result


def bootstrap_ci(
    values: ArrayLike,
    statistic: Callable[..., Any] = np.mean,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """A statistic of a sample and its percentile bootstrap interval `(estimate, low, high)`.

    `scipy.stats.bootstrap` with `method="percentile"`: the interval is the
    `(1 -/+ confidence) / 2` quantiles of the statistic over `resamples` resamples drawn with
    replacement, from a generator seeded with `seed` (same seed, same interval). Percentile
    rather than BCa because BCa's acceleration is a jackknife over leave-one-out samples: with
    a few seeds and tied returns (several CartPole seeds at 500) the leave-one-out IQMs are all
    equal and BCa returns NaN; the percentile interval is always defined, and is the one used
    by Agarwal et al. 2021. Like every bootstrap it is too narrow for a handful of seeds
    (it knows nothing of the t distribution), so small studies should read `mean_ci` too.

    `statistic` maps a sample `(n,)` to a number; one that takes an `axis` keyword (numpy
    reductions, `iqm`) is evaluated on all resamples at once.

    Degenerate samples have no spread to resample: a single value, or a constant sample,
    gives `low = high = estimate` without resampling.

    Raises:
        ValueError: for an empty or non-finite sample, a confidence outside (0, 1) or fewer
            than one resample.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    x = _sample(values, "values")
    estimate = float(statistic(x))
    if x.size == 1 or (x == x[0]).all():
        return estimate, estimate, estimate

    result = stats.bootstrap(
        (x,),
        statistic,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return estimate, float(interval.low), float(interval.high)


def probability_of_improvement(x: ArrayLike, y: ArrayLike) -> float:
    """P(X > Y) + 0.5 P(X = Y) over all pairs of a value of `x` and a value of `y`.

    Counted pair by pair (an `(n_x, n_y)` comparison), it equals the Mann-Whitney statistic
    `U_x / (n_x n_y)` of `scipy.stats.mannwhitneyu(x, y)`: 1 when every x beats every y,
    0.5 for identical samples.

    Raises:
        ValueError: for an empty or non-finite sample.
    """
    a = _sample(x, "x")[:, None]
    b = _sample(y, "y")[None, :]
    return float(np.mean(a > b) + 0.5 * np.mean(a == b))


def pairwise_mann_whitney(
    groups: Mapping[str, Sequence[float]],
    alternative: str = "two-sided",
    alpha: float = 0.05,
) -> list[dict[str, Any]]:
    """A Mann-Whitney U test between every pair of groups, Bonferroni-corrected.

    Pairs `(a, b)` come in the groups' order (`itertools.combinations`); each row holds
    `"a"`, `"b"`, their sizes `"n a"`, `"n b"`, `"U"` (the statistic of `a`, as
    `scipy.stats.mannwhitneyu(a, b)` returns it, with its default `method="auto"`: exact for
    small samples without ties, normal approximation otherwise), `"p"`, `"p Bonferroni"` =
    `min(1, p * m)` with `m` the number of pairs (Bonferroni is this multiplication; SciPy's
    `false_discovery_control` is Benjamini-Hochberg, which controls a different error rate),
    `"P(a > b)"` (`probability_of_improvement`, the effect size, = `U / (n_a n_b)`) and
    `"significant"` (`p Bonferroni < alpha`). With `alternative="greater"` the test is
    whether `a` tends to exceed `b`.

    Few seeds cannot reach significance: 3 against 3 gives at best p = 0.1 two-sided.

    Returns:
        One row per pair, `len(groups) * (len(groups) - 1) / 2` rows; none for one group.

    Raises:
        ValueError: for an unknown alternative, alpha outside (0, 1), or an empty or
            non-finite group.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    samples = {name: _sample(values, f"groups[{name!r}]") for name, values in groups.items()}
    pairs = list(itertools.combinations(samples, 2))

    rows = []
    for a, b in pairs:
        test = stats.mannwhitneyu(samples[a], samples[b], alternative=alternative)
        corrected = min(1.0, float(test.pvalue) * len(pairs))
        rows.append(
            {
                "a": a,
                "b": b,
                "n a": samples[a].size,
                "n b": samples[b].size,
                "U": float(test.statistic),
                "p": float(test.pvalue),
                "p Bonferroni": corrected,
                "P(a > b)": probability_of_improvement(samples[a], samples[b]),
                "significant": corrected < alpha,
            }
        )
    return rows


def compact_letters(names: Sequence[str], different: Sequence[tuple[str, str]]) -> dict[str, str]:
    """A compact letter display: groups that share a letter are not significantly different.

    Piepho's insert-and-absorb algorithm (J. Comput. Graph. Stat. 13(2), 2004): start from one
    letter held by every group; for each significantly different pair, split every letter
    held by both into one without either member, then drop letters whose groups another
    letter already covers. Letters are then named a, b, c, ... in the order of the first
    group holding them.

    Args:
        names: the groups, in display order.
        different: the significantly different pairs, e.g. from `pairwise_mann_whitney`.

    Returns:
        `{name: letters}`, e.g. `{"a": "a", "b": "b", "c": "ab"}` for a single difference a-b.

    Raises:
        ValueError: for a pair naming a group outside `names`.
    """
    index = {name: i for i, name in enumerate(names)}
    for pair in different:
        unknown = [name for name in pair if name not in index]
        if unknown:
            raise ValueError(f"pair {tuple(pair)} names groups {unknown} not in {list(names)}")
    columns: list[frozenset[int]] = [frozenset(index.values())] if names else []
    for a, b in different:
        i, j = index[a], index[b]
        split = []
        for column in columns:
            split += [column - {i}, column - {j}] if {i, j} <= column else [column]
        columns = [c for c in split if not any(c < other for other in split)]
        columns = list(dict.fromkeys(columns))
    columns.sort(key=lambda column: min(column))
    letters = {name: "" for name in names}
    for k, column in enumerate(columns):
        for i in sorted(column):
            letters[names[i]] += _letter(k)
    return letters


def _letter(k: int) -> str:
    """a, b, ..., z, then A, B, ... (a display has far fewer than 52 letters)."""
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[k]
