"""Offset correction: one sample simulated layer by layer, each IF population run twice (``snn``).

A population receives its sources' final spike trains, step by step, into a current per step
(T x its size: delivered once, so SynOps are those of one run). It integrates and fires T steps
from V(0); ``_correct_offsets`` moves V(0) by the miscount the residual V(T) shows; where it moved
anything, the population runs its T steps again from the corrected V(0). The trains it keeps are
event queues per step, like the step-major loop's, so its consumers deliver them the same way.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..kernel_cache import CACHE
from ..snn import INPUT, OUTPUT
from .arithmetic import exact_float
from .delivery import _add_row, _deliver
from .loop import START, _add_input_current, _changed, _copy, _poisson_events, _read_membranes
from .neurons import _compact, _fire_pass, _integrate, lane_table
from .readout import _decide


@njit(cache=CACHE, error_model="numpy")
def _correct_offsets(v, v_start, count, threshold, most, low, high):
    """V(0) -= (c - c*) threshold where c* = clip(floor((V(T) + c threshold) / threshold), 0, most)
    differs from the count c; in float64. Returns whether some V(0) moved."""
    threshold64 = np.float64(exact_float(threshold))
    moved = False
    for i in range(v.size):
        due = min(max(np.floor((np.float64(v[i]) + count[i] * threshold64) / threshold64), 0.0), most)
        if due != count[i]:
            corrected = np.float64(v_start[i]) - (count[i] - due) * threshold64
            v_start[i] = min(max(corrected, np.float64(low)), np.float64(high))
            moved = True
    return moved


@njit(cache=CACHE, error_model="numpy")
def _currents(s, x, sample, net, cfg, current, trains, train_len, train_amounts, input_queue, step_synops):
    """current[t] = the synaptic input of stage s at step t from its sources' trains (the analog
    input's constant current is in the drive instead)."""
    n = net.off[s + 1] - net.off[s]
    current[:, :n] = 0
    for p in range(net.proj_ptr[s], net.proj_ptr[s + 1]):
        src = net.proj_src[p]
        for t in range(cfg.steps):
            if src != INPUT:
                carried = train_amounts[t, net.off[src]:net.off[src + 1]] if cfg.graded else train_amounts[t, :0]
                step_synops[s, t] += _deliver(p, trains[t], net.off[src], train_len[t, src], carried, net,
                                              current[t], START)
            elif cfg.poisson:
                n_events = _poisson_events(x, cfg.seed, sample, t, net.input_index, input_queue)
                step_synops[s, t] += _deliver(p, input_queue, START, np.int64(n_events), train_amounts[t, :0], net,
                                              current[t], START)


@njit(cache=CACHE, error_model="numpy")
def _fire_run(s, net, cfg, v, v_start, current, stage_drive, trains, train_len, train_amounts, words, lanes, v_prev,
              updates, tallying, count):
    """T steps of stage s from V(0) = v_start; its trains replace the last run's. ``count``: each
    neuron's spikes. Returns the spikes emitted (counted with what they carry)."""
    v0, n = net.off[s], net.off[s + 1] - net.off[s]
    _copy(v[v0:v0 + n], v_start[:n])
    count[:n] = 0
    emitted = 0
    for t in range(cfg.steps):
        if tallying:
            _copy(v_prev[:n], v[v0:v0 + n])
        _add_row(v[v0:v0 + n], current[t, :n], v[0], False)
        _, amount = _fire_pass(v, v0, n, stage_drive, v0, net.threshold[s], cfg.subtract, cfg.graded, cfg.max_spikes,
                               net.low[s], net.high[s], train_amounts[t], words, net.word_off[s], False, count[:0])
        train_len[t, s] = _compact(n, trains[t], v0, words, net.word_off[s], lanes)
        for e in range(train_len[t, s]):
            j = trains[t, v0 + e]
            count[j] += np.int64(train_amounts[t, v0 + j]) if cfg.graded else 1
        emitted += amount if cfg.graded else train_len[t, s]
        if tallying:
            updates[s] += _changed(v[v0:v0 + n], v_prev[:n])
    return emitted


@njit(cache=CACHE, error_model="numpy")
def _run_sample_layerwise(x, sample, net, cfg, v, v_start, v_prev, current, trains, train_len, train_amounts, count,
                          input_queue, input_drive, words, lanes, spikes, spike_amounts, step_synops, decisions, counts,
                          v_out, raster, membrane, record, tally, updates, tallying):
    n_stages = net.kinds.size
    stage_drive = net.drive
    if not cfg.poisson:  # analog input: its constant current W x joins the drive, computed once
        _add_input_current(x, net, input_queue, input_drive, step_synops)
        stage_drive = input_drive
    most = np.float64(cfg.steps) * np.float64(cfg.max_spikes if cfg.graded else 1)
    for s in range(n_stages):
        v0, n = net.off[s], net.off[s + 1] - net.off[s]
        _currents(s, x, sample, net, cfg, current, trains, train_len, train_amounts, input_queue, step_synops)
        _copy(v_start[:n], net.v_init[v0:v0 + n])
        if net.kinds[s] == OUTPUT:  # the membrane readout: integrate, decide at every step
            _copy(v[v0:v0 + n], v_start[:n])
            for t in range(cfg.steps):
                if tallying:
                    _copy(v_prev[:n], v[v0:v0 + n])
                _add_row(v[v0:v0 + n], current[t, :n], v[0], False)
                _integrate(v, v0, n, stage_drive, v0, net.low[s], net.high[s])
                decisions[t] = _decide(counts, v, v0, n, cfg.readout, False)
                if tallying:
                    updates[s] += _changed(v[v0:v0 + n], v_prev[:n])
            continue
        emitted = _fire_run(s, net, cfg, v, v_start, current, stage_drive, trains, train_len, train_amounts, words,
                            lanes, v_prev, updates, tallying, count)
        if _correct_offsets(v[v0:v0 + n], v_start[:n], count[:n], net.threshold[s], most, net.low[s], net.high[s]):
            emitted = _fire_run(s, net, cfg, v, v_start, current, stage_drive, trains, train_len, train_amounts,
                                words, lanes, v_prev, updates, tallying, count)
        spike_amounts[s] = emitted
        for t in range(cfg.steps):
            spikes[s, t] = train_len[t, s]
            for e in range(train_len[t, s]):
                j = v0 + trains[t, v0 + e]
                carried = train_amounts[t, j] if cfg.graded else 1
                if record:
                    raster[t, net.ir_index[j]] = carried
                if tallying:
                    tally[net.ir_index[j]] += carried
    _read_membranes(v, net, v_out, membrane, record)


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _run_chunk_layerwise(x, lo, hi, first_sample, net, cfg, spikes, spike_amounts, step_synops, decisions, first_spike,
                         exit_step, counts, v_out, raster, membrane, record, tally, updates, tallying, ticks,
                         profiling):
    """Samples lo .. hi-1, as ``loop._run_chunk`` (same arguments; no early exit, no profile: the
    membrane readout emits no spikes, so ``first_spike`` and ``counts`` stay -1 and 0)."""
    n_total = net.off[net.kinds.size]
    largest = np.int64(0)
    for s in range(net.kinds.size):
        largest = max(largest, net.off[s + 1] - net.off[s])
    v = np.empty_like(net.v_init)
    v_start = np.empty_like(net.v_init[:largest])
    v_prev = np.empty_like(net.v_init[:largest if tallying else 0])
    current = np.empty((cfg.steps, largest), net.v_init.dtype)
    trains = np.empty((cfg.steps, n_total), np.int32)  # per step, each stage's event queue at its offset
    train_len = np.zeros((cfg.steps, net.kinds.size), np.int64)
    train_amounts = np.empty((cfg.steps, n_total if cfg.graded else 0), net.v_init.dtype)
    count = np.empty(largest, np.int64)
    input_queue = np.empty(x.shape[1], dtype=np.int32)
    input_drive = np.empty_like(v)
    words = np.zeros(net.word_off[net.kinds.size], dtype=np.uint64)
    lanes = lane_table()
    for b in range(lo, hi):
        r = np.int64(b) if record else np.int64(0)
        c = np.int64(b) if tallying else np.int64(0)
        first_spike[b], exit_step[b] = -1, -1
        _run_sample_layerwise(x[b], first_sample + b, net, cfg, v, v_start, v_prev, current, trains, train_len,
                              train_amounts, count, input_queue, input_drive, words, lanes, spikes[b],
                              spike_amounts[b], step_synops[b], decisions[b], counts[b], v_out[b], raster[r],
                              membrane[r], record, tally[c], updates[c], tallying)
