"""Deng & Gu, short latency: accuracy at T = 8, 16, 32, 64, 128 on CIFAR-10.

    python examples/reproduce_deng_gu.py [--limit 2000]

(a) the ReLU net, 99.9th-percentile normalization; (b) the threshold-ReLU net (scale = y_th);
(c) (b) with threshold/2T added to every bias; (d) (b) with membranes starting at threshold/2.
Analog input, reset by subtraction, membrane readout (the softmax readout's random draws add
noise at a few steps). The bias shift depends on T, so (c) runs once per T; the others run once
to the longest T and read every shorter T off the same run.
"""

from __future__ import annotations

import argparse

from reproduce_common import ann_accuracy, cifar10, parse, plot, run, write

from eventsnn import convert

LENGTHS = (8, 16, 32, 64, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=2000)
    args = parse(parser)
    report = {"lengths": list(LENGTHS), "configs": {}}
    longest = max(LENGTHS)
    for kind in ("relu", "clip"):
        net, x_calib, x, y = cifar10(kind)
        x, y = x[:args.limit], y[:args.limit]
        model = convert(net, x_calib, 99.9, clip_scale="threshold")
        report[f"ann_accuracy_{kind}"] = ann_accuracy(net, x, y)
        configs = {"relu": [("(a) ReLU, p99.9", "none")]}.get(kind, [("(b) threshold ReLU", "none"),
                                                                     ("(d) + V_th/2 initial membrane", "membrane")])
        for label, shift in configs:
            curve = run(model.build(output="membrane", shift=shift, spikes="binary"), x, longest, label).accuracy_per_step(y)
            report["configs"][label] = [float(curve[t - 1]) for t in LENGTHS]
        if kind == "clip":
            label = "(c) + V_th/2T bias shift"
            report["configs"][label] = [run(model.build(output="membrane", shift="bias", spikes="binary"), x, t, f"{label} T={t}").accuracy(y)
                                        for t in LENGTHS]
        report["samples"] = len(x)
    for label, accs in report["configs"].items():
        print(f"{label:<34}" + "".join(f"  T={t}: {a:.4f}" for t, a in zip(LENGTHS, accs)))
    write("deng_gu", report, f"python examples/reproduce_deng_gu.py --limit {args.limit}")

    def draw(plt):
        plt.figure(figsize=(7, 4))
        for label, accs in report["configs"].items():
            plt.plot(LENGTHS, [100 * a for a in accs], "o-", label=label)
        plt.axhline(100 * report["ann_accuracy_relu"], color="k", ls="--", label="ReLU ANN")
        plt.axhline(100 * report["ann_accuracy_clip"], color="gray", ls=":", label="threshold-ReLU ANN")
        plt.xscale("log", base=2)
        plt.xlabel("simulation length T")
        plt.ylabel("accuracy (%)")
        plt.legend()

    plot("deng_gu", draw)


if __name__ == "__main__":
    main()
