"""Writes an analysis (``analysis.analyze``) as report.json, report.md and PNG plots.

With several models (``--compare``) the first is the report and every model appears, under its
file name, in a comparison table and on the same accuracy plots. Plots need matplotlib (the
``plot`` extra); without it the JSON and markdown are still written and the skipped plots named.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .atomic import write_text


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"] + ["| " + " | ".join(r) + " |" for r in rows]


def layer_table(report: dict) -> list[str]:
    e = report["energy"]
    per_layer = e["models"][e["headline"]]["snn_uj_per_layer"]
    rows = [[layer["name"], layer["kind"], str(layer["neurons"]), f"{layer['rate']:.4f}",
             "-" if layer["silent_share"] is None else _pct(layer["silent_share"]),
             _num(layer["spikes_per_sample"]), _num(layer["spikes_weighted_per_sample"]), _num(layer["synops_per_sample"]),
             f"{layer['macs']:,}", _num(layer["synops_per_mac"]), _num(per_layer.get(layer["name"])),
             _num(layer.get("rate_correlation")), _num(layer.get("rate_error"))] for layer in report["layers"]]
    return _table(["layer", "kind", "neurons", "rate (spikes per neuron and step)", "silent", "events", "spikes (weighted)",
                   "SynOps received", "MACs", "SynOps/MAC", f"uJ at T ({e['headline']})", "r (SNN vs ANN)",
                   "mean abs error"], rows)


def _break_even(step: int | None, steps: int) -> str:
    """A break-even step for a table: 'never', a step, or '> T' when the SNN stayed cheaper all along."""
    return "never" if step is None else f"> {steps} (cheaper at every step run)" if step >= steps else str(step)


def _up_to(step: int | None, steps: int) -> str:
    if step is None:
        return "at no step (step 1 costs more)"
    if step >= steps:
        return f"at every step run (all {steps}; where it would cross lies beyond T)"
    return f"up to step {step}"


def comparison_table(reports: dict[str, dict]) -> list[str]:
    rows = []
    for name, r in reports.items():
        models = r["energy"]["models"]
        rows.append([name, r["settings"]["spikes"], _pct(r["ann_accuracy"]), _pct(r["accuracy"])]
                    + [str(r["steps_to_within"][p] or "never") for p in ("0.5", "1")]
                    + [_num(r["synops_to_within"]["0.5"]), _num(r["macs_per_sample"])]
                    + [_break_even(models[m]["break_even_step"][baseline], r["steps"])
                       for m, baseline in BREAK_EVEN_COLUMNS])
    return _table(["model", "spikes", "ANN", "SNN at T", "steps to ANN-0.5", "steps to ANN-1", "SynOps to ANN-0.5",
                   "ANN MACs"] + [f"break-even vs {b.replace('_', '-')} ANN ({m})" for m, b in BREAK_EVEN_COLUMNS], rows)


BREAK_EVEN_COLUMNS = (("fp32", "dense"), ("fp32", "zero_skipping"), ("int8", "dense"), ("fp32+memory", "dense"))


def energy_section(r: dict) -> list[str]:
    """Every model's energy, the ANN dense and zero-skipping, the graded-event conventions."""
    e, steps = r["energy"], r["steps"]
    c = e["convention"]
    marks = sorted({t for t in (1, 2, 4, 8, 16, 32, 64, 100, 300) if t <= steps} | {steps})
    lines = ["## Energy", "", "Priced from the converted network and its events, the same for every delivery path "
             "(`eventsnn.energy`). Conventions:", "",
             f"- binary spike: {c['binary_event']}; graded event: {c['graded_event']} "
             f"(payload here: {e['payload_bits']} bits);",
             f"- analog input: {c['analog_input']}; ANN: {c['ann']};", f"- memory terms: {c['memory']}.", "",
             "Models: " + "; ".join(f"{name}: add {m['model']['add_pj']} pJ, multiply {m['model']['mult_pj']} pJ, "
                                     f"weights {m['model']['weight_bits']}-bit, membranes {m['model']['state_bits']}-bit"
                                     f"{', with memory' if m['model']['memory'] else ''} ({m['model']['source']})"
                                     for name, m in e["models"].items()) + ".", "",
             "SNN energy per sample (uJ, cumulative) against the ANN's; break-even: the last step at which the SNN "
             "costs at most the ANN.", ""]
    rows = [[name] + [f"{m['snn_uj_per_sample_per_step'][t - 1]:.3g}" for t in marks]
            + [f"{m['ann_uj_per_sample']['dense']:.3g}", f"{m['ann_uj_per_sample']['zero_skipping']:.3g}",
               _break_even(m["break_even_step"]["dense"], steps), _break_even(m["break_even_step"]["zero_skipping"], steps)]
            for name, m in e["models"].items()]
    lines += _table(["model", *[f"T={t}" for t in marks], "ANN dense", "ANN zero-skipping", "break-even (dense)",
                     "break-even (zero-skipping)"], rows)
    lines += ["", "accuracy: " + ", ".join(f"T={t} {_pct(r['accuracy_per_step'][t - 1])}" for t in marks) + "."]
    if e["payload_bits"] > 1:
        lines += ["", "Graded events under each convention (SNN uJ per sample at T):", ""]
        lines += _table(["model", "payload (default)", "accumulates", "mac (NeuroBench)"],
                        [[name] + [f"{m['graded_conventions_uj'][k]:.3g}" for k in ("payload", "accumulates", "mac")]
                         for name, m in e["models"].items()])
    targets = [f"within {p} points from step {t}: {r['energy_to_within_uj'][p]:.3g} uJ"
               for p, t in r["steps_to_within"].items() if t]
    if targets:
        lines += ["", f"At the accuracy targets ({e['headline']}): " + "; ".join(targets) + "."]
    return lines


def markdown(reports: dict[str, dict], plots: list[str]) -> str:
    name, r = next(iter(reports.items()))
    low, high = r["accuracy_interval_per_step"][-1]
    lines = [f"# Efficiency analysis: {name}", "",
             f"{r['samples']} samples, T = {r['steps']}, settings: "
             + ", ".join(f"{k}={v}" for k, v in r["settings"].items()) + ".", "",
             f"ANN accuracy {_pct(r['ann_accuracy'])}; SNN accuracy at T = {r['steps']}: {_pct(r['accuracy'])} "
             f"(95% Wilson interval {_pct(low)}-{_pct(high)}).", "",
             "## Time and operations to the ANN's accuracy", ""]
    rows = [[f"ANN - {p} points", str(r["steps_to_within"][p] or "never"), _num(r["synops_to_within"][p]),
             _num(r["synops_to_within"][p] / r["macs_per_sample"]) if r["synops_to_within"][p] else "-"]
            for p in ("0.5", "1", "2")]
    lines += _table(["stays within", "from step", "SynOps per sample", "SynOps / ANN MACs"], rows)
    lines += ["", f"ANN: {r['macs_per_sample']:,.0f} MACs per sample. The same steps read off the top and the bottom "
              "of the SNN accuracy's 95% Wilson interval: " + ", ".join(
                  f"{p} points: {lo or 'never'} to {hi or 'never'}" for p, (lo, hi) in r["steps_to_within_interval"].items())
              + ".", ""]
    lines += energy_section(r) + ["", "## Layers", ""] + layer_table(r)
    nb = r["neurobench"]
    ops = nb["synaptic_operations"]
    lines += ["", "## NeuroBench names", "",
              f"activation sparsity {_num(nb['activation_sparsity'])}; synaptic operations per sample: effective MACs "
              f"{_num(ops['effective_macs'])}, effective ACs {_num(ops['effective_acs'])}, dense {_num(ops['dense'])}; "
              f"membrane updates {_num(nb['membrane_updates'])} ({nb['note']}).", "", "## Latency", ""]
    lat = r["latency"]
    for key, label in (("first_output_spike", "first output spike"), ("stable_decision_step", "decision final from step")):
        s = lat[key]
        lines.append(f"- {label}: " + ("no output spikes (membrane readout)" if s is None else
                                         f"mean {s['mean']:.2f}, median {s['median']:.0f}, 90th percentile {s['p90']:.0f}, max {s['max']}"))
    lines += ["", "Early exit once the decision is unchanged for K steps (`--exit-stable K`), from the same run:", ""]
    lines += _table(["K", "accuracy", "mean stop step", "SynOps per sample", f"uJ per sample ({r['energy']['headline']})"],
                    [[str(x["stable_steps"]), _pct(x["accuracy"]), f"{x['mean_stop_step']:.2f}", _num(x["synops_per_sample"]),
                      _num(x["uj_per_sample"])] for x in lat["exit_stable"]])
    if len(reports) > 1:
        lines += ["", "## Compared", ""] + comparison_table(reports)
    lines += [""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def _plots(reports: dict[str, dict], out: Path) -> tuple[list[str], list[str]]:
    """Draw the plots; returns (written, skipped)."""
    names = ["accuracy_vs_step", "accuracy_vs_synops", "accuracy_vs_energy", "layer_energy", "rate_vs_activation",
             "rate_histograms", "decision_latency"]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], names
    main = next(iter(reports.values()))
    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=100)
        plt.close(fig)
        written.append(str(out / f"{name}.png"))

    lowest = min(min(r["accuracy_per_step"]) for r in reports.values())

    def accuracy_axes(ax, label):
        ax.axhline(100 * main["ann_accuracy"], color="k", ls="--", lw=1, label="ANN accuracy")
        ax.set_ylim(max(0.0, 100 * lowest - 2), 100.5)  # every curve whole (binary spikes start near chance)
        ax.set_xlabel(label, fontsize=8)
        ax.set_ylabel("accuracy (%)", fontsize=8)
        ax.legend(fontsize=6)

    fig, ax = plt.subplots(figsize=(6, 4))
    for model, r in reports.items():
        steps = np.arange(1, r["steps"] + 1)
        ax.plot(steps, [100 * a for a in r["accuracy_per_step"]], label=model)
        band = 100 * np.asarray(r["accuracy_interval_per_step"])
        ax.fill_between(steps, band[:, 0], band[:, 1], alpha=0.2)
    ax.set_title("accuracy with its 95% Wilson interval", fontsize=8)
    accuracy_axes(ax, "time step")
    save(fig, "accuracy_vs_step")
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, r in reports.items():
        ax.plot(r["cumulative_synops_per_step"], [100 * a for a in r["accuracy_per_step"]], label=model)
    ax.axvline(main["macs_per_sample"], color="gray", ls=":", label="ANN MACs")
    ax.set_xscale("log")
    accuracy_axes(ax, "SynOps per sample (cumulative)")
    save(fig, "accuracy_vs_synops")
    energy_models = list(main["energy"]["models"])
    fig, axes = plt.subplots(1, len(energy_models), figsize=(3.6 * len(energy_models), 3.4), squeeze=False)
    for ax, m in zip(axes[0], energy_models):
        for model, r in reports.items():
            if m in r["energy"]["models"]:
                ax.plot(r["energy"]["models"][m]["snn_uj_per_sample_per_step"], [100 * a for a in r["accuracy_per_step"]],
                        label=model)
        ann_uj = main["energy"]["models"][m]["ann_uj_per_sample"]
        ax.axvline(ann_uj["dense"], color="gray", ls=":", label="ANN, dense")
        ax.axvline(ann_uj["zero_skipping"], color="gray", ls="-.", label="ANN, zero-skipping")
        ax.set_xscale("log")
        ax.set_title(m, fontsize=8)
        accuracy_axes(ax, "energy per sample (uJ, cumulative)")
    save(fig, "accuracy_vs_energy")
    fig, axes = plt.subplots(len(reports), 1, figsize=(max(6.0, 0.5 * len(main["layers"])), 2.8 * len(reports)),
                             squeeze=False)
    for ax, (model, r) in zip(axes[:, 0], reports.items()):
        head = r["energy"]["headline"]
        per_layer = r["energy"]["models"][head]["snn_uj_per_layer"]
        ax.bar(range(len(per_layer)), list(per_layer.values()))
        ax.set_xticks(range(len(per_layer)), list(per_layer), rotation=60, fontsize=6, ha="right")
        ax.set_ylabel(f"uJ per sample at T={r['steps']}", fontsize=7)
        ax.set_title(f"{model}: energy by layer ({head}; the events each layer receives and, with memory terms, its "
                     "updates)", fontsize=7)
    save(fig, "layer_energy")
    for model, r in reports.items():
        suffix = "" if model == next(iter(reports)) else f"_{_file_safe(model)}"  # one figure per model
        hidden = [layer for layer in r["layers"] if layer.get("scatter")]
        if not hidden:
            continue
        fig, axes = plt.subplots(1, len(hidden), figsize=(3 * len(hidden), 3), squeeze=False)
        for ax, layer in zip(axes[0], hidden):
            pts = list(zip(*layer["scatter"]))
            ax.scatter(pts[0], pts[1], s=3, alpha=0.5)
            top = max(max(pts[0]), max(pts[1]), 1e-6)
            ax.plot([0, top], [0, top], "k--", lw=1)
            r_text = "-" if layer["rate_correlation"] is None else f"{layer['rate_correlation']:.5f}"
            ax.set_title(f"{model}: {layer['name']} (r = {r_text})", fontsize=7)
            ax.set_xlabel("ANN activation (normalized)", fontsize=7)
            ax.set_ylabel("SNN spikes / (T levels)", fontsize=7)
        save(fig, "rate_vs_activation" + suffix)
        fig, axes = plt.subplots(1, len(hidden), figsize=(3 * len(hidden), 2.6), squeeze=False)
        for ax, layer in zip(axes[0], hidden):
            bins = len(layer["rate_histogram"])
            ax.bar(np.arange(bins) / bins, layer["rate_histogram"], width=1 / bins, align="edge")
            ax.set_yscale("log")
            ax.set_title(f"{model}: {layer['name']}", fontsize=7)
            ax.set_xlabel("spikes per step, as a fraction of the most a neuron can emit", fontsize=6)
            ax.set_ylabel("neurons x samples", fontsize=7)
        save(fig, "rate_histograms" + suffix)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for model, r in reports.items():
        histogram = r["latency"]["stable_decision_histogram"]
        ax.step(range(1, len(histogram) + 1), histogram, where="mid", label=model)
    ax.set_xlabel("step from which the decision never changes")
    ax.set_ylabel("samples")
    ax.legend(fontsize=7)
    save(fig, "decision_latency")
    return written, []


def per_step_csv(r: dict) -> str:
    """One row per step: accuracy with its interval, SynOps and each model's energy (cumulative)."""
    models = r["energy"]["models"]
    header = ["step", "accuracy", "accuracy_low", "accuracy_high", "cumulative_synops"] + [f"uj_{m}" for m in models]
    rows = [",".join(header)]
    for t in range(r["steps"]):
        values = [t + 1, r["accuracy_per_step"][t], *r["accuracy_interval_per_step"][t], r["cumulative_synops_per_step"][t]]
        values += [m["snn_uj_per_sample_per_step"][t] for m in models.values()]
        rows.append(",".join(str(v) for v in values))
    return "\n".join(rows) + "\n"


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_report(reports: dict[str, dict], out_dir: str | Path) -> tuple[list[str], list[str]]:
    """report.json (the first model's report, with the others under 'compare'), report.md, per_step.csv
    (per_step_<model>.csv for the others), plots.
    Everything is drawn and written into a temporary folder first and moved into ``out_dir`` only
    when all of it succeeded, so a failure (a plot that cannot be drawn, a full disk) leaves the
    previous report and its plots as they were. Returns (plots written, plots skipped)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".report."))
    try:
        plots, skipped = _plots(reports, staging)
        first, *others = reports
        document = dict(reports[first], model=first)
        if others:
            document["compare"] = {name: reports[name] for name in others}
        write_text(staging / "report.json", json.dumps(document, indent=1))
        write_text(staging / "report.md", markdown(reports, plots))
        for k, (name, r) in enumerate(reports.items()):
            write_text(staging / ("per_step.csv" if k == 0 else f"per_step_{_file_safe(name)}.csv"), per_step_csv(r))
        for path in sorted(staging.iterdir()):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [str(out / Path(p).name) for p in plots], skipped
