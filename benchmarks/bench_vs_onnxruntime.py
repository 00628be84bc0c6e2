"""eventsnn against the ANN itself run by onnxruntime on the same CPU threads: the yardstick for CPU
deployment. Measured in one process, on the same test images.

    python benchmarks/bench_vs_onnxruntime.py --models ../shared/models [--limit 1000] [--threads 2]

For each net (the demo MNIST CNN shipped with eventsnn; from ``--models``, the GPU-trained CIFAR-10
nets: the paper's net, ResNet-20, VGG-16, QCFS VGG-16): the converted model's ANN is written as
ONNX (``save_onnx``) and timed in onnxruntime at batch 64 and batch 1; eventsnn runs with the
defaults at the first T within 0.5 points of the ANN on these images (found from one run of
``--max-steps``), timed warm (kernels compiled), and at the same T in int32 arithmetic
(``--arithmetic int32``) and stage by stage (``--schedule layer``, float32 and int32; with the share
of input events that went through matrix products). Needs the ``ort`` extra. Prints a table and writes vs_onnxruntime.json
(``--out``, default out/results; docs/results updates the docs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eventsnn import ann, convert, simulate  # noqa: E402
from eventsnn.engine import lockstep  # noqa: E402
from eventsnn.loaders import load_network, to_onnx  # noqa: E402
from eventsnn.loaders.datasets import balanced_sample  # noqa: E402

CIFAR_NETS = ("paper_net", "resnet20", "vgg16", "vgg16_qcfs4")
WITHIN = 0.005  # accuracy within 0.5 points of the ANN


def mnist_demo():
    data = resources.files("eventsnn") / "data"
    net = load_network(data / "mnist_cnn.pt", data / "mnist_cnn.json")
    with np.load(data / "mnist_sample.npz") as f:
        return net, f["x_calib"].astype(np.float32) / 255, f["x"].astype(np.float32) / 255, f["y"]


def cifar_net(folder: Path, name: str, calib: int):
    from examples.cifar10_data import load_cifar10

    data = load_cifar10()
    net = load_network(folder / f"cifar10_{name}.pt", folder / f"cifar10_{name}.json")
    x_calib = data["x_train"][balanced_sample(data["y_train"], calib)].astype(np.float32) / 255
    return net, x_calib, data["x_test"].astype(np.float32) / 255, data["y_test"]


def add_net_options(parser: argparse.ArgumentParser) -> None:
    """The options ``converted_nets`` reads, and the threads and output folder every such benchmark takes."""
    parser.add_argument("--models", help="folder of the GPU-trained cifar10_NAME.{pt,json} (without: MNIST only)")
    parser.add_argument("--nets", default="mnist_demo," + ",".join(CIFAR_NETS))
    parser.add_argument("--limit", type=int, default=1000, help="test images")
    parser.add_argument("--calib", type=int, default=2000, help="calibration images for the scales (training set)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "out" / "results"))


def converted_nets(args: argparse.Namespace) -> Iterator[tuple]:
    """For each of ``args.nets`` (the CIFAR-10 ones only with ``args.models``): its name, the model
    converted with the defaults, its calibration images, ``args.limit`` test images and labels, and
    its ANN's accuracy on them."""
    for name in args.nets.split(","):
        if name != "mnist_demo" and not args.models:
            continue
        net, x_calib, x, y = mnist_demo() if name == "mnist_demo" else cifar_net(Path(args.models), name, args.calib)
        x, y = x[:args.limit], y[:args.limit]
        model = convert(net, x_calib)
        yield name, model, x_calib, x, y, ann.accuracy(model.ann, x, y)


def images_per_second(run, n: int, repeats: int = 3) -> float:
    """The best of ``repeats`` timings of ``run()``, which processes n images."""
    best = np.inf
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return n / best


def onnxruntime_speed(model_ann, x: np.ndarray, threads: int) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(to_onnx(model_ann).SerializeToString(), options, providers=["CPUExecutionProvider"])

    def batches(size: int, images: np.ndarray):
        return lambda: [session.run(None, {"x": images[i:i + size]}) for i in range(0, len(images), size)]

    single = x[:min(len(x), 200)]
    batches(64, x[:64])()  # warm-up
    outputs = np.concatenate([session.run(None, {"x": x[i:i + 64]})[0] for i in range(0, len(x), 64)])
    # the same decisions (QCFS layers may round differently at a step edge in another order of summation)
    agreement = float(np.mean(outputs.argmax(axis=1) == ann.forward(model_ann, x).argmax(axis=1)))
    if agreement < 0.99:
        raise AssertionError(f"onnxruntime decides as eventsnn's ANN on only {agreement:.1%} of the images")
    return {"batch64": images_per_second(batches(64, x), len(x)), "batch1": images_per_second(batches(1, single), len(single)),
            "agreement_with_eventsnn_ann": agreement}


def eventsnn_speed(model, x: np.ndarray, y: np.ndarray, ann_accuracy: float, max_steps: int, threads: int,
                   steps: int | None = None, schedule: str = "step", **settings) -> dict | None:
    """Speed at ``steps``, or at the first T within WITHIN of the ANN (up to ``max_steps``); with
    schedule 'layer', also the share of input events its projections delivered as matrix products
    (None where that schedule does not cover the net)."""
    snn = model.build(**settings)
    refused = lockstep.refusal(snn, record=False, count_neurons=False, profile=False, early_exit=False)
    if schedule == "layer" and refused:
        return {"refused": refused}
    reached = np.array([0])
    if steps is None:
        accuracy = simulate(snn, x, max_steps, threads=threads).accuracy_per_step(y)
        reached = np.flatnonzero(accuracy >= ann_accuracy - WITHIN)
        steps = int(reached[0]) + 1 if reached.size else max_steps
    simulate(snn, x[:64], steps, threads=threads, schedule=schedule)  # compiled already; warm caches, time deliveries
    timed = []
    rate = images_per_second(lambda: timed.append(simulate(snn, x, steps, threads=threads, schedule=schedule)),
                             len(x))
    result = timed[-1]
    row = {"steps": steps, "reached": bool(reached.size), "accuracy": float(result.accuracy(y)),
           "images_per_second": rate, "synops_per_image": float(result.synops.sum() / len(x))}
    if schedule == "layer":
        delivered = lockstep.plan_for(snn, "auto").delivered
        row["dense_share"] = float(delivered[:, 0].sum() / max(delivered[:, 1].sum(), 1))
        row["dense_stages"] = [stage.name for stage, (dense, events) in zip(snn.stages, delivered)
                               if events and dense > events / 2]
        row["stages"] = len(snn.stages)
    return row


def layer_text(r: dict) -> str:
    if "refused" in r:
        return f"not covered ({r['refused']})"
    return f"{r['accuracy']:.4f} {r['images_per_second']:,.0f} img/s ({r['dense_share']:.0%} of events dense)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_net_options(parser)
    parser.add_argument("--max-steps", type=int, default=8)
    args = parser.parse_args()
    rows = {}
    for name, model, _, x, y, accuracy in converted_nets(args):
        row = {"images": len(x), "ann_accuracy": accuracy, "ann_macs": int(sum(ann.macs(model.ann))),
               "onnxruntime": onnxruntime_speed(model.ann, x, args.threads),
               "eventsnn": eventsnn_speed(model, x, y, accuracy, args.max_steps, args.threads)}
        steps = row["eventsnn"]["steps"]
        row["eventsnn_int32"] = eventsnn_speed(model, x, y, accuracy, args.max_steps, args.threads, steps=steps,
                                               arithmetic="int32")
        for key, settings in (("eventsnn_layer", {}), ("eventsnn_layer_int32", {"arithmetic": "int32"})):
            row[key] = eventsnn_speed(model, x, y, accuracy, args.max_steps, args.threads, steps=steps,
                                      schedule="layer", **settings)
        row["ratio_batch64"] = row["eventsnn"]["images_per_second"] / row["onnxruntime"]["batch64"]
        rows[name] = row
        e, o = row["eventsnn"], row["onnxruntime"]
        print(f"{name}: ANN {accuracy:.4f} ({row['ann_macs']:.3g} MACs); onnxruntime {o['batch64']:,.0f} / "
              f"{o['batch1']:,.0f} img/s (batch 64 / 1); eventsnn T={e['steps']} {e['accuracy']:.4f} "
              f"{e['images_per_second']:,.0f} img/s, {e['synops_per_image']:.3g} SynOps; "
              f"eventsnn / onnxruntime = {row['ratio_batch64']:.3f}; int32 {row['eventsnn_int32']['accuracy']:.4f} "
              f"{row['eventsnn_int32']['images_per_second']:,.0f} img/s; --schedule layer: "
              f"{layer_text(row['eventsnn_layer'])}, int32 {layer_text(row['eventsnn_layer_int32'])}", flush=True)
    print("\n| net | ANN MACs | onnxruntime img/s (batch 64 / 1) | eventsnn T, accuracy vs ANN | SynOps/image "
          "| eventsnn img/s | eventsnn / onnxruntime |\n|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        e, o = r["eventsnn"], r["onnxruntime"]
        print(f"| {name} | {r['ann_macs']:.3g} | {o['batch64']:,.0f} / {o['batch1']:,.0f} | T = {e['steps']}, "
              f"{100 * e['accuracy']:.1f}% vs {100 * r['ann_accuracy']:.1f}% | {e['synops_per_image']:.3g} | "
              f"{e['images_per_second']:,.0f} | 1/{1 / r['ratio_batch64']:.1f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": "python benchmarks/bench_vs_onnxruntime.py --models DIR" + f" --limit {args.limit}",
              "date": str(date.today()), "threads": args.threads, "nets": rows}
    (out / "vs_onnxruntime.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out / 'vs_onnxruntime.json'}")


if __name__ == "__main__":
    main()
