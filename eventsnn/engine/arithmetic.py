"""What differs between float32 and int32 membranes (``fixed_point``), resolved when Numba compiles:
the kernels call these and stay written once for both."""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype


def spike_count(u, threshold):
    """floor(u / threshold), exact for integers too. Integers are divided in float64, which
    vectorizes where an integer division does not, and is exact here: for |u| < 2**52 a quotient
    that is not an integer lies at least 1/|u| (relatively) from one, far more than float64's
    rounding, so the floor cannot change."""
    raise NotImplementedError  # compiled only


def one_like(values):
    """1 in the element type of ``values``."""
    raise NotImplementedError  # compiled only


@overload(spike_count, inline="always")
def _spike_count(u, threshold):
    if isinstance(u, types.Integer):
        return lambda u, threshold: np.int64(np.floor(np.float64(u) / np.float64(threshold)))
    return lambda u, threshold: np.floor(u / threshold)


@overload(one_like, inline="always")
def _one_like(values):
    one = as_dtype(values.dtype).type(1)
    return lambda values: one
