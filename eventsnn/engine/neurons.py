"""Integrate-and-fire: integrate the drive, threshold, reset, and turn the spikes into an event queue."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..kernel_cache import CACHE
from .arithmetic import exact_float
from .delivery import _add_row
from .intrinsics import _popcount


@njit(cache=CACHE, error_model="numpy")
def _fire_pass(v, v0, n, drive, d0, threshold, subtract, graded, max_spikes, low, high, amounts, words, f0,
               signed, total):
    """V += drive; spike where V >= threshold, reset, and saturate V at [low, high] (int32
    arithmetic; float32 passes infinities). Branch-free, so it vectorizes: the spikes
    each neuron emits go as one byte into ``words`` (from word f0) for ``_compact``, and graded,
    also into ``amounts`` (what its event carries; indexed by neuron, like the queue's entries).
    Signed: a neuron whose spike count so far (``total``) is positive emits -1 where V < 0.
    Returns (whether some neuron fires again without input: V still >= threshold after its
    reset, or signed, still < 0 with spikes to take back; graded: the spikes emitted, counted with
    what they carry, a -1 as one; binary: 0, the event count says it)."""
    flags = words.view(np.uint8)
    if signed:
        again, emitted = _fire_signed(v[v0:v0 + n], drive[d0:d0 + n], flags[8 * f0:8 * f0 + n], amounts[v0:v0 + n],
                                      total[v0:v0 + n], threshold, subtract, low, high)
        return again > 0, emitted
    if graded:
        still_above, emitted = _fire_graded(v[v0:v0 + n], drive[d0:d0 + n], flags[8 * f0:8 * f0 + n],
                                            amounts[v0:v0 + n], threshold, subtract, max_spikes, low, high)
        return still_above > 0, emitted
    return _fire(v[v0:v0 + n], drive[d0:d0 + n], flags[8 * f0:8 * f0 + n], threshold, subtract, low, high) > 0, 0


# In int32 arithmetic the pass computes in float64 (``exact_float``: exact for these integers, and
# the loop vectorizes); zero is written u - u to keep the type either way.


@njit(cache=CACHE, inline="always", error_model="numpy")
def _fire(v, drive, flags, threshold, subtract, low, high):
    threshold, low, high = exact_float(threshold), exact_float(low), exact_float(high)
    still_above = np.uint8(0)  # a byte-wide max vectorizes 32 wide; an int64 count would run 4 wide
    for i in range(v.size):  # _spikes_and_reset's binary case, on a bool: twice as fast here (probe)
        u = exact_float(v[i]) + exact_float(drive[i])
        spike = u >= threshold
        reset = u - threshold if subtract else u - u
        v[i] = min(max(reset if spike else u, low), high)
        flags[i] = np.uint8(1) if spike else np.uint8(0)
        still_above = max(still_above, np.uint8(1) if v[i] >= threshold else np.uint8(0))
    return still_above


@njit(cache=CACHE, inline="always", error_model="numpy")
def _fire_graded(v, drive, flags, amounts, threshold, subtract, max_spikes, low, high):
    threshold, max_spikes = exact_float(threshold), exact_float(max_spikes)
    low, high = exact_float(low), exact_float(high)
    still_above, emitted = np.uint8(0), 0
    for i in range(v.size):
        k, v[i] = _spikes_and_reset(exact_float(v[i]) + exact_float(drive[i]), threshold, subtract, True, max_spikes,
                                    low, high)
        flags[i] = np.uint8(k)
        amounts[i] = k
        still_above = max(still_above, np.uint8(1) if v[i] >= threshold else np.uint8(0))
        emitted += np.int64(k)
    return still_above, emitted


@njit(cache=CACHE, inline="always", error_model="numpy")
def _spikes_and_reset(u, threshold, subtract, graded, max_spikes, low, high):
    """A membrane at u: the spikes it emits, k = min(floor(u / threshold), max_spikes) (binary: 1)
    where u >= threshold, else 0; and V after them, reset by k thresholds (or to zero) and
    saturated at [low, high]. In ``exact_float`` values."""
    none = max_spikes - max_spikes
    if graded:
        k = min(np.floor(u / threshold), max_spikes) if u >= threshold else none
    else:
        k = none + 1 if u >= threshold else none
    reset = u - k * threshold if subtract else u - u
    return k, min(max(reset if k > 0 else u, low), high)


@njit(cache=CACHE, error_model="numpy")
def _fire_signed(v, drive, flags, amounts, total, threshold, subtract, low, high):
    threshold, low, high = exact_float(threshold), exact_float(low), exact_float(high)
    again, emitted = np.uint8(0), 0
    for i in range(v.size):
        u = exact_float(v[i]) + exact_float(drive[i])
        up = u >= threshold
        down = (u < u - u) & (total[i] > 0)  # u - u: zero of u's type
        k = np.int32(1) if up else np.int32(-1) if down else np.int32(0)
        reset = u - k * threshold if subtract else u - u
        v[i] = min(max(reset if k != 0 else u, low), high)
        flags[i] = np.uint8(k & 0xFF)
        amounts[i] = k
        total[i] += k
        again = max(again, np.uint8(1) if v[i] >= threshold or (v[i] < 0 and total[i] > 0) else np.uint8(0))
        emitted += np.int64(abs(k))
    return again, emitted


PART = 1 << 22  # neurons per int32 tally: 255 spikes each still fit


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _fire_step(v_prev, current, drive, v, counts, threshold, subtract, graded, max_spikes, low, high):
    """One step of a stage's neurons in one pass (``lockstep``): V = v_prev + current (wrapping in
    int32, as the engine's adds), then ``_fire_graded``'s pass with the drive (binary: ``_fire``'s,
    the same spikes, resets and saturation); what each neuron emitted goes to counts. v_prev and v
    are different arrays, so the loop vectorizes. Returns (spikes emitted, neurons that fired)."""
    emitted, fired = 0, 0
    for lo in range(0, v.size, PART):
        hi = min(lo + PART, v.size)
        part_emitted, part_fired = _fire_part(v_prev[lo:hi], current[lo:hi], drive[lo:hi], v[lo:hi], counts[lo:hi],
                                              threshold, subtract, graded, max_spikes, low, high)
        emitted += part_emitted
        fired += part_fired
    return emitted, fired


@njit(cache=CACHE, inline="always", error_model="numpy")
def _fire_part(v_prev, current, drive, v, counts, threshold, subtract, graded, max_spikes, low, high):
    threshold, max_spikes = exact_float(threshold), exact_float(max_spikes)
    low, high = exact_float(low), exact_float(high)
    emitted, fired = np.int32(0), np.int32(0)  # int32 tallies vectorize twice as wide as int64 ones
    for i in range(v.size):
        v[i] = v_prev[i] + current[i]  # stored first: an int32 sum wraps
        k, v[i] = _spikes_and_reset(exact_float(v[i]) + exact_float(drive[i]), threshold, subtract, graded,
                                    max_spikes, low, high)
        counts[i] = k
        emitted = np.int32(emitted + np.int32(k))
        fired = np.int32(fired + np.int32(k > 0))
    return emitted, fired


LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
HIGH = np.uint64(0x8080808080808080)
GATHER_HIGH_BITS = np.uint64(0x0102040810204080)  # moves bit 8k + 7 of a word to bit 56 + k


@njit(cache=CACHE)
def lane_table():
    """lanes[8 * m + k] = position of the k-th set bit of the byte m (the rest 0)."""
    lanes = np.zeros(256 * 8, np.uint8)
    for m in range(256):
        k = 0
        for bit in range(8):
            if m >> bit & 1:
                lanes[8 * m + k] = bit
                k += 1
    return lanes


@njit(cache=CACHE, error_model="numpy")
def _compact(n, queue, q0, words, f0, lanes):
    """Turn the spike bytes of ``_fire_pass`` into the event queue (neuron indices, in order),
    without branches: per word of 8 neurons, the non-zero bytes give an 8-bit mask, whose
    ``lanes`` row holds their positions; all 8 are written (the queue is as long as the stage,
    and only full words are done this way, so the writes stay inside it) and the count moves on
    by the word's spikes. Bytes are little-endian in a word. Returns the event count."""
    count = 0
    full = n // 8
    for w in range(full):
        spiking = _spiking(words[f0 + w])
        row = 8 * np.int64((spiking >> np.uint64(7)) * GATHER_HIGH_BITS >> np.uint64(56))
        for k in range(8):
            queue[q0 + count + k] = 8 * w + lanes[row + k]
        count += np.int64(_popcount(spiking))
    flags = words.view(np.uint8)
    for i in range(8 * full, n):  # the last, partial word
        queue[q0 + count] = i
        count += flags[8 * f0 + i] != 0
    return count


@njit(cache=CACHE, inline="always")
def _spiking(word):
    """The high bit of each non-zero byte of the word (a neuron's spike byte)."""
    return (((word & LOW7) + LOW7) | word) & HIGH


@njit(cache=CACHE, error_model="numpy")
def _integrate(v, v0, n, drive, d0, low, high):
    """V += drive, saturated at [low, high] (a layer that does not fire, the membrane readout)."""
    _add_row(v[v0:v0 + n], drive[d0:d0 + n], low, False)
    for i in range(v0, v0 + n):
        v[i] = min(max(v[i], low), high)


@njit(cache=CACHE, inline="always", error_model="numpy")
def _scale(values, factor):
    for i in range(values.size):  # a view indexed from 0: vectorizes
        values[i] *= factor
