"""Agent scoring, the paper's protocol (SCIENCE.md section 3): a trained genome is judged by
the agents it gives, not by one network.

An agent is one concrete network: a network sampled from the trained genome (simulated
synaptogenesis), or a free-assembly network of it (lineage-drawn expression with the trained
rules, `baselines.free_assembly`). An agent's score is its mean return over `episodes` greedy
seeded episodes. All agents of a trial, of both kinds, play the same episodes
(`seeding.agent_seeds`), so their scores are paired; each kind is played in one batched
`Evaluator.evaluate` call.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from typing import Any

import numpy as np
import torch

from synevo.evaluation import Evaluator, Rollouts
from synevo.models.base import GenomeModel
from synevo.optimizers.base import seeded_generator
from synevo.seeding import agent_seeds, free_assembly_seed, sampled_agents_seed
from synevo.types import Genome, Network

logger = logging.getLogger(__name__)

AGENT_KINDS = ("sampled", "free_assembly")
"""The keys of `TrialOutcome.agent_scores` and the `kind` column of `agents.csv`."""

AGENTS_FILE = "agents.csv"
"""A trial run's artifact holding its agent scores, one row per agent."""

AGENTS_HEADER = ["kind", "agent", "score"]


def agents_csv(scores: dict[str, list[float]]) -> str:
    """`agents.csv` of a trial: `kind,agent,score`, agents numbered from 0 within a kind."""
    lines = [",".join(AGENTS_HEADER)]
    for kind in AGENT_KINDS:
        lines += [f"{kind},{i},{score!r}" for i, score in enumerate(scores.get(kind, []))]
    return "\n".join(lines) + "\n"


def read_agents_csv(path: str | os.PathLike, source: str = "agents.csv") -> dict[str, list[float]]:
    """The scores of an `agents.csv` file by kind, in agent order.

    Raises:
        ValueError: if the header is not `kind,agent,score` (`source` names the file).
    """
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames != AGENTS_HEADER:
            raise ValueError(f"{source} has header {reader.fieldnames}, expected {AGENTS_HEADER}")
        pairs: dict[str, list[tuple[int, float]]] = {}
        for row in reader:
            pairs.setdefault(row["kind"], []).append((int(row["agent"]), float(row["score"])))
    return {kind: [score for _, score in sorted(rows)] for kind, rows in pairs.items()}


def download_agent_scores(client: Any, run_id: str) -> dict[str, list[float]]:
    """The agent scores logged on an MLflow trial run; empty when it has no `agents.csv`."""
    if AGENTS_FILE not in {item.path for item in client.list_artifacts(run_id)}:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(run_id, AGENTS_FILE, folder)
        return read_agents_csv(path, f"{AGENTS_FILE} of run {run_id}")


def can_sample(model: GenomeModel | type[GenomeModel]) -> bool:
    """True if `model` (or model class) samples networks that differ from its expected one."""
    cls = model if isinstance(model, type) else type(model)
    return cls._sample is not GenomeModel._sample


def can_free_assemble(model: GenomeModel) -> bool:
    """True if `model` has a free-assembly control (SynaptoGen only)."""
    from synevo.models.synaptogen import SynaptoGen

    return isinstance(model, SynaptoGen)


# The agents' networks


def sampled_networks(model: GenomeModel, genome: Genome, seed: int, count: int) -> Network:
    """`count` networks sampled from the trained genome `(D,)`: batch `count`.

    Raises:
        ValueError: for a model that cannot sample, or count < 1.
    """
    if not can_sample(model):
        raise ValueError(f"model {model.name!r} is deterministic: it cannot sample agents")
    _check_count("agents", count)
    generator = seeded_generator(sampled_agents_seed(seed))
    with torch.no_grad():
        return model.sample(_plain(genome).reshape(1, -1), generator, count)


def free_assembly_networks(model: GenomeModel, genome: Genome, seed: int, count: int) -> Network:
    """`count` free-assembly networks of the trained genome `(D,)`, synapses sampled as for
    the sampled agents: batch `count`.

    Raises:
        ValueError: for a model that is not SynaptoGen, or count < 1.
    """
    from baselines.free_assembly import free_assembly

    if not can_free_assemble(model):
        raise ValueError(f"free assembly needs a SynaptoGen model, got {model.name!r}")
    _check_count("free_assembly", count)
    return free_assembly(model, _plain(genome), free_assembly_seed(seed), count, sample=True)


def _plain(genome: Genome) -> torch.Tensor:
    """A detached plain tensor (an optimizer may hand back a read-only tensor subclass)."""
    return genome.detach().as_subclass(torch.Tensor)


def _check_count(name: str, count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{name} must be an int >= 1, got {count!r}")


# Playing them


def play_agents(network: Network, task: str, seed: int, episodes: int) -> Rollouts:
    """Every agent of `network` (batch `agents`) on the trial's `episodes` agent episodes.

    Returns rollouts of shape `(agents, episodes)`.
    """
    evaluator = Evaluator(task)
    try:
        return evaluator.evaluate(network, agent_seeds(seed, episodes))
    finally:
        evaluator.close()


def score_agents(
    model: GenomeModel, genome: Genome, task: str, seed: int, agents: int, episodes: int
) -> np.ndarray:
    """Scores of `agents` networks sampled from `genome`, `(agents,)`: mean greedy returns."""
    network = sampled_networks(model, genome, seed, agents)
    return play_agents(network, task, seed, episodes).returns.mean(axis=1)


def score_free_assembly(
    model: GenomeModel, genome: Genome, task: str, seed: int, agents: int, episodes: int
) -> np.ndarray:
    """Scores of `agents` free-assembly networks of `genome`, `(agents,)`."""
    network = free_assembly_networks(model, genome, seed, agents)
    return play_agents(network, task, seed, episodes).returns.mean(axis=1)


def score_trial_agents(
    model: GenomeModel,
    genome: Genome,
    task: str,
    seed: int,
    agents: int,
    episodes: int,
    free_assembly: int,
) -> tuple[dict[str, list[float]], int]:
    """Every agent score a trial asks for, by kind, and the env steps they cost.

    Returns `({"sampled": [...], "free_assembly": [...]}, env_steps)`, a kind present only
    when its count is above 0.
    """
    builders = {"sampled": (sampled_networks, agents)}
    builders["free_assembly"] = (free_assembly_networks, free_assembly)
    scores: dict[str, list[float]] = {}
    env_steps = 0
    for kind, (build, count) in builders.items():
        if count <= 0:
            continue
        rollouts = play_agents(build(model, genome, seed, count), task, seed, episodes)
        scores[kind] = [float(s) for s in rollouts.returns.mean(axis=1)]
        env_steps += rollouts.env_steps
        logger.info(
            "%s: %d %s agents, mean score %.1f (%d env steps)",
            task,
            count,
            kind,
            float(np.mean(scores[kind])),
            rollouts.env_steps,
        )
    return scores, env_steps
