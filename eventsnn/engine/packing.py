"""The network as the flat arrays the kernels take: stages and projections concatenated,
neurons in engine (channel-last) order; and the run's settings as a named tuple."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import fixed_point
from ..connectivity import engine_order
from ..snn import INPUT, Projection, SpikingNetwork, stage_bits, stage_drive, stage_initial_membrane, threshold_of

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
    geometry: np.ndarray  # (n_projections, 3), see _geometry
    syn_ptr: np.ndarray  # CSR row pointers (or the kernel-direct target table's)
    syn_p0: np.ndarray
    syn_idx: np.ndarray  # CSR column indices (or target-table triples)
    syn_i0: np.ndarray
    syn_w: np.ndarray  # CSR weights, kernels, dense matrices
    syn_w0: np.ndarray
    drive: np.ndarray  # constant current per neuron (bias, shift)
    v_init: np.ndarray  # V(0) per neuron
    fires_at_start: np.ndarray  # per stage: some V(0) is at or above the threshold (a calibrated V(0) may be)
    has_drive: np.ndarray
    threshold: np.ndarray  # per stage, of the membranes' type (float32, or int32 grid steps)
    low: np.ndarray  # per stage: membranes saturate at [low, high] after each step (int32; float32: +-inf)
    high: np.ndarray
    unit: np.ndarray  # per stage: a membrane's value in its units (float64: 2**-bits in int32, else 1)
    input_index: np.ndarray  # IR index of each input (keys the Poisson stream)
    ir_index: np.ndarray  # IR index (stages concatenated) of each neuron: rasters and counts are kept in IR order


class Settings(NamedTuple):
    seed: int
    steps: int
    subtract: bool
    graded: bool  # events carry amounts (k spikes, or signed spikes' +-1); binary events carry one
    signed: bool  # a neuron whose count is positive takes a spike back when V < 0
    max_spikes: np.float32 | np.int32  # of the membranes' type
    poisson: bool
    readout: int
    rate: float
    decay: float
    stable_steps: int
    exit_margin: int



def _concat(arrays: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-stage arrays; return the flat array and each stage's start offset."""
    starts = np.zeros(len(arrays), np.int64)
    np.cumsum([a.size for a in arrays[:-1]], out=starts[1:])
    flat = np.concatenate([a.ravel() for a in arrays]).astype(dtype) if arrays else np.zeros(0, dtype)
    return flat, starts


def _geometry(projection: Projection, n_out: int) -> list[int]:
    """Per projection: [input channels, outputs per target pixel, kernel stride between input channels];
    for CSR rows the first entry is 1 when every row holds exactly one synapse (row i is entry i)."""
    if projection.path != "direct":
        single = projection.synapses is not None and bool(np.all(np.diff(projection.synapses.indptr) == 1))
        return [int(single), n_out, 0]
    kh, c_in, kw, c_out = projection.kernel.shape
    return [c_in, c_out, kw * c_out]


def _weights(projection: Projection) -> np.ndarray:
    if projection.path == "direct":
        return projection.kernel
    if projection.path == "dense":
        return projection.dense
    return projection.synapses.weights


def _integer(snn: SpikingNetwork) -> bool:
    return snn.config.arithmetic == "int32"


def _state(per_stage: list[np.ndarray], snn: SpikingNetwork) -> np.ndarray:
    """Per-stage membrane-like values (V(0), drive, thresholds), concatenated in the engine's type:
    float32, or int32 steps of each stage's grid."""
    if not _integer(snn):
        return np.concatenate(per_stage).astype(np.float32)
    return np.concatenate([fixed_point.steps_of(values, stage_bits(stage))
                           for values, stage in zip(per_stage, snn.stages)])


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
    integer = _integer(snn)  # int32: a projection's weights in steps of its target's grid
    syn_w, syn_w0 = _concat([fixed_point.steps_of(_weights(p), stage_bits(t)) if integer else _weights(p)
                             for p, t in zip(projections, targets)], np.int32 if integer else np.float32)
    off = _offsets([s.size for s in stages])
    initial = [stage_initial_membrane(s, snn.config) for s in stages]  # V(0) per neuron, IR order
    return NetArrays(
        kinds=np.array([s.kind for s in stages], np.int64), off=off,
        word_off=_offsets([(s.size + 7) // 8 for s in stages]),
        proj_ptr=_offsets([len(s.projections) for s in stages]),
        proj_src=np.array([p.source for p in projections], np.int64),
        input_fed=np.array([any(p.source == INPUT for p in s.projections) for s in stages], np.bool_),
        paths=np.array([_PATHS[p.path] for p in projections], np.int64),
        geometry=np.array([_geometry(p, t.size) for p, t in zip(projections, targets)], np.int64).reshape(-1, 3),
        syn_ptr=syn_ptr, syn_p0=syn_p0, syn_idx=syn_idx, syn_i0=syn_i0, syn_w=syn_w, syn_w0=syn_w0,
        drive=_state([np.zeros(s.size, np.float32) for s in stages], snn), has_drive=np.zeros(len(stages), np.bool_),
        v_init=_state([v[engine_order(s.out_shape)] for v, s in zip(initial, stages)], snn),
        fires_at_start=np.array([np.any(v >= threshold_of(snn.config)) for v in initial], np.bool_),
        **_limits(snn),
        input_index=engine_order(snn.input_shape), ir_index=_neuron_order(snn))


def with_drive(net: NetArrays, snn: SpikingNetwork, steps: int) -> NetArrays:
    """The arrays with each neuron's constant current for a run of ``steps`` (engine order)."""
    drive = [stage_drive(s, snn.config, steps)[engine_order(s.out_shape)] for s in snn.stages]
    return net._replace(drive=_state(drive, snn), has_drive=np.array([np.any(d != 0) for d in drive]))


def _limits(snn: SpikingNetwork) -> dict[str, np.ndarray]:
    """Per stage: the threshold, the saturation bounds and the value of one membrane unit."""
    n = len(snn.stages)
    threshold = _state([np.array([threshold_of(snn.config)]) for _ in snn.stages], snn)
    if not _integer(snn):
        return dict(threshold=threshold, low=np.full(n, -np.inf, np.float32), high=np.full(n, np.inf, np.float32),
                    unit=np.ones(n))
    bits = np.array([stage_bits(s) for s in snn.stages])
    return dict(threshold=threshold, low=np.full(n, -fixed_point.MEMBRANE_LIMIT, np.int32),
                high=np.full(n, fixed_point.MEMBRANE_LIMIT, np.int32), unit=2.0 ** -bits)


def settings(snn: SpikingNetwork, seed: int, steps: int, stable_steps: int = 0, exit_margin: int = 0) -> Settings:
    cfg = snn.config
    return Settings(seed=int(seed), steps=int(steps), subtract=cfg.reset == "subtract",
                    graded=cfg.spikes in ("graded", "signed"), signed=cfg.spikes == "signed",
                    max_spikes=(np.int32 if _integer(snn) else np.float32)(cfg.spike_limit),
                    poisson=cfg.input == "poisson", readout=_READOUTS[cfg.output],
                    rate=float(cfg.softmax_rate), decay=float(cfg.maxpool_decay),
                    stable_steps=int(stable_steps), exit_margin=int(exit_margin))


def _neuron_order(snn: SpikingNetwork) -> np.ndarray:
    """order[e] = IR index (stages concatenated) of the neuron at engine index e."""
    parts, start = [], 0
    for stage in snn.stages:
        parts.append(engine_order(stage.out_shape) + start)
        start += stage.size
    return np.concatenate(parts)
