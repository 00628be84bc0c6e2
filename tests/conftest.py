"""Shared fixtures: the demo model; random networks come from eventsnn.testing.strategies."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eventsnn.loaders import load_network
from eventsnn.model import convert

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def demo_files() -> dict[str, Path]:
    data = resources.files("eventsnn") / "data"
    return {name: Path(str(data / name)) for name in ("mnist_cnn.pt", "mnist_cnn.json", "mnist_sample.npz")}


@pytest.fixture(scope="session")
def demo(demo_files) -> SimpleNamespace:
    """The shipped MNIST model, converted with its bundled calibration images, and its test sample."""
    net = load_network(demo_files["mnist_cnn.pt"], demo_files["mnist_cnn.json"])
    with np.load(demo_files["mnist_sample.npz"]) as f:
        x, y, x_calib = f["x"].astype(np.float32) / 255, f["y"], f["x_calib"].astype(np.float32) / 255
    return SimpleNamespace(net=net, model=convert(net, x_calib), x=x, y=y, x_calib=x_calib)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory, demo) -> Path:
    """40 demo test images (uint8, as saved data sets usually are) and 200 calibration images, as .npz."""
    folder = tmp_path_factory.mktemp("data")
    np.savez(folder / "test.npz", x=np.round(demo.x[:40] * 255).astype(np.uint8), y=demo.y[:40])
    np.savez(folder / "calib.npz", x=demo.x_calib[:200], y=np.zeros(200, np.int64))
    return folder
