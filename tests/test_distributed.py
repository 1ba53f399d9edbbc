"""Ray distribution: results independent of the number of workers, dead workers replaced."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from synevo.distributed import RayEvaluator, make_evaluator
from synevo.evaluation import Evaluator
from synevo.models import build_model
from synevo.optimizers import make_optimizer
from synevo.optimizers.base import Problem
from synevo.study.trial import TrialSpec


@pytest.fixture(scope="module")
def population_network():
    model = build_model("synaptogen", 4, 2, genes=4, hidden=[16])
    generator = torch.Generator().manual_seed(0)
    population = torch.stack([model.init_genome(generator) for _ in range(7)])
    return model.weights(population)


def test_two_workers_give_the_in_process_returns(ray_session, population_network):
    seeds = [11, 12, 13]
    local = Evaluator("CartPole-v1").evaluate(population_network, seeds)
    remote = RayEvaluator("CartPole-v1", 2)
    try:
        split = remote.evaluate(population_network, seeds)
    finally:
        remote.close()
    np.testing.assert_array_equal(local.returns, split.returns)
    np.testing.assert_array_equal(local.lengths, split.lengths)
    assert local.env_steps == split.env_steps


def test_a_dead_worker_is_replaced_and_its_chunk_rerun(ray_session, population_network):
    import ray

    seeds = [5, 6]
    local = Evaluator("CartPole-v1").evaluate(population_network, seeds)
    remote = RayEvaluator("CartPole-v1", 2)
    try:
        ray.kill(remote._actors[1])
        split = remote.evaluate(population_network, seeds)
    finally:
        remote.close()
    np.testing.assert_array_equal(local.returns, split.returns)


def test_evolution_history_does_not_depend_on_workers(ray_session):
    def run(workers: int):
        model = build_model("synaptogen", 4, 2, genes=4, hidden=[8])
        problem = Problem(model, "CartPole-v1", 2000, 7, 1000, 3, workers=workers)
        return make_optimizer("snes", {"popsize": 8}).run(problem)

    alone, split = run(0), run(2)
    key = "rollout/return_mean"
    assert [r.get(key) for r in alone.history] == [r.get(key) for r in split.history]
    assert torch.equal(alone.best_genome, split.best_genome)


def test_everything_sent_to_ray_survives_pickling(population_network):
    spec = TrialSpec("CartPole-v1", "synaptogen", {"genes": 4}, "snes", {}, "snes", 1, 1000)
    assert pickle.loads(pickle.dumps(spec)) == spec
    clone = pickle.loads(pickle.dumps(population_network))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(clone, population_network, strict=True))


def test_make_evaluator_rejects_negative_workers():
    with pytest.raises(ValueError, match="workers must be >= 0"):
        make_evaluator("CartPole-v1", -1)
