"""The event engine against dense time-stepped simulation, measured in one run.

    python benchmarks/bench_performance.py [--quick]

Networks: the demo MNIST CNN, and the CIFAR-10 net of examples/ (trained weights from
examples/models/cifar10_relu.pt when present, else random weights of the same shape, normalized on
real images). All simulators run the same converted network on the same inputs with analog
input, reset by subtraction and membrane readout, and their decisions are compared.

Prints tables and writes performance.json, performance_time_vs_T.png and performance.md to --out
(default out/results; `--out docs/results` updates docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import date
from importlib import resources
from pathlib import Path

import numba
import numpy as np
from numba import njit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from eventsnn import convert, simulate, simulate_reference  # noqa: E402
from eventsnn.engine import PHASES  # noqa: E402
from eventsnn.engine.delivery import _deliver  # noqa: E402
from eventsnn.engine.packing import _neuron_order, pack  # noqa: E402
from eventsnn.loaders import load_network  # noqa: E402
from eventsnn.report import phase_report  # noqa: E402
from eventsnn.snn import GATE  # noqa: E402
from outputs import add_out_option, page_path  # noqa: E402


def best_of(fn, repeats: int = 2) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(repeats):
        began = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - began)
    return best, result


def mnist_setup():
    data = resources.files("eventsnn") / "data"
    net = load_network(data / "mnist_cnn.pt", data / "mnist_cnn.json")
    with np.load(data / "mnist_sample.npz") as f:
        return net, f["x_calib"].astype(np.float32) / 255, f["x"].astype(np.float32) / 255, f["y"]


def cifar_setup():
    from examples.cifar10_data import load_cifar10

    data = load_cifar10()
    weights = REPO / "examples" / "models" / "cifar10_relu.pt"
    arch = json.loads((REPO / "examples" / "cifar10_arch.json").read_text())
    if weights.exists():
        net = load_network(weights, weights.with_suffix(".json"))
        origin = "trained"
    else:
        from eventsnn.spec import network_from_spec

        rng = np.random.default_rng(0)
        params, shape = {}, arch["input_shape"]
        for layer in arch["layers"]:
            if layer["type"] == "conv2d":
                k = layer["kernel_size"]
                params[f"{layer['name']}.weight"] = rng.normal(0, np.sqrt(2 / (shape[0] * k * k)), (layer["out_channels"], shape[0], k, k))
                params[f"{layer['name']}.bias"] = np.zeros(layer["out_channels"])
                shape = [layer["out_channels"], shape[1] - k + 1, shape[2] - k + 1]
            elif layer["type"] == "maxpool2d":
                shape = [shape[0], shape[1] // 2, shape[2] // 2]
            elif layer["type"] == "flatten":
                shape = [int(np.prod(shape))]
            elif layer["type"] == "linear":
                params[f"{layer['name']}.weight"] = rng.normal(0, np.sqrt(2 / shape[0]), (layer["out_features"], shape[0]))
                params[f"{layer['name']}.bias"] = np.zeros(layer["out_features"])
                shape = [layer["out_features"]]
            elif layer["type"] == "batchnorm":
                for key, value in (("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1)):
                    params[f"{layer['name']}.{key}"] = np.full(shape[0], float(value))
        net = network_from_spec(arch, params)
        origin = "random weights"
    x_calib = data["x_train"][:1000].astype(np.float32) / 255
    return net, x_calib, data["x_test"].astype(np.float32) / 255, data["y_test"], origin


@njit(cache=True)
def _replay(projection_index, queues, queue_ptr, net, v):
    ops = 0
    for t in range(queue_ptr.size - 1):
        ops += _deliver(projection_index, queues, queue_ptr[t], queue_ptr[t + 1] - queue_ptr[t], np.empty(0, np.float32),
                        net, v, 0)
    return ops


def synops_per_core(snn, x: np.ndarray, steps: int) -> list[dict]:
    """Replay each synaptic stage's real input events through its delivery kernel on one core."""
    result = simulate(snn, x, steps, record=True, threads=1)
    raster = result.raster[:, :, _neuron_order(snn)]
    net = pack(snn)
    off = net.off
    rows = []
    for s, stage in enumerate(snn.stages):
        source = stage.projections[0].source
        if source < 0 or stage.kind == GATE or len(stage.projections) > 1:
            continue
        src = raster[:, :, off[source]:off[source + 1]].reshape(-1, off[source + 1] - off[source])
        events = [np.flatnonzero(r).astype(np.int32) for r in src]
        queues = np.concatenate(events)
        queue_ptr = np.concatenate([[0], np.cumsum([len(e) for e in events])]).astype(np.int64)
        v = np.zeros(stage.size, np.float32)
        args = (net.proj_ptr[s], queues, queue_ptr, net, v)
        _replay(*args)
        seconds, ops = best_of(lambda: _replay(*args), 3)
        rows.append({"layer": stage.name, "path": stage.path, "synops": int(ops), "synops_per_second": ops / seconds})
    return rows


def memory_bandwidth() -> float:
    """Bytes per second of a large array copy (read + write counted), one thread."""
    a = np.ones(64 << 20, np.float32)
    b = np.empty_like(a)
    seconds, _ = best_of(lambda: np.copyto(b, a), 5)
    return 2 * a.nbytes / seconds


def engines_vs_steps(name, snn, x, y, steps_list, n_event, n_dense, n_reference, have_torch) -> list[dict]:
    rows = []
    for steps in steps_list:
        xe = x[:n_event]
        t_event, event = best_of(lambda: simulate(snn, xe, steps, batch_size=256))
        row = {"network": name, "steps": steps, "event_samples_per_second": n_event / t_event,
               "event_accuracy": float(np.mean(event.decisions[:, -1] == y[:n_event])),
               "synops_per_sample": float(event.synops.sum() / n_event)}
        xr = x[:n_reference]
        t_ref, ref = best_of(lambda: simulate_reference(snn, xr, steps), 1)
        row["reference_samples_per_second"] = n_reference / t_ref
        row["reference_agreement"] = float(np.mean(ref.decisions == event.decisions[:n_reference]))
        if have_torch:
            from torch_sim import TorchSimulator

            xt = x[:n_dense]
            sim = TorchSimulator(snn)
            t_torch, decisions = best_of(lambda: sim.run(xt, steps), 1)
            row["torch_samples_per_second"] = n_dense / t_torch
            row["torch_agreement"] = float(np.mean(decisions == event.decisions[:n_dense]))
        rows.append(row)
        ratio = f"{row['event_samples_per_second'] / row['torch_samples_per_second']:.1f}x" if have_torch else "-"
        print(f"{name:<8}T={steps:<4} event {row['event_samples_per_second']:8.1f}/s  reference "
              f"{row['reference_samples_per_second']:7.2f}/s ({row['event_samples_per_second'] / row['reference_samples_per_second']:.1f}x)  "
              f"torch {row.get('torch_samples_per_second', float('nan')):7.2f}/s ({ratio})  "
              f"acc {row['event_accuracy']:.3f}", flush=True)
    return rows


COMPILE_PROFILE = """
import json, time
from numba.core import event
from eventsnn.engine import compile_kernels

class Compiles(event.Listener):  # each kernel's own compile time: nested compiles subtracted
    def __init__(self):
        self.stack, self.own = [], {}
    def on_start(self, e):
        self.stack.append([time.perf_counter(), 0.0])
    def on_end(self, e):
        began, nested = self.stack.pop()
        took = time.perf_counter() - began
        if self.stack:
            self.stack[-1][1] += took
        name = e.data["dispatcher"].py_func.__qualname__.split(".<locals>")[0]
        self.own[name] = self.own.get(name, 0.0) + took - nested

listener = Compiles()
event.register("numba:compile", listener)
began = time.perf_counter()
compile_kernels(("float32",))
print(json.dumps({"seconds": time.perf_counter() - began, "own": listener.own}))
"""


def start_up(model_path: Path, data_path: Path, cold_runs: int = 3, warm_runs: int = 5) -> dict:
    """Seconds for a fresh process to classify one image with `eventsnn run`, each run timed: with an
    empty kernel cache (the first run of a new install compiles), and again with the cache it left;
    `eventsnn warmup` into an empty cache and the first run after it; and where the compile time of
    the float32 kernels goes (each kernel's own seconds, Numba's compile events)."""
    import os
    import subprocess
    import tempfile

    def timed(command: list[str], cache: str) -> tuple[float, str]:
        began = time.perf_counter()
        done = subprocess.run([sys.executable, *command], env=dict(os.environ, NUMBA_CACHE_DIR=cache),
                              check=True, capture_output=True, text=True)
        return time.perf_counter() - began, done.stdout

    run = ["-m", "eventsnn", "run", str(model_path), "--data", str(data_path), "--limit", "1", "--steps", "8"]
    times = {"cold_seconds": [], "warm_seconds": []}
    for _ in range(cold_runs):
        with tempfile.TemporaryDirectory() as cache:
            times["cold_seconds"].append(timed(run, cache)[0])
    with tempfile.TemporaryDirectory() as cache:
        timed(run, cache)
        times["warm_seconds"] = [timed(run, cache)[0] for _ in range(warm_runs)]
    with tempfile.TemporaryDirectory() as cache:
        times["warmup_seconds"] = timed(["-m", "eventsnn", "warmup"], cache)[0]
        times["after_warmup_seconds"] = timed(run, cache)[0]
    with tempfile.TemporaryDirectory() as cache:
        times["compile_profile"] = json.loads(timed(["-c", COMPILE_PROFILE], cache)[1])
    return times


def start_up_profile(su: dict) -> list[str]:
    """Why a first run takes what it takes: where the compile time goes, and what warmup buys."""
    profile = su["compile_profile"]
    own = sorted(profile["own"].items(), key=lambda item: -item[1])
    kernels = [(name, t) for name, t in own if not name.startswith(("ol_", "_ol_", "impl"))]
    top = ", ".join(f"`{name}` {t:.1f} s" for name, t in kernels[:6])
    library = sum(t for _, t in own) - sum(t for _, t in kernels)  # NumPy functions compiled for the kernels
    return [f"Where the first run's time goes (the float32 kernels compiled alone, {profile['seconds']:.1f} s; each "
            f"kernel's own compile time, nested compiles subtracted): {top}; {len(kernels)} kernels in all, and "
            f"{library:.1f} s for the NumPy functions Numba compiles for them. No kernel dominates: the time is Numba "
            "typing and lowering each of them (in Python) and LLVM optimizing the result, so fewer or smaller kernels "
            "would shave seconds, not reach 2 s. What reaches it is compiling at install: "
            f"`eventsnn warmup` (float32 and int32, analog and Poisson input) took {su['warmup_seconds']:.1f} s into an "
            f"empty cache, and the first `eventsnn run` after it {su['after_warmup_seconds']:.2f} s."]


def measure_start_up(mnist_net, mnist_calib, mnist_x, mnist_y) -> dict:
    import tempfile

    from eventsnn.model import save

    with tempfile.TemporaryDirectory() as folder:
        save(convert(mnist_net, mnist_calib, 99.9), Path(folder) / "m.npz")
        np.savez(Path(folder) / "one.npz", x=(mnist_x[:1] * 255).astype(np.uint8), y=mnist_y[:1])
        times = start_up(Path(folder) / "m.npz", Path(folder) / "one.npz")
    print(f"start-up: {seconds_range(times['cold_seconds'], 1)} s cold, {seconds_range(times['warm_seconds'])} s warm; "
          f"warmup {times['warmup_seconds']:.1f} s, then {times['after_warmup_seconds']:.2f} s")
    return times


def seconds_range(times, digits: int = 2) -> str:
    """'0.71-0.75' over repeated runs (one number from older reports)."""
    times = np.atleast_1d(times)
    low, high = f"{times.min():.{digits}f}", f"{times.max():.{digits}f}"
    return low if low == high else f"{low}-{high}"


def defaults_table(nets: dict, scale: float) -> list[dict]:
    """Each network with the default settings (graded spikes, membrane shift and readout) at the T
    where it reaches its ANN: samples/s on both cores and with batch size 1, and accuracy."""
    rows = []
    for name, (model, _, x, y) in nets.items():
        snn = model.build()  # the model's defaults
        xs, ys = x[:int(400 * scale)], y[:int(400 * scale)]
        for steps in (2, 8):
            seconds, res = best_of(lambda: simulate(snn, xs, steps))
            one, _ = best_of(lambda: simulate(snn, xs[:20], steps, batch_size=1, threads=1))
            rows.append({"network": name, "steps": steps, "samples_per_second": len(xs) / seconds,
                         "batch1_ms_per_sample": 1000 * one / 20, "accuracy": float(res.accuracy(ys)),
                         "synops_per_sample": float(res.synops.sum() / len(xs))})
            print(f"  {name:<8} T={steps:<3} {len(xs) / seconds:8.1f} samples/s, batch 1: {1000 * one / 20:.2f} ms, "
                  f"accuracy {rows[-1]['accuracy']:.3f}")
    return rows


def phase_breakdown(snn, x: np.ndarray, steps: int) -> dict:
    """Where one thread's time goes, by phase (shares of the profiled total) and by stage and phase."""
    result = simulate(snn, x, steps, threads=1, profile=True)
    profile = phase_report(result)
    total = profile["total_cpu_seconds"]
    return {"steps": steps, "samples": len(x), "samples_per_second": len(x) / result.seconds, "share": profile["share"],
            "by_stage": {name: {p: v / total for p, v in phases.items() if v > 0.005 * total}
                         for name, phases in profile["stages"].items()}}


def end_to_end_share(report: dict) -> tuple[float, float]:
    """(end-to-end SynOps/s on one core, delivery-only SynOps/s) for the CIFAR-10 net at T = 100."""
    t100 = [r for r in report["engines_vs_steps"] if r["network"] == "cifar10" and r["steps"] == 100][0]
    one_thread = report["scaling"]["threads"][0]["samples_per_second"]
    rows = report["synops_per_core"]["cifar10"]
    delivery = sum(r["synops"] for r in rows) / sum(r["synops"] / r["synops_per_second"] for r in rows)
    return t100["synops_per_sample"] * one_thread, delivery


def onnxruntime_section(r: dict) -> list[str]:
    """The ANN in onnxruntime against eventsnn at the first T within 0.5 points of it."""
    lines = ["", "## Against the ANN itself in onnxruntime", "",
             f"`{r['command']}` ({r['date']}, {r['threads']} threads for both, the first 1,000 test images; the "
             "CIFAR-10 nets of `../shared/models`). The converted model's ANN is written as ONNX (`eventsnn export "
             "-o ann.onnx`) and run by onnxruntime; eventsnn runs the defaults at the first T whose accuracy is within "
             "0.5 points of the ANN's on these images, timed warm, step by step (the default schedule) and stage by "
             "stage (`--schedule layer`: each projection delivered as a matrix product or as events, whichever it "
             "measured cheaper; 'dense' is the share of input events that went through matrix products). This is "
             "the honest yardstick for CPU deployment.", "",
             "| net | ANN MACs | onnxruntime img/s, batch 64 / 1 | eventsnn T, accuracy (ANN) | SynOps/image | "
             "step by step img/s | / onnxruntime | stage by stage img/s (dense) | / onnxruntime | "
             "int32 img/s: step, stage |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, n in r["nets"].items():
        e, o, i = n["eventsnn"], n["onnxruntime"], n.get("eventsnn_int32")
        layer, layer32 = n.get("eventsnn_layer", {}), n.get("eventsnn_layer_int32", {})
        if "images_per_second" in layer:
            staged = (f"{layer['images_per_second']:,.0f} ({layer['dense_share']:.0%}) | "
                      f"{ratio(layer['images_per_second'] / o['batch64'])}")
        else:
            staged = f"not covered ({layer.get('refused', 'not measured')}) | -"
        int32 = ", ".join(f"{x['images_per_second']:,.0f}" if "images_per_second" in x else "-" for x in (i or {}, layer32))
        lines.append(f"| {name} | {n['ann_macs']:.3g} | {o['batch64']:,.0f} / {o['batch1']:,.0f} | T = {e['steps']}, "
                     f"{100 * e['accuracy']:.1f}% ({100 * n['ann_accuracy']:.1f}%) | {e['synops_per_image']:.3g} | "
                     f"{e['images_per_second']:,.0f} | {ratio(n['ratio_batch64'])} | {staged} | {int32} |")
    staged = {name: n["eventsnn_layer"]["images_per_second"] / n["eventsnn"]["images_per_second"]
              for name, n in r["nets"].items() if "images_per_second" in n.get("eventsnn_layer", {})}
    if staged:
        wide = [name for name in staged if name.startswith("vgg16")]
        slower = [name for name, v in staged.items() if v < 1]
        vgg = r["nets"][wide[0]]
        ort_rate = vgg["ann_macs"] * vgg["onnxruntime"]["batch64"]
        lines += ["", "Stage by stage against step by step: "
                  + ", ".join(f"{name} {v:.2f}x" for name, v in staged.items()) + ". The VGG-16s' layers are wide "
                  "(64-512 channels) and dense at T = 1, so their projections deliver as matrix products, and their "
                  "3 x 3 stride-1 convs after the first multiply by Winograd's F(2x2, 3x3): 2.25 times fewer multiplications than the "
                  "unrolled product an ANN runtime computes. onnxruntime runs the whole ANN at "
                  f"{ort_rate:.2g} multiply-adds per second here, about what a float32 matrix product reaches on these "
                  "2 cores; at T = 1 graded spikes are the quantized ANN, so with fewer multiplications the schedule "
                  "can pass it although the transforms, the fire pass and the bookkeeping come on top. During a run "
                  "BLAS is held to one thread and the run's threads share the products: each takes its own rows "
                  "through a Winograd conv's transforms and products in blocks that stay in its cache, other products "
                  "are split between them (OpenBLAS's spinning threads slowed the kernels that follow a product; what "
                  "Winograd and this are worth: "
                  "`benchmarks/bench_lockstep_parts.py`, docs/usage.md)."
                  + (f" Step by step stays faster on {', '.join(slower)}, whose layers are small ("
                     + ", ".join(f"{r['nets'][name]['ann_macs']:.2g} multiply-adds per image" for name in slower)
                     + ")." if slower else "")
                  + " In int32 the products are float64 (exact), at half float32's speed."]
    return lines


def levels_section(r: dict) -> list[str]:
    """The defaults against the run length and levels ``choose_levels`` picks, with onnxruntime beside."""
    lines = ["", "## Fewer SynOps: the chosen run length and levels", "",
             f"`{r['command']}` ({r['date']}, {r['threads']} threads, the first 1,000 test images; onnxruntime "
             "measured again in the same process). The defaults run at the first T within 0.5 points of the ANN; "
             "`convert --choose-levels --steps 3` picks the run length and levels with the fewest SynOps on 1,000 "
             "calibration images, and `--per-layer-levels` then coarsens each layer's levels (docs/usage.md, "
             "\"Fewer SynOps\"). 'differs' is the share of test images decided otherwise than by the ANN. Speeds are "
             "step by step / stage by stage; the faster one is set against onnxruntime at batch 64.", "",
             "| net | ANN | defaults: T, accuracy (differs), SynOps/image, img/s | chosen: T, L, accuracy (differs), "
             "SynOps/image, img/s | / onnxruntime (defaults -> chosen) | with per-layer levels: accuracy (differs), "
             "SynOps/image | chosen in (with per-layer levels) |", "|---|---|---|---|---|---|---|"]

    def cells(row: dict) -> str:
        return f"{100 * row['accuracy']:.1f}% ({100 * row['disagreement_with_ann']:.1f}%), {row['synops_per_image']:.3g}"

    for name, n in r["nets"].items():
        d, c, p, choice = n["default"], n["chosen"], n["chosen_per_layer"], n["choice"]
        lines.append(
            f"| {name} | {100 * n['ann_accuracy']:.1f}% | T = {d['steps']}, {cells(d)}, {d['images_per_second']:,.0f} / "
            f"{d['layer_images_per_second'] or 0:,.0f} | T = {c['steps']}, L = {choice['levels']}, {cells(c)} "
            f"({c['synops_per_image'] / d['synops_per_image']:.2f}x), {c['images_per_second']:,.0f} / "
            f"{c['layer_images_per_second'] or 0:,.0f} | {ratio(fastest_rate(n, ('default',)))} -> "
            f"{ratio(fastest_rate(n, ('chosen',)))} | {cells(p)} ({p['synops_per_image'] / c['synops_per_image']:.2f}x) | "
            f"{n['choose_seconds']:.0f} s ({n['choose_per_layer_seconds']:.0f} s) |")
    return lines


def fastest_rate(n: dict, keys: tuple[str, ...]) -> float:
    """The fastest of the given rows' schedules against the same run's onnxruntime at batch 64."""
    rates = []
    for key in keys:
        row = n.get(key, {})
        rates += [row[k] for k in ("images_per_second", "layer_images_per_second") if row.get(k)]
    return max(rates) / n["onnxruntime"]["batch64"]


def onnxruntime_targets(nets: dict, chosen: dict | None = None) -> list[str]:
    """The yardstick's targets: eventsnn's fastest schedule and setting against onnxruntime at batch 64,
    each ratio within one run."""
    def fastest(name: str) -> float:
        n = nets[name]
        rates = [n[k]["images_per_second"] for k in ("eventsnn", "eventsnn_layer") if "images_per_second" in n.get(k, {})]
        best = max(rates) / n["onnxruntime"]["batch64"]
        return max(best, fastest_rate(chosen[name], ("chosen",))) if chosen and name in chosen else best

    rows = []
    for label, names, goal in (("VGG-16 (ReLU and QCFS) >= onnxruntime", ("vgg16", "vgg16_qcfs4"), 1.0),
                               ("ResNet-20 >= 1/2 of onnxruntime", ("resnet20",), 0.5),
                               ("paper's net >= 1/2 of onnxruntime", ("paper_net",), 0.5)):
        got = [fastest(name) for name in names if name in nets]
        if got:
            rows.append(f"| {label} (the fastest schedule and setting, batch 64) | {', '.join(ratio(g) for g in got)} | "
                        f"{'met' if min(got) >= goal else 'missed'} |")
    return rows


def ratio(value: float) -> str:
    """A speed ratio as '1/2.4' below 1, as '1.3x' from 1."""
    return f"{value:.2f}x" if value >= 1 else f"1/{1 / value:.1f}"


def peer_and_dense_targets(report: dict, out: Path) -> list[str]:
    """>= 10x the peers at equal accuracy (bench_time_to_accuracy.py, measured in its own run) and
    never slower than the dense simulations (this run's first table)."""
    lines = []
    timed = out / "time_to_accuracy.json"
    if timed.exists():
        tta = json.loads(timed.read_text())
        cells, met = [], True
        for name, net in tta["nets"].items():
            times = {k: r["seconds_within_0.5"] for k, r in net["systems"].items() if r["seconds_within_0.5"]}
            ours = min((t for k, t in times.items() if k.startswith("eventsnn")), default=None)
            peers = {k: t for k, t in times.items() if not k.startswith("eventsnn")}
            if not peers or ours is None:
                who = "no peer setting" if ours is not None else "no eventsnn setting" if peers else "neither side"
                met &= ours is not None
                cells.append(f"{name}: {who} gets within 0.5 points in 64 steps")
                continue
            peer = min(peers, key=peers.get)
            met &= peers[peer] >= 10 * ours
            cells.append(f"{name} {peers[peer] / ours:.1f}x ({peer}, T = {net['systems'][peer]['steps_within_0.5']})")
        lines.append(f"| >= 10x SpikingJelly and sinabs at equal accuracy (time to within 0.5 points of the ANN; "
                     f"`{tta['command']}`, {tta['date']}, docs/results.md) | {', '.join(cells)} | "
                     f"{'met' if met else 'missed'} |")
    rows = report["engines_vs_steps"]
    torch_ratio = min(r["event_samples_per_second"] / r["torch_samples_per_second"] for r in rows)
    reference_ratio = min(r["event_samples_per_second"] / r["reference_samples_per_second"] for r in rows)
    lines.append(f"| never slower than our own dense time-stepped simulation (the first table) | at least "
                 f"{torch_ratio:.1f}x the dense PyTorch simulation, {reference_ratio:.1f}x the NumPy reference | "
                 f"{'met' if min(torch_ratio, reference_ratio) >= 1 else 'missed'} |")
    return lines


def render_markdown(report: dict, out: Path) -> str:
    """performance.md: the measured tables and the issue's targets, met or missed (with the other
    benchmarks' results stored in ``out``)."""
    lines = ["# Performance", "", f"Measured {report['date']} on this project's 2-core CPU machine with "
             f"`{report['command']}` (all ratios from the same run). CIFAR-10 weights: {report['cifar10_weights']}.",
             "Every simulator runs the same converted network (99.9th-percentile normalization, analog input, reset by "
             "subtraction, membrane readout) on the same test images; 'agree' is the fraction of per-step decisions "
             "equal to the event engine's.", "", "![time vs T](results/performance_time_vs_T.png)", "",
             "## Event engine vs dense time-stepped simulation", "",
             "| network | T | event samples/s | dense PyTorch samples/s | event / PyTorch | NumPy reference samples/s "
             "| event / reference | accuracy (event) | agree (torch, ref) | SynOps/sample |", "|" + "---|" * 10]
    for r in report["engines_vs_steps"]:
        torch_rate = r.get("torch_samples_per_second")
        lines.append(f"| {r['network']} | {r['steps']} | {r['event_samples_per_second']:.1f} | "
                     f"{torch_rate:.2f} | {r['event_samples_per_second'] / torch_rate:.1f}x | " if torch_rate else
                     f"| {r['network']} | {r['steps']} | {r['event_samples_per_second']:.1f} | - | - | ")
        lines[-1] += (f"{r['reference_samples_per_second']:.2f} | {r['event_samples_per_second'] / r['reference_samples_per_second']:.1f}x | "
                      f"{r['event_accuracy']:.3f} | {r.get('torch_agreement', float('nan')):.3f}, {r['reference_agreement']:.3f} | "
                      f"{r['synops_per_sample']:.3g} |")
    if "defaults" in report:
        lines += ["", "## The default settings (graded spikes)", "",
                  "The tables above pin binary spikes (what the dense PyTorch baseline simulates). With the defaults "
                  "the nets reach their ANN's accuracy in a few steps (docs/results.md), so this is what a user runs:", "",
                  "| network | T | samples/s (2 threads) | batch 1, 1 thread: ms per sample | accuracy | SynOps/sample |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['network']} | {r['steps']} | {r['samples_per_second']:.0f} | {r['batch1_ms_per_sample']:.2f} | "
                  f"{r['accuracy']:.3f} | {r['synops_per_sample']:.3g} |" for r in report["defaults"]]
    if "start_up" in report:
        su = report["start_up"]
        lines += ["", "## Start-up", "",
                  f"A fresh process classifying one MNIST image (`eventsnn run`, T = 8; "
                  f"`python benchmarks/bench_performance.py --start-up`, {np.size(su['cold_seconds'])} first runs and "
                  f"{np.size(su['warm_seconds'])} later ones): {seconds_range(su['cold_seconds'], 1)} s the "
                  f"first time on a machine (the kernels compile into Numba's on-disk cache; `eventsnn warmup` does "
                  f"this ahead, e.g. when building an image), {seconds_range(su['warm_seconds'])} s every time after."]
        if "compile_profile" in su:
            lines += ["", *start_up_profile(su)]
    ort = out / "vs_onnxruntime.json"
    if ort.exists():  # benchmarks/bench_vs_onnxruntime.py, measured in its own run
        lines += onnxruntime_section(json.loads(ort.read_text()))
    levels = out / "layer_levels.json"
    if levels.exists():  # benchmarks/bench_layer_levels.py, measured in its own run
        lines += levels_section(json.loads(levels.read_text()))
    equal = out / "equal_steps.json"
    if equal.exists():  # benchmarks/bench_equal_steps.py: the peers at equal T, measured in its own run
        eq = json.loads(equal.read_text())
        lines += ["", "## Against the peers at equal T", "",
                  f"`{eq['command']}` ({eq['date']}, {eq['samples']} test images, 2 threads; the peers in their own "
                  "environment, whole-run samples/s). eventsnn binary is the like-for-like row (one-bit spikes, as the "
                  "peers' single-spike neurons); its defaults fire graded events and need only 1-2 steps "
                  "(docs/results.md), so per step they cost more.", "",
                  "| network | T | eventsnn binary | eventsnn defaults | fastest peer | eventsnn binary / fastest peer |",
                  "|---|---|---|---|---|---|"]
        for name, by_steps in eq["nets"].items():
            for steps, row in by_steps.items():
                peer, rate = max(((k, v) for k, v in row.items() if not k.startswith("eventsnn")), key=lambda kv: kv[1])
                lines.append(f"| {name} | {steps} | {row['eventsnn binary']:.1f}/s | {row['eventsnn defaults']:.1f}/s | "
                             f"{rate:.1f}/s ({peer}) | {row['eventsnn binary'] / rate:.1f}x |")
    bandwidth = report["memory_bandwidth_bytes_per_second"]
    lines += ["", "## SynOps per second per core", "",
              f"Each layer's real input events (recorded from a run) replayed through its delivery kernel on one core. "
              f"Memory bandwidth measured in the same run (array copy, read + write, one thread): {bandwidth / 1e9:.1f} GB/s; "
              f"a SynOp reads and writes one float32 membrane and reads one weight (12 bytes if nothing were cached), "
              f"so streaming from memory would cap it near {bandwidth / 12 / 1e9:.1f}e9 SynOps/s.", "",
              "| network | layer | path | SynOps/s per core |", "|---|---|---|---|"]
    for name, rows in report["synops_per_core"].items():
        lines += [f"| {name} | {r['layer']} | {r['path']} | {r['synops_per_second']:.3g} |" for r in rows]
    sc = report["scaling"]
    lines += ["", "## Scaling (CIFAR-10 net, T = 100)", "", "| percentile | spikes/neuron/step | samples/s |", "|---|---|---|"]
    lines += [f"| {r['percentile']} | {r['rate']:.4f} | {r['samples_per_second']:.1f} |" for r in sc["percentile"]]
    lines += ["", "| batch | samples/s |", "|---|---|"] + [f"| {r['batch']} | {r['samples_per_second']:.1f} |" for r in sc["batch"]]
    lines += ["", "| threads | samples/s |", "|---|---|"] + [f"| {r['threads']} | {r['samples_per_second']:.1f} |" for r in sc["threads"]]
    lines += ["", "## Memory", "", f"Peak RSS of the benchmark process: {report['peak_rss_bytes'] / 2**20:.0f} MiB.", "",
              "| network | layer | path | connectivity bytes |", "|---|---|---|---|"]
    for name in ("mnist", "cifar10"):
        lines += [f"| {name} | {layer} | {report[f'{name}_paths'][layer]} | {size:,} |"
                  for layer, size in report[f"{name}_connectivity_bytes"].items()]
    e2e, delivery = end_to_end_share(report)
    lines += ["", "## Where the time goes (CIFAR-10 net, T = 100, one thread)", "",
              f"End to end the engine does {e2e:.3g} SynOps/s on one core (SynOps per sample at T = 100 times the "
              f"one-thread samples/s above); replaying the same layers' real events through the delivery kernels alone "
              f"runs at {delivery:.3g} SynOps/s (the table above, weighted by each layer's SynOps). So delivery is about "
              f"{e2e / delivery:.0%} of the time."]
    if "phases" in report:
        lines += ["", "The engine's own profile (`simulate(..., profile=True)`: the CPU's cycle counter read around each "
                  "phase of each stage, one thread) splits the time of a run into delivery (synaptic events into "
                  "membranes), fire (the vectorized integrate-and-fire pass over every neuron), compaction (spike bytes "
                  "into event queues), gate (max-pool gates), input (the analog input's constant drive, or Poisson "
                  "draws), count (per-neuron tallies, when kept) and readout:", "",
                  "| run | samples/s (1 thread) | " + " | ".join(PHASES) + " |", "|---|---|" + "---|" * len(PHASES)]
        for label, row in report["phases"].items():
            lines.append(f"| {label} | {row['samples_per_second']:.1f} | " +
                         " | ".join(f"{row['share'][p]:.1%}" for p in PHASES) + " |")
        lines += ["", "By stage (shares of the whole run above 0.5%):", ""]
        for label, row in report["phases"].items():
            parts = [f"{name} " + ", ".join(f"{p} {v:.1%}" for p, v in phases.items())
                     for name, phases in row["by_stage"].items() if phases]
            lines.append(f"- {label}: " + "; ".join(parts))
    cifar300 = [r for r in report["engines_vs_steps"] if r["network"] == "cifar10" and r["steps"] == 300][0]
    conv_rates = [r["synops_per_second"] for r in report["synops_per_core"]["cifar10"] if r["layer"].startswith("conv")]
    threads = sc["threads"][-1]["samples_per_second"] / sc["threads"][0]["samples_per_second"]
    ratio = cifar300["event_samples_per_second"] / cifar300["torch_samples_per_second"] if "torch_samples_per_second" in cifar300 else float("nan")
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---|---|",
              f"| CIFAR-10, T = 300: event >= 10x dense PyTorch | {ratio:.1f}x | {'met' if ratio >= 10 else 'missed'} |",
              f"| >= 6e9 SynOps/s per core on conv layers | {min(conv_rates):.2g} to {max(conv_rates):.2g} | "
              f"{'met' if min(conv_rates) >= 6e9 else 'missed' if max(conv_rates) < 6e9 else 'partly met'} |",
              f"| 2 threads >= 1.8x one | {threads:.2f}x | {'met' if threads >= 1.8 else 'missed'} |",
              f"| end-to-end SynOps/s per core >= 80% of the delivery-only rate | {e2e / delivery:.0%} | "
              f"{'met' if e2e >= 0.8 * delivery else 'missed'} |"]
    if "start_up" in report:
        cold, warm = report["start_up"]["cold_seconds"], report["start_up"]["warm_seconds"]
        lines.append(f"| a fresh process classifies its first image in < 2 s | {seconds_range(warm)} s with the kernel "
                     f"cache (after `eventsnn warmup` at install), {seconds_range(cold, 1)} s on a machine's very first "
                     f"run without it | {'met' if np.max(warm) < 2 else 'missed'} "
                     f"(first run without warmup: {'met' if np.max(cold) < 2 else 'missed'}) |")
    ort = out / "vs_onnxruntime.json"
    if ort.exists():
        chosen = json.loads(levels.read_text())["nets"] if levels.exists() else None
        lines += onnxruntime_targets(json.loads(ort.read_text())["nets"], chosen)
    lines += peer_and_dense_targets(report, out)
    lines.append("")
    if "torch_samples_per_second" in cifar300 and "cifar10_macs_per_step" in report:
        macs = report["cifar10_macs_per_step"] * 300
        synops = cifar300["synops_per_sample"]
        lines += ["## Why the CIFAR-10 ratio to PyTorch is what it is", "",
                  f"At T = 300 the dense simulation pays {macs:.3g} MACs per sample and runs them at "
                  f"{macs * cifar300['torch_samples_per_second']:.3g} MAC/s (BLAS/oneDNN on both cores). The event engine "
                  f"pays {synops:.3g} SynOps per sample, only {macs / synops:.1f}x fewer, because this net fires "
                  f"{report['scaling']['percentile'][1]['rate']:.3f} spikes per neuron per step at the 99.9th percentile "
                  "(each conv spike reaches 288 to 576 targets). The engine's end-to-end rate is "
                  f"{synops * cifar300['event_samples_per_second']:.3g} SynOps/s on two cores: conv delivery alone runs at "
                  "the per-core rates above, the rest goes to the per-step integrate-and-fire pass over every neuron "
                  "(biases change every membrane every step), the max-pool gates and queue compaction. So the ratio is "
                  "bounded by (MACs / SynOps) x (SynOp rate / MAC rate); it grows as firing rates fall (see the "
                  "percentile table: max-norm fires half as often and runs 1.5x faster) and with sparser inputs, and "
                  "it cannot reach 10x for this net at these rates without doing fewer SynOps (lower rates, e.g. "
                  "threshold-ReLU nets run at short T) or many more SynOps per second than a scatter-add allows.", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite performance.md from the stored JSON files, measuring nothing")
    parser.add_argument("--start-up", action="store_true",
                        help="measure only the start-up times, then rewrite performance.md from the stored JSON")
    add_out_option(parser)
    args = parser.parse_args()
    out = args.out
    if args.render_only or args.start_up:
        if not (out / "performance.json").is_file():
            raise SystemExit(f"no {out / 'performance.json'} to update: run the whole benchmark first, or give "
                             "--out docs/results for the committed one")
        report = json.loads((out / "performance.json").read_text())
        if args.start_up:
            report["start_up"] = measure_start_up(*mnist_setup())
            (out / "performance.json").write_text(json.dumps(report, indent=1))
        page_path(out, "performance.md").write_text(render_markdown(report, out))
        return
    try:
        import torch

        torch.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        have_torch = True
    except ImportError:
        have_torch = False
        print("torch not installed: the dense PyTorch baseline is skipped")
    scale = 0.25 if args.quick else 1.0
    report = {"date": str(date.today()), "command": "python benchmarks/bench_performance.py" + (" --quick" if args.quick else ""),
              "threads": numba.config.NUMBA_NUM_THREADS, "memory_bandwidth_bytes_per_second": memory_bandwidth()}
    print(f"memory bandwidth (copy, 1 thread): {report['memory_bandwidth_bytes_per_second'] / 1e9:.1f} GB/s")

    mnist_net, mnist_calib, mnist_x, mnist_y = mnist_setup()
    cifar_net, cifar_calib, cifar_x, cifar_y, origin = cifar_setup()
    nets = {}
    for name, net, calib, x, y in (("mnist", mnist_net, mnist_calib, mnist_x, mnist_y),
                                   ("cifar10", cifar_net, cifar_calib, cifar_x, cifar_y)):
        model = convert(net, calib, 99.9)
        snn = model.build(output="membrane", spikes="binary")  # the torch baseline simulates binary spikes
        simulate(snn, x[:2], 3)  # compile
        nets[name] = (model, snn, x, y)
        report[f"{name}_paths"] = {s.name: s.path for s in snn.stages}
        report[f"{name}_macs_per_step"] = sum(s.macs for s in snn.stages)
        report[f"{name}_connectivity_bytes"] = {s.name: s.connectivity_bytes for s in snn.stages}
    report["cifar10_weights"] = origin

    rows = []
    for name, (model, snn, x, y) in nets.items():
        n = int((400 if name == "mnist" else 200) * scale)
        rows += engines_vs_steps(name, snn, x, y, (32, 100, 300), n, max(8, n // 8), max(4, n // 25), have_torch)
    report["engines_vs_steps"] = rows

    print("\nSynOps per second per core, replaying real events (T=100, 1 thread):")
    report["synops_per_core"] = {}
    for name, (model, snn, x, y) in nets.items():
        report["synops_per_core"][name] = synops_per_core(snn, x[:int(40 * scale) or 4], 100)
        for row in report["synops_per_core"][name]:
            print(f"  {name:<8}{row['layer']:<10}{row['path']:<8}{row['synops_per_second']:10.3g}")

    model, snn, x, y = nets["cifar10"]
    xs = x[:int(100 * scale)]
    print("\nCIFAR-10 net, T=100: time vs firing rate (percentile), batch size, threads")
    scaling = {"percentile": [], "batch": [], "threads": []}
    for p in (99.0, 99.9, 99.99, 100.0):
        variant = convert(cifar_net, cifar_calib, p).build(output="membrane", spikes="binary")
        seconds, res = best_of(lambda: simulate(variant, xs, 100))
        rate = res.spikes.sum() / (len(xs) * 100 * variant.n_neurons)
        scaling["percentile"].append({"percentile": p, "rate": float(rate), "samples_per_second": len(xs) / seconds})
        print(f"  percentile {p:<7} rate {rate:.4f} spikes/neuron/step  {len(xs) / seconds:7.1f} samples/s")
    for batch in (1, 8, 64, 256):
        seconds, _ = best_of(lambda: simulate(snn, xs, 100, batch_size=batch))
        scaling["batch"].append({"batch": batch, "samples_per_second": len(xs) / seconds})
        print(f"  batch {batch:<4} {len(xs) / seconds:7.1f} samples/s")
    for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
        seconds, _ = best_of(lambda: simulate(snn, xs, 100, threads=threads))
        scaling["threads"].append({"threads": threads, "samples_per_second": len(xs) / seconds})
        print(f"  threads {threads}  {len(xs) / seconds:7.1f} samples/s")
    report["scaling"] = scaling
    print("\nwhere the time goes (engine profile, 1 thread):")
    report["phases"] = {}
    for label, (name, binary, steps) in {"cifar10 binary, T=100": ("cifar10", True, 100),
                                         "cifar10 defaults, T=8": ("cifar10", False, 8),
                                         "mnist defaults, T=8": ("mnist", False, 8)}.items():
        model, snn, x, _ = nets[name]
        report["phases"][label] = row = phase_breakdown(snn if binary else model.build(), x[:int(100 * scale)], steps)
        print(f"  {label:<24}" + "  ".join(f"{p} {row['share'][p]:.1%}" for p in PHASES))
    print("\ndefault settings (graded spikes):")
    report["defaults"] = defaults_table(nets, scale)
    report["start_up"] = measure_start_up(mnist_net, mnist_calib, mnist_x, mnist_y)
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"\npeak RSS {report['peak_rss_bytes'] / 2**20:.0f} MiB; connectivity: " + ", ".join(
        f"{name} {sum(report[f'{name}_connectivity_bytes'].values()) / 2**20:.1f} MiB" for name in nets))

    out.mkdir(parents=True, exist_ok=True)
    (out / "performance.json").write_text(json.dumps(report, indent=1))
    page_path(out, "performance.md").write_text(render_markdown(report, out))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, name in zip(axes, nets):
            data = [r for r in rows if r["network"] == name]
            steps = [r["steps"] for r in data]
            for key, label in (("event", "event engine"), ("torch", "dense PyTorch"), ("reference", "dense NumPy reference")):
                if f"{key}_samples_per_second" in data[0]:
                    ax.plot(steps, [1000 / r[f"{key}_samples_per_second"] for r in data], "o-", label=label)
            ax.set(xscale="log", yscale="log", xlabel="time steps T", ylabel="ms per sample", title=name)
            ax.legend()
        fig.tight_layout()
        fig.savefig(out / "performance_time_vs_T.png", dpi=100)
    except ImportError:
        print("matplotlib not installed: no plot")
    print(f"wrote {out / 'performance.json'} and {page_path(out, 'performance.md')}")


if __name__ == "__main__":
    main()
