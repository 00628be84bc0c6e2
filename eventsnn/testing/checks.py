"""Checks that raise AssertionError with a readable diff: first differing step, layer and neuron."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from .. import ann
from ..analysis import stage_layer
from ..engine import simulate
from ..model import ConvertedModel
from ..reference import synaptic
from ..snn import GATE, IF, INPUT, OUTPUT, SimulationResult, SpikingNetwork, stage_drive, stage_initial_membrane

SpikeTrains = Mapping[str, np.ndarray]  # layer name -> (N, T, *layer shape) spikes per step


def spike_trains(result: SimulationResult, snn: SpikingNetwork | None = None) -> dict[str, np.ndarray]:
    """A recorded result's raster split by layer: name -> (N, T, *shape). Without ``snn`` (which
    gives the layers' shapes) the whole raster is one entry, 'neurons', of flat indices."""
    if result.raster is None:
        raise ValueError("the result has no spike raster: simulate with record=True")
    if snn is None:
        return {"neurons": result.raster}
    if snn.n_neurons != result.raster.shape[2]:
        raise ValueError(f"the result has {result.raster.shape[2]} neurons, the network {snn.n_neurons}")
    trains, start = {}, 0
    for stage in snn.stages:
        block = result.raster[:, :, start:start + stage.size]
        trains[stage.name] = block.reshape(block.shape[:2] + tuple(stage.out_shape))
        start += stage.size
    return trains


def _first_difference(name: str, a: np.ndarray, b: np.ndarray, labels: tuple[str, str]) -> tuple[int, str] | None:
    """(the earliest differing step, a message saying where and what), or None where they agree."""
    if a.shape != b.shape:
        return -1, f"layer '{name}': shapes differ, {labels[0]} {a.shape} vs {labels[1]} {b.shape}"
    differ = np.argwhere(a != b)
    if not len(differ):
        return None
    sample, step, *neuron = min(map(tuple, differ), key=lambda d: (d[1], d[0]))  # earliest step first
    where = (sample, step, *neuron)
    at_step = np.s_[sample, step]
    return int(step), (f"first difference at step {step + 1} (1-based), sample {sample}, layer '{name}', neuron "
                       f"{tuple(int(i) for i in neuron)}: {labels[0]} {a[where]!r}, {labels[1]} {b[where]!r}; "
                       f"that layer's spikes at that step: {labels[0]} {int(np.sum(a[at_step]))}, "
                       f"{labels[1]} {int(np.sum(b[at_step]))}; {len(differ)} differing entries in all")


def assert_same_spikes(a: SimulationResult | SpikeTrains, b: SimulationResult | SpikeTrains,
                       snn: SpikingNetwork | None = None, labels: tuple[str, str] = ("a", "b"),
                       membrane: bool = True) -> None:
    """Two simulations emitted the same spikes: per layer, per sample, per step, per neuron.

    ``a`` and ``b`` are results recorded with ``record=True`` (then ``snn`` names the layers in
    the message) or dicts of layer name -> (N, T, ...) spike trains, e.g. from another simulator.
    The message names the earliest differing step, its sample, layer and neuron. For two results
    the final membrane potentials (``membrane=True``) and the decisions are compared too.
    """
    trains_a = spike_trains(a, snn) if isinstance(a, SimulationResult) else dict(a)
    trains_b = spike_trains(b, snn) if isinstance(b, SimulationResult) else dict(b)
    if trains_a.keys() != trains_b.keys():
        raise AssertionError(f"different layers: {labels[0]} {list(trains_a)}, {labels[1]} {list(trains_b)}")
    problems = [p for name in trains_a
                if (p := _first_difference(name, np.asarray(trains_a[name]), np.asarray(trains_b[name]), labels))]
    if problems:  # the layer whose first difference comes earliest explains the others
        raise AssertionError("spike trains differ: " + min(problems)[1])
    if isinstance(a, SimulationResult) and isinstance(b, SimulationResult):
        _assert_same_readout(a, b, labels, membrane)


def _assert_same_readout(a: SimulationResult, b: SimulationResult, labels: tuple[str, str], membrane: bool) -> None:
    pairs = [("decisions", a.decisions, b.decisions), ("output counts", a.output_counts, b.output_counts)]
    if membrane and a.membrane is not None and b.membrane is not None:
        pairs.append(("final membrane potentials", a.membrane, b.membrane))
    for what, x, y in pairs:
        if x.shape != y.shape or not np.array_equal(x, y):
            differ = np.argwhere(x != y) if x.shape == y.shape else []
            at = f"; first at index {tuple(int(i) for i in differ[0])}: {x[tuple(differ[0])]!r} vs " \
                 f"{y[tuple(differ[0])]!r}" if len(differ) else f" (shapes {x.shape} vs {y.shape})"
            raise AssertionError(f"same spikes, but the {what} differ between {labels[0]} and {labels[1]}{at}")


def _tolerance(atol: float | None, steps: int, *magnitudes: np.ndarray) -> np.ndarray | float:
    """Float32 rounding: ``steps`` additions to a sum whose terms total these magnitudes (a few
    float32 epsilons of each per step); exact inputs can ask for atol=0."""
    if atol is not None:
        return atol
    return 1e-6 * steps * (sum(np.abs(m) for m in magnitudes) + 1.0)


def assert_conversion_bounds(snn: SpikingNetwork, x: np.ndarray, steps: int, atol: float | None = None,
                             seed: int = 0) -> SimulationResult:
    """The conversion theory holds in a simulation of ``x`` (Rueckauer et al. 2017, eq. 2-6):

    - every IF layer (reset by subtraction): V(T) = V(0) + sum_t (W s_in(t) + b) - N(T) tau
      exactly, where N counts its spikes; that is, its rate N/T equals (W r_in + b) / tau minus
      the residual (V(T) - V(0)) / (T tau), the per-layer error of the rate approximation;
    - every layer fed by the analog input: with z = (W x + b) / tau per step and a = clip(z, 0, K)
      (K = the most spikes one step can carry), |N(T)/T - a| <= 1/T.

    ``atol`` bounds float32 rounding (default: grows with T and the terms; 0 for exact, dyadic
    inputs). Returns the simulation result it checked."""
    config = snn.config
    if config.reset != "subtract" or config.input != "analog":
        raise ValueError("the conversion bounds hold for reset='subtract' and input='analog', "
                         f"not reset={config.reset!r}, input={config.input!r}")
    result = simulate(snn, x, steps, seed=seed, record=True, count_neurons=True)
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    tau, limit = float(config.threshold), config.spike_limit
    offsets = np.concatenate([[0], np.cumsum([s.size for s in snn.stages])])
    counts = [result.neuron_counts[:, offsets[s]:offsets[s + 1]].astype(np.float64) for s in range(len(snn.stages))]
    for s, stage in enumerate(snn.stages):
        if stage.kind == GATE:
            continue
        fires = stage.kind == IF or config.output == "spikes"
        n = counts[s] if fires else 0.0
        incoming = sum(synaptic(p, steps * x if p.source == INPUT else counts[p.source]).astype(np.float64)
                       for p in stage.projections)
        drive = stage_drive(stage, config, steps).astype(np.float64)
        v_end = result.membrane[:, offsets[s]:offsets[s + 1]].astype(np.float64)
        v0 = stage_initial_membrane(stage, config).astype(np.float64)
        expected = v0 + incoming + steps * drive - tau * n
        tol = _tolerance(atol, steps, v_end, incoming, steps * drive, tau * n, tau)
        _report(stage.name, "V(T) = V(0) + W N_in + T b - tau N(T)", v_end, expected, tol)
        if fires and all(p.source == INPUT for p in stage.projections) and stage.potential is None:  # V(0) in [0, tau)
            a = np.clip((incoming / steps + drive) / tau, 0, limit)
            _report(stage.name, "|N(T)/T - clip(z, 0, K)| <= 1/T", n / steps, a, 1.0 / steps + _tolerance(
                atol, steps, a) / steps)
    return result


def _report(layer: str, law: str, got: np.ndarray, expected: np.ndarray, tol) -> None:
    bad = np.abs(got - expected) > tol
    if bad.any():
        sample, neuron = (int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"layer '{layer}' breaks {law} at sample {sample}, neuron {neuron}: "
                             f"{got[sample, neuron]!r} vs {expected[sample, neuron]!r} "
                             f"(tolerance {np.broadcast_to(tol, bad.shape)[sample, neuron]:.3g}); "
                             f"{int(bad.sum())} neurons in all")


def assert_matches_ann(model: ConvertedModel, x: np.ndarray, steps: int, tolerance: float, seed: int = 0,
                       **settings) -> dict[str, float]:
    """Every hidden layer's spike rate follows the normalized ANN: the mean absolute difference
    between its rate (in units of the layer's scale, N / (T L)) and the ANN's activation clipped
    to [0, 1] is at most ``tolerance`` per layer. ``settings`` override the model's simulation
    settings. Returns the mean absolute difference per layer."""
    snn = model.build(**settings)
    result = simulate(snn, x, steps, seed=seed, count_neurons=True)
    reference = dataclasses.replace(model, bias_shift={}).normalized()  # the ANN the SNN should follow
    activations = dict(ann.activations(reference, ann.check_input(model.ann, x)))
    errors, start = {}, 0
    for stage in snn.stages:
        counts = result.neuron_counts[:, start:start + stage.size]
        start += stage.size
        if stage.kind == OUTPUT:
            continue
        rate = counts / (steps * snn.config.spike_levels)
        target = np.clip(activations[stage_layer(model, stage.name)].reshape(len(x), -1), 0, 1)
        errors[stage.name] = float(np.mean(np.abs(rate - target)))
    worst = max(errors, key=errors.get, default=None)
    if worst is not None and errors[worst] > tolerance:
        table = ", ".join(f"{name} {err:.4f}" for name, err in errors.items())
        raise AssertionError(f"layer '{worst}': mean |rate - ANN activation| = {errors[worst]:.4f} > {tolerance} "
                             f"after {steps} steps (per layer: {table})")
    return errors
