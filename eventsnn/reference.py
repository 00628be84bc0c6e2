"""The reference simulator: dense, time-stepped NumPy over a whole batch, the oracle for the engine.

It follows the equations in ``snn`` literally: every step, every layer computes W s + b densely
(convolutions as in the ANN), whatever the spikes. Random numbers come from the same
counter-based streams as the engine. With weights and inputs that are exact in float32
(e.g. multiples of 1/64), the engine's spike trains must equal these exactly. In int32
arithmetic (``fixed_point``) it computes in float64, where the grid values and their sums are
exact, and wraps and saturates as int32 membranes do: the engine must equal it on any network.
"""

from __future__ import annotations

import functools
import math
import time
from itertools import accumulate

import numpy as np

from . import fixed_point
from .ann import pool_windows, synaptic_input
from .rng import STREAM_POISSON_INPUT, STREAM_SOFTMAX_DRAW, STREAM_SOFTMAX_TRIGGER, step_key, uniform_numpy
from .snn import (GATE, IF, INPUT, RASTER_DTYPE, Projection, SimulationResult, SpikingNetwork, Stage,
                  analog_input_synops, check_simulation_args, stage_bits, stage_drive, stage_initial_membrane,
                  threshold_of)


def _keys(seed: int, stream: int, samples: np.ndarray, step: int) -> np.ndarray:
    return np.array([step_key(seed, stream, int(n), step) for n in samples], dtype=np.uint64)


def synaptic(projection: Projection, spikes: np.ndarray, dtype=np.float32) -> np.ndarray:
    """W s of one projection for a batch of source spikes (or analog inputs), no bias, in ``dtype``."""
    spikes = spikes.astype(dtype, copy=False)
    if projection.layer is None:
        return (spikes * np.asarray(projection.weight, np.float32)).astype(dtype)
    batch = spikes.reshape((len(spikes),) + projection.in_shape)
    return synaptic_input(projection.layer, batch, with_bias=False).reshape(len(spikes), -1).astype(dtype)


def _gate(stage: Stage, est_in: np.ndarray, est_out: np.ndarray, spikes: np.ndarray, limit: int) -> np.ndarray:
    """What each window passes: a spike when some input spiking now has an estimate above the
    window's; with graded spikes (``limit`` > 1) the gap to the best such input, rounded up."""
    projection = stage.projections[0]
    pool, shape = projection.layer, (len(spikes),) + projection.in_shape

    def windows(values: np.ndarray, fill: float) -> np.ndarray:  # (N, windows, k*k), windows in IR order
        return pool_windows(values.reshape(shape), pool, fill).reshape(len(spikes), -1, pool.kernel_size ** 2)

    # padding never spikes
    best = np.where(windows(spikes, 0.0) > 0, windows(est_in, -np.inf), -np.inf).max(axis=2)
    gap = best - est_out.reshape(len(spikes), -1)
    return np.where(gap > 0, np.minimum(np.ceil(gap), limit) if limit > 1 else 1, 0).astype(np.float32)


def _fire(u: np.ndarray, threshold: np.floating, limit: int, exact: bool) -> np.ndarray:
    """Spikes per neuron: 1 where V >= threshold; graded (``limit`` > 1): min(floor(V / threshold), limit),
    the quotient floored exactly when ``exact`` (float64 grid values, as the int32 engine computes it)."""
    if limit == 1:
        return (u >= threshold).astype(u.dtype)
    quotient = np.floor_divide(u, threshold) if exact else np.floor(u / threshold)
    return np.where(u >= threshold, np.minimum(quotient, limit), 0).astype(u.dtype)


def _softmax_draw(v: np.ndarray, u: float) -> int:
    top = max(float(a) for a in v)
    weights = [math.exp(float(a) - top) for a in v]
    cumulative = list(accumulate(weights))
    target = u * cumulative[-1]
    return next((k for k, c in enumerate(cumulative) if target < c), len(v) - 1)


def _decide(counts: np.ndarray, v: np.ndarray, readout: str, any_spike: np.ndarray) -> np.ndarray:
    if readout == "membrane":
        return v.argmax(axis=1)
    tied = np.where(counts == counts.max(axis=1, keepdims=True), v, -np.inf)
    return np.where(any_spike, tied.argmax(axis=1), -1)


def simulate_reference(snn: SpikingNetwork, x: np.ndarray, steps: int, seed: int = 0, record: bool = False,
                       first_sample: int = 0, count_neurons: bool = False) -> SimulationResult:
    """Dense time-stepped simulation of the same network and settings as ``engine.simulate``."""
    began = time.perf_counter()
    x = check_simulation_args(snn, x, steps, seed)
    if snn.config.correction == "offset":
        return _simulate_layerwise(snn, x, steps, seed, record, first_sample, count_neurons, began)
    cfg, stages = snn.config, snn.stages
    n, n_stages = len(x), len(stages)
    samples = np.arange(first_sample, first_sample + n)
    exact = cfg.arithmetic == "int32"
    dtype = np.float64 if exact else np.float32
    threshold = dtype(threshold_of(cfg))
    v = [np.tile(stage_initial_membrane(s, cfg), (n, 1)).astype(dtype) for s in stages]
    est = [(np.zeros((n, s.projections[0].n_in)), np.zeros((n, s.size))) for s in stages]  # gates: inputs, windows
    drive = [stage_drive(s, cfg, steps).astype(dtype) for s in stages]
    bits = [stage_bits(s) for s in stages]  # int32: each population's grid
    spikes = np.zeros((n, n_stages, steps), np.int32)
    step_synops = np.zeros((n, n_stages, steps), np.int64)
    limit = cfg.spike_limit
    decisions = np.zeros((n, steps), np.int32)
    first_spike = np.full(n, -1, np.int32)
    counts = np.zeros((n, snn.n_classes), np.int32)
    raster = np.zeros((n, steps, snn.n_neurons), RASTER_DTYPE) if record else None
    tally = np.zeros((n, snn.n_neurons), np.int32)
    spike_amounts = np.zeros((n, n_stages), np.int64)  # spikes emitted per stage, a signed spike's -1 as one
    updates = np.zeros((n, n_stages), np.int64)  # membranes that changed in a step
    offsets = np.concatenate([[0], np.cumsum([s.size for s in stages])])
    analog = cfg.input == "analog"
    input_synops = analog_input_synops(snn, x)
    step_synops[:, :, 0] += input_synops  # the analog input's current is computed once
    if analog:  # projections from the input add a constant W x every step, summed once as the engine does
        for s, stage in enumerate(stages):
            for projection in stage.projections:
                if projection.source == INPUT:
                    drive[s] = synaptic(projection, x, dtype) + drive[s]
                    drive[s] = fixed_point.wrapped(drive[s], bits[s]) if exact else drive[s]

    for t in range(steps):
        out = {INPUT: x}
        if not analog:
            out[INPUT] = (uniform_numpy(_keys(seed, STREAM_POISSON_INPUT, samples, t), x.shape[1]) < x).astype(np.float32)
        for s, stage in enumerate(stages):
            if stage.kind == GATE:
                incoming = out[stage.projections[0].source]
                est_in, est_out = est[s][0] * cfg.maxpool_decay + incoming, est[s][1] * cfg.maxpool_decay
                out[s] = _gate(stage, est_in, est_out, incoming, limit)
                est[s] = (est_in, est_out + out[s])
            else:
                before = v[s]
                for projection in stage.projections:
                    if projection.source != INPUT or not analog:
                        incoming = out[projection.source]
                        step_synops[:, s, t] += (incoming != 0) @ projection.fan_out  # one per event
                        v[s] = v[s] + synaptic(projection, incoming, dtype)
                v[s] = fixed_point.wrapped(v[s], bits[s]) if exact else v[s]
                u = v[s] + drive[s]  # the int32 engine adds in int64 here: no wrap
                if stage.kind == IF or cfg.output == "spikes":
                    emitted = _fire(u, threshold, limit, exact)
                    if cfg.spikes == "signed":  # a neuron with spikes to take back emits -1 where V < 0
                        emitted = emitted - ((u < 0) & (tally[:, offsets[s]:offsets[s + 1]] > 0)).astype(u.dtype)
                    v[s] = np.where(emitted != 0, u - emitted * threshold if cfg.reset == "subtract" else 0, u).astype(dtype)
                    out[s] = emitted
                else:
                    v[s] = fixed_point.wrapped(u, bits[s]) if exact else u
                    out[s] = np.zeros_like(v[s])
                v[s] = fixed_point.saturated(v[s], bits[s]) if exact else v[s]
                updates[:, s] += (v[s] != before).sum(axis=1)
            spikes[:, s, t] = (out[s] != 0).sum(axis=1)
            tally[:, offsets[s]:offsets[s + 1]] += out[s].astype(np.int32)
            spike_amounts[:, s] += np.abs(out[s]).sum(axis=1, dtype=np.int64)
            if record:
                raster[:, t, offsets[s]:offsets[s + 1]] = out[s]
        if cfg.output == "softmax":
            trigger = uniform_numpy(_keys(seed, STREAM_SOFTMAX_TRIGGER, samples, t), 1)[:, 0] < cfg.softmax_rate
            draws = uniform_numpy(_keys(seed, STREAM_SOFTMAX_DRAW, samples, t), 1)[:, 0]
            for b in np.flatnonzero(trigger):
                k = _softmax_draw(v[-1][b], draws[b])
                counts[b, k] += 1
                spikes[b, -1, t] = 1
                tally[b, offsets[-2] + k] += 1
                spike_amounts[b, -1] += 1
                if record:
                    raster[b, t, offsets[-2] + k] = 1
        elif cfg.output == "spikes":
            counts += out[n_stages - 1].astype(np.int32)
        first_spike = np.where((first_spike < 0) & (spikes[:, -1, t] > 0), t + 1, first_spike)
        decisions[:, t] = _decide(counts, v[-1], cfg.output, first_spike > 0)
    membrane = np.concatenate(v, axis=1).astype(np.float32) if record else None
    return SimulationResult(decisions, spikes, step_synops.sum(axis=2), first_spike, counts, v[-1].astype(np.float32),
                            tuple(s.name for s in stages), time.perf_counter() - began,
                            exit_step=np.full(n, -1, np.int32), raster=raster, membrane=membrane,
                            spike_amounts=spike_amounts, neuron_counts=tally if count_neurons else None,
                            synops_per_step=step_synops, input_synops=input_synops,
                            membrane_updates=updates if count_neurons else None)


def _corrected_start(v_start: np.ndarray, v_end: np.ndarray, count: np.ndarray, threshold: float, most: int,
                     bits: int, exact: bool) -> np.ndarray:
    """Offset correction (``snn``): V(0) moved by the miscount c* - c that the residual V(T) shows, in float64."""
    threshold = np.float64(threshold)
    due = np.clip(np.floor((v_end.astype(np.float64) + count * threshold) / threshold), 0, most)
    corrected = v_start.astype(np.float64) - (count - due) * threshold
    return (fixed_point.saturated(corrected, bits) if exact else corrected).astype(v_start.dtype)


def _run_population(stage: Stage, v_start: np.ndarray, current: np.ndarray, drive: np.ndarray, threshold: np.floating,
                    limit: int, bits: int, exact: bool,
                    decisions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All T steps of one population from V(0) = v_start, given its currents (T, N, size): what it
    emitted per step, V(T), and each sample's membrane updates. The output layer only integrates,
    and writes the decision at every step."""
    steps, n = current.shape[:2]
    v, emitted, changed = v_start, np.zeros(current.shape, v_start.dtype), np.zeros(n, np.int64)
    for t in range(steps):
        before = v
        v = v + current[t]
        v = fixed_point.wrapped(v, bits) if exact else v
        u = v + drive
        if stage.kind == IF:
            emitted[t] = _fire(u, threshold, limit, exact)
            v = np.where(emitted[t] != 0, u - emitted[t] * threshold, u).astype(v_start.dtype)
        else:  # the membrane readout
            v = fixed_point.wrapped(u, bits) if exact else u
            decisions[:, t] = v.argmax(axis=1)
        v = fixed_point.saturated(v, bits) if exact else v
        changed += (v != before).sum(axis=1)
    return emitted, v, changed


def _simulate_layerwise(snn: SpikingNetwork, x: np.ndarray, steps: int, seed: int, record: bool, first_sample: int,
                        count_neurons: bool, began: float) -> SimulationResult:
    """Offset correction: stage by stage, each IF population run for all steps twice (``snn``)."""
    cfg, stages = snn.config, snn.stages
    n, n_stages = len(x), len(stages)
    samples = np.arange(first_sample, first_sample + n)
    exact = cfg.arithmetic == "int32"
    dtype = np.float64 if exact else np.float32
    threshold, limit = dtype(threshold_of(cfg)), cfg.spike_limit
    trains: dict[int, np.ndarray] = {}  # stage -> (T, N, size) what each neuron emitted per step
    if cfg.input == "poisson":  # (analog input is a constant current, added to the drive)
        trains[INPUT] = np.stack([(uniform_numpy(_keys(seed, STREAM_POISSON_INPUT, samples, t), x.shape[1]) < x)
                                  .astype(np.float32) for t in range(steps)])
    spikes = np.zeros((n, n_stages, steps), np.int32)
    step_synops = np.zeros((n, n_stages, steps), np.int64)
    decisions = np.zeros((n, steps), np.int32)
    updates = np.zeros((n, n_stages), np.int64)
    input_synops = analog_input_synops(snn, x)
    step_synops[:, :, 0] += input_synops
    v_final = []
    for s, stage in enumerate(stages):
        bits = stage_bits(stage)
        drive = stage_drive(stage, cfg, steps).astype(dtype)
        current = np.zeros((steps, n, stage.size), dtype)
        for projection in stage.projections:
            if projection.source == INPUT and cfg.input == "analog":  # a constant W x, summed into the drive once
                drive = synaptic(projection, x, dtype) + drive
                drive = fixed_point.wrapped(drive, bits) if exact else drive
                continue
            for t in range(steps):
                incoming = trains[projection.source][t]
                step_synops[:, s, t] += (incoming != 0) @ projection.fan_out
                current[t] = current[t] + synaptic(projection, incoming, dtype)
        v_start = np.tile(stage_initial_membrane(stage, cfg), (n, 1)).astype(dtype)

        run = functools.partial(_run_population, stage, current=current, drive=drive, threshold=threshold, limit=limit,
                                bits=bits, exact=exact, decisions=decisions)
        emitted, v, changed = run(v_start)
        updates[:, s] = changed
        if stage.kind == IF:
            corrected = _corrected_start(v_start, v, emitted.sum(axis=0), threshold, steps * limit, bits, exact)
            moved = np.any(corrected != v_start, axis=1)  # the samples that run again
            if np.any(moved):
                again, v_again, changed = run(corrected)
                emitted, v = np.where(moved[:, None], again, emitted), np.where(moved[:, None], v_again, v)
                updates[:, s] += np.where(moved, changed, 0)
        trains[s] = emitted
        spikes[:, s] = (emitted != 0).sum(axis=2).T
        v_final.append(v)
    emitted_all = np.concatenate([trains[s] for s in range(n_stages)], axis=2)  # (T, N, neurons)
    spike_amounts = np.stack([np.abs(trains[s]).sum(axis=(0, 2)) for s in range(n_stages)], axis=1).astype(np.int64)
    tally = emitted_all.sum(axis=0).astype(np.int32)
    return SimulationResult(decisions, spikes, step_synops.sum(axis=2), np.full(n, -1, np.int32),
                            np.zeros((n, snn.n_classes), np.int32), v_final[-1].astype(np.float32),
                            tuple(s.name for s in stages), time.perf_counter() - began,
                            exit_step=np.full(n, -1, np.int32),
                            raster=emitted_all.transpose(1, 0, 2).astype(RASTER_DTYPE) if record else None,
                            membrane=np.concatenate(v_final, axis=1).astype(np.float32) if record else None,
                            spike_amounts=spike_amounts, neuron_counts=tally if count_neurons else None,
                            synops_per_step=step_synops, input_synops=input_synops,
                            membrane_updates=updates if count_neurons else None)
