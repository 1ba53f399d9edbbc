"""The genomic-bottleneck g-network of Shuvaev, Lachi, Koulakov and Zador, "Encoding innate
ability through a genomic bottleneck" (PNAS 121(38), 2024), as a synevo genome model.

Neuron `u` of layer `l` has an identity code: the `ceil(log2 n_l)` bits of its index (least
significant first; `code="gray"` uses the Gray code `u ^ (u >> 1)`), each mapped to -1 or +1
and padded with zeros to the longest code. A small MLP, the g-network `g`, reads one row per
connection and returns its weight:

    W_l[u, v] = gain_l * g([code_l(u), code_{l+1}(v), onehot(l)]),   gain_l = sqrt(2 / n_l).

The g-network's weights and biases are the genome. The p-network's biases are free parts
(`biases="free"`) or come from the same g-network (`biases="gnetwork"`):
`b_{l+1}[v] = sqrt(2 / (n_l + 1)) * g([0, code_{l+1}(v), onehot(l), 1])`, the last entry
flagging a bias query (connection rows end in 0).

Choices of synevo: one g-network serves every layer, told apart by the one-hot layer index;
the fan-in gain (`fan_in_gain=True`) is ours, so that a g-network whose output has unit-order
variance starts every layer at a He-like scale whatever its fan-in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch.nn import functional as F

from synevo.models.base import GenomeModel, expand_searched
from synevo.types import Network

logger = logging.getLogger(__name__)

ACTIVATIONS = ("tanh", "selu")
BIASES = ("free", "gnetwork")
CODES = ("binary", "gray")


class GNetwork(GenomeModel):
    """A small MLP that maps the identity codes of two neurons to the weight between them.

    Parts, in genome order: `gW1, gb1, ..., gWk, gbk` (the g-network's layers, `gWk` of
    shape `(fan_in, fan_out)`, the last with one output), then `b1..bL (n_l,)` when
    `biases="free"`.

    Args:
        layer_sizes: neurons per layer of the p-network, input first, e.g. `(4, 128, 2)`.
        g_hidden: hidden layer sizes of the g-network.
        g_activation: the g-network's hidden activation, `"tanh"` or `"selu"`.
        biases: `"free"` (ordinary parts of the genome) or `"gnetwork"` (queried from `g`).
        code: identity code of a neuron index, `"binary"` or `"gray"`.
        fan_in_gain: scale layer `l`'s weights by `sqrt(2 / n_l)`.
        searched: part names or group names (`gnetwork`, `biases`); `None` or `"all"`
            searches everything.

    Raises:
        ValueError: for a setting outside its allowed values.
    """

    name = "gnetwork"

    def __init__(
        self,
        layer_sizes: Sequence[int],
        g_hidden: Sequence[int] = (32,),
        g_activation: str = "tanh",
        biases: str = "free",
        code: str = "binary",
        fan_in_gain: bool = True,
        searched: str | Sequence[str] | None = None,
    ):
        _check_settings(g_hidden, g_activation, biases, code, fan_in_gain)
        self.g_hidden = tuple(int(h) for h in g_hidden)
        self.g_activation = g_activation
        self.biases = biases
        self.code = code
        self.fan_in_gain = fan_in_gain
        self.layer_sizes = tuple(int(n) for n in layer_sizes)
        groups = self.part_groups()
        super().__init__(layer_sizes, expand_searched(searched, groups))
        self._queries = query_table(self.layer_sizes, code, with_biases=biases == "gnetwork")
        logger.debug("GNetwork %s: g-network %s", self.layer_sizes, self._widths())

    # -- genome layout -----------------------------------------------------------------------

    def part_groups(self) -> dict[str, list[str]]:
        """Group name -> part names."""
        depth = len(self.g_hidden) + 1
        groups = {"gnetwork": [f"g{kind}{k}" for k in range(1, depth + 1) for kind in "Wb"]}
        if self.biases == "free":
            groups["biases"] = [f"b{i}" for i in range(1, len(self.layer_sizes))]
        return groups

    def part_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every genome part, in genome order."""
        shapes: dict[str, tuple[int, ...]] = {}
        for k, (fan_in, fan_out) in enumerate(pairwise(self._widths()), start=1):
            shapes[f"gW{k}"] = (fan_in, fan_out)
            shapes[f"gb{k}"] = (fan_out,)
        if self.biases == "free":
            shapes.update(
                {f"b{i}": (self.layer_sizes[i],) for i in range(1, len(self.layer_sizes))}
            )
        return shapes

    def _widths(self) -> list[int]:
        """Input, hidden and output widths of the g-network."""
        sizes = self.layer_sizes
        bits = max(code_bits(n) for n in sizes)
        width = 2 * bits + len(sizes) - 1 + (self.biases == "gnetwork")
        return [width, *self.g_hidden, 1]

    def _init_part(self, name: str, generator: torch.Generator) -> torch.Tensor:
        shape = self.part_shapes()[name]
        if name.startswith("gW"):
            # LeCun normal: unit-variance pre-activations for inputs of unit-order entries
            return torch.randn(shape, generator=generator) / math.sqrt(shape[0])
        if name.startswith("gb"):
            return torch.zeros(shape)
        # SynaptoGen's bias initialization
        std = math.sqrt(2.0 / (self.layer_sizes[int(name[1:]) - 1] + 1))
        return torch.randn(shape, generator=generator) * std

    # -- expected weights --------------------------------------------------------------------

    def _expected(self, parts: dict[str, torch.Tensor]) -> Network:
        outputs = self._g_outputs(parts)
        network, start = [], 0
        for i, (n_pre, n_post) in enumerate(pairwise(self.layer_sizes)):
            stop = start + n_pre * n_post
            weights = outputs[:, start:stop].reshape(-1, n_pre, n_post) * self._gain(n_pre)
            start = stop
            if self.biases == "gnetwork":
                biases = outputs[:, start : start + n_post] * self._gain(n_pre + 1)
                start += n_post
            else:
                biases = parts[f"b{i + 1}"]
            network.append((weights, biases))
        return network

    def _g_outputs(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The g-network on every query row for every member: `(popsize, rows)`."""
        h = self._queries.to(parts["gW1"].dtype)
        depth = len(self.g_hidden) + 1
        for k in range(1, depth + 1):
            # (rows, fan_in) @ (popsize, fan_in, fan_out) broadcasts to (popsize, rows, fan_out)
            h = torch.matmul(h, parts[f"gW{k}"]) + parts[f"gb{k}"].unsqueeze(1)
            if k < depth:
                h = torch.tanh(h) if self.g_activation == "tanh" else F.selu(h)
        return h.squeeze(-1)

    def _gain(self, fan_in: int) -> float:
        return math.sqrt(2.0 / fan_in) if self.fan_in_gain else 1.0


def code_bits(n: int) -> int:
    """Bits of the identity code of a layer of `n` neurons, `ceil(log2 n)`."""
    return (n - 1).bit_length()


def identity_codes(n: int, width: int, code: str = "binary") -> torch.Tensor:
    """Codes of neurons `0..n-1`, `(n, width)`: bits as -1/+1, zero-padded to `width`."""
    index = torch.arange(n)
    if code == "gray":
        index = index ^ (index >> 1)
    bits = code_bits(n)
    codes = torch.zeros(n, width)
    codes[:, :bits] = ((index[:, None] >> torch.arange(bits)) & 1).float() * 2.0 - 1.0
    return codes


def query_table(layer_sizes: Sequence[int], code: str, with_biases: bool) -> torch.Tensor:
    """Every g-network input row, `(rows, width)`.

    Layer by layer: the `n_l * n_{l+1}` connection rows, pre-synaptic neuron major, then
    (with biases) the `n_{l+1}` bias rows.
    """
    bits = max(code_bits(n) for n in layer_sizes)
    n_layers = len(layer_sizes) - 1
    blocks = []
    for i, (n_pre, n_post) in enumerate(pairwise(layer_sizes)):
        pre = identity_codes(n_pre, bits, code).repeat_interleave(n_post, dim=0)
        post = identity_codes(n_post, bits, code).repeat(n_pre, 1)
        layer = F.one_hot(torch.tensor(i), n_layers).float().expand(n_pre * n_post, -1)
        rows = [pre, post, layer]
        if with_biases:
            rows.append(torch.zeros(n_pre * n_post, 1))
        blocks.append(torch.cat(rows, dim=1))
        if with_biases:
            post = identity_codes(n_post, bits, code)
            flag = torch.ones(n_post, 1)
            bias_rows = [torch.zeros(n_post, bits), post, layer[:n_post], flag]
            blocks.append(torch.cat(bias_rows, dim=1))
    return torch.cat(blocks)


def _check_settings(
    g_hidden: Sequence[int], g_activation: str, biases: str, code: str, fan_in_gain: bool
) -> None:
    """Validate the constructor's settings.

    Raises:
        ValueError: naming the first setting outside its allowed values.
    """
    if isinstance(g_hidden, int | str) or any(
        isinstance(h, bool) or int(h) != h or h < 1 for h in g_hidden
    ):
        raise ValueError(f"g_hidden must be a list of positive ints, got {g_hidden!r}")
    if g_activation not in ACTIVATIONS:
        raise ValueError(f"g_activation must be one of {ACTIVATIONS}, got {g_activation!r}")
    if biases not in BIASES:
        raise ValueError(f"biases must be one of {BIASES}, got {biases!r}")
    if code not in CODES:
        raise ValueError(f"code must be one of {CODES}, got {code!r}")
    if not isinstance(fan_in_gain, bool):
        raise ValueError(f"fan_in_gain must be true or false, got {fan_in_gain!r}")
