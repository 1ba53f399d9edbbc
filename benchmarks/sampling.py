"""Networks/s of SynaptoGen's synapse-count samplers against the authors' gene-pair loop.

    python benchmarks/sampling.py [--repeats 3] [--batch 16] [--fast-only-large]

Samples SynaptoGen networks at the authors' degree 1e5 on one torch thread: input 4, hidden
128, output 2 at G = 16, 32 and 64, and one 1024 x 1024 layer at G = 16. Three samplers:
- reference: the authors' procedure, written out here: one network at a time, a Python loop
  over gene pairs with one binomial draw (over every neuron pair) per gene pair;
- exact: `SynaptoGen(sampler="exact")`, every binomial, in batched torch calls;
- fast: `SynaptoGen(sampler="fast")` (synevo/models/sampling.py).
Prints the median networks/s of each (from CPU time, as the machine may be shared; wall time
beside it) and its ratio to the reference measured in the same run. On the 1024 x 1024 layer
the reference and exact samplers take about 10 s per network and are timed once, without a
warm-up; --fast-only-large skips them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from synevo.models import SynaptoGen
from synevo.models.synaptogen import polarity
from synevo.threads import set_threads
from synevo.types import Network

SMALL = (4, 128, 2)
LARGE = (1024, 1024)
SAMPLERS = ("reference", "exact", "fast")


def reference_sample(
    model: SynaptoGen, genome: torch.Tensor, generator: torch.Generator
) -> Network:
    """One network sampled the authors' way (learned rules): genome `(D,)` -> a batch of one."""
    parts = {name: value[0].double() for name, value in model.unflatten(genome[None]).items()}
    sizes = model.layer_sizes
    probs = torch.sigmoid(parts["O"] / model.tau)
    conductance = model.scale * polarity(model.neurotransmitters).double()
    conductance = conductance * torch.sigmoid(parts["Phi"])
    squares = [parts[f"X{i}"].square() for i in range(len(sizes))]
    synapses = sum((squares[i] @ probs @ squares[i + 1].T).sum() for i in range(len(sizes) - 1))
    kappa = model.degree * sum(sizes) / (2 * synapses)

    network = []
    for layer in range(len(sizes) - 1):
        pre, post = squares[layer], squares[layer + 1]
        counts = torch.zeros(sizes[layer], sizes[layer + 1], dtype=torch.float64)
        for i in range(model.genes):
            for j in range(model.genes):
                trials = (kappa * pre[:, i, None] * post[None, :, j]).round()
                p = torch.full_like(trials, probs[i, j].item())
                counts += torch.binomial(trials, p, generator=generator)
        t = torch.softmax(parts[f"T{layer}"], dim=-1)
        r = torch.softmax(parts[f"R{layer + 1}"], dim=-1)
        weights = (t @ conductance @ r.T) * counts / kappa
        network.append((weights[None].float(), parts[f"b{layer + 1}"][None].float()))
    return network


def seconds_per_network(
    sample: Callable[[torch.Tensor], object], population: torch.Tensor, repeats: int, warm: bool
) -> tuple[float, float]:
    """Median CPU and wall seconds per network of `sample(population)` over `repeats` calls."""
    if warm:
        sample(population[:1])
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        sample(population)
        cpu.append((time.process_time() - start_cpu) / len(population))
        wall.append((time.perf_counter() - start_wall) / len(population))
    return statistics.median(cpu), statistics.median(wall)


def measure(
    sizes: tuple[int, ...], genes: int, batch: int, repeats: int, samplers: list[str]
) -> dict[str, tuple[float, float]]:
    """(CPU, wall) seconds per network, per sampler name, for one network shape."""
    generator = torch.Generator().manual_seed(0)
    models = {name: SynaptoGen(sizes, genes=genes, sampler=name) for name in ("exact", "fast")}
    population = torch.stack([models["fast"].init_genome(generator) for _ in range(batch)])
    calls = {
        "reference": lambda members: [
            reference_sample(models["fast"], g, generator) for g in members
        ],
        "exact": lambda members: models["exact"].sample(members, generator),
        "fast": lambda members: models["fast"].sample(members, generator),
    }
    # the reference is per network; a few networks per exact call keep its memory modest
    members = {"reference": 1, "exact": min(batch, 4), "fast": batch}
    warm = sizes != LARGE
    return {
        name: seconds_per_network(calls[name], population[: members[name]], repeats, warm)
        for name in samplers
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="networks per exact/fast call")
    parser.add_argument("--fast-only-large", action="store_true", help="skip slow large runs")
    args = parser.parse_args()

    set_threads(1)  # torch and numpy BLAS
    cases = [(f"4-128-2 G={g}", SMALL, g, args.batch, args.repeats) for g in (16, 32, 64)]
    cases.append(("1024-1024 G=16", LARGE, 16, 1, 1))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"degree 1e5, torch threads 1, load average {load}; networks/s and ratio from CPU time")
    print(
        f"{'network':>15} {'sampler':>10} {'networks/s':>11} {'ratio':>8} {'CPU s/net':>10} "
        f"{'wall s/net':>11}"
    )
    for label, sizes, genes, batch, repeats in cases:
        skip = args.fast_only_large and sizes == LARGE
        samplers = ["fast"] if skip else list(SAMPLERS)
        seconds = measure(sizes, genes, batch, repeats, samplers)
        for name, (cpu, wall) in seconds.items():
            ratio = f"{seconds['reference'][0] / cpu:>7.1f}x" if not skip else "    n/a"
            print(f"{label:>15} {name:>10} {1 / cpu:>11.2f} {ratio} {cpu:>10.4f} {wall:>11.4f}")


if __name__ == "__main__":
    main()
