"""Thread limits of torch and numpy's BLAS around synevo's hot loops."""

from __future__ import annotations

import sys

import pytest
import torch
from threadpoolctl import threadpool_info

from synevo.threads import limit_threads


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_limit_threads_sets_torch_and_blas_and_restores_them():
    torch_before, blas_before = torch.get_num_threads(), blas_threads()
    assert blas_before, "numpy should load a BLAS that threadpoolctl sees"
    torch.set_num_threads(2)
    try:
        with limit_threads(1):
            assert torch.get_num_threads() == 1
            assert set(blas_threads()) == {1}
        assert torch.get_num_threads() == 2
        assert blas_threads() == blas_before
    finally:
        torch.set_num_threads(torch_before)


def test_none_leaves_threads_alone_and_bad_counts_are_refused():
    before = torch.get_num_threads()
    with limit_threads(None):
        assert torch.get_num_threads() == before
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="threads must be an int >= 1 or None"):
            with limit_threads(bad):
                pass


def test_a_blas_loaded_after_the_first_limit_is_limited_too(monkeypatch):
    """The library view is rebuilt once a new module is imported (SciPy brings its own BLAS)."""
    from types import ModuleType

    from synevo import threads

    with limit_threads(1):
        before = threads._controller()
    assert threads._controller() is before
    monkeypatch.setitem(sys.modules, "synevo_new_extension", ModuleType("synevo_new_extension"))
    assert threads._controller() is not before
