"""Networks/s of SynaptoGen's synapse-count samplers against the authors' gene-pair loop.

    python benchmarks/sampling.py [--repeats 3] [--batch 16] [--large-all]

Samples SynaptoGen networks (input 4, hidden 128, output 2) at G = 16, 32 and 64, and one
1024 x 1024 layer at G = 16, at the authors' degree 1e5, on one torch thread, with:
- reference: the authors' procedure, written out here: one network at a time, a Python loop
  over gene pairs with one binomial draw (over every neuron pair) per gene pair;
- exact: `SynaptoGen(sampler="exact")`, every binomial in batched torch calls;
- fast: `SynaptoGen(sampler="fast")` (synevo/models/sampling.py).
Prints the median networks/s of each and its ratio to the reference measured in the same run.
The 1024 x 1024 layer runs the reference and exact samplers only with --large-all (each takes
tens of seconds there).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from synevo.models import SynaptoGen
from synevo.models.synaptogen import polarity
from synevo.types import Network

SMALL = (4, 128, 2)
LARGE = (1024, 1024)


def reference_sample(
    model: SynaptoGen, genome: torch.Tensor, generator: torch.Generator
) -> Network:
    """One sampled network the authors' way (learned rules): genome `(D,)` -> batch of one."""
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


def timing(sample, population: torch.Tensor, repeats: int) -> tuple[float, float]:
    """Median CPU and wall seconds per network of `sample(population)` over `repeats` calls,
    after a warm-up call."""
    sample(population[:1])
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        sample(population)
        cpu.append((time.process_time() - start_cpu) / len(population))
        wall.append((time.perf_counter() - start_wall) / len(population))
    return statistics.median(cpu), statistics.median(wall)


def measure(sizes: tuple[int, ...], genes: int, batch: int, repeats: int, samplers: list[str]):
    """(CPU, wall) seconds per network, per sampler name, for one network shape."""
    generator = torch.Generator().manual_seed(0)
    models = {name: SynaptoGen(sizes, genes=genes, sampler=name) for name in ("exact", "fast")}
    population = torch.stack([models["fast"].init_genome(generator) for _ in range(batch)])

    def reference(members: torch.Tensor) -> Network:
        nets = [reference_sample(models["fast"], genome, generator) for genome in members]
        return [
            (torch.cat([w for w, _ in layer]), torch.cat([b for _, b in layer]))
            for layer in zip(*nets, strict=False)
        ]

    def sampler(name: str):
        return lambda members: models[name].sample(members, generator)

    calls = {"reference": reference, "exact": sampler("exact"), "fast": sampler("fast")}
    sizes_of = {"reference": 1, "exact": min(batch, 4), "fast": batch}
    return {name: timing(calls[name], population[: sizes_of[name]], repeats) for name in samplers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="networks per fast call")
    parser.add_argument("--large-all", action="store_true", help="all samplers on 1024 x 1024")
    args = parser.parse_args()

    torch.set_num_threads(1)
    every = ["reference", "exact", "fast"]
    cases = [(f"4-128-2 G={g}", SMALL, g, args.batch, every) for g in (16, 32, 64)]
    large = every if args.large_all else ["fast"]
    cases.append(("1024-1024 G=16", LARGE, 16, 1, large))

    print("degree 1e5, torch threads 1; networks/s and ratio from CPU time (a shared machine)")
    header = f"{'network':>19} {'sampler':>10} {'networks/s':>11} {'ratio':>8}"
    print(f"{header} {'CPU s/net':>10} {'wall s/net':>11}")
    for label, sizes, genes, batch, samplers in cases:
        repeats = 1 if sizes == LARGE else args.repeats
        seconds = measure(sizes, genes, batch, repeats, samplers)
        for name, (cpu, wall) in seconds.items():
            ratio = (
                f"{seconds['reference'][0] / cpu:>7.1f}x" if "reference" in seconds else "    n/a"
            )
            print(f"{label:>19} {name:>10} {1 / cpu:>11.2f} {ratio} {cpu:>10.4f} {wall:>11.4f}")
        if "reference" not in seconds:
            print(f"{label:>19} reference and exact skipped (tens of seconds each; --large-all)")


if __name__ == "__main__":
    main()
