"""``eventsnn run``: simulate a spiking model on a data set; accuracy and efficiency."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ..atomic import check_writable, write_text
from ..pipeline import (ann_accuracy, calibrated_steps, check_labels, cluster, default_steps, early_exit_options,
                        load_data, load_model, run_report, simulate_model)
from ..engine import SCHEDULES
from ..report import format_phase_table, format_table, phase_report
from .options import NON_NEGATIVE, POSITIVE, add_cluster, add_connectivity, add_data, add_settings, connectivity, settings

ACCURACY_MARKS = (1, 2, 4, 8, 16, 32, 64, 100, 200, 300, 500, 1000)  # steps shown in the summary


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="simulate a spiking model on a data set and report accuracy and efficiency")
    p.add_argument("model", help="spiking model file from `eventsnn convert`, or a NIR graph (.nir)")
    add_data(p)
    p.add_argument("--engine", choices=("event", "reference"), default="event",
                   help="the event engine, or the dense NumPy oracle")
    p.add_argument("--threads", type=POSITIVE, help="threads of the event engine (default: all cores)")
    p.add_argument("--schedule", choices=SCHEDULES, default="step",
                   help="event engine: each sample step by step (default), or a batch stage by stage with dense "
                        "layer inputs delivered as matrix products (faster on wide conv nets; not with signed spikes, "
                        "the softmax or spike readouts, early exit, offset correction or --profile)")
    p.add_argument("--profile", action="store_true",
                   help="time each phase of each stage with the CPU's cycle counter and print where the time went "
                        "(event engine in this process; also in the --json report)")
    add_connectivity(p)
    p.add_argument("--exit-stable", type=NON_NEGATIVE,
                   help="early exit: stop a sample once its decision is unchanged for this many steps (0: off; "
                        "default: the rule chosen by `convert --exit auto`, else off)")
    p.add_argument("--exit-margin", type=NON_NEGATIVE,
                   help="early exit: stop once the leading class has this many more output spikes")
    p.add_argument("--json", help="write the report as JSON to this file")
    add_cluster(p)
    add_settings(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    on_cluster = bool(args.scheduler or args.workers)
    if on_cluster and args.engine != "event":
        raise ValueError("a Dask cluster runs the event engine")
    if args.profile and (args.engine != "event" or on_cluster):
        raise ValueError("--profile times the event engine in this process (not the reference, not a cluster)")
    if args.json:
        check_writable(args.json, (args.model, args.data))  # before the long work
    model = load_model(args.model)
    steps = args.steps
    if steps is None:
        steps, why = default_steps(model, settings(args))
        print(f"T={steps} steps ({why}; --steps to change)")
    if calibrated_steps(model) not in (None, steps):
        print(f"note: {args.model} was calibrated for T={calibrated_steps(model)}; running T={steps} works, "
              "but the calibration fits best at its own T")
    x, y = load_data(args.data, args.limit)
    check_labels(y, int(np.prod(model.ann.output_shape)), args.data)
    options = {"threads": args.threads, **early_exit_options(model, args.exit_stable, args.exit_margin, settings(args),
                                                             schedule=args.schedule)}
    if args.schedule != "step":
        if args.engine != "event":
            raise ValueError("--schedule is an option of the event engine")
        options["schedule"] = args.schedule
    if args.engine == "reference" and (options["stable_steps"] or options["exit_margin"]):
        raise ValueError("early exit is an option of the event engine (--exit-stable 0 turns off a stored rule)")
    if args.profile:
        options["profile"] = True
    build = connectivity(args, **settings(args))
    snn = model.build(**build)  # before the ANN's pass: a network too large for memory is refused at once
    ann = ann_accuracy(model.ann, x, y)
    with cluster(args.scheduler, args.workers) as client:
        result = simulate_model(model, snn, args.data, x, steps, build, args.seed, args.batch, args.engine, options,
                                client, args.chunk)
    report = run_report(snn, result, y, ann, args.engine)
    if "exit_step_mean" in report:
        print(f"early exit: {np.mean(result.exit_step > 0):.1%} of samples stopped, mean stop step "
              f"{report['exit_step_mean']:.1f} of {steps}")
    print(summary(report))
    print(format_table(report))
    if args.profile:
        report["profile"] = phase_report(result)
        print("where the time went (share of the run's CPU time, by stage and phase):")
        print(format_phase_table(report["profile"]))
    if args.json:
        write_text(args.json, json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


def summary(report: dict) -> str:
    """Accuracy (final and by step), steps to stay near the ANN, and speed: a few lines."""
    lines = [f"SNN accuracy at T={report['steps']}: {report['accuracy']:.4f}   "
             f"ANN accuracy: {report['ann_accuracy']:.4f}   ({report['samples']} samples)"]
    curve = report["accuracy_per_step"]
    marks = sorted({t for t in ACCURACY_MARKS if t < len(curve)} | {len(curve)})
    lines.append("accuracy by step: " + ", ".join(f"T={t}: {curve[t - 1]:.4f}" for t in marks))
    if report.get("settings", {}).get("correction") == "offset":
        lines.append(f"(offset correction: step t reads a run corrected for T={len(curve)}; a run of t steps "
                     "corrects for t; each population ran its steps twice)")
    within = report.get("steps_to_within")
    if within:
        lines.append("within 0.5 / 1 / 2 points of the ANN from step: " + " / ".join(
            str(within[p]) if within[p] is not None else "never" for p in ("0.5", "1", "2")))
    rate = report["samples_per_second"]
    lines.append(f"{report['seconds']:.2f} s, {rate:.1f} samples/s" if rate else "")
    return "\n".join(lines)
