"""``eventsnn analyze``: efficiency analysis of one or more models; report.json, report.md, plots."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import numpy as np

from ..atomic import check_writable
from ..pipeline import check_labels, cluster, default_steps, load_data, load_model, results_on_cluster
from ..progress import terminal_progress
from .options import add_cluster, add_connectivity, add_data, add_settings, connectivity, settings
from .run import summary


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="efficiency analysis: accuracy vs steps, SynOps and energy, per-layer "
                                       "fidelity; writes report.json, report.md and plots")
    p.add_argument("model", help="spiking model file from `eventsnn convert`, or a NIR graph (.nir)")
    add_data(p)
    p.add_argument("--compare", nargs="*", default=[], help="more model files, in the same table and plots")
    p.add_argument("--energy-model", help="JSON file of one more energy model, reported first: {\"add_pj\", "
                                          "\"mult_pj\", \"operand_bits\", \"weight_bits\", \"state_bits\", \"memory\", "
                                          "\"name\", \"source\"} (missing keys as the fp32 preset's); the presets fp32, "
                                          "int8 and both with memory terms are always reported")
    add_connectivity(p, limit=False)
    p.add_argument("-o", "--output-dir", required=True, help="directory for report.json, report.md and the plots")
    add_cluster(p, chunk=False)
    add_settings(p)
    p.set_defaults(func=run)


def model_labels(paths: list[str]) -> list[str]:
    """A name per model file for the report: its file name, or its path where names repeat."""
    names = [Path(p).name for p in paths]
    labels = [name if names.count(name) == 1 else str(p) for name, p in zip(names, paths)]
    return [label if labels.count(label) == 1 else f"{label} #{k + 1}" for k, label in enumerate(labels)]


def run(args: argparse.Namespace) -> int:
    from ..analysis import analyze
    from ..analysis_report import write_report
    from ..energy import load_energy_model

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_writable(out / "report.json", (args.model, args.data))  # before the long work
    energy = load_energy_model(args.energy_model) if args.energy_model else None
    x, y = load_data(args.data, args.limit)
    build = connectivity(args, **settings(args))
    steps = args.steps
    reports = {}
    labels = model_labels([args.model, *args.compare])
    with cluster(args.scheduler, args.workers) as client:
        for path, label in zip([args.model, *args.compare], labels):
            model = load_model(path)
            check_labels(y, int(np.prod(model.ann.output_shape)), args.data)
            if steps is None:  # the first model's, for all
                steps, why = default_steps(model, settings(args))
                print(f"T={steps} steps ({why}; --steps to change)")
            batches = results_on_cluster(client, model, args.data, x, steps, args.seed, args.batch, build)
            with contextlib.closing(batches) if batches is not None else contextlib.nullcontext():
                # closed here, while the client is open (its last step cancels what is left)
                reports[label] = analyze(model, x, y, steps, args.batch, args.seed, energy,
                                         terminal_progress(f"analyzing {label}"), batches, **build)
    plots, skipped = write_report(reports, out)
    report = reports[labels[0]]
    rate = report["samples"] / report["seconds"] if report["seconds"] else None
    print(summary({**report, "samples_per_second": rate}))
    e = report["energy"]
    print(f"energy per sample ({e['headline']}): ANN {e['ann_uj_per_sample']:.3g} uJ; SNN at T=1: "
          f"{e['snn_uj_per_sample_per_step'][0]:.3g} uJ, at T={steps}: {e['snn_uj_per_sample_per_step'][-1]:.3g} uJ; "
          f"break-even step {e['break_even_step']} (report.md prices int8 and memory too)")
    print(f"wrote {out / 'report.json'}, {out / 'report.md'} and {len(plots)} plots"
          + (f" (skipped without matplotlib, `pip install matplotlib`: {', '.join(skipped)})" if skipped else ""))
    return 0
