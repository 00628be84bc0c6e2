"""Paper Fig. 2a: what each conversion mechanism contributes, CIFAR-10 net, T = 300.

    python examples/reproduce_ablation.py [--limit N] [--models ../shared/models]

The net: examples/models/cifar10_relu (ANN 84.80%), or with ``--models DIR`` the paper's net trained
on a GPU, DIR/cifar10_paper_net.{pt,json} (ANN 87.15%; the paper's: 87.86%).

default (Poisson input, reset to zero, no normalization) -> + max-norm -> + reset by subtraction
-> + analog input -> + 99.9th-percentile normalization. Softmax readout throughout.
Paper: 16.5%, 59.82%, ~80%, 83.6%, 87.62% (ANN 87.86%).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reproduce_common import PAPER, ann_accuracy, cifar10, parse, plot, run, write

from eventsnn import convert

STEPS = [
    ("default", None, "poisson", "zero", 16.5),
    ("+ max-norm", 100.0, "poisson", "zero", 59.82),
    ("+ reset by subtraction", 100.0, "poisson", "subtract", 80.0),
    ("+ analog input", 100.0, "analog", "subtract", 83.6),
    ("+ 99.9th percentile", 99.9, "analog", "subtract", 87.62),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="test images (default: all 10,000)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--configs", help="which of the five configurations, e.g. 5 or 1,5 (default: all)")
    parser.add_argument("--models", help="folder of cifar10_paper_net.{pt,json} (default: examples/models' cifar10_relu)")
    args = parse(parser)
    net, x_calib, x, y = cifar10("paper_net", folder=Path(args.models)) if args.models else cifar10("relu")
    x, y = x[:args.limit], y[:args.limit]
    ann = ann_accuracy(net, x, y)
    print(f"ANN accuracy on {len(x)} test images: {ann:.4f}")
    rows = []
    chosen = [STEPS[int(k) - 1] for k in args.configs.split(",")] if args.configs else STEPS
    for label, percentile, input_mode, reset, paper in chosen:
        model = convert(net, x_calib, percentile)
        result = run(model.build(**{**PAPER, "input": input_mode, "reset": reset}), x, args.steps, label)
        rows.append({"config": label, "percentile": percentile, "input": input_mode, "reset": reset,
                     "accuracy": result.accuracy(y), "paper_accuracy": paper / 100,
                     "spikes_per_sample": float(result.spikes.sum() / len(x))})
        print(f"  {label:<26} {rows[-1]['accuracy']:.4f}   (paper {paper:.2f}%)", flush=True)
    name = ("ablation_paper_net" if args.models else "ablation") + (f"_{args.configs.replace(',', '')}" if args.configs else "")
    write(name, {"samples": len(x), "steps": args.steps, "ann_accuracy": ann, "paper_ann_accuracy": 0.8786,
                 "net": "cifar10_paper_net" if args.models else "cifar10_relu", "rows": rows},
          "python examples/reproduce_ablation.py" + (f" --limit {args.limit}" if args.limit else "")
          + (" --models DIR" if args.models else "") + (f" --configs {args.configs}" if args.configs else ""))

    def draw(plt):
        labels = [r["config"] for r in rows]
        pos = range(len(rows))
        plt.figure(figsize=(8, 4))
        plt.bar([p - 0.2 for p in pos], [100 * r["accuracy"] for r in rows], 0.4, label="eventsnn")
        plt.bar([p + 0.2 for p in pos], [100 * r["paper_accuracy"] for r in rows], 0.4, label="paper")
        plt.axhline(100 * ann, color="k", ls="--", label="our ANN")
        plt.xticks(list(pos), labels, rotation=20)
        plt.ylabel(f"accuracy at T={args.steps} (%)")
        plt.legend()

    plot(name, draw)


if __name__ == "__main__":
    main()
