"""The vector CartPole path gives the returns of one environment per episode."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from synevo.evaluation import Evaluator
from synevo.evaluation.vector import TAIL, has_vector_env, start_states
from synevo.types import Network


def balancing_network(batch: int, noise: float, seed: int) -> Network:
    """MLPs `(4, 32, 2)` pushing towards the pole's fall, perturbed per member: some balance
    to the time limit, others fall early."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.tensor([0.0, 0.5, 1.0, 0.5]).view(1, 4, 1)
    w1 = direction * (torch.rand(batch, 1, 32, generator=g) + 0.5)
    w1 = w1 + noise * torch.randn(batch, 4, 32, generator=g)
    w2 = torch.zeros(batch, 32, 2)
    w2[:, :, 1], w2[:, :, 0] = 1.0 / 32, -1.0 / 32
    w2 = w2 + noise * 0.05 * torch.randn(batch, 32, 2, generator=g)
    return [(w1, torch.zeros(batch, 32)), (w2, torch.zeros(batch, 2))]


def test_only_cartpole_has_a_checked_vector_env():
    assert has_vector_env("CartPole-v1") and has_vector_env("CartPole-v0")
    assert not has_vector_env("Acrobot-v1") and not has_vector_env("LunarLander-v3")
    with pytest.raises(ValueError, match="vectorize=True needs a numpy vector environment"):
        Evaluator("Acrobot-v1", vectorize=True)


def test_start_states_are_the_seeded_resets_of_a_plain_env():
    env = gym.make("CartPole-v1")
    states = start_states(env, [3, 4, 3])
    for column, seed in zip(states.T, [3, 4, 3], strict=True):
        obs, _ = gym.make("CartPole-v1").reset(seed=seed)
        np.testing.assert_array_equal(column.astype(np.float32), obs)
    assert states.dtype == np.float64 and states.shape == (4, 3)


@pytest.mark.parametrize("episodes", [1, 3])
def test_vector_path_equals_one_env_per_episode(episodes: int):
    network = balancing_network(batch=24, noise=0.6, seed=episodes)
    seeds = [31, 32, 33][:episodes]

    vector = Evaluator("CartPole-v1", vectorize=True).evaluate(network, seeds)
    alone = Evaluator("CartPole-v1", vectorize=False).evaluate(network, seeds)

    # the case must exercise early falls, the time limit and the single-env tail
    lengths = vector.lengths
    assert lengths.min() < 50 and lengths.max() == 500
    assert (lengths == 500).sum() > TAIL
    np.testing.assert_array_equal(vector.returns, alone.returns)
    np.testing.assert_array_equal(vector.lengths, alone.lengths)
    assert vector.env_steps == alone.env_steps == int(lengths.sum())
    for rollouts in (vector, alone):
        seconds = rollouts.seconds
        assert set(seconds) == {"forward", "env", "total"}
        assert 0 < seconds["forward"] + seconds["env"] <= seconds["total"]


def test_vector_returns_do_not_depend_on_the_batch():
    network = balancing_network(batch=12, noise=0.6, seed=7)
    seeds = [41, 42]
    evaluator = Evaluator("CartPole-v1")

    whole = evaluator.evaluate(network, seeds)
    halves = [
        evaluator.evaluate([(w[s], b[s]) for w, b in network], seeds)
        for s in (slice(0, 5), slice(5, 12))
    ]

    np.testing.assert_array_equal(whole.returns, np.concatenate([h.returns for h in halves]))
    np.testing.assert_array_equal(whole.lengths, np.concatenate([h.lengths for h in halves]))
