"""Scale benchmark: an ImageNet-shaped net (VGG-11 at 224x224) on a local Dask cluster of 1 and 2 workers.

    python benchmarks/bench_scale.py [--images 8] [--steps 8] [--out docs/results]

Random He-initialized weights, normalized on random images (the accuracy is meaningless; the
work per image is what a trained VGG-11 of this shape costs, give or take its spike rates). The
model and a data file of random images are written to a temporary folder that the workers read.
Reports: build time, connectivity and scratch memory, the peak RSS of each worker, seconds per
image with 1 and with 2 worker processes (the speed-up measured in this process, both runs on the
same images), and a projection, stated as such, of a 50,000-image evaluation on N machines like
this one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eventsnn.atomic import write_text  # noqa: E402
from eventsnn.ir import Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU  # noqa: E402
from eventsnn.model import convert, save  # noqa: E402
from eventsnn.scaleout import dask_client, simulate_on_cluster  # noqa: E402
from outputs import add_out_option  # noqa: E402

VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg11(rng: np.random.Generator, classes: int = 1000) -> Network:
    layers, c, size = [], 3, 224
    for i, v in enumerate(VGG11):
        if v == "M":
            layers.append(MaxPool2d(2, 2, f"pool{i}"))
            size //= 2
            continue
        w = rng.normal(0, np.sqrt(2 / (9 * c)), (v, c, 3, 3)).astype(np.float32)
        layers += [Conv2d(w, np.zeros(v, np.float32), 1, 1, f"conv{i}"), ReLU(f"relu{i}")]
        c = v
    features = c * size * size
    for i, n in enumerate((4096, 4096)):
        layers += [Linear(rng.normal(0, np.sqrt(2 / features), (n, features)).astype(np.float32),
                          np.zeros(n, np.float32), f"fc{i}"), ReLU(f"fc_relu{i}")]
        features = n
    layers.insert(len(layers) - 4, Flatten("flatten"))
    layers.append(Linear(rng.normal(0, np.sqrt(1 / features), (classes, features)).astype(np.float32), None, "out"))
    return Network((3, 224, 224), tuple(layers))


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--calib-images", type=int, default=8)
    add_out_option(parser)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    net = vgg11(rng)
    x = rng.random((args.images, 3, 224, 224), dtype=np.float32)
    began = time.perf_counter()
    model = convert(net, rng.random((args.calib_images, 3, 224, 224), dtype=np.float32))
    convert_seconds = time.perf_counter() - began
    began = time.perf_counter()
    snn = model.build(path="direct")
    build_seconds = time.perf_counter() - began
    report = {"net": "VGG-11, 224x224, 1000 classes, random weights", "images": args.images, "steps": args.steps,
              "settings": model.config.__dict__, "neurons": snn.n_neurons,
              "macs_per_image": int(sum(s.macs for s in snn.stages)),
              "connectivity_mib": sum(s.connectivity_bytes for s in snn.stages) / 2**20,
              "convert_seconds_on_client": convert_seconds, "build_seconds": build_seconds, "runs": {}}
    print(f"VGG-11: {snn.n_neurons:,} neurons, {report['macs_per_image'] / 1e9:.2f} GMAC per image, "
          f"connectivity {report['connectivity_mib']:.0f} MiB; converted in {convert_seconds:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        save(model, Path(folder) / "vgg11.npz")
        np.savez(Path(folder) / "images.npz", x=x, y=np.zeros(len(x), np.int64))
        results = {}
        for workers in (1, 2):
            with dask_client(workers=workers) as client:
                simulate_on_cluster(client, model, str(Path(folder) / "images.npz"), workers, 1, chunk=1,
                                    build_options={"path": "direct"})  # load, build and compile on every worker
                began = time.perf_counter()
                result = simulate_on_cluster(client, model, str(Path(folder) / "images.npz"), len(x), args.steps,
                                             chunk=1, build_options={"path": "direct"})
                seconds = time.perf_counter() - began
                rss = sorted(client.run(peak_rss_mib).values())
            results[workers] = result
            report["runs"][str(workers)] = {
                "seconds": seconds, "seconds_per_image": seconds / len(x), "worker_peak_rss_mib": rss,
                "synops_per_image": float(result.synops.sum() / len(x))}
            print(f"{workers} worker(s): {seconds / len(x):.2f} s per image, worker peak RSS "
                  f"{', '.join(f'{r:.0f}' for r in rss)} MiB", flush=True)
    assert np.array_equal(results[1].decisions, results[2].decisions)  # the same answer either way
    one, two = (report["runs"][k]["seconds"] for k in ("1", "2"))
    report["speedup_2_over_1"] = one / two
    per_image_machine = two / len(x)  # this machine (2 cores) with 2 worker processes
    report["projection_50000_images"] = {
        "note": "projection from the measured seconds per image with 2 workers on this 2-core machine, "
                "assuming machines like it and perfect scaling across machines",
        "hours_by_machines": {str(m): 50000 * per_image_machine / m / 3600 for m in (1, 10, 100)}}
    print(f"speed-up of 2 workers over 1: {report['speedup_2_over_1']:.2f}x; projected 50,000 images: "
          + ", ".join(f"{m} machine(s) {h:.1f} h" for m, h in report["projection_50000_images"]["hours_by_machines"].items()))
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "scale.json", json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out / 'scale.json'}")


if __name__ == "__main__":
    main()
