"""The trained CIFAR-10 family nets (examples/families.py): read from their checkpoints without torch,
converted with the defaults, they decide as their ANNs on real test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eventsnn import ann, convert, simulate
from eventsnn.loaders import load_network

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"


@pytest.mark.parametrize("family", ["resnet18", "mobilenet_v2", "inception"])
def test_a_trained_family_net_converts_with_the_defaults(family):
    net = load_network(MODELS / f"family_{family}.pt", MODELS / f"family_{family}.json")
    with np.load(MODELS / "cifar10_sample.npz", allow_pickle=False) as f:
        x, y = f["x"].astype(np.float32) / 255, f["y"]
    calib, test, labels = x[:100], x[100:160], y[100:160]
    model = convert(net, calib)
    ann_decisions = ann.forward(net, test).argmax(axis=1)
    assert np.mean(ann_decisions == labels) >= 0.7  # trained: chance is 0.1
    snn_decisions = simulate(model.build(), test, 8).decisions[:, -1]
    assert np.mean(snn_decisions == ann_decisions) >= 0.85
