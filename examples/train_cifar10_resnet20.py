"""Train ResNet-20 (He et al. 2016; the CIFAR-10 ResNet of Deng & Gu's table) on the CPU (needs torch).

    python examples/train_cifar10_resnet20.py --epochs 16 --threads 1        # ~50 min on one core
    python examples/train_cifar10_resnet20.py --epochs 16 --resume           # continue a stopped run
    python examples/train_cifar10_resnet20.py --epochs 30 --lr 0.05 --init examples/models/cifar10_resnet20.pt \
        --out /tmp/resnet20_more.pt                                           # a second schedule from trained weights

conv 16 3x3 - 3 stages of 3 residual blocks (16, 32, 64 channels; stride 2 and a 1x1 conv
shortcut where a stage starts) - global average pool - dense 10, batch-norm everywhere, ReLU.
Augmentation as in train_cifar10.py (random crop with padding 4, horizontal flip), SGD with
Nesterov momentum and a one-cycle learning rate. After every epoch the weights
(``examples/models/cifar10_resnet20.pt``), the traced architecture (``.json``) and the training
state (``.state.pt``: optimizer, schedule, epoch) are written, so a stopped run loses at most one
epoch. The test set is only reported, never used to pick an epoch.

The shipped weights (examples/models/cifar10_resnet20.pt, 88.01% on the test set): 30 epochs with
the defaults but --epochs 30 --threads 1 (86.95%, 91 min), then the second command above with
--seed 1 --threads 1 (30 more epochs, about 100 min on one core beside other work).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eventsnn.atomic import atomic_output  # noqa: E402
from eventsnn.spec import network_to_spec  # noqa: E402
from examples.cifar10_data import load_cifar10  # noqa: E402
from examples.train_cifar10 import evaluate, train_epoch  # noqa: E402
from examples.train_mnist_resnet import Block  # noqa: E402
from loaders.torch_module import from_torch  # noqa: E402

HERE = Path(__file__).resolve().parent


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        blocks, c_in = [], 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                blocks.append(Block(c_in, c_out, stride if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def save(obj, path: Path) -> None:
    with atomic_output(path) as f:
        torch.save(obj, f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", default=str(HERE / "models" / "cifar10_resnet20.pt"))
    parser.add_argument("--resume", action="store_true", help="continue from the training state next to --out")
    parser.add_argument("--init", help="start from these weights with a fresh schedule (e.g. to train a finished run longer)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_cifar10()
    out = Path(args.out)
    state_path = out.with_suffix(".state.pt")
    out.parent.mkdir(parents=True, exist_ok=True)
    model = ResNet20()
    spec, _ = network_to_spec(from_torch(model.eval(), (3, 32, 32)))
    out.with_suffix(".json").write_text(json.dumps(spec, indent=1))

    x_train, y_train = data["x_train"], torch.from_numpy(data["y_train"])
    steps_per_epoch = len(x_train) // args.batch
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
                                                    pct_start=0.2)
    first_epoch = 0
    if args.init:
        model.load_state_dict(torch.load(args.init, weights_only=True))
    if args.resume:
        state = torch.load(state_path, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        first_epoch = state["epoch"]
        print(f"resumed after epoch {first_epoch}", flush=True)
    began = time.time()
    for epoch in range(first_epoch, args.epochs):
        rng = np.random.default_rng([args.seed, epoch])  # per epoch, so a resumed run sees the same batches
        mean_loss = train_epoch(model, optimizer, scheduler, x_train, y_train, args.batch, rng)
        save(model.state_dict(), out)
        save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
              "scheduler": scheduler.state_dict(), "epoch": epoch + 1}, state_path)
        acc = evaluate(model, data["x_test"], data["y_test"])
        print(f"epoch {epoch + 1}/{args.epochs}: loss {mean_loss:.4f}, test accuracy {acc:.4f}, "
              f"{time.time() - began:.0f} s", flush=True)
    print(f"weights in {out}")


if __name__ == "__main__":
    main()
