"""Ray distribution: results independent of the number of workers, dead workers replaced."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from synevo.distributed import RayEvaluator, make_evaluator
from synevo.distributed.evaluator import pack, unpack
from synevo.evaluation import Evaluator, evaluate_population
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
    assert set(split.seconds) == {"forward", "env", "weights", "total", "transfer"}
    assert 0 <= split.seconds["transfer"] <= split.seconds["total"]


def test_genomes_sent_to_workers_give_the_in_process_fitness(ray_session):
    model = build_model("synaptogen", 4, 2, genes=8, hidden=[32])
    generator = torch.Generator().manual_seed(1)
    population = torch.stack([model.init_genome(generator) for _ in range(9)])
    seeds = [3, 4]
    local_fitness, local = evaluate_population(model, population, Evaluator("CartPole-v1"), seeds)
    remote = RayEvaluator("CartPole-v1", 2)
    try:
        fitness, split = evaluate_population(model, population, remote, seeds)
    finally:
        remote.close()
    np.testing.assert_array_equal(local.returns, split.returns)
    assert torch.equal(local_fitness, fitness)
    assert split.seconds["weights"] > 0


def test_fewer_networks_than_workers_play_on_some_of_them(ray_session, population_network):
    one = [(w[:1], b[:1]) for w, b in population_network]
    local = Evaluator("CartPole-v1").evaluate(one, [5, 6])
    remote = RayEvaluator("CartPole-v1", 2)
    try:
        split = remote.evaluate(one, [5, 6])
    finally:
        remote.close()
    np.testing.assert_array_equal(local.returns, split.returns)


@pytest.mark.parametrize("name", ["synaptogen", "mlp"])
def test_a_chunk_of_genomes_gets_the_rows_of_the_whole_populations_weights(name: str):
    # what lets workers build their own chunk's weights
    extra = {"genes": 16} if name == "synaptogen" else {}
    model = build_model(name, 8, 4, hidden=[128], **extra)
    generator = torch.Generator().manual_seed(2)
    population = torch.stack([model.init_genome(generator) for _ in range(13)])
    whole = model.weights(population)
    for rows in (slice(0, 1), slice(3, 10), slice(10, 13)):
        part = model.weights(population[rows])
        for (w, b), (w2, b2) in zip(whole, part, strict=True):
            assert torch.equal(w[rows], w2) and torch.equal(b[rows], b2)


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
    flat, shapes = pickle.loads(pickle.dumps(pack(population_network)))
    flat.flags.writeable = False  # as Ray hands large arrays to a worker
    clone = unpack(flat, shapes)
    assert flat.dtype == np.float32 and flat.ndim == 1
    for (w, b), (w2, b2) in zip(population_network, clone, strict=True):
        assert torch.equal(w, w2) and torch.equal(b, b2)


def test_make_evaluator_rejects_negative_workers():
    with pytest.raises(ValueError, match="workers must be >= 0"):
        make_evaluator("CartPole-v1", -1)
