"""Where every episode seed of a trial comes from.

All seeds derive from the trial seed through independent streams, so that training episodes,
checkpoint evaluations and the final evaluation never share episodes (the final score is not
biased by checkpoint selection), and a result does not depend on how work is split.
"""

from __future__ import annotations

import numpy as np

_TRAINING, _CHECKPOINT, _FINAL, _SAMPLING = 0, 1, 2, 3
_AGENT_EPISODES, _AGENT_NETWORKS = 4, 5
_SAMPLED_AGENTS, _FREE_ASSEMBLY_AGENTS = 0, 1


def _stream(seed: int, stream: int, index: int, count: int) -> list[int]:
    sequence = np.random.SeedSequence([int(seed), stream, int(index)])
    return [int(s) for s in sequence.generate_state(count, dtype=np.uint32)]


def training_seeds(seed: int, generation: int, count: int) -> list[int]:
    """Episode seeds of one generation's fitness rollouts, shared by all members."""
    return _stream(seed, _TRAINING, generation, count)


def checkpoint_seeds(seed: int, count: int) -> list[int]:
    """The fixed episodes every checkpoint of a trial is compared on."""
    return _stream(seed, _CHECKPOINT, 0, count)


def final_seeds(seed: int, count: int) -> list[int]:
    """The episodes of a trial's final evaluation, disjoint from the checkpoint ones."""
    return _stream(seed, _FINAL, 0, count)


def sampling_seed(seed: int, generation: int) -> int:
    """The torch seed of one generation's sampled synaptogenesis."""
    return _stream(seed, _SAMPLING, generation, 1)[0]


def agent_seeds(seed: int, count: int) -> list[int]:
    """The episodes every scored agent of a trial plays (sampled and free-assembly alike)."""
    return _stream(seed, _AGENT_EPISODES, 0, count)


def sampled_agents_seed(seed: int) -> int:
    """The torch seed of the synaptogenesis that samples a trial's scored agents."""
    return _stream(seed, _AGENT_NETWORKS, _SAMPLED_AGENTS, 1)[0]


def free_assembly_seed(seed: int) -> int:
    """The seed of the lineages (and synaptogenesis) of a trial's free-assembly agents."""
    return _stream(seed, _AGENT_NETWORKS, _FREE_ASSEMBLY_AGENTS, 1)[0]
