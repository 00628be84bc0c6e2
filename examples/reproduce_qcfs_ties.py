"""Where a QCFS net's one-step graded SNN decides differently from its ANN, and why.

    python examples/reproduce_qcfs_ties.py --models ../shared/models [--limit 1000]

With graded spikes and V(0) = threshold/2, a QCFS layer's events in one step equal the ANN's
quantized activation in exact arithmetic. In float32 three computations of the same function
meet: the trained ANN, the normalized ANN (weights divided by the QCFS thresholds, what the SNN
is built from) and the SNN (the same sums in event order). Where a pre-activation lies within
rounding of a quantization step, the three may round it to different levels, and one changed
level reaches every neuron downstream. For each image where the SNN's decision differs from the
ANN's, this counts the neurons of each population whose level differs from the normalized ANN's
and gives the first such neuron's pre-activation in levels.

Then the same in int32 arithmetic (``eventsnn.fixed_point``): the SNN against the quantized ANN on
the same grid computed exactly (float64), that ANN against the trained one, and per QCFS layer the
share of activations the grid's rounding moves to another level (on the first ``--layer-images``
images). Writes qcfs_ties.json (``--out``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from reproduce_common import parse, write  # noqa: I001

from eventsnn import ann, convert, fixed_point, simulate
from eventsnn.convert import spiking_roles
from eventsnn.ir import QCFS
from eventsnn.loaders import load_network
from eventsnn.loaders.datasets import balanced_sample
from eventsnn.rewrite import fold_avgpools
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


def int32_comparison(model, x: np.ndarray, trained: np.ndarray, layer_images: int) -> dict:
    """The int32 SNN at T = 1 against the exact quantized ANN on its grid, and that ANN against the
    trained one, with the share of each QCFS layer's activations that the grid moves."""
    net, _ = fold_avgpools(model.normalized(model.config.spike_levels))  # what int32 builds from
    grid = fixed_point.quantized(net, True, spiking_roles(net))
    read = fixed_point.quantized_input(x)
    exact = ann.forward(grid, read, dtype=np.float64).argmax(axis=1)
    spiking = simulate(model.build(arithmetic="int32"), x, 1).decisions[:, 0]
    moved = {}
    plain = dict(ann.activations(net, x[:layer_images], np.float64))
    for i, out in ann.activations(grid, read[:layer_images], np.float64):
        if isinstance(grid.layers[i], QCFS):
            moved[grid.layers[i].name] = float(np.mean(out != plain[i]))
    return {"snn_vs_grid_ann": int(np.sum(spiking != exact)), "grid_vs_trained_ann": int(np.sum(exact != trained)),
            "snn_vs_trained_ann": int(np.sum(spiking != trained)), "layer_images": layer_images,
            "moved_by_layer": moved}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", required=True, help="folder of cifar10_vgg16_qcfs4.{pt,json}")
    parser.add_argument("--limit", type=int, default=1000, help="test images")
    parser.add_argument("--calib", type=int, default=2000, help="calibration images (training set)")
    parser.add_argument("--layer-images", type=int, default=100, help="images for the int32 per-layer comparison")
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
              "normalized_vs_trained_ann": int(np.sum(normalized != trained)), "images": images,
              "int32": int32_comparison(model, x, trained, args.layer_images)}
    print({k: v for k, v in report.items() if k != "images"})
    write("qcfs_ties", report, f"python examples/reproduce_qcfs_ties.py --models DIR --limit {args.limit}")


if __name__ == "__main__":
    main()
