"""Efficiency analysis of a simulation: per-layer spikes, SynOps and MACs, accuracy vs time, energy.

Conventions: SynOps of a layer = sum over the events it receives of the sender's fan-out (a graded
event carrying k spikes counts once per synapse; ``spikes_weighted_per_sample`` counts k). With
analog input, the constant current W x of every layer that reads the input is computed once per
sample; those operations (non-zero pixels times their fan-out, ``SimulationResult.input_synops``)
are counted once, as multiply-accumulates in the energy estimate. Energy: the arithmetic of an
``energy.EnergyModel`` (default fp32, Horowitz 2014) under ``energy.CONVENTION`` (a graded event is
one multiply by its payload plus an add); membrane updates are not priced, as is common
(``analyze`` counts them for NeuroBench).
``eventsnn analyze`` reports every model, the zero-skipping ANN and the memory terms.
"""

from __future__ import annotations

import numpy as np

from .energy import HEADLINE, PRESETS, EnergyModel, synop_pj
from .engine.profiling import PHASES
from .snn import GATE, IF, OUTPUT, SimulationConfig, SimulationResult, SpikingNetwork, Stage

_KIND_NAMES = {IF: "IF", GATE: "maxpool gate"}


def stable_decision_step(decisions: np.ndarray) -> np.ndarray:
    """Per sample, the first step (1-based) from which the decision never changes again."""
    final = decisions[:, -1:]
    changed = decisions != final
    last_change = np.where(changed.any(axis=1), decisions.shape[1] - np.argmax(changed[:, ::-1], axis=1), 0)
    return last_change + 1


def steps_to_within(accuracy_per_step, ann_accuracy: float, points: float) -> int | None:
    """The first step (1-based) from which the accuracy stays within ``points`` percentage points
    of the ANN's until the end of the run; None if the last step is not within."""
    curve = np.asarray(accuracy_per_step, np.float64)
    below = np.flatnonzero(curve < ann_accuracy - points / 100 - 1e-12)
    if below.size == 0:
        return 1
    return int(below[-1]) + 2 if below[-1] + 1 < curve.size else None


WITHIN_POINTS = ("0.5", "1", "2")


def mean_steps_run(result: SimulationResult) -> float:
    """The steps a sample was simulated for, on average: T, less where early exit stopped samples."""
    if result.exit_step is None or not len(result.exit_step):
        return float(result.steps)
    return float(np.where(result.exit_step > 0, result.exit_step, result.steps).mean())


def kind_label(stage: Stage, config: SimulationConfig) -> str:
    """What the reports call a stage's kind: "IF", "maxpool gate" or "output <readout>"."""
    return f"output {config.output}" if stage.kind == OUTPUT else _KIND_NAMES[stage.kind]


def layer_statistics(snn: SpikingNetwork, spikes: np.ndarray, carried: np.ndarray, synops: np.ndarray,
                     n: int, steps: float) -> list[dict]:
    """The per-layer entries of the run report and the analysis. ``spikes`` (events), ``carried``
    (spikes weighted by what each event carries), ``synops`` (operations the layer receives): per
    stage, totals over ``n`` samples of ``steps`` steps on average (fewer where samples stopped
    early; totals, so that both callers divide once). ``rate``: events per neuron per step run."""
    layers = []
    for s, stage in enumerate(snn.stages):
        spikes_per_sample = float(spikes[s]) / n
        synops_per_sample = float(synops[s]) / n
        layers.append({
            "name": stage.name, "kind": kind_label(stage, snn.config),
            "neurons": stage.size, "spikes_per_sample": spikes_per_sample,
            "rate": spikes_per_sample / (stage.size * steps),
            "spikes_weighted_per_sample": float(carried[s]) / n,
            "synops_per_sample": synops_per_sample, "macs": stage.macs,
            "synops_per_mac": synops_per_sample / stage.macs if stage.macs else None,
        })
    return layers


def efficiency_report(snn: SpikingNetwork, result: SimulationResult, labels: np.ndarray | None = None,
                      ann_accuracy: float | None = None, energy: EnergyModel = PRESETS[HEADLINE]) -> dict:
    """A JSON-ready summary of one simulation."""
    n = max(len(result.decisions), 1)
    steps = result.steps
    layers = layer_statistics(snn, result.spikes.sum(axis=(0, 2)), result.spike_amounts.sum(axis=0),
                              result.synops.sum(axis=0), n, mean_steps_run(result))
    synops = sum(layer["synops_per_sample"] for layer in layers)
    macs = sum(stage.macs for stage in snn.stages)
    input_ops = float(result.input_synops.sum()) / n if result.input_synops is not None else 0.0
    event_pj = synop_pj(snn, energy)
    report = {
        "samples": len(result.decisions), "steps": steps, "settings": snn.config.__dict__.copy(),
        "spikes_per_sample": sum(layer["spikes_per_sample"] for layer in layers),
        "spikes_weighted_per_sample": sum(layer["spikes_weighted_per_sample"] for layer in layers),
        "synops_per_sample": synops, "macs_per_sample": macs,
        "energy_snn_uj_per_sample": ((synops - input_ops) * event_pj + input_ops * energy.mac_pj) * 1e-6,
        "energy_ann_uj_per_sample": macs * energy.mac_pj * 1e-6,
        "energy_pj": {"model": energy.name, "synaptic_event": event_pj, "mac": energy.mac_pj},
        "first_output_spike_mean": float(result.first_spike[result.first_spike > 0].mean())
        if np.any(result.first_spike > 0) else None,
        "stable_decision_step_mean": float(stable_decision_step(result.decisions).mean()) if len(result.decisions) else None,
        "seconds": result.seconds, "samples_per_second": len(result.decisions) / result.seconds if result.seconds else None,
        "layers": layers,
    }
    if labels is not None:
        per_step = result.accuracy_per_step(labels)
        report["accuracy"] = float(per_step[-1])
        report["accuracy_per_step"] = [float(a) for a in per_step]
        cumulative = np.cumsum(result.spikes.sum(axis=(0, 1))) / n
        report["cumulative_spikes_per_step"] = [float(c) for c in cumulative]
        if result.synops_per_step is not None:
            cumulative = np.cumsum(result.synops_per_step.sum(axis=(0, 1))) / n
            report["cumulative_synops_per_step"] = [float(c) for c in cumulative]
    if ann_accuracy is not None:
        report["ann_accuracy"] = ann_accuracy
        if labels is not None:
            report["steps_to_within"] = {p: steps_to_within(per_step, ann_accuracy, float(p)) for p in WITHIN_POINTS}
    return report


def format_table(report: dict) -> str:
    """The per-layer table and a summary, as aligned text."""
    head = (f"{'layer':<12}{'kind':>16}{'neurons':>10}{'rate (spikes/neuron/step)':>27}{'spikes/smp':>13}"
            f"{'SynOps received/smp':>21}{'MACs':>13}{'SynOps/MAC':>12}")
    lines = [head, "-" * len(head)]
    for layer in report["layers"]:
        ratio = f"{layer['synops_per_mac']:.3f}" if layer["synops_per_mac"] is not None else "-"
        lines.append(f"{layer['name']:<12}{layer['kind']:>16}{layer['neurons']:>10}{layer['rate']:>27.4f}"
                     f"{layer['spikes_per_sample']:>13.1f}{layer['synops_per_sample']:>21.4g}"
                     f"{layer['macs']:>13,}{ratio:>12}")
    lines.append("-" * len(head))
    lines.append(f"{'total':<12}{'':>16}{'':>10}{'':>27}{report['spikes_per_sample']:>13.1f}"
                 f"{report['synops_per_sample']:>21.4g}{report['macs_per_sample']:>13,}"
                 f"{report['synops_per_sample'] / max(report['macs_per_sample'], 1):>12.3f}")
    lines.append(f"energy per sample: SNN {report['energy_snn_uj_per_sample']:.2f} uJ, ANN {report['energy_ann_uj_per_sample']:.2f} uJ "
                 f"({report['energy_pj']['model']}: {report['energy_pj']['synaptic_event']:.3g} pJ per synaptic event, "
                 f"{report['energy_pj']['mac']:.3g} pJ per MAC; the analog input's current as MACs)")
    return "\n".join(lines)


def phase_report(result: SimulationResult) -> dict:
    """Where a profiled run's time went (``simulate(..., profile=True)``): CPU seconds per stage and
    phase, and each phase's share of the whole."""
    if result.phase_seconds is None:
        raise ValueError("the run was not profiled (simulate with profile=True)")
    seconds = result.phase_seconds.sum(axis=0)
    total = float(seconds.sum()) or 1.0
    return {"total_cpu_seconds": float(seconds.sum()),
            "share": {p: float(seconds[:, k].sum() / total) for k, p in enumerate(PHASES)},
            "stages": {name: {p: float(seconds[s, k]) for k, p in enumerate(PHASES)}
                       for s, name in enumerate(result.stage_names)}}


def format_phase_table(profile: dict) -> str:
    """The phase report as a text table: per stage, each phase's share of the whole run."""
    phases = list(profile["share"])
    total = profile["total_cpu_seconds"] or 1.0
    lines = [f"{'stage':<14}" + "".join(f"{p:>11}" for p in phases)]
    for name, by_phase in profile["stages"].items():
        lines.append(f"{name:<14}" + "".join(f"{by_phase[p] / total:>11.1%}" for p in phases))
    lines.append(f"{'all':<14}" + "".join(f"{profile['share'][p]:>11.1%}" for p in phases))
    return "\n".join(lines) + f"\n({profile['total_cpu_seconds']:.3f} CPU seconds, all threads)"
