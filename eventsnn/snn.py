"""The spiking network: simulation settings, the populations built from a normalized IR, and results.

Both simulators (``engine`` and ``reference``) take a ``SpikingNetwork`` and return a
``SimulationResult``. Per step t = 1..T, stage by stage in network order (zero synaptic delay,
eq. 2-4), each stage summing its projections (one per branch of a residual add, else one):

    V(t) = V(t-1) + sum_p W_p s_p(t) + b   (analog input: projections from the input add W x every step)
    s(t) = [V(t) >= threshold];  reset: V -= threshold * s (subtract) or V = 0 where s (zero)

Graded spikes (``spikes='graded'``, Li & Zeng 2022, sinabs' MultiSpike): a neuron with
V >= threshold emits one event carrying k = min(floor(V / threshold), max_spikes), delivered as
k W, and is reset by k * threshold (or to zero). Binary spikes are k <= 1.

Signed spikes (``spikes='signed'``, the signed neuron with memory of Wang et al., IJCAI 2022): a
neuron also emits a spike of -1 (delivered as -W, V += threshold) when V < 0 and its spike count so
far is positive, so its count never goes negative and ends near round(charge / threshold) whatever
the order in which its input arrived (with V(0) = threshold/2). Events carry one bit and a sign.

Offset correction (``correction='offset'``, after Hao et al., ICLR 2023, "Bridging the gap between
ANNs and SNNs by calibrating offset spikes"): the network runs layer by layer. Each IF population
receives its sources' final spike trains for all T steps and runs them once; a neuron that emitted
c spikes and ends at V(T) has received the charge Q = V(T) - V(0) + c threshold, of which it should
have emitted c* = clip(floor((V(0) + Q) / threshold), 0, T max_spikes) (V(0) = threshold/2 makes
this rounding). Where c != c*, V(0) is moved by (c* - c) thresholds and the population runs its T
steps again; that second run is its output. The correction is computed in float64 in both
arithmetics. Latency: 2T steps per population (pipelined layer by layer); SynOps are those of one
run (the currents are kept), neuron updates those of both. No max-pooling; membrane readout only.

Max-pool gate: rate estimates est_i(t) = decay * est_i(t-1) + s_i(t) for the inputs and
est_w(t) = decay * est_w(t-1) + s_w(t) for each window; the window spikes when one of its
inputs spikes at t with est_i(t) > decay * est_w(t-1), carrying s_w(t) = 1 (binary) or, graded,
min(max_spikes, ceil(max of those est_i(t) - decay * est_w(t-1))). With decay 1 (spike counts) a
window's output count is exactly the largest input count, so its rate is the max of the rates. Output layer: accumulates V only; 'softmax'
draws one spike from softmax(V) whenever an external Poisson trigger (probability
``softmax_rate`` per step) fires, 'spikes' makes it an IF layer, 'membrane' reads argmax V.
Decision at t: argmax of output spike counts, ties to the larger V, -1 before the first output
spike ('membrane': argmax V).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, fields, replace
from typing import Callable

import numpy as np

from . import ann, fixed_point, memory
from .connectivity import (CSR, DEFAULT_MAX_BYTES, avgpool_csr, conv_csr, conv_fan_out, csr_build_bytes_estimate,
                           csr_kept_bytes_estimate, direct_kernel, engine_order, identity_csr, kernel_target_table,
                           maxpool_windows, permuted, validate)
from .convert import normalize, spiking_roles, unit_scales
from .rewrite import fold_avgpools
from .ir import (ACTIVATIONS, AFFINE, Add, AvgPool2d, Conv2d, Flatten, Layer, Linear, MaxPool2d, Network, Shape,
                 check_threshold)

RESETS = ("subtract", "zero")
INPUTS = ("analog", "poisson")
OUTPUTS = ("softmax", "spikes", "membrane")
SHIFTS = ("none", "bias", "membrane")
SPIKES = ("binary", "graded", "signed")
ARITHMETICS = ("float32", "int32")  # see fixed_point
AVG_POOLS = ("fold", "neurons")  # average pooling absorbed by the next layer's synapses, or its own IF population
CORRECTIONS = ("none", "offset")  # layer-wise offset-spike correction (``offset`` in the module docstring)
MAX_SPIKES_LIMIT = 255  # an event's amount is stored in one byte
RASTER_DTYPE = np.int16  # a recorded event's amount: 1 .. MAX_SPIKES_LIMIT, or a signed spike's -1

IF, GATE, OUTPUT = 0, 1, 2  # stage kinds, as the kernels see them


@dataclass(frozen=True)
class SimulationConfig:
    """How a converted network is simulated (stored in the model file; any field can be overridden)."""

    reset: str = "subtract"  # reset by subtraction (eq. 4b) or to zero (eq. 4a)
    input: str = "analog"  # constant current W x + b into the first layer, or Poisson spikes p = x
    output: str = "membrane"  # membrane readout (argmax V), Poisson-triggered softmax, or plain IF spikes
    threshold: float = 1.0
    softmax_rate: float = 0.5  # trigger probability per step
    maxpool_decay: float = 1.0  # of the gate's rate estimate; 1 = running spike count (measured best, docs/results.md)
    shift: str = "membrane"  # Deng & Gu: 'membrane' starts V at threshold/2; 'bias' adds threshold/(2T) to every bias
    spikes: str = "graded"  # one event carries k = min(floor(V / threshold), max_spikes) spikes; 'binary'; 'signed'
    max_spikes: int = 16  # the most spikes one graded event carries (ignored for binary spikes)
    levels: int = 8  # graded spikes: each spike is worth 1/levels of its layer's scale (see build; binary: 1)
    avg_pool: str = "fold"  # the next layer integrates the pooled current exactly, or 'neurons' re-quantize it
    arithmetic: str = "float32"  # or 'int32': exact fixed-point sums, the same in any order (``fixed_point``)
    correction: str = "none"  # 'offset': layer by layer, each population runs twice, V(0) corrected by its miscount

    def __post_init__(self):
        for name, allowed in (("reset", RESETS), ("input", INPUTS), ("output", OUTPUTS), ("shift", SHIFTS),
                              ("spikes", SPIKES), ("avg_pool", AVG_POOLS), ("arithmetic", ARITHMETICS),
                              ("correction", CORRECTIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        check_threshold(self.threshold, "threshold")
        low, high = fixed_point.THRESHOLDS
        if self.arithmetic == "int32" and not low <= self.threshold < high:
            raise ValueError(f"int32 arithmetic needs a threshold in [2**-{fixed_point.OUTPUT_FRACTION_BITS}, {high:g}), "
                             f"not {self.threshold}")
        for name in ("softmax_rate", "maxpool_decay"):  # a complex or text value from a file cannot be compared
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), numbers.Real):
                raise ValueError(f"{name} must be a real number, not {getattr(self, name)!r}")
        if not 0 < self.softmax_rate <= 1:
            raise ValueError(f"softmax_rate is a probability per step in (0, 1], not {self.softmax_rate}")
        if not 0 < self.maxpool_decay <= 1:
            raise ValueError(f"maxpool_decay must lie in (0, 1], not {self.maxpool_decay}")
        if isinstance(self.max_spikes, bool) or not isinstance(self.max_spikes, (int, np.integer)) or \
                not 1 <= self.max_spikes <= MAX_SPIKES_LIMIT:
            raise ValueError(f"max_spikes must be an integer in [1, {MAX_SPIKES_LIMIT}], not {self.max_spikes!r}")
        if isinstance(self.levels, bool) or not isinstance(self.levels, (int, np.integer)) or self.levels < 1:
            raise ValueError(f"levels must be a positive integer, not {self.levels!r}")
        if self.correction == "offset" and (self.reset, self.output, self.spikes == "signed") != ("subtract", "membrane", False):
            raise ValueError("offset correction needs reset by subtraction, the membrane readout and binary or graded "
                             f"spikes (its miscount is read from the residual V(T)); found reset={self.reset}, "
                             f"output={self.output}, spikes={self.spikes}")
        if self.spikes == "graded" and self.max_spikes < self.levels:
            raise ValueError(f"levels={self.levels} needs max_spikes >= levels (a neuron must be able to emit its "
                             "layer's full scale in one step)")

    @property
    def spike_limit(self) -> int:
        """The most spikes one event carries: 1 for binary spikes."""
        return int(self.max_spikes) if self.spikes == "graded" else 1

    @property
    def spike_levels(self) -> int:
        """Spikes per unit of a layer's scale: ``levels`` for graded spikes, 1 for binary ones."""
        return int(self.levels) if self.spikes == "graded" else 1

    def updated(self, **overrides) -> "SimulationConfig":
        """A copy with the given fields replaced; None values are ignored."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown simulation settings {sorted(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


PATHS = ("auto", "csr", "direct")
INPUT = -1  # the source index of projections from the network input


@dataclass(frozen=True, eq=False)
class Projection:
    """The synapses from one source population (or the input) into a stage.

    ``path`` says how spikes travel: 'csr' (rows per presynaptic neuron), 'direct' (a spike
    scatters the shared conv kernel, see ``connectivity.direct_kernel``), or 'dense' (a row of the
    (n_in, n_out) matrix: a CSR row whose targets are all outputs). Arrays that index neurons are
    in engine order (``engine_order``); ``fan_out`` is in IR order.
    """

    source: int  # stage index of the presynaptic population, INPUT for the network input
    path: str
    layer: Layer | None  # the normalized IR layer (for the reference); None: identity times ``weight``
    in_shape: Shape  # what the layer reads (after any flatten)
    source_shape: Shape  # shape of the presynaptic population (before any flatten), sets its engine order
    fan_out: np.ndarray  # synapses per presynaptic neuron, IR order (0 for a gate)
    weight: float | np.ndarray = 1.0  # identity projections only: per neuron, IR order
    synapses: CSR | None = None  # 'csr' rows; for a gate: input -> windows that contain it
    kernel: np.ndarray | None = None  # 'direct': (kh, C_in, kw reversed, C_out) float32
    kernel_targets: CSR | None = None  # 'direct': per input pixel, (target, weight, length) runs
    dense: np.ndarray | None = None  # 'dense': (n_in, n_out) float32, rows in engine order
    macs: int = 0

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def connectivity_bytes(self) -> int:
        return sum(p.nbytes for p in (self.synapses, self.kernel_targets) if p is not None) + sum(
            a.nbytes for a in (self.kernel, self.dense) if a is not None)


@dataclass(frozen=True, eq=False)
class Stage:
    """One population of the SNN: an IF layer, a max-pool gate, or the output layer, fed by its
    projections (one per branch of a residual add, otherwise one). ``bias`` is in IR order."""

    name: str
    kind: int
    out_shape: Shape
    bias: np.ndarray  # float32 per neuron, IR order (zeros for gates and avg-pools)
    projections: tuple[Projection, ...]
    potential: np.ndarray | None = None  # calibrated offset of V(0), float32 per neuron, IR order (``calibrate``)

    @property
    def size(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def macs(self) -> int:
        return sum(p.macs for p in self.projections)

    @property
    def path(self) -> str:
        return "+".join(p.path for p in self.projections)

    @property
    def connectivity_bytes(self) -> int:
        return sum(p.connectivity_bytes for p in self.projections)


@dataclass(frozen=True, eq=False)
class SpikingNetwork:
    stages: tuple[Stage, ...]
    config: SimulationConfig
    input_shape: Shape

    @property
    def n_neurons(self) -> int:
        return sum(s.size for s in self.stages)

    @property
    def n_classes(self) -> int:
        return self.stages[-1].size


def _gate_projection(layer: MaxPool2d, common: dict, out_shape: Shape) -> Projection:
    """Max-pool gate: each input -> the windows that contain it (CSR)."""
    in_order, out_order = engine_order(common["source_shape"]), engine_order(out_shape)
    windows = validate(permuted(maxpool_windows(layer, common["in_shape"]), in_order, out_order), len(in_order),
                       len(out_order), layer.name)
    return Projection(path="csr", fan_out=np.zeros(len(in_order), np.int64), synapses=windows, **common)


def _csr_projection(synapses: CSR, common: dict, out_shape: Shape, fan_out: np.ndarray | None = None) -> Projection:
    """A projection through CSR rows, renumbered from IR to engine order."""
    in_order, out_order = engine_order(common["source_shape"]), engine_order(out_shape)
    name = common["layer"].name if common["layer"] is not None else "identity"
    engine_csr = validate(permuted(synapses, in_order, out_order), len(in_order), len(out_order), name)
    return Projection(path="csr", fan_out=np.diff(synapses.indptr) if fan_out is None else fan_out,
                      synapses=engine_csr, **common)


def _conv_projections(layer: Conv2d, common: dict, out_shape: Shape, paths: tuple[str, ...],
                      max_bytes: int) -> list[Projection]:
    """The candidate projections of a conv layer (``paths``: from ``conv_paths``), refusing an
    unrolled CSR over the cap."""
    in_shape = common["in_shape"]
    estimate = csr_build_bytes_estimate(layer, in_shape)  # the peak while building, not only the result
    if paths == ("csr",) and estimate > max_bytes:
        raise ValueError(f"layer '{layer.name}' would need {estimate / 2**20:.0f} MiB to build its unrolled "
                         f"connectivity, over the cap of {max_bytes / 2**20:.0f} MiB; raise max_bytes or use the "
                         "kernel-direct path (path='direct' or 'auto')")
    fan_out = conv_fan_out(layer, in_shape)
    candidates = []
    if "csr" in paths:
        candidates.append(_csr_projection(conv_csr(layer, in_shape), common, out_shape, fan_out))
    if "direct" in paths:
        candidates.append(Projection(path="direct", fan_out=fan_out, kernel=direct_kernel(layer),
                                     kernel_targets=kernel_target_table(layer, in_shape), **common))
    return candidates


def _population_of(net: Network, index: int) -> int:
    """The IR layer whose population emits what layer ``index`` outputs (through flattens and
    activations), -1 for the network input."""
    while index >= 0 and isinstance(net.layers[index], (Flatten,) + ACTIVATIONS):
        index = net.inputs[index][0]
    return index


class _Builder:
    """Turns the layers of a folded, normalized network into stages, in the network's order."""

    def __init__(self, net: Network, paths: dict[int, tuple[str, ...]], max_bytes: int, choose: Chooser | None,
                 macs: dict[str, int]):
        self.net, self.paths, self.max_bytes, self.choose, self.macs = net, paths, max_bytes, choose, macs
        self.stage_of: dict[int, int] = {INPUT: INPUT}  # IR layer of a population -> stage index
        self.n_stages = 0
        self.gated: set[int] = set()  # populations read by a max-pool gate

    def source(self, index: int) -> dict:
        """What a layer reading IR layer ``index`` needs to know about its presynaptic population."""
        population = _population_of(self.net, index)
        if population not in self.stage_of:
            raise ValueError(f"'{self.net.layers[population].name}' is not a spiking population")
        shape = self.net.input_shape if population < 0 else self.net.shapes[population]
        in_shape = self.net.input_shape if index < 0 else self.net.shapes[index]
        return dict(source=self.stage_of[population], source_shape=shape, in_shape=in_shape)

    def projection(self, i: int, out_shape: Shape) -> Projection:
        """The synapses of IR layer i (conv, linear or avg-pool) into a population of ``out_shape``."""
        layer = self.net.layers[i]
        common = dict(layer=layer, macs=self.macs.get(layer.name, 0), **self.source(self.net.inputs[i][0]))
        if isinstance(layer, AvgPool2d):
            return _csr_projection(avgpool_csr(layer, common["in_shape"]), common, out_shape)
        if isinstance(layer, Linear):
            dense = np.ascontiguousarray(layer.weight.T[engine_order(common["source_shape"])])
            return Projection(path="dense", fan_out=np.full(dense.shape[0], dense.shape[1], np.int64), dense=dense,
                              **common)
        candidates = _conv_projections(layer, common, out_shape, self.paths[i], self.max_bytes)
        if len(candidates) > 1:  # 'auto': the chooser measures them; without one, kernel-direct (usually faster)
            return self.choose(candidates, int(np.prod(out_shape))) if self.choose else candidates[-1]
        return candidates[0]

    def identity(self, index: int, weight: float | tuple[float, ...], out_shape: Shape) -> Projection:
        """The identity branch of a residual add: each neuron of layer ``index`` to the same neuron
        (with the add's weight, one number or one per channel)."""
        common = self.source(index)
        n = int(np.prod(out_shape))
        weights = per_neuron(weight, n)
        return _csr_projection(identity_csr(weights), dict(layer=None, weight=weights, macs=n, **common), out_shape)

    def stage(self, i: int, role: str) -> Stage:
        net, layer, out_shape = self.net, self.net.layers[i], self.net.shapes[i]
        n_out = int(np.prod(out_shape))
        kind = GATE if role == "gate" else OUTPUT if role == "output" else IF
        if kind == OUTPUT and not np.array_equal(engine_order(out_shape), np.arange(n_out)):
            raise ValueError(f"output layer '{layer.name}' must produce a vector (end with flatten and linear)")
        bias = np.zeros(n_out, np.float32)
        if role == "gate":
            common = dict(layer=layer, **self.source(net.inputs[i][0]))
            if common["source"] == INPUT:
                raise ValueError("the network must start with conv2d, linear or avgpool2d, not a max-pool")
            if common["source"] in self.gated:
                raise ValueError(f"max-pool '{layer.name}' reads a population another max-pool reads already")
            self.gated.add(common["source"])
            projections = [_gate_projection(layer, common, out_shape)]
        elif isinstance(layer, Add):  # a residual join, or an output summing parts (role 'add' or 'output')
            projections = []
            for j, w in zip(net.inputs[i], layer.input_weights(len(net.inputs[i]))):
                if j >= 0 and isinstance(net.layers[j], AFFINE):
                    projections.append(self.projection(j, out_shape))
                    bias += _neuron_bias(net.layers[j], n_out)
                else:
                    projections.append(self.identity(j, w, out_shape))
        else:
            projections = [self.projection(i, out_shape)]
            if isinstance(layer, AFFINE):
                bias = _neuron_bias(layer, n_out)
        self.stage_of[i] = self.n_stages
        self.n_stages += 1
        return Stage(name=layer.name, kind=kind, out_shape=out_shape, bias=bias, projections=tuple(projections))


def _neuron_bias(layer: Conv2d | Linear, n_out: int) -> np.ndarray:
    """The bias of every neuron (IR order: each channel's bias over its pixels)."""
    return per_neuron(layer.bias, n_out)


def per_neuron(per_channel: np.ndarray, n: int) -> np.ndarray:
    """A per-channel value for each of the n neurons of a population, IR order (float32)."""
    per_channel = np.asarray(per_channel)
    return np.repeat(per_channel, n // per_channel.size).astype(np.float32)


Chooser = Callable[[list[Projection], int], Projection]  # (candidate paths of one layer, its outputs) -> the one to use


def build(net: Network, config: SimulationConfig | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
          path: str = "auto", choose: Chooser | None = None) -> SpikingNetwork:
    """Populations and connectivity of a folded, normalized network.

    With graded spikes and ``config.levels`` = L > 1 every population's scale is divided by L (inputs and biases
    times L, the weights between populations unchanged), so a spike is worth 1/L of the scale and
    a graded event of up to L spikes per step covers the full range: one step resolves what binary
    spikes need L steps for (with the membrane shift and T = 1 this is a QCFS quantizer with L
    levels). See ``build_spiking`` for ``path``, ``max_bytes`` and ``choose``.
    """
    config = config or SimulationConfig()
    spiking_roles(net)  # a clear refusal before normalizing what cannot be built
    # scales of 1 / levels (1 for binary spikes); this also folds an add's weight for an affine branch into
    # that layer, where its projection applies it
    return build_spiking(normalize(net, unit_scales(net), config.spike_levels), config, max_bytes, path, choose)


def check_spikes_fit(net: Network, config: SimulationConfig) -> None:
    """Refuse signed spikes and offset correction on a network with max-pooling: a gate counts its
    inputs' spikes up, never down, and has no membrane whose V(0) could be corrected."""
    gates = [layer.name for layer, role in zip(net.layers, spiking_roles(net)) if role == "gate"]
    if config.spikes == "signed" and gates:
        raise ValueError(f"signed spikes need a network without max-pooling ({gates[0]} is one); "
                         "use binary or graded spikes, or average pooling")
    if config.correction == "offset" and gates:
        raise ValueError(f"offset correction needs a network without max-pooling ({gates[0]} is one); "
                         "use average pooling, or correction='none'")


def build_spiking(net: Network, config: SimulationConfig, max_bytes: int = DEFAULT_MAX_BYTES, path: str = "auto",
                  choose: Chooser | None = None) -> SpikingNetwork:
    """Populations and connectivity of a network already in units of spikes for ``config``
    (``convert.normalize`` with ``levels=config.spike_levels``, as ``ConvertedModel.build`` does).

    ``path`` for conv layers: 'csr' (unrolled; refused with a ValueError before building when it
    would exceed ``max_bytes``), 'direct' (kernel scatter), or 'auto': ``choose`` picks among the
    candidates (``engine.fastest_projection`` times the engine's own kernels on this machine;
    without it, kernel-direct); the paths give identical results. Linear layers use dense rows,
    avg-pools, max-pool gates and the identity branches of residual adds CSR.
    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, not {path!r}")
    net, macs = _pooling_folded(net, config)
    check_spikes_fit(net, config)
    if config.arithmetic == "int32":
        net = fixed_point.quantized(net, config.input == "analog", spiking_roles(net))
    paths = conv_paths(net, path, max_bytes, measured=choose is not None)
    memory.check(_build_bytes(net, paths), f"building the spiking network of {net.input_shape} input")
    builder = _Builder(net, paths, max_bytes, choose, macs)
    stages = [builder.stage(i, role) for i, role in enumerate(spiking_roles(net))
              if role in ("hidden", "add", "output", "avgpool", "gate")]
    return SpikingNetwork(tuple(stages), config, net.input_shape)


def _pooling_folded(net: Network, config: SimulationConfig) -> tuple[Network, dict[str, int]]:
    """The network to build (average poolings absorbed where ``config.avg_pool`` says so) and the
    ANN's multiply-accumulates per layer name, those of an absorbed pooling counted with its reader."""
    macs = {layer.name: m for layer, m in zip(net.layers, ann.macs(net))}
    if config.avg_pool == "fold":
        net, absorbed = fold_avgpools(net)
        for reader, pool in absorbed.items():
            macs[reader] += macs.pop(pool, 0)  # a pooling read by several layers is counted once
    return net, macs


NEURON_BYTES = 64  # per neuron: bias, drive, index maps, state and scratch (float32/int64)


# 'auto' times an unrolled CSR against kernel-direct only below this build peak: kernel-direct won on
# every conv layer measured (docs/performance.md), and unrolling a large layer only to time it cost
# 50 s and 1.9 GB on a CIFAR ResNet-18
MEASURED_CSR_BYTES = 256 << 20


def conv_paths(net: Network, path: str = "auto", max_bytes: int = DEFAULT_MAX_BYTES,
               measured: bool = True) -> dict[int, tuple[str, ...]]:
    """The connectivity each conv layer will be built with (IR index -> 'csr' and/or 'direct').

    'csr' and 'direct' are taken as asked. 'auto' with ``measured`` offers the unrolled CSR beside
    kernel-direct (to be timed, the slower one freed) only for layers whose CSR is under
    ``max_bytes`` and ``MEASURED_CSR_BYTES`` and whose build still fits in the memory limit,
    beside everything built before it, layers taken in order; the others, and every layer when
    nothing is measured, get kernel-direct alone. So a large net is built within the memory the
    machine has, and without unrolling layers only to time them. Grouped and depthwise convs are
    always unrolled (kernel-direct scatters into every output channel; they have few synapses)."""
    convs = [i for i, layer in enumerate(net.layers) if isinstance(layer, Conv2d)]
    grouped = {i: ("csr",) for i in convs if net.layers[i].groups > 1}  # few synapses; kernel-direct is dense only
    convs = [i for i in convs if i not in grouped]
    if path != "auto" or not measured:
        return {**grouped, **{i: ("direct" if path == "auto" else path,) for i in convs}}
    room = memory.limit_bytes() - _build_bytes(net, {**grouped, **{i: ("direct",) for i in convs}})
    paths = dict(grouped)
    for i in convs:
        layer, in_shape = net.layers[i], net.input_shape_of(i)
        if csr_build_bytes_estimate(layer, in_shape) <= min(max_bytes, MEASURED_CSR_BYTES, room):
            paths[i] = ("csr", "direct")
            room -= csr_kept_bytes_estimate(layer, in_shape)  # if the CSR is chosen, it stays
        else:
            paths[i] = ("direct",)
    return paths


def build_bytes_estimate(net: Network, path: str = "auto", max_bytes: int = DEFAULT_MAX_BYTES,
                         measured: bool = True, config: SimulationConfig | None = None) -> int:
    """An upper bound of what ``build_spiking`` allocates, from the shapes alone (checked before
    building), for the paths ``conv_paths`` gives each conv layer (see ``_build_bytes``)."""
    net, _ = _pooling_folded(net, config or SimulationConfig())
    return _build_bytes(net, conv_paths(net, path, max_bytes, measured))


def _build_bytes(net: Network, paths: dict[int, tuple[str, ...]]) -> int:
    """Per-neuron arrays, dense weights (and their transposed copy), kernel-direct tables, and the
    unrolled CSRs: each one's memory once built, plus the largest extra any of them needs while
    it is built (they are built one after another)."""
    total = NEURON_BYTES * (int(np.prod(net.input_shape)) + sum(int(np.prod(s)) for s in net.shapes))
    building = 0
    for i, layer in enumerate(net.layers):
        in_shape = net.input_shape_of(i)
        if isinstance(layer, Linear):
            total += 2 * layer.weight.nbytes
        elif isinstance(layer, Conv2d) and "direct" in paths[i]:  # the kernel, reordered, and its target table
            total += layer.weight.nbytes + 150 * int(np.prod(in_shape[1:])) * int(np.prod(layer.weight.shape[2:]))
        if isinstance(layer, (AvgPool2d, MaxPool2d)) or (isinstance(layer, Conv2d) and "csr" in paths[i]):
            kept = csr_kept_bytes_estimate(layer, in_shape)
            total += kept
            building = max(building, csr_build_bytes_estimate(layer, in_shape) - kept)
    return total + building


def stage_drive(stage: Stage, config: SimulationConfig, steps: int) -> np.ndarray:
    """The constant current an IF population receives every step: bias, plus threshold/(2T) with the bias shift."""
    drive = stage.bias.copy()
    if config.shift == "bias" and (stage.kind == IF or (stage.kind == OUTPUT and config.output == "spikes")):
        drive += np.float32(config.threshold / (2 * steps))
    return fixed_point.on_grid(drive, stage_bits(stage)) if config.arithmetic == "int32" else drive


def analog_input_synops(snn: SpikingNetwork, x: np.ndarray) -> np.ndarray:
    """(N, stages) operations of the analog input's constant current, computed once per sample:
    the fan-out of every non-zero pixel into each stage that reads the input (0 with Poisson input,
    whose spikes are counted as events)."""
    ops = np.zeros((len(x), len(snn.stages)), np.int64)
    if snn.config.input == "analog":
        nonzero = (np.asarray(x).reshape(len(x), -1) != 0).astype(np.int64)
        for s, stage in enumerate(snn.stages):
            for p in stage.projections:
                if p.source == INPUT:
                    ops[:, s] += nonzero @ p.fan_out
    return ops


def initial_membrane(config: SimulationConfig) -> np.float32:
    return np.float32(config.threshold / 2 if config.shift == "membrane" else 0.0)


def stage_bits(stage: Stage) -> int:
    """int32 arithmetic: the grid (2**-bits) of a population's membranes (``fixed_point``)."""
    return fixed_point.stage_bits(stage.kind == OUTPUT)


def threshold_of(config: SimulationConfig) -> np.float32:
    """The threshold the simulators use (on the grid in int32 arithmetic)."""
    if config.arithmetic == "int32":  # on the coarsest grid, so on every population's
        return fixed_point.on_grid(config.threshold, fixed_point.OUTPUT_FRACTION_BITS)[()]
    return np.float32(config.threshold)


def stage_initial_membrane(stage: Stage, config: SimulationConfig) -> np.ndarray:
    """V(0) of each neuron of a stage (IR order): the setting's, plus any calibrated offset."""
    v0 = np.full(stage.size, initial_membrane(config), np.float32)
    v0 = v0 if stage.potential is None else v0 + stage.potential
    return fixed_point.on_grid(v0, stage_bits(stage)) if config.arithmetic == "int32" else v0


@dataclass(eq=False)
class SimulationResult:
    """What a simulation of N samples over T steps produced (S = number of stages)."""

    decisions: np.ndarray  # (N, T) int32: the class decided at each step, -1 for none yet
    spikes: np.ndarray  # (N, S, T) int32: events emitted per stage per step (graded: each counts once)
    synops: np.ndarray  # (N, S) int64: synaptic operations into each stage
    first_spike: np.ndarray  # (N,) int32: first step (1-based) with an output spike, -1 if none
    output_counts: np.ndarray  # (N, n_classes) int32: output spikes
    output_membrane: np.ndarray  # (N, n_classes) float32: output membrane potentials at T
    stage_names: tuple[str, ...]
    seconds: float = 0.0
    exit_step: np.ndarray | None = None  # (N,) int32: step a sample stopped early, -1 if it ran to T
    raster: np.ndarray | None = field(default=None, repr=False)  # (N, T, n_neurons) int16: what each event carried, when recorded
    membrane: np.ndarray | None = field(default=None, repr=False)  # (N, n_neurons) float32 at T, when recorded
    spike_amounts: np.ndarray | None = None  # (N, S) int64: spikes per stage weighted by what each event carries
    neuron_counts: np.ndarray | None = field(default=None, repr=False)  # (N, n_neurons) int32 spikes, when counted
    synops_per_step: np.ndarray | None = field(default=None, repr=False)  # (N, S, T) int64 SynOps into each stage per step
    input_synops: np.ndarray | None = field(default=None, repr=False)  # (N, S) int64 of those, the analog input's (step 1)
    phase_seconds: np.ndarray | None = field(default=None, repr=False)  # (N, S, phases) CPU seconds, when profiled
    membrane_updates: np.ndarray | None = field(default=None, repr=False)  # (N, S) int64 membranes changed, when counted

    def __post_init__(self):
        if self.spike_amounts is None:  # binary spikes: every event carries one
            self.spike_amounts = self.spikes.sum(axis=2, dtype=np.int64)

    @property
    def steps(self) -> int:
        return self.decisions.shape[1]

    def predictions(self) -> np.ndarray:
        return self.decisions[:, -1]

    def accuracy_per_step(self, labels: np.ndarray) -> np.ndarray:
        return (self.decisions == np.asarray(labels)[:, None]).mean(axis=0)

    def accuracy(self, labels: np.ndarray) -> float:
        return float(self.accuracy_per_step(labels)[-1])

    @staticmethod
    def concatenate(parts: list["SimulationResult"]) -> "SimulationResult":
        first = parts[0]
        recorded = {f: None if getattr(first, f) is None else np.concatenate([getattr(p, f) for p in parts])
                    for f in ("raster", "membrane", "exit_step", "spike_amounts", "neuron_counts", "synops_per_step",
                              "input_synops", "phase_seconds", "membrane_updates")}
        return SimulationResult(*(np.concatenate([getattr(p, f) for p in parts]) for f in (
            "decisions", "spikes", "synops", "first_spike", "output_counts", "output_membrane")),
            stage_names=first.stage_names, seconds=sum(p.seconds for p in parts), **recorded)


def _largest_input_current(snn: SpikingNetwork, largest_input: float) -> float:
    """An upper bound of the current a neuron fed by the input receives: its bias and all its input
    weights' magnitudes times the largest input."""
    bound = 0.0
    for stage in snn.stages:
        fan_in = sum(_fan_in_magnitude(p) for p in stage.projections if p.source == INPUT)
        if fan_in:
            bound = max(bound, float(np.abs(stage.bias).max(initial=0.0)) + fan_in * largest_input)
    return bound


def _fan_in_magnitude(p: Projection) -> np.ndarray | float:
    """Per output neuron (or its largest, for a kernel) the sum of |weights| that reach it."""
    if p.path == "direct":
        return float(np.abs(p.kernel.astype(np.float64)).sum(axis=(0, 1, 2)).max(initial=0.0))
    if p.path == "dense":
        return float(np.abs(p.dense.astype(np.float64)).sum(axis=0).max(initial=0.0))
    return float(np.bincount(p.synapses.indices, np.abs(p.synapses.weights.astype(np.float64)),
                             p.synapses.n_cols).max(initial=0.0))


def check_simulation_args(snn: SpikingNetwork, x: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Validate what a simulator is given; return x as (N, n_input) float32 in IR (C) order."""
    x = np.asarray(x)
    if x.ndim != len(snn.input_shape) + 1 or tuple(x.shape[1:]) != snn.input_shape:
        raise ValueError(f"input must have shape (N, {', '.join(map(str, snn.input_shape))}), found {x.shape}")
    ann.check_floating(x)
    x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("input contains NaN or Inf")
    if snn.config.input == "poisson" and x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("Poisson input needs intensities in [0, 1] (they are spike probabilities per step)")
    if snn.config.arithmetic == "int32" and snn.config.input == "analog":
        x = fixed_point.quantized_input(x)
        fixed_point.check_input_current(_largest_input_current(snn, float(np.max(np.abs(x), initial=0.0))))
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, not {steps!r}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), not {seed!r}")
    return x
