"""Agent scoring: sampled and free-assembly agents of a genome, each a mean greedy return."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synevo.evaluation import Evaluator
from synevo.models import build_model
from synevo.seeding import agent_seeds, final_seeds
from synevo.study.agents import (
    can_free_assemble,
    can_sample,
    free_assembly_networks,
    sampled_networks,
    score_agents,
    score_free_assembly,
    score_trial_agents,
)
from synevo.study.trial import TrialOutcome, TrialSpec

TASK = "CartPole-v1"


@pytest.fixture(scope="module")
def trained():
    """A small SynaptoGen and a genome; a low degree makes sampled networks differ a lot."""
    model = build_model("synaptogen", 4, 2, genes=4, hidden=[8], degree=20.0, sampler="fast")
    genome = model.init_genome(torch.Generator().manual_seed(0)) * 3
    return model, genome


def test_no_agents_asked_gives_no_scores(trained):
    model, genome = trained

    assert score_trial_agents(model, genome, TASK, 1, 0, 10, 0) == ({}, 0)


def test_scores_are_reproducible_and_seeded(trained):
    model, genome = trained

    first = score_agents(model, genome, TASK, 1, 6, 3)
    again = score_agents(model, genome, TASK, 1, 6, 3)
    nets_1 = sampled_networks(model, genome, 1, 6)
    nets_2 = sampled_networks(model, genome, 2, 6)

    assert first.shape == (6,)
    np.testing.assert_array_equal(first, again)
    assert not torch.equal(nets_1[0][0], nets_2[0][0])
    assert agent_seeds(1, 3) != agent_seeds(2, 3)
    assert set(agent_seeds(1, 3)).isdisjoint(final_seeds(1, 3))


def test_a_sampled_agent_scores_as_its_network_alone(trained):
    model, genome = trained
    episodes = 4
    scores = score_agents(model, genome, TASK, 3, 5, episodes)
    networks = sampled_networks(model, genome, 3, 5)

    alone = [(w[2:3], b[2:3]) for w, b in networks]
    returns = Evaluator(TASK).evaluate(alone, agent_seeds(3, episodes)).returns

    assert scores[2] == pytest.approx(returns.mean())
    assert not torch.equal(networks[0][0][0], networks[0][0][1])  # agents differ


def test_free_assembly_agents_are_other_networks(trained):
    model, genome = trained
    episodes = 3
    scores = score_free_assembly(model, genome, TASK, 1, 4, episodes)
    networks = free_assembly_networks(model, genome, 1, 4)
    expected = model.weights(genome.unsqueeze(0))

    assert scores.shape == (4,)
    assert not torch.allclose(networks[0][0][0], expected[0][0][0])
    assert not torch.equal(networks[0][0][0], networks[0][0][1])
    alone = [(w[1:2], b[1:2]) for w, b in networks]
    returns = Evaluator(TASK).evaluate(alone, agent_seeds(1, episodes)).returns
    assert scores[1] == pytest.approx(returns.mean())


def test_trial_agents_count_their_env_steps(trained):
    model, genome = trained

    scores, steps = score_trial_agents(model, genome, TASK, 1, 3, 2, 2)

    assert sorted(scores) == ["free_assembly", "sampled"]
    assert len(scores["sampled"]) == 3 and len(scores["free_assembly"]) == 2
    # every CartPole step pays 1, so the summed returns are the env steps
    assert steps == round(2 * (sum(scores["sampled"]) + sum(scores["free_assembly"])))
    np.testing.assert_allclose(scores["sampled"], score_agents(model, genome, TASK, 1, 3, 2))


@pytest.mark.parametrize(
    ("name", "settings", "samples"),
    [("synaptogen", {"genes": 4}, True), ("mlp", {}, False), ("gcm", {"genes": 4}, False)],
)
def test_which_models_sample(name, settings, samples):
    model = build_model(name, 4, 2, hidden=[8], **settings)

    assert can_sample(model) is samples
    assert can_free_assemble(model) is samples


def test_a_deterministic_model_has_no_agents():
    model = build_model("mlp", 4, 2, hidden=[8])
    genome = model.init_genome(torch.Generator().manual_seed(0))

    with pytest.raises(ValueError, match="deterministic"):
        score_agents(model, genome, TASK, 1, 2, 1)
    with pytest.raises(ValueError, match="SynaptoGen"):
        score_free_assembly(model, genome, TASK, 1, 2, 1)


def test_agent_metrics_by_hand():
    spec = TrialSpec(TASK, "synaptogen", {}, "snes", {}, "snes", 1, 100, agents=8)
    outcome = TrialOutcome(
        spec=spec,
        family="evolution",
        best_genome=torch.zeros(1),
        final_returns=[1.0],
        env_steps=100,
        eval_env_steps=0,
        wall_time=1.0,
        gym_threshold=475.0,
        paper_threshold=195.0,
        agent_scores={"sampled": [10.0, 100.0, 200.0, 300.0, 400.0, 475.0, 500.0, 500.0]},
    )

    metrics = outcome.agent_metrics()

    assert metrics["agents/sampled_mean"] == pytest.approx(2485 / 8)
    assert metrics["agents/sampled_iqm"] == pytest.approx((200 + 300 + 400 + 475) / 4)
    assert metrics["agents/sampled_count"] == 8
    assert metrics["agents/sampled_solved_gym"] == pytest.approx(3 / 8)
    assert metrics["agents/sampled_solved_paper"] == pytest.approx(6 / 8)
    assert not any(key.startswith("agents/free_assembly") for key in metrics)
