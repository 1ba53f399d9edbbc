"""Env steps/s of one evolution generation, in-process and over Ray workers.

    python benchmarks/generation.py [--popsize 64] [--workers 0 2] [--repeats 5]

Scores a population of SynaptoGen genomes (G = 16, hidden 128) on CartPole-v1 the way an
evolution strategy's generation does (one seeded episode per member, the expected network),
after one warm-up generation, and prints the median figure of each setting and its ratio to
the in-process one measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from synevo.distributed import init_ray, make_evaluator, shutdown_ray
from synevo.models import build_model
from synevo.seeding import training_seeds
from synevo.threads import set_threads


def generation_rate(workers: int, popsize: int, repeats: int) -> float:
    """Median env steps/s over `repeats` generations (population drawn anew each time)."""
    model = build_model("synaptogen", 4, 2, genes=16, hidden=[128])
    generator = torch.Generator().manual_seed(0)
    evaluator = make_evaluator("CartPole-v1", workers)
    rates = []
    try:
        for generation in range(repeats + 1):
            population = torch.stack([model.init_genome(generator) for _ in range(popsize)])
            start = time.perf_counter()
            with torch.no_grad():
                network = model.weights(population)
            rollouts = evaluator.evaluate(network, training_seeds(0, generation, 1))
            if generation:  # the first one warms up environments and workers
                rates.append(rollouts.env_steps / (time.perf_counter() - start))
    finally:
        evaluator.close()
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    set_threads(1)  # torch and numpy BLAS
    if any(args.workers):
        init_ray(num_cpus=max(args.workers))
    rates = {w: generation_rate(w, args.popsize, args.repeats) for w in args.workers}
    reference = rates.get(0, next(iter(rates.values())))
    print(f"one generation, popsize {args.popsize}, SynaptoGen G=16 hidden 128, CartPole-v1")
    print(f"{'workers':>8} {'env steps/s':>12} {'vs in-process':>14}")
    for workers, rate in rates.items():
        print(f"{workers:>8} {rate:>12,.0f} {rate / reference:>13.2f}x")
    shutdown_ray()


if __name__ == "__main__":
    main()
