"""Thread counts of the numerical libraries in synevo's hot loops: torch's and numpy's BLAS.

The matrix products of an evaluation step and of a sampler's block are small, so extra
threads mostly add synchronization, and on a Ray worker they take cores from the other
workers. torch's intra-op threads are set with `torch.set_num_threads`; numpy's products go
through OpenBLAS, whose threads `threadpoolctl` sets (OpenBLAS starts with one per core).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_controllers: dict[int, object] = {}


def _controller():
    """threadpoolctl's view of the loaded BLAS libraries (about 1.5 ms to build).

    A library loads only with a new extension module, so the view is rebuilt whenever the
    number of imported modules has changed since it was built: SciPy's own OpenBLAS, loaded
    after the first call, is limited too.
    """
    from threadpoolctl import ThreadpoolController

    modules = len(sys.modules)
    if modules not in _controllers:
        _controllers.clear()
        _controllers[modules] = ThreadpoolController()
    return _controllers[modules]


def check_threads(threads: int | None) -> int | None:
    """`threads` if it is an int >= 1 or None.

    Raises:
        ValueError: for anything else.
    """
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
    return threads


@contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """torch and BLAS threads set to `threads` inside the block and restored after it.

    `None` leaves both as they are.

    Raises:
        ValueError: if threads < 1.
    """
    if check_threads(threads) is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with _controller().limit(limits=threads, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def set_threads(threads: int) -> None:
    """torch and BLAS threads of the whole process (a Ray worker's), from now on."""
    torch.set_num_threads(threads)
    _controller().limit(limits=threads, user_api="blas")
