"""Tests of the baselines: the GCM, the g-network, the free-assembly control, and one contract
every registered genome model must meet."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from baselines import GCM, GNetwork, assembly_parts, free_assembly, lineage_cells
from baselines.gcm import expression_variances
from baselines.gnetwork import identity_codes
from synevo.models import SynaptoGen, build_model, model_names, register_model
from synevo.models.base import forward
from synevo.optimizers import make_optimizer
from synevo.optimizers.base import Problem, seeded_generator

SMALL = {"synaptogen": {"genes": 4}, "gcm": {"genes": 4}, "gnetwork": {"g_hidden": [4]}}


def _tensors(parts: dict[str, list]) -> dict[str, torch.Tensor]:
    """Hand-written parts as a population of one, float64."""
    return {k: torch.tensor([v], dtype=torch.float64) for k, v in parts.items()}


# -- registry --------------------------------------------------------------------------------


def test_registry_lists_the_baselines():
    assert {"synaptogen", "mlp", "gcm", "gnetwork"} <= set(model_names())
    assert isinstance(build_model("gcm", 4, 2, genes=4), GCM)
    with pytest.raises(ValueError, match="allowed: \\['gcm', 'gnetwork', 'mlp', 'synaptogen'"):
        build_model("gcn", 4, 2)
    with pytest.raises(ValueError, match="taken by baselines.gcm.GCM"):
        register_model("gcm", GNetwork)
    register_model("gcm", GCM)  # the same class again is a no-op


def test_compression_for_cartpole_at_16_genes():
    gcm = build_model("gcm", 4, 2, genes=16)
    rules_only = build_model("gcm", 4, 2, genes=16, searched="rules")
    gnet = build_model("gnetwork", 4, 2)
    gnet_biases = build_model("gnetwork", 4, 2, biases="gnetwork")

    # X: 134 neurons x 16 genes, O: 16 x 16, biases 130
    assert gcm.genome_size == 134 * 16 + 256 + 130 == 2530
    assert rules_only.genome_size == 256 and rules_only.full_size == 2530
    # codes of 7 bits (128 neurons), 2 layers: 16 inputs -> 32 tanh units -> 1
    assert gnet.genome_size == 16 * 32 + 32 + 32 + 1 + 130 == 707
    assert gnet_biases.genome_size == 17 * 32 + 32 + 32 + 1 == 609
    assert gcm.describe()["model/compression"] == round(898 / 2530, 4)
    assert gnet.describe()["model/network_size"] == 898


# -- GCM -------------------------------------------------------------------------------------


def test_gcm_weights_of_a_hand_made_case():
    model = GCM([2, 3], genes=2)
    x0 = [[1.0, -0.5], [0.5, 2.0]]
    o = [[0.5, -1.0], [2.0, 0.25]]
    x1 = [[1.0, 0.0], [-1.0, 1.0], [0.5, 0.5]]
    b1 = [0.1, -0.2, 0.3]
    genome = model.flatten(_tensors({"X0": x0, "X1": x1, "O": o, "b1": b1}))
    ((w, b),) = model.weights(genome)

    expected = [
        [sum(x0[u][i] * o[i][j] * x1[v][j] for i in range(2) for j in range(2)) for v in range(3)]
        for u in range(2)
    ]
    # one entry spelled out: neuron 0 of layer 1 expresses only gene 0
    assert expected[0][0] == pytest.approx(1.0 * 0.5 + (-0.5) * 2.0)
    assert w.shape == (1, 2, 3)
    assert w[0].tolist() == [pytest.approx(row, rel=1e-12) for row in expected]
    assert b[0].tolist() == b1


@pytest.mark.parametrize("shared_rules", [True, False])
def test_gcm_rules_per_layer(shared_rules):
    model = GCM([2, 1, 2], genes=1, shared_rules=shared_rules)
    x = {"X0": [[1.0], [2.0]], "X1": [[3.0]], "X2": [[-1.0], [0.5]]}
    rules = {"O": [[2.0]]} if shared_rules else {"O0": [[2.0]], "O1": [[-4.0]]}
    biases = {"b1": [0.0], "b2": [0.0, 0.0]}
    assert list(model.part_shapes())[3:] == [*rules, "b1", "b2"]
    genome = model.flatten(_tensors(x | rules | biases))
    (w0, _), (w1, _) = model.weights(genome)

    o1 = 2.0 if shared_rules else -4.0
    assert w0[0].flatten().tolist() == [6.0, 12.0]
    assert w1[0].flatten().tolist() == [3.0 * o1 * -1.0, 3.0 * o1 * 0.5]


def test_gcm_initial_weights_are_he_scaled():
    model = GCM([4, 128, 2], genes=16)
    variances = expression_variances(model.layer_sizes, 16)
    for i, n in enumerate((4, 128)):
        assert 16 * variances[i] * variances[i + 1] == pytest.approx(2.0 / n)

    population = torch.stack([model.init_genome(seeded_generator(s)) for s in range(40)])
    network = model.weights(population)
    for (w, _), n in zip(network, (4, 128), strict=True):
        assert w.var().item() == pytest.approx(2.0 / n, rel=0.3)


def test_gcm_searched_groups():
    model = build_model("gcm", 4, 2, hidden=[8], genes=4, searched=["rules", "b1"])
    assert model.searched == ("O", "b1") and model.genome_size == 16 + 8
    with pytest.raises(ValueError, match="unknown: \\['receptors'\\]"):
        build_model("gcm", 4, 2, searched=["receptors"])
    with pytest.raises(ValueError, match="genes must be a positive int"):
        build_model("gcm", 4, 2, genes=0)


# -- g-network -------------------------------------------------------------------------------


def test_identity_codes():
    assert identity_codes(5, 4).tolist() == [
        [-1, -1, -1, 0],
        [1, -1, -1, 0],
        [-1, 1, -1, 0],
        [1, 1, -1, 0],
        [-1, -1, 1, 0],
    ]
    # Gray code of 0, 1, 2, 3 is 0, 1, 3, 2
    assert identity_codes(4, 2, "gray").tolist() == [[-1, -1], [1, -1], [1, 1], [-1, 1]]
    assert identity_codes(1, 2).tolist() == [[0, 0]]


def _one_unit_parts(width: int) -> dict[str, list]:
    """A g-network with one tanh hidden unit, for hand computation."""
    w_in = [0.5, -0.3, 0.8, -1.2, 0.2, 0.7][:width]
    return {"gW1": [[a] for a in w_in], "gb1": [0.1], "gW2": [[1.5]], "gb2": [-0.4]}


# codes of the layers of sizes 2 (one bit, padded) and 3 (two bits)
CODES_2 = [[-1.0, 0.0], [1.0, 0.0]]
CODES_3 = [[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]]


def test_gnetwork_weights_of_a_hand_made_case():
    model = GNetwork([2, 3], g_hidden=[1])
    parts = _one_unit_parts(5) | {"b1": [0.1, -0.2, 0.3]}
    ((w, b),) = model.weights(model.flatten(_tensors(parts)))

    # input row [code(u), code(v), onehot(layer 0)]; gain sqrt(2 / 2) = 1
    a = [row[0] for row in parts["gW1"]]
    expected = [[0.0] * 3 for _ in range(2)]
    for u in range(2):
        for v in range(3):
            z = sum(ai * xi for ai, xi in zip(a, CODES_2[u] + CODES_3[v] + [1.0], strict=True))
            expected[u][v] = 1.5 * math.tanh(z + 0.1) - 0.4
    # one entry spelled out: u = 1 (+1), v = 2 (-1, +1)
    assert expected[1][2] == pytest.approx(1.5 * math.tanh(0.5 - 0.8 - 1.2 + 0.2 + 0.1) - 0.4)
    assert w[0].tolist() == [pytest.approx(row, rel=1e-12) for row in expected]
    assert b[0].tolist() == parts["b1"]


def test_gnetwork_biases_from_the_gnetwork():
    model = GNetwork([2, 3], g_hidden=[1], biases="gnetwork")
    assert "b1" not in model.part_shapes()
    parts = _one_unit_parts(6)
    ((w, b),) = model.weights(model.flatten(_tensors(parts)))

    # connection rows end with flag 0, bias rows are [0, 0, code(v), onehot, flag 1]
    a = [row[0] for row in parts["gW1"]]
    z = sum(ai * xi for ai, xi in zip(a, CODES_2[0] + CODES_3[1] + [1.0, 0.0], strict=True))
    assert w[0, 0, 1].item() == pytest.approx(1.5 * math.tanh(z + 0.1) - 0.4, rel=1e-12)
    for v in range(3):
        z = sum(ai * xi for ai, xi in zip(a, [0.0, 0.0] + CODES_3[v] + [1.0, 1.0], strict=True))
        by_hand = math.sqrt(2 / 3) * (1.5 * math.tanh(z + 0.1) - 0.4)
        assert b[0, v].item() == pytest.approx(by_hand, rel=1e-12)


def test_gnetwork_fan_in_gain_scales_layers_alike():
    model = GNetwork([4, 128, 2])
    population = torch.stack([model.init_genome(seeded_generator(s)) for s in range(40)])
    (w0, _), (w1, _) = model.weights(population)

    # equal scale after dividing by the He variance 2 / n_pre; tanh keeps it below 1
    ratio = (w0.var() * 4 / 2) / (w1.var() * 128 / 2)
    assert 0.5 < ratio.item() < 2.0
    assert 0.1 < (w1.var() * 128 / 2).item() < 1.0


def test_gnetwork_settings_are_checked():
    with pytest.raises(ValueError, match="g_activation must be one of"):
        GNetwork([4, 8, 2], g_activation="relu")
    with pytest.raises(ValueError, match="g_hidden must be a list"):
        GNetwork([4, 8, 2], g_hidden=32)
    with pytest.raises(ValueError, match="unknown: \\['biases'\\]"):
        GNetwork([4, 8, 2], biases="gnetwork", searched=["biases"])


# -- the contract every registered model meets -----------------------------------------------


@pytest.fixture(params=model_names())
def small_model(request):
    """A registered model for a 4-8-2 network, its genome drawn with seed 0."""
    model = build_model(request.param, 4, 2, hidden=[8], **SMALL.get(request.param, {}))
    return model, model.init_genome(seeded_generator(0))


def test_contract_batched_weights_equal_per_member(small_model):
    model, genome = small_model
    noise = torch.randn(3, genome.numel(), generator=seeded_generator(1))
    population = genome + 0.1 * noise
    network = model.weights(population)

    assert [tuple(w.shape) for w, _ in network] == [(3, 4, 8), (3, 8, 2)]
    assert [tuple(b.shape) for _, b in network] == [(3, 8), (3, 2)]
    for member in range(3):
        single = model.weights(population[member : member + 1])
        for (w, b), (w1, b1) in zip(network, single, strict=True):
            torch.testing.assert_close(w[member], w1[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(b[member], b1[0], rtol=1e-5, atol=1e-6)
    assert not torch.equal(network[0][0][0], network[0][0][1])


def test_contract_flatten_round_trip_and_sizes(small_model):
    model, genome = small_model
    population = torch.stack([genome, -genome])
    parts = model.unflatten(population)

    assert torch.equal(model.flatten(parts), population)
    assert genome.shape == (model.genome_size,)
    assert model.describe()["model/network_size"] == 4 * 8 + 8 + 8 * 2 + 2
    assert model.describe()["model/genome_size"] == model.genome_size


def test_contract_gradients_reach_every_searched_part(small_model):
    model, genome = small_model
    net = model.network(genome)
    obs = torch.randn(6, 4, generator=seeded_generator(2))
    target = torch.randn(6, 2, generator=seeded_generator(3))
    (net(obs) * target).sum().backward()

    grads = model.unflatten(net.genome.grad.unsqueeze(0))
    reached = {name: bool(grads[name].abs().sum() > 0) for name in model.searched}
    assert all(reached.values()), reached


def test_contract_pickle_round_trip(small_model):
    model, genome = small_model
    clone = pickle.loads(pickle.dumps(model))
    obs = torch.randn(1, 5, 4, generator=seeded_generator(4))

    original = forward(model.weights(genome.unsqueeze(0)), obs)
    assert torch.equal(forward(clone.weights(genome.unsqueeze(0)), obs), original)
    assert clone.describe() == model.describe()


def test_contract_rejects_nan_genomes(small_model):
    model, genome = small_model
    population = torch.stack([genome, genome])
    population[1, -1] = math.nan
    with pytest.raises(ValueError, match="NaN or inf values \\(members \\[1\\]\\)"):
        model.weights(population)


def test_contract_evolution_runs(small_model):
    model, _ = small_model
    problem = Problem(model, "CartPole-v1", 2000, 0, eval_every=1000, eval_episodes=3)
    result = make_optimizer("snes", {"popsize": 8}).run(problem)

    assert result.best_genome.shape == (model.genome_size,)
    assert torch.isfinite(result.best_genome).all()
    assert result.env_steps > 0 and len(result.history) >= 2
    assert math.isfinite(result.best_eval_return) and result.best_eval_return >= 8.0


# -- free assembly ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """A SynaptoGen model for a 4-64-2 network and a genome standing in for a trained one."""
    model = SynaptoGen([4, 64, 2], genes=4, neurotransmitters=2, searched=["rules", "biases"])
    genome = model.init_genome(seeded_generator(0))
    return model, genome + 0.3


def test_free_assembly_shapes_and_determinism(trained):
    model, genome = trained
    network = free_assembly(model, genome, seed=1, count=3)

    assert [tuple(w.shape) for w, _ in network] == [(3, 4, 64), (3, 64, 2)]
    assert [tuple(b.shape) for _, b in network] == [(3, 64), (3, 2)]
    again = free_assembly(model, genome, seed=1, count=3)
    other = free_assembly(model, genome, seed=2, count=3)
    assert all(torch.equal(w, w2) for (w, _), (w2, _) in zip(network, again, strict=True))
    assert not torch.equal(network[0][0], other[0][0])
    assert not torch.equal(network[0][0][0], network[0][0][1])  # each its own lineage


def test_free_assembly_keeps_rules_and_conductances(trained):
    model, genome = trained
    parts = assembly_parts(model, genome, seed=1, count=3)
    own = model.unflatten(genome.unsqueeze(0))

    for name in ("O", "Phi"):
        assert torch.equal(parts[name], own[name].expand_as(parts[name]))
    for name in ("X1", "T0", "R1", "b1"):
        assert not torch.allclose(parts[name][0], own[name][0])
    network = free_assembly(model, genome, seed=1, count=3)
    expected = model._expected(parts)
    assert all(torch.equal(w, w2) for (w, _), (w2, _) in zip(network, expected, strict=True))


def test_free_assembly_layout_without_rescaling(trained):
    model, genome = trained
    parts = assembly_parts(model, genome, seed=5, count=2, rescale=False)
    cells = lineage_cells(70, 4 + 3 * 2 + 1, 2, seeded_generator(5))

    # neurons layer by layer; columns X (4), T (2), R (4), bias (1)
    assert torch.equal(parts["X0"], cells[:, :4, :4])
    assert torch.equal(parts["T0"], cells[:, :4, 4:6])
    assert torch.equal(parts["R1"], cells[:, 4:68, 6:10])
    assert torch.equal(parts["X2"], cells[:, 68:, :4])
    # the authors rescale the biases alone, to the trained biases' moments
    own = model.unflatten(genome.unsqueeze(0))
    own = torch.cat([own["b1"].flatten(), own["b2"].flatten()])
    drawn = torch.cat([parts["b1"], parts["b2"]], dim=1)
    torch.testing.assert_close(drawn.mean(dim=1), own.mean().expand(2))
    torch.testing.assert_close(drawn.std(dim=1), own.std().expand(2))


def test_free_assembly_rescales_each_part_to_the_genome(trained):
    model, genome = trained
    parts = assembly_parts(model, genome, seed=3, count=2)
    own = model.unflatten(genome.unsqueeze(0))

    for kind, names in (("X", ["X0", "X1", "X2"]), ("R", ["R1", "R2"])):
        drawn = torch.cat([parts[n].reshape(2, -1) for n in names], dim=1)
        target = torch.cat([own[n].reshape(-1) for n in names])
        torch.testing.assert_close(drawn.std(dim=1), target.std().expand(2), msg=kind)
        torch.testing.assert_close(drawn.mean(dim=1), target.mean().expand(2), msg=kind)


def test_lineage_neighbours_are_alike(trained):
    model, genome = trained
    parts = assembly_parts(model, genome, seed=4, count=20)
    hidden = parts["X1"]  # (20, 64, genes)

    neighbours = (hidden[:, 1:] - hidden[:, :-1]).square().sum(-1).mean()
    shuffled = hidden[:, torch.randperm(64, generator=seeded_generator(0))]
    random_pairs = (hidden - shuffled).square().sum(-1).mean()
    # i.i.d. cells would give a ratio near 1; siblings share all but one division step
    assert neighbours / random_pairs < 0.6


def test_lineage_variance_grows_with_depth():
    cells = lineage_cells(8, 3, 4000, seeded_generator(6))  # depth 3
    assert cells.shape == (4000, 8, 3)
    assert cells.var().item() == pytest.approx(1 + 3, rel=0.05)


def test_free_assembly_sampled_networks(trained):
    model, genome = trained
    sampled = free_assembly(model, genome, seed=1, count=2, sample=True)
    expected = free_assembly(model, genome, seed=1, count=2)

    assert [tuple(w.shape) for w, _ in sampled] == [(2, 4, 64), (2, 64, 2)]
    assert all(torch.isfinite(w).all() for w, _ in sampled)
    assert not torch.equal(sampled[0][0], expected[0][0])
    torch.testing.assert_close(sampled[1][1], expected[1][1])  # biases are not sampled


def test_free_assembly_checks_its_inputs(trained):
    model, genome = trained
    with pytest.raises(ValueError, match="needs a SynaptoGen model, got GCM"):
        free_assembly(GCM([4, 8, 2]), genome, seed=0)
    with pytest.raises(ValueError, match="genome must have shape"):
        free_assembly(model, genome[:-1], seed=0)
    with pytest.raises(ValueError, match="count must be an int >= 1"):
        free_assembly(model, genome, seed=0, count=0)
