"""The free-assembly control of SynaptoGen (SCIENCE.md section 1, "Variants"): a trained
genome's rules `O` and conductances `Phi` are kept, while every neuron's expression,
neurotransmitter logits, receptor logits and bias come from a simulated cell lineage (after
Kerstjens et al. 2022) instead of from the genome: neurons whose synapses form without
guidance.

Lineage. A neuron needs one vector of `G + K + 2K + 1` values: its X, T, R and bias parts, in
that order (a neuron uses only the parts its layer has: no R or bias on the input layer, no
T on the output layer). A zygote `c ~ N(0, I)` divides into `c + e1` and `c + e2` with fresh
steps `e ~ N(0, I)`, and every cell again, for `d = ceil(log2 N)` generations. The `2^d`
leaves, in lineage order, are shifted circularly at random and the first `N` go to the
neurons layer by layer, input first, so lineage neighbours are network neighbours. (The
authors' code takes the first `N` leaves and then rolls them within `N`; either way lineage
neighbours stay together except across one seam.)

Scale. A leaf has variance `1 + d` per entry (9 for CartPole's 134 neurons, against 2/G =
0.125 for trained-genome expression at G = 16). Expected weights grow with the fourth power
of expression and the transmitter and receptor softmaxes sharpen with scale, so raw lineage
values test the trained rules at a scale they never saw. The authors rescale only the bias
part, to the mean and standard deviation of the trained biases. synevo does the same for
every part by default (`rescale=True`): the drawn values of each kind (X, T, R, b, pooled
over the layers that have it) are standardized per network and mapped to that kind's mean
and standard deviation in the trained genome, so the control differs from the trained network
in which neuron expresses what, not in scale. `rescale=False` is the authors' procedure.
"""

from __future__ import annotations

import torch

from synevo.models.synaptogen import SynaptoGen
from synevo.optimizers.base import seeded_generator
from synevo.types import Genome, Network


def free_assembly(
    model: SynaptoGen,
    genome: Genome,
    seed: int,
    count: int = 1,
    rescale: bool = True,
    sample: bool = False,
) -> Network:
    """`count` freely assembled networks of a trained genome `(D,)`: batch `count`.

    Args:
        model: the SynaptoGen model the genome belongs to.
        genome: the trained, searched genome.
        seed: seeds every lineage draw (and the synapse sampling).
        count: networks, each from its own lineage.
        rescale: map every lineage part to the trained part's mean and spread (see module).
        sample: sample synapse counts (simulated synaptogenesis) instead of taking the
            expected weights, as the authors evaluate the control.

    Raises:
        ValueError: for a model that is not SynaptoGen, a genome of the wrong shape or a
            non-finite genome, or a count below 1.
    """
    generator = seeded_generator(seed)
    parts = _assembly_parts(model, genome, generator, count, rescale)
    with torch.no_grad():
        # the lineage replaces parts that may be fixed, so build from parts, not a genome
        if sample:
            return model._sample(parts, generator)
        return model._expected(parts)


def assembly_parts(
    model: SynaptoGen, genome: Genome, seed: int, count: int = 1, rescale: bool = True
) -> dict[str, torch.Tensor]:
    """The SynaptoGen parts of `free_assembly`'s networks, each `(count, *part_shape)`.

    Raises:
        ValueError: as `free_assembly`.
    """
    return _assembly_parts(model, genome, seeded_generator(seed), count, rescale)


def lineage_cells(n: int, width: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` independent lineages of `n` cells, `(count, n, width)`, in lineage order.

    Each lineage grows for `ceil(log2 n)` generations from a zygote `N(0, I)`; its leaves are
    shifted circularly by a random offset and the first `n` kept.
    """
    depth = (n - 1).bit_length()
    cells = torch.randn(count, 1, width, generator=generator)
    for _ in range(depth):
        steps = torch.randn(count, 2 * cells.shape[1], width, generator=generator)
        cells = cells.repeat_interleave(2, dim=1) + steps
    shift = torch.randint(0, 2**depth, (count, 1), generator=generator)
    order = (torch.arange(n) + shift) % 2**depth
    return torch.gather(cells, 1, order.unsqueeze(-1).expand(-1, -1, width))


def _assembly_parts(
    model: SynaptoGen,
    genome: Genome,
    generator: torch.Generator,
    count: int,
    rescale: bool,
) -> dict[str, torch.Tensor]:
    """Trained `O` and `Phi` with lineage-drawn X, T, R and biases, `(count, *shape)` each."""
    _check_inputs(model, genome, count)
    trained = model.unflatten(genome.detach().reshape(1, -1))
    sizes, genes, k = model.layer_sizes, model.genes, model.neurotransmitters
    n_layers = len(sizes) - 1

    # one lineage vector per neuron, split by layer
    cells = lineage_cells(sum(sizes), genes + 3 * k + 1, count, generator)
    layers = cells.to(genome.dtype).split(list(sizes), dim=1)

    # each kind's columns of the cell vector and the layers that have it
    kinds = {
        "X": (slice(0, genes), range(n_layers + 1)),
        "T": (slice(genes, genes + k), range(n_layers)),
        "R": (slice(genes + k, genes + 3 * k), range(1, n_layers + 1)),
        "b": (slice(genes + 3 * k, None), range(1, n_layers + 1)),
    }
    parts = {}
    for kind, (columns, indices) in kinds.items():
        names = [f"{kind}{i}" for i in indices]
        drawn = [
            layers[i][..., columns].reshape(count, *trained[n].shape[1:])
            for n, i in zip(names, indices, strict=True)
        ]
        if rescale or kind == "b":
            drawn = _match_moments(drawn, torch.cat([trained[n].reshape(-1) for n in names]))
        parts.update(zip(names, drawn, strict=True))

    for name in ("O", "Phi"):
        parts[name] = trained[name].expand(count, *trained[name].shape[1:])
    return parts


def _match_moments(drawn: list[torch.Tensor], target: torch.Tensor) -> list[torch.Tensor]:
    """Standardize the pooled `drawn` tensors `(count, ...)` of each network, then give them
    the mean and standard deviation of `target` (flat)."""
    count = drawn[0].shape[0]
    pooled = torch.cat([d.reshape(count, -1) for d in drawn], dim=1)
    mean, std = pooled.mean(dim=1), pooled.std(dim=1)
    scaled = []
    for d in drawn:
        shape = (count, *[1] * (d.ndim - 1))
        z = (d - mean.reshape(shape)) / std.reshape(shape)
        scaled.append(z * target.std() + target.mean())
    return scaled


def _check_inputs(model: SynaptoGen, genome: Genome, count: int) -> None:
    """Validate `free_assembly`'s arguments (finiteness is checked by `unflatten`).

    Raises:
        ValueError: naming the argument, its value and what is allowed.
    """
    if not isinstance(model, SynaptoGen):
        raise ValueError(f"free assembly needs a SynaptoGen model, got {type(model).__name__}")
    if genome.ndim != 1 or genome.shape[0] != model.genome_size:
        raise ValueError(
            f"genome must have shape ({model.genome_size},), got {tuple(genome.shape)}"
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an int >= 1, got {count!r}")
