"""Greedy actions of a batch of networks, for evaluation: `forward` in numpy, no autograd.

The same computation as `synevo.models.base.forward` (SELU on hidden layers, linear output,
argmax), per member, in float32. It exists for speed: at the shapes of an evaluation step (one
to ten observations per member, 128 hidden neurons, a few outputs) torch's batched matrix
product runs through MKL, which on the AMD EPYC machines synevo is developed on is 2.5x to 5x
slower than numpy's OpenBLAS for the same product, and torch's SELU (through `expm1`) 3x
slower than numpy's `expm1`. A forward step of 256 members took 93 us here against torch's
138 us (BENCHMARKS.md).

Each member's products are its own matrix products, so a member's actions do not depend on
which members share its batch. Outputs match torch's `forward` to float32 rounding; an action
may differ from it only where two outputs tie to within that rounding.
"""

from __future__ import annotations

import numpy as np
import torch

from synevo.types import Network

# torch's SELU constants (torch.nn.SELU), as float32
_ALPHA = np.float32(1.6732632423543772848170429916717)
_SCALE = np.float32(1.0507009873554804934193349852946)


class GreedyPolicy:
    """A batch of networks as float32 numpy arrays, playing greedily.

    Args:
        network: weights `(batch, n_pre, n_post)` and biases `(batch, n_post)` per layer.
    """

    def __init__(self, network: Network):
        self.layers = [(_array(w), _array(b)[:, None, :]) for w, b in network]
        self._buffers: dict[tuple, np.ndarray] = {}

    @property
    def batch(self) -> int:
        return self.layers[0][0].shape[0]

    def rows(self, index: np.ndarray | list[int]) -> GreedyPolicy:
        """The members `index` (in that order) as a new policy."""
        index = np.asarray(index, dtype=np.intp)
        policy = GreedyPolicy.__new__(GreedyPolicy)
        policy.layers = [(w[index], b[index]) for w, b in self.layers]
        policy._buffers = {}
        return policy

    def outputs(self, obs: np.ndarray) -> np.ndarray:
        """obs `(batch, n_obs, n_0)` float32 -> outputs `(batch, n_obs, n_L)` float32."""
        h, last = obs, len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            # products into kept buffers: a fresh array of a large batch costs page faults
            out = self._buffer(("layer", i), (h.shape[0], h.shape[1], w.shape[2]))
            np.matmul(h, w, out=out)
            out += b
            if i < last:
                _selu_(out, self._buffer(("selu", i), out.shape))
            h = out
        return h

    def act(self, obs: np.ndarray) -> np.ndarray:
        """obs `(batch, n_obs, n_0)` float32 -> greedy actions `(batch, n_obs)` int64."""
        return self.outputs(obs).argmax(axis=-1)

    def _buffer(self, key: tuple, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 scratch array of `shape`, kept between calls of the same shape."""
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape != shape:
            buffer = self._buffers[key] = np.empty(shape, dtype=np.float32)
        return buffer


def _array(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())


def _selu_(h: np.ndarray, negative: np.ndarray) -> None:
    """SELU of `h` in place (`scale * h` where `h > 0`, `scale * alpha * expm1(h)` elsewhere);
    `negative` is scratch space of h's shape."""
    np.minimum(h, 0, out=negative)
    np.expm1(negative, out=negative)
    negative *= _ALPHA
    np.maximum(h, 0, out=h)
    h += negative
    h *= _SCALE
