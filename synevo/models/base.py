"""The genome interface every model family implements, and the batched policy forward.

A model declares named genome *parts* (tensors of fixed shapes). One genome is the flat
concatenation of the *searched* parts; the other parts stay fixed at values drawn once
(`init_genome`). Weights are always produced for a whole population in one batched call.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from synevo.types import Genome, Network, Population


def expand_searched(
    searched: str | Sequence[str] | None, groups: dict[str, list[str]]
) -> list[str] | None:
    """Part names of `searched`, group names expanded; `None` for everything.

    Raises:
        ValueError: for a name that is neither a part nor a group.
    """
    if searched is None or searched == "all":
        return None
    names = [searched] if isinstance(searched, str) else list(searched)
    parts = [p for group in groups.values() for p in group]
    unknown = [n for n in names if n not in groups and n not in parts]
    if unknown or not names:
        raise ValueError(
            f"searched {names} must name parts {parts} or groups {list(groups)}"
            f"{f'; unknown: {unknown}' if unknown else ''}"
        )
    return [p for n in names for p in groups.get(n, [n])]


class GenomeModel(abc.ABC):
    """A map from a flat genome to the weights of a feed-forward network.

    Subclasses implement `part_shapes`, `_init_part` and `_expected`; everything else
    (flattening, the searched subset, fixed parts, batching) lives here.

    Args:
        layer_sizes: neurons per layer, input first, e.g. `(4, 128, 2)`.
        searched: names of the searched parts, or `None` for all of them.
    """

    name: str = "model"

    def __init__(self, layer_sizes: Sequence[int], searched: Sequence[str] | None = None):
        if len(layer_sizes) < 2 or any(int(n) < 1 for n in layer_sizes):
            raise ValueError(f"layer_sizes must hold >= 2 positive sizes, got {list(layer_sizes)}")
        self.layer_sizes = tuple(int(n) for n in layer_sizes)
        shapes = self.part_shapes()
        names = list(shapes) if searched is None else list(searched)
        unknown = [n for n in names if n not in shapes]
        if unknown or not names:
            raise ValueError(f"searched parts {names} are not all among {list(shapes)}")
        self.searched = tuple(n for n in shapes if n in names)
        self._fixed = {n: torch.zeros(shapes[n]) for n in shapes if n not in self.searched}

    # -- what a subclass defines -------------------------------------------------------------

    @abc.abstractmethod
    def part_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every genome part, in genome order."""

    @abc.abstractmethod
    def _init_part(self, name: str, generator: torch.Generator) -> torch.Tensor:
        """Draw the initial value of one part, shape `part_shapes()[name]`."""

    @abc.abstractmethod
    def _expected(self, parts: dict[str, torch.Tensor]) -> Network:
        """Expected weights from batched parts, each of shape `(popsize, *part_shape)`."""

    def _sample(self, parts: dict[str, torch.Tensor], generator: torch.Generator) -> Network:
        """Sampled weights; deterministic models return the expected ones."""
        return self._expected(parts)

    # -- the genome interface ----------------------------------------------------------------

    @property
    def genome_size(self) -> int:
        """D, the length of the searched vector."""
        shapes = self.part_shapes()
        return sum(math.prod(shapes[n]) for n in self.searched)

    @property
    def full_size(self) -> int:
        """The length of the whole genome, searched and fixed parts together."""
        return sum(math.prod(s) for s in self.part_shapes().values())

    @property
    def network_size(self) -> int:
        """The number of weights and biases of the network the genome encodes."""
        sizes = self.layer_sizes
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))

    @property
    def compression(self) -> float:
        """network_size / genome_size: above 1 the searched genome is a bottleneck."""
        return self.network_size / self.genome_size

    def init_genome(self, generator: torch.Generator) -> Genome:
        """Draw every part, keep the unsearched ones fixed at the draw; return `(D,)`."""
        drawn = {n: self._init_part(n, generator) for n in self.part_shapes()}
        self._fixed = {n: v for n, v in drawn.items() if n not in self.searched}
        return torch.cat([drawn[n].reshape(-1) for n in self.searched])

    def unflatten(self, population: Population) -> dict[str, torch.Tensor]:
        """Split `(popsize, D)` into parts `(popsize, *shape)`, fixed parts broadcast."""
        if population.ndim != 2 or population.shape[1] != self.genome_size:
            raise ValueError(
                f"expected a population of shape (popsize, {self.genome_size}), "
                f"got {tuple(population.shape)}"
            )
        # a NaN or inf makes its row's sum non-finite: one cheap pass, the full test if so
        if not torch.isfinite(population.detach().sum(dim=1)).all():
            bad = (~torch.isfinite(population)).any(dim=1).nonzero().flatten().tolist()
            if bad:
                raise ValueError(f"genomes contain NaN or inf values (members {bad[:10]})")
        popsize, shapes, parts, start = population.shape[0], self.part_shapes(), {}, 0
        for name, shape in shapes.items():
            if name in self.searched:
                size = math.prod(shape)
                parts[name] = population[:, start : start + size].reshape(popsize, *shape)
                start += size
            else:
                fixed = self._fixed[name].to(population.dtype)
                parts[name] = fixed.expand(popsize, *shape)
        return parts

    def flatten(self, parts: dict[str, torch.Tensor]) -> Population:
        """The inverse of `unflatten` for the searched parts: `(popsize, D)`."""
        return torch.cat([parts[n].flatten(1) for n in self.searched], dim=1)

    def weights(self, population: Population) -> Network:
        """Expected weights, one `(popsize, n_pre, n_post)` and `(popsize, n_post)` per layer."""
        return self._expected(self.unflatten(population))

    def sample(
        self, population: Population, generator: torch.Generator, samples: int = 1
    ) -> Network:
        """Sampled networks, `samples` per genome, member-major: batch `popsize * samples`."""
        repeated = population.repeat_interleave(samples, dim=0)
        return self._sample(self.unflatten(repeated), generator)

    def network(self, genome: Genome) -> GenomeNetwork:
        """A torch module whose only parameter is this genome, for gradient training."""
        return GenomeNetwork(self, genome)

    def describe(self) -> dict[str, int | float | str]:
        """Sizes every trial logs: searched vector, encoded network, compression."""
        return {
            "model/genome_size": self.genome_size,
            "model/full_genome_size": self.full_size,
            "model/network_size": self.network_size,
            "model/compression": round(self.compression, 4),
        }


def forward(network: Network, obs: torch.Tensor) -> torch.Tensor:
    """Run a batch of networks: obs `(batch, n_obs, n_0)` -> outputs `(batch, n_obs, n_L)`.

    SELU on hidden layers, linear output (SCIENCE.md section 1). Each member's products are
    its own, so its outputs do not depend on the other members of the batch.
    """
    h = obs
    for i, (w, b) in enumerate(network):
        h = torch.baddbmm(b.unsqueeze(1), h, w)
        if i < len(network) - 1:
            # in place unless autograd needs h: no new buffer per layer and step (issue 3)
            h = F.selu(h, inplace=not (torch.is_grad_enabled() and h.requires_grad))
    return h


class GenomeNetwork(nn.Module):
    """A single genome as an `nn.Module`: obs `(n_obs, n_0)` -> outputs `(n_obs, n_L)`.

    The genome vector is the only parameter, so gradient descent and evolution search
    exactly the same space.
    """

    def __init__(self, model: GenomeModel, genome: Genome):
        super().__init__()
        self.model = model
        self.genome = nn.Parameter(genome.detach().clone().float())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        network = self.model.weights(self.genome.unsqueeze(0))
        return forward(network, obs.float().unsqueeze(0)).squeeze(0)
