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
    rows = [[layer["name"], layer["kind"], str(layer["neurons"]), f"{layer['rate']:.4f}",
             "-" if layer["silent_share"] is None else _pct(layer["silent_share"]),
             _num(layer["spikes_per_sample"]), _num(layer["spikes_weighted_per_sample"]), _num(layer["synops_per_sample"]),
             f"{layer['macs']:,}", _num(layer["synops_per_mac"]), _num(layer.get("rate_correlation")),
             _num(layer.get("rate_error"))] for layer in report["layers"]]
    return _table(["layer", "kind", "neurons", "rate (spikes per neuron and step)", "silent", "events", "spikes (weighted)", "SynOps received", "MACs",
                   "SynOps/MAC", "r (SNN vs ANN)", "mean abs error"], rows)


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
        e = r["energy"]
        rows.append([name, r["settings"]["spikes"], _pct(r["ann_accuracy"]), _pct(r["accuracy"])]
                    + [str(r["steps_to_within"][p] or "never") for p in ("0.5", "1")]
                    + [_num(r["synops_to_within"]["0.5"]), _num(r["macs_per_sample"]),
                       _break_even(e["break_even_step"], r["steps"]),
                       _break_even(e["memory_model"]["break_even_step"], r["steps"])])
    return _table(["model", "spikes", "ANN", "SNN at T", "steps to ANN-0.5", "steps to ANN-1", "SynOps to ANN-0.5",
                   "ANN MACs", "break-even step (common)", "break-even step (memory-aware)"], rows)


def markdown(reports: dict[str, dict], plots: list[str]) -> str:
    name, r = next(iter(reports.items()))
    e = r["energy"]
    c = e["convention"]
    lines = [f"# Efficiency analysis: {name}", "",
             f"{r['samples']} samples, T = {r['steps']}, settings: "
             + ", ".join(f"{k}={v}" for k, v in r["settings"].items()) + ".", "",
             f"ANN accuracy {_pct(r['ann_accuracy'])}; SNN accuracy at T = {r['steps']}: {_pct(r['accuracy'])}.", "",
             "## Time and operations to the ANN's accuracy", ""]
    rows = [[f"ANN - {p} points", str(r["steps_to_within"][p] or "never"), _num(r["synops_to_within"][p]),
             _num(r["synops_to_within"][p] / r["macs_per_sample"]) if r["synops_to_within"][p] else "-"]
            for p in ("0.5", "1", "2")]
    lines += _table(["stays within", "from step", "SynOps per sample", "SynOps / ANN MACs"], rows)
    lines += ["", f"ANN: {r['macs_per_sample']:,.0f} MACs per sample.", "", "## Energy", "",
              f"Common convention ({c['source']}): {c['e_ac_pj']} pJ per accumulate, {c['e_mac_pj']} pJ per MAC; "
              f"{c['analog_input']}; the ANN: {c['ann']}.", ""]
    marks = sorted({t for t in (1, 2, 4, 8, 16, 32, 64, 100, 300) if t <= r["steps"]} | {r["steps"]})
    lines += _table(["", *[f"T={t}" for t in marks]],
                    [["SNN uJ per sample"] + [f"{e['snn_uj_per_sample_per_step'][t - 1]:.3g}" for t in marks],
                     ["accuracy"] + [_pct(r["accuracy_per_step"][t - 1]) for t in marks]])
    m = e["memory_model"]
    lines += ["", f"ANN: {e['ann_uj_per_sample']:.3g} uJ per sample. The SNN's cumulative energy stays at or below the "
              f"ANN's {_up_to(e['break_even_step'], r['steps'])}.", "",
              f"Memory-aware model ({m['convention']}):", ""]
    lines += _table(["", *[f"T={t}" for t in marks]],
                    [["SNN uJ per sample"] + [f"{m['snn_uj_per_sample_per_step'][t - 1]:.3g}" for t in marks]])
    lines += ["", f"ANN: {m['ann_uj_per_sample']:.3g} uJ per sample; the SNN stays at or below it "
              f"{_up_to(m['break_even_step'], r['steps'])}.", "",
              "## Layers", ""] + layer_table(r)
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
    lines += _table(["K", "accuracy", "mean stop step", "SynOps per sample"],
                    [[str(x["stable_steps"]), _pct(x["accuracy"]), f"{x['mean_stop_step']:.2f}", _num(x["synops_per_sample"])]
                     for x in lat["exit_stable"]])
    if len(reports) > 1:
        lines += ["", "## Compared", ""] + comparison_table(reports)
    lines += [""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def _plots(reports: dict[str, dict], out: Path) -> tuple[list[str], list[str]]:
    """Draw the plots; returns (written, skipped)."""
    names = ["accuracy_vs_step", "accuracy_vs_synops", "accuracy_vs_energy", "rate_vs_activation", "rate_histograms",
             "decision_latency"]
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

    for name, x_key, label in (("accuracy_vs_step", None, "time step"),
                               ("accuracy_vs_synops", "cumulative_synops_per_step", "SynOps per sample (cumulative)"),
                               ("accuracy_vs_energy", "energy", "energy per sample (uJ, common convention)")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for model, r in reports.items():
            xs = (range(1, r["steps"] + 1) if x_key is None else r["energy"]["snn_uj_per_sample_per_step"]
                  if x_key == "energy" else r[x_key])
            ax.plot(list(xs), [100 * a for a in r["accuracy_per_step"]], label=model)
        ax.axhline(100 * main["ann_accuracy"], color="k", ls="--", lw=1, label="ANN accuracy")
        if x_key == "cumulative_synops_per_step":
            ax.axvline(main["macs_per_sample"], color="gray", ls=":", label="ANN MACs")
        if x_key == "energy":
            ax.axvline(main["energy"]["ann_uj_per_sample"], color="gray", ls=":", label="ANN energy")
        if x_key is not None:
            ax.set_xscale("log")
        lowest = min(min(r["accuracy_per_step"]) for r in reports.values())
        ax.set_ylim(max(0.0, 100 * lowest - 2), 100.5)  # every curve whole (binary spikes start near chance)
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=7)
        save(fig, name)
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


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_report(reports: dict[str, dict], out_dir: str | Path) -> tuple[list[str], list[str]]:
    """report.json (the first model's report, with the others under 'compare'), report.md, plots.
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
        for path in sorted(staging.iterdir()):
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [str(out / Path(p).name) for p in plots], skipped
