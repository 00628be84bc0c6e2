"""eventsnn and the peer converters at equal T (32, 100, 300): samples per second, measured in one run.

    python benchmarks/bench_equal_steps.py [--nets mnist_cnn,cifar10_relu] [--samples 100]
                                           [--peer-python /work/peer-venv/bin/python]

Each system runs the same converted checkpoint on the same first test images for T steps on this
2-core machine (2 threads): eventsnn in this process (best of 2, kernels compiled first), with
binary spikes (as the peers' single-spike neurons) and with its defaults; the peers through
`benchmarks/peers.py` in their own environment (`benchmarks/make_peer_env.sh`), one run each,
their whole-run samples/s. Writes equal_steps.json to --out (default out/results; `--out docs/results`
updates the committed one) and prints the ratios. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_time_to_accuracy import CHECKPOINTS, PEERS, peer_data  # noqa: E402
from eventsnn import simulate  # noqa: E402
from eventsnn.model import convert  # noqa: E402
from eventsnn.snn import SimulationConfig  # noqa: E402
from examples.reproduce_short_latency import NETS  # noqa: E402
from outputs import add_out_option  # noqa: E402

STEPS = (32, 100, 300)
OURS = {"eventsnn binary": {"spikes": "binary"}, "eventsnn defaults": {}}


def ours(net, x_calib, x, steps: int) -> dict[str, float]:
    rates = {}
    for label, settings in OURS.items():
        snn = convert(net, x_calib, 99.9, SimulationConfig(**settings)).build()
        simulate(snn, x[:4], 2)  # compiled
        best = np.inf
        for _ in range(2):
            began = time.perf_counter()
            simulate(snn, x, steps)
            best = min(best, time.perf_counter() - began)
        rates[label] = len(x) / best
    return rates


def peers(name: str, data: Path, n: int, steps: int, python: str, folder: Path) -> dict[str, float]:
    out = folder / f"{name}_{steps}.json"
    subprocess.run([python, str(REPO / "benchmarks" / "peers.py"), "--arch", str(REPO / f"{CHECKPOINTS[name]}.json"),
                    "--checkpoint", str(REPO / f"{CHECKPOINTS[name]}.pt"), "--data", str(data), "--calib", str(data),
                    "--limit", str(n), "--steps", str(steps), "--systems", ",".join(PEERS), "--timing-samples", "0",
                    "--json", str(out)], check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = json.loads(out.read_text())
    return {k: report[k]["samples_per_second"] for k in PEERS if "samples_per_second" in report.get(k, {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default="mnist_cnn,cifar10_relu")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--peer-python", default="/work/peer-venv/bin/python")
    add_out_option(parser)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.nets.split(","):
            net, x_calib, x, y = NETS[name](1000)
            x, y = x[:args.samples], y[:args.samples]
            data, _ = peer_data(name, x, y, Path(folder))
            results[name] = {}
            for steps in STEPS:
                row = ours(net, x_calib, x, steps)
                row.update(peers(name, data, len(x), steps, args.peer_python, Path(folder)))
                fastest_peer = max((v for k, v in row.items() if not k.startswith("eventsnn")), default=None)
                results[name][str(steps)] = row
                print(f"{name} T={steps}: " + ", ".join(f"{k} {v:.1f}/s" for k, v in row.items())
                      + (f"; eventsnn binary / fastest peer {row['eventsnn binary'] / fastest_peer:.1f}x" if fastest_peer
                         else ""), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "equal_steps.json"
    out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
                               "samples": args.samples, "nets": results}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
