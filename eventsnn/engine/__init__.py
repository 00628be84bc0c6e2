"""The event-driven engine: Numba kernels that propagate only emitted spikes.

Per sample, the whole time loop runs compiled. Each stage keeps an int32 event queue (the engine
indices that spiked this step); the stages it projects to walk only those: CSR rows, a conv
kernel scattered into the outputs a spike reaches (channel-last, so the innermost loop over
output channels is contiguous and vectorizes), or a dense row. A stage with several projections
(a residual add) takes the events of each of its sources in turn. Graded events carry their
spike count in ``amounts`` (indexed by neuron), and a delivery adds that many times the weights.
Samples run in chunks on a pool of threads (the compiled chunk releases the GIL), each chunk
with scratch allocated once; a thread that finishes early takes the next chunk. Random numbers come from ``rng`` keyed by sample and step, so results do not
depend on the thread count or the batch size. Equations: see ``snn``.

By concern: ``packing`` (network and settings as flat arrays), ``delivery`` (synaptic delivery),
``neurons`` (integrate and fire, compaction of spikes into queues), ``gates`` (max-pool gates),
``readout`` (softmax draw, decision, early exit), ``loop`` (one sample's time loop, batches in
parallel), ``layerwise`` (offset correction: a sample layer by layer, each population run twice),
``lockstep`` (``schedule='layer'``: a batch stage by stage, dense inputs as matrix products),
``profiling`` (cycles per stage and phase) over ``intrinsics`` (LLVM's cycle counter and popcount);
this module runs them.
"""

from __future__ import annotations

import time
import weakref

import numba
import numpy as np

from .. import memory
from ..kernel_cache import repairing
from ..progress import Progress
from ..connectivity import DEFAULT_MAX_BYTES
from ..ir import Network
from ..snn import (ARITHMETICS, CORRECTIONS, IF, INPUTS, RASTER_DTYPE, Projection, SimulationConfig,
                   SimulationResult, SpikingNetwork, Stage, analog_input_synops, check_simulation_args)
from ..snn import build as build_populations
from .profiling import PHASES, ticks_now
from .delivery import _deliver
from . import lockstep
from .layerwise import _run_chunk_layerwise
from .loop import _run_chunk, run_batch
from .packing import _NO_AMOUNTS, pack, settings, with_drive

SCHEDULES = ("step", "layer")
DELIVERIES = ("auto", "dense", "events")

__all__ = ["build", "simulate", "simulation_bytes", "fastest_projection", "compile_kernels", "PHASES"]


def simulation_bytes(snn: SpikingNetwork, n: int, steps: int, record: bool = False, count_neurons: bool = False,
                     threads: int = 1, schedule: str = "step") -> int:
    """What simulating n samples allocates: per-sample results (counts per stage and step, decisions;
    the raster and membranes when recorded, the spike and update counts when counted), held twice
    while the batches are joined, and each thread's scratch (schedule 'layer': the stages' scratch)."""
    stages, neurons, steps, n = len(snn.stages), snn.n_neurons, int(steps), int(n)  # Python ints: no overflow
    per_sample = stages * steps * 12 + steps * 4 + stages * 24 + snn.n_classes * 8 + 16
    per_sample += (np.dtype(RASTER_DTYPE).itemsize * steps + 4) * neurons if record else 0
    per_sample += 4 * neurons + 8 * stages if count_neurons else 0
    scratch = 48 + (4 if count_neurons else 0) + (4 if snn.config.spikes == "signed" else 0)  # bytes per neuron
    scratch *= neurons
    if snn.config.correction == "offset":  # per step: every stage's events and amounts, the largest stage's current
        scratch += steps * (8 * neurons + 4 * max(stage.size for stage in snn.stages))
    if schedule == "layer":
        return 2 * n * per_sample + lockstep.scratch_bytes(snn, n, steps, threads)
    return 2 * n * per_sample + threads * scratch


_PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _packed(snn: SpikingNetwork):
    """``pack(snn)``, kept while the network lives: packing a large net takes a while (VGG-16: 0.5 s)."""
    if snn not in _PACKED:
        _PACKED[snn] = pack(snn)
    return _PACKED[snn]


@repairing
def simulate(snn: SpikingNetwork, x: np.ndarray, steps: int, seed: int = 0, batch_size: int = 256,
             record: bool = False, threads: int | None = None, progress: Progress | None = None,
             first_sample: int = 0, stable_steps: int = 0, exit_margin: int = 0,
             count_neurons: bool = False, profile: bool = False, schedule: str = "step",
             delivery: str = "auto") -> SimulationResult:
    """Run the event-driven SNN on inputs x (N, *input_shape) for ``steps`` steps.

    ``first_sample`` numbers the samples for the random streams (sample i uses first_sample + i),
    so a data set split into chunks gives the same result as one run. ``record`` keeps the full
    spike raster and the final membrane potentials of all neurons, in IR order (memory:
    2 N T neurons bytes; for tests and small nets); ``count_neurons`` keeps only each neuron's
    spike count (weighted by what graded events carry; N * neurons * 4 bytes) and each stage's
    membrane updates (membranes that changed in a step, summed over steps). Early exit (off by
    default): a sample stops once its decision has not changed for ``stable_steps`` steps, or once
    the leading class has ``exit_margin`` more output spikes than the runner-up; its later
    decisions repeat the last one. ``profile`` times each phase of each stage (``PHASES``: input,
    delivery, fire, compaction, gate, count, readout) with the CPU's cycle counter, into the
    result's ``phase_seconds`` (N, S, phases; CPU seconds, summed over all threads).

    ``schedule``: 'step' (default) runs each sample step by step through all stages; 'layer' runs
    a batch stage by stage, a sub-batch's samples and steps at once, each projection delivered as a matrix
    product or as events (``lockstep``: the same spikes; in float32 its sums round in another
    order, in int32 they are exact). It covers runs without signed spikes, the softmax or spike
    readouts, early exit, profile, record, count_neurons or offset correction.
    ``delivery`` (schedule 'layer'): 'auto' times both deliveries of each projection once and takes
    the cheaper from then on; 'dense' or 'events' forces one.
    """
    x = check_simulation_args(snn, x, steps, seed)
    if stable_steps < 0 or exit_margin < 0:
        raise ValueError("stable_steps and exit_margin must be >= 0 (0 turns the criterion off)")
    if threads is not None and not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"threads must lie in [1, {numba.config.NUMBA_NUM_THREADS}], not {threads}")
    n_threads = threads or numba.config.NUMBA_NUM_THREADS
    layerwise = snn.config.correction == "offset"
    if layerwise and (stable_steps or exit_margin or profile):
        raise ValueError("offset correction runs layer by layer: no early exit (stable_steps, exit_margin) or profile")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, not {schedule!r}")
    refused = lockstep.refusal(snn, record, count_neurons, profile, bool(stable_steps or exit_margin))
    if schedule == "layer" and refused:
        raise ValueError(f"schedule='layer' does not cover {refused}; use schedule='step'")
    if delivery not in DELIVERIES:
        raise ValueError(f"delivery must be one of {DELIVERIES}, not {delivery!r}")
    if delivery != "auto" and schedule != "layer":
        raise ValueError("delivery chooses how the layer schedule delivers: give it with schedule='layer'")
    plan = lockstep.plan_for(snn, delivery) if schedule == "layer" else None
    buffers = lockstep.Buffers() if plan else None  # the stages' scratch, reused from batch to batch
    memory.check(simulation_bytes(snn, len(x), steps, record, count_neurons, n_threads, schedule),
                 f"simulating {len(x)} samples for {steps} steps" + (" with record=True" if record else ""))
    net = with_drive(_packed(snn), snn, steps)
    cfg = settings(snn, seed, steps, stable_steps, exit_margin)
    # engine (channel-last) order, the Poisson stream staying keyed by IR index; np.take writes the
    # rows in order (fancy indexing on the second axis gathered CIFAR-10 images 12x slower)
    x_ir, x = x, np.take(x, net.input_index, axis=1)
    if snn.config.arithmetic == "int32" and snn.config.input == "analog":
        x = x.astype(np.int32)  # round(255 x) (``check_simulation_args``): the input current is added as integers
    n, n_stages, n_out = len(x), len(snn.stages), snn.n_classes
    parts = []
    for start in range(0, max(n, 1), batch_size):
        xb = np.ascontiguousarray(x[start:start + batch_size])
        b = len(xb)
        spikes = np.zeros((b, n_stages, steps), np.int32)
        spike_amounts = np.zeros((b, n_stages), np.int64)
        step_synops = np.zeros((b, n_stages, steps), np.int64)
        decisions = np.zeros((b, steps), np.int32)
        first_spike = np.zeros(b, np.int32)
        exit_step = np.zeros(b, np.int32)
        counts = np.zeros((b, n_out), np.int32)
        v_out = np.zeros((b, n_out), np.float32)
        raster = np.zeros((b, steps, snn.n_neurons) if record else (1, 1, 1), RASTER_DTYPE)
        membrane = np.zeros((b, snn.n_neurons) if record else (1, 1), np.float32)
        tally = np.zeros((b, snn.n_neurons) if count_neurons else (1, 1), np.int32)
        updates = np.zeros((b if count_neurons else 1, n_stages), np.int64)
        ticks = np.zeros((b if profile else 1, n_stages, len(PHASES)), np.int64)
        began, began_ticks = time.perf_counter(), ticks_now()
        if plan is not None:
            first_spike[:], exit_step[:] = -1, -1
            lockstep.run_lockstep(snn, plan, net, cfg, xb, first_sample + start, spikes, spike_amounts, step_synops,
                                  decisions, v_out, n_threads, buffers)
        else:
            run_batch(xb, first_sample + start, net, cfg, spikes, spike_amounts, step_synops, decisions, first_spike,
                      exit_step, counts, v_out, raster, membrane, record, tally, updates, count_neurons, ticks,
                      profile, n_threads=n_threads, chunk=_run_chunk_layerwise if layerwise else _run_chunk)
        elapsed = time.perf_counter() - began
        seconds_per_tick = elapsed / max(ticks_now() - began_ticks, 1)
        parts.append(SimulationResult(decisions, spikes, step_synops.sum(axis=2), first_spike, counts, v_out,
                                      tuple(s.name for s in snn.stages), elapsed, exit_step,
                                      raster if record else None, membrane if record else None, spike_amounts,
                                      tally if count_neurons else None, step_synops,
                                      analog_input_synops(snn, x_ir[start:start + batch_size]),
                                      ticks * seconds_per_tick if profile else None,
                                      updates if count_neurons else None))
        if progress is not None:
            progress(start + b, n)
    return SimulationResult.concatenate(parts)


def build(net: Network, config: SimulationConfig | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
          path: str = "auto") -> SpikingNetwork:
    """``snn.build`` with path 'auto' decided by timing each candidate with this engine's kernels."""
    return build_populations(net, config, max_bytes, path, choose=fastest_projection)


@repairing
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


@repairing
def compile_kernels(arithmetics: tuple[str, ...] = ARITHMETICS, corrections: tuple[str, ...] = CORRECTIONS,
                    schedules: tuple[str, ...] = SCHEDULES) -> float:
    """Compile every kernel into Numba's on-disk cache (the first run of a fresh install pays this,
    later processes load the cache in well under a second); returns the seconds it took. Settings
    are run-time values, so one small net covering conv, max-pool gate and dense delivery compiles
    what any net needs, once per arithmetic and input kind (int32 membranes compile apart from
    float32, and in int32 analog pixels and Poisson rates are inputs of two types), per correction
    (offset correction's layer-by-layer kernels are others) and per schedule (the stage-by-stage
    kernels, both deliveries: the 8-channel stride-1 conv's products go by Winograd, the pixels'
    and the strided conv's through unrolled windows); the last two on the net with average pooling
    instead."""
    from ..ir import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU

    began = time.perf_counter()
    net = Network((1, 8, 8), (Conv2d(np.ones((8, 1, 3, 3), np.float32), None, 1, 1, "conv"), ReLU("relu1"),
                              Conv2d(np.ones((2, 8, 3, 3), np.float32), None, 1, 1, "conv2"), ReLU("relu2"),
                              Conv2d(np.ones((2, 2, 3, 3), np.float32), None, 2, 1, "strided"), ReLU("relu3"),
                              MaxPool2d(2, 2, "pool"), Flatten(), Linear(np.ones((2, 8), np.float32), None, "out")))
    pooled_by_average = Network(net.input_shape, tuple(AvgPool2d(2, 2, "pool") if isinstance(layer, MaxPool2d) else layer
                                                       for layer in net.layers))
    x = np.ones((1, 1, 8, 8), np.float32)
    for arithmetic in arithmetics:
        for input_kind in INPUTS:  # int32 reads analog input as int32 pixels, Poisson input as float32 rates
            for correction in corrections:
                network = pooled_by_average if correction == "offset" else net
                config = SimulationConfig(arithmetic=arithmetic, input=input_kind, correction=correction)
                simulate(build(network, config), x, 2, record=True, count_neurons=True)
            if "layer" in schedules:  # kernel-direct convs (the ones with a matrix product); max-pool gates
                for network in (net, pooled_by_average):
                    snn = build(network, SimulationConfig(arithmetic=arithmetic, input=input_kind), path="direct")
                    for delivery in ("dense", "events"):
                        simulate(snn, x, 2, schedule="layer", delivery=delivery)
    return time.perf_counter() - began
