"""Reduced precision: would fixed-point membranes and weights make delivery faster, and what would
they cost in accuracy? Measured in one run.

    python benchmarks/bench_precision.py [--quick]

Speed: the real input events of the CIFAR-10 net's conv and dense layers (recorded from a T = 100
run, binary spikes) replayed through the engine's delivery loop with membranes and weights as
float32 (what the engine does), int32 + int32, int16 + int16 wrapping, and int16 + int16
saturating (what neuromorphic chips compute), one core, same events; SynOps/s per arithmetic.

Accuracy: every layer's normalized weights and biases rounded to b-bit fixed point with a
power-of-two step per layer (the threshold is then an integer number of steps), for b = 16, 8, 6,
4, simulated with the default settings. With power-of-two steps float32 sums of these values are
exact, so past the first layer (whose analog input stays as it is) this is what an integer engine
of the same width computes, as long as no membrane leaves its integer range.

Prints both tables and writes precision.json and precision.md to --out (default out/results;
`--out docs/results` updates docs/precision.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_performance import cifar_setup, mnist_setup  # noqa: E402
from eventsnn import convert, simulate  # noqa: E402
from eventsnn.convert import with_params  # noqa: E402
from eventsnn.engine import build  # noqa: E402
from eventsnn.engine.delivery import _deliver_dense, _deliver_direct  # noqa: E402
from eventsnn.engine.packing import _neuron_order, pack  # noqa: E402
from eventsnn.engine.packing import DENSE_PATH, DIRECT_PATH  # noqa: E402
from eventsnn.ir import Conv2d, Linear, Network  # noqa: E402
from outputs import add_out_option, page_path  # noqa: E402
ARITHMETIC = {"float32": (np.float32, np.float32), "int32": (np.int32, np.int32), "int16 wrapping": (np.int16, np.int16),
              "int16 saturating": (np.int16, np.int16)}


@intrinsic
def _add_saturating(typingctx, a, b):
    """a + b clamped to the int16 range (llvm.sadd.sat; vectorizes to one saturating add)."""
    if a != types.int16 or b != types.int16:
        return None

    def codegen(context, builder, signature, args):
        i16 = ir.IntType(16)
        add = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i16, [i16, i16]), "llvm.sadd.sat.i16")
        return builder.call(add, list(args))
    return types.int16(types.int16, types.int16), codegen


@njit(cache=True)
def _deliver_direct_saturating(queue, q0, count, channels, channel_stride, table_ptr, p0, table, t0, weights, w0, v, v0):
    """The engine's kernel-direct delivery (``engine.delivery._deliver_direct``) with saturating adds."""
    ops = 0
    for e in range(count):
        j = queue[q0 + e]
        c, pixel = j % channels, j // channels
        for r in range(table_ptr[p0 + pixel], table_ptr[p0 + pixel + 1]):
            target = v[v0 + table[t0 + 3 * r]:]
            row = weights[w0 + table[t0 + 3 * r + 1] + c * channel_stride:]
            for o in range(table[t0 + 3 * r + 2]):
                target[o] = _add_saturating(target[o], row[o])
            ops += table[t0 + 3 * r + 2]
    return ops


@njit(cache=True)
def _deliver_dense_saturating(queue, q0, count, n_out, weights, w0, v, v0):
    for e in range(count):
        row = weights[w0 + queue[q0 + e] * n_out:]
        target = v[v0:v0 + n_out]
        for o in range(n_out):
            target[o] = _add_saturating(target[o], row[o])
    return count * n_out


@njit(cache=True)
def _replay(queues, queue_ptr, path, geometry, syn_ptr, p0, syn_idx, i0, weights, w0, v):
    """All recorded steps' events through one projection with the engine's kernels; returns the SynOps."""
    no_amounts = np.empty(0, np.float32)
    ops = 0
    for t in range(queue_ptr.size - 1):
        q0, count = queue_ptr[t], queue_ptr[t + 1] - queue_ptr[t]
        if path == DIRECT_PATH:
            ops += _deliver_direct(queues, q0, count, no_amounts, geometry[0], geometry[2], syn_ptr, p0, syn_idx, i0,
                                   weights, w0, v, 0)
        else:
            ops += _deliver_dense(queues, q0, count, no_amounts, geometry[1], weights, w0, v, 0)
    return ops


@njit(cache=True)
def _replay_saturating(queues, queue_ptr, path, geometry, syn_ptr, p0, syn_idx, i0, weights, w0, v):
    """The same with saturating int16 adds."""
    ops = 0
    for t in range(queue_ptr.size - 1):
        q0, count = queue_ptr[t], queue_ptr[t + 1] - queue_ptr[t]
        if path == DIRECT_PATH:
            ops += _deliver_direct_saturating(queues, q0, count, geometry[0], geometry[2], syn_ptr, p0, syn_idx, i0,
                                              weights, w0, v, 0)
        else:
            ops += _deliver_dense_saturating(queues, q0, count, geometry[1], weights, w0, v, 0)
    return ops


def delivery_speed(snn, x: np.ndarray, steps: int, repeats: int = 3) -> list[dict]:
    """SynOps/s per layer and arithmetic, replaying each layer's real input events on one core."""
    result = simulate(snn, x, steps, record=True, threads=1)
    raster = result.raster[:, :, _neuron_order(snn)]
    net = pack(snn)
    rows = []
    for s, stage in enumerate(snn.stages):
        p = net.proj_ptr[s]
        if len(stage.projections) != 1 or net.proj_src[p] < 0 or net.paths[p] not in (DIRECT_PATH, DENSE_PATH):
            continue
        src = net.proj_src[p]
        events = [np.flatnonzero(r).astype(np.int32) for r in raster[:, :, net.off[src]:net.off[src + 1]].reshape(
            -1, net.off[src + 1] - net.off[src])]
        queues = np.concatenate(events)
        queue_ptr = np.concatenate([[0], np.cumsum([len(e) for e in events])]).astype(np.int64)
        row = {"layer": stage.name, "path": stage.path}
        for name, (v_type, w_type) in ARITHMETIC.items():
            weights = _fixed_point_like(net.syn_w, w_type)
            v = np.zeros(stage.size, v_type)
            replay = _replay_saturating if name.endswith("saturating") else _replay
            args = (queues, queue_ptr, net.paths[p], net.geometry[p], net.syn_ptr, net.syn_p0[p], net.syn_idx,
                    net.syn_i0[p], weights, net.syn_w0[p], v)
            ops = replay(*args)  # compile, warm the caches
            best = min(_timed(lambda: replay(*args)) for _ in range(repeats))
            row[name] = ops / best
        rows.append(row)
        print(f"  {stage.name:<8}{stage.path:<8}" + "  ".join(f"{k} {row[k]:.3g}" for k in ARITHMETIC), flush=True)
    return rows


def _timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def _fixed_point_like(weights: np.ndarray, dtype) -> np.ndarray:
    """The weights as dtype (integers: small values, as 8-bit weights would be, so nothing saturates)."""
    if dtype == np.float32:
        return weights
    return np.clip(np.round(weights * 64), -127, 127).astype(dtype)


def quantized(net: Network, bits: int) -> Network:
    """Each affine layer's weights rounded to ``bits``-bit fixed point with a power-of-two step (the
    smallest step whose range holds the layer's largest weight), its bias to the same step."""
    layers = []
    for layer in net.layers:
        if isinstance(layer, (Conv2d, Linear)):
            largest = float(np.abs(layer.weight).max()) or 1.0
            step = 2.0 ** np.ceil(np.log2(largest / (2 ** (bits - 1) - 1)))  # so that top >= largest
            top = (2 ** (bits - 1) - 1) * step

            weight = (np.clip(np.round(layer.weight / step), -top / step, top / step) * step).astype(np.float32)
            bias = None if layer.bias is None else (np.round(layer.bias / step) * step).astype(np.float32)
            layer = with_params(layer, weight, bias)  # the bias on the same grid, in a wider register
        layers.append(layer)
    return Network(net.input_shape, tuple(layers), net.inputs)


def accuracy_by_bits(model, x, y, steps_list: tuple[int, ...]) -> list[dict]:
    rows = []
    for bits in (None, 16, 8, 6, 4):
        net = model.normalized() if bits is None else quantized(model.normalized(), bits)
        result = simulate(build(net, model.config), x, max(steps_list))
        per_step = result.accuracy_per_step(y)
        rows.append({"bits": bits or "float32", **{f"T={t}": float(per_step[t - 1]) for t in steps_list}})
        print(f"  {str(bits or 'float32'):<8}" + "  ".join(f"T={t} {per_step[t - 1]:.2%}" for t in steps_list), flush=True)
    return rows


def render(report: dict) -> str:
    names = list(ARITHMETIC)
    lines = [f"Delivery of the same recorded events, one core (`{report['command']}`, {report['date']}), SynOps/s:", "",
             "| net | layer | path | " + " | ".join(names) + " | best int16 / float32 |", "|---|---|---|" + "---|" * (len(names) + 1)]
    for net, rows in report["speed"].items():
        for r in rows:
            lines.append(f"| {net} | {r['layer']} | {r['path']} | " + " | ".join(f"{r[k]:.3g}" for k in names) +
                         f" | {max(r['int16 wrapping'], r['int16 saturating']) / r['float32']:.2f}x |")
    for net, rows in report["accuracy"].items():
        steps = [k for k in rows[0] if k.startswith("T=")]
        lines += ["", f"{net}, default settings, accuracy by weight precision ({report['samples']} test images):", "",
                  "| weights | " + " | ".join(steps) + " |", "|---|" + "---|" * len(steps)]
        lines += [f"| {r['bits']}{'' if r['bits'] == 'float32' else ' bits'} | " + " | ".join(f"{r[s]:.2%}" for s in steps) + " |"
                  for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--render-only", action="store_true", help="rewrite precision.md from the stored JSON")
    add_out_option(parser)
    args = parser.parse_args()
    if args.render_only:
        page_path(args.out, "precision.md").write_text(page(json.loads((args.out / "precision.json").read_text())))
        return
    samples = 100 if args.quick else 1000
    report = {"date": str(date.today()), "command": "python benchmarks/bench_precision.py" + (" --quick" if args.quick else ""),
              "samples": samples, "speed": {}, "accuracy": {}}
    cifar_net, cifar_calib, cifar_x, cifar_y, _ = cifar_setup()
    mnist_net, mnist_calib, mnist_x, mnist_y = mnist_setup()
    nets = {"cifar10": (cifar_net, cifar_calib, cifar_x, cifar_y), "mnist": (mnist_net, mnist_calib, mnist_x, mnist_y)}
    for name, (net, calib, x, y) in nets.items():
        model = convert(net, calib, 99.9)
        print(f"{name}: delivery SynOps/s per core by arithmetic (T=100, binary spikes)")
        report["speed"][name] = delivery_speed(model.build(spikes="binary", output="membrane"), x[:10 if args.quick else 20], 100)
        print(f"{name}: accuracy by weight precision, default settings")
        report["accuracy"][name] = accuracy_by_bits(model, x[:samples], y[:samples], (1, 2, 4, 8, 16))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "precision.json").write_text(json.dumps(report, indent=1))
    page_path(args.out, "precision.md").write_text(page(report))
    print(render(report))


def page(report: dict) -> str:
    """docs/precision.md: the tables, and what they say about adopting fixed point."""
    conv = [max(r["int16 wrapping"], r["int16 saturating"]) / r["float32"]
            for rows in report["speed"].values() for r in rows if r["path"] == "direct"]
    return "\n".join([
        "# Reduced precision", "",
        "Would fixed-point arithmetic (int16 membranes and weights, as neuromorphic chips compute) make the engine "
        "faster, and what would it cost? Measured by `benchmarks/bench_precision.py` (see its docstring for the "
        "method).", "", render(report),
        f"Conv layers, which carry most SynOps in these nets, deliver {min(conv):.2f}x to {max(conv):.2f}x faster in "
        "int16 than in float32, most likely because the kernel rows of a spike are short (one output pixel's channels, 16 to 64 values), "
        "so loop overhead and the scattered row starts weigh as much as the adds (not profiled further); wide dense rows gain most. "
        "Weights rounded to 8 bits keep the accuracy within a few tenths of a point, 4 bits do not.", "",
        "## What the engine offers", "",
        "`--arithmetic int32` (`eventsnn/fixed_point.py`): int32 membranes and weights on a grid of 2^-20 of a "
        "threshold (2^-16 in the output layer). It is chosen for exactness, not speed: sums are exact, so results "
        "do not depend on the order of summation (delivery path, threads, simulator), and the engine equals the "
        "dense reference on any weights. It runs at 0.87-1.01x float32's speed on the shipped nets "
        "([performance.md](performance.md#against-the-ann-itself-in-onnxruntime)) with float32's accuracy "
        "([results.md](results.md#deep-nets-at-short-t)); its limits are in [usage.md](usage.md#the-settings). "
        "int16 weights, which the table above prices at 1.13-1.52x on conv layers, would need a per-layer scale "
        "that these grids do not have yet.", ""])


if __name__ == "__main__":
    main()
