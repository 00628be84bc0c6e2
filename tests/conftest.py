"""Shared helpers: random small networks with dyadic weights (exact in float32)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import strategies as st

from eventsnn.loaders import load_network
from eventsnn.model import convert
from eventsnn.ir import Add, AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU, Softmax

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def dyadic(rng: np.random.Generator, shape, limit: int = 64, denominator: int = 64) -> np.ndarray:
    """Weights k/denominator with |k| <= limit: sums of their products with inputs j/16 are exact."""
    return rng.integers(-limit, limit + 1, size=shape).astype(np.float32) / denominator


def random_network(rng: np.random.Generator, softmax: bool = True) -> Network:
    """conv(+relu) [-> pool] [-> conv(+relu)] -> flatten -> [linear(+relu)] -> linear [-> softmax]."""
    c, h, w = int(rng.integers(1, 3)), int(rng.integers(5, 9)), int(rng.integers(5, 9))
    layers: list = []
    shape = (c, h, w)
    for block in range(int(rng.integers(1, 3))):
        k = int(rng.integers(1, 4))
        stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 2))
        if (min(shape[1:]) + 2 * padding - k) // stride + 1 < 2:
            stride, padding = 1, 1
        out_c = int(rng.integers(1, 4))
        conv = Conv2d(dyadic(rng, (out_c, shape[0], k, k)), dyadic(rng, out_c, 16), stride, padding, f"conv{block}")
        layers += [conv, ReLU(f"relu{block}")]
        shape = conv.output_shape(shape)
        pool = rng.integers(0, 3) if min(shape[1:]) >= 2 else 0
        if pool:
            cls = MaxPool2d if pool == 1 else AvgPool2d
            layer = cls(2, int(rng.integers(1, 3)) if cls is MaxPool2d else 2, f"pool{block}")
            layers.append(layer)
            shape = layer.output_shape(shape)
    layers.append(Flatten("flatten"))
    features = int(np.prod(shape))
    if rng.integers(0, 2):
        hidden = int(rng.integers(2, 9))
        layers += [Linear(dyadic(rng, (hidden, features)), dyadic(rng, hidden, 16), "fc_hidden"), ReLU("relu_fc")]
        features = hidden
    n_out = int(rng.integers(2, 6))
    layers.append(Linear(dyadic(rng, (n_out, features)), dyadic(rng, n_out, 16), "fc_out"))
    if softmax:
        layers.append(Softmax("softmax"))
    return Network((c, h, w), tuple(layers))


def random_residual_network(rng: np.random.Generator) -> Network:
    """conv -> relu -> conv -> relu -> conv -> add(skip) -> relu [-> pool] -> flatten -> linear.

    The skip is the first relu (identity), a 1x1 conv of it (projection shortcut), or the network
    input itself; the add's weights are 1 or dyadic."""
    c, h, w = int(rng.integers(1, 3)), int(rng.integers(4, 7)), int(rng.integers(4, 7))
    skip = ("identity", "conv", "input")[int(rng.integers(0, 3))]
    width = c if skip == "input" else int(rng.integers(1, 4))

    def conv(name: str, c_in: int, k: int = 3) -> Conv2d:
        return Conv2d(dyadic(rng, (width, c_in, k, k), 32), dyadic(rng, width, 16), 1, k // 2, name)

    layers = [conv("conv0", c), ReLU("relu0"), conv("conv1", width), ReLU("relu1"), conv("conv2", width)]
    inputs = [(-1,), (0,), (1,), (2,), (3,)]
    if skip == "conv":
        layers.append(conv("shortcut", width, 1))
        inputs.append((1,))
    skip_from = {"identity": 1, "conv": 5, "input": -1}[skip]
    weights = None if rng.integers(0, 2) else tuple(float(v) for v in rng.integers(1, 9, 2) / 4)
    layers += [Add("add", weights), ReLU("relu2")]
    inputs += [(4, skip_from), (len(layers) - 2,)]
    shape = (width, h, w)
    if rng.integers(0, 2):
        pool = (MaxPool2d if rng.integers(0, 2) else AvgPool2d)(2, 2, "pool")
        layers.append(pool)
        inputs.append((len(layers) - 2,))
        shape = pool.output_shape(shape)
    n_out = int(rng.integers(2, 5))
    layers += [Flatten("flatten"), Linear(dyadic(rng, (n_out, int(np.prod(shape)))), dyadic(rng, n_out, 16), "fc")]
    inputs += [(len(layers) - 3,), (len(layers) - 2,)]
    return Network((c, h, w), tuple(layers), tuple(inputs))


def random_inputs(rng: np.random.Generator, net: Network, n: int) -> np.ndarray:
    """Intensities j/16 in [0, 1], about a third of them zero."""
    x = rng.integers(0, 17, size=(n,) + net.input_shape) / 16
    return (x * (rng.random(x.shape) > 0.3)).astype(np.float32)


seeds = st.integers(0, 2**32 - 1)


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
