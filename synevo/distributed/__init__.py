"""Distribution over Ray: the runtime, population evaluation on workers, trials as tasks."""

from synevo.distributed.evaluator import RayEvaluator, make_evaluator
from synevo.distributed.runtime import init_ray, shutdown_ray

__all__ = ["RayEvaluator", "init_ray", "make_evaluator", "shutdown_ray"]
