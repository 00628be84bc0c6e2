"""``eventsnn convert``: a trained CNN into a spiking model file."""

from __future__ import annotations

import argparse

import numpy as np

from ..atomic import check_writable
from ..calibrate import METHODS
from ..convert import CLIP_SCALES, SCALE_PER
from ..model import save
from ..pipeline import DEFAULTS, ConversionOptions, convert_network, load_data, load_network
from .options import POSITIVE, add_settings, settings


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="convert a trained CNN into a spiking model file")
    p.add_argument("checkpoint", help="state_dict checkpoint (.pt/.pth, read without torch), .npz of named arrays, "
                                      "or an .onnx file (needs the onnx extra)")
    p.add_argument("--arch", help="architecture spec (JSON); not for .onnx files")
    p.add_argument("--calib", help="calibration data: .npz, MNIST IDX, CIFAR batches or image folders (training split)")
    p.add_argument("--calib-limit", type=POSITIVE, default=DEFAULTS.calib_images,
                   help="compute the scales on a seeded sample of N calibration images, balanced over the classes")
    p.add_argument("--percentile", type=float, default=DEFAULTS.percentile,
                   help="normalization percentile (100 = max-norm)")
    p.add_argument("--no-normalization", action="store_true", help="keep the weights unscaled (ablation)")
    p.add_argument("--scale-per", choices=SCALE_PER, default="layer",
                   help="one normalization scale per layer, or per channel of each hidden layer and residual add")
    p.add_argument("--clip-scale", choices=CLIP_SCALES, default="data",
                   help="scale of a clipped ReLU (ReLU6, Hardtanh): the percentile of its output, at most the "
                        "threshold, or the threshold itself (Deng & Gu)")
    p.add_argument("--calibrate", choices=("none",) + METHODS, default="none",
                   help="bias: shift each channel's bias so the SNN's mean output over --steps steps matches the "
                        "ANN's on calibration images (Li et al. 2021); potential: the same correction as an "
                        "offset of each channel's initial membrane potential")
    p.add_argument("--steps", type=POSITIVE, help="the run length T to calibrate for (stored in the model file); with --choose-levels "
                        "the longest run to consider")
    p.add_argument("--calibrate-images", type=POSITIVE, default=DEFAULTS.calibrate_images,
                   help="calibration images used for --calibrate")
    p.add_argument("--exit", choices=("none", "auto"), default="none",
                   help="auto: choose a per-sample early-exit rule on calibration images for runs of --steps steps "
                        "(stored in the model file; `run` applies it)")
    p.add_argument("--exit-loss", type=float, default=DEFAULTS.exit_loss_points,
                   help="--exit auto: accuracy, in points, the rule may cost (measured as changed decisions)")
    p.add_argument("--exit-images", type=POSITIVE, default=DEFAULTS.exit_images,
                   help="calibration images used for --exit auto")
    p.add_argument("--choose-levels", action="store_true",
                   help="choose the run length (up to --steps) and the levels with the fewest SynOps on calibration "
                        "images (graded spikes; stored in the model file; `run` uses its T)")
    p.add_argument("--per-layer-levels", action="store_true",
                   help="--choose-levels: then coarsen each layer's levels as far as the calibration decisions allow "
                        "(risky: training images cannot see the test decisions it flips; see docs/usage.md)")
    p.add_argument("--levels-loss", type=float, default=DEFAULTS.levels_loss_points,
                   help="--choose-levels: accuracy, in points, the choice may cost (measured as decisions that differ "
                        "from the ANN's, beyond the fewest any candidate reaches)")
    p.add_argument("--levels-images", type=POSITIVE, default=DEFAULTS.levels_images,
                   help="calibration images used for --choose-levels")
    p.add_argument("-o", "--output-file", required=True, help="the spiking model (.npz)")
    add_settings(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.calib is None and not args.no_normalization:
        raise ValueError("--calib DATA is required (or --no-normalization)")
    options = ConversionOptions(None if args.no_normalization else args.percentile, args.scale_per, args.clip_scale,
                                settings(args), args.calibrate, args.steps, args.calibrate_images, args.exit,
                                args.exit_loss, args.exit_images, args.choose_levels, args.per_layer_levels,
                                args.levels_loss, args.levels_images)
    options.check()
    check_writable(args.output_file, (args.checkpoint, args.arch, args.calib))
    net = load_network(args.checkpoint, args.arch)
    x_calib = None if args.no_normalization else load_data(args.calib, args.calib_limit, split="train")[0]
    model = convert_network(net, x_calib, options)
    save(model, args.output_file)
    scales = ", ".join(f"{layer.name} {_scale_text(s)}" for layer, s in zip(model.ann.layers, model.scales)
                       if s is not None)
    on = "" if x_calib is None else f" on {len(x_calib)} calibration images"
    print(f"converted {args.checkpoint} -> {args.output_file} (percentile {model.percentile}{on}; scales: {scales})")
    return 0


def _scale_text(scale) -> str:
    if np.ndim(scale) == 0:
        return f"{scale:.4g}"
    return f"{np.min(scale):.3g}..{np.max(scale):.3g} ({np.size(scale)} channels)"
