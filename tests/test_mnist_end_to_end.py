"""End to end on real MNIST: the shipped model's SNN is within 1 point of its ANN at T = 100."""

from __future__ import annotations

import pytest

from eventsnn import ann
from eventsnn.engine import simulate
from eventsnn.loaders import load_mnist

from .conftest import SHARED_DATA

MNIST = SHARED_DATA / "mnist"


@pytest.mark.skipif(not MNIST.exists(), reason=f"real MNIST not found at {MNIST}")
def test_demo_model_converts_nearly_losslessly_on_mnist(demo):
    x, y = load_mnist(MNIST, "test")
    x, y = x[:1000], y[:1000]
    ann_accuracy = ann.accuracy(demo.model.ann, x, y)
    result = simulate(demo.model.build(), x, 100, batch_size=250)
    snn_accuracy = result.accuracy(y)
    print(f"MNIST 1000 test images: ANN {ann_accuracy:.4f}, SNN(T=100) {snn_accuracy:.4f}")
    assert ann_accuracy > 0.98
    assert snn_accuracy >= ann_accuracy - 0.01
