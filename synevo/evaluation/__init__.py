"""The evaluation room: which tasks synevo runs, and greedy seeded rollouts of networks."""

from synevo.evaluation.rollout import Evaluator, Rollouts, evaluate_population
from synevo.evaluation.tasks import TaskInfo, check_task

__all__ = [
    "Evaluator",
    "Rollouts",
    "TaskInfo",
    "check_task",
    "evaluate_population",
]
