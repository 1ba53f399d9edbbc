"""Why the evaluation's forward and the fast sampler's cumulants use numpy's matrix product.

Microseconds per call of torch's batched product (MKL in the CPU wheel) and numpy's (OpenBLAS)
at the shapes synevo's hot loops use, one thread each, and of the whole greedy step: torch's
`forward` plus argmax against `GreedyPolicy.act`. On the AMD EPYC machines synevo is
developed on, MKL's small products run 2.5x to 5x slower than OpenBLAS's; on another CPU the
ratios may differ, which this section shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.common import load, table
from synevo.evaluation.policy import GreedyPolicy
from synevo.models.base import forward
from synevo.threads import set_threads

# (what, left shape, right shape, dtype)
PRODUCTS = [
    ("input layer, 256 members x 1 obs", (256, 1, 4), (256, 4, 128), torch.float32),
    ("output layer, 256 members x 1 obs", (256, 1, 128), (256, 128, 2), torch.float32),
    ("output layer, 64 members x 10 obs", (64, 10, 128), (64, 128, 2), torch.float32),
    ("sampler block, G = 64", (1, 32, 4096), (1, 4096, 4), torch.float64),
    ("sampler block, G = 16", (1, 512, 256), (1, 256, 4), torch.float64),
]


def microseconds(call: Callable[[], object], repeats: int) -> float:
    """Median wall microseconds of `call()` over 5 rounds of `repeats` calls."""
    call()
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        rounds.append((time.perf_counter() - start) / repeats * 1e6)
    return float(np.median(rounds))


def product_rows(repeats: int) -> list[list[object]]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for what, left, right, dtype in PRODUCTS:
        a, b = (
            torch.randn(left, generator=g, dtype=dtype),
            torch.randn(right, generator=g, dtype=dtype),
        )
        an, bn = a.numpy(), b.numpy()
        t = microseconds(lambda a=a, b=b: torch.bmm(a, b), repeats)
        n = microseconds(lambda an=an, bn=bn: np.matmul(an, bn), repeats)
        rows.append([what, f"{t:.1f}", f"{n:.1f}", f"{t / n:.2f}x", load()])
    return rows


def step_rows(repeats: int) -> list[list[object]]:
    rows = []
    g = torch.Generator().manual_seed(1)
    for batch, n_obs in ((256, 1), (64, 10), (8, 1)):
        network = [
            (torch.randn(batch, 4, 128, generator=g), torch.randn(batch, 128, generator=g)),
            (torch.randn(batch, 128, 2, generator=g), torch.randn(batch, 2, generator=g)),
        ]
        obs = torch.randn(batch, n_obs, 4, generator=g)
        policy, obs_np = GreedyPolicy(network), obs.numpy()
        with torch.inference_mode():
            t = microseconds(lambda n=network, o=obs: forward(n, o).argmax(dim=-1), repeats)
        n = microseconds(lambda p=policy, o=obs_np: p.act(o), repeats)
        what = f"greedy step 4-128-2, {batch} members x {n_obs} obs"
        rows.append([what, f"{t:.1f}", f"{n:.1f}", f"{t / n:.2f}x", load()])
    return rows


def run(quick: bool) -> list[str]:
    set_threads(1)  # torch and numpy BLAS
    repeats = 200 if quick else 1000
    header = ["what", "torch us", "numpy us", "torch / numpy", "load"]
    title = "Matrix products at synevo's shapes, 1 thread: torch (MKL) vs numpy (OpenBLAS)"
    return [table(title, header, product_rows(repeats) + step_rows(repeats))]
