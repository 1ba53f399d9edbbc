"""Evolution strategies: evotorch's search distributions, synevo's batched, seeded fitness.

evotorch owns the search (SNES, XNES, CMA-ES, PGPE, CEM and their hyperparameters); synevo
owns the fitness: the mean return of each genome's expected network (or of `samples` sampled
networks) over `episodes` seeded episodes, all members and episodes stepped together, on the
in-process evaluator or split over Ray workers. Every member of a generation plays the same
episodes (common random numbers), so members are ranked on equal terms.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch

from synevo.optimizers.base import (
    Checkpointer,
    Metrics,
    Optimizer,
    OptimizerResult,
    Problem,
    Reporter,
    seeded_generator,
)
from synevo.seeding import sampling_seed, training_seeds

logger = logging.getLogger(__name__)

# Large D with a full covariance matrix costs O(D^2) memory and O(D^3) per decomposition.
_FULL_COVARIANCE = {"xnes", "cmaes"}


# evotorch options that only make sense as positive numbers (or per-dimension lists of them)
_POSITIVE = {
    "stdev_init",
    "radius_init",
    "center_learning_rate",
    "stdev_learning_rate",
    "parenthood_ratio",
    "stdev_min",
    "stdev_max",
    "stdev_max_change",
}


def _positive(value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values
    )


@dataclass(frozen=True)
class EvolutionSettings:
    """Settings shared by every evolution strategy.

    Args:
        popsize: genomes per generation.
        episodes: seeded episodes per network in a fitness evaluation.
        samples: 0 scores the expected network; s > 0 scores s sampled networks per genome
            (the paper's fitness) and averages their returns.
        options: keyword arguments of the evotorch algorithm (e.g. `stdev_init`,
            `center_learning_rate`); in a study file they sit beside the fields above.
    """

    popsize: int = 64
    episodes: int = 1
    samples: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name in ("popsize", "episodes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.samples, int) or self.samples < 0:
            raise ValueError(f"samples must be an integer >= 0, got {self.samples!r}")


class _Fitness:
    """Scores a population `(popsize, D)` and counts the environment steps it cost."""

    def __init__(self, problem: Problem, settings: EvolutionSettings, evaluator: Any):
        self.problem, self.settings, self.evaluator = problem, settings, evaluator
        self.generation = 0
        self.env_steps = 0
        self.last: dict[str, float] = {}

    def __call__(self, population: torch.Tensor) -> torch.Tensor:
        from synevo.evaluation import evaluate_population

        settings, seed = self.settings, self.problem.seed
        generator = None
        if settings.samples:
            generator = seeded_generator(sampling_seed(seed, self.generation))
        seeds = training_seeds(seed, self.generation, settings.episodes)
        population = population.detach().as_subclass(torch.Tensor)  # evotorch's is read-only
        fitness, rollouts = evaluate_population(
            self.problem.model, population, self.evaluator, seeds, settings.samples, generator
        )
        self.generation += 1
        self.env_steps += rollouts.env_steps
        self.last = {
            "rollout/return_mean": float(fitness.mean()),
            "rollout/return_max": float(fitness.max()),
            "rollout/return_min": float(fitness.min()),
            "rollout/episode_length_mean": float(rollouts.lengths.mean()),
            "rollout/env_steps": float(rollouts.env_steps),
        }
        return fitness


def _problem_class():
    """evotorch's Problem subclass, built lazily so importing synevo stays light."""
    from evotorch import Problem as EvoProblem

    class GenomeProblem(EvoProblem):
        def __init__(self, fitness: _Fitness, dim: int, seed: int):
            super().__init__("max", solution_length=dim, dtype=torch.float32, seed=seed)
            self._fitness = fitness

        def _fill(self, values: torch.Tensor) -> None:
            # CMA-ES allocates a first population before sampling it from the center
            values.zero_()

        def _evaluate_batch(self, batch):
            batch.set_evals(self._fitness(batch.values.detach()))

    return GenomeProblem


class EvolutionStrategy(Optimizer):
    """An evotorch search algorithm (named by the subclass) on the whole searched genome."""

    family: ClassVar[str] = "evolution"
    Settings: ClassVar[type] = EvolutionSettings
    algorithm: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, settings: EvolutionSettings | None = None, **kwargs: Any):
        if settings is None:
            own = {f.name for f in fields(EvolutionSettings)} - {"options"}
            options = {k: v for k, v in kwargs.items() if k not in own}
            settings = EvolutionSettings(
                **{k: v for k, v in kwargs.items() if k in own}, options=options
            )
        self.settings = settings
        self._check_options()

    def _algorithm_class(self):
        import evotorch.algorithms

        return getattr(evotorch.algorithms, self.algorithm)

    def _check_options(self) -> None:
        signature = inspect.signature(self._algorithm_class().__init__)
        reserved = {"self", "problem", "popsize", "center_init"}
        allowed = sorted(set(signature.parameters) - reserved)
        unknown = sorted(set(self.settings.options) - set(allowed))
        if unknown:
            own = [f.name for f in fields(EvolutionSettings) if f.name != "options"]
            raise ValueError(
                f"unknown setting(s) {unknown} for optimizer {self.name!r}; allowed: "
                f"{own} and evotorch {self.algorithm} options {allowed}"
            )
        for name, value in self.settings.options.items():
            if name in _POSITIVE and not _positive(value):
                raise ValueError(
                    f"{self.name} setting {name} must be a number > 0 (or a list of them), "
                    f"got {value!r}"
                )

    def params(self, task: str | None = None) -> dict[str, Any]:
        options = {**self.defaults, **self.settings.options}
        return {
            "optimizer": self.name,
            "algorithm": f"evotorch.{self.algorithm}",
            "popsize": self.settings.popsize,
            "episodes": self.settings.episodes,
            "samples": self.settings.samples,
            **options,
        }

    def run(self, problem: Problem, report: Reporter | None = None) -> OptimizerResult:
        from synevo.distributed import make_evaluator

        center = problem.model.init_genome(seeded_generator(problem.seed))
        if self.name in _FULL_COVARIANCE and center.numel() > 1000:
            logger.warning(
                "%s keeps a full %d x %d covariance; expect slow generations "
                "(search fewer genome parts, or use snes/pgpe/cem)",
                self.name,
                center.numel(),
                center.numel(),
            )
        evaluator = make_evaluator(problem.task, problem.workers)
        try:
            return self._run(problem, center, evaluator, report)
        finally:
            evaluator.close()

    def _run(self, problem, center, evaluator, report) -> OptimizerResult:
        fitness = _Fitness(problem, self.settings, evaluator)
        es_problem = _problem_class()(fitness, center.numel(), problem.seed)
        options = {**self.defaults, **self.settings.options}
        searcher = self._algorithm_class()(
            es_problem, popsize=self.settings.popsize, center_init=center, **options
        )
        checkpointer = Checkpointer(problem)
        history = [{"env_steps": 0.0, **checkpointer.evaluate(center, 0)}]
        if report:
            report(history[0])

        start, last_cost = time.perf_counter(), 0
        while fitness.env_steps + last_cost <= problem.budget:
            tic, before = time.perf_counter(), fitness.env_steps
            searcher.step()
            last_cost = fitness.env_steps - before
            row = self._row(searcher, fitness, time.perf_counter() - tic, start)

            done = fitness.env_steps + last_cost > problem.budget
            if checkpointer.due(fitness.env_steps) or done:
                row.update(checkpointer.evaluate(searcher.status["center"], fitness.env_steps))
            history.append(row)
            if report:
                report(row)
            logger.debug("generation %d: %s", fitness.generation, row)
        return checkpointer.result(fitness.env_steps, history)

    def _row(self, searcher, fitness: _Fitness, seconds: float, start: float) -> Metrics:
        status = searcher.status
        spread = status.get("stdev", status.get("stepsize"))
        return {
            "env_steps": float(fitness.env_steps),
            **fitness.last,
            "es/generation": float(fitness.generation),
            "es/stepsize": float(torch.as_tensor(spread).float().mean()),
            "time/env_steps_per_s": fitness.last["rollout/env_steps"] / max(seconds, 1e-9),
            "time/elapsed_s": time.perf_counter() - start,
        }


class SNES(EvolutionStrategy):
    """Separable natural evolution strategy (the paper's optimizer)."""

    name = "snes"
    algorithm = "SNES"
    defaults = {"stdev_init": 0.1}


class XNES(EvolutionStrategy):
    """Exponential natural evolution strategy (full covariance)."""

    name = "xnes"
    algorithm = "XNES"
    defaults = {"stdev_init": 0.05}


class CMAES(EvolutionStrategy):
    """Covariance matrix adaptation evolution strategy."""

    name = "cmaes"
    algorithm = "CMAES"
    defaults = {"stdev_init": 0.05}


class PGPE(EvolutionStrategy):
    """Policy gradients with parameter-based exploration, with the ClipUp optimizer."""

    name = "pgpe"
    algorithm = "PGPE"
    defaults = {
        "center_learning_rate": 0.05,
        "stdev_learning_rate": 0.1,
        "stdev_init": 0.05,
        "optimizer": "clipup",
        "optimizer_config": {"max_speed": 0.1},
    }

    def _check_options(self) -> None:
        super()._check_options()
        symmetric = self.settings.options.get("symmetric", True)
        if symmetric and self.settings.popsize % 2:
            raise ValueError(
                f"pgpe samples symmetric pairs: popsize must be even, got {self.settings.popsize}"
            )


class CEM(EvolutionStrategy):
    """The cross-entropy method."""

    name = "cem"
    algorithm = "CEM"
    defaults = {"stdev_init": 0.1, "parenthood_ratio": 0.25}
