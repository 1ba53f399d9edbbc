"""Tests of the evaluation room on real gymnasium tasks: task checks, seeds, rollouts."""

from __future__ import annotations

import pickle
from itertools import pairwise

import gymnasium as gym
import numpy as np
import pytest
import torch

from synevo.evaluation import (
    Evaluator,
    Rollouts,
    TaskInfo,
    check_task,
    evaluate_population,
)
from synevo.models import build_model
from synevo.models.base import forward
from synevo.seeding import training_seeds
from synevo.types import Network

TASKS = {
    # env_id: (obs_dim, n_actions, max_episode_steps, gym_threshold, paper_threshold)
    "CartPole-v1": (4, 2, 500, 475.0, 195.0),
    "Acrobot-v1": (6, 3, 500, -100.0, -500.0),
    "MountainCar-v0": (2, 3, 200, -110.0, -200.0),
    "LunarLander-v3": (8, 4, 1000, 200.0, 200.0),
}


def random_network(sizes: list[int], batch: int, seed: int, gain: float = 1.0) -> Network:
    """A batch of random networks with layer sizes `sizes`, weights `(batch, n_pre, n_post)`."""
    g = torch.Generator().manual_seed(seed)
    network = []
    for n_pre, n_post in pairwise(sizes):
        w = torch.randn(batch, n_pre, n_post, generator=g) * gain / n_pre**0.5
        b = torch.randn(batch, n_post, generator=g) * 0.1
        network.append((w, b))
    return network


def member(network: Network, m: int) -> Network:
    """Member `m` of a batch of networks, as a batch of one."""
    return [(w[m : m + 1], b[m : m + 1]) for w, b in network]


def reference_episode(env_id: str, network: Network, seed: int) -> tuple[float, int]:
    """A plain gymnasium loop with one forward per step: (return, length) of one episode."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        x = torch.as_tensor(obs, dtype=torch.float32).view(1, 1, -1)
        with torch.no_grad():
            action = int(forward(network, x).argmax())
        obs, reward, terminated, truncated, _ = env.step(action)
        total, steps, done = total + float(reward), steps + 1, terminated or truncated
    env.close()
    return total, steps


# -- check_task -------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", sorted(TASKS))
def test_check_task_describes_paper_tasks(env_id: str):
    expected = TaskInfo(env_id, *TASKS[env_id])
    assert check_task(env_id) == expected


def test_check_task_names_the_gymnasium_1_version_of_paper_ids():
    with pytest.raises(ValueError, match="LunarLander-v3"):
        check_task("LunarLander-v2")


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0"])
def test_check_task_rejects_continuous_actions(env_id: str):
    with pytest.raises(ValueError, match=f"discrete action space; {env_id} has Box"):
        check_task(env_id)


def test_check_task_rejects_non_vector_observations():
    with pytest.raises(ValueError, match="1-D Box observation space; FrozenLake-v1 has Discrete"):
        check_task("FrozenLake-v1")


def test_check_task_suggests_close_ids_for_typos():
    with pytest.raises(ValueError, match="unknown environment id 'CartPol-v1'.*CartPole-v1"):
        check_task("CartPol-v1")
    with pytest.raises(ValueError, match="malformed"):
        check_task("not an id!")


# -- Evaluator --------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", sorted(TASKS))
def test_evaluate_matches_a_plain_gymnasium_loop(env_id: str):
    obs_dim, n_actions, max_steps = TASKS[env_id][:3]
    network = random_network([obs_dim, 16, n_actions], batch=2, seed=1, gain=3.0)
    seeds = [11, 12]

    rollouts = Evaluator(env_id).evaluate(network, seeds)

    assert rollouts.returns.shape == rollouts.lengths.shape == (2, 2)
    assert rollouts.returns.dtype == np.float64 and rollouts.lengths.dtype == np.int64
    assert rollouts.env_steps == int(rollouts.lengths.sum())
    assert (rollouts.lengths <= max_steps).all()
    for m in range(2):
        for e, seed in enumerate(seeds):
            ret, length = reference_episode(env_id, member(network, m), seed)
            assert rollouts.returns[m, e] == ret
            assert rollouts.lengths[m, e] == length


def test_evaluate_is_deterministic_given_seeds():
    network = random_network([4, 32, 2], batch=6, seed=2, gain=3.0)
    evaluator = Evaluator("CartPole-v1")

    first = evaluator.evaluate(network, [1, 2, 3])
    again = evaluator.evaluate(network, [1, 2, 3])
    other = evaluator.evaluate(network, [4, 5, 6])

    np.testing.assert_array_equal(first.returns, again.returns)
    np.testing.assert_array_equal(first.lengths, again.lengths)
    assert not np.array_equal(first.returns, other.returns)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "LunarLander-v3"])
def test_batched_evaluation_equals_evaluating_each_member_alone(env_id: str):
    # what makes results independent of how a population is split between workers
    obs_dim, n_actions = TASKS[env_id][:2]
    network = random_network([obs_dim, 32, n_actions], batch=5, seed=3, gain=3.0)
    seeds = [21, 22]

    batched = Evaluator(env_id).evaluate(network, seeds)
    alone = [Evaluator(env_id).evaluate(member(network, m), seeds) for m in range(5)]

    assert len(np.unique(batched.lengths)) > 2  # members end at different times
    np.testing.assert_array_equal(batched.returns, np.concatenate([r.returns for r in alone]))
    np.testing.assert_array_equal(batched.lengths, np.concatenate([r.lengths for r in alone]))


def test_reused_pool_gives_the_same_rollouts_as_a_fresh_one():
    big = random_network([6, 16, 3], batch=4, seed=4, gain=3.0)
    small = random_network([6, 16, 3], batch=2, seed=5, gain=3.0)
    evaluator = Evaluator("Acrobot-v1")

    evaluator.evaluate(big, [1, 2])
    reused = evaluator.evaluate(small, [3])
    fresh = Evaluator("Acrobot-v1").evaluate(small, [3])

    np.testing.assert_array_equal(reused.returns, fresh.returns)


def test_evaluator_survives_a_pickle_round_trip_after_running():
    network = random_network([4, 16, 2], batch=3, seed=6, gain=3.0)
    evaluator = Evaluator("CartPole-v1")
    before = evaluator.evaluate(network, [7, 8])

    payload = pickle.dumps(evaluator)
    copy = pickle.loads(payload)
    after = copy.evaluate(network, [7, 8])

    assert len(payload) < 2_000  # no environments inside
    assert copy.task == evaluator.task
    np.testing.assert_array_equal(before.returns, after.returns)
    np.testing.assert_array_equal(before.lengths, after.lengths)


def test_evaluate_rejects_networks_that_do_not_fit_the_task():
    evaluator = Evaluator("CartPole-v1")
    with pytest.raises(ValueError, match="input size 5 does not match the observation size 4"):
        evaluator.evaluate(random_network([5, 8, 2], batch=1, seed=0), [0])
    with pytest.raises(ValueError, match="output size 3 does not match the 2 actions"):
        evaluator.evaluate(random_network([4, 8, 3], batch=1, seed=0), [0])
    with pytest.raises(ValueError, match="at least one seed"):
        evaluator.evaluate(random_network([4, 8, 2], batch=1, seed=0), [])


def test_evaluate_runs_on_its_own_thread_count_and_restores_torchs():
    network = random_network([4, 8, 2], batch=2, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        Evaluator("CartPole-v1", threads=1).evaluate(network, [0])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="threads must be an int >= 1"):
        Evaluator("CartPole-v1", threads=0)


# -- evaluate_population ----------------------------------------------------------------------


def population_of(model, popsize: int, seed: int) -> torch.Tensor:
    """`(popsize, D)` genomes drawn with the model's own initialization."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([model.init_genome(g) for _ in range(popsize)])


def test_evaluate_population_uses_the_expected_network():
    model = build_model("mlp", obs_dim=4, n_actions=2, hidden=[16])
    population = population_of(model, popsize=4, seed=9)
    evaluator = Evaluator("CartPole-v1")
    seeds = training_seeds(0, 0, 3)

    fitness, rollouts = evaluate_population(model, population, evaluator, seeds)
    direct = evaluator.evaluate(model.weights(population), seeds)

    assert isinstance(rollouts, Rollouts) and fitness.shape == (4,)
    assert fitness.dtype == population.dtype
    np.testing.assert_array_equal(rollouts.returns, direct.returns)
    np.testing.assert_allclose(fitness.numpy(), direct.returns.mean(axis=1), rtol=1e-6)


def test_evaluate_population_averages_samples_per_member():
    # the plain MLP samples its expected network, so s samples repeat each member s times
    model = build_model("mlp", obs_dim=4, n_actions=2, hidden=[16])
    population = population_of(model, popsize=3, seed=10)
    evaluator = Evaluator("CartPole-v1")
    seeds = [5, 6]

    expected, _ = evaluate_population(model, population, evaluator, seeds)
    sampled, rollouts = evaluate_population(
        model, population, evaluator, seeds, samples=2, generator=torch.Generator()
    )

    assert rollouts.returns.shape == (6, 2)
    np.testing.assert_array_equal(rollouts.returns[0::2], rollouts.returns[1::2])
    torch.testing.assert_close(sampled, expected)
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        evaluate_population(model, population, evaluator, seeds, samples=2)


def test_genomes_with_an_overflowing_sum_are_finite_but_nan_is_not():
    model = build_model("mlp", obs_dim=4, n_actions=2, hidden=[4])
    population = torch.full((2, model.genome_size), 3e38)
    model.unflatten(population)  # the row sums overflow, the values are finite
    population[1, 5] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf values \(members \[1\]\)"):
        model.unflatten(population)
