"""Convert the trained CIFAR-10 nets into spiking model files, and save a small test sample.

    python examples/export_cifar10.py

Writes examples/models/cifar10_{relu,clip}_snn.npz (99.9th-percentile normalization on 2,000
training images; analog input, reset by subtraction, softmax readout) and
examples/models/cifar10_sample.npz (the first 200 test images, uint8, with labels) for the tests.
"""

from __future__ import annotations

import numpy as np
from reproduce_common import MODELS, cifar10

from eventsnn import ann, convert, save


def main() -> None:
    for kind in ("relu", "clip"):
        if not (MODELS / f"cifar10_{kind}.pt").exists():
            print(f"no {kind} weights yet, skipped")
            continue
        net, x_calib, x, y = cifar10(kind)
        model = convert(net, x_calib, 99.9)
        save(model, MODELS / f"cifar10_{kind}_snn.npz")
        print(f"{kind}: ANN test accuracy {ann.accuracy(model.ann, x, y):.4f}, wrote cifar10_{kind}_snn.npz")
    _, _, x, y = cifar10("relu")
    np.savez_compressed(MODELS / "cifar10_sample.npz", x=np.round(x[:200] * 255).astype(np.uint8), y=y[:200])
    print("wrote cifar10_sample.npz")


if __name__ == "__main__":
    main()
