"""Tests of DQN on the genome's expected weights (synevo/optimizers/dqn.py)."""

from __future__ import annotations

import logging

import pytest
import torch

from synevo.evaluation import Evaluator
from synevo.models import build_model
from synevo.models.base import forward
from synevo.optimizers.base import Problem
from synevo.optimizers.dqn import DQN, PAPER_SETTINGS, DQNSettings, paper_settings
from synevo.seeding import final_seeds

# a few gradient steps per rollout, so tiny budgets still train
TINY = dict(learning_starts=100, train_freq=64, gradient_steps=16, batch_size=32)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _small_synaptogen(**settings):
    return build_model("synaptogen", 4, 2, genes=4, hidden=[16], **settings)


def _problem(model=None, budget=1000, seed=0, **kwargs) -> Problem:
    model = model if model is not None else _small_synaptogen()
    kwargs = {"eval_every": 500, "eval_episodes": 3, **kwargs}
    return Problem(model, "CartPole-v1", budget=budget, seed=seed, **kwargs)


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("learning_rate", 0.0),
        ("learning_rate", None),
        ("learning_rate", "3e-4"),
        ("batch_size", 0),
        ("batch_size", 64.0),
        ("batch_size", True),
        ("buffer_size", -5),
        ("learning_starts", -1),
        ("gamma", 1.5),
        ("target_update_interval", 0),
        ("train_freq", 0),
        ("gradient_steps", 0),
        ("gradient_steps", -2),
        ("exploration_fraction", 0.0),
        ("exploration_final_eps", 1.1),
    ],
)
def test_settings_reject_bad_values_naming_field_and_value(field, value):
    with pytest.raises(ValueError, match=rf"{field}={value!r}.*use "):
        DQNSettings(**{field: value})


def test_unknown_setting_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"\['lr'\].*learning_rate"):
        DQN(lr=1e-3)


def test_paper_defaults_are_resolved_per_task():
    cartpole = DQNSettings().resolve("CartPole-v1")
    assert cartpole == {
        "learning_rate": 3e-4,
        "batch_size": 64,
        "buffer_size": 100_000,
        "learning_starts": 1000,
        "gamma": 0.99,
        "target_update_interval": 10,
        "train_freq": 256,
        "gradient_steps": 128,
        "exploration_fraction": 0.16,
        "exploration_final_eps": 0.04,
    }
    assert DQNSettings().resolve("MountainCar-v0")["target_update_interval"] == 600
    assert DQNSettings().resolve("LunarLander-v3")["gradient_steps"] == -1
    acrobot = DQNSettings(gamma=0.9, train_freq=8).resolve("Acrobot-v1")
    overridden = {"learning_rate": 3e-4, "gamma": 0.9, "train_freq": 8}
    assert acrobot == {**PAPER_SETTINGS["Acrobot"], **overridden}


def test_unknown_task_falls_back_to_cartpole_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="synevo.optimizers.dqn"):
        settings = paper_settings("Taxi-v3")
    assert settings == PAPER_SETTINGS["CartPole"]
    assert "Taxi-v3" in caplog.text


def test_a_model_that_does_not_fit_the_task_is_rejected():
    model = build_model("mlp", 3, 2, hidden=[8])
    with pytest.raises(ValueError, match=r"do not fit CartPole-v1.*input 4 and output 2"):
        DQN().make_agent(_problem(model))


# -- the genome Q-network --------------------------------------------------------------------


def test_the_genome_is_the_only_trainable_parameter_and_training_moves_it():
    model = _small_synaptogen(searched=["rules", "biases"])
    agent = DQN(target_update_interval=10**6, **TINY).make_agent(_problem(model))
    q_net, target = agent.q_net.q_net, agent.q_net_target.q_net
    start = q_net.genome.detach().clone()

    # one genome per network, of the searched size: O (4, 4) + b1 (16,) + b2 (2,)
    assert [p.shape for p in agent.q_net.parameters()] == [torch.Size([16 + 16 + 2])]
    assert [p.shape for p in agent.q_net_target.parameters()] == [torch.Size([34])]
    optimized = [p for group in agent.policy.optimizer.param_groups for p in group["params"]]
    assert len(optimized) == 1 and optimized[0] is q_net.genome
    assert torch.equal(target.genome, start) and target.genome is not q_net.genome

    agent.learn(total_timesteps=512)
    assert not torch.allclose(q_net.genome, start)
    assert torch.equal(target.genome, start)  # a separate copy, not yet updated


def test_q_values_are_the_expected_network_outputs_with_and_without_autograd():
    model = _small_synaptogen()
    agent = DQN().make_agent(_problem(model))
    q_net = agent.q_net
    obs = torch.randn(5, 4)

    def expected():
        return forward(model.weights(q_net.q_net.genome.detach()[None]), obs[None])[0]

    with torch.no_grad():
        cached = q_net(obs)
    assert torch.allclose(q_net(obs), expected(), atol=1e-6)
    assert torch.allclose(cached, expected(), atol=1e-6)

    # a changed genome must not be served from the no-grad cache
    with torch.no_grad():
        q_net.q_net.genome.add_(0.1)
        assert torch.allclose(q_net(obs), expected(), atol=1e-6)
        assert not torch.allclose(q_net(obs), cached, atol=1e-3)


# -- runs ------------------------------------------------------------------------------------


def _without_time(history):
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in history]


def test_same_seed_gives_the_same_history_and_genome():
    runs = [DQN(**TINY).run(_problem(budget=1500, seed=seed)) for seed in (3, 3, 4)]
    first, again, other = runs

    assert _without_time(first.history) == _without_time(again.history)
    assert torch.equal(first.best_genome, again.best_genome)
    assert not torch.equal(first.best_genome, other.best_genome)
    assert "train/loss" in first.history[-1] and "rollout/return_mean" in first.history[-1]


@pytest.mark.parametrize("budget", [768, 1000])
def test_budget_is_spent_exactly_and_checkpoints_are_on_schedule(budget):
    reported = []
    result = DQN(**TINY).run(_problem(budget=budget), report=reported.append)

    assert result.env_steps == budget
    steps = [row["env_steps"] for row in result.history]
    assert steps == sorted({0, 500, budget})
    assert reported == result.history
    best = max(row["eval/return_mean"] for row in result.history)
    assert result.best_eval_return == best
    assert result.history[-1]["eval/env_steps"] >= 3 * len(steps) * 8  # CartPole lasts >= 8


@pytest.mark.slow
def test_synaptogen_learns_cartpole():
    # paper settings, lr 3e-4: every seed of 1..6 passed at this budget (about 2 CPU minutes)
    model = build_model("synaptogen", 4, 2, genes=16, hidden=[128])
    problem = Problem(model, "CartPole-v1", budget=100_000, seed=1, eval_episodes=100)
    result = DQN(learning_rate=3e-4).run(problem)
    assert result.best_eval_return >= 475

    # the selected checkpoint also holds up on 100 episodes it was not chosen on
    network = model.weights(result.best_genome[None])
    final = Evaluator("CartPole-v1").evaluate(network, final_seeds(1, 100))
    assert final.returns.mean() >= 475
