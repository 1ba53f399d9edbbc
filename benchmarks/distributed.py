"""Seconds per CartPole generation in-process and over Ray workers, and where they go.

A generation is what an evolution strategy does per step: `evaluate_population` on a fresh
population of SynaptoGen genomes (G = 16, hidden 128), one seeded episode per member, the
expected network, as `evaluate_population` does it: in-process `model.weights` then
`Evaluator.evaluate`; over Ray, `RayEvaluator.evaluate_genomes` (genomes to the workers,
which build their chunk's weights). The same populations are played in-process and over
`workers` Ray actors (created once, warmed up by one generation). Figures are medians of
wall seconds over the generations; the split: weight construction, policy forward and env
stepping (summed over workers, so with 2 workers they can add up to twice the wall time),
and transfer (the rest of the Ray call: the object store, scheduling, collecting).
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks.common import load, model_for, population, table
from synevo.distributed import make_evaluator
from synevo.seeding import training_seeds
from synevo.threads import set_threads


def generation_seconds(workers: int, popsize: int, generations: int) -> dict[str, float]:
    """Median wall seconds per generation and of each part of it."""
    model = model_for("CartPole-v1", "synaptogen")
    evaluator = make_evaluator("CartPole-v1", workers)
    parts: dict[str, list[float]] = {}
    try:
        for generation in range(generations + 1):
            genomes = population(model, popsize, seed=generation)
            seeds = training_seeds(0, generation, 1)
            start = time.perf_counter()
            if workers:
                rollouts = evaluator.evaluate_genomes(model, genomes, seeds)
                built = start + rollouts.seconds["weights"]
            else:
                with torch.no_grad():
                    network = model.weights(genomes)
                built = time.perf_counter()
                rollouts = evaluator.evaluate(network, seeds)
            end = time.perf_counter()
            if generation == 0:  # warms up environments and workers
                continue
            seconds = rollouts.seconds
            sample = {
                "generation": end - start,
                "weights": built - start,
                "forward": seconds["forward"],
                "env": seconds["env"],
                "transfer": seconds.get("transfer", 0.0),
                "steps": float(rollouts.env_steps),
            }
            for key, value in sample.items():
                parts.setdefault(key, []).append(value)
    finally:
        evaluator.close()
    return {key: statistics.median(values) for key, values in parts.items()}


def run(quick: bool, workers: int) -> list[str]:
    """The Ray table: in-process and `workers` workers at popsize 256 and 1024."""
    set_threads(1)  # torch and numpy BLAS
    generations = 3 if quick else 7
    rows = []
    for popsize in (256, 1024):
        local = None
        for count in (0, workers):
            note = load()
            median = generation_seconds(count, popsize, generations)
            local = local or median["generation"]
            ms = {key: 1000 * value for key, value in median.items() if key != "steps"}
            rows.append(
                [
                    popsize,
                    count,
                    f"{ms['generation']:.1f}",
                    f"{local / median['generation']:.2f}x",
                    f"{ms['weights']:.1f}",
                    f"{ms['forward']:.1f}",
                    f"{ms['env']:.1f}",
                    f"{ms['transfer']:.1f}",
                    int(median["steps"]),
                    note,
                ]
            )
    header = ["popsize", "workers", "ms/gen", "vs 0", "weights ms", "forward ms", "env ms"]
    header += ["transfer ms", "env steps", "load"]
    title = (
        f"Ray: CartPole-v1 generation, SynaptoGen G=16, median of {generations} "
        "(forward and env summed over workers)"
    )
    return [table(title, header, rows)]
