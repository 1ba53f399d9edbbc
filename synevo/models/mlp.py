"""The plain multilayer perceptron: every weight and bias is a gene.

It is the unconstrained reference every compressed model is measured against (SCIENCE.md
section 2): the genome *is* the network, so `genome_size == network_size`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch

from synevo.models.base import GenomeModel
from synevo.types import Network


class PlainMLP(GenomeModel):
    """A feed-forward network whose genome is its weights and biases.

    Parts, in genome order: `W1, b1, ..., WL, bL` with `Wl` of shape `(n_{l-1}, n_l)` and
    `bl` of shape `(n_l,)`.

    Args:
        layer_sizes: neurons per layer, input first, e.g. `(4, 128, 2)`.
        searched: names of the searched parts, or `None` for all of them.
    """

    name = "mlp"

    def __init__(self, layer_sizes: Sequence[int], searched: Sequence[str] | None = None):
        super().__init__(layer_sizes, searched)

    def part_shapes(self) -> dict[str, tuple[int, ...]]:
        """`Wl (n_{l-1}, n_l)` and `bl (n_l,)` for l = 1..L, interleaved."""
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (n_pre, n_post) in enumerate(pairwise(self.layer_sizes), start=1):
            shapes[f"W{i}"] = (n_pre, n_post)
            shapes[f"b{i}"] = (n_post,)
        return shapes

    def _init_part(self, name: str, generator: torch.Generator) -> torch.Tensor:
        # torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
        layer = int(name[1:])
        bound = 1.0 / math.sqrt(self.layer_sizes[layer - 1])
        shape = self.part_shapes()[name]
        return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound

    def _expected(self, parts: dict[str, torch.Tensor]) -> Network:
        n_layers = len(self.layer_sizes) - 1
        return [(parts[f"W{i}"], parts[f"b{i}"]) for i in range(1, n_layers + 1)]
