"""The output layer: the softmax draw, the decision at each step, and the early-exit rule."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..kernel_cache import CACHE
from .packing import MEMBRANE

@njit(cache=CACHE, error_model="numpy")
def _softmax_draw(v, v0, n, unit, u):
    """Index drawn from softmax(V * unit) with the uniform number u (inverse CDF, float64; ``unit``
    turns int32 grid steps into values, and is 1 for float32)."""
    top = np.float64(v[v0])
    for k in range(1, n):
        top = max(top, np.float64(v[v0 + k]))
    weights = np.empty(n)
    total = 0.0
    for k in range(n):
        weights[k] = math.exp((np.float64(v[v0 + k]) - top) * unit)
        total += weights[k]
    target = u * total
    cumulative = 0.0
    for k in range(n):
        cumulative += weights[k]
        if target < cumulative:
            return k
    return n - 1


@njit(cache=CACHE, error_model="numpy")
def _decide(counts, v, v0, n, readout, any_spike):
    """Most output spikes, ties to the larger membrane potential; 'membrane' readout: argmax V."""
    best = 0
    for k in range(1, n):
        if readout == MEMBRANE:
            better = v[v0 + k] > v[v0 + best]
        else:
            better = counts[k] > counts[best] or (counts[k] == counts[best] and v[v0 + k] > v[v0 + best])
        if better:
            best = k
    if readout != MEMBRANE and not any_spike:
        return -1
    return best


@njit(cache=CACHE, error_model="numpy")
def _margin(counts, n):
    """Output spikes of the leading class minus those of the runner-up."""
    first, second = -1, -1
    for k in range(n):
        if counts[k] > first:
            first, second = counts[k], first
        elif counts[k] > second:
            second = counts[k]
    return first - second


@njit(cache=CACHE, error_model="numpy")
def _should_stop(decisions, t, stable_steps, exit_margin, counts, n_out):
    """Early exit: the decision has not changed for ``stable_steps`` steps, or the output margin
    reached ``exit_margin`` (each criterion off when 0)."""
    if decisions[t] < 0:
        return False
    if stable_steps > 0 and t + 1 >= stable_steps:
        stable = True
        for back in range(1, stable_steps):
            if decisions[t - back] != decisions[t]:
                stable = False
                break
        if stable:
            return True
    return exit_margin > 0 and _margin(counts, n_out) >= exit_margin
