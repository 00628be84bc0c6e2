"""Where a QCFS net's one-step graded SNN decides differently from its ANN, and why.

    python examples/reproduce_qcfs_ties.py --models ../shared/models [--limit 1000]

With graded spikes and V(0) = threshold/2, a QCFS layer's events in one step equal the ANN's
quantized activation in exact arithmetic. In float32 three computations of the same function
meet: the trained ANN, the normalized ANN (weights divided by the QCFS thresholds, what the SNN
is built from) and the SNN (the same sums in event order). Where a pre-activation lies within
rounding of a quantization step, the three may round it to different levels, and one changed
level reaches every neuron downstream. For each image where the SNN's decision differs from the
ANN's, this counts the neurons of each population whose level differs from the normalized ANN's
and gives the first such neuron's pre-activation in levels. Writes qcfs_ties.json (``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from reproduce_common import parse, write  # noqa: I001

from eventsnn import ann, convert, simulate
from eventsnn.loaders import load_network
from eventsnn.loaders.datasets import balanced_sample
from cifar10_data import load_cifar10


def level_differences(model, snn, image: np.ndarray) -> list[dict]:
    """Populations whose graded events differ from the normalized ANN's levels, in network order."""
    levels = model.config.spike_levels
    net = model.normalized(levels)  # activations in units of one level
    counts = simulate(snn, image[None], 1, count_neurons=True).neuron_counts[0]
    offsets = np.concatenate([[0], np.cumsum([stage.size for stage in snn.stages])])
    names = [stage.name for stage in snn.stages]
    outputs = dict(ann.activations(net, image[None]))
    found = []
    for i, layer in enumerate(net.layers):
        if layer.name not in names[:-1]:  # hidden populations (the output is read as membranes)
            continue
        s = names.index(layer.name)
        ann_levels = outputs[net.consumers(i)[0]][0].ravel()
        differ = np.flatnonzero(counts[offsets[s]:offsets[s + 1]] != np.rint(ann_levels))
        if len(differ):
            first = int(differ[0])
            found.append({"population": layer.name, "neurons": int(len(differ)), "of": int(ann_levels.size),
                          "first_pre_activation_levels": float(outputs[i][0].ravel()[first])})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", required=True, help="folder of cifar10_vgg16_qcfs4.{pt,json}")
    parser.add_argument("--limit", type=int, default=1000, help="test images")
    parser.add_argument("--calib", type=int, default=2000, help="calibration images (training set)")
    args = parse(parser)
    data = load_cifar10()
    x_calib = data["x_train"][balanced_sample(data["y_train"], args.calib)].astype(np.float32) / 255
    x = data["x_test"][:args.limit].astype(np.float32) / 255
    folder = Path(args.models)
    model = convert(load_network(folder / "cifar10_vgg16_qcfs4.pt", folder / "cifar10_vgg16_qcfs4.json"), x_calib)
    snn = model.build()
    trained = ann.forward(model.ann, x).argmax(axis=1)
    normalized = ann.forward(model.normalized(), x).argmax(axis=1)
    spiking = simulate(snn, x, 1).decisions[:, 0]
    images = []
    for k in np.flatnonzero(spiking != trained):
        images.append({"image": int(k), "snn": int(spiking[k]), "ann": int(trained[k]),
                       "normalized_ann": int(normalized[k]), "differences": level_differences(model, snn, x[k])})
        print(images[-1], flush=True)
    report = {"samples": len(x), "config": str(model.config),
              "snn_vs_ann": int(np.sum(spiking != trained)), "snn_vs_normalized_ann": int(np.sum(spiking != normalized)),
              "normalized_vs_trained_ann": int(np.sum(normalized != trained)), "images": images}
    print({k: v for k, v in report.items() if k != "images"})
    write("qcfs_ties", report, f"python examples/reproduce_qcfs_ties.py --models DIR --limit {args.limit}")


if __name__ == "__main__":
    main()
