"""Population evaluation split over Ray actors, with the in-process evaluator's results.

A generation's batch of networks is cut into contiguous chunks, one per worker; every chunk
plays the same seeded episodes, so the returns do not depend on the number of workers.
Workers only compute returns: they never write to MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from synevo.distributed.runtime import import_ray, init_ray
from synevo.evaluation import Evaluator, Rollouts
from synevo.types import Network

logger = logging.getLogger(__name__)


class _Worker:
    """A Ray actor holding one environment pool; one torch thread per worker."""

    def __init__(self, env_id: str):
        import torch

        torch.set_num_threads(1)
        self.evaluator = Evaluator(env_id)

    def evaluate(self, network: Network, seeds: Sequence[int]) -> Rollouts:
        return self.evaluator.evaluate(network, seeds)


class RayEvaluator:
    """`Evaluator.evaluate` over `workers` Ray actors (Ray is started if needed).

    Raises:
        RuntimeError: when a worker dies twice on the same chunk.
    """

    def __init__(self, env_id: str, workers: int):
        if workers < 1:
            raise ValueError(f"workers must be >= 1 for a RayEvaluator, got {workers}")
        self.ray = import_ray()
        init_ray()
        self.env_id = env_id
        self._remote = self.ray.remote(num_cpus=1)(_Worker)
        self._actors = [self._remote.remote(env_id) for _ in range(workers)]

    def evaluate(self, network: Network, seeds: Sequence[int]) -> Rollouts:
        """Evaluate a batch of networks; same result as `Evaluator.evaluate`."""
        batch = network[0][0].shape[0]
        chunks = [c for c in np.array_split(np.arange(batch), len(self._actors)) if len(c)]
        pieces = [[(w[c[0] : c[-1] + 1], b[c[0] : c[-1] + 1]) for w, b in network] for c in chunks]
        refs = [
            a.evaluate.remote(p, list(seeds)) for a, p in zip(self._actors, pieces, strict=True)
        ]
        results = [self._get(i, ref, pieces[i], seeds) for i, ref in enumerate(refs)]
        returns = np.concatenate([r.returns for r in results])
        lengths = np.concatenate([r.lengths for r in results])
        return Rollouts(returns=returns, lengths=lengths, env_steps=int(lengths.sum()))

    def _get(self, index: int, ref, piece: Network, seeds: Sequence[int]) -> Rollouts:
        """Fetch one chunk; a dead worker is replaced once and its chunk re-run."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except (exceptions.RayActorError, exceptions.WorkerCrashedError) as error:
            logger.warning("Ray worker %d died (%s); replacing it and retrying", index, error)
            self._actors[index] = self._remote.remote(self.env_id)
            try:
                return self.ray.get(self._actors[index].evaluate.remote(piece, list(seeds)))
            except (exceptions.RayActorError, exceptions.WorkerCrashedError) as again:
                raise RuntimeError(
                    f"Ray worker {index} died twice evaluating its chunk of {self.env_id}: {again}"
                ) from again

    def close(self) -> None:
        """Stop the actors (the Ray runtime stays up)."""
        for actor in self._actors:
            self.ray.kill(actor)
        self._actors = []


def make_evaluator(env_id: str, workers: int = 0) -> Evaluator | RayEvaluator:
    """In-process evaluation for `workers == 0`, else a `RayEvaluator` of `workers` actors."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = in-process), got {workers}")
    return Evaluator(env_id) if workers == 0 else RayEvaluator(env_id, workers)
