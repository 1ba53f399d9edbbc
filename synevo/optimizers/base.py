"""The one interface both optimizer families implement.

`Optimizer.run(problem, report)` takes a genome model, a task, an environment-step budget and a
seed, and returns the best genome plus a history of metrics keyed by environment steps. Both
families spend the same budget: every environment step a *training* rollout takes is counted.
Checkpoint evaluations (greedy, seeded episodes of the current genome, every `eval_every`
steps) are the same for both families and are counted apart, as `eval/env_steps`.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from synevo.models.base import GenomeModel
from synevo.seeding import checkpoint_seeds
from synevo.types import Genome

Metrics = dict[str, float]
"""Namespaced metrics of one generation or evaluation; always holds `env_steps`."""

Reporter = Callable[[Metrics], None]
"""Receives each history row as soon as it exists (progress bars, MLflow)."""


@dataclass(frozen=True)
class Problem:
    """What one trial optimizes.

    Args:
        model: the genome model; `init_genome` is called on it with the trial seed.
        task: a gymnasium environment id with a discrete action space.
        budget: training environment steps.
        seed: the trial seed; every random draw of the trial derives from it.
        eval_every: training steps between two checkpoint evaluations.
        eval_episodes: greedy seeded episodes per checkpoint evaluation.
        workers: Ray workers that share a generation's rollouts; 0 evaluates in-process.
    """

    model: GenomeModel
    task: str
    budget: int
    seed: int
    eval_every: int = 10_000
    eval_episodes: int = 20
    workers: int = 0

    def __post_init__(self):
        if self.budget <= 0:
            raise ValueError(f"budget must be > 0 environment steps, got {self.budget}")
        if self.eval_every <= 0:
            raise ValueError(f"eval_every must be > 0 environment steps, got {self.eval_every}")
        if self.eval_episodes <= 0:
            raise ValueError(f"eval_episodes must be > 0, got {self.eval_episodes}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0 = in-process), got {self.workers}")


@dataclass
class OptimizerResult:
    """The best genome found (by checkpoint evaluation) and the trial's history."""

    best_genome: Genome
    best_eval_return: float
    env_steps: int
    history: list[Metrics] = field(default_factory=list)


class Optimizer(abc.ABC):
    """An optimizer family member, configured by a frozen dataclass of settings."""

    name: ClassVar[str]
    family: ClassVar[str]  # "gradient" or "evolution"
    Settings: ClassVar[type]

    def __init__(self, settings: Any = None, **kwargs: Any):
        self.settings = settings if settings is not None else make_settings(self.Settings, kwargs)

    @abc.abstractmethod
    def run(self, problem: Problem, report: Reporter | None = None) -> OptimizerResult:
        """Optimize `problem.model`'s genome within `problem.budget` environment steps."""

    def params(self, task: str | None = None) -> dict[str, Any]:
        """The settings as a flat dict, for tracking, resolved for `task` where that matters."""
        return {"optimizer": self.name, **dataclasses.asdict(self.settings)}


def make_settings(cls: type, values: dict[str, Any]):
    """Build a settings dataclass, naming unknown fields and the allowed ones."""
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; allowed: {allowed}")
    return cls(**values)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU torch generator seeded with `seed`."""
    return torch.Generator().manual_seed(int(seed))


class Checkpointer:
    """Evaluates the current genome every `eval_every` training steps and keeps the best.

    Both families use it, so checkpoints are chosen by the same rule: the mean return of
    the expected network over `eval_episodes` greedy episodes, the same seeded episodes at
    every checkpoint of a trial (ties go to the later checkpoint).
    """

    def __init__(self, problem: Problem):
        from synevo.evaluation import Evaluator

        self.problem = problem
        self.evaluator = Evaluator(problem.task)
        self.seeds = checkpoint_seeds(problem.seed, problem.eval_episodes)
        self.best_genome: Genome | None = None
        self.best_return = -math.inf
        self.eval_env_steps = 0
        self._next_at = 0

    def due(self, env_steps: int) -> bool:
        """Whether a checkpoint evaluation is due after `env_steps` training steps."""
        return env_steps >= self._next_at

    def evaluate(self, genome: Genome, env_steps: int) -> Metrics:
        """Evaluate `genome` `(D,)`; returns the `eval/*` metrics of this checkpoint."""
        genome = genome.detach().as_subclass(torch.Tensor).clone().float()  # not read-only
        with torch.no_grad():
            network = self.problem.model.weights(genome.unsqueeze(0))
        rollouts = self.evaluator.evaluate(network, self.seeds)
        mean = float(rollouts.returns.mean())
        self.eval_env_steps += rollouts.env_steps
        if mean >= self.best_return:
            self.best_return, self.best_genome = mean, genome
        every = self.problem.eval_every
        self._next_at = (env_steps // every + 1) * every
        return {
            "eval/return_mean": mean,
            "eval/return_std": float(rollouts.returns.std()),
            "eval/best_return": self.best_return,
            "eval/env_steps": float(self.eval_env_steps),
        }

    def result(self, env_steps: int, history: list[Metrics]) -> OptimizerResult:
        """The trial's result: the best checkpoint and the history."""
        if self.best_genome is None:
            raise RuntimeError("no checkpoint was evaluated; call evaluate() at least once")
        return OptimizerResult(self.best_genome, self.best_return, env_steps, history)
