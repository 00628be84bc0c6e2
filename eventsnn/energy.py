"""Energy per sample of a converted SNN and of its ANN, under two models (cumulative per time step).

Common convention (Horowitz, ISSCC 2014, 45 nm): E = ACs x 0.9 pJ + MACs x 4.6 pJ; the analog
first layer's current, computed once per sample, as MACs; the ANN as all its MACs.

Memory-aware model, in the spirit of Lemaire et al., "An analytical estimation of spiking neural
networks energy efficiency" (ICONIP 2022): arithmetic as above plus every memory access, priced by
the size of the SRAM array that holds the data. Horowitz 2014 gives 10, 20 and 100 pJ per 64-bit
read from 8 KiB, 32 KiB and 1 MiB SRAM, which E(S) = 10 pJ x sqrt(S / 8 KiB) fits (20 pJ at 32 KiB,
113 at 1 MiB); a 32-bit word costs half of that, a write as much as a read.
  SNN, per synaptic event into a layer: the weight read (from the layer's connectivity) and the
    membrane's read-modify-write, plus the accumulate;
  per neuron and step: the membrane's read and write and one add (bias, threshold test), for
    every neuron of every layer, as a time-stepped neuron array does;
  per emitted event: its write to and read from the layer's event queue;
  analog input: per input operation a MAC, the weight read and the pixel read, once per sample.
  ANN, per MAC: the MAC, the weight read and the input activation read; per output activation its write.
"""

from __future__ import annotations

import math

import numpy as np

from .snn import GATE, SpikingNetwork

COMMON = {"e_ac_pj": 0.9, "e_mac_pj": 4.6,
          "source": "Horowitz 2014, 45 nm: 0.9 pJ per 32-bit float add, 4.6 pJ per multiply-add"}
SRAM_PJ_64BIT_8KIB = 10.0
WORD_BYTES = 4  # float32 weights, membranes, activations; int32 event indices


def sram_word_pj(array_bytes: float) -> float:
    """Energy of one 32-bit access to an SRAM array of ``array_bytes`` (see the module docstring)."""
    return SRAM_PJ_64BIT_8KIB * math.sqrt(max(array_bytes, WORD_BYTES) / 8192) * WORD_BYTES * 8 / 64


def common_energy(synops_steps: np.ndarray, input_ops: float, macs: float, constants: dict) -> tuple[np.ndarray, float]:
    """(SNN cumulative energy per step, ANN energy), uJ per sample, common convention.
    ``synops_steps``: mean SynOps per sample, (stages, T)."""
    cumulative = np.cumsum(synops_steps.sum(axis=0))
    snn = (constants["e_ac_pj"] * (cumulative - input_ops) + constants["e_mac_pj"] * input_ops) * 1e-6
    return snn, constants["e_mac_pj"] * macs * 1e-6


def memory_energy(snn: SpikingNetwork, synops_steps: np.ndarray, events_steps: np.ndarray, input_ops: np.ndarray,
                  constants: dict) -> tuple[np.ndarray, float, dict]:
    """(SNN cumulative energy per step, ANN energy, the per-access prices used), uJ per sample,
    memory-aware model. ``synops_steps``, ``events_steps``: means per sample, (stages, T);
    ``input_ops``: per stage, the analog input's operations (counted in step 1 of synops_steps)."""
    e_ac, e_mac = constants["e_ac_pj"], constants["e_mac_pj"]
    steps = synops_steps.shape[1]
    per_step = np.zeros(steps)
    prices = {}
    for s, stage in enumerate(snn.stages):
        weights = sram_word_pj(stage.connectivity_bytes)
        membrane = sram_word_pj(stage.size * WORD_BYTES)
        event = 2 * membrane  # the event queue is as large as the membrane array
        synop = weights + 2 * membrane + e_ac
        update = 0.0 if stage.kind == GATE else stage.size * (2 * membrane + e_ac)
        input_price = weights + sram_word_pj(int(np.prod(snn.input_shape)) * WORD_BYTES) + e_mac
        event_ops = synops_steps[s].copy()
        event_ops[0] -= input_ops[s]
        per_step += event_ops * synop + events_steps[s] * event + update
        per_step[0] += input_ops[s] * input_price
        prices[stage.name] = {"synaptic_event_pj": synop, "neuron_update_pj": update / max(stage.size, 1),
                              "event_traffic_pj": event}
    ann = 0.0
    for stage in snn.stages:  # the ANN layer behind each population, same arrays
        for p in stage.projections:
            if p.macs:
                source_bytes = int(np.prod(p.in_shape)) * WORD_BYTES
                weight_bytes = (p.layer.weight.nbytes if p.layer is not None and hasattr(p.layer, "weight")
                                else WORD_BYTES)
                ann += p.macs * (e_mac + sram_word_pj(weight_bytes) + sram_word_pj(source_bytes))
        ann += stage.size * sram_word_pj(stage.size * WORD_BYTES)  # writing the layer's activations
    return np.cumsum(per_step) * 1e-6, ann * 1e-6, prices


def break_even_step(snn_energy: np.ndarray, ann_energy: float) -> int | None:
    """The last step at which the SNN's cumulative energy is at or below the ANN's (None: not even step 1)."""
    affordable = np.flatnonzero(snn_energy <= ann_energy)
    return int(affordable[-1]) + 1 if affordable.size else None
