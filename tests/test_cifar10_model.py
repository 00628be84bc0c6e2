"""The shipped CIFAR-10 spiking model loads and classifies real test images far above chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eventsnn import ann, load, simulate

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"


def test_shipped_cifar10_model_classifies_test_images():
    model = load(MODELS / "cifar10_relu_snn.npz")
    with np.load(MODELS / "cifar10_sample.npz", allow_pickle=False) as f:
        x, y = f["x"][:100].astype(np.float32) / 255, f["y"][:100]
    ann_accuracy = ann.accuracy(model.ann, x, y)
    snn_accuracy = simulate(model.build(), x, 100).accuracy(y)
    print(f"CIFAR-10, 100 test images: ANN {ann_accuracy:.2f}, SNN(T=100) {snn_accuracy:.2f}")
    assert ann_accuracy >= 0.7  # chance is 0.1
    assert snn_accuracy >= 0.6
