"""Energy per sample of a converted SNN and of its ANN, priced from the network and its activity.

Every figure is a property of the converted network (its IR layers and populations) and of the
events it emitted, never of how the CPU engine stores things: every ``--path`` prices the same.

Models (``PRESETS``; a JSON file may define another, ``load_energy_model``), all from Horowitz,
"Computing's energy problem", ISSCC 2014, 45 nm:
  fp32     add 0.9 pJ, multiply 3.7 pJ (a MAC 4.6 pJ); weights, membranes, activations 32-bit float.
  int8     int8 multiply 0.2 pJ, int32 add 0.1 pJ (a MAC 0.3 pJ); int8 weights and ANN activations,
           int32 accumulators and membranes.
  +memory  the same arithmetic plus every SRAM access, each array priced by its size on a chip at
           its bit width (in the spirit of Lemaire et al., ICONIP 2022): Horowitz's 10 / 20 / 100 pJ
           per 64-bit read of 8 KiB / 32 KiB / 1 MiB, fitted as 10 pJ x sqrt(bytes / 8 KiB), scaled
           by the bits read; a write costs as much as a read.

What is priced (``CONVENTION`` says it in words, for reports):
  SNN, per synaptic event received: a binary spike is one add of the weight into the membrane; a
    graded event carrying k spikes (1 <= k <= the spike limit L) is, by default ('payload'), one
    multiply of its payload (bit_length(L) bits) by the weight plus one add. A multiplier's energy
    grows with the product of its operand widths (Horowitz's int8 and int32 multipliers both cost
    about 3 fJ per bit product), so a p-bit payload times a weight costs multiply x p / operand bits.
    ``GRADED`` alternatives: 'accumulates' (k adds, what a binary chip spends) and 'mac' (one full
    MAC, as NeuroBench counts any non-binary activation).
  Analog input: the first layer's current, computed once per sample, as full MACs (non-zero pixels).
  ANN: dense (every MAC ``ann.macs`` counts) or zero-skipping (only the MACs whose input is
    non-zero, measured on the same samples); average pooling's operations as adds.
  Memory-aware extras. SNN: per synaptic event the weight read and the membrane's read-modify-write;
    per neuron and step (a time-stepped population) the membrane's read and write and one add; per
    emitted event a write to and a read from the population's event queue (index + payload bits);
    per analog input operation the weight read and the pixel read. ANN: per MAC the weight read and
    the input read; per output activation one write.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .ir import AvgPool2d, Conv2d, Linear, Network
from .snn import GATE, SpikingNetwork, Stage

HOROWITZ = "Horowitz, ISSCC 2014, 45 nm"
SRAM_PJ_64BIT_8KIB = 10.0
GRADED = ("payload", "accumulates", "mac")
CONVENTION = {
    "binary_event": "one add of the weight into the membrane",
    "graded_event": "payload (default): one multiply of the payload (bit_length(L) bits) by the weight, priced as the "
                    "full multiply x payload bits / operand bits, plus one add; alternatives: accumulates (k adds for "
                    "an event of k spikes), mac (one full multiply-accumulate, as NeuroBench counts it)",
    "analog_input": "the first layer's current, computed once per sample, as full MACs over the non-zero pixels",
    "ann": "dense: every MAC; zero-skipping: the MACs whose input is non-zero on the same samples; "
           "average pooling as adds",
    "memory": "(+memory models) SRAM at 10 pJ x sqrt(array bytes / 8 KiB) per 64 bits read or written (Horowitz "
              "2014: 8 KiB 10 pJ, 32 KiB 20 pJ, 1 MiB 100 pJ), arrays at their bit width; SNN: per synaptic event a "
              "weight read and a membrane read-modify-write, per neuron and step a membrane read, write and add, "
              "per emitted event a queue write and read; ANN: per MAC a weight and an input read, per activation "
              "a write (Lemaire et al. 2022, in spirit)",
}


@dataclass(frozen=True)
class EnergyModel:
    """Prices of the arithmetic (and, with ``memory``, of SRAM accesses) at given bit widths."""

    name: str
    add_pj: float  # one add at the accumulator / membrane width
    mult_pj: float  # one full-width multiply (operand_bits x operand_bits)
    operand_bits: int  # the multiplier's operand width (the mantissa's for floats)
    weight_bits: int  # weights and the ANN's activations
    state_bits: int  # membranes and accumulators
    memory: bool = False
    source: str = HOROWITZ

    @property
    def mac_pj(self) -> float:
        return self.add_pj + self.mult_pj

    def payload_mult_pj(self, payload_bits: int) -> float:
        """A multiply of a ``payload_bits``-bit integer by a weight (none for one bit: a gate)."""
        return 0.0 if payload_bits <= 1 else self.mult_pj * min(payload_bits, self.operand_bits) / self.operand_bits

    def sram_pj(self, array_bits: float, word_bits: int) -> float:
        """One access of ``word_bits`` to an SRAM array of ``array_bits`` (0 without the memory terms)."""
        if not self.memory:
            return 0.0
        return SRAM_PJ_64BIT_8KIB * math.sqrt(max(array_bits, word_bits) / 8 / 8192) * word_bits / 64


_FP32 = EnergyModel("fp32", 0.9, 3.7, 24, 32, 32)
_INT8 = EnergyModel("int8", 0.1, 0.2, 8, 8, 32)
PRESETS = {m.name: m for m in (_FP32, _INT8, EnergyModel("fp32+memory", 0.9, 3.7, 24, 32, 32, True),
                               EnergyModel("int8+memory", 0.1, 0.2, 8, 8, 32, True))}
HEADLINE = "fp32"


def load_energy_model(path: str | Path) -> EnergyModel:
    """A model from a JSON object with ``EnergyModel``'s fields (missing ones as fp32's), or with the
    older {"e_ac_pj", "e_mac_pj"} (an add and a MAC); clear errors for anything else."""
    try:
        given = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the energy model ({err})") from err
    names = {f.name for f in fields(EnergyModel)}
    unknown = set(given) - names - {"e_ac_pj", "e_mac_pj"} if isinstance(given, dict) else set()
    if not isinstance(given, dict) or unknown:
        raise ValueError(f"{path}: an energy model is a JSON object with keys {sorted(names)} (or e_ac_pj, e_mac_pj); "
                         f"unknown: {sorted(unknown)}")
    given = dict(given)
    for key in ("e_ac_pj", "e_mac_pj", "add_pj", "mult_pj"):
        value = given.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{path}: {key} must be a non-negative number, not {value!r}")
    if "e_ac_pj" in given or "e_mac_pj" in given:
        add = given.pop("e_ac_pj", _FP32.add_pj)
        given.setdefault("add_pj", add)
        given.setdefault("mult_pj", max(given.pop("e_mac_pj", _FP32.mac_pj) - add, 0.0))
    for key in ("operand_bits", "weight_bits", "state_bits"):
        value = given.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
            raise ValueError(f"{path}: {key} must be a whole number of bits in [1, 64], not {value!r}")
    if not isinstance(given.get("memory", False), bool) or not isinstance(given.get("name", ""), str) \
            or not isinstance(given.get("source", ""), str):
        raise ValueError(f"{path}: name and source are strings, memory is true or false")
    return EnergyModel(**(asdict(_FP32) | {"name": Path(path).stem, "source": str(path)} | given))


def payload_bits(snn: SpikingNetwork) -> int:
    """Bits of a graded event's payload (1 for binary spikes)."""
    return max(1, snn.config.spike_limit).bit_length() if snn.config.spikes == "graded" else 1


def synop_pj(snn: SpikingNetwork, model: EnergyModel, convention: str = "payload") -> float:
    """The arithmetic of one synaptic event ('accumulates': of one of the k spikes it carries)."""
    if convention not in GRADED:
        raise ValueError(f"graded-event convention must be one of {GRADED}, not {convention!r}")
    bits = payload_bits(snn)
    if bits == 1 or convention == "accumulates":
        return model.add_pj
    return model.mac_pj if convention == "mac" else model.add_pj + model.payload_mult_pj(bits)


def _weights(stage: Stage) -> int:
    """The weights a stage's synapses hold in the network (0 for a max-pool gate)."""
    count = 0
    for p in stage.projections:
        if p.layer is None:
            count += int(np.size(p.weight))
        elif isinstance(p.layer, (Conv2d, Linear)):
            count += int(p.layer.weight.size)
    return count


@dataclass(frozen=True)
class Activity:
    """What the SNN did, per sample (means), per stage: ``synops`` and ``events`` (stages, T) are the
    synaptic events received and the events emitted per step (the analog input's operations are in
    step 1 of ``synops`` and also in ``input_ops``); ``payload_synops`` (stages,) sums the spikes
    carried by the events received over the run (= the non-input SynOps for binary spikes)."""

    synops: np.ndarray
    events: np.ndarray
    input_ops: np.ndarray
    payload_synops: np.ndarray


def snn_energy(snn: SpikingNetwork, activity: Activity, model: EnergyModel, convention: str = "payload") -> np.ndarray:
    """pJ per sample spent by each stage at each step, (stages, T). With 'accumulates' a stage's
    spikes carried are spread over the steps in proportion to its SynOps (the total is exact)."""
    per_event = synop_pj(snn, model, convention)
    pixels = int(np.prod(snn.input_shape))
    energy = np.zeros(activity.synops.shape)
    for s, stage in enumerate(snn.stages):
        event_ops = activity.synops[s].astype(np.float64)
        event_ops[0] -= activity.input_ops[s]
        if convention == "accumulates" and event_ops.sum() > 0:
            event_ops *= activity.payload_synops[s] / event_ops.sum()
        weight_bits, membrane_bits = _weights(stage) * model.weight_bits, stage.size * model.state_bits
        weight_read = model.sram_pj(weight_bits, model.weight_bits)
        membrane = model.sram_pj(membrane_bits, model.state_bits)
        energy[s] = event_ops * (per_event + weight_read + 2 * membrane)
        energy[s, 0] += activity.input_ops[s] * (model.mac_pj + weight_read
                                                 + model.sram_pj(pixels * model.weight_bits, model.weight_bits))
        if model.memory:
            queue_word = max(1, (stage.size - 1).bit_length()) + payload_bits(snn)
            energy[s] += activity.events[s] * 2 * model.sram_pj(stage.size * queue_word, queue_word)
            if stage.kind != GATE:
                energy[s] += stage.size * (2 * membrane + model.add_pj)
    return energy


def ann_energy(net: Network, ops: list[float], model: EnergyModel) -> np.ndarray:
    """pJ per sample of each IR layer doing ``ops`` operations (``ann.macs`` for the dense ANN, the
    MACs with a non-zero input for the zero-skipping one)."""
    energy = np.zeros(len(net.layers))
    for i, (layer, n) in enumerate(zip(net.layers, ops)):
        if not n:
            continue
        in_shape = net.shapes[net.inputs[i][0]] if net.inputs[i][0] >= 0 else net.input_shape
        input_read = model.sram_pj(int(np.prod(in_shape)) * model.weight_bits, model.weight_bits)
        out = int(np.prod(net.shapes[i]))
        write = out * model.sram_pj(out * model.weight_bits, model.weight_bits)
        if isinstance(layer, AvgPool2d):
            energy[i] = n * (model.add_pj + input_read) + write
        else:
            weight_read = model.sram_pj(layer.weight.size * model.weight_bits, model.weight_bits)
            energy[i] = n * (model.mac_pj + weight_read + input_read) + write
    return energy


def break_even_step(snn_energy: np.ndarray, ann_energy: float) -> int | None:
    """The last step at which the SNN's cumulative energy is at or below the ANN's (None: not even step 1)."""
    affordable = np.flatnonzero(snn_energy <= ann_energy)
    return int(affordable[-1]) + 1 if affordable.size else None
