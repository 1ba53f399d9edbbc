"""The Genetic Connectome Model of Barabasi, Beynon, Katona and Perez-Nieves, "A scalable
model of the genetic connectome" (Nat. Commun. 14:2226, 2023), as a synevo genome model.

Every layer `l` has a gene expression matrix `X_l (n_l, G)`; a rule matrix `O (G, G)` (row =
pre-synaptic gene) says how strongly a pair of genes wires two neurons. The weights of the
layer `l -> l+1` are the bilinear form

    W_l = X_l O X_{l+1}^T,            shape (n_l, n_{l+1}),

and the layer computes `x W_l + b_{l+1}` with free biases (not genetic, as in SynaptoGen).
SynaptoGen extends this map with synapse counts (squared expression, bond probabilities)
and conductances. `shared_rules=False` gives every layer its own `O_l`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch

from synevo.models.base import GenomeModel, expand_searched
from synevo.types import Network

logger = logging.getLogger(__name__)


class GCM(GenomeModel):
    """Gene expression and wiring rules whose bilinear product is the weight matrix.

    Parts, in genome order: `X0..XL (n_l, G)` expression, then `O (G, G)` (or `O0..O{L-1}`
    with `shared_rules=False`) rules, then `b1..bL (n_l,)` biases.

    Args:
        layer_sizes: neurons per layer, input first, e.g. `(4, 128, 2)`.
        genes: G, the number of genes.
        shared_rules: one rule matrix for every layer (the paper) or one per layer.
        searched: part names or group names (`expression`, `rules`, `biases`); `None` or
            `"all"` searches everything.

    Raises:
        ValueError: for a setting outside its allowed values.
    """

    name = "gcm"

    def __init__(
        self,
        layer_sizes: Sequence[int],
        genes: int = 16,
        shared_rules: bool = True,
        searched: str | Sequence[str] | None = None,
    ):
        if isinstance(genes, bool) or int(genes) != genes or genes < 1:
            raise ValueError(f"genes must be a positive int, got {genes!r}")
        if not isinstance(shared_rules, bool):
            raise ValueError(f"shared_rules must be true or false, got {shared_rules!r}")
        self.genes = int(genes)
        self.shared_rules = shared_rules
        groups = self.part_groups(len(layer_sizes) - 1)
        super().__init__(layer_sizes, expand_searched(searched, groups))
        self._x_stds = [math.sqrt(v) for v in expression_variances(self.layer_sizes, self.genes)]
        logger.debug("GCM %s: searched %s", self.layer_sizes, self.searched)

    def part_groups(self, n_layers: int) -> dict[str, list[str]]:
        """Group name -> part names for a network of `n_layers` weight layers."""
        rules = ["O"] if self.shared_rules else [f"O{i}" for i in range(n_layers)]
        return {
            "expression": [f"X{i}" for i in range(n_layers + 1)],
            "rules": rules,
            "biases": [f"b{i}" for i in range(1, n_layers + 1)],
        }

    def part_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every genome part, in genome order."""
        sizes, g = self.layer_sizes, self.genes
        groups = self.part_groups(len(sizes) - 1)
        shapes: dict[str, tuple[int, ...]] = {f"X{i}": (n, g) for i, n in enumerate(sizes)}
        shapes.update({name: (g, g) for name in groups["rules"]})
        shapes.update({f"b{i}": (sizes[i],) for i in range(1, len(sizes))})
        return shapes

    def _init_part(self, name: str, generator: torch.Generator) -> torch.Tensor:
        kind = name.rstrip("0123456789")
        index = name[len(kind) :]
        if kind == "X":
            std = self._x_stds[int(index)]
        elif kind == "O":
            std = 1.0 / math.sqrt(self.genes)
        else:
            # SynaptoGen's bias initialization, so the two models differ only in the weights
            std = math.sqrt(2.0 / (self.layer_sizes[int(index) - 1] + 1))
        return torch.randn(self.part_shapes()[name], generator=generator) * std

    def _expected(self, parts: dict[str, torch.Tensor]) -> Network:
        network = []
        for i in range(len(self.layer_sizes) - 1):
            rules = parts["O"] if self.shared_rules else parts[f"O{i}"]
            weights = parts[f"X{i}"] @ rules @ parts[f"X{i + 1}"].transpose(1, 2)
            network.append((weights, parts[f"b{i + 1}"]))
        return network


def expression_variances(layer_sizes: Sequence[int], genes: int) -> list[float]:
    """Initial variances `v_l` of the expression entries, one per layer, so that `W_l` is
    He-scaled, `Var W_l = 2 / n_l`, when `O ~ N(0, 1/G)`.

    With independent zero-mean `X_l`, `O`, `X_{l+1}`, only the diagonal terms of
    `E[(sum_ij x_ui O_ij x_vj)^2]` survive, so `Var W_l = G^2 v_l v_O v_{l+1} = G v_l v_{l+1}`.
    He scaling asks `v_l v_{l+1} = 2 / (G n_l)`: L equations for L + 1 variances. In logs the
    solution is `log v_l = (-1)^l log v_0 + c_l`; the free `log v_0` is the least-squares
    choice that keeps every `log v_l` closest to `log(1/G)` (rows of unit expected norm).
    """
    target = math.log(1.0 / genes)
    offsets = [0.0]
    for n in layer_sizes[:-1]:
        offsets.append(math.log(2.0 / (genes * n)) - offsets[-1])
    signs = [(-1) ** i for i in range(len(offsets))]
    log_v0 = -sum(s * (c - target) for s, c in zip(signs, offsets, strict=True)) / len(offsets)
    return [math.exp(s * log_v0 + c) for s, c in zip(signs, offsets, strict=True)]
