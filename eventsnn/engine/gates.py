"""Max-pool gates: a window passes the spikes of its most active input (see ``snn``)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..kernel_cache import CACHE
from .neurons import _scale

@njit(cache=CACHE, error_model="numpy")
def _gate(p, queue, q0, count, amounts, est, window_est, best, decay, graded, max_spikes, n_in, net, out_q0, n_out):
    """Max-pool gate (projection p): a window passes a spike when an input that spikes now has a
    rate estimate above the window's own (its passed spikes, same filter), at most one event per
    step; graded, the event carries the gap to the best such input (rounded up, at most
    ``max_spikes``). With decay 1 (spike counts) a window's count is exactly the largest input
    count. ``best`` holds -1 for windows that have not passed anything this step. Returns (events
    passed, spikes passed)."""
    windows_ptr, wp0, windows, wi0 = net.syn_ptr, net.syn_p0[p], net.syn_idx, net.syn_i0[p]
    single = net.geometry[p, 0] == 1  # every input in one window (stride = kernel): no row pointers to read
    if decay != 1.0:
        _scale(est[q0:q0 + n_in], decay)
        _scale(window_est[out_q0:out_q0 + n_out], decay)
    passed = 0
    for e in range(count):  # branch-free: whether a window passes is as good as random
        i = queue[q0 + e]
        est[q0 + i] += amounts[q0 + i] if graded else 1.0
        rate = est[q0 + i]
        first = i if single else windows_ptr[wp0 + i]
        last = i + 1 if single else windows_ptr[wp0 + i + 1]
        for a in range(wi0 + first, wi0 + last):
            w = out_q0 + windows[a]
            above = rate > window_est[w]
            if passed < n_out:  # the slot after a full queue would be the next stage's
                queue[out_q0 + passed] = windows[a]
            passed += above & (best[w] < 0)  # the window's first passing input this step queues it
            best[w] = max(best[w], rate if above else -1.0)
    emitted = 0
    for e in range(passed):
        w = out_q0 + queue[out_q0 + e]
        amount = min(math.ceil(best[w] - window_est[w]), max_spikes) if graded else 1.0
        window_est[w] += amount
        amounts[w] = amount
        best[w] = -1.0
        emitted += np.int64(amount)
    return passed, emitted
