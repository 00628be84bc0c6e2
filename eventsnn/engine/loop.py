"""The time loop of one sample, all stages, compiled; and a batch of samples on several threads."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from ..kernel_cache import CACHE
from ..rng import STREAM_POISSON_INPUT, STREAM_SOFTMAX_DRAW, STREAM_SOFTMAX_TRIGGER, step_key, uniform
from ..snn import GATE, IF, INPUT
from .profiling import COMPACTION, COUNT, DELIVERY, FIRE, GATE_PHASE, INPUT_PHASE, READOUT, _lap
from .intrinsics import _ticks
from .delivery import _deliver
from .gates import _gate
from .neurons import _compact, _fire_pass, _integrate, lane_table
from .packing import SOFTMAX, SPIKES
from .readout import _decide, _should_stop, _softmax_draw

START = np.int64(0)  # a typed zero: a literal 0 would compile the delivery kernels once more


@njit(cache=CACHE, inline="always")
def _copy(target, source):
    """target[:] = source as a loop: Numba's array-to-array slice assignment compiles a shape-error
    formatter (string code) that took about a quarter of the first run's compile time."""
    for i in range(source.size):
        target[i] = source[i]


@njit(cache=CACHE, inline="always")
def _changed(v, v_prev):
    """How many membranes differ from their copy taken at the start of the step."""
    count = 0
    for i in range(v_prev.size):
        count += v[i] != v_prev[i]
    return count


@njit(cache=CACHE, error_model="numpy")
def _add_input_current(x, net, input_queue, input_drive, step_synops):
    """Analog input: input_drive = each neuron's drive plus the constant W x of the projections
    from the input, computed once per sample (its SynOps counted at step 1)."""
    n_events = 0
    for j in range(x.size):
        if x[j] != 0:
            input_queue[n_events] = j
            n_events += 1
    _copy(input_drive, net.drive)
    for s in range(net.kinds.size):
        for p in range(net.proj_ptr[s], net.proj_ptr[s + 1]):
            if net.proj_src[p] == INPUT:
                step_synops[s, 0] += _deliver(p, input_queue, START, np.int64(n_events), x, net, input_drive,
                                              net.off[s])


@njit(cache=CACHE, inline="always", error_model="numpy")
def _poisson_events(x, seed, sample, t, input_index, queue):
    """Poisson input at step t: the inputs that spike (p = intensity), keyed by their IR index."""
    key = step_key(seed, STREAM_POISSON_INPUT, sample, t)
    n_events = 0
    for j in range(x.size):
        if uniform(key, input_index[j]) < x[j]:
            queue[n_events] = j
            n_events += 1
    return n_events


@njit(cache=CACHE, error_model="numpy")
def _read_membranes(v, net, v_out, membrane, record):
    """The output membranes (and, when recording, every membrane in IR order) in their units."""
    n_stages = net.kinds.size
    out0 = net.off[n_stages - 1]
    for k in range(net.off[n_stages] - out0):
        v_out[k] = v[out0 + k] * net.unit[n_stages - 1]
    if record:
        for s in range(n_stages):
            for e in range(net.off[s], net.off[s + 1]):
                membrane[net.ir_index[e]] = v[e] * net.unit[s]


@njit(cache=CACHE, error_model="numpy")
def _run_sample(x, sample, net, cfg, v, v_prev, est, window_est, best, queue, amounts, total, qlen, input_queue,
                input_drive, residual, words, lanes, spikes, spike_amounts, step_synops, decisions, counts, v_out,
                raster, membrane, record, tally, updates, tallying, ticks, profiling):
    """Simulate one sample; the scratch arrays (v ... lanes) are reused across samples. Returns
    (first output spike step or -1, the step after which the sample stopped early or -1). When
    profiling, ticks[stage, phase] accumulates the cycles each phase took (``profiling.PHASES``).
    When tallying, ``tally`` counts each neuron's spikes and ``updates[stage]`` the membranes that
    changed in a step (summed over steps; NeuroBench's membrane updates)."""
    kinds, off, drive = net.kinds, net.off, net.drive
    subtract, poisson, readout = cfg.subtract, cfg.poisson, cfg.readout
    graded, max_spikes = cfg.graded, cfg.max_spikes
    seed, steps, stable_steps, exit_margin = cfg.seed, cfg.steps, cfg.stable_steps, cfg.exit_margin
    n_stages = kinds.size
    no_amounts = v[:0]  # spikes carry no amount (of the membranes' type; a global array would block caching)
    _copy(v, net.v_init)
    est[:] = 0.0
    window_est[:] = 0.0
    best[:] = -1.0
    total[:] = 0
    qlen[:] = 0
    _copy(residual, net.fires_at_start)

    since = _ticks() if profiling else 0
    stage_drive = drive
    if not poisson:  # analog input: projections from the input add a constant W x, computed once
        _add_input_current(x, net, input_queue, input_drive, step_synops)
        stage_drive = input_drive
        since = _lap(ticks, 0, INPUT_PHASE, since, profiling)

    out0 = off[n_stages - 1]
    n_out = off[n_stages] - out0
    first_spike = -1
    exit_step = -1
    for t in range(steps):
        n_events = 0
        if poisson:
            n_events = _poisson_events(x, seed, sample, t, net.input_index, input_queue)
            since = _lap(ticks, 0, INPUT_PHASE, since, profiling)
        for s in range(n_stages):
            v0 = off[s]
            n = off[s + 1] - v0
            if kinds[s] == GATE:
                # the gate's inputs are its source's neurons, whose queue (and estimates) start at off[src]
                p = net.proj_ptr[s]
                src = net.proj_src[p]
                qlen[s], emitted = _gate(p, queue, off[src], qlen[src], amounts, est, window_est, best, cfg.decay,
                                         graded, max_spikes, off[src + 1] - off[src], net, v0, n)
                since = _lap(ticks, s, GATE_PHASE, since, profiling)
            else:
                if tallying:
                    _copy(v_prev[:n], v[v0:v0 + n])
                received = 0
                emitted = 0
                for p in range(net.proj_ptr[s], net.proj_ptr[s + 1]):
                    src = net.proj_src[p]
                    if src != INPUT:
                        carried = amounts[off[src]:off[src + 1]] if graded else no_amounts
                        step_synops[s, t] += _deliver(p, queue, off[src], qlen[src], carried, net, v, v0)
                        received += qlen[src]
                    elif poisson:
                        step_synops[s, t] += _deliver(p, input_queue, START, np.int64(n_events), no_amounts, net, v, v0)
                        received += n_events
                since = _lap(ticks, s, DELIVERY, since, profiling)
                if kinds[s] == IF or readout == SPIKES:
                    constant = net.has_drive[s] or (net.input_fed[s] and not poisson)
                    if received == 0 and not constant and not residual[s]:
                        qlen[s] = 0  # nothing changed: no neuron can cross the threshold
                    else:
                        residual[s], emitted = _fire_pass(v, v0, n, stage_drive, v0, net.threshold[s], subtract,
                                                          graded, max_spikes, net.low[s], net.high[s], amounts, words,
                                                          net.word_off[s], cfg.signed, total)
                        since = _lap(ticks, s, FIRE, since, profiling)
                        qlen[s] = _compact(n, queue, v0, words, net.word_off[s], lanes)
                        if not graded:
                            emitted = qlen[s]  # one spike per event
                        since = _lap(ticks, s, COMPACTION, since, profiling)
                else:
                    _integrate(v, v0, n, stage_drive, v0, net.low[s], net.high[s])
                    since = _lap(ticks, s, FIRE, since, profiling)
                if tallying:
                    updates[s] += _changed(v[v0:v0 + n], v_prev[:n])
            spikes[s, t] = qlen[s]
            spike_amounts[s] += emitted
            if record or tallying:
                for e in range(qlen[s]):
                    j = v0 + queue[v0 + e]
                    carried = amounts[j] if graded else 1
                    if record:
                        raster[t, net.ir_index[j]] = carried
                    if tallying:
                        tally[net.ir_index[j]] += carried
            since = _lap(ticks, s, COUNT, since, profiling)
        if readout == SOFTMAX:
            if uniform(step_key(seed, STREAM_SOFTMAX_TRIGGER, sample, t), 0) < cfg.rate:
                k = _softmax_draw(v, out0, n_out, net.unit[n_stages - 1],
                                  uniform(step_key(seed, STREAM_SOFTMAX_DRAW, sample, t), 0))
                counts[k] += 1
                spikes[n_stages - 1, t] = 1
                spike_amounts[n_stages - 1] += 1
                if record:
                    raster[t, net.ir_index[out0 + k]] = 1
                if tallying:
                    tally[net.ir_index[out0 + k]] += 1
        elif readout == SPIKES:
            for e in range(qlen[n_stages - 1]):
                k = queue[out0 + e]
                counts[k] += amounts[out0 + k] if graded else 1
        if first_spike < 0 and spikes[n_stages - 1, t] > 0:
            first_spike = t + 1
        decisions[t] = _decide(counts, v, out0, n_out, readout, first_spike > 0)
        stop = _should_stop(decisions, t, stable_steps, exit_margin, counts, n_out)
        since = _lap(ticks, n_stages - 1, READOUT, since, profiling)
        if stop:
            exit_step = t + 1
            decisions[t + 1:] = decisions[t]
            break
    _read_membranes(v, net, v_out, membrane, record)
    return first_spike, exit_step


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _run_chunk(x, lo, hi, first_sample, net, cfg, spikes, spike_amounts, step_synops, decisions, first_spike, exit_step,
               counts, v_out, raster, membrane, record, tally, updates, tallying, ticks, profiling):
    """Samples lo .. hi-1 of a batch, one after the other, with scratch allocated once. Releases
    the GIL, so threads run chunks side by side."""
    n_total = net.off[net.kinds.size]
    v = np.empty_like(net.v_init)  # float32, or int32 grid steps (``fixed_point``)
    v_prev = np.empty_like(net.v_init[:n_total if tallying else 0])  # one stage's membranes at the start of a step
    est = np.empty(n_total)  # gate inputs' rate estimates, by neuron
    window_est = np.empty(n_total)  # gate windows' own estimates (apart: a gate may read a gate)
    best = np.empty(n_total)  # gate windows: best input estimate this step
    queue = np.empty(n_total, dtype=np.int32)
    amounts = np.empty_like(v)  # graded spikes: what each neuron's event carries
    total = np.empty(n_total if cfg.signed else 0, dtype=np.int32)  # signed spikes: each neuron's count so far
    qlen = np.empty(net.kinds.size, dtype=np.int64)
    input_queue = np.empty(x.shape[1], dtype=np.int32)
    input_drive = np.empty_like(v)
    residual = np.empty(net.kinds.size, dtype=np.bool_)
    words = np.zeros(net.word_off[net.kinds.size], dtype=np.uint64)  # spike flags, one byte per neuron
    lanes = lane_table()
    for b in range(lo, hi):
        r = np.int64(b) if record else np.int64(0)  # one shared dummy raster when not recording
        c = np.int64(b) if tallying else np.int64(0)
        k = np.int64(b) if profiling else np.int64(0)
        first_spike[b], exit_step[b] = _run_sample(
            x[b], first_sample + b, net, cfg, v, v_prev, est, window_est, best, queue, amounts, total, qlen,
            input_queue, input_drive, residual, words, lanes, spikes[b], spike_amounts[b], step_synops[b], decisions[b],
            counts[b], v_out[b], raster[r], membrane[r], record, tally[c], updates[c], tallying, ticks[k], profiling)


CHUNKS_PER_THREAD = 4  # samples differ in cost (early exit, activity): small chunks keep threads busy

_POOLS: dict[int, ThreadPoolExecutor] = {}  # by thread count, kept for the process: starting threads costs
os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has none of the parent's threads


_KEPT = threading.local()


def kept_scratch(name: str, nbytes: int) -> np.ndarray:
    """This thread's scratch called ``name``, nbytes bytes (uint8), kept for its next call: fresh
    memory costs page faults on first touch, about as much as the products and copies that fill it."""
    buffer = getattr(_KEPT, name, None)
    if buffer is None or buffer.size < nbytes:
        buffer = np.empty(nbytes, np.uint8)
        setattr(_KEPT, name, buffer)
    return buffer[:nbytes]


def in_threads(work, rows: int, n_threads: int, pieces_per_thread: int = 1) -> None:
    """work(lo, hi) over rows 0 .. rows-1 in pieces that ``n_threads`` threads take in turn (a
    thread that finishes early takes the next piece); the compiled kernels release the GIL.
    Re-raises a piece's exception here."""
    if n_threads <= 1 or rows <= 1:
        work(0, rows)
        return
    if n_threads not in _POOLS:
        _POOLS[n_threads] = ThreadPoolExecutor(n_threads)
    size = max(1, -(-rows // (n_threads * pieces_per_thread)))
    for done in [_POOLS[n_threads].submit(work, lo, min(lo + size, rows)) for lo in range(0, rows, size)]:
        done.result()


def run_batch(x, first_sample, net, cfg, *outputs, n_threads: int, chunk=_run_chunk) -> None:
    """All samples of a batch, in chunks that ``n_threads`` threads take in turn (small chunks:
    samples differ in cost); ``chunk``: the compiled runner of a chunk (``_run_chunk``, or
    ``layerwise._run_chunk_layerwise``, which takes the same arguments)."""
    in_threads(lambda lo, hi: chunk(x, lo, hi, first_sample, net, cfg, *outputs), len(x), n_threads,
               CHUNKS_PER_THREAD)
