"""The numpy greedy policy computes `forward` and its argmax, member by member."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synevo.evaluation.policy import GreedyPolicy
from synevo.models.base import forward
from synevo.types import Network


def random_network(sizes: list[int], batch: int, seed: int, gain: float = 1.0) -> Network:
    """Random weights `(batch, n_pre, n_post)` and biases `(batch, n_post)` per layer."""
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(batch, n_pre, n_post, generator=g) * gain / n_pre**0.5,
            torch.randn(batch, n_post, generator=g) * 0.1,
        )
        for n_pre, n_post in zip(sizes[:-1], sizes[1:], strict=True)
    ]


@pytest.mark.parametrize(
    "sizes, batch, n_obs",
    [([4, 128, 2], 256, 1), ([4, 128, 2], 3, 10), ([8, 64, 64, 4], 17, 2), ([6, 3], 5, 4)],
)
def test_outputs_and_actions_are_forwards(sizes: list[int], batch: int, n_obs: int):
    network = random_network(sizes, batch=batch, seed=batch, gain=2.0)
    obs = torch.randn(batch, n_obs, sizes[0], generator=torch.Generator().manual_seed(1))
    kept = obs.clone()
    with torch.no_grad():
        expected = forward(network, obs).numpy()
    policy = GreedyPolicy(network)

    outputs = policy.outputs(obs.numpy())
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    assert outputs.dtype == np.float32 and outputs.shape == (batch, n_obs, sizes[-1])

    # the same action wherever forward's two best outputs are not a float32 tie
    top = np.sort(expected, axis=-1)
    clear = top[..., -1] - top[..., -2] > 1e-4 * (1 + np.abs(top[..., -1]))
    actions = policy.act(obs.numpy())
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(actions[clear], expected.argmax(axis=-1)[clear])
    assert torch.equal(obs, kept)


def test_a_members_outputs_do_not_depend_on_its_batch():
    network = random_network([4, 128, 2], batch=40, seed=3, gain=2.0)
    obs = np.random.default_rng(0).normal(size=(40, 3, 4)).astype(np.float32)
    policy = GreedyPolicy(network)
    whole = policy.outputs(obs).copy()

    for index in ([0], [39, 2, 17], list(range(10, 30))):
        part = policy.rows(index)
        assert part.batch == len(index)
        np.testing.assert_array_equal(part.outputs(obs[index]), whole[index])


def test_buffers_are_reused_but_each_call_sees_its_own_observations():
    network = random_network([4, 16, 2], batch=6, seed=4)
    policy = GreedyPolicy(network)
    rng = np.random.default_rng(1)
    first, second = (rng.normal(size=(6, 1, 4)).astype(np.float32) for _ in range(2))
    a = policy.outputs(first).copy()
    b = policy.outputs(second).copy()
    np.testing.assert_array_equal(policy.outputs(first), a)
    assert not np.array_equal(a, b)
