"""Tests of the genome models: SynaptoGen, its bio-plausible rules, the plain MLP, the registry."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from synevo.models import PlainMLP, SynaptoGen, build_model, model_names
from synevo.models import synaptogen as synaptogen_module
from synevo.models.rules import bio_probabilities, load_bio_mask

TASKS = {  # env id -> (obs_dim, n_actions, SynaptoGen size, plain MLP size), SCIENCE.md
    "CartPole-v1": (4, 2, 3724, 898),
    "MountainCar-v0": (2, 3, 3709, 771),
    "LunarLander-v3": (8, 4, 3846, 1668),
    "Acrobot-v1": (6, 3, 3785, 1283),
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


# -- expected weights ------------------------------------------------------------------------


def test_expected_weights_of_a_hand_made_case():
    model = SynaptoGen([2, 3], genes=2, neurotransmitters=1, tau=0.5, scale=2.0)
    x0 = [[1.0, 0.5], [-2.0, 0.0]]
    x1 = [[0.5, 1.0], [1.0, -1.0], [0.0, 2.0]]
    o = [[0.0, 0.5], [-0.5, 1.0]]
    r1 = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]
    phi = [[0.0, 1.0]]
    b1 = [0.1, -0.2, 0.3]
    parts = {"X0": x0, "X1": x1, "O": o, "T0": [[0.3], [-1.2]], "R1": r1, "Phi": phi, "b1": b1}
    genome = model.flatten({k: torch.tensor([v], dtype=torch.float64) for k, v in parts.items()})
    ((w, b),) = model.weights(genome)

    # by hand: with K = 1 every neuron releases the one transmitter, C = 2 * [s(0), -s(1)]
    p = [[_sigmoid(0.0), _sigmoid(1.0)], [_sigmoid(-1.0), _sigmoid(2.0)]]
    c = [2.0 * 0.5, -2.0 * _sigmoid(1.0)]
    expected = [[0.0] * 3 for _ in range(2)]
    for u in range(2):
        for v in range(3):
            count = sum(x0[u][i] ** 2 * p[i][j] * x1[v][j] ** 2 for i in range(2) for j in range(2))
            receptor = _softmax(r1[v])
            expected[u][v] = count * (c[0] * receptor[0] + c[1] * receptor[1])
    # one entry spelled out: neuron 1 expresses gene 0 (x^2 = 4), neuron 2 gene 1 (x^2 = 4)
    e2 = math.exp(2.0)
    by_hand = 16.0 * _sigmoid(1.0) * (1.0 / (1 + e2) - 2.0 * _sigmoid(1.0) * e2 / (1 + e2))
    assert expected[1][2] == pytest.approx(by_hand, rel=1e-12)

    assert w.shape == (1, 2, 3) and b.shape == (1, 3)
    assert w[0].flatten().tolist() == pytest.approx([x for row in expected for x in row], rel=1e-12)
    assert b[0].tolist() == b1


@pytest.mark.parametrize("task", sorted(TASKS))
def test_parameter_counts_match_the_paper(task):
    obs_dim, n_actions, synaptogen_size, mlp_size = TASKS[task]
    model = build_model("synaptogen", obs_dim, n_actions, genes=16, neurotransmitters=3)
    mlp = build_model("mlp", obs_dim, n_actions)

    assert model.genome_size == model.full_size == synaptogen_size
    assert mlp.genome_size == mlp.network_size == mlp_size
    assert model.network_size == mlp_size
    assert model.describe()["model/genome_size"] == synaptogen_size


def test_batched_weights_equal_per_member_weights():
    model = SynaptoGen([3, 6, 2], genes=4, neurotransmitters=2)
    population = torch.stack([model.init_genome(_gen(s)) for s in range(5)]).double()
    batched = model.weights(population)

    for m in range(5):
        single = model.weights(population[m : m + 1])
        for (w_all, b_all), (w_one, b_one) in zip(batched, single, strict=True):
            torch.testing.assert_close(w_all[m], w_one[0], rtol=1e-12, atol=1e-15)
            assert torch.equal(b_all[m], b_one[0])
    assert not torch.allclose(batched[0][0][0], batched[0][0][1])


# -- gradients -------------------------------------------------------------------------------


def test_gradients_reach_every_searched_part():
    model = SynaptoGen([3, 5, 4, 2], genes=4, neurotransmitters=2)
    net = model.network(model.init_genome(_gen(0)))
    obs = torch.randn(7, 3, generator=_gen(1))
    net(obs).square().sum().backward()

    grads = model.unflatten(net.genome.grad.unsqueeze(0))
    dead = [name for name, grad in grads.items() if not grad.abs().sum() > 0]
    assert dead == []


def test_unsearched_parts_get_no_gradient():
    model = build_model("synaptogen", 4, 2, searched=["rules"])
    assert model.genome_size == 256 and model.searched == ("O",)
    net = model.network(model.init_genome(_gen(0)))
    net(torch.randn(5, 4, generator=_gen(1))).square().sum().backward()

    params = list(net.parameters())
    assert len(params) == 1 and params[0].shape == (256,)
    assert params[0].grad.abs().sum() > 0
    assert all(not fixed.requires_grad and fixed.grad is None for fixed in model._fixed.values())


def test_group_names_expand_to_parts():
    model = SynaptoGen([4, 8, 2], searched=["expression", "conductance", "biases"])
    assert model.searched == ("X0", "X1", "X2", "Phi", "b1", "b2")
    assert SynaptoGen([4, 8, 2], searched="receptors").searched == ("R1", "R2")
    assert SynaptoGen([4, 8, 2], searched="all").searched == SynaptoGen([4, 8, 2]).searched
    with pytest.raises(ValueError, match="unknown: \\['synapses'\\]"):
        SynaptoGen([4, 8, 2], searched=["rules", "synapses"])


# -- sampled synaptogenesis ------------------------------------------------------------------


def _expected_synapses(parts: dict[str, torch.Tensor], tau: float) -> torch.Tensor:
    """E, the expected synapse count over all layers, `(popsize,)`."""
    p = torch.sigmoid(parts["O"] / tau)
    n_layers = sum(name.startswith("X") for name in parts) - 1
    return sum(
        (parts[f"X{i}"].square() @ p @ parts[f"X{i + 1}"].square().transpose(1, 2)).sum((1, 2))
        for i in range(n_layers)
    )


def _integer_count_case(k: int) -> tuple[SynaptoGen, torch.Tensor, list[torch.Tensor]]:
    """A genome `(1, D)` whose trial counts kappa x^2 x^2 are integers (kappa = k), so the
    rounding is exact; returns the model, the genome and the per-weight sampling variance."""
    model = SynaptoGen([2, 3, 2], genes=2, neurotransmitters=2, tau=1.0)
    gen = _gen(3)
    parts = model.unflatten(model.init_genome(gen).double().unsqueeze(0))
    for name in ("X0", "X1", "X2"):  # x^2 in {1, 2, 3}
        squares = torch.randint(1, 4, parts[name].shape, generator=gen).double()
        signs = torch.randint(0, 2, parts[name].shape, generator=gen).double() * 2 - 1
        parts[name] = signs * squares.sqrt()
    population = model.flatten(parts)

    # kappa = degree N / (2 E) = k with N = 7 neurons
    model.degree = 2.0 * k * _expected_synapses(parts, model.tau).item() / 7
    return model, population, _sampling_variance(model, population, k)


def _sampling_variance(model: SynaptoGen, population: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Var of C_avg * sum_ij Binomial(k a_i b_j, P_ij) / k per weight, one tensor per layer."""
    parts = model.unflatten(population)
    p = torch.sigmoid(parts["O"][0])
    variances = []
    for i in range(2):
        a, b = parts[f"X{i}"][0].square(), parts[f"X{i + 1}"][0].square()
        spread = (a @ (p * (1 - p)) @ b.T) * k  # sum_ij n_ij P_ij (1 - P_ij)
        c_avg = model.weights(population)[i][0][0] / (a @ p @ b.T)
        variances.append(c_avg.square() * spread / k**2)
    return variances


def _max_z(means: list[torch.Tensor], expected, variances, samples: int) -> float:
    return max(
        ((m - w[0]).abs() / (v / samples).sqrt()).max().item()
        for m, (w, _), v in zip(means, expected, variances, strict=True)
    )


def test_sample_mean_matches_expected_weights():
    model, population, variances = _integer_count_case(k=3)
    samples = 2000
    drawn = model.sample(population, _gen(7), samples=samples)
    expected = model.weights(population)
    means = [w.mean(dim=0) for w, _ in drawn]

    assert _max_z(means, expected, variances, samples) < 5.0
    # a sampler biased by 5% fails the same check
    assert _max_z([1.05 * m for m in means], expected, variances, samples) > 5.0
    # the variance is visible: single samples differ from the mean
    assert (drawn[0][0].std(dim=0) > 0).all()
    for (_, b_sampled), (_, b) in zip(drawn, expected, strict=True):
        assert torch.equal(b_sampled, b.expand_as(b_sampled))


def test_sample_is_close_to_expected_at_the_authors_degree():
    model = build_model("synaptogen", 4, 2)
    population = model.init_genome(_gen(0)).unsqueeze(0)
    expected = model.weights(population)
    drawn = model.sample(population, _gen(1), samples=2)

    for (w_s, _), (w, _) in zip(drawn, expected, strict=True):
        assert w_s.shape == (2, *w.shape[1:]) and w_s.dtype == w.dtype
        assert (w_s - w).abs().max() < 0.05 * w.abs().max()
        assert not torch.equal(w_s[0], w_s[1])


def test_sampling_is_deterministic_and_chunking_does_not_change_it(monkeypatch):
    model = SynaptoGen([3, 5, 2], genes=3, neurotransmitters=2)
    population = torch.stack([model.init_genome(_gen(s)) for s in range(3)])
    first = model.sample(population, _gen(11), samples=2)
    again = model.sample(population, _gen(11), samples=2)
    monkeypatch.setattr(synaptogen_module, "_MAX_DRAWS", 1)
    chunked = model.sample(population, _gen(11), samples=2)

    for (w1, _), (w2, _), (w3, _) in zip(first, again, chunked, strict=True):
        assert torch.equal(w1, w2) and torch.equal(w1, w3)
    assert not torch.equal(model.sample(population, _gen(12))[0][0], first[0][0][::2])


def test_kappa_is_per_genome():
    model = SynaptoGen([2, 4, 2], genes=3, neurotransmitters=2, degree=50.0)
    parts = model.unflatten(model.init_genome(_gen(0)).double().repeat(2, 1))
    parts = {name: value.clone() for name, value in parts.items()}
    for name in ("X0", "X1", "X2"):  # the second genome: x^2 four times, synapses 16 times
        parts[name][1] *= 2.0
    kappa = model._kappa(parts, torch.sigmoid(parts["O"] / model.tau))

    synapses = _expected_synapses(parts, model.tau)
    torch.testing.assert_close(kappa, 50.0 * 8 / (2 * synapses))
    assert kappa[0] / kappa[1] == pytest.approx(16.0)


# -- genome bookkeeping ----------------------------------------------------------------------


def test_flatten_unflatten_round_trip_is_exact():
    model = SynaptoGen([4, 8, 2], genes=5, neurotransmitters=2, searched=["rules", "biases"])
    population = torch.randn(3, model.genome_size, generator=_gen(0))
    assert torch.equal(model.flatten(model.unflatten(population)), population)


def test_init_genome_fixes_the_unsearched_parts():
    full = SynaptoGen([4, 8, 2], genes=5, neurotransmitters=2)
    partial = SynaptoGen([4, 8, 2], genes=5, neurotransmitters=2, searched=["rules"])
    full_parts = full.unflatten(full.init_genome(_gen(0)).unsqueeze(0))
    genome = partial.init_genome(_gen(0))

    assert genome.shape == (25,)
    torch.testing.assert_close(genome, full_parts["O"].flatten(), rtol=0, atol=0)
    moved = partial.unflatten(torch.randn(2, 25, generator=_gen(1)))
    for name in partial.part_shapes():
        if name != "O":
            assert torch.equal(moved[name][0], full_parts[name][0])
            assert torch.equal(moved[name][1], full_parts[name][0])


def test_initialization_scales_follow_the_authors():
    model = SynaptoGen([64, 512, 64], genes=16, neurotransmitters=3)
    parts = model.unflatten(model.init_genome(_gen(0)).unsqueeze(0))

    assert parts["X1"].std().item() == pytest.approx(math.sqrt(2 / 16), rel=0.05)
    assert parts["T1"].std().item() == pytest.approx(math.sqrt(2 / 3), rel=0.05)
    assert parts["R1"].std().item() == pytest.approx(math.sqrt(1 / 3), rel=0.05)
    assert parts["b1"].std().item() == pytest.approx(math.sqrt(2 / 65), rel=0.1)
    assert parts["O"].std().item() == pytest.approx(1 / 16, rel=0.15)


def test_pickle_round_trip_keeps_the_weights():
    for model in (
        SynaptoGen([4, 8, 2], searched=["rules"]),
        SynaptoGen([4, 8, 2], genes=39, rules="bio"),
    ):
        genome = model.init_genome(_gen(0)).unsqueeze(0)
        clone = pickle.loads(pickle.dumps(model))
        for (w1, b1), (w2, b2) in zip(model.weights(genome), clone.weights(genome), strict=True):
            assert torch.equal(w1, w2) and torch.equal(b1, b2)


def test_non_finite_genome_raises():
    model = SynaptoGen([4, 8, 2])
    population = model.init_genome(_gen(0)).repeat(2, 1)
    population[1, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.weights(population)
    with pytest.raises(ValueError, match="NaN"):
        model.sample(population, _gen(0))


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"genes": 0}, "genes"),
        ({"neurotransmitters": 1.5}, "neurotransmitters"),
        ({"rules": "random"}, "rules"),
        ({"rules": "bio"}, "genes=39"),
        ({"tau": 0.0}, "tau"),
        ({"degree": float("inf")}, "degree"),
        ({"sampler": "poisson"}, "sampler"),
    ],
)
def test_bad_settings_raise(settings, field):
    with pytest.raises(ValueError, match=field):
        SynaptoGen([4, 8, 2], **settings)


# -- bio-plausible rules ---------------------------------------------------------------------


def test_bio_mask_holds_47_rules():
    genes, mask = load_bio_mask()
    assert len(genes) == len(set(genes)) == 39
    assert mask.shape == (39, 39) and mask.dtype == torch.bool
    assert int(mask.sum()) == 47
    # row = pre-synaptic gene: igdb-2 -> lron-12 but not the reverse
    assert mask[genes.index("igdb-2"), genes.index("lron-12")]
    assert not mask[genes.index("lron-12"), genes.index("igdb-2")]
    assert int(mask[genes.index("tsp-21")].sum()) == 8


def test_bio_probabilities_stay_in_their_halves():
    _, mask = load_bio_mask()
    model = SynaptoGen([4, 8, 2], genes=39, rules="bio")
    rules = torch.randn(4, 39, 39, generator=_gen(0)) * 5.0
    p = model._probabilities(rules)
    torch.testing.assert_close(p, bio_probabilities(rules, 0.1, mask))

    on, off = p[:, mask], p[:, ~mask]
    assert on.min() >= 0.5 and on.max() <= 1.0 and off.min() >= 0.0 and off.max() <= 0.5
    assert on.min() < 0.51 and off.max() > 0.49  # the whole ranges are reachable
    at_zero = model._probabilities(torch.zeros(39, 39))
    assert (at_zero[mask] > 0.5).all() and (at_zero[~mask] < 0.5).all()
    assert at_zero[mask][0].item() == pytest.approx(0.5 * _sigmoid(3 / 39 / 0.1) + 0.5)


# -- plain MLP and registry ------------------------------------------------------------------


def test_plain_mlp_genome_is_the_network():
    model = PlainMLP([4, 16, 2])
    genome = model.init_genome(_gen(0))
    (w1, b1), (w2, b2) = model.weights(genome.unsqueeze(0))

    assert list(model.part_shapes()) == ["W1", "b1", "W2", "b2"]
    assert torch.equal(torch.cat([w1.flatten(), b1.flatten(), w2.flatten(), b2.flatten()]), genome)
    assert w1.abs().max() <= 0.5 and b2.abs().max() <= 0.25  # torch Linear bounds 1/sqrt(fan_in)
    assert w1.abs().max() > 0.45


def test_build_model_settings():
    assert {"synaptogen", "mlp"} <= set(model_names())
    model = build_model("synaptogen", 4, 2, hidden=[16, 8], genes=8, searched="all")
    assert model.layer_sizes == (4, 16, 8, 2) and model.genes == 8
    with pytest.raises(ValueError, match="unknown; allowed: \\[.*'mlp'.*'synaptogen'"):
        build_model("nope", 4, 2)
    with pytest.raises(ValueError, match="\\['genes'\\] are unknown.*'hidden', 'searched'"):
        build_model("mlp", 4, 2, genes=8)
    with pytest.raises(ValueError, match="hidden"):
        build_model("mlp", 4, 2, hidden=128)
