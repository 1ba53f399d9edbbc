"""The optimizer contract (every registered optimizer, both families) and evolution specifics."""

from __future__ import annotations

import pytest
import torch

from synevo.evaluation import Evaluator
from synevo.models import build_model
from synevo.optimizers import OPTIMIZERS, make_optimizer
from synevo.optimizers.base import Problem, seeded_generator
from synevo.optimizers.evolution import EvolutionSettings, _Fitness
from synevo.seeding import sampling_seed, training_seeds

TINY = {"genes": 4, "hidden": [8]}


def tiny_problem(budget: int = 3000, seed: int = 0, **kwargs) -> Problem:
    model = build_model("synaptogen", 4, 2, **TINY)
    return Problem(model, "CartPole-v1", budget, seed, eval_every=1000, eval_episodes=3, **kwargs)


def small_settings(name: str) -> dict:
    if name == "dqn":
        return {"learning_starts": 100, "train_freq": 4, "gradient_steps": 1}
    return {"popsize": 8}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_contract(name):
    problem = tiny_problem()
    optimizer = make_optimizer(name, small_settings(name))
    rows = []
    result = optimizer.run(problem, report=rows.append)

    assert optimizer.family in ("gradient", "evolution")
    assert result.best_genome.shape == (problem.model.genome_size,)
    assert torch.isfinite(result.best_genome).all()
    # a plain tensor, not evotorch's read-only one: sampling it uses in-place ops
    assert type(result.best_genome) is torch.Tensor
    assert rows == result.history
    steps = [row["env_steps"] for row in result.history]
    assert steps == sorted(steps) and steps[0] == 0
    # the budget is spent, and at most one generation's worth of it is left over
    assert 0.5 * problem.budget <= result.env_steps <= 1.2 * problem.budget
    evals = [row["eval/return_mean"] for row in result.history if "eval/return_mean" in row]
    assert len(evals) >= 2 and result.best_eval_return == max(evals)
    assert "eval/return_mean" in result.history[-1]


@pytest.mark.parametrize("name", ["snes", "pgpe"])
def test_same_seed_same_history(name):
    first = make_optimizer(name, {"popsize": 8}).run(tiny_problem(seed=3))
    second = make_optimizer(name, {"popsize": 8}).run(tiny_problem(seed=3))
    other = make_optimizer(name, {"popsize": 8}).run(tiny_problem(seed=4))

    strip = [{k: v for k, v in r.items() if not k.startswith("time/")} for r in first.history]
    again = [{k: v for k, v in r.items() if not k.startswith("time/")} for r in second.history]
    assert strip == again
    assert torch.equal(first.best_genome, second.best_genome)
    assert not torch.equal(first.best_genome, other.best_genome)


def test_sampled_fitness_averages_each_genomes_sampled_networks():
    model = build_model("synaptogen", 4, 2, genes=4, hidden=[16], degree=50.0)
    problem = Problem(model, "CartPole-v1", 1000, 0)
    generator = torch.Generator().manual_seed(1)
    population = torch.stack([model.init_genome(generator) for _ in range(6)])
    sampled = _Fitness(problem, EvolutionSettings(samples=3, episodes=2), Evaluator("CartPole-v1"))
    expected = _Fitness(problem, EvolutionSettings(episodes=2), Evaluator("CartPole-v1"))

    fitness = sampled(population)

    # by hand: 3 networks per genome (member-major), 2 episodes each, 6 returns averaged
    network = model.sample(population, seeded_generator(sampling_seed(0, 0)), 3)
    returns = Evaluator("CartPole-v1").evaluate(network, training_seeds(0, 0, 2)).returns
    reference = torch.as_tensor(returns, dtype=torch.float32).reshape(6, 6).mean(dim=1)
    torch.testing.assert_close(fitness, reference)
    assert not torch.equal(fitness, expected(population))


def test_evotorch_options_reach_the_algorithm_and_unknown_ones_are_named():
    optimizer = make_optimizer("cem", {"popsize": 8, "parenthood_ratio": 0.5})
    assert optimizer.params()["parenthood_ratio"] == 0.5
    with pytest.raises(ValueError, match="stdev_inti.*allowed.*stdev_init"):
        make_optimizer("snes", {"stdev_inti": 0.1})
    with pytest.raises(ValueError, match="popsize must be an integer >= 1, got 0"):
        make_optimizer("snes", {"popsize": 0})
    with pytest.raises(ValueError, match="stdev_init must be a number > 0.*got 'big'"):
        make_optimizer("snes", {"stdev_init": "big"})
    with pytest.raises(ValueError, match="stdev_init must be a number > 0.*got -1.0"):
        make_optimizer("cem", {"stdev_init": -1.0})
    with pytest.raises(ValueError, match="popsize must be even, got 7"):
        make_optimizer("pgpe", {"popsize": 7})
    with pytest.raises(ValueError, match="unknown optimizer 'adam'.*allowed"):
        make_optimizer("adam", {})


def test_problem_rejects_a_bad_budget():
    with pytest.raises(ValueError, match="budget must be > 0"):
        tiny_problem(budget=0)


def test_snes_learns_cartpole():
    """SNES on the full SynaptoGen genome solves CartPole within 150k steps (3 s here)."""
    model = build_model("synaptogen", 4, 2, genes=16, hidden=[128])
    problem = Problem(model, "CartPole-v1", 150_000, 1, eval_every=10_000, eval_episodes=20)
    result = make_optimizer("snes", {"popsize": 64}).run(problem)
    assert result.best_eval_return >= 475


@pytest.mark.parametrize("sampler", ["exact", "fast"])
def test_sampled_fitness_runs_with_either_sampler(sampler):
    """evotorch hands out read-only populations; both samplers must accept them."""
    model = build_model("synaptogen", 4, 2, genes=4, hidden=[8], sampler=sampler)
    problem = Problem(model, "CartPole-v1", budget=600, seed=0, eval_every=300, eval_episodes=2)
    result = make_optimizer("snes", {"popsize": 4, "samples": 2}).run(problem, None)

    assert result.env_steps >= 300
    assert torch.isfinite(result.best_genome).all()
