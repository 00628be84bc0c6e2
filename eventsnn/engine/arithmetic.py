"""What differs between float32 and int32 membranes (``fixed_point``), resolved when Numba compiles:
the kernels call these and stay written once for both."""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype


def spike_count(u, threshold):
    """floor(u / threshold): a float division floored, or an integer floor division (exact)."""
    raise NotImplementedError  # compiled only


def one_like(values):
    """1 in the element type of ``values``."""
    raise NotImplementedError  # compiled only


@overload(spike_count, inline="always")
def _spike_count(u, threshold):
    if isinstance(u, types.Integer):
        return lambda u, threshold: u // threshold
    return lambda u, threshold: np.floor(u / threshold)


@overload(one_like, inline="always")
def _one_like(values):
    one = as_dtype(values.dtype).type(1)
    return lambda values: one
