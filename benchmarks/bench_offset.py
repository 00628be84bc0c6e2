"""Offset correction against step-by-step binary runs: accuracy and images per second, one process.

    python benchmarks/bench_offset.py --models ../shared/models [--net vgg16] [--limit 200] [--threads 2]

The GPU-trained CIFAR-10 net (``--models``: the folder of cifar10_NAME.{pt,json}) converted with the
defaults on 2,000 balanced training images, run with binary spikes on the first ``--limit`` test
images: corrected (``correction='offset'``, one run per T) at T = 8 and 16, step by step at T = 16 and
32. Each run is timed warm (kernels compiled first), best of ``--repeats``. Prints a table with the
speed ratio of each run to the step-by-step T = 32 run and writes offset.json (``--out``, default
out/results). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from eventsnn import ann, convert, simulate  # noqa: E402
from eventsnn.loaders import load_network  # noqa: E402
from eventsnn.loaders.datasets import balanced_sample  # noqa: E402
from outputs import add_out_option  # noqa: E402

RUNS = (("offset", 8), ("offset", 16), ("none", 16), ("none", 32))  # (correction, T)
BASELINE = ("none", 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", required=True, help="folder of the GPU-trained cifar10_NAME.{pt,json}")
    parser.add_argument("--net", default="vgg16", help="a net without max-pooling (offset correction refuses it)")
    parser.add_argument("--limit", type=int, default=200, help="test images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    add_out_option(parser)
    args = parser.parse_args()
    from examples.cifar10_data import load_cifar10

    data = load_cifar10()
    folder = Path(args.models)
    net = load_network(folder / f"cifar10_{args.net}.pt", folder / f"cifar10_{args.net}.json")
    x_calib = data["x_train"][balanced_sample(data["y_train"], 2000)].astype(np.float32) / 255
    x, y = data["x_test"][:args.limit].astype(np.float32) / 255, data["y_test"][:args.limit]
    model = convert(net, x_calib)
    rows = {}
    for correction, steps in RUNS:
        snn = model.build(spikes="binary", correction=correction)
        simulate(snn, x[:2], 2, threads=args.threads)  # compile outside the timing
        results = [simulate(snn, x, steps, threads=args.threads) for _ in range(args.repeats)]
        rows[(correction, steps)] = {"correction": correction, "steps": steps,
                                     "accuracy": float(results[0].accuracy_per_step(y)[-1]),
                                     "images_per_second": len(x) / min(r.seconds for r in results),
                                     "synops_per_image": float(results[0].synops.sum() / len(x))}
    base = rows[BASELINE]["images_per_second"]
    report = {"command": f"python benchmarks/bench_offset.py --models DIR --net {args.net} --limit {args.limit} "
                         f"--threads {args.threads}", "date": str(date.today()), "net": args.net, "images": len(x),
              "ann_accuracy": ann.accuracy(model.ann, x, y),
              "runs": [dict(row, speed_vs_step_by_step_T32=row["images_per_second"] / base) for row in rows.values()]}
    print(f"{args.net}, binary spikes, {len(x)} images, ANN {100 * report['ann_accuracy']:.1f}%")
    print(f"{'run':<22}{'accuracy':>9}{'images/s':>10}{'SynOps/image':>14}{'vs step T=32':>14}")
    for row in report["runs"]:
        name = f"{'corrected' if row['correction'] == 'offset' else 'step by step'} T={row['steps']}"
        print(f"{name:<22}{100 * row['accuracy']:>8.1f}%{row['images_per_second']:>10.1f}"
              f"{row['synops_per_image']:>14.3g}{row['speed_vs_step_by_step_T32']:>13.2f}x")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "offset.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out / 'offset.json'}")


if __name__ == "__main__":
    main()
