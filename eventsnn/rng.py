"""Counter-based random numbers, identical in compiled kernels and in NumPy.

A uniform number is a hash of (seed, stream, sample, step, index), so a sample's random
stream does not depend on the batch it is in, on thread scheduling, or on the engine.
The hash is SplitMix64's finalizer; uniforms use its top 53 bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .kernel_cache import CACHE

STREAM_POISSON_INPUT = 1
STREAM_SOFTMAX_TRIGGER = 2
STREAM_SOFTMAX_DRAW = 3

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=CACHE, inline="always")
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=CACHE)
def step_key(seed: int, stream: int, sample: int, step: int):
    """The key of one (sample, step) of one stream; combine with an index in ``uniform``."""
    z = mix64(np.uint64(seed) + _GOLDEN * np.uint64(stream))
    z = mix64(z + np.uint64(sample))
    return mix64(z + np.uint64(step))


@njit(cache=CACHE, inline="always")
def uniform(key, index):
    """A float64 in [0, 1) for one index under a step key."""
    return np.float64(mix64(np.uint64(key) ^ (np.uint64(index) * _GOLDEN)) >> _S11) * _TO_UNIT


def uniform_numpy(keys: np.ndarray, count: int) -> np.ndarray:
    """NumPy twin of ``uniform``: (len(keys), count) uniforms for indices 0..count-1."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64)[:, None] ^ (np.arange(count, dtype=np.uint64)[None, :] * _GOLDEN)
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        z = z ^ (z >> _S31)
    return (z >> _S11).astype(np.float64) * _TO_UNIT
