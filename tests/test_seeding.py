"""Every seed stream of a trial is deterministic, and the streams never share an episode."""

from __future__ import annotations

from synevo import seeding


def test_streams_are_deterministic_prefix_stable_and_disjoint():
    first = seeding.training_seeds(7, 0, 10)
    assert first == seeding.training_seeds(7, 0, 10)
    assert seeding.training_seeds(7, 0, 4) == first[:4]
    assert len(set(first)) == 10

    others = [
        seeding.training_seeds(7, 1, 10),
        seeding.training_seeds(8, 0, 10),
        seeding.checkpoint_seeds(7, 10),
        seeding.final_seeds(7, 10),
        seeding.agent_seeds(7, 10),
    ]
    for other in others:
        assert not set(first) & set(other)
    assert not set(seeding.checkpoint_seeds(7, 100)) & set(seeding.final_seeds(7, 100))


def test_single_seeds_differ_by_purpose_and_generation():
    seeds = {
        seeding.sampling_seed(3, 0),
        seeding.sampling_seed(3, 1),
        seeding.sampled_agents_seed(3),
        seeding.free_assembly_seed(3),
    }
    assert len(seeds) == 4
    assert all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds)
