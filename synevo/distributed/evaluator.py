"""Population evaluation split over Ray actors, with the in-process evaluator's results.

A generation's batch of networks is cut into contiguous chunks, one per worker; every chunk
plays the same seeded episodes, so the returns do not depend on the number of workers.
Workers only compute returns: they never write to MLflow.

A chunk travels as one contiguous numpy array (Ray stores large numpy arrays once and
workers map them without unpickling), not as a list of torch tensors. `evaluate_genomes`
sends genomes instead of weights, so that the workers also share the weight construction
(`model.weights` treats every member alone, so a chunk's weights are the rows of the whole
population's). Actors live as long as the RayEvaluator and keep their environments between
generations; each runs one torch thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from synevo.distributed.runtime import import_ray, init_ray
from synevo.evaluation import Evaluator, Rollouts
from synevo.models.base import GenomeModel
from synevo.threads import set_threads
from synevo.types import Network, Population

logger = logging.getLogger(__name__)


def pack(network: Network) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """A batch of networks as one flat float32 array and the shapes of its tensors."""
    tensors = [t for layer in network for t in layer]
    flat = torch.cat([t.detach().reshape(-1).to("cpu", torch.float32) for t in tensors])
    return flat.numpy(), [tuple(t.shape) for t in tensors]


def unpack(flat: np.ndarray, shapes: list[tuple[int, ...]]) -> Network:
    """The inverse of `pack`; the tensors are copies, so `flat` may be read-only."""
    tensors, start = [], 0
    whole = torch.from_numpy(np.array(flat, dtype=np.float32))
    for shape in shapes:
        size = int(np.prod(shape))
        tensors.append(whole[start : start + size].view(shape))
        start += size
    return list(zip(tensors[0::2], tensors[1::2], strict=True))


class _Worker:
    """A Ray actor holding one environment pool; one torch and BLAS thread per worker."""

    def __init__(self, env_id: str):
        set_threads(1)
        self.evaluator = Evaluator(env_id)

    def evaluate(
        self, flat: np.ndarray, shapes: list[tuple[int, ...]], seeds: Sequence[int]
    ) -> Rollouts:
        return self.evaluator.evaluate(unpack(flat, shapes), seeds)

    def evaluate_genomes(
        self, model: GenomeModel, genomes: np.ndarray, seeds: Sequence[int]
    ) -> Rollouts:
        start = time.perf_counter()
        with torch.no_grad():
            network = model.weights(torch.from_numpy(np.array(genomes)))
        built = time.perf_counter() - start
        rollouts = self.evaluator.evaluate(network, seeds)
        rollouts.seconds["weights"] = built
        rollouts.seconds["total"] += built
        return rollouts


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
        """Evaluate a batch of networks; same result as `Evaluator.evaluate`.

        The rollouts' `seconds` sum the workers' forward and env time and add `"transfer"`,
        this call's time beyond its slowest worker's (packing, the object store, scheduling).
        """
        start = time.perf_counter()
        pieces = [
            pack([(w[c[0] : c[-1] + 1], b[c[0] : c[-1] + 1]) for w, b in network])
            for c in self._chunks(network[0][0].shape[0])
        ]
        return self._scatter("evaluate", pieces, seeds, start)

    def evaluate_genomes(
        self, model: GenomeModel, population: Population, seeds: Sequence[int]
    ) -> Rollouts:
        """`evaluate(model.weights(population), seeds)`, the weights built on the workers.

        Args:
            population: `(popsize, D)` genomes.
        """
        start = time.perf_counter()
        genomes = population.detach().cpu().numpy()
        model_ref = self.ray.put(model)
        pieces = [(model_ref, genomes[c[0] : c[-1] + 1]) for c in self._chunks(len(genomes))]
        return self._scatter("evaluate_genomes", pieces, seeds, start)

    def _chunks(self, batch: int) -> list[np.ndarray]:
        """Contiguous member indices, one non-empty chunk per worker (fewer if batch is small)."""
        return [c for c in np.array_split(np.arange(batch), len(self._actors)) if len(c)]

    def _scatter(
        self, method: str, pieces: list[tuple], seeds: Sequence[int], start: float
    ) -> Rollouts:
        """Call `method(*piece, seeds)` on worker i for piece i; the merged Rollouts."""
        seeds = [int(s) for s in seeds]
        refs = [
            getattr(actor, method).remote(*piece, seeds)
            for actor, piece in zip(self._actors[: len(pieces)], pieces, strict=True)
        ]
        results = [self._get(i, ref, pieces[i], seeds, method) for i, ref in enumerate(refs)]
        return _merge(results, time.perf_counter() - start)

    def _get(self, index: int, ref, piece: tuple, seeds: list[int], method: str) -> Rollouts:
        """Fetch one chunk; a dead worker is replaced once and its chunk re-run."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except (exceptions.RayActorError, exceptions.WorkerCrashedError) as error:
            logger.warning("Ray worker %d died (%s); replacing it and retrying", index, error)
            self._actors[index] = self._remote.remote(self.env_id)
            try:
                retry = getattr(self._actors[index], method).remote(*piece, seeds)
                return self.ray.get(retry)
            except (exceptions.RayActorError, exceptions.WorkerCrashedError) as again:
                raise RuntimeError(
                    f"Ray worker {index} died twice evaluating its chunk of {self.env_id}: {again}"
                ) from again

    def close(self) -> None:
        """Stop the actors (the Ray runtime stays up)."""
        for actor in self._actors:
            self.ray.kill(actor)
        self._actors = []


def _merge(results: list[Rollouts], seconds: float) -> Rollouts:
    """One Rollouts from the workers' chunks, in chunk order."""
    returns = np.concatenate([r.returns for r in results])
    lengths = np.concatenate([r.lengths for r in results])
    keys = ("forward", "env", "weights")
    spent = {key: sum(r.seconds.get(key, 0.0) for r in results) for key in keys}
    slowest = max(r.seconds.get("total", 0.0) for r in results)
    spent |= {"total": seconds, "transfer": max(seconds - slowest, 0.0)}
    return Rollouts(returns, lengths, int(lengths.sum()), spent)


def make_evaluator(env_id: str, workers: int = 0) -> Evaluator | RayEvaluator:
    """In-process evaluation for `workers == 0`, else a `RayEvaluator` of `workers` actors."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = in-process), got {workers}")
    return Evaluator(env_id) if workers == 0 else RayEvaluator(env_id, workers)
