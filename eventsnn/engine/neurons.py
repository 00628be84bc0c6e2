"""Integrate-and-fire: integrate the drive, threshold, reset, and turn the spikes into an event queue."""

from __future__ import annotations

import numpy as np
from numba import njit

from .delivery import _add_row

@njit(cache=True, error_model="numpy")
def _integrate_fire(v, v0, n, drive, d0, threshold, subtract, graded, max_spikes, queue, amounts, words, f0):
    """V += drive; spike where V >= threshold, reset, queue the spiking indices (graded spikes:
    and what each event carries, in ``amounts``).

    Two passes: a branch-free one that vectorizes (integrate, threshold, reset, the spikes each
    neuron emits as one byte into ``words``, starting at word f0), then a compaction that skips 8
    silent neurons per zero word and appends without branches; ``amounts`` is indexed by neuron,
    like the queue's entries. Returns (event count, whether some V is still >= threshold after
    its reset)."""
    flags = words.view(np.uint8)
    if graded:
        _fire_graded(v[v0:v0 + n], drive[d0:d0 + n], flags[8 * f0:8 * f0 + n], threshold, subtract, max_spikes)
    else:
        _fire(v[v0:v0 + n], drive[d0:d0 + n], flags[8 * f0:8 * f0 + n], threshold, subtract)
    count = 0
    residual = False
    for w in range((n + 7) // 8):
        if words[f0 + w] != 0:
            for i in range(8 * w, min(8 * w + 8, n)):
                queue[v0 + count] = i
                emitted = flags[8 * f0 + i]
                spiked = emitted != 0
                if graded:
                    amounts[v0 + i] = emitted
                residual |= spiked & (v[v0 + i] >= threshold)
                count += spiked
    return count, residual


@njit(cache=True, inline="always", error_model="numpy")
def _fire(v, drive, flags, threshold, subtract):
    for i in range(v.size):
        u = v[i] + drive[i]
        spike = u >= threshold
        reset = u - threshold if subtract else np.float32(0.0)
        v[i] = reset if spike else u
        flags[i] = np.uint8(1) if spike else np.uint8(0)


@njit(cache=True, inline="always", error_model="numpy")
def _fire_graded(v, drive, flags, threshold, subtract, max_spikes):
    for i in range(v.size):
        u = v[i] + drive[i]
        k = min(np.floor(u / threshold), max_spikes) if u >= threshold else np.float32(0.0)
        reset = u - k * threshold if subtract else np.float32(0.0)
        v[i] = reset if k > 0 else u
        flags[i] = np.uint8(k)


@njit(cache=True, error_model="numpy")
def _integrate(v, v0, n, drive, d0):
    _add_row(v[v0:v0 + n], drive[d0:d0 + n], np.float32(1.0), False)


@njit(cache=True, inline="always", error_model="numpy")
def _scale(values, factor):
    for i in range(values.size):  # a view indexed from 0: vectorizes
        values[i] *= factor
