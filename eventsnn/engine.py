"""The event-driven engine: Numba kernels that propagate only emitted spikes through CSR rows.

Per sample, the whole time loop runs compiled. Each stage keeps an int32 event queue (the
indices that spiked this step); the next stage walks only those rows. Samples of a batch run in
parallel with ``prange``; random numbers come from ``rng`` (keyed by sample and step), so
results do not depend on the thread count or the batch size. Equations: see ``snn``.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np
from numba import njit, prange

from .progress import Progress
from .rng import STREAM_POISSON_INPUT, STREAM_SOFTMAX_DRAW, STREAM_SOFTMAX_TRIGGER, step_key, uniform
from .snn import GATE, IF, OUTPUT, SimulationResult, SpikingNetwork, initial_membrane, stage_drive

SOFTMAX, SPIKES, MEMBRANE = 0, 1, 2  # readout codes
_READOUTS = {"softmax": SOFTMAX, "spikes": SPIKES, "membrane": MEMBRANE}


@njit(cache=True)
def _deliver(queue, q0, count, indptr, p0, indices, weights, w0, v, v0):
    """Add the CSR row of every queued event to the membranes; return the synaptic operations."""
    ops = 0
    for e in range(count):
        j = queue[q0 + e]
        start, stop = indptr[p0 + j], indptr[p0 + j + 1]
        for k in range(w0 + start, w0 + stop):
            v[v0 + indices[k]] += weights[k]
        ops += stop - start
    return ops


@njit(cache=True)
def _integrate_fire(v, v0, n, drive, d0, threshold, subtract, queue):
    """V += drive; spike where V >= threshold, reset, and queue the spiking indices. Returns the count."""
    count = 0
    for i in range(n):
        u = v[v0 + i] + drive[d0 + i]
        if u >= threshold:
            u = u - threshold if subtract else np.float32(0.0)
            queue[v0 + count] = i
            count += 1
        v[v0 + i] = u
    return count


@njit(cache=True)
def _integrate(v, v0, n, drive, d0):
    for i in range(n):
        v[v0 + i] += drive[d0 + i]


@njit(cache=True)
def _gate(queue, q0, count, est, decay, n_in, windows_ptr, wp0, windows, wi0, members_ptr, mp0, members, mi0, out_q0):
    """Max-pool gate: update the inputs' rate estimates, pass each spike whose input leads its window."""
    if decay != 1.0:
        for i in range(n_in):
            est[q0 + i] *= decay
    for e in range(count):
        est[q0 + queue[q0 + e]] += 1.0
    passed = 0
    for e in range(count):
        i = queue[q0 + e]
        for a in range(wi0 + windows_ptr[wp0 + i], wi0 + windows_ptr[wp0 + i + 1]):
            w = windows[a]
            best, best_est = -1, -1.0
            for b in range(mi0 + members_ptr[mp0 + w], mi0 + members_ptr[mp0 + w + 1]):
                m = members[b]
                if est[q0 + m] > best_est:
                    best, best_est = m, est[q0 + m]
            if best == i:
                queue[out_q0 + passed] = w
                passed += 1
    return passed


@njit(cache=True)
def _softmax_draw(v, v0, n, u):
    """Index drawn from softmax(V) with the uniform number u (inverse CDF, float64)."""
    top = np.float64(v[v0])
    for k in range(1, n):
        top = max(top, np.float64(v[v0 + k]))
    weights = np.empty(n)
    total = 0.0
    for k in range(n):
        weights[k] = math.exp(np.float64(v[v0 + k]) - top)
        total += weights[k]
    target = u * total
    cumulative = 0.0
    for k in range(n):
        cumulative += weights[k]
        if target < cumulative:
            return k
    return n - 1


@njit(cache=True)
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


@njit(cache=True)
def _run_sample(x, sample, seed, steps, kinds, off, syn_ptr, syn_p0, syn_idx, syn_w, syn_w0,
                mem_ptr, mem_p0, mem_idx, mem_i0, drive, threshold, subtract, poisson, readout, rate, decay,
                v_init, spikes, synops, decisions, counts, v_out, raster, membrane, record):
    n_stages = kinds.size
    n_input = x.size
    v = np.full(off[n_stages], v_init, dtype=np.float32)
    est = np.zeros(off[n_stages])
    queue = np.empty(off[n_stages], dtype=np.int32)
    qlen = np.zeros(n_stages, dtype=np.int64)
    input_queue = np.empty(n_input, dtype=np.int32)

    # analog input: the first stage's constant current W x + drive, computed once
    n_first = off[1]
    first_drive = drive
    if not poisson:
        first_drive = np.zeros(n_first, dtype=np.float32)
        for j in range(n_input):
            if x[j] != 0:
                for k in range(syn_w0[0] + syn_ptr[syn_p0[0] + j], syn_w0[0] + syn_ptr[syn_p0[0] + j + 1]):
                    first_drive[syn_idx[k]] += x[j] * syn_w[k]
                synops[0] += syn_ptr[syn_p0[0] + j + 1] - syn_ptr[syn_p0[0] + j]
        for i in range(n_first):
            first_drive[i] += drive[i]

    out0 = off[n_stages - 1]
    n_out = off[n_stages] - out0
    first_spike = -1
    for t in range(steps):
        n_events = 0
        if poisson:
            key = step_key(seed, STREAM_POISSON_INPUT, sample, t)
            for j in range(n_input):
                if uniform(key, j) < x[j]:
                    input_queue[n_events] = j
                    n_events += 1
        for s in range(n_stages):
            v0 = off[s]
            n = off[s + 1] - v0
            if s == 0:
                src, src0, src_count = input_queue, 0, n_events
            else:
                src, src0, src_count = queue, off[s - 1], qlen[s - 1]
            if kinds[s] == GATE:
                # the gate's inputs are the previous stage's neurons, whose queue starts at off[s-1]
                qlen[s] = _gate(queue, src0, src_count, est, decay, off[s] - off[s - 1],
                                syn_ptr, syn_p0[s], syn_idx, syn_w0[s], mem_ptr, mem_p0[s], mem_idx, mem_i0[s], v0)
            else:
                if s == 0 and not poisson:
                    stage_drive, d0 = first_drive, 0
                else:
                    synops[s] += _deliver(src, src0, src_count, syn_ptr, syn_p0[s], syn_idx, syn_w, syn_w0[s], v, v0)
                    stage_drive, d0 = drive, v0
                if kinds[s] == IF or readout == SPIKES:
                    qlen[s] = _integrate_fire(v, v0, n, stage_drive, d0, threshold, subtract, queue)
                else:
                    _integrate(v, v0, n, stage_drive, d0)
            spikes[s, t] = qlen[s]
            if record:
                for e in range(qlen[s]):
                    raster[t, v0 + queue[v0 + e]] = 1
        if readout == SOFTMAX:
            if uniform(step_key(seed, STREAM_SOFTMAX_TRIGGER, sample, t), 0) < rate:
                k = _softmax_draw(v, out0, n_out, uniform(step_key(seed, STREAM_SOFTMAX_DRAW, sample, t), 0))
                counts[k] += 1
                spikes[n_stages - 1, t] = 1
                if record:
                    raster[t, out0 + k] = 1
        elif readout == SPIKES:
            for e in range(qlen[n_stages - 1]):
                counts[queue[out0 + e]] += 1
        if first_spike < 0 and spikes[n_stages - 1, t] > 0:
            first_spike = t + 1
        decisions[t] = _decide(counts, v, out0, n_out, readout, first_spike > 0)
    for k in range(n_out):
        v_out[k] = v[out0 + k]
    if record:
        membrane[:] = v
    return first_spike


@njit(cache=True, parallel=True)
def _run_batch(x, first_sample, seed, steps, kinds, off, syn_ptr, syn_p0, syn_idx, syn_w, syn_w0,
               mem_ptr, mem_p0, mem_idx, mem_i0, drive, threshold, subtract, poisson, readout, rate, decay,
               v_init, spikes, synops, decisions, first_spike, counts, v_out, raster, membrane, record):
    for b in prange(x.shape[0]):
        r = np.int64(b) if record else np.int64(0)  # one shared dummy raster when not recording
        first_spike[b] = _run_sample(x[b], first_sample + b, seed, steps, kinds, off, syn_ptr, syn_p0, syn_idx, syn_w,
                                     syn_w0, mem_ptr, mem_p0, mem_idx, mem_i0, drive, threshold, subtract, poisson,
                                     readout, rate, decay, v_init, spikes[b], synops[b], decisions[b], counts[b],
                                     v_out[b], raster[r], membrane[r], record)


def _concat(arrays: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-stage arrays; return the flat array and each stage's start offset."""
    starts = np.zeros(len(arrays), np.int64)
    np.cumsum([a.size for a in arrays[:-1]], out=starts[1:])
    flat = np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)
    return flat, starts


def pack(snn: SpikingNetwork, steps: int) -> dict:
    """The network as the flat arrays the kernels take."""
    stages = snn.stages
    empty = np.zeros(1, np.int64)
    syn_ptr, syn_p0 = _concat([s.synapses.indptr for s in stages], np.int64)
    syn_idx, syn_w0 = _concat([s.synapses.indices for s in stages], np.int32)
    syn_w, _ = _concat([s.synapses.weights for s in stages], np.float32)
    mem_ptr, mem_p0 = _concat([s.members.indptr if s.members is not None else empty for s in stages], np.int64)
    mem_idx, mem_i0 = _concat([s.members.indices if s.members is not None else empty for s in stages], np.int32)
    off = np.zeros(len(stages) + 1, np.int64)
    np.cumsum([s.size for s in stages], out=off[1:])
    cfg = snn.config
    return dict(
        kinds=np.array([s.kind for s in stages], np.int64), off=off,
        syn_ptr=syn_ptr, syn_p0=syn_p0, syn_idx=syn_idx, syn_w=syn_w, syn_w0=syn_w0,
        mem_ptr=mem_ptr, mem_p0=mem_p0, mem_idx=mem_idx, mem_i0=mem_i0,
        drive=np.concatenate([stage_drive(s, cfg, steps) for s in stages]).astype(np.float32),
        threshold=np.float32(cfg.threshold), subtract=cfg.reset == "subtract", poisson=cfg.input == "poisson",
        readout=_READOUTS[cfg.output], rate=float(cfg.softmax_rate), decay=float(cfg.maxpool_decay),
        v_init=initial_membrane(cfg))


def check_simulation_args(snn: SpikingNetwork, x: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Validate what a simulator is given; return x as (N, n_input) float32."""
    x = np.asarray(x)
    if x.ndim != len(snn.input_shape) + 1 or tuple(x.shape[1:]) != snn.input_shape:
        raise ValueError(f"input must have shape (N, {', '.join(map(str, snn.input_shape))}), found {x.shape}")
    x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("input contains NaN or Inf")
    if snn.config.input == "poisson" and x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("Poisson input needs intensities in [0, 1] (they are spike probabilities per step)")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, not {steps!r}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), not {seed!r}")
    return x


def simulate(snn: SpikingNetwork, x: np.ndarray, steps: int, seed: int = 0, batch_size: int = 256,
             record: bool = False, threads: int | None = None, progress: Progress | None = None,
             first_sample: int = 0) -> SimulationResult:
    """Run the event-driven SNN on inputs x (N, *input_shape) for ``steps`` steps.

    ``first_sample`` numbers the samples for the random streams (sample i uses first_sample + i),
    so a data set split into chunks gives the same result as one run. ``record`` keeps the full
    spike raster and the final membrane potentials of all neurons (memory: N * T * neurons bytes;
    for tests and small nets).
    """
    x = check_simulation_args(snn, x, steps, seed)
    arrays = pack(snn, steps)
    n, n_stages, n_out = len(x), len(snn.stages), snn.n_classes
    if threads is not None:
        numba.set_num_threads(threads)
    parts = []
    for start in range(0, max(n, 1), batch_size):
        xb = x[start:start + batch_size]
        b = len(xb)
        spikes = np.zeros((b, n_stages, steps), np.int32)
        synops = np.zeros((b, n_stages), np.int64)
        decisions = np.zeros((b, steps), np.int32)
        first_spike = np.zeros(b, np.int32)
        counts = np.zeros((b, n_out), np.int32)
        v_out = np.zeros((b, n_out), np.float32)
        raster = np.zeros((b, steps, snn.n_neurons) if record else (1, 1, 1), np.uint8)
        membrane = np.zeros((b, snn.n_neurons) if record else (1, 1), np.float32)
        began = time.perf_counter()
        _run_batch(xb, first_sample + start, seed, steps, arrays["kinds"], arrays["off"], arrays["syn_ptr"],
                   arrays["syn_p0"], arrays["syn_idx"], arrays["syn_w"], arrays["syn_w0"], arrays["mem_ptr"],
                   arrays["mem_p0"], arrays["mem_idx"], arrays["mem_i0"], arrays["drive"], arrays["threshold"],
                   arrays["subtract"], arrays["poisson"], arrays["readout"], arrays["rate"], arrays["decay"],
                   arrays["v_init"], spikes, synops, decisions, first_spike, counts, v_out, raster, membrane, record)
        parts.append(SimulationResult(decisions, spikes, synops, first_spike, counts, v_out,
                                      tuple(s.name for s in snn.stages), time.perf_counter() - began,
                                      raster if record else None, membrane if record else None))
        if progress is not None:
            progress(start + b, n)
    return SimulationResult.concatenate(parts)
