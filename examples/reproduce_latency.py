"""Paper Fig. 2b: accuracy vs simulation step for normalization percentiles 99, 99.9, 99.99, 100.

    python examples/reproduce_latency.py [--cifar-limit 2000] [--mnist-limit 10000] [--steps 300]

On the CIFAR-10 net and the 7-layer MNIST net; analog input, reset by subtraction, softmax readout.
One run per percentile gives the accuracy at every step.
"""

from __future__ import annotations

import argparse

from reproduce_common import PAPER, ann_accuracy, cifar10, mnist7, parse, plot, run, write

from eventsnn import convert

PERCENTILES = (99.0, 99.9, 99.99, 100.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar-limit", type=int, default=2000)
    parser.add_argument("--mnist-limit", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=300)
    args = parse(parser)
    report = {"steps": args.steps}
    for name, loader, limit in (("cifar10", lambda: cifar10("relu"), args.cifar_limit),
                                ("mnist", mnist7, args.mnist_limit)):
        net, x_calib, x, y = loader()
        x, y = x[:limit], y[:limit]
        curves = {}
        for p in PERCENTILES:
            result = run(convert(net, x_calib, p).build(**PAPER), x, args.steps, f"{name} p={p}")
            curves[str(p)] = [float(a) for a in result.accuracy_per_step(y)]
            print(f"  {name} p={p}: T=50 {curves[str(p)][49]:.4f}, T=100 {curves[str(p)][99]:.4f}, "
                  f"T={args.steps} {curves[str(p)][-1]:.4f}", flush=True)
        report[name] = {"samples": len(x), "ann_accuracy": ann_accuracy(net, x, y), "accuracy_per_step": curves}
    write("latency", report, f"python examples/reproduce_latency.py --cifar-limit {args.cifar_limit} "
          f"--mnist-limit {args.mnist_limit} --steps {args.steps}")

    def draw(plt):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, name in zip(axes, ("cifar10", "mnist")):
            for p, curve in report[name]["accuracy_per_step"].items():
                ax.plot(range(1, len(curve) + 1), [100 * a for a in curve], label=f"p = {p}")
            ax.axhline(100 * report[name]["ann_accuracy"], color="k", ls="--", label="ANN")
            ax.set(xlabel="time step", ylabel="accuracy (%)", title=f"{name} ({report[name]['samples']} test images)",
                   ylim=(0 if name == "cifar10" else 80, 100))
            ax.legend()

    plot("latency", draw)


if __name__ == "__main__":
    main()
