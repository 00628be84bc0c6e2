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
from typing import Iterator

import numpy as np
from numba import njit

from . import ann
from .kernel_cache import CACHE
from .energy import COMMON, break_even_step, common_energy, memory_energy
from .engine import simulate
from .ir import ACTIVATIONS
from .model import ConvertedModel
from .progress import Progress
from .early_exit import stable_exit_steps
from .report import WITHIN_POINTS, layer_statistics, stable_decision_step, steps_to_within
from .snn import OUTPUT, SimulationResult, SpikingNetwork

ENERGY_DEFAULTS = COMMON
MEMORY_CONVENTION = ("arithmetic as the common convention, plus SRAM accesses at 10 pJ x sqrt(array bytes / 8 KiB) "
                     "per 64-bit word (Horowitz 2014: 8 KiB 10 pJ, 32 KiB 20 pJ, 1 MiB 100 pJ), half for a 32-bit word; "
                     "per synaptic event a weight read and a membrane read-modify-write, per neuron and step a membrane "
                     "read, write and add, per event a queue write and read; the ANN: per MAC a weight and an input "
                     "read, per activation a write (Lemaire et al. 2022, in spirit)")
EXIT_STABLE = (2, 4, 8, 16)  # early-exit settings evaluated from the same run
RATE_BINS = 20  # the most bins of the per-neuron rate histograms
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
    unknown = set(given) - set(ENERGY_DEFAULTS) if isinstance(given, dict) else set()
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


@njit(cache=CACHE)
def _fidelity_sums(a, counts, scale, sums):
    """One pass over a layer's (ANN value, SNN spike count) pairs, (samples, neurons) each:
    sums += [a, v, a a, v v, a v, |a - v|] with v = counts x scale, in float64."""
    for b in range(a.shape[0]):
        for i in range(a.shape[1]):
            x = np.float64(a[b, i])
            v = counts[b, i] * scale
            sums[0] += x
            sums[1] += v
            sums[2] += x * x
            sums[3] += v * v
            sums[4] += x * v
            sums[5] += abs(x - v)


@njit(cache=CACHE)
def _count_stats(counts, divisor, hist):
    """Over (samples, neurons) spike counts in [0, divisor]: how many are zero, and the histogram
    hist[count x bins // (divisor + 1)] += 1 with bins = len(hist) (one bin per possible count
    where there are at most RATE_BINS of them, so no bin is empty by construction)."""
    silent = 0
    bins = hist.shape[0]
    for b in range(counts.shape[0]):
        for i in range(counts.shape[1]):
            c = counts[b, i]
            silent += c == 0
            hist[min(c * bins // (divisor + 1), bins - 1)] += 1
    return silent


class _Fidelity:
    """Running sums for the Pearson r and mean absolute error between ANN and SNN values."""

    def __init__(self):
        self.n = 0
        self.sums = np.zeros(6)  # a, v, aa, vv, av, |a - v|
        self.scatter = np.zeros((0, 2))

    def add(self, a: np.ndarray, counts: np.ndarray, scale: float, rng: np.random.Generator) -> None:
        """a: the ANN's values, counts: the SNN's spike counts, both (samples, neurons)."""
        self.n += a.size
        _fidelity_sums(a, counts, float(scale), self.sums)
        room = SCATTER_POINTS - len(self.scatter)
        if room > 0 and a.size:
            pick = rng.choice(a.size, min(room, a.size), replace=False)
            rows, cols = np.divmod(pick, a.shape[1])
            self.scatter = np.concatenate([self.scatter, np.stack([a[rows, cols], counts[rows, cols] * scale], axis=1)])

    def result(self) -> tuple[float | None, float | None]:
        if self.n == 0:
            return None, None
        x, y, xx, yy, xy, abs_error = self.sums / self.n
        var_x, var_y = xx - x * x, yy - y * y
        r = (xy - x * y) / math.sqrt(var_x * var_y) if var_x > 0 and var_y > 0 else None
        return (None if r is None else float(r)), float(abs_error)


def stage_layer(model: ConvertedModel, stage_name: str) -> int:
    """The IR layer whose (normalized) output a stage's spikes stand for."""
    net = model.ann
    names = [layer.name for layer in net.layers]
    i = names.index(stage_name)
    readers = net.consumers(i)
    if len(readers) == 1 and isinstance(net.layers[readers[0]], ACTIVATIONS):
        return readers[0]  # an affine or add population: its activation
    return i  # a gate or an avg-pool population: the layer itself


class _Totals:
    """What the analysis accumulates over batches: sums over samples, per stage and step."""

    def __init__(self, snn: SpikingNetwork, watched: dict[int, int], steps: int, seed: int):
        n_stages = len(snn.stages)
        self.snn, self.watched, self.steps = snn, watched, steps
        self.offsets = np.concatenate([[0], np.cumsum([s.size for s in snn.stages])])
        self.n, self.seconds, self.ann_correct = 0, 0.0, 0
        self.correct = np.zeros(steps)
        self.synops = np.zeros((n_stages, steps))
        self.events = np.zeros((n_stages, steps))
        self.input_ops = np.zeros(n_stages)
        self.weighted = np.zeros(n_stages)
        self.silent = np.zeros(n_stages)
        self.fidelity = {s: _Fidelity() for s in watched}
        self.stage_of = {layer: s for s, layer in watched.items()}  # ANN layer -> the stage standing for it
        possible = steps * max(1, snn.config.spike_limit) + 1  # spike counts 0 .. T x the most per step
        self.rate_hist = [np.zeros(min(RATE_BINS, possible), np.int64) for _ in snn.stages]
        self.first_spike: list[np.ndarray] = []
        self.stable_step: list[np.ndarray] = []
        self.exits = {k: np.zeros(3) for k in EXIT_STABLE}  # correct, stop steps, SynOps spent
        self.rng = np.random.default_rng(seed)

    def add(self, result, x: np.ndarray, y: np.ndarray, activations: Iterator[tuple[int, np.ndarray]]):
        """One batch: its simulation result and the (layer, output) pairs of the reference ANN,
        consumed one layer at a time (holding them all would cost memory and time)."""
        snn, steps = self.snn, self.steps
        self.n += len(x)
        self.seconds += result.seconds
        self.correct += (result.decisions == y[:, None]).sum(axis=0)
        self.synops += result.synops_per_step.sum(axis=0)
        self.events += result.spikes.sum(axis=0)
        self.input_ops += result.input_synops.sum(axis=0)
        self.weighted += result.spike_amounts.sum(axis=0)
        divisor = steps * max(1, snn.config.spike_limit)  # histogram over [0, most spikes per step]
        counts = [result.neuron_counts[:, self.offsets[s]:self.offsets[s + 1]] for s in range(len(snn.stages))]
        for s, stage_counts in enumerate(counts):
            self.silent[s] += _count_stats(stage_counts, divisor, self.rate_hist[s])
        scale = 1.0 / (steps * snn.config.spike_levels)  # spikes -> the layer's normalized units
        last = None
        for j, out in activations:
            last = out
            if j in self.stage_of:
                s = self.stage_of[j]
                self.fidelity[s].add(out.reshape(len(x), -1), counts[s], scale, self.rng)
        self.ann_correct += int((last.argmax(axis=1) == y).sum())
        self.first_spike.append(result.first_spike)
        self.stable_step.append(stable_decision_step(result.decisions))
        spent = np.cumsum(result.synops_per_step.sum(axis=1), axis=1)
        rows = np.arange(len(x))
        for k in EXIT_STABLE:
            stop = stable_exit_steps(result.decisions, k)
            self.exits[k] += [(result.decisions[rows, stop - 1] == y).sum(), stop.sum(), spent[rows, stop - 1].sum()]


def analyze(model: ConvertedModel, x, y: np.ndarray, steps: int, batch_size: int = 256, seed: int = 0,
            energy: dict | None = None, progress: Progress | None = None,
            batches: Iterator[SimulationResult] | None = None, **settings) -> dict:
    """The analysis report of one model on labelled data (see the module docstring); ``settings``
    override the model's simulation settings. ``batches``: the simulation results of consecutive
    batches of ``batch_size`` samples (``count_neurons=True``), computed elsewhere (a Dask
    cluster, ``scaleout.results_in_order``); None: simulated here."""
    y = np.asarray(y)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as images, and at least one: {len(x)} images, {len(y)} labels")
    snn = model.build(**settings)
    reference = dataclasses.replace(model, bias_shift={}).normalized()  # the ANN the SNN should follow
    watched = {s: stage_layer(model, stage.name) for s, stage in enumerate(snn.stages) if stage.kind != OUTPUT}
    totals = _Totals(snn, watched, steps, seed)
    for start in range(0, len(x), batch_size):
        xb = ann.check_input(model.ann, x[start:start + batch_size])
        yb = y[start:start + batch_size]
        result = simulate(snn, xb, steps, seed=seed, first_sample=start, count_neurons=True) if batches is None \
            else next(batches)
        totals.add(result, xb, yb, ann.activations(reference, xb))
        if progress is not None:
            progress(totals.n, len(x))
    return _report(model, totals, energy or dict(ENERGY_DEFAULTS))


def _layers(totals: _Totals) -> list[dict]:
    """The run report's per-layer statistics, plus the silent share and, for hidden layers, the fidelity."""
    snn, n = totals.snn, totals.n
    layers = layer_statistics(snn, totals.events.sum(axis=1), totals.weighted, totals.synops.sum(axis=1), n,
                              totals.steps)
    emits = snn.config.output == "spikes"  # an output layer read by its membrane or a softmax draw emits no spikes
    for s, (stage, layer) in enumerate(zip(snn.stages, layers)):
        silent = stage.kind != OUTPUT or emits
        layer["silent_share"] = float(totals.silent[s]) / (n * stage.size) if silent else None
        if s in totals.fidelity:
            r, error = totals.fidelity[s].result()
            layer.update(rate_correlation=r, rate_error=error, rate_histogram=totals.rate_hist[s].tolist(),
                         scatter=np.round(totals.fidelity[s].scatter, 4).tolist())
    return layers


def _energy(totals: _Totals, macs: float, energy: dict) -> dict:
    n = totals.n
    synops, events, input_ops = totals.synops / n, totals.events / n, totals.input_ops / n
    snn_energy, ann_energy = common_energy(synops, float(input_ops.sum()), macs, energy)
    memory_snn, memory_ann, prices = memory_energy(totals.snn, synops, events, input_ops, energy)
    return {"convention": {k: energy[k] for k in ("e_ac_pj", "e_mac_pj", "source")}
            | {"analog_input": "the first layer's current, computed once per sample, as MACs",
               "ann": "every MAC of the ANN"},
            "ann_uj_per_sample": ann_energy, "snn_uj_per_sample_per_step": [float(e) for e in snn_energy],
            "break_even_step": break_even_step(snn_energy, ann_energy),
            "memory_model": {"convention": MEMORY_CONVENTION, "prices_pj": prices, "ann_uj_per_sample": memory_ann,
                             "snn_uj_per_sample_per_step": [float(e) for e in memory_snn],
                             "break_even_step": break_even_step(memory_snn, memory_ann)}}


def _report(model: ConvertedModel, totals: _Totals, energy: dict) -> dict:
    snn, n, steps = totals.snn, totals.n, totals.steps
    accuracy, ann_accuracy = totals.correct / n, totals.ann_correct / n
    cumulative = np.cumsum(totals.synops.sum(axis=0)) / n
    macs = float(sum(st.macs for st in snn.stages))
    within = {p: steps_to_within(accuracy, ann_accuracy, float(p)) for p in WITHIN_POINTS}
    neurons = sum(st.size for st in snn.stages[:-1])
    input_ops = float(totals.input_ops.sum()) / n
    event_ops = float(cumulative[-1]) - input_ops
    graded = snn.config.spikes == "graded"
    first_spike, stable_step = np.concatenate(totals.first_spike), np.concatenate(totals.stable_step)
    return {
        "samples": n, "steps": steps, "settings": dataclasses.asdict(snn.config),
        "calibration": model.calibration, "seconds": totals.seconds,
        "ann_accuracy": float(ann_accuracy), "accuracy": float(accuracy[-1]),
        "accuracy_per_step": [float(a) for a in accuracy],
        "cumulative_synops_per_step": [float(c) for c in cumulative],
        "steps_to_within": within,
        "synops_to_within": {p: float(cumulative[t - 1]) if t else None for p, t in within.items()},
        "macs_per_sample": macs,
        "layers": _layers(totals),
        "energy": _energy(totals, macs, energy),
        "neurobench": {"activation_sparsity": 1 - float(totals.events[:-1].sum()) / (n * neurons * steps)
                       if neurons else None,
                       "synaptic_operations": {"effective_macs": input_ops + (event_ops if graded else 0.0),
                                               "effective_acs": 0.0 if graded else event_ops,
                                               "dense": macs * steps},
                       "membrane_updates": float(neurons * steps),
                       "note": "per sample; graded events (k W) are counted as MACs"},
        "latency": {"first_output_spike": _summary(first_spike[first_spike > 0]),
                    "stable_decision_step": _summary(stable_step),
                    "stable_decision_histogram": np.bincount(stable_step, minlength=steps + 1)[1:].tolist(),
                    "exit_stable": [{"stable_steps": k, "accuracy": float(c) / n, "mean_stop_step": float(stops) / n,
                                     "synops_per_sample": float(spent) / n} for k, (c, stops, spent) in totals.exits.items()]},
    }


def _summary(values: np.ndarray) -> dict | None:
    if values.size == 0:
        return None
    return {"mean": float(values.mean()), "median": float(np.median(values)), "p90": float(np.percentile(values, 90)),
            "max": int(values.max())}
