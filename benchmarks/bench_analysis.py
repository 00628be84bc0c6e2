"""What the analysis costs over a plain run: `eventsnn analyze` vs `eventsnn run`, same model, data, T.

    python benchmarks/bench_analysis.py [--steps 16] [--limit 1000] [--repeats 3]

Both are timed in this process on the bundled demo CNN (and the CIFAR-10 net with its shipped
sample, when present), after a warm-up; prints the best-of-N wall time of each and their ratio
(target: analysis at most 1.15x the run).
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eventsnn import ann, simulate  # noqa: E402
from eventsnn.analysis import analyze  # noqa: E402
from eventsnn.loaders import load_network  # noqa: E402
from eventsnn.model import convert, load  # noqa: E402
from eventsnn.report import efficiency_report  # noqa: E402


def plain_run(model, x, y, steps):
    """What `eventsnn run` does: the ANN's accuracy, the simulation, the report."""
    snn = model.build()
    ann_accuracy = ann.accuracy(model.ann, x, y)
    return efficiency_report(snn, simulate(snn, x, steps), y, ann_accuracy)


def best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def nets(limit: int):
    data = resources.files("eventsnn") / "data"
    net = load_network(data / "mnist_cnn.pt", data / "mnist_cnn.json")
    with np.load(data / "mnist_sample.npz") as f:
        x, y, xc = f["x"][:limit] / np.float32(255), f["y"][:limit], f["x_calib"] / np.float32(255)
    yield "mnist_cnn (demo)", convert(net, xc), x.astype(np.float32), y
    cifar = REPO / "examples" / "models"
    if (cifar / "cifar10_relu_snn.npz").exists():
        with np.load(cifar / "cifar10_sample.npz") as f:
            x, y = f["x"][:limit] / np.float32(255), f["y"][:limit]
        yield "cifar10_relu (sample, binary spikes)", load(cifar / "cifar10_relu_snn.npz"), x.astype(np.float32), y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for name, model, x, y in nets(args.limit):
        analyze(model, x[:8], y[:8], 2)  # warm-up: compile, caches
        run_s = best_of(args.repeats, lambda: plain_run(model, x, y, args.steps))
        analysis_s = best_of(args.repeats, lambda: analyze(model, x, y, args.steps))
        print(f"{name}: {len(x)} samples, T={args.steps}: run {run_s:.2f} s, analysis {analysis_s:.2f} s, "
              f"ratio {analysis_s / run_s:.2f}", flush=True)


if __name__ == "__main__":
    main()
