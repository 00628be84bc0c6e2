"""The 7-layer MNIST net on the full test set at T = 100 and 300 (paper: 99.44% SNN accuracy).

    python examples/reproduce_mnist.py [--limit N]

99.9th-percentile normalization, analog input, reset by subtraction, softmax readout; one run of
300 steps gives the accuracy at T = 100 too.
"""

from __future__ import annotations

import argparse

from reproduce_common import PAPER, ann_accuracy, mnist7, parse, run, write

from eventsnn import convert
from eventsnn.report import efficiency_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int)
    args = parse(parser)
    net, x_calib, x, y = mnist7()
    x, y = x[:args.limit], y[:args.limit]
    ann = ann_accuracy(net, x, y)
    snn = convert(net, x_calib, 99.9).build(**PAPER)
    result = run(snn, x, 300, "mnist7")
    curve = result.accuracy_per_step(y)
    report = efficiency_report(snn, result, y, ann)
    print(f"ANN {ann:.4f}   SNN T=100 {curve[99]:.4f}   T=300 {curve[299]:.4f}")
    write("mnist", {"samples": len(x), "ann_accuracy": ann, "accuracy_t100": float(curve[99]),
                    "accuracy_t300": float(curve[299]), "paper_snn_accuracy": 0.9944,
                    "spikes_per_sample": report["spikes_per_sample"], "synops_per_sample": report["synops_per_sample"],
                    "layers": report["layers"]},
          "python examples/reproduce_mnist.py" + (f" --limit {args.limit}" if args.limit else ""))


if __name__ == "__main__":
    main()
