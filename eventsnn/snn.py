"""The spiking network: simulation settings, the populations built from a normalized IR, and results.

Both simulators (``engine`` and ``reference``) take a ``SpikingNetwork`` and return a
``SimulationResult``. Per step t = 1..T, in layer order (zero synaptic delay, eq. 2-4):

    V(t) = V(t-1) + W s_in(t) + b       (analog input: the first layer's W x + b, every step)
    s(t) = [V(t) >= threshold];  reset: V -= threshold * s (subtract) or V = 0 where s (zero)

Max-pool gate: est_i(t) = decay * est_i(t-1) + s_i(t); a window passes s_w(t) = s_k(t) for the
first input k of the window with the largest est. Output layer: accumulates V only; 'softmax'
draws one spike from softmax(V) whenever an external Poisson trigger (probability
``softmax_rate`` per step) fires, 'spikes' makes it an IF layer, 'membrane' reads argmax V.
Decision at t: argmax of output spike counts, ties to the larger V, -1 before the first output
spike ('membrane': argmax V).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np

from . import ann
from .connectivity import (CSR, DEFAULT_MAX_BYTES, avgpool_csr, conv_csr, conv_fan_out, csr_bytes_estimate, engine_order,
                           direct_kernel, kernel_target_table,
                           maxpool_windows, permuted, validate)
from .convert import spiking_roles
from .ir import AvgPool2d, Conv2d, Layer, Linear, MaxPool2d, Network, Shape

RESETS = ("subtract", "zero")
INPUTS = ("analog", "poisson")
OUTPUTS = ("softmax", "spikes", "membrane")
SHIFTS = ("none", "bias", "membrane")

IF, GATE, OUTPUT = 0, 1, 2  # stage kinds, as the kernels see them


@dataclass(frozen=True)
class SimulationConfig:
    """How a converted network is simulated (stored in the model file; any field can be overridden)."""

    reset: str = "subtract"  # reset by subtraction (eq. 4b) or to zero (eq. 4a)
    input: str = "analog"  # constant current W x + b into the first layer, or Poisson spikes p = x
    output: str = "softmax"  # Poisson-triggered softmax, plain IF spikes, or membrane readout
    threshold: float = 1.0
    softmax_rate: float = 0.5  # trigger probability per step
    maxpool_decay: float = 1.0  # of the gate's rate estimate; 1 = running spike count (measured best, docs/results.md)
    shift: str = "none"  # Deng & Gu: 'bias' adds threshold/(2T) to every IF bias; 'membrane' starts V at threshold/2

    def __post_init__(self):
        for name, allowed in (("reset", RESETS), ("input", INPUTS), ("output", OUTPUTS), ("shift", SHIFTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if not (np.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError(f"threshold must be positive, not {self.threshold}")
        if not 0 < self.softmax_rate <= 1:
            raise ValueError(f"softmax_rate is a probability per step in (0, 1], not {self.softmax_rate}")
        if not 0 < self.maxpool_decay <= 1:
            raise ValueError(f"maxpool_decay must lie in (0, 1], not {self.maxpool_decay}")

    def updated(self, **overrides) -> "SimulationConfig":
        """A copy with the given fields replaced; None values are ignored."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown simulation settings {sorted(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


PATHS = ("auto", "csr", "direct")


@dataclass(frozen=True, eq=False)
class Stage:
    """One population of the SNN: an IF layer, a max-pool gate, or the output layer.

    ``path`` says how spikes reach it: 'csr' (rows per presynaptic neuron), 'direct' (a spike
    scatters the shared conv kernel, see ``connectivity.direct_kernel``), or 'dense' (a row of the
    (n_in, n_out) matrix: a CSR row whose targets are all outputs). Arrays that index neurons are
    in engine order (``engine_order``); ``bias`` and ``fan_out`` are in IR order.
    """

    name: str
    kind: int
    path: str
    layer: Layer  # the normalized IR layer whose synapses feed this stage (for the reference)
    in_shape: Shape
    out_shape: Shape
    source_shape: Shape  # shape of the presynaptic population (before any flatten), sets its engine order
    bias: np.ndarray  # float32 per neuron, IR order (zeros for gates and avg-pools)
    fan_out: np.ndarray  # synapses per input neuron, IR order (0 for gates)
    synapses: CSR | None = None  # 'csr' rows; for a gate: input -> windows that contain it
    members: CSR | None = None  # gate only: window -> its inputs, row-major within the window
    kernel: np.ndarray | None = None  # 'direct': (kh, C_in, kw reversed, C_out) float32
    kernel_targets: CSR | None = None  # 'direct': per input pixel, (target, weight, length) runs
    dense: np.ndarray | None = None  # 'dense': (n_in, n_out) float32, rows in engine order
    macs: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def connectivity_bytes(self) -> int:
        parts = (self.synapses, self.members, self.kernel_targets)
        return sum(p.nbytes for p in parts if p is not None) + sum(
            a.nbytes for a in (self.kernel, self.dense) if a is not None)


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


def _gate_stage(layer: MaxPool2d, common: dict) -> Stage:
    """Max-pool gate: input -> windows (CSR) and window -> members in row-major window order."""
    in_order, out_order = engine_order(common["source_shape"]), engine_order(common["out_shape"])
    members, windows = maxpool_windows(layer, common["in_shape"])
    n_in, n_out = len(in_order), len(out_order)
    inverse_in = np.argsort(in_order)
    member_idx = inverse_in[members.indices.reshape(n_out, -1)[out_order]].ravel().astype(np.int32)
    members = validate(CSR(members.indptr, member_idx, members.weights, n_in), n_out, n_in, f"{layer.name} members")
    windows = validate(permuted(windows, in_order, out_order), n_in, n_out, layer.name)
    return Stage(path="csr", fan_out=np.zeros(n_in, np.int64), synapses=windows, members=members, **common)


def _csr_stage(synapses: CSR, common: dict, fan_out: np.ndarray | None = None) -> Stage:
    """A stage fed through CSR rows, renumbered from IR to engine order."""
    in_order, out_order = engine_order(common["source_shape"]), engine_order(common["out_shape"])
    engine_csr = validate(permuted(synapses, in_order, out_order), len(in_order), len(out_order), common["name"])
    return Stage(path="csr", fan_out=np.diff(synapses.indptr) if fan_out is None else fan_out,
                 synapses=engine_csr, **common)


def _conv_stages(layer: Conv2d, common: dict, path: str, max_bytes: int) -> list[Stage]:
    """The candidate stages of a conv layer, refusing an unrolled CSR over the cap."""
    in_shape = common["in_shape"]
    estimate = csr_bytes_estimate(layer, in_shape)
    if path == "csr" and estimate > max_bytes:
        raise ValueError(f"layer '{layer.name}' would need {estimate / 2**20:.0f} MiB of unrolled connectivity, "
                         f"over the cap of {max_bytes / 2**20:.0f} MiB; raise max_bytes or use the kernel-direct "
                         "path (path='direct' or 'auto')")
    fan_out = conv_fan_out(layer, in_shape)
    candidates = []
    if path == "csr" or (path == "auto" and estimate <= max_bytes):
        candidates.append(_csr_stage(conv_csr(layer, in_shape), common, fan_out))
    if path in ("direct", "auto"):
        kernel = direct_kernel(layer)
        candidates.append(Stage(path="direct", fan_out=fan_out, kernel=kernel,
                                kernel_targets=kernel_target_table(layer, in_shape), **common))
    return candidates


def build(net: Network, config: SimulationConfig | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
          path: str = "auto") -> SpikingNetwork:
    """Populations and connectivity of a folded, normalized network.

    ``path`` for conv layers: 'csr' (unrolled; refused with a ValueError before building when it
    would exceed ``max_bytes``), 'direct' (kernel scatter), or 'auto' (whichever is measured to be
    faster on this machine; the two give identical results). Linear layers use dense rows,
    avg-pools and max-pool gates CSR.
    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, not {path!r}")
    config = config or SimulationConfig()
    roles = spiking_roles(net)
    macs = ann.macs(net)
    stages: list[Stage] = []
    source_shape = net.input_shape
    for i, (layer, role) in enumerate(zip(net.layers, roles)):
        if role not in ("hidden", "output", "avgpool") and not isinstance(layer, MaxPool2d):
            continue
        in_shape, out_shape = net.input_shape_of(i), net.shapes[i]
        if not stages and isinstance(layer, MaxPool2d):
            raise ValueError("the network must start with conv2d, linear or avgpool2d, not a max-pool")
        n_out = int(np.prod(out_shape))
        kind = GATE if isinstance(layer, MaxPool2d) else OUTPUT if role == "output" else IF
        if kind == OUTPUT and not np.array_equal(engine_order(out_shape), np.arange(n_out)):
            raise ValueError(f"output layer '{layer.name}' must produce a vector (end with flatten and linear)")
        bias = np.zeros(n_out, np.float32)
        if isinstance(layer, (Conv2d, Linear)):
            bias = np.repeat(layer.bias, n_out // layer.bias.size).astype(np.float32)
        common = dict(name=layer.name, kind=kind, layer=layer, in_shape=in_shape, out_shape=out_shape,
                      source_shape=source_shape, bias=bias, macs=macs[i])
        if isinstance(layer, MaxPool2d):
            stages.append(_gate_stage(layer, common))
        elif isinstance(layer, AvgPool2d):
            stages.append(_csr_stage(avgpool_csr(layer, in_shape), common))
        elif isinstance(layer, Linear):
            dense = np.ascontiguousarray(layer.weight.T[engine_order(source_shape)])
            stages.append(Stage(path="dense", fan_out=np.full(dense.shape[0], n_out, np.int64), dense=dense, **common))
        else:
            candidates = _conv_stages(layer, common, path, max_bytes)
            if len(candidates) > 1:
                from .engine import fastest_stage  # measured with the engine's own kernels

                candidates = [fastest_stage(candidates)]
            stages.append(candidates[0])
        source_shape = out_shape
    return SpikingNetwork(tuple(stages), config, net.input_shape)


def stage_drive(stage: Stage, config: SimulationConfig, steps: int) -> np.ndarray:
    """The constant current an IF population receives every step: bias, plus threshold/(2T) with the bias shift."""
    drive = stage.bias.copy()
    if config.shift == "bias" and (stage.kind == IF or (stage.kind == OUTPUT and config.output == "spikes")):
        drive += np.float32(config.threshold / (2 * steps))
    return drive


def initial_membrane(config: SimulationConfig) -> np.float32:
    return np.float32(config.threshold / 2 if config.shift == "membrane" else 0.0)


@dataclass(eq=False)
class SimulationResult:
    """What a simulation of N samples over T steps produced (S = number of stages)."""

    decisions: np.ndarray  # (N, T) int32: the class decided at each step, -1 for none yet
    spikes: np.ndarray  # (N, S, T) int32: spikes emitted per stage per step
    synops: np.ndarray  # (N, S) int64: synaptic operations into each stage
    first_spike: np.ndarray  # (N,) int32: first step (1-based) with an output spike, -1 if none
    output_counts: np.ndarray  # (N, n_classes) int32: output spikes
    output_membrane: np.ndarray  # (N, n_classes) float32: output membrane potentials at T
    stage_names: tuple[str, ...]
    seconds: float = 0.0
    exit_step: np.ndarray | None = None  # (N,) int32: step a sample stopped early, -1 if it ran to T
    raster: np.ndarray | None = field(default=None, repr=False)  # (N, T, n_neurons) uint8 when recorded
    membrane: np.ndarray | None = field(default=None, repr=False)  # (N, n_neurons) float32 at T, when recorded

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
                    for f in ("raster", "membrane", "exit_step")}
        return SimulationResult(*(np.concatenate([getattr(p, f) for p in parts]) for f in (
            "decisions", "spikes", "synops", "first_spike", "output_counts", "output_membrane")),
            stage_names=first.stage_names, seconds=sum(p.seconds for p in parts), **recorded)
