"""Domain aliases shared by every room of synevo."""

from __future__ import annotations

import torch

Genome = torch.Tensor
"""One searched genome, a flat vector of shape `(D,)`."""

Population = torch.Tensor
"""A population of searched genomes, shape `(popsize, D)`."""

Fitness = torch.Tensor
"""One fitness value per population member, shape `(popsize,)`."""

Layer = tuple[torch.Tensor, torch.Tensor]
"""One layer of a batch of networks: weights `(batch, n_pre, n_post)`, biases `(batch, n_post)`."""

Network = list[Layer]
"""A batch of feed-forward networks, one `Layer` per connection between consecutive layers."""
