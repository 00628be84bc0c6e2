"""Synaptic delivery: add the synapses of each queued event (times its amount, if given) to V."""

from __future__ import annotations

from numba import njit

from ..kernel_cache import CACHE
from .arithmetic import one_like
from .packing import DENSE_PATH, DIRECT_PATH

@njit(cache=CACHE, inline="always", error_model="numpy")
def _add_row(target, row, amount, scaled):
    """target += amount * row. Indexing views from 0 lets LLVM drop Numba's negative-index
    wraparound and vectorize this loop (indexing the whole array with an offset does not)."""
    if scaled:
        for o in range(row.size):
            target[o] += amount * row[o]
    else:
        for o in range(row.size):
            target[o] += row[o]


@njit(cache=CACHE, error_model="numpy")
def _deliver_csr(queue, q0, count, amounts, indptr, p0, indices, i0, weights, w0, v, v0):
    ops = 0
    for e in range(count):
        j = queue[q0 + e]
        start, stop = indptr[p0 + j], indptr[p0 + j + 1]
        if amounts.size:
            a = amounts[j]
            for k in range(start, stop):
                v[v0 + indices[i0 + k]] += a * weights[w0 + k]
        else:
            for k in range(start, stop):
                v[v0 + indices[i0 + k]] += weights[w0 + k]
        ops += stop - start
    return ops


@njit(cache=CACHE, error_model="numpy")
def _deliver_dense(queue, q0, count, amounts, n_out, weights, w0, v, v0):
    for e in range(count):
        j = queue[q0 + e]
        row = w0 + j * n_out
        a = amounts[j] if amounts.size else one_like(amounts)
        _add_row(v[v0:v0 + n_out], weights[row:row + n_out], a, amounts.size > 0)
    return count * n_out


@njit(cache=CACHE, error_model="numpy")
def _deliver_direct(queue, q0, count, amounts, channels, channel_stride, table_ptr, p0, table, t0, weights, w0, v, v0):
    """A spike at input (pixel, c) adds its kernel slices to the output pixels it reaches.

    The table (``connectivity.kernel_target_table``) lists per input pixel the triples (target,
    weight, length) of contiguous runs, so no geometry is computed per spike and the inner loop
    is a long, vectorized add."""
    ops = 0
    for e in range(count):
        j = queue[q0 + e]
        c = j % channels
        pixel = j // channels
        a = amounts[j] if amounts.size else one_like(amounts)
        for r in range(table_ptr[p0 + pixel], table_ptr[p0 + pixel + 1]):
            target = v0 + table[t0 + 3 * r]
            row = w0 + table[t0 + 3 * r + 1] + c * channel_stride
            length = table[t0 + 3 * r + 2]
            _add_row(v[target:target + length], weights[row:row + length], a, amounts.size > 0)
            ops += length
    return ops


@njit(cache=CACHE, error_model="numpy")
def _deliver(p, queue, q0, count, amounts, net, v, v0):
    """Deliver the queued events through projection p into its stage's membranes v[v0:]."""
    if net.paths[p] == DIRECT_PATH:
        return _deliver_direct(queue, q0, count, amounts, net.geometry[p, 0], net.geometry[p, 2], net.syn_ptr,
                               net.syn_p0[p], net.syn_idx, net.syn_i0[p], net.syn_w, net.syn_w0[p], v, v0)
    if net.paths[p] == DENSE_PATH:
        return _deliver_dense(queue, q0, count, amounts, net.geometry[p, 1], net.syn_w, net.syn_w0[p], v, v0)
    return _deliver_csr(queue, q0, count, amounts, net.syn_ptr, net.syn_p0[p], net.syn_idx, net.syn_i0[p], net.syn_w,
                        net.syn_w0[p], v, v0)
