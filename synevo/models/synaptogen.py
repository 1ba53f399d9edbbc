"""SynaptoGen, the genome-to-connectome model of Boccato, Ferrante and Toschi, "A Differentiable
Model for Optimizing the Genetic Drivers of Synaptogenesis" (arXiv 2402.07242).

Expected weights of the layer `l -> l+1` (SCIENCE.md section 1; `s` is the sigmoid):
    P     = s(O / tau)                            gene-pair bond probabilities (see rules.py)
    B     = X_l^2 P (X_{l+1}^2)^T                 expected synapse counts, (n_l, n_{l+1})
    C     = scale * S * s(Phi)                    conductance of neurotransmitter k on receptor r
    C_avg = softmax(T_l) C softmax(R_{l+1})^T     average conductance of one synapse
    W     = C_avg * B, and the layer computes x W + b_{l+1}.

Sampled weights follow the authors' simulated synaptogenesis: for every neuron pair `(u, v)`
and gene pair `(i, j)` a count `Binomial(round(kappa x_ui^2 x_vj^2), P_ij)`, with `kappa`
chosen per genome so that the network has the target average degree; the sampled weight is
`C_avg * B_sampled / kappa`; the counts come from sampling.py, by the authors' exact procedure
or by a fast sampler that keeps their distribution.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch

from synevo.models.base import GenomeModel, expand_searched
from synevo.models.rules import bio_probabilities, learned_probabilities, load_bio_mask
from synevo.models.sampling import SAMPLERS as COUNT_SAMPLERS
from synevo.types import Network

logger = logging.getLogger(__name__)

RULES = ("learned", "bio")
SAMPLERS = tuple(COUNT_SAMPLERS)
BIO_GENES = 39
PART_GROUPS = ("expression", "rules", "neurotransmitters", "receptors", "conductance", "biases")

# Binomial draws per torch.binomial call, the memory bound handed to the count samplers.
_MAX_DRAWS = 2**24


class SynaptoGen(GenomeModel):
    """Genes, neurotransmitters and receptors that decide a feed-forward network's weights.

    Parts, in genome order: `X0..XL (n_l, G)` expression, `O (G, G)` rules (row =
    pre-synaptic gene), `T0..T{L-1} (n_l, K)` neurotransmitter logits, `R1..RL (n_l, 2K)`
    receptor logits, `Phi (K, 2K)` conductance logits, `b1..bL (n_l,)` biases.

    Args:
        layer_sizes: neurons per layer, input first, e.g. `(4, 128, 2)`.
        genes: G, the number of genes.
        neurotransmitters: K; every neurotransmitter has an excitatory and an inhibitory
            receptor.
        searched: part names or group names (`expression`, `rules`, `neurotransmitters`,
            `receptors`, `conductance`, `biases`); `None` or `"all"` searches everything.
        rules: `"learned"` (free `O`) or `"bio"` (39 C. elegans genes, 47 rules, needs G = 39).
        tau: temperature of the bond probabilities.
        scale: conductance scale.
        degree: target average degree of a sampled network (the authors: 1e5).
        sampler: how synapse counts are drawn: `"exact"` is the authors' procedure, `"fast"`
            draws one skew-corrected normal per synapse from the exact cumulants of its count
            (exact binomials where the variance is small); see sampling.py.

    Raises:
        ValueError: for a setting outside its allowed values.
    """

    name = "synaptogen"

    def __init__(
        self,
        layer_sizes: Sequence[int],
        genes: int = 16,
        neurotransmitters: int = 3,
        searched: str | Sequence[str] | None = None,
        rules: str = "learned",
        tau: float = 0.1,
        scale: float = 1.0,
        degree: float = 1e5,
        sampler: str = "exact",
    ):
        _check_settings(genes, neurotransmitters, rules, tau, scale, degree, sampler)
        self.genes = int(genes)
        self.neurotransmitters = int(neurotransmitters)
        self.rules = rules
        self.tau = float(tau)
        self.scale = float(scale)
        self.degree = float(degree)
        self.sampler = sampler
        self.polarity = polarity(self.neurotransmitters)
        self.bio_mask = load_bio_mask()[1] if rules == "bio" else None
        super().__init__(layer_sizes, expand_searched(searched, part_groups(len(layer_sizes) - 1)))
        logger.debug("SynaptoGen %s: searched %s", self.layer_sizes, self.searched)

    # -- genome layout -----------------------------------------------------------------------

    def part_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every genome part, in genome order."""
        sizes, g, k = self.layer_sizes, self.genes, self.neurotransmitters
        last = len(sizes) - 1
        shapes: dict[str, tuple[int, ...]] = {f"X{i}": (n, g) for i, n in enumerate(sizes)}
        shapes["O"] = (g, g)
        shapes.update({f"T{i}": (sizes[i], k) for i in range(last)})
        shapes.update({f"R{i}": (sizes[i], 2 * k) for i in range(1, last + 1)})
        shapes["Phi"] = (k, 2 * k)
        shapes.update({f"b{i}": (sizes[i],) for i in range(1, last + 1)})
        return shapes

    def _init_part(self, name: str, generator: torch.Generator) -> torch.Tensor:
        # the authors' initialization (Kaiming-normal for X, T, R and biases)
        g, k = self.genes, self.neurotransmitters
        kind = name.rstrip("0123456789")
        if kind == "b":
            # fan-in of the bias is the pre-synaptic layer plus one, as in the authors' code
            std = math.sqrt(2.0 / (self.layer_sizes[int(name[1:]) - 1] + 1))
        else:
            stds = {"X": math.sqrt(2 / g), "O": 1 / g, "T": math.sqrt(2 / k)}
            stds |= {"R": math.sqrt(1 / k), "Phi": 1 / (math.sqrt(2) * k)}
            std = stds[kind]
        return torch.randn(self.part_shapes()[name], generator=generator) * std

    # -- expected weights --------------------------------------------------------------------

    def _expected(self, parts: dict[str, torch.Tensor]) -> Network:
        probs = self._probabilities(parts["O"])
        conductance = self._conductance(parts["Phi"])
        network = []
        for i in range(len(self.layer_sizes) - 1):
            counts = _expected_counts(parts[f"X{i}"], probs, parts[f"X{i + 1}"])
            c_avg = _avg_conductance(parts[f"T{i}"], conductance, parts[f"R{i + 1}"])
            network.append((c_avg * counts, parts[f"b{i + 1}"]))
        return network

    def _probabilities(self, rules: torch.Tensor) -> torch.Tensor:
        """Bond probabilities `P`, `(popsize, G, G)`."""
        if self.bio_mask is None:
            return learned_probabilities(rules, self.tau)
        return bio_probabilities(rules, self.tau, self.bio_mask)

    def _conductance(self, phi: torch.Tensor) -> torch.Tensor:
        """`C = scale * S * s(Phi)`, `(popsize, K, 2K)`."""
        return self.scale * self.polarity.to(phi.dtype) * torch.sigmoid(phi)

    # -- simulated synaptogenesis ------------------------------------------------------------

    def _sample(self, parts: dict[str, torch.Tensor], generator: torch.Generator) -> Network:
        dtype = parts["O"].dtype
        with torch.no_grad():
            # float64 keeps the binomial trial counts (up to ~1e5 and more) exact
            parts64 = {name: value.double() for name, value in parts.items()}
            probs = self._probabilities(parts64["O"])
            conductance = self._conductance(parts64["Phi"])
            kappa = self._kappa(parts64, probs)

            network = []
            for i in range(len(self.layer_sizes) - 1):
                pre, post = parts64[f"X{i}"], parts64[f"X{i + 1}"]
                draw = COUNT_SAMPLERS[self.sampler]
                counts = draw(pre, probs, post, kappa, generator, max_draws=_MAX_DRAWS)
                c_avg = _avg_conductance(parts64[f"T{i}"], conductance, parts64[f"R{i + 1}"])
                weights = c_avg * counts / kappa[:, None, None]
                network.append((weights.to(dtype), parts[f"b{i + 1}"].detach()))
        return network

    def _kappa(self, parts: dict[str, torch.Tensor], probs: torch.Tensor) -> torch.Tensor:
        """`kappa = degree N / (2 E)` per genome, `(popsize,)`.

        Raises:
            ValueError: if a genome expects no synapses at all (E = 0).
        """
        synapses = sum(
            _expected_counts(parts[f"X{i}"], probs, parts[f"X{i + 1}"]).sum(dim=(1, 2))
            for i in range(len(self.layer_sizes) - 1)
        )
        empty = (synapses <= 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"genomes of members {empty[:10]} expect no synapses; cannot sample")
        return self.degree * sum(self.layer_sizes) / (2.0 * synapses)


def polarity(neurotransmitters: int) -> torch.Tensor:
    """The fixed polarity `S (K, 2K)`: `S[k, 2k] = +1`, `S[k, 2k+1] = -1`, zero elsewhere."""
    signs = torch.zeros(neurotransmitters, 2 * neurotransmitters)
    k = torch.arange(neurotransmitters)
    signs[k, 2 * k] = 1.0
    signs[k, 2 * k + 1] = -1.0
    return signs


def part_groups(n_layers: int) -> dict[str, list[str]]:
    """Group name -> part names for a network of `n_layers` weight layers."""
    return {
        "expression": [f"X{i}" for i in range(n_layers + 1)],
        "rules": ["O"],
        "neurotransmitters": [f"T{i}" for i in range(n_layers)],
        "receptors": [f"R{i}" for i in range(1, n_layers + 1)],
        "conductance": ["Phi"],
        "biases": [f"b{i}" for i in range(1, n_layers + 1)],
    }


def _check_settings(
    genes: int,
    neurotransmitters: int,
    rules: str,
    tau: float,
    scale: float,
    degree: float,
    sampler: str,
) -> None:
    """Validate the constructor's settings.

    Raises:
        ValueError: naming the first setting outside its allowed values.
    """
    for field, value in (("genes", genes), ("neurotransmitters", neurotransmitters)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{field} must be a positive int, got {value!r}")
    if rules not in RULES:
        raise ValueError(f"rules must be one of {RULES}, got {rules!r}")
    if rules == "bio" and genes != BIO_GENES:
        raise ValueError(f"rules='bio' needs genes={BIO_GENES} (C. elegans genes), got {genes}")
    for field, value in (("tau", tau), ("scale", scale), ("degree", degree)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{field} must be a finite positive number, got {value!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")


def _expected_counts(pre: torch.Tensor, probs: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
    """Expected synapse counts `B = X_l^2 P (X_{l+1}^2)^T`, `(P, n_l, n_{l+1})`.

    pre `(P, n_l, G)`, probs `(P, G, G)`, post `(P, n_{l+1}, G)`.
    """
    return pre.square() @ probs @ post.square().transpose(1, 2)


def _avg_conductance(
    transmitters: torch.Tensor, conductance: torch.Tensor, receptors: torch.Tensor
) -> torch.Tensor:
    """Average conductance `softmax(T_l) C softmax(R_{l+1})^T`, `(P, n_l, n_{l+1})`.

    transmitters `(P, n_l, K)`, conductance `(P, K, 2K)`, receptors `(P, n_{l+1}, 2K)`.
    """
    t, r = _softmax(transmitters), _softmax(receptors)
    return t @ conductance @ r.transpose(1, 2)


def _softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension; 3x faster than `torch.softmax` on these tiny rows."""
    e = (x - x.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)
