"""The event-driven engine: Numba kernels that propagate only emitted spikes.

Per sample, the whole time loop runs compiled. Each stage keeps an int32 event queue (the engine
indices that spiked this step); the stages it projects to walk only those: CSR rows, a conv
kernel scattered into the outputs a spike reaches (channel-last, so the innermost loop over
output channels is contiguous and vectorizes), or a dense row. A stage with several projections
(a residual add) takes the events of each of its sources in turn. Graded events carry their
spike count in ``amounts`` (indexed by neuron), and a delivery adds that many times the weights. Samples run in parallel with ``prange``
over contiguous chunks, one per thread, each with scratch allocated once. Random numbers come
from ``rng`` keyed by sample and step, so results do not depend on the thread count or the batch
size. Equations: see ``snn``.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from .connectivity import engine_order
from .progress import Progress
from .rng import STREAM_POISSON_INPUT, STREAM_SOFTMAX_DRAW, STREAM_SOFTMAX_TRIGGER, step_key, uniform
from .snn import (GATE, IF, INPUT, Projection, SimulationConfig, SimulationResult, SpikingNetwork, Stage, initial_membrane,
                  stage_drive)

SOFTMAX, SPIKES, MEMBRANE = 0, 1, 2  # readout codes
_READOUTS = {"softmax": SOFTMAX, "spikes": SPIKES, "membrane": MEMBRANE}
CSR_PATH, DIRECT_PATH, DENSE_PATH = 0, 1, 2
_PATHS = {"csr": CSR_PATH, "direct": DIRECT_PATH, "dense": DENSE_PATH}
_NO_AMOUNTS = np.zeros(0, np.float32)


class NetArrays(NamedTuple):
    """The network as flat arrays (stages and projections concatenated; ``*_0`` fields are each
    projection's start)."""

    kinds: np.ndarray  # IF, GATE or OUTPUT per stage
    off: np.ndarray  # neuron offsets, n_stages + 1
    word_off: np.ndarray  # offsets into the spike-flag words, n_stages + 1
    proj_ptr: np.ndarray  # projections into stage s: proj_ptr[s] .. proj_ptr[s + 1] - 1
    proj_src: np.ndarray  # source stage per projection, INPUT for the network input
    input_fed: np.ndarray  # per stage: some projection comes from the input
    paths: np.ndarray  # CSR_PATH, DIRECT_PATH or DENSE_PATH per projection
    geometry: np.ndarray  # (n_projections, 3): input channels, outputs per target pixel, kernel channel stride
    syn_ptr: np.ndarray  # CSR row pointers (or the kernel-direct target table's)
    syn_p0: np.ndarray
    syn_idx: np.ndarray  # CSR column indices (or target-table triples)
    syn_i0: np.ndarray
    syn_w: np.ndarray  # CSR weights, kernels, dense matrices
    syn_w0: np.ndarray
    drive: np.ndarray  # constant current per neuron (bias, shift)
    has_drive: np.ndarray
    input_index: np.ndarray  # IR index of each input (keys the Poisson stream)
    ir_index: np.ndarray  # IR index (stages concatenated) of each neuron: rasters and counts are kept in IR order


class Settings(NamedTuple):
    seed: int
    steps: int
    threshold: np.float32
    subtract: bool
    graded: bool  # events carry k spikes (amounts); binary events carry one
    max_spikes: np.float32
    poisson: bool
    readout: int
    rate: float
    decay: float
    v_init: np.float32
    stable_steps: int
    exit_margin: int


# ---------------------------------------------------------------------------------------------
# synaptic delivery: add the synapses of each queued event (times its amount, if given) to V

@njit(cache=True, inline="always", error_model="numpy")
def _add_row(target, row, amount, scaled):
    """target += amount * row. Indexing views from 0 lets LLVM drop Numba's negative-index
    wraparound and vectorize this loop (indexing the whole array with an offset does not)."""
    if scaled:
        for o in range(row.size):
            target[o] += amount * row[o]
    else:
        for o in range(row.size):
            target[o] += row[o]


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def _deliver_dense(queue, q0, count, amounts, n_out, weights, w0, v, v0):
    for e in range(count):
        j = queue[q0 + e]
        row = w0 + j * n_out
        a = amounts[j] if amounts.size else np.float32(1.0)
        _add_row(v[v0:v0 + n_out], weights[row:row + n_out], a, amounts.size > 0)
    return count * n_out


@njit(cache=True, error_model="numpy")
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
        a = amounts[j] if amounts.size else np.float32(1.0)
        for r in range(table_ptr[p0 + pixel], table_ptr[p0 + pixel + 1]):
            target = v0 + table[t0 + 3 * r]
            row = w0 + table[t0 + 3 * r + 1] + c * channel_stride
            length = table[t0 + 3 * r + 2]
            _add_row(v[target:target + length], weights[row:row + length], a, amounts.size > 0)
            ops += length
    return ops


@njit(cache=True, error_model="numpy")
def _deliver(p, queue, q0, count, amounts, net, v, v0):
    """Deliver the queued events through projection p into its stage's membranes v[v0:]."""
    if net.paths[p] == DIRECT_PATH:
        return _deliver_direct(queue, q0, count, amounts, net.geometry[p, 0], net.geometry[p, 2], net.syn_ptr,
                               net.syn_p0[p], net.syn_idx, net.syn_i0[p], net.syn_w, net.syn_w0[p], v, v0)
    if net.paths[p] == DENSE_PATH:
        return _deliver_dense(queue, q0, count, amounts, net.geometry[p, 1], net.syn_w, net.syn_w0[p], v, v0)
    return _deliver_csr(queue, q0, count, amounts, net.syn_ptr, net.syn_p0[p], net.syn_idx, net.syn_i0[p], net.syn_w,
                        net.syn_w0[p], v, v0)


# ---------------------------------------------------------------------------------------------
# neurons

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


@njit(cache=True, error_model="numpy")
def _gate(p, queue, q0, count, amounts, est, window_est, best, decay, graded, max_spikes, n_in, net, out_q0, n_out):
    """Max-pool gate (projection p): a window passes a spike when an input that spikes now has a
    rate estimate above the window's own (its passed spikes, same filter), at most one event per
    step; graded, the event carries the gap to the best such input (rounded up, at most
    ``max_spikes``). With decay 1 (spike counts) a window's count is exactly the largest input
    count. ``best`` holds -1 for windows that have not passed anything this step."""
    windows_ptr, wp0, windows, wi0 = net.syn_ptr, net.syn_p0[p], net.syn_idx, net.syn_i0[p]
    if decay != 1.0:
        _scale(est[q0:q0 + n_in], decay)
        _scale(window_est[out_q0:out_q0 + n_out], decay)
    for e in range(count):
        i = queue[q0 + e]
        est[q0 + i] += amounts[q0 + i] if graded else 1.0
    passed = 0
    for e in range(count):
        i = queue[q0 + e]
        for a in range(wi0 + windows_ptr[wp0 + i], wi0 + windows_ptr[wp0 + i + 1]):
            w = out_q0 + windows[a]
            if est[q0 + i] > window_est[w]:
                if best[w] < 0:
                    queue[out_q0 + passed] = windows[a]
                    passed += 1
                best[w] = max(best[w], est[q0 + i])
    for e in range(passed):
        w = out_q0 + queue[out_q0 + e]
        amount = min(math.ceil(best[w] - window_est[w]), max_spikes) if graded else 1.0
        window_est[w] += amount
        amounts[w] = amount
        best[w] = -1.0
    return passed


# ---------------------------------------------------------------------------------------------
# readout

@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def _margin(counts, n):
    """Output spikes of the leading class minus those of the runner-up."""
    first, second = -1, -1
    for k in range(n):
        if counts[k] > first:
            first, second = counts[k], first
        elif counts[k] > second:
            second = counts[k]
    return first - second


# ---------------------------------------------------------------------------------------------
# one sample, all steps

@njit(cache=True, error_model="numpy")
def _run_sample(x, sample, net, cfg, v, est, window_est, best, queue, amounts, qlen, input_queue, input_drive, residual,
                words, spikes, spike_amounts, synops, step_synops, decisions, counts, v_out, raster, membrane, record,
                tally, tallying):
    """Simulate one sample; the scratch arrays (v ... words) are reused across samples. Returns
    (first output spike step or -1, the step after which the sample stopped early or -1)."""
    kinds, off, drive = net.kinds, net.off, net.drive
    threshold, subtract, poisson, readout = cfg.threshold, cfg.subtract, cfg.poisson, cfg.readout
    graded, max_spikes = cfg.graded, cfg.max_spikes
    seed, steps, stable_steps, exit_margin = cfg.seed, cfg.steps, cfg.stable_steps, cfg.exit_margin
    n_stages = kinds.size
    n_input = x.size
    no_amounts = np.empty(0, dtype=np.float32)  # spikes carry no amount (a global array would block caching)
    v[:] = cfg.v_init
    est[:] = 0.0
    window_est[:] = 0.0
    best[:] = -1.0
    qlen[:] = 0
    residual[:] = False

    stage_drive = drive
    if not poisson:  # analog input: projections from the input add a constant W x, computed once
        n_events = 0
        for j in range(n_input):
            if x[j] != 0:
                input_queue[n_events] = j
                n_events += 1
        input_drive[:] = drive
        for s in range(n_stages):
            for p in range(net.proj_ptr[s], net.proj_ptr[s + 1]):
                if net.proj_src[p] == INPUT:
                    synops[s] += _deliver(p, input_queue, 0, n_events, x, net, input_drive, off[s])
        stage_drive = input_drive

    out0 = off[n_stages - 1]
    n_out = off[n_stages] - out0
    first_spike = -1
    exit_step = -1
    spent = np.zeros(n_stages, dtype=np.int64)  # SynOps so far per stage (the analog input's count in step 1)
    for t in range(steps):
        n_events = 0
        if poisson:
            key = step_key(seed, STREAM_POISSON_INPUT, sample, t)
            for j in range(n_input):
                if uniform(key, net.input_index[j]) < x[j]:
                    input_queue[n_events] = j
                    n_events += 1
        for s in range(n_stages):
            v0 = off[s]
            n = off[s + 1] - v0
            if kinds[s] == GATE:
                # the gate's inputs are its source's neurons, whose queue (and estimates) start at off[src]
                p = net.proj_ptr[s]
                src = net.proj_src[p]
                qlen[s] = _gate(p, queue, off[src], qlen[src], amounts, est, window_est, best, cfg.decay, graded,
                                max_spikes, off[src + 1] - off[src], net, v0, n)
            else:
                received = 0
                for p in range(net.proj_ptr[s], net.proj_ptr[s + 1]):
                    src = net.proj_src[p]
                    if src != INPUT:
                        carried = amounts[off[src]:off[src + 1]] if graded else no_amounts
                        synops[s] += _deliver(p, queue, off[src], qlen[src], carried, net, v, v0)
                        received += qlen[src]
                    elif poisson:
                        synops[s] += _deliver(p, input_queue, 0, n_events, no_amounts, net, v, v0)
                        received += n_events
                if kinds[s] == IF or readout == SPIKES:
                    constant = net.has_drive[s] or (net.input_fed[s] and not poisson)
                    if received == 0 and not constant and not residual[s]:
                        qlen[s] = 0  # nothing changed: no neuron can cross the threshold
                    else:
                        qlen[s], residual[s] = _integrate_fire(v, v0, n, stage_drive, v0, threshold, subtract, graded,
                                                               max_spikes, queue, amounts, words, net.word_off[s])
                else:
                    _integrate(v, v0, n, stage_drive, v0)
            spikes[s, t] = qlen[s]
            if graded:
                for e in range(qlen[s]):
                    spike_amounts[s] += amounts[v0 + queue[v0 + e]]
            else:
                spike_amounts[s] += qlen[s]
            if record or tallying:
                for e in range(qlen[s]):
                    j = v0 + queue[v0 + e]
                    emitted = amounts[j] if graded else 1
                    if record:
                        raster[t, net.ir_index[j]] = emitted
                    if tallying:
                        tally[net.ir_index[j]] += emitted
        if readout == SOFTMAX:
            if uniform(step_key(seed, STREAM_SOFTMAX_TRIGGER, sample, t), 0) < cfg.rate:
                k = _softmax_draw(v, out0, n_out, uniform(step_key(seed, STREAM_SOFTMAX_DRAW, sample, t), 0))
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
        for s in range(n_stages):
            step_synops[s, t] = synops[s] - spent[s]
            spent[s] = synops[s]
        decisions[t] = _decide(counts, v, out0, n_out, readout, first_spike > 0)
        if _should_stop(decisions, t, stable_steps, exit_margin, counts, n_out):
            exit_step = t + 1
            decisions[t + 1:] = decisions[t]
            break
    for k in range(n_out):
        v_out[k] = v[out0 + k]
    if record:
        for e in range(v.size):
            membrane[net.ir_index[e]] = v[e]
    return first_spike, exit_step


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, parallel=True, error_model="numpy")
def _run_batch(x, first_sample, net, cfg, spikes, spike_amounts, synops, step_synops, decisions, first_spike, exit_step, counts, v_out,
               raster, membrane, record, tally, tallying, n_threads):
    n_samples = x.shape[0]
    n_chunks = min(n_samples, n_threads)
    n_total = net.off[net.kinds.size]
    for chunk in prange(n_chunks):
        # scratch allocated once per chunk (one chunk per thread), reused for its samples
        v = np.empty(n_total, dtype=np.float32)
        est = np.empty(n_total)  # gate inputs' rate estimates, by neuron
        window_est = np.empty(n_total)  # gate windows' own estimates (apart: a gate may read a gate)
        best = np.empty(n_total)  # gate windows: best input estimate this step
        queue = np.empty(n_total, dtype=np.int32)
        amounts = np.empty(n_total, dtype=np.float32)  # graded spikes: what each neuron's event carries
        qlen = np.empty(net.kinds.size, dtype=np.int64)
        input_queue = np.empty(x.shape[1], dtype=np.int32)
        input_drive = np.empty(n_total, dtype=np.float32)
        residual = np.empty(net.kinds.size, dtype=np.bool_)
        words = np.zeros(net.word_off[net.kinds.size], dtype=np.uint64)  # spike flags, one byte per neuron
        for b in range(chunk * n_samples // n_chunks, (chunk + 1) * n_samples // n_chunks):
            r = np.int64(b) if record else np.int64(0)  # one shared dummy raster when not recording
            c = np.int64(b) if tallying else np.int64(0)
            first_spike[b], exit_step[b] = _run_sample(
                x[b], first_sample + b, net, cfg, v, est, window_est, best, queue, amounts, qlen, input_queue, input_drive,
                residual, words, spikes[b], spike_amounts[b], synops[b], step_synops[b], decisions[b], counts[b], v_out[b], raster[r],
                membrane[r], record, tally[c], tallying)


# ---------------------------------------------------------------------------------------------
# packing the network into flat arrays

def _concat(arrays: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-stage arrays; return the flat array and each stage's start offset."""
    starts = np.zeros(len(arrays), np.int64)
    np.cumsum([a.size for a in arrays[:-1]], out=starts[1:])
    flat = np.concatenate([a.ravel() for a in arrays]).astype(dtype) if arrays else np.zeros(0, dtype)
    return flat, starts


def _geometry(projection: Projection, n_out: int) -> list[int]:
    """Per projection: [input channels, outputs per target pixel, kernel stride between input channels]."""
    if projection.path != "direct":
        return [0, n_out, 0]
    kh, c_in, kw, c_out = projection.kernel.shape
    return [c_in, c_out, kw * c_out]


def _weights(projection: Projection) -> np.ndarray:
    if projection.path == "direct":
        return projection.kernel
    if projection.path == "dense":
        return projection.dense
    return projection.synapses.weights


def _offsets(sizes: list[int]) -> np.ndarray:
    off = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=off[1:])
    return off


def pack(snn: SpikingNetwork) -> NetArrays:
    """The network as the flat arrays the kernels take (neurons in engine order). The drive is
    left at zero: it depends on the run's length (the bias shift), see ``with_drive``."""
    stages = snn.stages
    projections = [p for s in stages for p in s.projections]
    targets = [s for s in stages for _ in s.projections]
    empty = np.zeros(1, np.int64)
    none = np.zeros(0, np.int64)
    tables = [p.kernel_targets if p.path == "direct" else p.synapses for p in projections]
    syn_ptr, syn_p0 = _concat([t.indptr if t is not None else empty for t in tables], np.int64)
    syn_idx, syn_i0 = _concat([t.indices if t is not None else none for t in tables], np.int32)
    syn_w, syn_w0 = _concat([_weights(p) for p in projections], np.float32)
    off = _offsets([s.size for s in stages])
    return NetArrays(
        kinds=np.array([s.kind for s in stages], np.int64), off=off,
        word_off=_offsets([(s.size + 7) // 8 for s in stages]),
        proj_ptr=_offsets([len(s.projections) for s in stages]),
        proj_src=np.array([p.source for p in projections], np.int64),
        input_fed=np.array([any(p.source == INPUT for p in s.projections) for s in stages], np.bool_),
        paths=np.array([_PATHS[p.path] for p in projections], np.int64),
        geometry=np.array([_geometry(p, t.size) for p, t in zip(projections, targets)], np.int64).reshape(-1, 3),
        syn_ptr=syn_ptr, syn_p0=syn_p0, syn_idx=syn_idx, syn_i0=syn_i0, syn_w=syn_w, syn_w0=syn_w0,
        drive=np.zeros(off[-1], np.float32), has_drive=np.zeros(len(stages), np.bool_),
        input_index=engine_order(snn.input_shape), ir_index=_neuron_order(snn))


def with_drive(net: NetArrays, snn: SpikingNetwork, steps: int) -> NetArrays:
    """The arrays with each neuron's constant current for a run of ``steps`` (engine order)."""
    drive = [stage_drive(s, snn.config, steps)[engine_order(s.out_shape)] for s in snn.stages]
    return net._replace(drive=np.concatenate(drive).astype(np.float32),
                        has_drive=np.array([np.any(d != 0) for d in drive]))


def settings(snn: SpikingNetwork, seed: int, steps: int, stable_steps: int = 0, exit_margin: int = 0) -> Settings:
    cfg = snn.config
    return Settings(seed=int(seed), steps=int(steps), threshold=np.float32(cfg.threshold),
                    subtract=cfg.reset == "subtract", graded=cfg.spikes == "graded",
                    max_spikes=np.float32(cfg.spike_limit), poisson=cfg.input == "poisson", readout=_READOUTS[cfg.output],
                    rate=float(cfg.softmax_rate), decay=float(cfg.maxpool_decay), v_init=initial_membrane(cfg),
                    stable_steps=int(stable_steps), exit_margin=int(exit_margin))


def check_simulation_args(snn: SpikingNetwork, x: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Validate what a simulator is given; return x as (N, n_input) float32 in IR (C) order."""
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


def _neuron_order(snn: SpikingNetwork) -> np.ndarray:
    """order[e] = IR index (stages concatenated) of the neuron at engine index e."""
    parts, start = [], 0
    for stage in snn.stages:
        parts.append(engine_order(stage.out_shape) + start)
        start += stage.size
    return np.concatenate(parts)


def simulate(snn: SpikingNetwork, x: np.ndarray, steps: int, seed: int = 0, batch_size: int = 256,
             record: bool = False, threads: int | None = None, progress: Progress | None = None,
             first_sample: int = 0, stable_steps: int = 0, exit_margin: int = 0,
             count_neurons: bool = False) -> SimulationResult:
    """Run the event-driven SNN on inputs x (N, *input_shape) for ``steps`` steps.

    ``first_sample`` numbers the samples for the random streams (sample i uses first_sample + i),
    so a data set split into chunks gives the same result as one run. ``record`` keeps the full
    spike raster and the final membrane potentials of all neurons, in IR order (memory:
    N * T * neurons bytes; for tests and small nets); ``count_neurons`` keeps only each neuron's
    spike count (weighted by what graded events carry; N * neurons * 4 bytes). Early exit (off by default): a sample stops
    once its decision has not changed for ``stable_steps`` steps, or once the leading class has
    ``exit_margin`` more output spikes than the runner-up; its later decisions repeat the last one.
    """
    x = check_simulation_args(snn, x, steps, seed)
    if stable_steps < 0 or exit_margin < 0:
        raise ValueError("stable_steps and exit_margin must be >= 0 (0 turns the criterion off)")
    if threads is not None and not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads must lie in [1, {numba.config.NUMBA_NUM_THREADS}], not {threads}")
    net = with_drive(pack(snn), snn, steps)
    cfg = settings(snn, seed, steps, stable_steps, exit_margin)
    x = x[:, net.input_index]  # engine (channel-last) order; the Poisson stream stays keyed by IR index
    n, n_stages, n_out = len(x), len(snn.stages), snn.n_classes
    parts = []
    for start in range(0, max(n, 1), batch_size):
        xb = np.ascontiguousarray(x[start:start + batch_size])
        b = len(xb)
        spikes = np.zeros((b, n_stages, steps), np.int32)
        spike_amounts = np.zeros((b, n_stages), np.int64)
        synops = np.zeros((b, n_stages), np.int64)
        step_synops = np.zeros((b, n_stages, steps), np.int64)
        decisions = np.zeros((b, steps), np.int32)
        first_spike = np.zeros(b, np.int32)
        exit_step = np.zeros(b, np.int32)
        counts = np.zeros((b, n_out), np.int32)
        v_out = np.zeros((b, n_out), np.float32)
        raster = np.zeros((b, steps, snn.n_neurons) if record else (1, 1, 1), np.uint8)
        membrane = np.zeros((b, snn.n_neurons) if record else (1, 1), np.float32)
        tally = np.zeros((b, snn.n_neurons) if count_neurons else (1, 1), np.int32)
        began = time.perf_counter()
        _run_batch(xb, first_sample + start, net, cfg, spikes, spike_amounts, synops, step_synops, decisions, first_spike, exit_step, counts,
                   v_out, raster, membrane, record, tally, count_neurons, threads or numba.config.NUMBA_NUM_THREADS)
        elapsed = time.perf_counter() - began
        parts.append(SimulationResult(decisions, spikes, synops, first_spike, counts, v_out,
                                      tuple(s.name for s in snn.stages), elapsed, exit_step,
                                      raster if record else None, membrane if record else None, spike_amounts,
                                      tally if count_neurons else None, step_synops))
        if progress is not None:
            progress(start + b, n)
    return SimulationResult.concatenate(parts)


def fastest_projection(candidates: list[Projection], n_out: int, events: int = 4000, repeats: int = 3) -> Projection:
    """The candidate (same layer, different paths) that delivers random events fastest here."""
    rng = np.random.default_rng(0)
    best, best_time = candidates[0], np.inf
    for projection in candidates:
        stage = Stage("candidate", IF, (n_out,), np.zeros(n_out, np.float32), (projection,))
        queue = rng.integers(0, projection.n_in, min(events, projection.n_in)).astype(np.int32)
        v = np.zeros(n_out, np.float32)
        args = (0, queue, 0, queue.size, _NO_AMOUNTS, pack(SpikingNetwork((stage,), SimulationConfig(), (n_out,))), v, 0)
        _deliver(*args)  # compile / warm up
        began = time.perf_counter()
        for _ in range(repeats):
            _deliver(*args)
        elapsed = time.perf_counter() - began
        if elapsed < best_time:
            best, best_time = projection, elapsed
    return best
