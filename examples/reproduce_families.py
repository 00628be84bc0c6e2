"""The trained family nets of ``families.py`` (CIFAR-10 ResNet-18, MobileNetV2, Inception), converted
with the defaults: ANN and SNN accuracy at every step on test images.

    python examples/reproduce_families.py [--limit 1000] [--steps 8] [--out docs/results]

Loads each net with ``from_torch`` (torch needed) and its trained state_dict from examples/models,
writes the traced spec beside it (``family_NAME.json``, so ``eventsnn convert --arch`` reads the
checkpoint without torch), converts with 2,000 calibration images sampled from the training set
(balanced over the classes) and simulates the first ``--limit`` test images. Writes families.json.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from reproduce_common import MODELS, parse, write  # noqa: I001

from eventsnn import ann, convert, simulate
from eventsnn.loaders import from_torch
from eventsnn.loaders.datasets import balanced_sample
from eventsnn.progress import terminal_progress
from eventsnn.spec import network_to_spec
from examples.cifar10_data import load_cifar10
from examples.families import FAMILIES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=1000, help="test images")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--calib", type=int, default=2000, help="calibration images (training set)")
    parser.add_argument("--nets", default=",".join(FAMILIES))
    args = parse(parser)
    data = load_cifar10()
    x_calib = data["x_train"][balanced_sample(data["y_train"], args.calib)].astype(np.float32) / 255
    x, y = data["x_test"][:args.limit].astype(np.float32) / 255, data["y_test"][:args.limit]
    report = {"samples": len(x), "steps": args.steps, "calibration_images": len(x_calib), "nets": {}}
    for name in args.nets.split(","):
        module = FAMILIES[name]()
        module.load_state_dict(torch.load(MODELS / f"family_{name}.pt", weights_only=True))
        net = from_torch(module.eval(), (3, 32, 32))
        spec, _ = network_to_spec(net)
        (MODELS / f"family_{name}.json").write_text(json.dumps(spec, indent=1))
        began = time.perf_counter()
        model = convert(net, x_calib)
        converted = time.perf_counter() - began
        snn = model.build()
        result = simulate(snn, x, args.steps, progress=terminal_progress(name))
        trained = json.loads((MODELS / f"family_{name}.info.json").read_text())
        report["nets"][name] = {
            "ann_accuracy": ann.accuracy(net, x, y), "ann_accuracy_full_test_set": trained["test_accuracy_fp32"],
            "snn_accuracy_per_step": [float(a) for a in result.accuracy_per_step(y)],
            "layers": len(net.layers), "populations": len(snn.stages), "neurons": int(snn.n_neurons),
            "synops_per_sample": float(result.synops.sum() / len(x)), "convert_seconds": round(converted, 1),
            "simulate_seconds": round(result.seconds, 1), "training": {k: trained[k] for k in ("epochs", "train_s", "device")}}
        row = report["nets"][name]
        print(f"{name}: ANN {row['ann_accuracy']:.4f}, SNN by step "
              + " ".join(f"{a:.3f}" for a in row["snn_accuracy_per_step"]) + f" ({row['simulate_seconds']} s)", flush=True)
    write("families", report, f"python examples/reproduce_families.py --limit {args.limit} --steps {args.steps}")


if __name__ == "__main__":
    main()
