"""Time to an accurate answer: eventsnn and the peer converters, each run just long enough.

    python benchmarks/bench_time_to_accuracy.py [--nets mnist_cnn,mnist7,cifar10_relu] [--peer-python PY]

For each net and system setting: T*, the smallest T from which the accuracy stays within 0.5
(and 1) point of the ANN up to T = 64 (read off one 64-step run), then the wall time of
simulating the same 1,000 test images for T* steps, measured on this machine in this run
(eventsnn: best of 3 in this process, 2 threads; with ``exit auto``, one 64-step run whose
samples stop by the early-exit rule chosen on the calibration images for a 0.5-point budget, its
mean stop step in place of T*; the peers: `benchmarks/peers.py` in the peer
environment, `benchmarks/make_peer_env.sh`, torch with 2 threads, one run at T*). Run it on an
idle machine. Writes time_to_accuracy.json to --out (default out/results; `--out docs/results` updates
the committed one) and prints a table with each system's seconds and the ratio to eventsnn's
fastest setting.
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

from eventsnn import ann, simulate  # noqa: E402
from eventsnn.early_exit import choose_exit  # noqa: E402
from eventsnn.model import convert  # noqa: E402
from eventsnn.report import steps_to_within  # noqa: E402
from eventsnn.snn import SimulationConfig  # noqa: E402
from examples.reproduce_short_latency import NETS  # noqa: E402
from outputs import add_out_option  # noqa: E402

OURS = {"eventsnn defaults (graded, 8 levels)": {},
        "eventsnn defaults, stage by stage": {"schedule": "layer"}, "eventsnn binary": {"spikes": "binary"},
        "eventsnn binary, channel-wise scales": {"spikes": "binary", "scale_per": "channel"}}
EXITS = {"eventsnn defaults + exit auto": {}, "eventsnn binary + exit auto": {"spikes": "binary"}}
PEERS = ("spikingjelly_99.9%", "spikingjelly_max", "spikingjelly_ltb", "sinabs_multispike", "sinabs_singlespike")
CHECKPOINTS = {"mnist_cnn": "eventsnn/data/mnist_cnn", "mnist7": "examples/models/mnist7",
               "cifar10_relu": "examples/models/cifar10_relu"}
LONGEST = 64


def best_seconds(snn, x, steps: int, repeats: int = 3, **options) -> float:
    simulate(snn, x[:8], steps)  # warm
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        simulate(snn, x, steps, **options)
        times.append(time.perf_counter() - began)
    return min(times)


def ours(name: str, limit: int) -> tuple[dict, tuple]:
    net, x_calib, x, y = NETS[name](1000)
    x, y = x[:limit], y[:limit]
    ann_accuracy = ann.accuracy(net, x, y)
    rows = {}
    for label, settings in OURS.items():
        settings = dict(settings)
        scale_per = settings.pop("scale_per", "layer")
        options = {"schedule": settings.pop("schedule")} if "schedule" in settings else {}
        if scale_per == "channel" and not net.is_chain:
            continue
        snn = convert(net, x_calib, 99.9, SimulationConfig(**settings), scale_per=scale_per).build()
        curve = simulate(snn, x, LONGEST).accuracy_per_step(y)
        row = {"accuracy_per_step": curve.tolist()}
        for points in ("0.5", "1"):
            t = steps_to_within(curve, ann_accuracy, float(points))
            row[f"steps_within_{points}"] = t
            row[f"seconds_within_{points}"] = best_seconds(snn, x, t, **options) if t else None
        rows[label] = row
        print(f"  {label}: T*(0.5) = {row['steps_within_0.5']}, {row['seconds_within_0.5']} s", flush=True)
    for label, settings in EXITS.items():  # one run of 64 steps, each sample stopped by the rule chosen on calibration data
        model = convert(net, x_calib, 99.9, SimulationConfig(**settings))
        rule = choose_exit(model, x_calib, LONGEST, max_loss=0.005)
        snn, options = model.build(), {"stable_steps": rule["stable_steps"], "exit_margin": rule["exit_margin"]}
        result = simulate(snn, x, LONGEST, **options)
        accuracy = result.accuracy(y)
        stop = float(np.where(result.exit_step > 0, result.exit_step, LONGEST).mean())
        seconds = best_seconds(snn, x, LONGEST, **options)
        row = {"rule": rule, "accuracy": accuracy, "mean_stop_step": stop}
        for points in ("0.5", "1"):
            within = accuracy >= ann_accuracy - float(points) / 100 - 1e-12
            row[f"steps_within_{points}"] = round(stop, 1) if within else None
            row[f"seconds_within_{points}"] = seconds if within else None
        rows[label] = row
        print(f"  {label}: {rule['stable_steps'] or rule['exit_margin']} -> accuracy {accuracy:.4f}, mean stop {stop:.1f}, "
              f"{seconds:.2f} s", flush=True)
    return {"ann_accuracy": ann_accuracy, "samples": len(x), "systems": rows}, (x, y)


def peer_data(name: str, x: np.ndarray, y: np.ndarray, folder: Path) -> tuple[Path, Path]:
    """The same test images (and the same calibration images eventsnn used) as .npz files for peers.py."""
    net, x_calib, _, _ = NETS[name](1000)
    data = folder / f"{name}_test.npz"
    np.savez(data, x=np.round(np.asarray(x) * 255).astype(np.uint8), y=y,
             x_calib=np.round(np.asarray(x_calib) * 255).astype(np.uint8))
    return data, data


def peers(name: str, x, y, python: str, report: dict, folder: Path) -> None:
    arch = REPO / f"{CHECKPOINTS[name]}.json"
    checkpoint = REPO / f"{CHECKPOINTS[name]}.pt"
    data, calib = peer_data(name, x, y, folder)

    def run(settings: str, steps: int) -> dict:
        out = folder / f"{name}_{settings}_{steps}.json"
        subprocess.run([python, str(REPO / "benchmarks" / "peers.py"), "--arch", str(arch), "--checkpoint",
                        str(checkpoint), "--data", str(data), "--calib", str(calib), "--limit", str(len(x)),
                        "--steps", str(steps), "--systems", settings, "--timing-samples", "0", "--json", str(out)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())[settings]

    for settings in PEERS:
        full = run(settings, LONGEST)
        if "accuracy_per_step" not in full:
            continue
        row = {"accuracy_per_step": full["accuracy_per_step"]}
        for points in ("0.5", "1"):
            t = steps_to_within(full["accuracy_per_step"], report["ann_accuracy"], float(points))
            row[f"steps_within_{points}"] = t
            row[f"seconds_within_{points}"] = run(settings, t)["simulation_seconds"] if t else None
        report["systems"][settings] = row
        print(f"  {settings}: T*(0.5) = {row['steps_within_0.5']}, {row['seconds_within_0.5']} s", flush=True)


def table(results: dict) -> str:
    lines = []
    for name, res in results.items():
        lines.append(f"{name} ({res['samples']} images, ANN {100 * res['ann_accuracy']:.2f}%)")
        best = min((r["seconds_within_0.5"] for label, r in res["systems"].items()
                    if label.startswith("eventsnn") and r["seconds_within_0.5"]), default=None)
        for label, r in res["systems"].items():
            cells = []
            for points in ("0.5", "1"):
                t, s = r[f"steps_within_{points}"], r[f"seconds_within_{points}"]
                cells.append(f"T*={t} {s:.2f} s" if t else "never within 64 steps")
            ratio = (f"  x{r['seconds_within_0.5'] / best:.1f} eventsnn's time"
                     if best and r["seconds_within_0.5"] and not label.startswith("eventsnn") else "")
            lines.append(f"  {label:<38} 0.5 pt: {cells[0]:<26} 1 pt: {cells[1]:<26}{ratio}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default=",".join(CHECKPOINTS))
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--peer-python", default="/work/peer-venv/bin/python")
    parser.add_argument("--ours-only", action="store_true", help="rerun eventsnn's rows, keep the stored peers' rows")
    add_out_option(parser)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "time_to_accuracy.json"
    stored = json.loads(out.read_text())["nets"] if out.exists() else {}
    results = dict(stored)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.nets.split(","):
            print(name, flush=True)
            results[name], (x, y) = ours(name, args.limit)
            if args.ours_only:
                peers_before = stored.get(name, {}).get("systems", {})
                results[name]["systems"].update({k: v for k, v in peers_before.items() if not k.startswith("eventsnn")})
            elif Path(args.peer_python).exists():
                peers(name, x, y, args.peer_python, results[name], Path(folder))
            else:
                print(f"  no peer environment at {args.peer_python} (benchmarks/make_peer_env.sh): peers skipped")
    out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "date": time.strftime("%Y-%m-%d"),
                               "nets": results}, indent=1))
    print(table(results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
