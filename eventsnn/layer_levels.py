"""Run length, levels and per-layer levels chosen on calibration data for the fewest SynOps at a
stated accuracy loss (``eventsnn convert --choose-levels``).

With graded spikes a neuron sends at most one event per step, carrying round(L a / lambda) spikes,
and an event costs the same SynOps whatever it carries. So events come from steps more than from
levels: on CIFAR-10, ResNet-20 at T = 1 decides as its ANN with L = 32 and takes 0.6 of the SynOps
of T = 2 at the default L = 8 (docs/performance.md, "Fewer SynOps: the chosen run length and levels").
``choose_levels`` measures this instead of guessing, on calibration images and without labels,
each candidate judged by the share of images on which its decision at step T differs from the
ANN's (``disagreement``):

1. Every run length t <= ``steps`` with every level count L in the model's levels times
   ``LEVEL_FACTORS`` (max_spikes keeps its ratio to L): one run of ``steps`` steps per L, read at
   each step (its first t steps are a run of t), or one run per t where a run depends on T. The
   limit is the lowest disagreement seen plus half of ``max_loss`` (half, as
   ``early_exit.choose_exit``, because the share seen on a thousand images is itself uncertain);
   the cheapest candidate within it wins.
2. With ``per_layer=True``: fine levels also turn small activations into events that a coarser
   grain would round to zero, and not every population needs them. At the chosen t and L each
   population in turn, those whose events cost the most SynOps first, takes the coarsest of L,
   L/2, L/4, ... (powers of two, so the scales change exactly) that keeps the disagreement within
   the limit, by bisection. A coarsening k multiplies the population's scale
   (``ConvertedModel.coarsening``): its spikes are each worth k/L of its scale.

Stage 2 is off by default because the calibration images cannot vouch for it. They come from the
training split, where the ANN's margins are wide, and its many small choices add up to errors
that flip test decisions but no training ones. On VGG-16 it saved 9% of the SynOps and changed
0.1% of the calibration decisions, yet cost 1.7 points on the test images: the disagreement with
the ANN went from 3.0% to 4.7% there (docs/performance.md). Stage 1's few candidates held their
test accuracy on every net measured.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import ann
from .convert import population_members
from .engine import simulate
from .model import ConvertedModel
from .progress import Progress
from .snn import MAX_SPIKES_LIMIT, SpikingNetwork

LEVEL_FACTORS = (1, 2, 4, 8)


def synops_caused(snn: SpikingNetwork, spikes: np.ndarray) -> np.ndarray:
    """Per stage, the SynOps its events (``SimulationResult.spikes``, summed over samples and steps)
    caused: its events times the mean fan-out of its neurons."""
    fan_out = np.zeros(len(snn.stages))
    for stage in snn.stages:
        for p in stage.projections:
            if p.source >= 0:
                fan_out[p.source] += p.fan_out.sum()
    sizes = np.array([stage.size for stage in snn.stages], np.float64)
    return spikes.sum(axis=(0, 2)) * fan_out / sizes


def _check(model: ConvertedModel, x, steps: int, max_loss: float) -> None:
    if model.config.spikes != "graded":
        raise ValueError(f"choosing levels needs graded spikes ({model.config.spikes} spikes carry one level each)")
    if model.bias_shift or model.potential_shift or model.early_exit:
        raise ValueError("choose the levels before calibrating and before choosing an early exit "
                         "(both depend on the levels)")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"choosing levels needs the longest run length to consider, a positive number of steps, "
                         f"not {steps!r}")
    if not 0 <= max_loss < 1:
        raise ValueError(f"the accepted loss is a share of the images in [0, 1), not {max_loss}")
    if len(x) == 0:
        raise ValueError("choosing levels needs calibration images")


def level_candidates(model: ConvertedModel) -> list[tuple[int, int]]:
    """(levels, max_spikes) pairs tried: the model's levels times ``LEVEL_FACTORS``, max_spikes in the
    same ratio, as far as an event's amount fits its byte."""
    config = model.config
    return [(config.levels * f, config.max_spikes * f) for f in LEVEL_FACTORS
            if config.max_spikes * f <= MAX_SPIKES_LIMIT]


class _Runs:
    """Runs of the calibration images, with what each is judged by."""

    def __init__(self, model: ConvertedModel, x: np.ndarray, seed: int, batch_size: int):
        self.model, self.x, self.seed, self.batch_size = model, x, seed, batch_size
        self.ann_decisions = ann.forward(model.ann, x).argmax(axis=1)
        self.count = 0

    def run(self, steps: int, coarsening: dict | None = None, prefixes: bool = False, **settings) -> list[dict]:
        """One row for a run of ``steps`` steps; with ``prefixes``, one for each run length t <= steps,
        read from the same run (its first t steps are a run of t: see ``causal``)."""
        model = dataclasses.replace(self.model, config=self.model.config.updated(**settings),
                                    coarsening=coarsening or {})
        result = simulate(model.build(), self.x, steps, seed=self.seed, batch_size=self.batch_size)
        self.count += 1
        return [{"steps": t, "levels": model.config.levels, "max_spikes": model.config.max_spikes,
                 "disagreement": float(np.mean(result.decisions[:, t - 1] != self.ann_decisions)),
                 "synops_per_image": float(result.synops_per_step[:, :, :t].sum() / len(self.x)),
                 "spikes": result.spikes[:, :, :t], "model": model}
                for t in (range(1, steps + 1) if prefixes else [steps])]


def causal(model: ConvertedModel) -> bool:
    """Whether a run's first t steps are a run of t steps: V(0) and the random streams do not
    depend on T, but a bias shift of threshold / 2T and the offset correction (from V(T)) do."""
    return model.config.shift == "membrane" and model.config.correction == "none"


def choose_levels(model: ConvertedModel, x: np.ndarray, steps: int, max_loss: float = 0.002,
                  per_layer: bool = False, seed: int = 0, batch_size: int = 256,
                  progress: Progress | None = None) -> ConvertedModel:
    """The model with the levels and max_spikes (and, ``per_layer``, a coarsening per population)
    chosen for the fewest SynOps in runs of at most ``steps`` steps (see the module docstring; any
    earlier coarsening is dropped first). Its ``levels_choice`` holds what was measured: the chosen
    ``steps`` (the run length to use), the grid of stage 1, the levels per population, the trade-off
    population by population, the limit, and SynOps per image and disagreement before and after
    stage 2."""
    _check(model, x, steps, max_loss)
    runs = _Runs(dataclasses.replace(model, coarsening={}, levels_choice=None), np.asarray(x), seed, batch_size)
    populations = population_members(model.ann)
    prefixes = causal(model)
    lengths = [steps] if prefixes else range(1, steps + 1)  # one run gives every T <= steps, or one per T
    candidates = [(t, levels, max_spikes) for levels, max_spikes in level_candidates(model) for t in lengths]
    total = len(candidates) + (len(populations) if per_layer else 0)
    grid = []
    for done, (t, levels, max_spikes) in enumerate(candidates):
        grid += runs.run(t, prefixes=prefixes, levels=levels, max_spikes=max_spikes)
        if progress is not None:
            progress(done + 1, total)
    limit = min(row["disagreement"] for row in grid) + max_loss / 2
    best = min((row for row in grid if row["disagreement"] <= limit),
               key=lambda row: (row["synops_per_image"], row["steps"], row["levels"]))
    chosen, trade_off = _coarsen(runs, best, populations, limit, progress, len(candidates), total) if per_layer \
        else (best, [])
    info = {"steps": best["steps"], "levels": best["levels"], "max_spikes": best["max_spikes"],
            "images": len(runs.x), "max_loss": max_loss, "per_layer": per_layer, "limit": limit, "runs": runs.count,
            "grid": [{k: row[k] for k in ("steps", "levels", "max_spikes", "disagreement", "synops_per_image")}
                     for row in grid],
            "population_levels": {name: best["levels"] // chosen["model"].coarsening.get(name, 1)
                                  for name in populations},
            "disagreement": {"before": best["disagreement"], "after": chosen["disagreement"]},
            "synops_per_image": {"before": best["synops_per_image"], "after": chosen["synops_per_image"]},
            "trade_off": trade_off}
    return dataclasses.replace(chosen["model"], levels_choice=info)


def _coarsen(runs: _Runs, best: dict, populations: dict, limit: float, progress: Progress | None, done: int,
             total: int) -> tuple[dict, list[dict]]:
    """Stage 2: each population's coarsest grain within the limit (the run kept, and the trade-off)."""
    steps, levels, max_spikes = best["steps"], best["levels"], best["max_spikes"]
    snn = best["model"].build()
    names = [stage.name for stage in snn.stages]
    caused = synops_caused(snn, best["spikes"])
    factors = [int(k) for k in 2 ** np.arange(8) if levels % k == 0]
    kept, trade_off = best, []
    for name in sorted(populations, key=lambda name: -caused[names.index(name)]):
        low, high = 0, len(factors) - 1  # factors[low] is known to keep the limit (k = 1: nothing changes)
        while low < high:
            middle = (low + high + 1) // 2
            trial, = runs.run(steps, dict(kept["model"].coarsening, **{name: factors[middle]}), levels=levels,
                              max_spikes=max_spikes)
            if trial["disagreement"] <= limit:
                low, kept = middle, trial
            else:
                high = middle - 1
        trade_off.append({"population": name, "levels": levels // factors[low],
                          "disagreement": kept["disagreement"], "synops_per_image": kept["synops_per_image"]})
        done += 1
        if progress is not None:
            progress(done, total)
    return kept, trade_off
