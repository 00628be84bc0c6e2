"""Deep nets at short T: the GPU-trained CIFAR-10 nets (the paper's net, ResNet-20, VGG-16 and a QCFS
VGG-16; see the README of their folder), as accuracy loss relative to each net's own ANN at
T = 1..32, graded and binary spikes, with average pooling absorbed by the next layer (the default)
and as its own population, and binary spikes with potential calibration for T = 4, 8 and 16 (also
with per-channel scales at the 99.5th percentile, the best binary recipe found); graded and binary
spikes in int32 arithmetic (``eventsnn.fixed_point``); signed spikes (one bit and a sign: a neuron
that has spiked takes a spike back where V < 0), for the nets without max-pooling; binary spikes
with offset correction (``correction='offset'``: layer by layer, each population run twice), one
run per T since it corrects for its run's length.

    python examples/reproduce_depth.py --models ../shared/models [--limit 1000] [--nets vgg16_qcfs4,...]

Weights over 5 MB stay out of the repository: ``--models`` is the folder of cifar10_NAME.{pt,json}.
Conversion with 2,000 calibration images sampled from the training set (balanced over the
classes), potential calibration on 256 of them. Writes depth.json (``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from reproduce_common import PATHS, parse, write  # noqa: I001

from eventsnn import ann, convert, simulate
from eventsnn.calibrate import calibrate
from eventsnn.loaders import load_network
from eventsnn.loaders.datasets import balanced_sample
from eventsnn.progress import terminal_progress
from examples.cifar10_data import load_cifar10

NETS = ("paper_net", "resnet20", "vgg16", "vgg16_qcfs4")
# method -> (simulation settings, steps simulated, calibration for T, conversion options)
DEFAULT_CONVERSION = {"percentile": 99.9, "scale_per": "layer"}
CHANNEL_995 = {"percentile": 99.5, "scale_per": "channel"}
METHODS = {
    "graded": ({}, 8, None, DEFAULT_CONVERSION),
    "graded pool-neurons": ({"avg_pool": "neurons"}, 8, None, DEFAULT_CONVERSION),
    "binary": ({"spikes": "binary"}, 32, None, DEFAULT_CONVERSION),
    "binary pool-neurons": ({"spikes": "binary", "avg_pool": "neurons"}, 32, None, DEFAULT_CONVERSION),
    "binary+potential T=4": ({"spikes": "binary"}, 4, 4, DEFAULT_CONVERSION),
    "binary+potential T=8": ({"spikes": "binary"}, 8, 8, DEFAULT_CONVERSION),
    "binary+potential T=16": ({"spikes": "binary"}, 16, 16, DEFAULT_CONVERSION),
    "binary channel p99.5+potential T=16": ({"spikes": "binary"}, 16, 16, CHANNEL_995),
    "graded int32": ({"arithmetic": "int32"}, 8, None, DEFAULT_CONVERSION),
    "binary int32": ({"spikes": "binary", "arithmetic": "int32"}, 32, None, DEFAULT_CONVERSION),
    "signed": ({"spikes": "signed"}, 32, None, DEFAULT_CONVERSION),
    "signed channel p99.5": ({"spikes": "signed"}, 32, None, CHANNEL_995),
    "signed channel p99.5+potential T=8": ({"spikes": "signed"}, 8, 8, CHANNEL_995),
    "binary+offset": ({"spikes": "binary", "correction": "offset"}, 32, None, DEFAULT_CONVERSION),
    "binary channel p99.5+offset": ({"spikes": "binary", "correction": "offset"}, 32, None, CHANNEL_995),
}
RUN_PER_T = (1, 2, 4, 8, 16, 32)  # offset correction corrects for its run's T: one run per T, no readout between
CALIBRATION_IMAGES = 256


def evaluate(model, x, y, ann_decisions, settings: dict, steps: int, label: str) -> dict:
    """Accuracy, agreement with the ANN and cumulative SynOps per image at every step."""
    result = simulate(model.build(**settings), x, steps, progress=terminal_progress(label))
    synops = result.synops_per_step.sum(axis=(0, 1)).cumsum() / len(x)
    print(f"{label}: " + " ".join(f"{a:.3f}" for a in result.accuracy_per_step(y)) + f" ({result.seconds:.0f} s)",
          flush=True)
    return {"accuracy": result.accuracy_per_step(y).tolist(),
            "agreement_with_ann": (result.decisions == ann_decisions[:, None]).mean(axis=0).tolist(),
            "synops_per_image": synops.tolist(), "seconds": round(result.seconds, 1)}


def evaluate_per_run(model, x, y, ann_decisions, settings: dict, steps: int, label: str) -> dict:
    """``evaluate`` for offset correction: a run of each T in RUN_PER_T up to ``steps``, each read at
    its own last step; the steps between are None."""
    row = {"accuracy": [None] * steps, "agreement_with_ann": [None] * steps, "synops_per_image": [None] * steps,
           "seconds": 0.0, "one_run_per_t": True}
    for t in (t for t in RUN_PER_T if t <= steps):
        run = evaluate(model, x, y, ann_decisions, settings, t, f"{label} T={t}")
        for key in ("accuracy", "agreement_with_ann", "synops_per_image"):
            row[key][t - 1] = run[key][-1]
        row["seconds"] += run["seconds"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", required=True, help="folder of the trained cifar10_NAME.{pt,json}")
    parser.add_argument("--limit", type=int, default=1000, help="test images")
    parser.add_argument("--calib", type=int, default=2000, help="calibration images (training set)")
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--merge", action="store_true", help="add to the depth.json already in --out (same images)")
    args = parse(parser)
    data = load_cifar10()
    x_calib = data["x_train"][balanced_sample(data["y_train"], args.calib)].astype(np.float32) / 255
    x, y = data["x_test"][:args.limit].astype(np.float32) / 255, data["y_test"][:args.limit]
    report = {"samples": len(x), "calibration_images": len(x_calib), "nets": {}}
    stored = PATHS.results / "depth.json"
    if args.merge and not stored.exists():
        raise SystemExit(f"--merge: there is no {stored} to add to (the committed one is docs/results/depth.json: "
                         "give --out docs/results)")
    if args.merge:
        report = json.loads(stored.read_text())
        if report["samples"] != len(x) or report["calibration_images"] != len(x_calib):
            raise SystemExit(f"{stored} holds another run ({report['samples']} images); cannot merge")
    for name in args.nets.split(","):
        folder = Path(args.models)
        net = load_network(folder / f"cifar10_{name}.pt", folder / f"cifar10_{name}.json")
        began = time.perf_counter()
        model = convert(net, x_calib)
        entry = report["nets"].get(name) or {
            "ann_accuracy": ann.accuracy(model.ann, x, y), "macs_per_image": int(sum(ann.macs(model.ann))),
            "convert_seconds": round(time.perf_counter() - began, 1), "config": dataclasses.asdict(model.config),
            "methods": {}}
        ann_decisions = ann.forward(model.ann, x).argmax(axis=1)
        print(f"{name}: ANN {entry['ann_accuracy']:.4f}, {entry['macs_per_image']:.3g} MACs", flush=True)
        for method in args.methods.split(","):
            settings, steps, calibrated_for, conversion = METHODS[method]
            used = model if conversion == DEFAULT_CONVERSION else convert(net, x_calib, conversion["percentile"],
                                                                          scale_per=conversion["scale_per"])
            if calibrated_for:
                binary = dataclasses.replace(used, config=used.config.updated(**settings))
                used = calibrate(binary, x_calib[:CALIBRATION_IMAGES], calibrated_for, "potential",
                                 progress=terminal_progress(f"{name} calibrate T={calibrated_for}"))
            run = evaluate_per_run if settings.get("correction") == "offset" else evaluate
            entry["methods"][method] = run(used, x, y, ann_decisions, settings, steps, f"{name} {method}")
        report["nets"][name] = entry
    if args.merge and "command" in report:
        merged = (f"python examples/reproduce_depth.py --models DIR --limit {args.limit} --nets {args.nets} "
                  f"--methods '{args.methods}' --merge")
        if merged not in report.setdefault("merged", []):  # a rerun replaces its rows
            report["merged"].append(merged)
        report = {k: v for k, v in report.items() if k not in ("command", "date")} | {"first_date": report["date"]}
    write("depth", report, f"python examples/reproduce_depth.py --models DIR --limit {args.limit}")


if __name__ == "__main__":
    main()
