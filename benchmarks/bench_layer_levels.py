"""Fewer SynOps at the same accuracy: ``choose_levels`` (``eventsnn convert --choose-levels``) against the
defaults, with onnxruntime's speed on the same ANN as the yardstick, in one process.

    python benchmarks/bench_layer_levels.py --models ../shared/models [--limit 1000] [--steps 3]

For each net (the demo MNIST CNN; from ``--models`` the GPU-trained CIFAR-10 nets): the defaults at
the first T within 0.5 points of the ANN on the test images (as bench_vs_onnxruntime.py), and the
run length and levels ``choose_levels`` picks for T <= ``--steps`` on 1,000 calibration images
(training split, no labels, its default budget of 0.2 points), and the same with its per-layer
stage (``--per-layer-levels``). Each: test accuracy, disagreement with the ANN on the test images,
SynOps per image, images/s step by step and stage by stage (``--schedule layer``), warm, best of 3. Writes layer_levels.json (``--out``, default
out/results; docs/results updates the docs). Needs the ``ort`` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_vs_onnxruntime import (add_net_options, converted_nets, eventsnn_speed,  # noqa: E402
                                              onnxruntime_speed)
from eventsnn import ann, simulate  # noqa: E402
from eventsnn.layer_levels import choose_levels  # noqa: E402


def speeds(model, x, y, accuracy: float, threads: int, steps: int | None = None) -> dict:
    """Step by step (at ``steps``, or the first T within 0.5 points) and stage by stage at the same T;
    and the share of the images on which the SNN decides otherwise than its ANN."""
    step = eventsnn_speed(model, x, y, accuracy, 8, threads, steps=steps)
    layer = eventsnn_speed(model, x, y, accuracy, 8, threads, steps=step["steps"], schedule="layer")
    decisions = simulate(model.build(), x, step["steps"], threads=threads).predictions()
    return {**step, "layer_images_per_second": layer.get("images_per_second"),
            "disagreement_with_ann": float(np.mean(decisions != ann.forward(model.ann, x).argmax(axis=1)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_net_options(parser)
    parser.add_argument("--choose-images", type=int, default=1000, help="calibration images for choose_levels")
    parser.add_argument("--steps", type=int, default=3, help="the longest run choose_levels considers")
    args = parser.parse_args()
    rows = {}
    for name, model, x_calib, x, y, accuracy in converted_nets(args):
        x_choose = x_calib[::max(1, len(x_calib) // args.choose_images)][:args.choose_images]
        began = time.perf_counter()
        chosen = choose_levels(model, x_choose, args.steps)
        choose_seconds = time.perf_counter() - began
        per_layer = choose_levels(model, x_choose, args.steps, per_layer=True)  # stage 1 again, then stage 2
        per_layer_seconds = time.perf_counter() - began - choose_seconds
        info = per_layer.levels_choice
        if chosen.levels_choice["grid"] != info["grid"]:
            raise AssertionError("the two choices ran different stage-1 grids")
        row = {"images": len(x), "ann_accuracy": accuracy, "onnxruntime": onnxruntime_speed(model.ann, x, args.threads),
               "default": speeds(model, x, y, accuracy, args.threads),
               "chosen": speeds(chosen, x, y, accuracy, args.threads, info["steps"]),
               "chosen_per_layer": speeds(per_layer, x, y, accuracy, args.threads, info["steps"]),
               "choose_seconds": choose_seconds, "choose_per_layer_seconds": per_layer_seconds,
               "choice": {k: info[k] for k in ("steps", "levels", "max_spikes", "population_levels", "runs",
                                               "limit", "disagreement", "synops_per_image", "images")}}
        rows[name] = row
        o = row["onnxruntime"]["batch64"]
        print(f"{name}: ANN {accuracy:.4f}, onnxruntime {o:,.0f} img/s; chosen T={info['steps']} L={info['levels']} "
              f"in {row['choose_seconds']:.0f} s", flush=True)
        for key in ("default", "chosen", "chosen_per_layer"):
            r = row[key]
            print(f"  {key}: T={r['steps']} {r['accuracy']:.4f} (differs from the ANN on {r['disagreement_with_ann']:.1%}) "
                  f"{r['synops_per_image']:.3g} SynOps {r['images_per_second']:,.0f} img/s "
                  f"(layer {r['layer_images_per_second'] or 0:,.0f})", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": f"python benchmarks/bench_layer_levels.py --models DIR --limit {args.limit} --steps {args.steps}",
              "date": str(date.today()), "threads": args.threads, "nets": rows}
    (out / "layer_levels.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out / 'layer_levels.json'}")


if __name__ == "__main__":
    main()
