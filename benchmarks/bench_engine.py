"""Event engine vs the dense reference simulator on the demo MNIST network, measured in one process.

    python benchmarks/bench_engine.py [--samples 200] [--steps 100]

Prints samples/s of both simulators, their ratio, and the event engine's SynOps per second.
Kernels are compiled (and warmed up) before timing. The reference uses NumPy/BLAS on all cores.
"""

from __future__ import annotations

import argparse
import time
from importlib import resources

import numba
import numpy as np

from eventsnn import convert, simulate, simulate_reference
from eventsnn.loaders import load_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--reference-samples", type=int, default=50)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    data = resources.files("eventsnn") / "data"
    net = load_network(data / "mnist_cnn.pt", data / "mnist_cnn.json")
    with np.load(data / "mnist_sample.npz") as f:
        x = f["x"][:args.samples].astype(np.float32) / 255
        x_calib = f["x_calib"].astype(np.float32) / 255
    snn = convert(net, x_calib).build()
    simulate(snn, x[:4], 5)  # compile

    rows = []
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        began = time.perf_counter()
        result = simulate(snn, x, args.steps, threads=threads)
        seconds = time.perf_counter() - began
        rows.append((f"event, {threads} thread(s)", len(x) / seconds, result.synops.sum() / seconds))
    began = time.perf_counter()
    xr = x[:args.reference_samples]
    simulate_reference(snn, xr, args.steps)
    reference_rate = len(xr) / (time.perf_counter() - began)
    rows.append(("dense reference (NumPy)", reference_rate, float("nan")))

    print(f"demo MNIST network, T = {args.steps}, {snn.n_neurons} neurons, "
          f"paths: {', '.join(f'{s.name} {s.path}' for s in snn.stages)}")
    print(f"{'simulator':<28}{'samples/s':>12}{'vs reference':>15}{'SynOps/s':>12}")
    for name, rate, synops_rate in rows:
        print(f"{name:<28}{rate:>12.1f}{rate / reference_rate:>14.1f}x{synops_rate:>12.3g}")


if __name__ == "__main__":
    main()
