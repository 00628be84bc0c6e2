"""Calibration without retraining (Li et al., ICML 2021, "A free lunch from ANN: towards
efficient, accurate spiking neural networks calibration": bias and potential correction).

A converted net run for T steps misses its ANN's activations by a systematic amount per channel
(quantization, the time the spikes need to arrive, clipping at the largest rate). After
normalization, population by population in network order, the SNN is run for the T it is meant
for on calibration images and each channel's bias is shifted by the gap between the mean of the
ANN's normalized activation (clipped to what the population can emit per step) and the mean of
the SNN's value (spikes / (T levels)):

    b_c <- b_c + mean(clip(a_c, 0, a_max)) - mean(N_c / (T levels))

Potential calibration puts the same correction into the initial membrane potential instead: the
charge of T steps at once, V_c(0) <- V_c(0) + T levels (mean(clip(a_c)) - mean(N_c / (T levels))),
which moves the spike count of a T-step run by the same amount without adding a current every
step (``ConvertedModel.potential_shift``, V units; ``Stage.potential`` in the built network).

A population's shift is kept only when the same measurement, repeated with it, shows a smaller
mean absolute channel gap, so calibration never makes that statistic worse on the calibration
set. The shifts are matched to means, not to decisions, so a last check compares how often the
SNN decides as the ANN does on the calibration images with and without them, and keeps none if
they lower it (at T = 1 with binary spikes, a residual net's means improve while its decisions
collapse to one class). Shifts live beside the ANN (``ConvertedModel.bias_shift``, normalized
units), which stays as trained. Forward passes only: one simulation of the calibration images
per population, plus one.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from . import ann
from .convert import bias_carrier, spiking_roles
from .engine import simulate
from .ir import Network
from .model import ConvertedModel

Progress = Callable[[int, int], None]


def shiftable_populations(net: Network) -> list[int]:
    """Layers whose spiking population has a bias to shift: hidden affine layers, and adds that
    have an affine branch (the shift goes to that branch's bias)."""
    roles = spiking_roles(net)
    return [i for i, role in enumerate(roles) if role == "hidden" or (role == "add" and bias_carrier(net, i) is not None)]


def _channel_sums(values: np.ndarray, channels: int) -> np.ndarray:
    """Sum over samples and positions of (N, C, ...) or (N, C*positions) values, per channel."""
    return values.reshape(len(values), channels, -1).sum(axis=(0, 2), dtype=np.float64)


def _positions(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def ann_targets(net: Network, populations: list[int], x, ceiling: float, batch_size: int = 128) -> dict[int, np.ndarray]:
    """Per population, the mean over samples and positions of each channel's normalized ANN
    activation, clipped to [0, ceiling]."""
    readers = {net.consumers(i)[0]: i for i in populations}  # the activation after each population
    sums = {i: np.zeros(net.shapes[i][0]) for i in populations}
    for start in range(0, len(x), batch_size):
        for j, out in ann.activations(net, x[start:start + batch_size]):
            if j in readers:
                sums[readers[j]] += _channel_sums(np.clip(out, 0, ceiling), net.shapes[j][0])
    return {i: sums[i] / (len(x) * _positions(net.shapes[i])) for i in populations}


def snn_values(model: ConvertedModel, populations: list[int], x, steps: int,
               batch_size: int = 128) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Per population, the mean over samples and positions of each channel's spikes / (T levels);
    and the SNN's decision for each sample at step T."""
    snn = model.build()
    names = [stage.name for stage in snn.stages]
    offsets = np.concatenate([[0], np.cumsum([stage.size for stage in snn.stages])])
    net = model.ann
    sums = {i: np.zeros(net.shapes[i][0]) for i in populations}
    decisions = []
    for start in range(0, len(x), batch_size):
        result = simulate(snn, x[start:start + batch_size], steps, count_neurons=True)
        counts = result.neuron_counts
        decisions.append(result.predictions())
        for i in populations:
            s = names.index(net.layers[i].name)
            sums[i] += _channel_sums(counts[:, offsets[s]:offsets[s + 1]], net.shapes[i][0])
    scale = {i: len(x) * _positions(net.shapes[i]) * steps * model.config.spike_levels for i in populations}
    return {i: sums[i] / scale[i] for i in populations}, np.concatenate(decisions)


METHODS = ("bias", "potential")


def calibrate(model: ConvertedModel, x, steps: int, method: str = "bias", batch_size: int = 128,
              progress: Progress | None = None) -> ConvertedModel:
    """The model calibrated for runs of ``steps`` steps (see the module docstring): per-channel bias
    shifts (``method="bias"``) or offsets of the initial membrane potential (``"potential"``);
    ``x``: calibration images (an array or lazy Images)."""
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, not {method!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"calibration needs the run length it is meant for, a positive number of steps, not {steps!r}")
    if len(x) == 0:
        raise ValueError("the calibration set is empty")
    model = dataclasses.replace(model, bias_shift={}, potential_shift={}, calibration=None)
    populations = shiftable_populations(model.ann)
    ceiling = model.config.spike_limit / model.config.spike_levels
    targets = ann_targets(model.normalized(), populations, x, ceiling, batch_size)
    ann_decisions = ann.forward(model.normalized(), x).argmax(axis=1)
    values, decisions = snn_values(model, populations, x, steps, batch_size)
    uncalibrated_agreement = np.mean(decisions == ann_decisions)
    # a bias shift adds the gap every step; an offset of V(0) adds the charge of T steps at once
    per_gap = 1.0 if method == "bias" else float(steps * model.config.spike_levels)
    field = "bias_shift" if method == "bias" else "potential_shift"
    shifts: dict[str, np.ndarray] = {}
    kept = []
    for done, i in enumerate(populations):
        name = model.ann.layers[i].name
        gap = targets[i] - values[i]
        trial = dict(shifts, **{name: (per_gap * gap).astype(np.float32)})
        trial_values, trial_decisions = snn_values(dataclasses.replace(model, **{field: trial}), populations, x, steps,
                                                   batch_size)
        if np.abs(targets[i] - trial_values[i]).mean() < np.abs(gap).mean():
            shifts, values, decisions = trial, trial_values, trial_decisions
            kept.append(name)
        if progress is not None:
            progress(done + 1, len(populations))
    agreement = {"uncalibrated": float(uncalibrated_agreement), "calibrated": float(np.mean(decisions == ann_decisions))}
    if agreement["calibrated"] < agreement["uncalibrated"]:  # better layer means, worse decisions: keep none
        shifts, kept = {}, []
    info = {"method": method, "steps": int(steps), "images": len(x), "shifted": kept,
            "skipped": [model.ann.layers[i].name for i in populations if model.ann.layers[i].name not in kept],
            "agreement_with_ann": agreement}
    return dataclasses.replace(model, calibration=info, **{field: shifts})


def calibrate_biases(model: ConvertedModel, x, steps: int, batch_size: int = 128,
                     progress: Progress | None = None) -> ConvertedModel:
    """``calibrate`` with per-channel bias shifts."""
    return calibrate(model, x, steps, "bias", batch_size, progress)
