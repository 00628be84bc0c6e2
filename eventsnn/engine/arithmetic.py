"""What differs between float32 and int32 membranes (``fixed_point``), resolved when Numba compiles:
the kernels call these and stay written once for both."""

from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload
from numba.np.numpy_support import as_dtype


def exact_float(value):
    """``value`` in a float type in which the fire pass computes exactly: float32 stays float32,
    an int32 becomes float64 (which holds int32 sums and quotients' floors exactly, and, unlike
    int64, converts to and from int32 in SIMD registers, so the loop vectorizes)."""
    raise NotImplementedError  # compiled only


def one_like(values):
    """1 in the element type of ``values``."""
    raise NotImplementedError  # compiled only


@overload(exact_float, inline="always")
def _exact_float(value):
    if isinstance(value, types.Integer):
        return lambda value: np.float64(value)
    return lambda value: value


@overload(one_like, inline="always")
def _one_like(values):
    one = as_dtype(values.dtype).type(1)
    return lambda values: one
