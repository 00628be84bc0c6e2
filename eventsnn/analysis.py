"""Efficiency analysis: does the spiking net pay off, from which step, and where do its spikes go?

``analyze`` simulates once (event engine) and streams per batch: accuracy and SynOps per step,
per-layer rates, silent neurons, spikes and SynOps, and how faithfully each population's output
(spikes / (T levels), the layer's normalized units) follows the normalized ANN activation
(Pearson r and mean absolute error, from running sums: nothing of size samples x neurons is
kept). Energy (``energy``) under every preset model (fp32, int8, each with and without the
memory terms) and an optional model of the user's, for the SNN (the graded-event conventions side
by side) and for the ANN, dense and zero-skipping (the MACs whose input is non-zero, measured here
on the same samples); ``break_even_step``: the last step at which the SNN's cumulative energy is
still at or below the ANN's. Accuracies come with 95% Wilson intervals.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator

import numpy as np
from numba import njit

from . import ann, memory
from .kernel_cache import CACHE
from .connectivity import layer_fan_out
from .energy import (CONVENTION, GRADED, PRESETS, Activity, EnergyModel, ann_energy, break_even_step,
                     payload_bits, snn_energy, synop_pj)
from .engine import simulate, simulation_bytes
from .ir import ACTIVATIONS, AvgPool2d, Network
from .model import ConvertedModel
from .progress import Progress
from .early_exit import stable_exit_steps
from .report import WITHIN_POINTS, layer_statistics, stable_decision_step, steps_to_within
from .snn import INPUT, OUTPUT, SimulationResult, SpikingNetwork

EXIT_STABLE = (2, 4, 8, 16)  # early-exit settings evaluated from the same run
RATE_BINS = 20  # the most bins of the per-neuron rate histograms
SCATTER_POINTS = 500  # (ANN, SNN) pairs kept per layer for the scatter plot (the first batch's, sampled)


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

    def __init__(self, snn: SpikingNetwork, net: Network, watched: dict[int, int], steps: int, seed: int):
        n_stages = len(snn.stages)
        self.snn, self.net, self.watched, self.steps = snn, net, watched, steps
        self.offsets = np.concatenate([[0], np.cumsum([s.size for s in snn.stages])])
        self.n, self.seconds, self.ann_correct = 0, 0.0, 0
        self.correct = np.zeros(steps)
        self.synops = np.zeros((n_stages, steps))
        self.events = np.zeros((n_stages, steps))
        self.input_ops = np.zeros(n_stages)
        self.weighted = np.zeros(n_stages)
        self.payload = np.zeros(n_stages)  # spikes carried by the synaptic events received (k per graded event)
        self.ann_fan_out = {i: f for i, layer in enumerate(net.layers)
                            if (f := layer_fan_out(layer, _in_shape(net, i))) is not None}
        self.ann_effective = np.zeros(len(net.layers))  # the ANN's MACs whose input is non-zero
        self.silent = np.zeros(n_stages)
        self.membrane_updates = 0  # membranes that changed in a step, all stages but gates
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
        self.membrane_updates += int(result.membrane_updates.sum())
        divisor = steps * max(1, snn.config.spike_limit)  # histogram over [0, most spikes per step]
        counts = [result.neuron_counts[:, self.offsets[s]:self.offsets[s + 1]] for s in range(len(snn.stages))]
        for s, stage_counts in enumerate(counts):
            self.silent[s] += _count_stats(stage_counts, divisor, self.rate_hist[s])
        self._add_payload(result, counts)
        self._add_nonzero_inputs(-1, x)
        scale = 1.0 / (steps * snn.config.spike_levels)  # spikes -> the layer's normalized units
        last = None
        for j, out in activations:
            last = out
            self._add_nonzero_inputs(j, out)
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


    def _add_payload(self, result: SimulationResult, counts: list[np.ndarray]) -> None:
        """Spikes carried into each stage: each source neuron's count times its fan-out (exact); what
        a stage receives from Poisson input spikes (binary) is its SynOps less the rest (where a
        stage reads the input and a population of graded events, a lower bound)."""
        poisson = self.snn.config.input == "poisson"
        for s, stage in enumerate(self.snn.stages):
            hidden = sum(float((counts[p.source] @ p.fan_out).sum()) for p in stage.projections if p.source != INPUT)
            self.payload[s] += hidden
            if poisson and any(p.source == INPUT for p in stage.projections):
                self.payload[s] += max(0.0, float(result.synops_per_step[:, s].sum()) - hidden)

    def _add_nonzero_inputs(self, j: int, out: np.ndarray) -> None:
        """The zero-skipping ANN: the operations of the layers reading ``out`` (layer j's output, -1:
        the input) whose input is non-zero."""
        for r in self.net.consumers(j):
            if r in self.ann_fan_out:
                nonzero = np.count_nonzero(out.reshape(len(out), -1), axis=0)  # per input neuron, over the batch
                self.ann_effective[r] += float(nonzero @ self.ann_fan_out[r])


# what the report holds per step beyond the simulation: per-step lists under every energy model, their
# JSON and CSV text, and the plotted curves (measured 1.6-1.8 KB per step at T = 5,000-50,000)
REPORT_BYTES_PER_STEP = 4096


def analysis_bytes(snn: SpikingNetwork, batch: int, steps: int) -> int:
    """Memory of one analysis: a batch simulated with neuron counts, the per-stage and per-step sums,
    and the report's per-step part."""
    steps = int(steps)  # a Python int: no overflow
    return (simulation_bytes(snn, batch, steps, count_neurons=True) + 16 * len(snn.stages) * steps
            + REPORT_BYTES_PER_STEP * steps)


def _in_shape(net: Network, i: int) -> tuple[int, ...]:
    j = net.inputs[i][0]
    return net.input_shape if j < 0 else net.shapes[j]


def analyze(model: ConvertedModel, x, y: np.ndarray, steps: int, batch_size: int = 256, seed: int = 0,
            energy: EnergyModel | None = None, progress: Progress | None = None,
            batches: Iterator[SimulationResult] | None = None, **settings) -> dict:
    """The analysis report of one model on labelled data (see the module docstring); ``settings``
    override the model's simulation settings; ``energy``: a model priced first (the headline)
    besides the presets. ``batches``: the simulation results of consecutive
    batches of ``batch_size`` samples (``count_neurons=True``), computed elsewhere (a Dask
    cluster, ``scaleout.results_in_order``); None: simulated here."""
    y = np.asarray(y)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as images, and at least one: {len(x)} images, {len(y)} labels")
    snn = model.build(**settings)
    memory.check(analysis_bytes(snn, min(len(x), batch_size), steps),
                 f"analyzing {len(x)} samples for {steps} steps (batches of {batch_size})")
    reference = dataclasses.replace(model, bias_shift={}).normalized()  # the ANN the SNN should follow
    watched = {s: stage_layer(model, stage.name) for s, stage in enumerate(snn.stages) if stage.kind != OUTPUT}
    totals = _Totals(snn, reference, watched, steps, seed)
    for start in range(0, len(x), batch_size):
        xb = ann.check_input(model.ann, x[start:start + batch_size])
        yb = y[start:start + batch_size]
        result = simulate(snn, xb, steps, seed=seed, first_sample=start, count_neurons=True) if batches is None \
            else next(batches)
        totals.add(result, xb, yb, ann.activations(reference, xb))
        if progress is not None:
            progress(totals.n, len(x))
    models = ([energy] if energy is not None else []) + [m for m in PRESETS.values()
                                                          if energy is None or m.name != energy.name]
    return _report(model, totals, models)


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


def _energy(totals: _Totals, models: list[EnergyModel]) -> dict:
    """Every model's SNN and ANN energy per sample (uJ), the headline model's also at the top level."""
    snn, net, n = totals.snn, totals.net, totals.n
    activity = Activity(totals.synops / n, totals.events / n, totals.input_ops / n, totals.payload / n)
    dense, skipping = ann.macs(net), list(totals.ann_effective / n)
    report = {"convention": CONVENTION, "payload_bits": payload_bits(snn), "headline": models[0].name, "models": {}}
    for m in models:
        per_stage = snn_energy(snn, activity, m) * 1e-6
        cumulative = np.cumsum(per_stage.sum(axis=0))
        ann_uj = {"dense": float(ann_energy(net, dense, m).sum()) * 1e-6,
                  "zero_skipping": float(ann_energy(net, skipping, m).sum()) * 1e-6}
        report["models"][m.name] = {
            "model": dataclasses.asdict(m), "synaptic_event_pj": synop_pj(snn, m),
            "snn_uj_per_sample_per_step": [float(e) for e in cumulative],
            "ann_uj_per_sample": ann_uj,
            "break_even_step": {k: break_even_step(cumulative, v) for k, v in ann_uj.items()},
            "snn_uj_per_layer": {st.name: float(e) for st, e in zip(snn.stages, per_stage.sum(axis=1))},
            "graded_conventions_uj": {c: float(snn_energy(snn, activity, m, c).sum()) * 1e-6 for c in GRADED}}
    head = report["models"][models[0].name]
    return report | {"ann_uj_per_sample": head["ann_uj_per_sample"]["dense"],
                     "snn_uj_per_sample_per_step": head["snn_uj_per_sample_per_step"],
                     "break_even_step": head["break_even_step"]["dense"]}


def wilson_interval(correct: np.ndarray, n: int, z: float = 1.96) -> np.ndarray:
    """95% Wilson score intervals of accuracies ``correct / n``, as (..., 2) [low, high]."""
    p = np.asarray(correct, np.float64) / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.stack([np.maximum(centre - half, 0.0), np.minimum(centre + half, 1.0)], axis=-1)


def _report(model: ConvertedModel, totals: _Totals, models: list[EnergyModel]) -> dict:
    snn, n, steps = totals.snn, totals.n, totals.steps
    accuracy, ann_accuracy = totals.correct / n, totals.ann_correct / n
    interval = wilson_interval(totals.correct, n)
    cumulative = np.cumsum(totals.synops.sum(axis=0)) / n
    macs = float(sum(st.macs for st in snn.stages))
    within = {p: steps_to_within(accuracy, ann_accuracy, float(p)) for p in WITHIN_POINTS}
    neurons = sum(st.size for st in snn.stages[:-1])
    input_ops = float(totals.input_ops.sum()) / n
    event_ops = float(cumulative[-1]) - input_ops
    graded = snn.config.spikes == "graded"
    first_spike, stable_step = np.concatenate(totals.first_spike), np.concatenate(totals.stable_step)
    energy = _energy(totals, models)
    headline, uj = models[0], energy["snn_uj_per_sample_per_step"]
    weight_macs = sum(m for layer, m in zip(totals.net.layers, ann.macs(totals.net)) if not isinstance(layer, AvgPool2d))

    def exit_uj(spent: float) -> float | None:
        """Energy of an early-exit row (arithmetic models: every synaptic event costs the same)."""
        if headline.memory:
            return None
        return (input_ops * headline.mac_pj + (spent - input_ops) * synop_pj(snn, headline)) * 1e-6

    return {
        "samples": n, "steps": steps, "settings": dataclasses.asdict(snn.config),
        "calibration": model.calibration, "levels_choice": model.levels_choice, "seconds": totals.seconds,
        "ann_accuracy": float(ann_accuracy), "accuracy": float(accuracy[-1]),
        "accuracy_per_step": [float(a) for a in accuracy],
        "accuracy_interval_per_step": np.round(interval, 6).tolist(),
        "cumulative_synops_per_step": [float(c) for c in cumulative],
        "steps_to_within": within,
        "steps_to_within_interval": {p: [steps_to_within(interval[:, 1], ann_accuracy, float(p)),
                                         steps_to_within(interval[:, 0], ann_accuracy, float(p))]
                                     for p in WITHIN_POINTS},
        "synops_to_within": {p: float(cumulative[t - 1]) if t else None for p, t in within.items()},
        "energy_to_within_uj": {p: uj[t - 1] if t else None for p, t in within.items()},
        "macs_per_sample": macs,
        "layers": _layers(totals),
        "energy": energy,
        "neurobench": {"activation_sparsity": 1 - float(totals.events[:-1].sum()) / (n * neurons * steps)
                       if neurons else None,
                       "synaptic_operations": {"effective_macs": input_ops * steps + (event_ops if graded else 0.0),
                                               "effective_acs": 0.0 if graded else event_ops,
                                               "dense": float(weight_macs * steps)},
                       "membrane_updates": totals.membrane_updates / n,
                       "note": "per sample, as NeuroBench counts them: the image presented at every step (the "
                               "first layer's MACs T times; eventsnn computes that current once), graded events "
                               "(k W) as MACs, dense operations of the conv and linear layers only (pooling "
                               "excluded); membrane updates: membranes that changed in a step, every layer's (the "
                               "output's included), in the steps the samples ran"},
        "latency": {"first_output_spike": _summary(first_spike[first_spike > 0]),
                    "stable_decision_step": _summary(stable_step),
                    "stable_decision_histogram": np.bincount(stable_step, minlength=steps + 1)[1:].tolist(),
                    "exit_stable": [{"stable_steps": k, "accuracy": float(c) / n, "mean_stop_step": float(stops) / n,
                                     "synops_per_sample": float(spent) / n, "uj_per_sample": exit_uj(float(spent) / n)}
                                    for k, (c, stops, spent) in totals.exits.items()]},
    }


def _summary(values: np.ndarray) -> dict | None:
    if values.size == 0:
        return None
    return {"mean": float(values.mean()), "median": float(np.median(values)), "p90": float(np.percentile(values, 90)),
            "max": int(values.max())}
