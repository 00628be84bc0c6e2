"""CIFAR-10 from the JPEG archive (``train|test/<class>/NNNN.jpg``), decoded once and cached.

    python examples/cifar10_data.py --archive ../shared/data/cifar10-jpeg.tar.gz

The other scripts decode the archive named by $EVENTSNN_CIFAR10_ARCHIVE (default: the one above)
when there is no cache yet. The cache (``~/.cache/eventsnn/cifar10.npz``, or ``$EVENTSNN_CACHE``) lives outside the repo and
holds uint8 arrays x_train (50000, 3, 32, 32), y_train, x_test, y_test, classes in sorted order
(which is the standard CIFAR-10 label order). Needs Pillow.
"""

from __future__ import annotations

import argparse
import io
import os
import tarfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = REPO.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def cache_path() -> Path:
    return Path(os.environ.get("EVENTSNN_CACHE", Path.home() / ".cache" / "eventsnn")) / "cifar10.npz"


def decode_archive(archive: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    images: dict[str, list] = {"train": [], "test": []}
    labels: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] not in images or not parts[2].endswith(".jpg"):
                continue
            if parts[1] not in CLASSES:
                raise ValueError(f"{archive}: unknown class folder {parts[1]!r}")
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as img:
                pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
            if pixels.shape != (32, 32, 3):
                raise ValueError(f"{archive}:{member.name}: expected a 32x32 image, found {pixels.shape}")
            images[parts[0]].append(pixels.transpose(2, 0, 1))
            labels[parts[0]].append(CLASSES.index(parts[1]))
    return {"x_train": np.stack(images["train"]), "y_train": np.array(labels["train"], np.int64),
            "x_test": np.stack(images["test"]), "y_test": np.array(labels["test"], np.int64)}


def default_archive() -> Path:
    return Path(os.environ.get("EVENTSNN_CIFAR10_ARCHIVE", DEFAULT_ARCHIVE))


def load_cifar10(archive: Path | None = None) -> dict[str, np.ndarray]:
    """uint8 CIFAR-10 arrays, decoding the archive (default: ``default_archive()``) on first use.

    The archive is sorted by class; both splits come back in a fixed shuffled order (seed 0), so
    that the first N test images are a fair sample of all ten classes."""
    path = cache_path()
    if not path.exists():
        archive = Path(archive or default_archive())
        if not archive.is_file():
            raise SystemExit(f"no CIFAR-10 cache at {path} and no archive at {archive}: run "
                             "`python examples/cifar10_data.py --archive FILE` once, or set EVENTSNN_CIFAR10_ARCHIVE")
        arrays = decode_archive(archive)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        order = rng.permutation(len(data[f"y_{split}"]))
        data[f"x_{split}"], data[f"y_{split}"] = data[f"x_{split}"][order], data[f"y_{split}"][order]
    return data


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", default=str(default_archive()),
                        help="the JPEG archive (default: %(default)s)")
    args = parser.parse_args()
    data = load_cifar10(Path(args.archive))
    print({k: v.shape for k, v in data.items()}, "cached at", cache_path())
