"""The efficiency reports of docs/efficiency: the 7-layer MNIST net (defaults, binary spikes, binary
spikes with biases calibrated for T = 8) and the CIFAR-10 ReLU net (defaults, binary spikes), on
1,000 test images at T = 32, priced by every energy model.

    python examples/reproduce_efficiency.py [--limit 1000] [--out docs/efficiency]

writes OUT/mnist7/ and OUT/cifar10_relu/ (report.md, report.json, per_step*.csv, plots).
"""

from __future__ import annotations

import argparse
import dataclasses

from reproduce_common import PATHS, cifar10, mnist7, parse

from eventsnn import convert
from eventsnn.analysis import analyze
from eventsnn.analysis_report import write_report
from eventsnn.calibrate import calibrate
from eventsnn.progress import terminal_progress

STEPS = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=1000, help="test images (default: %(default)s)")
    args = parse(parser)
    for name, load in (("mnist7", mnist7), ("cifar10_relu", lambda: cifar10("relu"))):
        net, x_calib, x, y = load()
        x, y = x[:args.limit], y[:args.limit]
        model = convert(net, x_calib)
        binary = dataclasses.replace(model, config=model.config.updated(spikes="binary"))
        models = {f"{name} defaults": model, f"{name} binary": binary}
        if name == "mnist7":
            models[f"{name} binary, biases for T=8"] = calibrate(binary, x_calib[:256], 8, "bias")
        reports = {label: analyze(m, x, y, STEPS, progress=terminal_progress(label)) for label, m in models.items()}
        plots, _ = write_report(reports, PATHS.results / name)
        print(f"wrote {PATHS.results / name}/report.md and {len(plots)} plots")


if __name__ == "__main__":
    main()
