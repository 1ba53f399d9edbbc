"""The optimizer families, one registry: gradient descent (DQN) and evolution strategies."""

from __future__ import annotations

from typing import Any

from synevo.optimizers.base import Optimizer, OptimizerResult, Problem
from synevo.optimizers.dqn import DQN
from synevo.optimizers.evolution import CEM, CMAES, PGPE, SNES, XNES

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (DQN, SNES, XNES, CMAES, PGPE, CEM)
}


def make_optimizer(name: str, settings: dict[str, Any] | None = None) -> Optimizer:
    """Build a registered optimizer from study-file settings.

    Raises:
        ValueError: for an unknown name or setting, naming the allowed ones.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {sorted(OPTIMIZERS)}")
    try:
        return OPTIMIZERS[name](**(settings or {}))
    except TypeError as error:
        raise ValueError(f"optimizer {name!r}: {error}") from None


__all__ = ["OPTIMIZERS", "Optimizer", "OptimizerResult", "Problem", "make_optimizer"]
