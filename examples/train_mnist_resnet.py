"""Train a small ResNet-style MNIST net in PyTorch and export it through torch.fx (needs torch).

    python examples/train_mnist_resnet.py --epochs 5

stem conv 16 - maxpool - residual block (16) - residual block (32, stride 2, 1x1 conv shortcut)
- global average pool - dense 10, batch-norm everywhere. The module is traced with
``eventsnn.loaders.from_torch``; the traced architecture is written as a spec JSON next to the
module's own state_dict (``examples/models/mnist_resnet.{json,pt}``), so converting it needs no
torch: ``eventsnn convert examples/models/mnist_resnet.pt --arch examples/models/mnist_resnet.json ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eventsnn.spec import network_to_spec  # noqa: E402
from examples.train_mnist_demo import train  # noqa: E402
from loaders.datasets import load_mnist  # noqa: E402
from loaders.torch_module import from_torch  # noqa: E402

HERE = Path(__file__).resolve().parent


class Block(nn.Module):
    """relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)); the shortcut is a 1x1 conv when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class MnistResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.block1 = Block(16, 16)
        self.block2 = Block(16, 32, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(self.block2(self.block1(self.stem(x))))
        return self.fc(torch.flatten(x, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", default=str(HERE.parent.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(HERE / "models"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, y_train = load_mnist(args.mnist, "train")
    x_test, y_test = load_mnist(args.mnist, "test")
    model = MnistResNet()
    acc = train(model, (x_train, y_train), (x_test, y_test), args.epochs, rng)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec, _ = network_to_spec(from_torch(model, (1, 28, 28)))
    (out / "mnist_resnet.json").write_text(json.dumps(spec, indent=1))
    torch.save(model.state_dict(), out / "mnist_resnet.pt")
    print(f"wrote {out}/mnist_resnet.pt and .json; test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
