"""``eventsnn export``, ``demo`` and ``warmup``."""

from __future__ import annotations

import argparse
import time
from importlib import resources

import numpy as np

from .. import ann
from ..model import load
from ..pipeline import DEFAULTS, ConversionOptions, convert_network, run_report, simulate_dataset
from ..report import format_table
from ..atomic import check_writable
from .options import POSITIVE, add_settings, settings
from .run import summary

DEMO_IMAGES = 1000  # test images shipped with the package


def add_parsers(sub) -> None:
    p = sub.add_parser("export", help="write a spiking model as a NIR graph (nir extra), or its ANN as ONNX (onnx extra)",
                       description="Write the spiking network as a NIR graph (.nir), or, to an .onnx file, the ANN "
                                   "it was converted from (batch-norm folded), e.g. to run it with onnxruntime on "
                                   "the same inputs.")
    p.add_argument("model", help="spiking model file from `eventsnn convert`")
    p.add_argument("-o", "--output-file", required=True, help="the NIR file (.nir, HDF5), or an .onnx file for the ANN")
    add_settings(p)
    p.set_defaults(func=export)

    p = sub.add_parser("demo", help="convert and run the small MNIST CNN shipped with eventsnn")
    p.add_argument("--samples", type=POSITIVE, default=DEFAULTS.demo_samples,
                   help=f"test images (at most {DEMO_IMAGES})")
    p.add_argument("--steps", type=POSITIVE, default=DEFAULTS.demo_steps, help="simulation steps T")
    p.add_argument("--percentile", type=float, default=DEFAULTS.percentile,
                   help="normalization percentile (100 = max-norm)")
    add_settings(p)
    p.set_defaults(func=demo)

    p = sub.add_parser("warmup", help="compile the engine's kernels into the on-disk cache (e.g. when building "
                                      "an image), so that the first run answers at once")
    p.set_defaults(func=warmup)


def export(args: argparse.Namespace) -> int:
    from ..loaders import save_nir, save_onnx

    check_writable(args.output_file, (args.model,))
    model = load(args.model)
    if str(args.output_file).lower().endswith(".onnx"):
        save_onnx(model.ann, args.output_file)
        print(f"exported the ANN of {args.model} -> {args.output_file} (ONNX: {len(model.ann.layers)} layers)")
        return 0
    overrides = settings(args)
    if overrides["arithmetic"] == "int32":
        raise ValueError("--arithmetic int32: NIR holds the network's float weights; export without it")
    snn = model.build(**{**overrides, "arithmetic": "float32"})  # a model simulated in int32 exports its float net
    save_nir(snn, args.output_file)
    print(f"exported {args.model} -> {args.output_file} (NIR: {len(snn.stages)} populations, "
          f"reset {snn.config.reset}, input {snn.config.input})")
    return 0


def demo(args: argparse.Namespace) -> int:
    from ..engine import compile_kernels
    from ..loaders import load_network

    if args.samples > DEMO_IMAGES:
        raise ValueError(f"--samples: the demo ships {DEMO_IMAGES} test images, not {args.samples}")
    data = resources.files("eventsnn") / "data"
    with resources.as_file(data / "mnist_cnn.pt") as pt, resources.as_file(data / "mnist_cnn.json") as arch:
        net = load_network(pt, arch)
    with resources.as_file(data / "mnist_sample.npz") as sample, np.load(sample, allow_pickle=False) as f:
        x, y = f["x"][:args.samples].astype(np.float32) / 255, f["y"][:args.samples]
        x_calib = f["x_calib"].astype(np.float32) / 255
    print(f"demo: small MNIST CNN shipped with eventsnn, {len(x)} test images, T={args.steps}")
    began = time.perf_counter()
    model = convert_network(net, x_calib, ConversionOptions(args.percentile, settings=settings(args)))
    print(f"converted (batch-norm folded, {args.percentile}th-percentile normalization on {len(x_calib)} "
          f"training images) in {time.perf_counter() - began:.1f} s")
    snn = model.build()
    ann_accuracy = ann.accuracy(model.ann, x, y)
    print("preparing the engine's kernels (compiled on an install's first run, loaded from the cache after)...", flush=True)
    seconds = compile_kernels((snn.config.arithmetic,), (snn.config.correction,), ("step",))
    print(f"ready in {seconds:.1f} s; simulating")
    result = simulate_dataset(snn, x, args.steps, batch=100)  # so samples/s below is the warm speed
    report = run_report(snn, result, y, ann_accuracy)
    print(summary(report))
    print(format_table(report))
    return 0


def warmup(args: argparse.Namespace) -> int:
    import numba

    from ..engine import compile_kernels

    print("compiling the engine's kernels into the cache...", flush=True)
    seconds = compile_kernels()
    where = numba.config.CACHE_DIR or "next to the installed package (or the user cache if that is read-only)"
    print(f"done in {seconds:.1f} s; cache: {where}. Later processes start without compiling.")
    return 0
