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


def test_qcfs_net_in_one_graded_step_is_its_quantized_ann():
    """The QCFS-trained net (8 levels) converted with its thresholds as scales, V(0) = threshold/2
    and graded spikes of up to 8 per event worth 1/8 of the scale: one time step reproduces the
    quantized ANN layer by layer (max-pool gates pass the largest count), so the decisions agree
    (up to float32 rounding at quantization boundaries)."""
    from eventsnn.loaders import load_network
    from eventsnn.model import convert

    net = load_network(MODELS / "cifar10_qcfs.pt", MODELS / "cifar10_qcfs.json")
    with np.load(MODELS / "cifar10_sample.npz", allow_pickle=False) as f:
        x, y = f["x"][:100].astype(np.float32) / 255, f["y"][:100]
    model = convert(net, x, 99.9)
    assert all(s is None or s > 0 for s in model.scales)
    snn = model.build(spikes="graded", levels=8, max_spikes=8, shift="membrane", output="membrane")
    decisions = simulate(snn, x, 1).predictions()
    ann_decisions = ann.forward(model.ann, x).argmax(axis=1)
    assert np.mean(decisions == ann_decisions) >= 0.99  # 1,000 test images: 100%
    assert np.mean(decisions == y) >= np.mean(ann_decisions == y) - 0.03
