"""BLAS held to one thread during a stage-by-stage run, its products split over the run's threads (``engine.blas``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from eventsnn.engine import blas


@pytest.mark.skipif(sys.platform != "linux", reason="finds NumPy's OpenBLAS through /proc/self/maps")
def test_blas_runs_one_thread_while_held_and_gets_its_threads_back():
    controls = blas._openblas_controls()
    assert controls is not None, "NumPy's OpenBLAS was not found"
    get, set_ = controls
    set_(2)
    with blas.single_threaded() as held:
        assert held and get() == 1
        with blas.single_threaded():  # nested: still one thread, and not restored by the inner exit
            pass
        assert get() == 1
    assert get() == 2


@pytest.mark.parametrize("shape_a, shape_b", [((37, 11), (11, 5)), ((16, 9, 4), (16, 4, 3)), ((1, 3), (3, 2))])
def test_a_split_product_equals_the_whole_one(shape_a, shape_b):
    """Integers in float64: every way of splitting the rows gives the same exact sums."""
    rng = np.random.default_rng(0)
    a, b = rng.integers(-9, 10, shape_a).astype(np.float64), rng.integers(-9, 10, shape_b).astype(np.float64)
    with blas.single_threaded():
        out = np.full(shape_a[:-1] + shape_b[-1:], np.nan)
        split = blas.matmul(a, b, out, n_threads=2)
        assert split is out
        np.testing.assert_array_equal(split, a @ b)
        np.testing.assert_array_equal(blas.matmul(a, b, n_threads=3), a @ b)
