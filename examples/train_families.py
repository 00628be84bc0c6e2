"""Train the small CIFAR-10 family nets of ``families.py`` (ResNet-18, MobileNetV2, Inception).

Inputs in [0, 1] (uint8 / 255, no mean/std normalization), as eventsnn's loaders feed them. Random
crop of the 4-padded image and horizontal flip; SGD with Nesterov momentum 0.9, weight decay 5e-4,
batch 256; the learning rate follows the elapsed share of a fixed time budget (linear warm-up over
5%, then cosine to zero); bf16 autocast on a GPU, float32 evaluation. Each net trains in its own
process, side by side on one GPU:

    python examples/train_families.py decode cifar10-jpeg.tar.gz cifar10.npz
    python examples/train_families.py train NAME cifar10.npz OUTDIR BUDGET_SECONDS

Writes OUTDIR/NAME.pt (the state_dict) and OUTDIR/NAME.info.json (accuracy, epochs, loss per epoch).
"""

from __future__ import annotations

import io
import json
import math
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from examples.families import FAMILIES  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
LEARNING_RATE = {"resnet18": 0.2, "mobilenet_v2": 0.1, "inception": 0.1}


def decode(archive: str, out: str) -> None:
    """The JPEG archive (train|test/class/*.jpg) as one .npz of uint8 arrays."""
    from PIL import Image

    xs, ys = {"train": [], "test": []}, {"train": [], "test": []}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] not in xs or not parts[2].endswith(".jpg"):
                continue
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as image:
                xs[parts[0]].append(np.asarray(image.convert("RGB"), np.uint8).transpose(2, 0, 1))
            ys[parts[0]].append(CLASSES.index(parts[1]))
    np.savez(out, x_train=np.stack(xs["train"]), y_train=np.array(ys["train"]),
             x_test=np.stack(xs["test"]), y_test=np.array(ys["test"]))


@torch.no_grad()
def evaluate(model, x, y) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), 1000):
        batch = (x[i:i + 1000].float() / 255).contiguous(memory_format=torch.channels_last)
        correct += int((model(batch).argmax(1) == y[i:i + 1000]).sum())
    return correct / len(x)


def train(name: str, data: str, outdir: str, budget: float, batch: int = 256) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    d = np.load(data)
    x_train, y_train = torch.from_numpy(d["x_train"]).to(device), torch.from_numpy(d["y_train"]).long().to(device)
    x_test, y_test = torch.from_numpy(d["x_test"]).to(device), torch.from_numpy(d["y_test"]).long().to(device)
    padded, n = F.pad(x_train, (4, 4, 4, 4)), len(x_train)
    model = FAMILIES[name]().to(device).to(memory_format=torch.channels_last)
    base_lr = LEARNING_RATE[name]
    opt = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    offsets, channels = torch.arange(32, device=device), torch.arange(3, device=device)[None, :, None, None]
    began, epoch, steps, log, done = time.time(), 0, 0, [], False
    while not done:
        model.train()
        order, total, count = torch.randperm(n, device=device), torch.zeros((), device=device), 0
        for i in range(0, n - batch + 1, batch):
            share = (time.time() - began) / budget
            if share >= 1:
                done = True
                break
            lr = base_lr * (share / 0.05 if share < 0.05 else 0.5 * (1 + math.cos(math.pi * (share - 0.05) / 0.95)))
            for group in opt.param_groups:
                group["lr"] = lr
            idx = order[i:i + batch]
            rows = (torch.randint(0, 9, (len(idx),), device=device)[:, None] + offsets)[:, None, :, None]
            cols = (torch.randint(0, 9, (len(idx),), device=device)[:, None] + offsets)[:, None, None, :]
            xb = padded[idx[:, None, None, None], channels, rows, cols]
            xb = torch.where((torch.rand(len(idx), device=device) < 0.5)[:, None, None, None], xb.flip(3), xb)
            xb = (xb.float() / 255).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = F.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, count, steps = total + loss.detach(), count + 1, steps + 1
        epoch += 1
        if count:
            log.append({"epoch": epoch, "loss": round(float(total) / count, 4), "t": round(time.time() - began, 1)})
    accuracy = evaluate(model, x_test, y_test)
    out = Path(outdir)
    torch.save({k: v.detach().float().cpu() for k, v in model.state_dict().items()}, out / f"{name}.pt")
    info = {"name": name, "test_accuracy_fp32": accuracy, "epochs": epoch, "steps": steps, "budget_s": budget,
            "lr": base_lr, "batch": batch, "train_s": round(time.time() - began, 1),
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
            "log": log}
    (out / f"{name}.info.json").write_text(json.dumps(info))
    print(f"{name}: test accuracy {accuracy:.4f} after {epoch} epochs ({steps} steps) in {info['train_s']} s", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "decode":
        decode(sys.argv[2], sys.argv[3])
    else:
        train(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
