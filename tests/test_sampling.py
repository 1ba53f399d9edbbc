"""Tests of the synapse-count samplers: the fast sampler against the authors' exact one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from synevo.evaluation import Evaluator
from synevo.models import SynaptoGen, build_model, sampling
from synevo.models.sampling import EXACT_BELOW_VARIANCE, count_cumulants, exact_counts, fast_counts
from synevo.seeding import training_seeds

DRAWS = 20_000  # per sampler and synapse in the distribution tests
FAMILY_ALPHA = 1e-3  # per check, Bonferroni-split over the synapses and statistics tested


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _layer(seed: int, n_u: int, n_v: int, genes: int, kappa: float, rules_sd: float = 2.0):
    """One random layer `(pre (1, n_u, G), probs (1, G, G), post (1, n_v, G), kappa (1,))`."""
    gen = _gen(seed)
    pre = torch.rand(1, n_u, genes, generator=gen, dtype=torch.float64).add(0.1).sqrt()
    post = torch.rand(1, n_v, genes, generator=gen, dtype=torch.float64).add(0.1).sqrt()
    logits = torch.randn(1, genes, genes, generator=gen, dtype=torch.float64) * rules_sd
    return pre, torch.sigmoid(logits), post, torch.tensor([kappa], dtype=torch.float64)


def _copies(layer, count: int):
    """The same layer `count` times over the population axis: one draw each per call."""
    return [value.expand(count, *value.shape[1:]) for value in layer]


def _brute_cumulants(pre, probs, post, kappa) -> torch.Tensor:
    """`(P, n_u, n_v, 4)` from the whole rounded trial tensor `(P, n_u, n_v, G, G)`."""
    trials = torch.einsum("p,pui,pvj->puvij", kappa, pre.square(), post.square()).round()
    p = probs[:, None, None]
    q = p * (1 - p)
    per_trial = [torch.ones_like(p), p, q, q * (1 - 2 * p)]
    return torch.stack([(trials * w).sum(dim=(3, 4)) for w in per_trial], dim=-1)


# -- cumulants -------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [None, 1, 50, 64])
def test_cumulants_are_those_of_the_rounded_trials(monkeypatch, block):
    if block is not None:  # blocks that cut members, rows and columns
        monkeypatch.setattr(sampling, "_BLOCK_ELEMENTS", block)
    layers = [_layer(seed, 5, 7, 3, kappa=2.0) for seed in range(3)]
    pre, probs, post, kappa = (torch.cat(parts) for parts in zip(*layers, strict=True))
    scaled, targets = kappa[:, None, None] * pre.square(), post.square()

    cumulants = count_cumulants(scaled, probs, targets)
    brute = _brute_cumulants(pre, probs, post, kappa)
    torch.testing.assert_close(cumulants, brute, rtol=1e-12, atol=1e-12)

    # the rounding matters here: the unrounded means are off by far more than the tolerance
    unrounded = kappa[:, None, None] * (pre.square() @ probs @ post.square().transpose(1, 2))
    assert (unrounded - brute[..., 1]).abs().max() > 0.1


# -- distribution against the exact sampler --------------------------------------------------


@pytest.fixture(scope="module")
def draws() -> dict[str, np.ndarray]:
    """DRAWS counts of the 6 synapses of one layer from each sampler, and their variances."""
    layer = _layer(seed=5, n_u=2, n_v=3, genes=4, kappa=12.0)
    many = _copies(layer, DRAWS)
    exact = exact_counts(*many, _gen(1)).reshape(DRAWS, 6)
    fast = fast_counts(*many, _gen(2)).reshape(DRAWS, 6)
    variance = _brute_cumulants(*layer)[0, ..., 2].flatten()
    return {"exact": exact.numpy(), "fast": fast.numpy(), "variance": variance.numpy()}


def test_the_layer_exercises_both_paths(draws):
    on_normal = draws["variance"] >= EXACT_BELOW_VARIANCE
    assert 3 <= on_normal.sum() < 6, draws["variance"]
    assert (draws["fast"] == np.round(draws["fast"])).all() and (draws["fast"] >= 0).all()


def _scaled_variance(counts: np.ndarray, factor: float) -> np.ndarray:
    mean = counts.mean(axis=0)
    return np.round(mean + math.sqrt(factor) * (counts - mean))


WRONG = {  # deliberately wrong samplers, made from the fast one's draws
    "mean +2%": lambda counts: np.round(counts + 0.02 * counts.mean(axis=0)),
    "variance x1.5": lambda counts: _scaled_variance(counts, 1.5),
}


def _moment_z(a: np.ndarray, b: np.ndarray) -> float:
    """The largest |z| of the differences of per-synapse means and variances, `(draws, k)`."""
    n = len(a)
    z_mean = (a.mean(0) - b.mean(0)) / np.sqrt((a.var(0) + b.var(0)) / n)

    def var_se2(x: np.ndarray) -> np.ndarray:  # variance of the sample variance
        centred = x - x.mean(0)
        return ((centred**4).mean(0) - x.var(0) ** 2) / n

    z_var = (a.var(0, ddof=1) - b.var(0, ddof=1)) / np.sqrt(var_se2(a) + var_se2(b))
    return float(np.abs(np.concatenate([z_mean, z_var])).max())


def test_fast_moments_match_the_exact_sampler(draws):
    exact, fast = draws["exact"], draws["fast"]
    tests = 2 * exact.shape[1]
    z_limit = stats.norm.isf(FAMILY_ALPHA / (2 * tests))

    assert _moment_z(fast, exact) < z_limit
    on_normal = draws["variance"] >= EXACT_BELOW_VARIANCE
    for name, wrong in WRONG.items():  # the check has power where the fast sampler approximates
        assert _moment_z(wrong(fast)[:, on_normal], exact[:, on_normal]) > z_limit, name


def _rejected(a: np.ndarray, b: np.ndarray) -> list[int]:
    """Synapses whose two samples a KS test tells apart at FAMILY_ALPHA, Bonferroni-split."""
    alpha = FAMILY_ALPHA / a.shape[1]
    return [k for k in range(a.shape[1]) if stats.ks_2samp(a[:, k], b[:, k]).pvalue < alpha]


def test_fast_distribution_matches_the_exact_sampler_per_synapse(draws):
    exact, fast = draws["exact"], draws["fast"]
    assert _rejected(fast, exact) == []

    on_normal = draws["variance"] >= EXACT_BELOW_VARIANCE
    for name, wrong in WRONG.items():
        assert _rejected(wrong(fast)[:, on_normal], exact[:, on_normal]) != [], name


def _exact_cdf(trials: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """CDF of a sum of independent Binomial(trials, probs), at 0, 1, ..., sum(trials)."""
    pmf = np.ones(1)
    for n, p in zip(trials.astype(int), probs, strict=True):
        pmf = np.convolve(pmf, stats.binom.pmf(np.arange(n + 1), n, p))
    return np.cumsum(pmf)


def test_skew_correction_holds_at_the_threshold():
    # the most skewed case, Poisson-like counts (P ~ 0.02), with a variance just above 10
    genes, count = 4, 200_000
    probs = torch.linspace(0.01, 0.03, genes * genes, dtype=torch.float64).reshape(1, genes, -1)
    ones = torch.ones(1, 1, genes, dtype=torch.float64)
    layer = (ones, probs, ones, torch.tensor([38.0], dtype=torch.float64))
    total, mean, var, _ = _brute_cumulants(*layer)[0, 0, 0].tolist()
    assert EXACT_BELOW_VARIANCE <= var < 1.5 * EXACT_BELOW_VARIANCE

    cdf = _exact_cdf(np.full(genes * genes, 38.0), probs.flatten().numpy())
    fast = fast_counts(*_copies(layer, count), _gen(3)).flatten().numpy().astype(int)
    plain = np.clip(
        np.round(mean + math.sqrt(var) * np.random.default_rng(3).standard_normal(count)), 0, total
    )

    def distance(sample: np.ndarray) -> float:
        empirical = np.bincount(sample.astype(int), minlength=len(cdf)).cumsum() / len(sample)
        return float(np.abs(empirical - cdf).max())

    # sampling noise alone stays below 1.95 / sqrt(count) = 0.0044 with probability 0.999
    assert distance(fast) < 0.006
    assert distance(plain) > 0.006  # an uncorrected normal is about 0.02 away


# -- determinism, settings, the model --------------------------------------------------------


def test_fast_sampling_is_deterministic_and_blocking_does_not_change_it(monkeypatch):
    layer = _layer(seed=8, n_u=6, n_v=5, genes=3, kappa=20.0)
    many = _copies(layer, 4)
    first = fast_counts(*many, _gen(11))
    variance = _brute_cumulants(*many)[..., 2]
    assert (variance < EXACT_BELOW_VARIANCE).any() and (variance >= EXACT_BELOW_VARIANCE).any()

    assert torch.equal(fast_counts(*many, _gen(11)), first)
    monkeypatch.setattr(sampling, "_BLOCK_ELEMENTS", 5)
    assert torch.equal(fast_counts(*many, _gen(11), max_draws=1), first)
    assert not torch.equal(fast_counts(*many, _gen(12)), first)


def test_exact_below_must_be_a_usable_variance():
    layer = _layer(seed=0, n_u=2, n_v=2, genes=2, kappa=3.0)
    with pytest.raises(ValueError, match="exact_below must be >= 1"):
        fast_counts(*layer, _gen(0), exact_below=0.5)


def test_synaptogen_selects_the_sampler_by_name():
    assert SynaptoGen([4, 8, 2]).sampler == "exact"
    assert build_model("synaptogen", 4, 2, sampler="fast").sampler == "fast"
    with pytest.raises(ValueError, match="sampler must be one of \\('exact', 'fast'\\)"):
        SynaptoGen([4, 8, 2], sampler="poisson")

    fast = build_model("synaptogen", 4, 2, sampler="fast")
    population = fast.init_genome(_gen(0)).unsqueeze(0)
    expected = fast.weights(population)
    drawn = fast.sample(population, _gen(1), samples=2)
    again = fast.sample(population, _gen(1), samples=2)
    for (w_s, b_s), (w_a, _), (w, b) in zip(drawn, again, expected, strict=True):
        assert w_s.shape == (2, *w.shape[1:]) and w_s.dtype == w.dtype
        assert torch.equal(w_s, w_a) and not torch.equal(w_s[0], w_s[1])
        assert (w_s - w).abs().max() < 0.05 * w.abs().max()
        assert torch.equal(b_s, b.expand_as(b_s))


def _trained_ish_genome(model: SynaptoGen) -> torch.Tensor:
    """A genome `(1, D)` part-way to imitating a linear CartPole controller (returns ~250)."""
    gen = _gen(0)
    net = model.network(model.init_genome(gen))
    obs = torch.randn(256, 4, generator=gen) * torch.tensor([0.5, 0.5, 0.05, 0.5])
    actions = (obs @ torch.tensor([0.1, 0.5, 2.0, 1.0]) > 0).long()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(12):
        loss = torch.nn.functional.cross_entropy(net(obs), actions)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.genome.detach().unsqueeze(0)


def test_cartpole_returns_of_fast_and_exact_networks_agree():
    model = SynaptoGen([4, 128, 2], genes=16, degree=1e4)
    genome = _trained_ish_genome(model)
    evaluator = Evaluator("CartPole-v1")
    seeds = training_seeds(0, 0, 2)

    returns = {}
    for name, seed in (("exact", 1), ("fast", 2)):
        model.sampler = name
        network = model.sample(genome, _gen(seed), samples=60)
        returns[name] = evaluator.evaluate(network, seeds).returns.mean(axis=1)

    # sampling moves the returns (the test is not vacuous), on the fast sampler's normal path
    assert len(np.unique(returns["exact"])) >= 10 and returns["exact"].std() > 2.0
    parts = model.unflatten(genome.double())
    probs = model._probabilities(parts["O"])
    kappa = model._kappa(parts, probs)
    for i in range(2):
        pre, post = parts[f"X{i}"], parts[f"X{i + 1}"]
        variance = count_cumulants(kappa * pre.square(), probs, post.square())[..., 2]
        assert variance.min() >= EXACT_BELOW_VARIANCE
    assert stats.ks_2samp(returns["fast"], returns["exact"]).pvalue > 0.01
