"""The policies handed to EvoTorch, so that it plays exactly the networks synevo plays.

- `CachedGenomePolicy` (for `GymNE`, which sets a solution's parameters once and then calls
  the module at every step): the genome is the module's only parameter, as in
  `GenomeModel.network`, but the weights are re-derived only when the genome changes, so
  GymNE pays one batch-1 forward per step, as synevo's policy does.
- `FunctionalGenomePolicy` (for `VecGymNE`, which calls the module through
  `torch.func.functional_call` under `vmap`, with the parameters passed at every step): it
  derives the weights inside the call, at every step; `GenomeModel.weights` cannot be used
  there, as its input checks branch on tensor values, which `vmap` forbids.
- `mlp_module` and `mlp_parameters`: a `torch.nn` MLP `(obs, 128, actions)` with SELU, and
  synevo's `PlainMLP` genomes in its parameter order.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from synevo.models.base import GenomeModel, forward
from synevo.types import Population


class CachedGenomePolicy(nn.Module):
    """obs `(..., n_0)` -> outputs `(..., n_L)` of the network of one genome `(D,)`."""

    def __init__(self, model: GenomeModel, genome: torch.Tensor):
        super().__init__()
        self.model = model
        self.genome = nn.Parameter(genome.detach().clone().float(), requires_grad=False)
        self._key: torch.Tensor | None = None
        self._network = None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self._key is None or not torch.equal(self._key, self.genome):
            self._key = self.genome.detach().clone()
            self._network = self.model.weights(self._key.unsqueeze(0))
        out = forward(self._network, obs.float().reshape(1, -1, obs.shape[-1]))
        return out.reshape(*obs.shape[:-1], -1)


class FunctionalGenomePolicy(nn.Module):
    """obs `(n_0,)` -> outputs `(n_L,)`; weights derived from the genome at every call."""

    def __init__(self, model: GenomeModel, genome: torch.Tensor):
        super().__init__()
        if len(model.searched) != len(model.part_shapes()):
            raise ValueError("FunctionalGenomePolicy needs a model that searches every part")
        self.model = model
        self.genome = nn.Parameter(genome.detach().clone().float(), requires_grad=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        parts, start = {}, 0
        for name, shape in self.model.part_shapes().items():
            size = math.prod(shape)
            parts[name] = self.genome[start : start + size].reshape(1, *shape)
            start += size
        network = self.model._expected(parts)
        return forward(network, obs.reshape(1, 1, -1)).reshape(-1)


def mlp_module(sizes: tuple[int, ...]) -> nn.Module:
    """`Linear, SELU, ..., Linear` with the given layer sizes."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.SELU())
    return nn.Sequential(*layers)


def mlp_parameters(model: GenomeModel, population: Population) -> Population:
    """`PlainMLP` genomes `(popsize, D)` in `mlp_module`'s parameter order: `W^T, b` per layer."""
    columns = []
    for w, b in model.weights(population):
        columns += [w.transpose(1, 2).flatten(1), b]
    return torch.cat(columns, dim=1)
