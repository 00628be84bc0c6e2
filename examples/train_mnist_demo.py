"""Train an MNIST CNN from an architecture spec (needs torch).

    python examples/train_mnist_demo.py
        the small CNN that ships inside eventsnn for `eventsnn demo`: writes into eventsnn/data/
        mnist_cnn.pt (state_dict), mnist_cnn.json (architecture) and mnist_sample.npz (uint8
        images: 1,000 training images for calibration, 1,000 test images)
    python examples/train_mnist_demo.py --arch examples/mnist7_arch.json --epochs 8 \
        --out examples/models --name mnist7
        the paper's 7-layer MNIST net (Rueckauer et al. report 99.44% SNN accuracy)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from examples.archnet import ArchNet  # noqa: E402
from loaders.datasets import load_mnist  # noqa: E402

HERE = Path(__file__).resolve().parent
PACKAGE_DATA = HERE.parent / "eventsnn" / "data"


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x[i:i + 1000])).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred.numpy() == y).mean())


def train(model: nn.Module, train_set, test_set, epochs: int, rng: np.random.Generator) -> float:
    """Adam with a one-cycle learning rate, batches of 128; returns the last epoch's test accuracy."""
    (x_train, y_train), (x_test, y_test) = train_set, test_set
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * (len(x_train) // 128)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=4e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    start = time.time()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(x_train))
        for i in range(len(x_train) // 128):
            idx = order[i * 128:(i + 1) * 128]
            optimizer.zero_grad()
            loss = loss_fn(model(torch.from_numpy(x_train[idx])), torch.from_numpy(y_train[idx]))
            loss.backward()
            optimizer.step()
            scheduler.step()
        acc = evaluate(model, x_test, y_test)
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.4f}, test accuracy {acc:.4f} "
              f"({time.time() - start:.0f} s)", flush=True)
    return acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(PACKAGE_DATA))
    parser.add_argument("--arch", default=str(HERE / "mnist_demo_arch.json"))
    parser.add_argument("--name", default="mnist_cnn", help="file name stem of the weights and spec")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, y_train = load_mnist(args.mnist, "train")
    x_test, y_test = load_mnist(args.mnist, "test")
    spec = json.loads(Path(args.arch).read_text())
    model = ArchNet(spec)
    acc = train(model, (x_train, y_train), (x_test, y_test), args.epochs, rng)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / f"{args.name}.pt")
    shutil.copy(args.arch, out / f"{args.name}.json")
    print(f"wrote {out}/{args.name}.pt and .json; full test accuracy {acc:.4f}")
    if args.name != "mnist_cnn":
        return
    calib = rng.choice(len(x_train), 1000, replace=False)
    np.savez_compressed(out / "mnist_sample.npz",
                        x=np.round(x_test[:1000] * 255).astype(np.uint8), y=y_test[:1000],
                        x_calib=np.round(x_train[calib] * 255).astype(np.uint8), y_calib=y_train[calib])
    print(f"wrote {out}/mnist_sample.npz")


if __name__ == "__main__":
    main()
