"""Simulated synaptogenesis: the synapse counts of sampled SynaptoGen networks (arXiv 2402.07242).

Between neuron `u` of one layer and neuron `v` of the next the authors draw, for every gene
pair `(i, j)` (SCIENCE.md section 1),
    B_uvij ~ Binomial(n_uvij, P_ij),    n_uvij = round(kappa x_ui^2 x_vj^2),
and the sampled count is `B_uv = sum_ij B_uvij`. Two samplers draw it, selected by name in
`SAMPLERS`:

- `"exact"` draws every binomial, the authors' procedure batched: `n_u n_v G^2` binomial draws
  per layer and network, about 100 ns each.
- `"fast"` keeps the authors' rounded trial counts `n_uvij` but draws one number per synapse.
  The cumulants of `B_uv` (total trials `sum n`, mean `sum n P`, variance `sum n P (1 - P)`,
  third cumulant `sum n P (1 - P) (1 - 2P)`) come from one matrix product per cache-sized
  block of the rounded trial counts, which are never held whole (about 1 ns per `(u, v, i, j)`
  in float64); `B_uv` is then a skew-corrected normal (first-order Cornish-Fisher) with that
  mean, that variance less the 1/12 that rounding adds (Sheppard) and, to first order, that
  skewness, rounded to an integer and clipped to `[0, sum n]`. Synapses whose variance is
  below `EXACT_BELOW_VARIANCE` are drawn exactly, binomial by binomial. Both samplers are
  batched over the population and draw from one `torch.Generator`.

Rounding is not separable (`round(kappa a b)` does not factor into neuron terms), so the
cumulants are sums over the rounded trials themselves; the fast sampler has the exact
sampler's means and variances, not those of the unrounded `kappa X_l^2 P (X_{l+1}^2)^T`.

The threshold. At a variance of 10 or more, the Kolmogorov-Smirnov distance between the fast
draw and the exact sum (its pmf a convolution of the binomial pmfs; trial patterns
`round(s chi2_1 chi2_1)`, G = 16 and 64, 20 genomes per case) was at most 0.0011 for the
authors' initial rules, saturated rules, P uniform, P near 0 (Poisson-like) and P near 1, and
0.0021 for P in {0.02, 0.98} (whose excess kurtosis is left uncorrected); at a variance of 5
the worst case was 0.0045. The variance of the fast draws was within 0.01% of the exact one
at a variance of 10 or more. A two-sample KS test needs about 10^6 draws per side to see 0.002.
An uncorrected normal is 0.02 away for Poisson-like counts at a variance of 10 (the skewness
term of the Edgeworth series, about 0.066 / sd), hence the correction. Synapses below the
threshold expect few trials, so their exact draws stay cheap.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import torch

from synevo.threads import limit_threads

EXACT_BELOW_VARIANCE = 10.0

# Elements of the rounded trial-count tensor per block of the fast sampler's cumulant pass:
# small enough to stay in cache (1 MiB of float64), large enough that Python's per-block cost
# does not show; 2^17 was 5-10% faster than 2^16 and 2^18 here at G = 16, 32 and 64.
_BLOCK_ELEMENTS = 2**17

CountSampler = Callable[..., torch.Tensor]


def exact_counts(
    pre: torch.Tensor,
    probs: torch.Tensor,
    post: torch.Tensor,
    kappa: torch.Tensor,
    generator: torch.Generator,
    max_draws: int = 2**24,
) -> torch.Tensor:
    """Synapse counts with one binomial per neuron pair and gene pair (the authors' way).

    pre `(P, n_u, G)`, probs `(P, G, G)`, post `(P, n_v, G)`, kappa `(P,)`, all float64
    -> `(P, n_u, n_v)` float64. `max_draws` bounds the binomials of one torch call.
    """
    scaled, targets = _factors(pre, post, kappa)
    every = torch.ones(scaled.shape[0], scaled.shape[1], targets.shape[1], dtype=torch.bool)
    counts = _draw_exact(scaled, probs, targets, every, generator, max_draws)
    return counts.view(every.shape)


def fast_counts(
    pre: torch.Tensor,
    probs: torch.Tensor,
    post: torch.Tensor,
    kappa: torch.Tensor,
    generator: torch.Generator,
    max_draws: int = 2**24,
    exact_below: float = EXACT_BELOW_VARIANCE,
) -> torch.Tensor:
    """Synapse counts from their cumulants: skew-corrected normal draws, exact at low variance.

    Arguments and result `(P, n_u, n_v)` as `exact_counts`; synapses whose count variance is
    below `exact_below` are drawn exactly.

    Raises:
        ValueError: if `exact_below` is below 1 (a normal draw needs some spread).
    """
    if not exact_below >= 1:
        raise ValueError(f"exact_below must be >= 1 (a variance), got {exact_below!r}")
    scaled, targets = _factors(pre, post, kappa)
    total, mean, var, third = count_cumulants(scaled, probs, targets).unbind(-1)

    # every synapse gets a normal draw (finite thanks to the clamp); exact ones replace theirs
    counts = _skewed_normal(mean, var.clamp(min=exact_below), third, generator)
    counts = torch.minimum(counts.clamp_(min=0), total)
    exact = var < exact_below
    if exact.any():
        counts[exact] = _draw_exact(scaled, probs, targets, exact, generator, max_draws)
    return counts


SAMPLERS: dict[str, CountSampler] = {"exact": exact_counts, "fast": fast_counts}


def count_cumulants(
    scaled: torch.Tensor, probs: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Total trials, mean, variance and third cumulant of every synapse count, with the
    authors' rounding: `(P, n_u, n_v, 4)`.

    scaled `(P, n_u, G)` is `kappa x_pre^2`, probs `(P, G, G)`, targets `(P, n_v, G)` is
    `x_post^2`. The rounded trials `(P, n_u, n_v, G, G)` are built block by block.
    """
    popsize, n_u, genes = scaled.shape
    n_v = targets.shape[1]
    p = probs.reshape(popsize, genes * genes)
    q = p * (1 - p)
    # per gene pair, a binomial's cumulants divided by its trial count
    per_trial = torch.stack([torch.ones_like(p), p, q, q * (1 - 2 * p)], dim=-1).detach().numpy()

    members, rows, cols = _block_shape(popsize, n_u, n_v, genes * genes)
    buffer = scaled.new_empty(members * rows * cols * genes * genes)
    cumulants = scaled.new_empty(popsize, n_u, n_v, 4)
    blocks = itertools.product(range(0, popsize, members), range(0, n_u, rows), range(0, n_v, cols))
    # numpy's BLAS on as many threads as torch has here (OpenBLAS would take every core)
    with limit_threads(torch.get_num_threads()):
        for m0, u0, v0 in blocks:
            ms, us, vs = slice(m0, m0 + members), slice(u0, u0 + rows), slice(v0, v0 + cols)
            m, u, v = min(members, popsize - m0), min(rows, n_u - u0), min(cols, n_v - v0)
            # reuse one buffer: a fresh allocation per block costs page faults
            trials = buffer[: m * u * v * genes * genes].view(m, u, v, genes, genes)
            torch.mul(scaled[ms, us, None, :, None], targets[ms, None, vs, None, :], out=trials)
            trials.round_()
            # numpy's matmul (OpenBLAS): 3-5x faster than torch's (MKL) here on AMD EPYC
            block = np.matmul(trials.numpy().reshape(m, u * v, genes * genes), per_trial[ms])
            cumulants[ms, us, vs] = torch.from_numpy(block).view(m, u, v, 4)
    return cumulants


def _block_shape(popsize: int, n_u: int, n_v: int, pairs: int) -> tuple[int, int, int]:
    """Members, pre-synaptic rows and post-synaptic columns of one block of trial counts:
    whole members while they fit in `_BLOCK_ELEMENTS`, then whole rows, then columns."""
    if n_u * n_v * pairs <= _BLOCK_ELEMENTS:
        return max(1, min(popsize, _BLOCK_ELEMENTS // (n_u * n_v * pairs))), n_u, n_v
    if n_v * pairs <= _BLOCK_ELEMENTS:
        return 1, _BLOCK_ELEMENTS // (n_v * pairs), n_v
    return 1, 1, max(1, _BLOCK_ELEMENTS // pairs)


def _factors(
    pre: torch.Tensor, post: torch.Tensor, kappa: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`kappa x_pre^2 (P, n_u, G)` and `x_post^2 (P, n_v, G)`; trials are round(their product),
    computed the same way by both samplers so they round alike."""
    return kappa[:, None, None] * pre.square(), post.square()


def _draw_exact(
    scaled: torch.Tensor,
    probs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    max_draws: int,
) -> torch.Tensor:
    """Exact counts of the synapses `mask (P, n_u, n_v)` selects, in row-major order: `(k,)`."""
    members, pres, posts = mask.nonzero(as_tuple=True)
    genes = probs.shape[-1]
    chunk = max(1, min(max_draws, _BLOCK_ELEMENTS) // genes**2)
    counts = []
    for start in range(0, len(members), chunk):
        m, u, v = (index[start : start + chunk] for index in (members, pres, posts))
        trials = (scaled[m, u, :, None] * targets[m, v, None, :]).round_()
        counts.append(torch.binomial(trials, probs[m], generator=generator).sum(dim=(1, 2)))
    return torch.cat(counts) if counts else scaled.new_empty(0)


def _skewed_normal(
    mean: torch.Tensor, var: torch.Tensor, third: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Integers with the given mean, variance (> 0) and, to first order, third cumulant.

    mean, var and third share one shape, and so does the result.

    `z + g (z^2 - 1)` with `g = skewness / 6` has mean 0, variance `1 + 2 g^2` and skewness
    `6 g + O(g^3)` (Cornish-Fisher); dividing by `sqrt(1 + 2 g^2)` makes its variance 1. It
    bends back only below `z = -1 / (2 g)`: beyond 9 sd at a variance of 10 or more, as the
    skewness of a sum of binomials is at most 1 / sd. Rounding to integers adds 1/12 to the
    variance (Sheppard), so the continuous draw has `var - 1/12`.
    """
    g = third / (6 * var * var.sqrt())
    z = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
    z = (z + g * (z.square() - 1)) / (1 + 2 * g.square()).sqrt()
    return (mean + (var - 1 / 12).sqrt() * z).round()
