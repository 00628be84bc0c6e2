"""What the stage-by-stage schedule's parts are worth: the same run with each of them switched off,
timed in one process.

    python benchmarks/bench_lockstep_parts.py --models ../shared/models --nets vgg16,resnet20 [--steps 1]

For each net (converted with the defaults), ``simulate(..., schedule="layer")`` at ``--steps``:
- as shipped;
- with 3 x 3 stride-1 convs through unrolled windows instead of Winograd's F(2x2, 3x3);
- with BLAS left to its own threads instead of held to one while the run lasts (``engine.blas``).
Each the best of 3 warm runs; prints images/s and the ratios, writes lockstep_parts.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_vs_onnxruntime import add_net_options, converted_nets, images_per_second  # noqa: E402
from eventsnn import simulate  # noqa: E402
from eventsnn.engine import blas, lockstep, winograd  # noqa: E402

VARIANTS = {
    "as shipped": {},
    "unrolled windows, no Winograd": {"winograd_applies": lambda kh, kw, stride, channels: False},
    "BLAS on its own threads": {"blas_controls": lambda: None},
}


def speed(model, x, steps: int, threads: int, winograd_applies=winograd.applies,
          blas_controls=blas._openblas_controls) -> float:
    """Images per second stage by stage, with the given Winograd rule and BLAS controls."""
    saved = winograd.applies, blas._openblas_controls
    winograd.applies, blas._openblas_controls = winograd_applies, blas_controls
    try:
        snn = model.build()  # a fresh network: its plan is made with these rules
        simulate(snn, x[:64], steps, threads=threads, schedule="layer")  # warm: compile, time the deliveries
        return images_per_second(lambda: simulate(snn, x, steps, threads=threads, schedule="layer"), len(x))
    finally:
        winograd.applies, blas._openblas_controls = saved
        lockstep._PLANS.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_net_options(parser)
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    rows = {}
    for name, model, _, x, _, _ in converted_nets(args):
        began = time.perf_counter()
        rows[name] = {variant: speed(model, x, args.steps, args.threads, **rules) for variant, rules in VARIANTS.items()}
        shipped = rows[name]["as shipped"]
        print(f"{name} (T = {args.steps}, {len(x)} images, {time.perf_counter() - began:.0f} s): "
              + "; ".join(f"{variant} {rate:,.0f} img/s (as shipped: {shipped / rate:.2f}x this)" if variant != "as shipped"
                          else f"{variant} {rate:,.0f} img/s" for variant, rate in rows[name].items()), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"command": f"python benchmarks/bench_lockstep_parts.py --models DIR --nets {args.nets} "
                         f"--limit {args.limit} --steps {args.steps}",
              "date": str(date.today()), "threads": args.threads, "images_per_second": rows}
    (out / "lockstep_parts.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out / 'lockstep_parts.json'}")


if __name__ == "__main__":
    main()
