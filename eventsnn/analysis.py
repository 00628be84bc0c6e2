"""Efficiency analysis: does the spiking net pay off, from which step, and where do its spikes go?

``analyze`` simulates once (event engine) and streams per batch: accuracy and SynOps per step,
per-layer rates, silent neurons, spikes and SynOps, and how faithfully each population's output
(spikes / (T levels), the layer's normalized units) follows the normalized ANN activation
(Pearson r and mean absolute error, from running sums: nothing of size samples x neurons is
kept). Energy under two models (``energy``): the common convention, E = ACs x 0.9 pJ + MACs x
4.6 pJ (constants overridable with a JSON file {"e_ac_pj": ..., "e_mac_pj": ...}), and a
memory-aware one that also prices every SRAM access. ``break_even_step``: the last step at which
the SNN's cumulative energy is still at or below the ANN's.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from . import ann
from .energy import COMMON, break_even_step, common_energy, input_ops_per_stage, memory_energy
from .engine import simulate
from .ir import ACTIVATIONS
from .model import ConvertedModel
from .progress import Progress
from .report import WITHIN_POINTS, stable_decision_step, steps_to_within
from .snn import GATE, IF, OUTPUT, SpikingNetwork

ENERGY_DEFAULTS = COMMON
MEMORY_CONVENTION = ("arithmetic as the common convention, plus SRAM accesses at 10 pJ x sqrt(array bytes / 8 KiB) "
                     "per 64-bit word (Horowitz 2014: 8 KiB 10 pJ, 32 KiB 20 pJ, 1 MiB 100 pJ), half for a 32-bit word; "
                     "per synaptic event a weight read and a membrane read-modify-write, per neuron and step a membrane "
                     "read, write and add, per event a queue write and read; the ANN: per MAC a weight and an input "
                     "read, per activation a write (Lemaire et al. 2022, in spirit)")
EXIT_STABLE = (2, 4, 8, 16)  # early-exit settings evaluated from the same run
SCATTER_POINTS = 500  # (ANN, SNN) pairs kept per layer for the scatter plot (the first batch's, sampled)


def load_energy_model(path: str | Path | None) -> dict:
    """The energy constants: the defaults, updated from a JSON file if given (clear errors)."""
    energy = dict(ENERGY_DEFAULTS)
    if path is None:
        return energy
    try:
        given = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the energy model ({err})") from err
    unknown = set(given) - set(ENERGY_DEFAULTS)
    if not isinstance(given, dict) or unknown:
        raise ValueError(f"{path}: an energy model is a JSON object with keys {sorted(ENERGY_DEFAULTS)}; "
                         f"unknown: {sorted(unknown)}")
    for key in ("e_ac_pj", "e_mac_pj"):
        value = given.get(key, energy[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{path}: {key} must be a non-negative number, not {value!r}")
    energy.update(given)
    energy["source"] = given.get("source", f"{path}")
    return energy


class _Fidelity:
    """Running sums for the Pearson r and mean absolute error between ANN and SNN values."""

    def __init__(self):
        self.n = 0
        self.sums = np.zeros(5)  # x, y, xx, yy, xy
        self.abs_error = 0.0
        self.scatter = np.zeros((0, 2))

    def add(self, a: np.ndarray, s: np.ndarray, rng: np.random.Generator) -> None:
        a, s = a.ravel().astype(np.float64), s.ravel().astype(np.float64)
        self.n += a.size
        self.sums += [a.sum(), s.sum(), a @ a, s @ s, a @ s]
        self.abs_error += np.abs(a - s).sum()
        room = SCATTER_POINTS - len(self.scatter)
        if room > 0 and a.size:
            pick = rng.choice(a.size, min(room, a.size), replace=False)
            self.scatter = np.concatenate([self.scatter, np.stack([a[pick], s[pick]], axis=1)])

    def result(self) -> tuple[float | None, float | None]:
        if self.n == 0:
            return None, None
        x, y, xx, yy, xy = self.sums / self.n
        var_x, var_y = xx - x * x, yy - y * y
        r = (xy - x * y) / math.sqrt(var_x * var_y) if var_x > 0 and var_y > 0 else None
        return (None if r is None else float(r)), float(self.abs_error / self.n)


def _ann_layer(model: ConvertedModel, stage_name: str) -> int | None:
    """The IR layer whose (normalized) output a stage's spikes stand for."""
    net = model.ann
    names = [layer.name for layer in net.layers]
    i = names.index(stage_name)
    readers = net.consumers(i)
    if len(readers) == 1 and isinstance(net.layers[readers[0]], ACTIVATIONS):
        return readers[0]  # an affine or add population: its activation
    return i  # a gate or an avg-pool population: the layer itself


def _exit_stable(decisions: np.ndarray, k: int) -> np.ndarray:
    """Per sample, the step (1-based) at which early exit with ``stable_steps=k`` stops, T if never."""
    n, steps = decisions.shape
    stop = np.full(n, steps)
    same = np.ones_like(decisions, dtype=bool)
    for back in range(1, k):
        same[:, back:] &= decisions[:, back:] == decisions[:, :-back]
        same[:, :back] = False
    same &= decisions >= 0
    hit = same.any(axis=1)
    stop[hit] = np.argmax(same[hit], axis=1) + 1
    return stop


def analyze(model: ConvertedModel, x, y: np.ndarray, steps: int, batch_size: int = 256, seed: int = 0,
            energy: dict | None = None, progress: Progress | None = None, **settings) -> dict:
    """The analysis report of one model on labelled data (see the module docstring); ``settings``
    override the model's simulation settings."""
    y = np.asarray(y)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as images, and at least one: {len(x)} images, {len(y)} labels")
    energy = energy or dict(ENERGY_DEFAULTS)
    snn = model.build(**settings)
    reference = dataclasses.replace(model, bias_shift={}).normalized()  # the ANN the SNN should follow
    stages = snn.stages
    offsets = np.concatenate([[0], np.cumsum([s.size for s in stages])])
    watched = {s: _ann_layer(model, stage.name) for s, stage in enumerate(stages) if stage.kind != OUTPUT}
    fidelity = {s: _Fidelity() for s in watched}
    rng = np.random.default_rng(seed)
    n, T = len(x), steps
    correct = np.zeros(T)
    ann_correct = 0
    synops_steps = np.zeros((len(stages), T))
    events_steps = np.zeros((len(stages), T))
    input_ops = np.zeros(len(stages))
    spikes = np.zeros(len(stages))
    weighted = np.zeros(len(stages))
    synops = np.zeros(len(stages))
    silent = np.zeros(len(stages))
    rate_hist = {s: np.zeros(20) for s in watched}
    first_spike, stable_step = [], []
    exits = {k: [0, 0.0, 0.0] for k in EXIT_STABLE}  # correct, stop steps, SynOps spent
    seconds = 0.0
    levels = snn.config.spike_levels
    for start in range(0, n, batch_size):
        xb = ann.check_input(model.ann, x[start:start + batch_size])
        yb = y[start:start + batch_size]
        result = simulate(snn, xb, T, seed=seed, first_sample=start, count_neurons=True)
        seconds += result.seconds
        activations = dict(ann.activations(reference, xb))
        ann_correct += int((activations[len(reference.layers) - 1].argmax(axis=1) == yb).sum())
        correct += (result.decisions == yb[:, None]).sum(axis=0)
        synops_steps += result.synops_per_step.sum(axis=0)  # (stages, T)
        events_steps += result.spikes.sum(axis=0)
        input_ops += input_ops_per_stage(snn, xb)
        spikes += result.spikes.sum(axis=(0, 2))
        weighted += result.spike_amounts.sum(axis=0)
        synops += result.synops.sum(axis=0)
        for s in range(len(stages)):
            counts = result.neuron_counts[:, offsets[s]:offsets[s + 1]]
            silent[s] += np.count_nonzero(counts == 0)
            if s in watched:
                value = counts / (T * levels)
                fidelity[s].add(activations[watched[s]].reshape(len(xb), -1), value, rng)
                rate_hist[s] += np.histogram(counts / T, bins=20, range=(0, max(1.0, snn.config.spike_limit)))[0]
        first_spike.append(result.first_spike)
        stable_step.append(stable_decision_step(result.decisions))
        spent = np.cumsum(result.synops_per_step.sum(axis=1), axis=1)
        for k in EXIT_STABLE:
            stop = _exit_stable(result.decisions, k)
            rows = np.arange(len(xb))
            exits[k][0] += int((result.decisions[rows, stop - 1] == yb).sum())
            exits[k][1] += float(stop.sum())
            exits[k][2] += float(spent[rows, stop - 1].sum())
        if progress is not None:
            progress(min(start + batch_size, n), n)
    return _report(model, snn, n, T, seconds, correct / n, ann_correct / n, synops_steps / n, events_steps / n,
                   input_ops / n, spikes / n, weighted / n, synops / n, silent / n, fidelity, rate_hist,
                   np.concatenate(first_spike), np.concatenate(stable_step), exits, energy)


def _report(model, snn: SpikingNetwork, n, T, seconds, accuracy, ann_accuracy, synops_steps, events_steps, input_ops,
            spikes, weighted, synops, silent, fidelity, rate_hist, first_spike, stable_step, exits, energy) -> dict:
    cumulative = np.cumsum(synops_steps.sum(axis=0))
    macs = float(sum(st.macs for st in snn.stages))
    snn_energy, ann_energy = common_energy(synops_steps, float(input_ops.sum()), macs, energy)
    memory_snn, memory_ann, prices = memory_energy(snn, synops_steps, events_steps, input_ops, energy)
    layers = []
    for s, stage in enumerate(snn.stages):
        kind = {IF: "IF", GATE: "maxpool gate"}.get(stage.kind, f"output {snn.config.output}")
        layer = {"name": stage.name, "kind": kind, "neurons": stage.size,
                 "rate": float(spikes[s]) / (stage.size * T), "silent_share": float(silent[s]) / stage.size,
                 "spikes_per_sample": float(spikes[s]), "spikes_weighted_per_sample": float(weighted[s]),
                 "synops_per_sample": float(synops[s]), "macs": stage.macs,
                 "synops_per_mac": float(synops[s]) / stage.macs if stage.macs else None}
        if s in fidelity:
            r, error = fidelity[s].result()
            layer.update(rate_correlation=r, rate_error=error, rate_histogram=rate_hist[s].tolist(),
                         scatter=np.round(fidelity[s].scatter, 4).tolist())
        layers.append(layer)
    within = {p: steps_to_within(accuracy, ann_accuracy, float(p)) for p in WITHIN_POINTS}
    neurons = sum(st.size for st in snn.stages[:-1])
    graded = snn.config.spikes == "graded"
    event_ops = float(cumulative[-1] - input_ops.sum())
    return {
        "samples": n, "steps": T, "settings": dataclasses.asdict(snn.config),
        "calibration": model.calibration, "seconds": seconds,
        "ann_accuracy": float(ann_accuracy), "accuracy": float(accuracy[-1]),
        "accuracy_per_step": [float(a) for a in accuracy],
        "cumulative_synops_per_step": [float(c) for c in cumulative],
        "steps_to_within": within,
        "synops_to_within": {p: float(cumulative[t - 1]) if t else None for p, t in within.items()},
        "macs_per_sample": macs,
        "layers": layers,
        "energy": {"convention": {k: energy[k] for k in ("e_ac_pj", "e_mac_pj", "source")}
                   | {"analog_input": "the first layer's current, computed once per sample, as MACs",
                      "ann": "every MAC of the ANN"},
                   "ann_uj_per_sample": ann_energy, "snn_uj_per_sample_per_step": [float(e) for e in snn_energy],
                   "break_even_step": break_even_step(snn_energy, ann_energy),
                   "memory_model": {"convention": MEMORY_CONVENTION, "prices_pj": prices, "ann_uj_per_sample": memory_ann,
                                    "snn_uj_per_sample_per_step": [float(e) for e in memory_snn],
                                    "break_even_step": break_even_step(memory_snn, memory_ann)}},
        "neurobench": {"activation_sparsity": 1 - float(spikes[:-1].sum()) / (neurons * T) if neurons else None,
                       "synaptic_operations": {"effective_macs": float(input_ops.sum()) + (event_ops if graded else 0.0),
                                               "effective_acs": 0.0 if graded else event_ops,
                                               "dense": macs * T},
                       "membrane_updates": float(neurons * T),
                       "note": "per sample; graded events (k W) are counted as MACs"},
        "latency": {"first_output_spike": _summary(first_spike[first_spike > 0]),
                    "stable_decision_step": _summary(stable_step),
                    "stable_decision_histogram": np.bincount(stable_step, minlength=T + 1)[1:].tolist(),
                    "exit_stable": [{"stable_steps": k, "accuracy": c / n, "mean_stop_step": stops / n,
                                     "synops_per_sample": spent / n} for k, (c, stops, spent) in exits.items()]},
    }


def _summary(values: np.ndarray) -> dict | None:
    if values.size == 0:
        return None
    return {"mean": float(values.mean()), "median": float(np.median(values)), "p90": float(np.percentile(values, 90)),
            "max": int(values.max())}
