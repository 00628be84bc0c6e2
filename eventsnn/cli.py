"""Command line: ``eventsnn convert``, ``run``, ``analyze``, ``sweep``, ``export``, ``demo``, ``warmup``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from . import ann, memory
from .atomic import check_writable, write_text
from .calibrate import METHODS, calibrate
from .early_exit import choose_exit
from .model import convert, default_config, load, save
from .progress import terminal_progress
from .reference import simulate_reference
from .report import efficiency_report, format_phase_table, format_table, phase_report
from .engine import simulate, simulation_bytes
from .snn import INPUTS, OUTPUTS, RESETS, SHIFTS, SPIKES, SimulationResult, SpikingNetwork


def _at_least(minimum: int):
    """An argparse type: an integer >= minimum (so --limit 0 or --batch -5 is refused, not misread)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    return parse


POSITIVE, NON_NEGATIVE = _at_least(1), _at_least(0)


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """Simulation settings; not given (None): what the model file says (run, analyze, export), or
    the defaults for the network (convert, demo; ``model.default_config``)."""
    parser.add_argument("--reset", choices=RESETS, default=None, help="reset by subtraction or to zero")
    parser.add_argument("--input", choices=INPUTS, default=None, help="analog current or Poisson spikes")
    parser.add_argument("--output", choices=OUTPUTS, default=None, help="readout of the last layer")
    parser.add_argument("--shift", choices=SHIFTS, default=None,
                        help="Deng & Gu: threshold/2T added to biases, or membranes start at threshold/2")
    parser.add_argument("--softmax-rate", type=float, default=None,
                        help="probability per step of the softmax trigger")
    parser.add_argument("--maxpool-decay", type=float, default=None,
                        help="decay of the max-pool gate's rate estimate (1 = spike count)")
    parser.add_argument("--spikes", choices=SPIKES, default=None,
                        help="binary spikes, or graded: one event carries floor(V / threshold) spikes")
    parser.add_argument("--max-spikes", type=POSITIVE, default=None,
                        help="the most spikes one graded event carries")
    parser.add_argument("--levels", type=POSITIVE, default=None,
                        help="graded spikes: each spike is worth 1/LEVELS of its layer's scale (needs max-spikes >= levels)")


def calibration_summary(method: str, info: dict) -> str:
    """One line on what ``calibrate`` kept, and why it kept no shift when its decisions got worse."""
    agreement = info["agreement_with_ann"]
    line = (f"{method} calibration for T={info['steps']} on {info['images']} images: shifted "
            f"{', '.join(info['shifted']) or 'no layer'}")
    if agreement["calibrated"] < agreement["uncalibrated"]:
        return line + (f" (with the shifts the SNN decided as the ANN on {100 * agreement['calibrated']:.1f}% of "
                       f"the images, without on {100 * agreement['uncalibrated']:.1f}%: kept none)")
    return line + (f" (no gain, left alone: {', '.join(info['skipped'])})" if info["skipped"] else "")


def _settings(args: argparse.Namespace) -> dict:
    return {"reset": args.reset, "input": args.input, "output": args.output, "shift": args.shift,
            "softmax_rate": args.softmax_rate, "maxpool_decay": args.maxpool_decay, "spikes": args.spikes,
            "max_spikes": args.max_spikes, "levels": args.levels}


CHUNK = 4096  # samples read from disk, scaled and simulated at a time


def _load_data(path: str, limit: int | None = None, split: str = "test"):
    """x as lazy Images (read from disk by slice where the format allows), y as an array."""
    from .loaders import load_dataset

    x, y = load_dataset(path, split, lazy=True)
    return (x.head(limit), y[:limit]) if limit else (x, y)


def _check_labels(y: np.ndarray, n_classes: int, path: str) -> None:
    """Labels must name an output of the net (a label it cannot output would count as wrong silently)."""
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{path}: labels must lie in [0, {n_classes - 1}] for this {n_classes}-class net, "
                         f"found [{y.min()}, {y.max()}]")


def _ann_accuracy(net, x, y: np.ndarray) -> float:
    predictions = [ann.forward(net, x[start:start + CHUNK]).argmax(axis=1) for start in range(0, len(x), CHUNK)]
    return float(np.mean(np.concatenate(predictions) == y)) if predictions else float("nan")


def _load_network(checkpoint: str, arch: str | None):
    from .loaders import load_network

    if arch is None and not checkpoint.lower().endswith(".onnx"):
        raise SystemExit("eventsnn convert: --arch ARCH.json is required with a state_dict checkpoint")
    return load_network(checkpoint, arch)


def cmd_convert(args: argparse.Namespace) -> int:
    check_writable(args.output_file)
    if args.calibrate != "none" and args.steps is None:
        raise ValueError(f"--calibrate {args.calibrate} needs --steps T, the run length to calibrate for")
    if args.calibrate != "none" and args.no_normalization:
        raise ValueError(f"--calibrate {args.calibrate} needs calibration data (--calib), not --no-normalization")
    if args.exit == "auto" and args.no_normalization:
        raise ValueError("--exit auto needs calibration data (--calib), not --no-normalization")
    net = _load_network(args.checkpoint, args.arch)
    x_calib = None
    if not args.no_normalization:
        x_calib, _ = _load_data(args.calib, args.calib_limit, split="train")
    config = default_config(net).updated(**_settings(args))  # what the user gave, over the net's defaults
    model = convert(net, x_calib, None if args.no_normalization else args.percentile, config,
                    progress=terminal_progress("computing scales"), scale_per=args.scale_per)
    if args.calibrate != "none":
        model = calibrate(model, x_calib.head(args.calibrate_images), args.steps, args.calibrate,
                          progress=terminal_progress(f"calibrating {args.calibrate} for T={args.steps}"))
        print(calibration_summary(args.calibrate, model.calibration))
    if args.exit == "auto":
        steps = args.steps or _default_steps(model, {})
        rule = choose_exit(model, np.asarray(x_calib.head(args.exit_images)), steps, args.exit_loss / 100,
                           progress=terminal_progress(f"choosing the early exit for T={steps}"))
        model = dataclasses.replace(model, early_exit=rule)
        print(f"early exit for T={steps}: {_exit_rule_text(rule)}, mean stop step {rule['mean_stop_step']:.1f}; "
              f"{rule['changed']:.2%} of {rule['images']} calibration decisions change (budget {args.exit_loss} points)")
    save(model, args.output_file)
    scales = ", ".join(f"{layer.name} {_scale_text(s)}" for layer, s in zip(model.ann.layers, model.scales) if s is not None)
    print(f"converted {args.checkpoint} -> {args.output_file} (percentile {model.percentile}; scales: {scales})")
    return 0


def _scale_text(scale) -> str:
    return f"{scale:.4g}" if np.ndim(scale) == 0 else f"{np.min(scale):.3g}..{np.max(scale):.3g} ({np.size(scale)} channels)"


def simulate_dataset(snn: SpikingNetwork, x, steps: int, seed: int, batch: int, engine: str,
                     label: str = "simulating", **engine_options) -> SimulationResult:
    """Simulate a data set read in chunks (``x``: an array or lazy Images); the random streams are
    keyed by the sample's index in the whole set, so chunking does not change the result."""
    progress = terminal_progress(label)
    n = len(x)
    memory.check(simulation_bytes(snn, n, steps, threads=engine_options.get("threads") or 1),
                 f"simulating {n} samples for {steps} steps")
    chunk = CHUNK if engine == "event" else batch
    parts = []
    for start in range(0, n, chunk):
        xb = x[start:start + chunk]
        if engine == "event":
            shown = (lambda done, _, start=start: progress(start + done, n)) if progress else None
            parts.append(simulate(snn, xb, steps, seed=seed, batch_size=batch, progress=shown, first_sample=start,
                                  **engine_options))
        else:
            parts.append(simulate_reference(snn, xb, steps, seed=seed, first_sample=start))
            if progress:
                progress(start + len(xb), n)
    return SimulationResult.concatenate(parts) if parts else simulate(snn, x[:0], steps, seed=seed)


def _run_report(snn: SpikingNetwork, result: SimulationResult, y, ann_accuracy: float, engine: str) -> dict:
    report = efficiency_report(snn, result, y, ann_accuracy)
    report["engine"] = engine
    report["connectivity"] = [{"name": s.name, "path": s.path, "bytes": s.connectivity_bytes} for s in snn.stages]
    return report


def cmd_sweep(args: argparse.Namespace) -> int:
    from .convert import fold_batchnorm
    from .sweep import read_spec, run_sweep, summary_table

    spec = read_spec(args.spec)
    check_writable(args.output_file)
    x, y = _load_data(spec["data"], spec.get("limit"))
    build_options = dict(path=args.path, max_bytes=int(args.max_connectivity_mib * 2**20))

    def load_calibration(entry):
        return _load_data(entry["calib"], entry.get("calib_limit"), split="train")[0]

    def run_local(model, steps, seed):
        snn = model.build(**build_options)
        return snn, simulate_dataset(snn, x, steps, seed, args.batch, "event", threads=args.threads)

    def sweep_with(run):
        return run_sweep(spec, lambda entry: _load_network(entry["checkpoint"], entry.get("arch")), load_calibration,
                         run, lambda net: _ann_accuracy(fold_batchnorm(net), x, y),
                         lambda snn, result, accuracy: _run_report(snn, result, y, accuracy, "event"))

    with _cluster(args) as client:
        def run_on_cluster(model, steps, seed):
            from .scaleout import simulate_on_cluster

            result = simulate_on_cluster(client, model, spec["data"], len(x), steps, seed=seed, batch=args.batch,
                                         chunk=args.chunk, build_options=build_options,
                                         progress=terminal_progress("simulating"))
            return model.build(**build_options), result

        sweep = sweep_with(run_local if client is None else run_on_cluster)
    table = summary_table(sweep)
    print(table)
    write_text(args.output_file, json.dumps(sweep, indent=1))
    write_text(Path(args.output_file).with_suffix(".md"), table + "\n")
    print(f"wrote {args.output_file} and {Path(args.output_file).with_suffix('.md')} ({len(sweep['cells'])} cells)")
    return 0


@contextlib.contextmanager
def _cluster(args: argparse.Namespace):
    """A Dask client when --scheduler or --workers is given (closed afterwards), else None."""
    if not (args.scheduler or args.workers):
        yield None
        return
    from .scaleout import dask_client

    with dask_client(args.scheduler, args.workers) as client:
        where = args.scheduler or f"a local cluster of {args.workers} worker processes"
        print(f"simulating on {where} ({len(client.scheduler_info()['workers'])} workers)")
        yield client


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", help="run on the Dask cluster at this address (tcp://host:port; extra 'dask'); "
                                       "the data path must be readable by the workers")
    p.add_argument("--workers", type=POSITIVE, help="run on a local Dask cluster of this many worker processes")
    p.add_argument("--chunk", type=POSITIVE, default=256, help="samples per Dask task (analyze: --batch)")


def _summary(report: dict) -> str:
    lines = [f"SNN accuracy at T={report['steps']}: {report['accuracy']:.4f}   "
             f"ANN accuracy: {report['ann_accuracy']:.4f}   ({report['samples']} samples)"]
    curve = report["accuracy_per_step"]
    marks = sorted({t for t in (1, 2, 4, 8, 16, 32, 64, 100, 200, 300, 500, 1000) if t < len(curve)} | {len(curve)})
    lines.append("accuracy by step: " + ", ".join(f"T={t}: {curve[t - 1]:.4f}" for t in marks))
    within = report.get("steps_to_within")
    if within:
        lines.append("within 0.5 / 1 / 2 points of the ANN from step: " + " / ".join(
            str(within[p]) if within[p] is not None else "never" for p in ("0.5", "1", "2")))
    rate = report["samples_per_second"]
    lines.append(f"{report['seconds']:.2f} s, {rate:.1f} samples/s" if rate else "")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    if args.json:
        check_writable(args.json)  # before the long work
    model = _load_model(args.model)
    args.steps = args.steps or _default_steps(model, _settings(args))
    calibrated_for = _calibrated_steps(model)
    if calibrated_for is not None and calibrated_for != args.steps:
        print(f"note: {args.model} was calibrated for T={calibrated_for}; running T={args.steps} works, "
              "but the calibration fits best at its own T")
    x, y = _load_data(args.data, args.limit)
    _check_labels(y, int(np.prod(model.ann.output_shape)), args.data)
    build_options = dict(path=args.path, max_bytes=int(args.max_connectivity_mib * 2**20), **_settings(args))
    snn = model.build(**build_options)
    ann_accuracy = _ann_accuracy(model.ann, x, y)
    options = {"threads": args.threads, **_exit_options(args, model)}
    if args.engine == "reference" and (options["stable_steps"] or options["exit_margin"]):
        raise ValueError("early exit is an option of the event engine (--exit-stable 0 turns off a stored rule)")
    if (args.scheduler or args.workers) and args.engine != "event":
        raise ValueError("a Dask cluster runs the event engine")
    if args.profile and (args.engine != "event" or args.scheduler or args.workers):
        raise ValueError("--profile times the event engine in this process (not the reference, not a cluster)")
    if args.profile:
        options["profile"] = True
    with _cluster(args) as client:
        if client is not None:
            from .scaleout import simulate_on_cluster

            result = simulate_on_cluster(client, model, args.data, len(x), args.steps, seed=args.seed, batch=args.batch,
                                         chunk=args.chunk, build_options=build_options,
                                         engine_options={k: v for k, v in options.items() if k != "threads"},
                                         progress=terminal_progress("simulating"))
        else:
            result = simulate_dataset(snn, x, args.steps, args.seed, args.batch, args.engine,
                                      **(options if args.engine == "event" else {}))
    report = _run_report(snn, result, y, ann_accuracy, args.engine)
    if result.exit_step is not None and np.any(result.exit_step > 0):
        report["exit_step_mean"] = float(np.where(result.exit_step > 0, result.exit_step, args.steps).mean())
        print(f"early exit: {np.mean(result.exit_step > 0):.1%} of samples stopped, mean stop step "
              f"{report['exit_step_mean']:.1f} of {args.steps}")
    print(_summary(report))
    print(format_table(report))
    if args.profile:
        report["profile"] = phase_report(result)
        print("where the time went (share of the run's CPU time, by stage and phase):")
        print(format_phase_table(report["profile"]))
    if args.json:
        write_text(args.json, json.dumps(report, indent=1))
        print(f"wrote {args.json}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze, load_energy_model
    from .analysis_report import write_report

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_writable(out / "report.json")  # before the long work
    energy = load_energy_model(args.energy_model)
    x, y = _load_data(args.data, args.limit)
    reports = {}
    with _cluster(args) as client:
        for path in [args.model, *args.compare]:
            model = _load_model(path)
            _check_labels(y, int(np.prod(model.ann.output_shape)), args.data)
            args.steps = args.steps or _default_steps(model, _settings(args))  # the first model's, for all
            batches = None
            if client is not None:  # the cluster simulates batch by batch, the analysis follows in order
                from .scaleout import results_in_order

                batches = results_in_order(client, model, args.data, len(x), args.steps, seed=args.seed,
                                           batch=args.batch, chunk=args.batch,
                                           build_options={"path": args.path, **_settings(args)},
                                           engine_options={"count_neurons": True})
            reports[Path(path).name] = analyze(model, x, y, args.steps, args.batch, args.seed, energy,
                                               terminal_progress(f"analyzing {Path(path).name}"), batches,
                                               path=args.path, **_settings(args))
    plots, skipped = write_report(reports, out)
    report = reports[Path(args.model).name]
    print(_summary({**report, "samples_per_second": report["samples"] / report["seconds"] if report["seconds"] else None}))
    e = report["energy"]
    print(f"energy per sample: ANN {e['ann_uj_per_sample']:.3g} uJ; SNN at T=1: {e['snn_uj_per_sample_per_step'][0]:.3g} uJ, "
          f"at T={args.steps}: {e['snn_uj_per_sample_per_step'][-1]:.3g} uJ; break-even step {e['break_even_step']}")
    print(f"wrote {out / 'report.json'}, {out / 'report.md'} and {len(plots)} plots"
          + (f" (skipped without matplotlib, `pip install eventsnn[plot]`: {', '.join(skipped)})" if skipped else ""))
    return 0


def _exit_rule_text(rule: dict) -> str:
    if rule["stable_steps"]:
        return f"stop once the decision is unchanged for {rule['stable_steps']} steps"
    if rule["exit_margin"]:
        return f"stop once the leading class is {rule['exit_margin']} output spikes ahead"
    return "none (no rule kept the loss within the budget)"


def _exit_options(args: argparse.Namespace, model) -> dict:
    """The early-exit rule of a run: the flags if given, else the rule chosen at conversion."""
    if args.exit_stable is not None or args.exit_margin is not None or not model.early_exit:
        return {"stable_steps": args.exit_stable or 0, "exit_margin": args.exit_margin or 0}
    print(f"early exit chosen at conversion: {_exit_rule_text(model.early_exit)} (--exit-stable 0 turns it off)")
    return {key: model.early_exit[key] for key in ("stable_steps", "exit_margin")}


def _calibrated_steps(model) -> int | None:
    """The run length a model's biases were calibrated for (None: not calibrated)."""
    return (model.calibration or {}).get("steps")


def _default_steps(model, overrides: dict) -> int:
    """T when none is given: what the model was calibrated for, else 16 for graded spikes (which
    reach their ANN in a few steps) and 100 for binary ones."""
    return _calibrated_steps(model) or (16 if model.config.updated(**overrides).spikes == "graded" else 100)


def _load_model(path: str):
    """A model file from `eventsnn convert`, or a NIR graph (.nir, needs the nir extra)."""
    if path.lower().endswith(".nir"):
        from .loaders import load_nir

        return load_nir(path)
    return load(path)


def cmd_export(args: argparse.Namespace) -> int:
    from .loaders import save_nir

    snn = load(args.model).build(**_settings(args))
    save_nir(snn, args.output_file)
    print(f"exported {args.model} -> {args.output_file} (NIR: {len(snn.stages)} populations, "
          f"reset {snn.config.reset}, input {snn.config.input})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .loaders import load_network

    data = resources.files("eventsnn") / "data"
    with resources.as_file(data / "mnist_cnn.pt") as pt, resources.as_file(data / "mnist_cnn.json") as arch:
        net = load_network(pt, arch)
    with resources.as_file(data / "mnist_sample.npz") as sample, np.load(sample, allow_pickle=False) as f:
        x, y = f["x"][:args.samples].astype(np.float32) / 255, f["y"][:args.samples]
        x_calib = f["x_calib"].astype(np.float32) / 255
    print(f"demo: small MNIST CNN shipped with eventsnn, {len(x)} test images, T={args.steps}")
    began = time.perf_counter()
    model = convert(net, x_calib, args.percentile, default_config(net).updated(**_settings(args)))
    print(f"converted (batch-norm folded, {args.percentile}th-percentile normalization on {len(x_calib)} "
          f"training images) in {time.perf_counter() - began:.1f} s")
    snn = model.build()
    ann_accuracy = ann.accuracy(model.ann, x, y)
    print("simulating (the first run compiles the kernels, later runs reuse the cache)...")
    result = simulate_dataset(snn, x, args.steps, 0, 100, "event")
    report = efficiency_report(snn, result, y, ann_accuracy)
    print(_summary(report))
    print(format_table(report))
    return 0


def cmd_warmup(args: argparse.Namespace) -> int:
    import numba

    from .engine import compile_kernels

    print("compiling the engine's kernels into the cache...", flush=True)
    seconds = compile_kernels()
    where = numba.config.CACHE_DIR or "next to the installed package (or the user cache if that is read-only)"
    print(f"done in {seconds:.1f} s; cache: {where}. Later processes start without compiling.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eventsnn", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors")
    parser.add_argument("--memory-limit-mib", type=float,
                        help=f"refuse work estimated to need more memory than this (default: "
                             f"{memory.DEFAULT_FRACTION:.0%} of the memory available; or ${memory.ENV})")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("convert", help="convert a trained CNN into a spiking model file")
    p.add_argument("checkpoint", help="state_dict checkpoint (.pt/.pth, read without torch), .npz of named arrays, "
                                      "or an .onnx file (needs the onnx extra)")
    p.add_argument("--arch", help="architecture spec (JSON); not for .onnx files")
    p.add_argument("--calib", help="calibration data: .npz, MNIST IDX, CIFAR batches or image folders (training split)")
    p.add_argument("--calib-limit", type=POSITIVE, help="use only the first N calibration images")
    p.add_argument("--percentile", type=float, default=99.9, help="normalization percentile (100 = max-norm)")
    p.add_argument("--no-normalization", action="store_true", help="keep the weights unscaled (ablation)")
    p.add_argument("--scale-per", choices=("layer", "channel"), default="layer",
                   help="one normalization scale per layer, or per channel of each hidden layer and residual add")
    p.add_argument("--calibrate", choices=("none",) + METHODS, default="none",
                   help="bias: shift each channel's bias so the SNN's mean output over --steps steps matches the "
                        "ANN's on calibration images (Li et al. 2021); potential: the same correction as an "
                        "offset of each channel's initial membrane potential")
    p.add_argument("--steps", type=POSITIVE, help="the run length T to calibrate for (stored in the model file)")
    p.add_argument("--calibrate-images", type=POSITIVE, default=256, help="calibration images used for --calibrate")
    p.add_argument("--exit", choices=("none", "auto"), default="none",
                   help="auto: choose a per-sample early-exit rule on calibration images for runs of --steps steps "
                        "(stored in the model file; `run` applies it)")
    p.add_argument("--exit-loss", type=float, default=0.2,
                   help="--exit auto: accuracy, in points, the rule may cost (measured as changed decisions)")
    p.add_argument("--exit-images", type=POSITIVE, default=1000, help="calibration images used for --exit auto")
    p.add_argument("-o", "--output-file", required=True, help="the spiking model (.npz)")
    _add_settings(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("run", help="simulate a spiking model on a data set and report accuracy and efficiency")
    p.add_argument("model", help="spiking model file from `eventsnn convert`, or a NIR graph (.nir)")
    p.add_argument("--data", required=True, help="data: .npz, MNIST IDX, CIFAR batches or image folders (test split)")
    p.add_argument("--limit", type=POSITIVE, help="use only the first N samples")
    p.add_argument("--steps", type=POSITIVE, help="simulation steps T (default: the T the model was calibrated "
                                                "for, else 16 with graded spikes, 100 with binary ones)")
    p.add_argument("--batch", type=POSITIVE, default=256, help="samples per batch")
    p.add_argument("--profile", action="store_true",
                   help="time each phase of each stage with the CPU's cycle counter and print where the time went "
                        "(event engine in this process; also in the --json report)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Poisson input and softmax streams")
    p.add_argument("--engine", choices=("event", "reference"), default="event")
    p.add_argument("--threads", type=POSITIVE, help="threads of the event engine (default: all cores)")
    p.add_argument("--path", choices=("auto", "csr", "direct"), default="auto",
                   help="conv connectivity: unrolled CSR, kernel-direct, or the faster one measured here")
    p.add_argument("--max-connectivity-mib", type=float, default=4096,
                   help="refuse an unrolled CSR layer larger than this")
    p.add_argument("--exit-stable", type=NON_NEGATIVE,
                   help="early exit: stop a sample once its decision is unchanged for this many steps (0: off; "
                        "default: the rule chosen by `convert --exit auto`, else off)")
    p.add_argument("--exit-margin", type=NON_NEGATIVE,
                   help="early exit: stop once the leading class has this many more output spikes")
    p.add_argument("--json", help="write the report as JSON to this file")
    _add_cluster_options(p)
    _add_settings(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("analyze", help="efficiency analysis: accuracy vs steps, SynOps and energy, per-layer "
                                       "fidelity; writes report.json, report.md and plots")
    p.add_argument("model", help="spiking model file from `eventsnn convert`, or a NIR graph (.nir)")
    p.add_argument("--data", required=True, help="labelled data (test split)")
    p.add_argument("--limit", type=POSITIVE, help="use only the first N samples")
    p.add_argument("--steps", type=POSITIVE, help="simulation steps T (default as for `run`)")
    p.add_argument("--batch", type=POSITIVE, default=256, help="samples per batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the Poisson input and softmax streams")
    p.add_argument("--compare", nargs="*", default=[], help="more model files, in the same table and plots")
    p.add_argument("--energy-model", help="JSON file {\"e_ac_pj\": ..., \"e_mac_pj\": ..., \"source\": ...}")
    p.add_argument("--path", choices=("auto", "csr", "direct"), default="auto",
                   help="conv connectivity (as for run; the memory-aware energy prices what is stored)")
    p.add_argument("-o", "--output-dir", required=True, help="directory for report.json, report.md and the plots")
    _add_cluster_options(p)
    _add_settings(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("export", help="write a spiking model as a NIR graph (needs the nir extra)")
    p.add_argument("model", help="spiking model file from `eventsnn convert`")
    p.add_argument("-o", "--output-file", required=True, help="the NIR file (.nir, HDF5)")
    _add_settings(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="convert and run the small MNIST CNN shipped with eventsnn")
    p.add_argument("--samples", type=POSITIVE, default=500, help="test images (at most 1000)")
    p.add_argument("--steps", type=POSITIVE, default=8)
    p.add_argument("--percentile", type=float, default=99.9)
    _add_settings(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sweep", help="run a grid of conversion and simulation settings over checkpoints "
                                     "(SPEC.json, see eventsnn/sweep.py); one JSON report and a summary table")
    p.add_argument("spec", help="the sweep spec (JSON)")
    p.add_argument("-o", "--output-file", required=True, help="the JSON of all cells (a .md table goes beside it)")
    p.add_argument("--batch", type=POSITIVE, default=256, help="samples per batch")
    p.add_argument("--threads", type=POSITIVE, help="threads of the event engine (default: all cores)")
    p.add_argument("--path", choices=("auto", "csr", "direct"), default="auto", help="conv connectivity (as for run)")
    p.add_argument("--max-connectivity-mib", type=float, default=4096,
                   help="refuse an unrolled CSR layer larger than this")
    _add_cluster_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("warmup", help="compile the engine's kernels into the on-disk cache (e.g. when building "
                                      "an image), so that the first run answers at once")
    p.set_defaults(func=cmd_warmup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.memory_limit_mib is not None:
        if not args.memory_limit_mib > 0:
            raise SystemExit("eventsnn: --memory-limit-mib must be positive")
        os.environ[memory.ENV] = str(args.memory_limit_mib)
    if getattr(args, "calib", "x") is None and not getattr(args, "no_normalization", True):
        raise SystemExit("eventsnn convert: --calib DATA is required (or --no-normalization)")
    try:
        return args.func(args)
    except (ValueError, OSError, ImportError) as err:  # bad input or a missing extra: a clear message
        print(f"eventsnn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"eventsnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: still one line, the traceback on request
        if args.debug:
            raise
        print(f"eventsnn {args.command}: unexpected error: {type(err).__name__}: {err} "
              "(rerun with --debug for the traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
