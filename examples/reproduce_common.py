"""Shared by the reproduction scripts: the trained models, their data, runs with progress, output files."""

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

from eventsnn import ann, simulate  # noqa: E402
from eventsnn.ir import Network  # noqa: E402
from eventsnn.loaders import load_mnist, load_network  # noqa: E402
from eventsnn.progress import terminal_progress  # noqa: E402
from eventsnn.snn import SimulationResult, SpikingNetwork  # noqa: E402

MODELS = REPO / "examples" / "models"
PAPER = dict(spikes="binary", output="softmax", shift="none")  # Rueckauer et al.'s neuron and readout



class _Paths:
    """Where a run writes its JSON and plots (``--out``; the committed figures are docs/results) and
    where the MNIST files are (``--mnist``)."""
    results = REPO / "out" / "results"
    mnist = REPO.parent / "shared" / "data" / "mnist"


PATHS = _Paths()


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The script's arguments plus --out and --mnist, which set ``PATHS``."""
    parser.add_argument("--out", default=str(PATHS.results),
                        help="folder for the JSON and plots (default: %(default)s; docs/results updates the docs)")
    parser.add_argument("--mnist", default=str(PATHS.mnist), help="folder of the MNIST IDX files (default: %(default)s)")
    args = parser.parse_args()
    PATHS.results, PATHS.mnist = Path(args.out), Path(args.mnist)
    return args


def mnist_dir() -> Path:
    if not PATHS.mnist.is_dir():
        raise SystemExit(f"no MNIST files at {PATHS.mnist}: give their folder with --mnist DIR")
    return PATHS.mnist


def cifar10(kind: str = "relu", calib: int = 2000, folder: Path = MODELS) -> tuple[Network, np.ndarray, np.ndarray, np.ndarray]:
    """The trained CIFAR-10 net cifar10_KIND in ``folder`` ('relu' or 'clip' here), calibration
    images (train), test images and labels."""
    from examples.cifar10_data import load_cifar10

    data = load_cifar10()
    net = load_network(folder / f"cifar10_{kind}.pt", folder / f"cifar10_{kind}.json")
    x_calib = data["x_train"][np.random.default_rng(0).choice(len(data["x_train"]), calib, replace=False)]
    return net, x_calib.astype(np.float32) / 255, data["x_test"].astype(np.float32) / 255, data["y_test"]


def mnist7(calib: int = 2000) -> tuple[Network, np.ndarray, np.ndarray, np.ndarray]:
    net = load_network(MODELS / "mnist7.pt", MODELS / "mnist7.json")
    x_train, _ = load_mnist(mnist_dir(), "train")
    x_test, y_test = load_mnist(mnist_dir(), "test")
    x_calib = x_train[np.random.default_rng(0).choice(len(x_train), calib, replace=False)]
    return net, x_calib, x_test, y_test


def run(snn: SpikingNetwork, x: np.ndarray, steps: int, label: str) -> SimulationResult:
    """Simulate in chunks, with progress on a terminal and a line per run in any case."""
    began = time.perf_counter()
    result = simulate(snn, x, steps, batch_size=250, progress=terminal_progress(label))
    print(f"{label}: {len(x)} samples, T={steps}, {time.perf_counter() - began:.0f} s", flush=True)
    return result


def ann_accuracy(net: Network, x: np.ndarray, y: np.ndarray) -> float:
    return ann.accuracy(net, x, y)


def write(name: str, report: dict, command: str) -> Path:
    PATHS.results.mkdir(parents=True, exist_ok=True)
    report = {"command": command, "date": str(date.today()), **report}
    path = PATHS.results / f"{name}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return path


def plot(name: str, draw) -> None:
    """Call draw(plt) and save <name>.png beside the JSON; skipped without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    draw(plt)
    plt.tight_layout()
    plt.savefig(PATHS.results / f"{name}.png", dpi=100)
    plt.close("all")
    print(f"wrote {PATHS.results / f'{name}.png'}")
