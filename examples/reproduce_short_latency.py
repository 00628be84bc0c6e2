"""Accuracy vs T (1-64 steps) for each short-latency method, on the trained nets of this repo.

    python examples/reproduce_short_latency.py [--nets mnist7,mnist_resnet,cifar10_relu,cifar10_clip]
                                               [--limit 1000] [--calib 256]

Methods (all with reset by subtraction, analog input, p99.9 normalization):
  paper          binary spikes, Poisson-triggered softmax readout, V(0) = 0 (Rueckauer et al.)
  binary         binary spikes, V(0) = threshold/2 (Deng & Gu), membrane readout
  binary+bias    the same with biases calibrated for each T (Li et al. 2021), a separate conversion per T
  binary+potential  the same with initial membrane potentials calibrated for each T instead (Li et al. 2021)
  graded L4      graded spikes, 4 levels per scale, at most 8 spikes per event
  graded L8      the default: 8 levels, at most 16 spikes per event
  graded L4+bias graded L4 with biases calibrated for each T
  binary channel binary with one scale per channel of each hidden layer
Methods without calibration run once for 64 steps (one run gives every T); calibrated ones run once
per T. Writes short_latency.json to --out (default out/results; docs/results holds the committed
figures) with accuracy and mean cumulative SynOps per sample at each T, steps to within 0.5 / 1
point of the ANN, and short_latency.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.reproduce_common import MODELS, PATHS, cifar10, mnist7, parse, plot, write  # noqa: E402
from eventsnn import ann, simulate  # noqa: E402
from eventsnn.calibrate import calibrate  # noqa: E402
from eventsnn.loaders import load_mnist, load_network  # noqa: E402
from eventsnn.model import convert  # noqa: E402
from eventsnn.report import steps_to_within  # noqa: E402
from eventsnn.snn import SimulationConfig  # noqa: E402

STEPS = (1, 2, 4, 8, 16, 32, 64)
BINARY = dict(spikes="binary")
METHODS = {
    "paper": (dict(spikes="binary", output="softmax", shift="none"), None),
    "binary": (BINARY, None),
    "binary+bias": (BINARY, "bias"),
    "binary+potential": (BINARY, "potential"),
    "graded L4": (dict(spikes="graded", levels=4, max_spikes=8), None),
    "graded L8": (dict(spikes="graded", levels=8, max_spikes=16), None),
    "graded L4+bias": (dict(spikes="graded", levels=4, max_spikes=8), "bias"),
    "binary channel": (dict(BINARY, scale_per="channel"), None),
}


def mnist_resnet(calib: int):
    from examples.reproduce_common import mnist_dir

    net = load_network(MODELS / "mnist_resnet.pt", MODELS / "mnist_resnet.json")
    x_train, _ = load_mnist(mnist_dir(), "train")
    x_test, y_test = load_mnist(mnist_dir(), "test")
    return net, x_train[np.random.default_rng(0).choice(len(x_train), calib, replace=False)], x_test, y_test


def mnist_cnn(calib: int):
    """The demo CNN shipped in the package, with its bundled calibration and test images."""
    from importlib import resources

    data = resources.files("eventsnn") / "data"
    net = load_network(data / "mnist_cnn.pt", data / "mnist_cnn.json")
    with np.load(data / "mnist_sample.npz", allow_pickle=False) as f:
        return net, f["x_calib"][:calib].astype(np.float32) / 255, f["x"].astype(np.float32) / 255, f["y"]


NETS = {"mnist_cnn": mnist_cnn, "mnist7": mnist7, "mnist_resnet": mnist_resnet, "cifar10_relu": lambda n: cifar10("relu", n),
        "cifar10_clip": lambda n: cifar10("clip", n), "cifar10_qcfs": lambda n: cifar10("qcfs", n),
        "cifar10_resnet20": lambda n: cifar10("resnet20", n)}


def sweep(name: str, limit: int, n_calib: int, methods: list[str], out: dict | None = None) -> dict:
    net, x_calib, x, y = NETS[name](max(n_calib, 1000))
    x, y = x[:limit], y[:limit]
    base = convert(net, x_calib, 99.9, clip_scale="threshold")
    ann_accuracy = ann.accuracy(base.ann, x, y)
    print(f"{name}: ANN {ann_accuracy:.4f} on {len(x)} test images", flush=True)
    out = out or {"methods": {}}
    out.update(ann_accuracy=ann_accuracy, samples=len(x))
    for method in methods:
        settings, calibrated = METHODS[method]
        settings = dict(settings)
        scale_per = settings.pop("scale_per", "layer")
        began = time.perf_counter()
        model = convert(net, x_calib, 99.9, SimulationConfig(**settings), scale_per=scale_per,
                        clip_scale="threshold")
        accuracy, synops = {}, {}
        if calibrated:
            for t in STEPS:
                result = simulate(calibrate(model, x_calib[:n_calib], t, calibrated).build(), x, t)
                accuracy[str(t)] = result.accuracy(y)
                synops[str(t)] = float(result.synops.sum(axis=1).mean())
        else:
            result = simulate(model.build(), x, max(STEPS))
            curve = result.accuracy_per_step(y)
            spent = np.cumsum(result.synops_per_step.sum(axis=1).mean(axis=0))
            accuracy = {str(t): float(curve[t - 1]) for t in STEPS}
            synops = {str(t): float(spent[t - 1]) for t in STEPS}
        row = {"settings": METHODS[method][0], "calibrated": calibrated, "accuracy": accuracy, "synops_per_sample": synops,
               "seconds": time.perf_counter() - began}
        if not calibrated:
            row["steps_to_within"] = {p: steps_to_within(curve, ann_accuracy, float(p)) for p in ("0.5", "1")}
        out["methods"][method] = row
        print(f"  {method:<15}" + " ".join(f"{100 * accuracy[str(t)]:6.2f}" for t in STEPS)
              + f"   ({row['seconds']:.0f} s)", flush=True)
    return out


def draw(results: dict):
    def figure(plt):
        fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.8), squeeze=False)
        for ax, (name, res) in zip(axes[0], results.items()):
            for method, row in res["methods"].items():
                ax.plot(STEPS, [100 * row["accuracy"][str(t)] for t in STEPS], marker="o", label=method)
            ax.axhline(100 * res["ann_accuracy"], color="k", ls="--", lw=1, label="ANN")
            ax.set_xscale("log", base=2)
            ax.set_ylim(max(0, 100 * res["ann_accuracy"] - 30), 100 * res["ann_accuracy"] + 2)
            ax.set_title(name)
            ax.set_xlabel("time steps T")
            ax.set_ylabel("accuracy (%)")
        axes[0][0].legend(fontsize=7)
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default=",".join(NETS), help="nets to run; others already in the JSON file stay")
    parser.add_argument("--limit", type=int, default=1000, help="test images per net")
    parser.add_argument("--calib", type=int, default=256, help="calibration images for the bias calibration")
    parser.add_argument("--methods", default=",".join(METHODS), help="methods to run; others already in the JSON stay")
    args = parse(parser)
    previous = PATHS.results / "short_latency.json"
    results = json.loads(previous.read_text())["nets"] if previous.exists() else {}
    for name in args.nets.split(","):  # written after each net, so a stopped run keeps what it finished
        results[name] = sweep(name, args.limit, args.calib, args.methods.split(","), results.get(name))
        write("short_latency", {"steps": list(STEPS), "nets": results},
              "python examples/reproduce_short_latency.py (runs with --nets/--methods add to the stored results; "
              "the latest: " + " ".join(sys.argv[1:]) + ")")
    plot("short_latency", draw(results))


if __name__ == "__main__":
    main()
