"""Batch lock-step: a batch simulated stage by stage, a sub-batch's samples and steps at once
(``simulate``'s ``schedule='layer'``).

A feed-forward SNN's stage s reads, at step t, what its sources emitted at step t, so it can run its T
steps once its sources have run theirs: the spikes are those of the step-major loop. Run this way,
a projection's input is the count tensor (samples x steps x source neurons) of its source, and it is
delivered in the cheaper of two ways, chosen per projection and batch:
- dense: one matrix product over the counts (BLAS; a convolution's input unrolled into its
  windows first, or a 3 x 3 stride-1 one of 8 or more channels as Winograd's F(2x2, 3x3),
  ``winograd``), as the ANN computes the layer;
- events: each sample's and step's events scattered through the projection's synapses, as the
  step-major loop does (``delivery._deliver``).
The choice is measured, not guessed: the first time a projection delivers, both ways are timed on
rows spread over its input (``Plan.goes_dense``), and from then on it takes the way its input's
number of rows and events make cheaper. A conv whose weights are constant over f x f blocks (one
that absorbed an average pooling) is multiplied as an f x f sum pooling and a conv f times
smaller each way, f^2 times fewer multiplications.
int32 arithmetic multiplies in float64, where these integer sums are exact (a product whose sums
could leave that range delivers as events), and wraps into int32 as the engine's adds do: every
delivery order gives the same spikes. In float32 the two orders round differently (within
float32's rounding; exact on weights and inputs on a dyadic grid). Matrix products run on the
run's ``threads`` with BLAS held to one thread (``blas``), as the Numba kernels do.

Max-pool gates run sample by sample through their steps, window by window: each window takes the
largest rate among its inputs that spike, as ``gates._gate`` does event by event. Not covered
(``refusal`` says why; use the step-major loop): signed spikes, the softmax and spike readouts,
early exit, profiles, records and neuron counts, offset correction.
"""

from __future__ import annotations

import time
import weakref

import numpy as np
from numba import njit

from .. import fixed_point
from . import blas, winograd
from ..connectivity import engine_order
from ..kernel_cache import CACHE
from ..snn import GATE, INPUT, OUTPUT, RASTER_DTYPE, Projection, SpikingNetwork, stage_bits
from .delivery import _add_row, _deliver
from .loop import _copy, _poisson_events, in_threads, kept_scratch
from .neurons import _fire_step, _integrate, _scale
from .packing import MEMBRANE
from .readout import _decide

WINDOW_BYTES = 16 << 20  # a Winograd conv's tiles and products are transformed and multiplied this much at a time
THREAD_WINDOW_BYTES = 2 << 20  # a thread's block of unrolled windows, about its core's L2 cache
STAGE_BYTES = 256 << 20  # a sub-batch's per-stage tensors (currents, counts) stay within about this


def refusal(snn: SpikingNetwork, record: bool, count_neurons: bool, profile: bool, early_exit: bool) -> str | None:
    """Why this run cannot go stage by stage (None: it can)."""
    cfg = snn.config
    reasons = [(cfg.spikes == "signed", "signed spikes"),
               (cfg.output != "membrane", f"the {cfg.output} readout"), (early_exit, "early exit"),
               (profile, "profile"), (record, "record"), (count_neurons, "count_neurons"),
               (cfg.correction != "none", "offset correction")]
    found = [what for refused, what in reasons if refused]
    return ", ".join(found) if found else None


# ----------------------------------------------------------------------------------------- kernels

@njit(cache=CACHE, nogil=True, error_model="numpy")
def _unroll(src, c, h, w, kh, kw, stride, pad, ho, wo, f, out):
    """src's rows (channel-last images of f h x f w pixels) unrolled into windows:
    out[r*ho*wo + pixel] = the (kh, kw, c) window of that output pixel (zero padding) in the image
    summed over f x f blocks (f = 1: the image itself). Each image is first copied into a padded
    one in out's type, so that every row of a window is one plain copy of kw c values."""
    wp = w + 2 * pad
    padded = np.zeros((h + 2 * pad) * wp * c, out.dtype)  # its border stays zero
    span = kw * c
    for r in range(len(src)):
        _pad_image(src[r], c, h, w, pad, f, padded)
        base = r * ho * wo
        for oy in range(ho):
            for ox in range(wo):
                window = out[base + oy * wo + ox]
                for i in range(kh):
                    start = ((oy * stride + i) * wp + ox * stride) * c
                    line, pixels = window[i * span:(i + 1) * span], padded[start:start + span]
                    for e in range(span):  # a loop of known length: faster here than _copy's
                        line[e] = pixels[e]


@njit(cache=CACHE, inline="always", error_model="numpy")
def _pad_image(image, c, h, w, pad, f, padded):
    """The inside of ``padded`` ((h + 2 pad) x (w + 2 pad) pixels of c channels) = image (f h x f w
    pixels) summed over its f x f blocks."""
    wp, n = w + 2 * pad, w * c
    for y in range(h):
        line = padded[((y + pad) * wp + pad) * c:((y + pad) * wp + pad + w) * c]
        if f == 1:
            _copy(line, image[y * n:(y + 1) * n])
            continue
        line[:] = 0
        for a in range(f):
            row = image[(y * f + a) * n * f:(y * f + a + 1) * n * f]
            for x in range(w):
                for b in range(f):
                    _add_row(line[x * c:(x + 1) * c], row[(x * f + b) * c:(x * f + b + 1) * c], line[0], False)


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _add_diagonal(lo, hi, src, weights, fresh, current):
    """Rows lo .. hi-1: current[r] += src[r] * weights, elementwise (``fresh``: current[r] = that);
    an int32 current takes int64 products and sums truncated to int32 (wrapping as its adds do)."""
    for r in range(lo, hi):
        row, target = src[r], current[r]
        if fresh:
            for j in range(row.size):
                target[j] = row[j] * weights[j]
        else:
            for j in range(row.size):
                target[j] += row[j] * weights[j]


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _count_synops(lo, hi, src, fan_out, synops):
    """synops[r] += the fan-out of row r's non-zero inputs (one SynOp per synapse an event reaches)."""
    part = _tally_part(fan_out)
    for r in range(lo, hi):
        synops[r] += _reached(src[r], fan_out, part)


@njit(cache=CACHE, inline="always")
def _tally_part(fan_out):
    """Inputs whose fan-outs add up within int32 at most."""
    return (2 ** 31 - 1) // (np.int64(fan_out.max()) + 1) if fan_out.size else 1


@njit(cache=CACHE, inline="always")
def _reached(row, fan_out, part):
    """The synapses row's events reach: the fan-out of its non-zero entries, summed in int32 over
    ``part`` inputs at a time (``_tally_part``; twice as wide a vector as int64)."""
    ops = 0
    for lo in range(0, row.size, part):
        inputs, fans = row[lo:lo + part], fan_out[lo:lo + part]
        tally = np.int32(0)
        for j in range(inputs.size):
            tally = np.int32(tally + np.int32(fans[j] if inputs[j] != 0 else 0))
        ops += tally
    return ops


@njit(cache=CACHE, inline="always")
def _events_of(row, queue):
    """queue[:n] = the indices of row's non-zero entries; returns n. Branch-free: at the densities
    that matter here a branch per entry would be mispredicted about half the time."""
    n_events = 0
    for j in range(row.size):
        queue[n_events] = j
        n_events += row[j] != 0
    return n_events


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _scatter(lo, hi, p, src, scaled, net, current, synops):
    """Rows lo .. hi-1: each row's non-zero inputs delivered as events through projection p into
    current (rows, n); ``scaled``: events carry their value (graded spikes, analog pixels)."""
    queue = np.empty(src.shape[1] + 1, np.int32)
    amounts = np.empty(src.shape[1] if scaled else 0, current.dtype)
    for r in range(lo, hi):
        n_events = _events_of(src[r], queue)
        if scaled:
            _copy(amounts, src[r])
        synops[r] += _deliver(p, queue, np.int64(0), np.int64(n_events), amounts, net, current[r], np.int64(0))


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _fire_stage(lo, hi, s, net, cfg, current, drive, fan_outs, counts, events, emitted, reached):
    """Samples lo .. hi-1 of IF stage s through all steps (``neurons._fire_step``: V += current[b, t],
    then the fire pass with the drive); what each neuron emitted goes to counts[b, t], and
    reached[b, t, k] = the synapses its events reach through the k-th of ``fan_outs`` (counted
    here, while the counts are in cache). The membranes alternate between two buffers, so that
    each step reads one and writes the other."""
    v0, n = net.off[s], net.off[s + 1] - net.off[s]
    v_init = net.v_init[v0:v0 + n]
    membranes = np.empty((2, n), v_init.dtype)
    parts = np.array([_tally_part(fan_out) for fan_out in fan_outs], np.int64)
    for b in range(lo, hi):
        row = drive[b if drive.shape[0] > 1 else 0]
        for t in range(cfg.steps):
            before = v_init if t == 0 else membranes[(t - 1) % 2]
            amount, fired = _fire_step(before, current[b, t], row, membranes[t % 2], counts[b, t], net.threshold[s],
                                       cfg.subtract, cfg.graded, cfg.max_spikes, net.low[s], net.high[s])
            events[b, t] = fired
            emitted[b] += amount
            for k in range(len(fan_outs)):
                reached[b, t, k] = _reached(counts[b, t], fan_outs[k], parts[k])


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _gate_stage(lo, hi, cfg, window_inputs, src_counts, counts, events, emitted):
    """Samples lo .. hi-1 of a max-pool gate through all steps, window by window: what
    ``gates._gate`` passes event by event (its source's events in, the windows' out), here as
    gathers over the windows' inputs (``window_inputs``: (k, windows), padded with an input that
    never spikes)."""
    n_in, n = src_counts.shape[2], window_inputs.shape[1]
    est, rate = np.empty(n_in), np.empty(n_in + 1)
    window_est, best = np.empty(n), np.empty(n)
    rate[n_in] = -1.0
    for b in range(lo, hi):
        est[:] = 0.0
        window_est[:] = 0.0
        for t in range(cfg.steps):
            if cfg.decay != 1.0:
                _scale(est, cfg.decay)
                _scale(window_est, cfg.decay)
            row = src_counts[b, t]
            for i in range(n_in):  # the inputs' rate estimates; -1 for those that do not spike now
                est[i] += row[i] if cfg.graded else row[i] != 0
                rate[i] = est[i] if row[i] != 0 else -1.0
            best[:] = -1.0
            for j in range(window_inputs.shape[0]):  # one gather per window position: vectorizes
                inputs = window_inputs[j]
                for w in range(n):
                    best[w] = max(best[w], rate[inputs[w]])
            passed, amount = _pass_windows(best, window_est, counts[b, t], cfg.graded, cfg.max_spikes)
            events[b, t] = passed
            emitted[b] += amount


@njit(cache=CACHE, inline="always", error_model="numpy")
def _pass_windows(best, window_est, out, graded, max_spikes):
    """Each window passes a spike when the best of its inputs that spike now is above the window's
    own estimate; graded, the gap rounded up (at most ``max_spikes``). Returns (events, spikes)."""
    passed, emitted = 0, 0
    for w in range(best.size):
        gap = best[w] - window_est[w]
        amount = (min(np.ceil(gap), max_spikes) if graded else 1.0) if gap > 0 else 0.0
        window_est[w] += amount
        out[w] = amount
        passed += gap > 0
        emitted += np.int64(amount)
    return passed, emitted


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _read_out(lo, hi, s, net, cfg, current, drive, decisions, v_out):
    """Samples lo .. hi-1 of the output stage: V += current[b, t] and the drive, a decision per step."""
    v0, n = net.off[s], net.off[s + 1] - net.off[s]
    v = np.empty(n, net.v_init.dtype)
    no_counts = np.zeros(n, np.int32)
    for b in range(lo, hi):
        row = drive[b if drive.shape[0] > 1 else 0]
        _copy(v, net.v_init[v0:v0 + n])
        for t in range(cfg.steps):
            _add_row(v, current[b, t], v[0], False)
            _integrate(v, 0, n, row, 0, net.low[s], net.high[s])
            decisions[b, t] = _decide(no_counts, v, 0, n, MEMBRANE, False)
        for k in range(n):
            v_out[b, k] = v[k] * net.unit[s]


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _poisson_counts(lo, hi, x, seed, first_sample, input_index, counts):
    """Samples lo .. hi-1: counts[b, t, j] = 1 where input j spikes at step t (``loop._poisson_events``)."""
    queue = np.empty(x.shape[1], np.int32)
    for b in range(lo, hi):
        for t in range(counts.shape[1]):
            n_events = _poisson_events(x[b], seed, first_sample + b, t, input_index, queue)
            for e in range(n_events):
                counts[b, t, queue[e]] = 1


# ------------------------------------------------------------------------------------ the schedule

def _in_threads(kernel, rows: int, n_threads: int, *args) -> None:
    """kernel(lo, hi, *args) over rows 0 .. rows-1, one piece per thread (``loop.in_threads``)."""
    in_threads(lambda lo, hi: kernel(lo, hi, *args), rows, n_threads)


def _pooling_factor(weight: np.ndarray, stride: int, padding: int, in_shape: tuple[int, ...]) -> int:
    """f > 1 where a conv is an f x f sum pooling of stride f followed by a conv f times smaller
    (an average pooling absorbed by ``rewrite.fold_avgpools``): its weights are constant over f x f
    blocks. Run so, it takes f^2 times fewer multiplications."""
    out, per_group, kh, kw = weight.shape
    _, h, w = in_shape
    for f in (4, 3, 2):
        if kh % f or kw % f or stride % f or padding % f or h % f or w % f:
            continue
        blocks = weight.reshape(out, per_group, kh // f, f, kw // f, f)
        if np.array_equal(blocks, np.broadcast_to(blocks[:, :, :, :1, :, :1], blocks.shape)):
            return f
    return 1


EXACT_FLOAT64 = 2.0 ** 53  # integers below this add exactly in float64


class _MatrixProduct:
    """A projection as a matrix product: the weight matrix (rows in the order of the unrolled input),
    in float32, or in float64 grid steps for int32 arithmetic; a convolution's geometry, and for a
    3 x 3 stride-1 convolution of 8 or more channels its Winograd-transformed kernels
    (``winograd``: 2.25x fewer multiplications, and no unrolled windows)."""

    def __init__(self, projection: Projection, bits: int | None):
        layer = projection.layer
        if projection.path == "dense":
            matrix = projection.dense
            self.conv, self.pooling, self.kernels = None, 1, None
        else:
            c, h, w = projection.in_shape
            f = _pooling_factor(layer.weight, layer.stride, layer.padding, projection.in_shape)
            weight = layer.weight[:, :, ::f, ::f]
            kh, kw = weight.shape[2:]
            stride, pad, h, w = layer.stride // f, layer.padding // f, h // f, w // f
            ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
            self.conv, self.pooling = (c, h, w, kh, kw, stride, pad, ho, wo, f), f
            matrix = weight.transpose(2, 3, 1, 0).reshape(-1, weight.shape[0])  # the window's (kh, kw, c) order
        self.matrix = np.ascontiguousarray(fixed_point.steps_of(matrix, bits).astype(np.float64) if bits is not None
                                           else matrix.astype(np.float32, copy=False))
        if self.conv is not None:
            self.kernels = (winograd.transformed_kernels(self.matrix, self.conv[0])
                            if winograd.applies(kh, kw, stride, c) else None)

    @staticmethod
    def applies(projection: Projection) -> bool:
        if projection.n_in != int(np.prod(projection.source_shape)):  # reads part of its source: events only
            return False
        return projection.path == "dense" or projection.path == "direct" and projection.layer.groups == 1

    def exact_for(self, largest_input: float) -> bool:
        """int32: whether every sum of the product stays exact in float64 for inputs up to this (the
        Winograd form is dropped where its sums would not, the unrolled one kept where they do)."""
        if self.kernels is not None and not winograd.exact_for(self.kernels, largest_input):
            self.kernels = None
        return float(np.abs(self.matrix).sum(axis=0).max(initial=0.0)) * largest_input < EXACT_FLOAT64

    def deliver(self, src: np.ndarray, current: np.ndarray, fresh: bool, n_threads: int) -> None:
        """current (rows, n_out) += src (rows, n_in) through the weights (``fresh``: current is
        zero, so the product is written into it); int32 currents wrap."""
        rows = len(src)
        if self.conv is None:
            _add_product(current, blas.matmul(src.astype(self.matrix.dtype), self.matrix, n_threads=n_threads), fresh)
            return
        if self.kernels is not None:
            self._deliver_winograd(src, current, fresh, n_threads)
            return
        c, h, w, kh, kw, stride, pad, ho, wo, f = self.conv
        block = max(1, THREAD_WINDOW_BYTES // (ho * wo * kh * kw * c * self.matrix.itemsize))
        dtype = self.matrix.dtype

        def rows_through_both_phases(lo: int, hi: int) -> None:
            """This thread's rows unrolled and multiplied block by block, each block in its cache."""
            shape = (min(block, hi - lo) * ho * wo, kh * kw * c)
            windows = kept_scratch("windows", int(np.prod(shape)) * dtype.itemsize).view(dtype).reshape(shape)
            for first in range(lo, hi, block):
                last = min(first + block, hi)
                part = windows[:(last - first) * ho * wo]
                _unroll(src[first:last], c, h, w, kh, kw, stride, pad, ho, wo, f, part)
                target = current[first:last].reshape(len(part), -1)
                if fresh and current.dtype == dtype:
                    blas.matmul(part, self.matrix, target)
                else:
                    _add_product(target, blas.matmul(part, self.matrix), fresh)

        in_threads(rows_through_both_phases, rows, n_threads)

    def _deliver_winograd(self, src: np.ndarray, current: np.ndarray, fresh: bool, n_threads: int) -> None:
        """``deliver`` for a 3 x 3 stride-1 convolution (``winograd.convolve``)."""
        c, h, w, _, _, _, pad, _, _, f = self.conv
        # narrow layers run faster in a quarter of the blocks (a thread's block about its core's L2
        # cache), wide ones need the rows to keep their products efficient
        block = min(WINDOW_BYTES, max(WINDOW_BYTES // 4, 8 * self.kernels.nbytes))
        if current.dtype == self.kernels.dtype:
            winograd.convolve(src, self.kernels, (c, h, w, pad, f), current, fresh, n_threads, block)
        else:  # int32: exact float64 sums, wrapped as int32 adds wrap
            product = np.empty(current.shape, self.kernels.dtype)
            winograd.convolve(src, self.kernels, (c, h, w, pad, f), product, True, n_threads, block)
            _add_product(current, product, fresh)


class _Diagonal:
    """An identity projection (a residual add's shortcut: one synapse per neuron, onto the neuron of
    the same position) as its diagonal, multiplied elementwise; in int64 grid steps for int32
    arithmetic (exact products, wrapped into int32 as the engine's adds wrap)."""

    pooling = 1

    def __init__(self, projection: Projection, bits: int | None):
        weights = projection.synapses.weights
        self.weights = fixed_point.steps_of(weights, bits).astype(np.int64) if bits is not None else weights

    @staticmethod
    def applies(projection: Projection) -> bool:
        synapses = projection.synapses
        if projection.path != "csr" or projection.layer is not None:
            return False
        n = len(synapses.indptr) - 1
        return np.array_equal(synapses.indptr, np.arange(n + 1)) and np.array_equal(synapses.indices, np.arange(n))

    def exact_for(self, largest_input: float) -> bool:
        return True  # int64 products of counts and int32 steps

    def deliver(self, src: np.ndarray, current: np.ndarray, fresh: bool, n_threads: int) -> None:
        _in_threads(_add_diagonal, len(src), n_threads, src, self.weights, fresh, current)


def _add_product(current: np.ndarray, product: np.ndarray, fresh: bool) -> None:
    """current += product (``fresh``: current = product); into int32 currents exact float64 or int64
    sums wrap as int32 adds wrap."""
    if current.dtype == np.int32:
        product = product.astype(np.int64).astype(np.int32)
    if fresh:
        current[...] = product
    else:
        current += product


Product = _MatrixProduct | _Diagonal  # a projection's dense delivery


class Buffers:
    """Large scratch arrays handed out again once given back: fresh memory costs page faults on
    first touch, about as much as the work done in it."""

    def __init__(self):
        self.free: list[np.ndarray] = []

    def take(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        fits = [i for i, buffer in enumerate(self.free) if buffer.size >= nbytes]
        buffer = self.free.pop(min(fits, key=lambda i: self.free[i].size)) if fits else np.empty(nbytes, np.uint8)
        return buffer[:nbytes].view(dtype).reshape(shape)

    def give(self, array: np.ndarray) -> None:
        self.free.append(array.base if array.base is not None else array)


class Plan:
    """What a run stage by stage prepares once per network: each projection's matrix product
    (None where it has none, or where int32 sums could leave float64's exact range), its sources'
    fan-out in engine order, the last stage reading each source, and (``delivery='auto'``) each
    projection's measured cost of both deliveries. Holds no reference to the network, so that the
    network can be freed (``plan_for`` keeps plans in a weak dictionary keyed by it)."""

    def __init__(self, snn: SpikingNetwork, delivery: str = "auto"):
        self.delivery = delivery
        self.products = [[self._product(p, stage, snn) for p in stage.projections] for stage in snn.stages]
        self.fan_out = [[p.fan_out[engine_order(p.source_shape)].astype(np.int64) for p in stage.projections]
                        for stage in snn.stages]
        self.last_reader = {p.source: s for s, stage in enumerate(snn.stages) for p in stage.projections}
        # the projections with a product reading each fired stage, whose SynOps its fire stage counts
        self.readers = {s: [(s2, k) for s2, reader in enumerate(snn.stages) for k, p in enumerate(reader.projections)
                            if p.source == s and self.products[s2][k] is not None]
                        for s, stage in enumerate(snn.stages) if stage.kind != GATE}
        self.reader_fan_outs = {s: np.array([self.fan_out[s2][k] for s2, k in readers], np.int32).reshape(
            len(readers), snn.stages[s].size) for s, readers in self.readers.items()}
        self.window_inputs = {s: _window_inputs(stage.projections[0].synapses, stage.size)
                              for s, stage in enumerate(snn.stages) if stage.kind == GATE}
        self.costs: dict[int, tuple[float, float]] = {}  # projection: (seconds per input row dense, per event)
        self.delivered = np.zeros((len(snn.stages), 2), np.int64)  # per stage: events delivered densely, all

    @staticmethod
    def _product(projection: Projection, stage, snn: SpikingNetwork) -> Product | None:
        kind = next((kind for kind in (_MatrixProduct, _Diagonal) if kind.applies(projection)), None)
        if kind is None:
            return None
        if snn.config.arithmetic != "int32":
            return kind(projection, None)
        product = kind(projection, stage_bits(stage))
        largest = 255 if projection.source == INPUT and snn.config.input == "analog" else snn.config.spike_limit
        return product if product.exact_for(largest * product.pooling ** 2) else None

    def goes_dense(self, p: int, product: Product | None, src: np.ndarray, n_events: int, scaled: bool,
                   current: np.ndarray, net, n_threads: int) -> bool:
        """Whether projection p delivers src (rows, n_in) as a matrix product: where it has one, and
        ('auto') where that takes less time than the events would, both timed once (``_time_both``)."""
        if product is None or self.delivery == "events":
            return False
        if self.delivery == "dense":
            return True
        if p not in self.costs:
            self.costs[p] = _time_both(p, product, src, scaled, current, net, n_threads)
        per_row, per_event = self.costs[p]
        return per_row * len(src) <= per_event * n_events


def _window_inputs(windows, n_out: int) -> np.ndarray:
    """(k, n_out): the inputs of each max-pool window (``windows``: CSR input -> windows, engine
    order), padded with n_in, an input that never spikes."""
    n_in = len(windows.indptr) - 1
    order = np.argsort(windows.indices, kind="stable")
    window = windows.indices[order]
    inputs = np.repeat(np.arange(n_in, dtype=np.int32), np.diff(windows.indptr))[order]
    sizes = np.bincount(window, minlength=n_out)
    table = np.full((max(1, sizes.max(initial=0)), n_out), n_in, np.int32)
    table[np.arange(len(window)) - (np.cumsum(sizes) - sizes)[window], window] = inputs
    return table


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plan_for(snn: SpikingNetwork, delivery: str) -> Plan:
    """The network's plan, kept while the network lives (so its costs are measured once)."""
    plans = _PLANS.setdefault(snn, {})
    if delivery not in plans:
        plans[delivery] = Plan(snn, delivery)
    return plans[delivery]


CALIBRATION_ROWS = 32  # input rows (sample-steps, spread over the batch) on which both deliveries are timed
CALIBRATION_REPEATS = 3  # timings of each, the fastest kept: a single one swung with the machine's load


def _time_both(p: int, product: Product, src: np.ndarray, scaled: bool, current: np.ndarray, net,
               n_threads: int) -> tuple[float, float]:
    """Seconds per input row of the matrix product and per event of the scatter, timed on rows
    spread over src (into scratch): the best of CALIBRATION_REPEATS, after one untimed run of each on
    the same rows (which loads the kernels, starts the threads and touches the scratch they keep)."""
    rows = src[np.linspace(0, len(src) - 1, min(len(src), CALIBRATION_ROWS)).astype(np.int64)]
    scratch, synops = np.zeros((len(rows),) + current.shape[1:], current.dtype), np.zeros(len(rows), np.int64)
    dense, events = np.inf, np.inf
    for repeat in range(1 + CALIBRATION_REPEATS):
        began = time.perf_counter()
        product.deliver(rows, scratch, True, n_threads)
        middle = time.perf_counter()
        _in_threads(_scatter, len(rows), n_threads, p, rows, scaled, net, scratch, synops)
        if repeat:
            dense, events = min(dense, middle - began), min(events, time.perf_counter() - middle)
    return dense / len(rows), events / max(np.count_nonzero(rows), 1)


def _sub_batch(snn: SpikingNetwork, n: int, steps: int) -> int:
    """Samples run together: as many as keep the largest stage's per-sample tensors within STAGE_BYTES."""
    largest = max(stage.size for stage in snn.stages)
    return max(1, min(n, STAGE_BYTES // (steps * largest * TENSOR_BYTES)))


TENSOR_BYTES = 4 + 8 + 8 + 4 + 8  # per neuron, sample and step at most: current, the product's float64 and
#                                   int64 and int32 copies (int32), a linear layer's float64 input


def scratch_bytes(snn: SpikingNetwork, n: int, steps: int, threads: int = 1) -> int:
    """What a run of n samples stage by stage allocates besides its results, at most: a sub-batch's
    per-stage tensors (``TENSOR_BYTES``), every stage's counts, each thread's block of unrolled
    windows and its Winograd scratch (together a block; each at least one sample-step's; kept by
    the threads) and the gates' scratch."""
    sub = _sub_batch(snn, n, steps)
    largest = max(stage.size for stage in snn.stages)
    counts = np.dtype(RASTER_DTYPE).itemsize * (snn.n_neurons + int(np.prod(snn.input_shape)))
    row = max([0] + [_window_bytes(p, stage) for stage in snn.stages for p in stage.projections])
    windows = max(1, threads) * (THREAD_WINDOW_BYTES + 2 * row) + WINDOW_BYTES
    return sub * steps * (largest * TENSOR_BYTES + counts) + windows + 64 * snn.n_neurons


def _window_bytes(projection: Projection, stage) -> int:
    """One sample-step's unrolled windows of a conv, or its Winograd tiles and products and their
    transformed-back copy, in float64 (int32's type)."""
    if projection.path != "direct" or len(stage.out_shape) != 3:
        return 0
    o, c, kh, kw = projection.layer.weight.shape
    ho, wo = stage.out_shape[1:]
    tiles = 16 * ((ho + 1) // 2) * ((wo + 1) // 2) * (c + o) + ho * wo * o
    return 8 * max(ho * wo * c * kh * kw, tiles)


def run_lockstep(snn: SpikingNetwork, plan: Plan, net, cfg, x: np.ndarray, first_sample: int, spikes: np.ndarray,
                 spike_amounts: np.ndarray, step_synops: np.ndarray, decisions: np.ndarray, v_out: np.ndarray,
                 n_threads: int, buffers: Buffers) -> None:
    """One batch (x in engine order) stage by stage, into the step-major loop's outputs (``buffers``:
    scratch kept for the next batch); counts the events each way in ``plan.delivered``."""
    with blas.single_threaded():  # products on the run's threads, no BLAS thread spinning beside the kernels
        steps = cfg.steps
        sub = _sub_batch(snn, len(x), steps)
        for lo in range(0, len(x), sub):
            hi = min(lo + sub, len(x))
            b = hi - lo
            counts: dict[int, np.ndarray] = {}  # (b, steps, size) what each neuron emitted, until its last reader ran
            reached: dict[int, np.ndarray] = {}  # (b, steps, readers) the SynOps a fired stage's events cause
            if cfg.poisson:
                counts[INPUT] = buffers.take((b, steps, x.shape[1]), RASTER_DTYPE)
                counts[INPUT][...] = 0
                _in_threads(_poisson_counts, b, n_threads, x[lo:hi], cfg.seed, first_sample + lo, net.input_index,
                            counts[INPUT])
            for s, stage in enumerate(snn.stages):
                n = net.off[s + 1] - net.off[s]
                if stage.kind == GATE:
                    gated = buffers.take((b, steps, n), RASTER_DTYPE)
                    _in_threads(_gate_stage, b, n_threads, cfg, plan.window_inputs[s], counts[stage.projections[0].source],
                                gated, spikes[lo:hi, s], spike_amounts[lo:hi, s])
                    _release_sources(plan, s, stage, counts, buffers)
                    counts[s] = gated
                    continue
                current, drive = _stage_input(plan, s, stage, net, cfg, x[lo:hi], counts, reached, spikes[lo:hi],
                                              step_synops[lo:hi], buffers, n_threads)
                _release_sources(plan, s, stage, counts, buffers)
                if stage.kind == OUTPUT:
                    _in_threads(_read_out, b, n_threads, s, net, cfg, current, drive, decisions[lo:hi], v_out[lo:hi])
                else:
                    counts[s] = buffers.take((b, steps, n), RASTER_DTYPE)
                    fan_outs = plan.reader_fan_outs[s]
                    reached[s] = np.empty((b, steps, len(fan_outs)), np.int64)
                    _in_threads(_fire_stage, b, n_threads, s, net, cfg, current, drive, fan_outs, counts[s],
                                spikes[lo:hi, s], spike_amounts[lo:hi, s], reached[s])
                buffers.give(current)
                if not cfg.poisson and any(p.source == INPUT for p in stage.projections):
                    buffers.give(drive)  # the analog input's constant current
            for left in counts.values():  # stages nothing reads
                buffers.give(left)


def _stage_input(plan: Plan, s: int, stage, net, cfg, x: np.ndarray, counts: dict, reached: dict,
                 spikes: np.ndarray, step_synops: np.ndarray, buffers: Buffers,
                 n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage s's synaptic currents for a sub-batch (b, steps, n) and its drive ((1 or b), n: the
    bias current, plus the analog input's constant W x, in a buffer of its own)."""
    b, steps = len(x), cfg.steps
    v0, n = net.off[s], net.off[s + 1] - net.off[s]
    current, fresh = buffers.take((b, steps, n), net.v_init.dtype), True  # fresh: nothing delivered yet
    drive = net.drive[v0:v0 + n][None]
    for k, projection in enumerate(stage.projections):
        p = net.proj_ptr[s] + k
        if projection.source == INPUT and not cfg.poisson:
            constant, synops = buffers.take((b, n), current.dtype), np.zeros(b, np.int64)
            _deliver_rows(plan, s, k, p, x, np.count_nonzero(x), True, net, constant, True, synops, n_threads)
            step_synops[:, s, 0] += synops
            constant += drive  # wraps in int32
            drive = constant
            continue
        src = counts[projection.source].reshape(b * steps, -1)
        synops = np.zeros(b * steps, np.int64)
        readers = plan.readers.get(projection.source, [])
        known = reached[projection.source][:, :, readers.index((s, k))].reshape(-1) if (s, k) in readers else None
        delivered = int(np.count_nonzero(src) if projection.source == INPUT else spikes[:, projection.source].sum())
        went_dense = _deliver_rows(plan, s, k, p, src, delivered, cfg.graded, net, current.reshape(b * steps, n),
                                   fresh, synops, n_threads, known)
        fresh = False
        step_synops[:, s] += synops.reshape(b, steps)
        plan.delivered[s] += (delivered if went_dense else 0, delivered)
    if fresh:
        current[...] = 0
    return current, drive


def _release_sources(plan: Plan, s: int, stage, counts: dict, buffers: Buffers) -> None:
    """Give back the counts of the sources no later stage reads."""
    for source in {p.source for p in stage.projections}:
        if plan.last_reader[source] == s and source in counts:
            buffers.give(counts.pop(source))


def _deliver_rows(plan: Plan, s: int, k: int, p: int, src: np.ndarray, n_events: int, scaled: bool, net,
                  current: np.ndarray, fresh: bool, synops: np.ndarray, n_threads: int,
                  known: np.ndarray | None = None) -> bool:
    """current += src through projection p (stage s's k-th; ``fresh``: current holds nothing yet), as
    a matrix product when it has one and it pays, else as events; synops[row] += the row's events'
    fan-out (``known``: as the source's fire stage counted it). Returns whether it went dense."""
    product = plan.products[s][k]
    if plan.goes_dense(p, product, src, n_events, scaled, current, net, n_threads):
        product.deliver(src, current, fresh, n_threads)
        if known is None:
            _in_threads(_count_synops, len(src), n_threads, src, plan.fan_out[s][k], synops)
        else:
            synops += known
        return True
    if fresh:
        current[...] = 0
    _in_threads(_scatter, len(src), n_threads, p, src, scaled, net, current, synops)
    return False
