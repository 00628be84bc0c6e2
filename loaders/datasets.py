"""Dataset readers: every reader returns ``x`` (N, C, H, W) float32 in [0, 1] and ``y`` (N,) int64."""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetError(ValueError):
    """A dataset file is missing, malformed or truncated."""


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (MNIST format), gzip-compressed or raw."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DatasetError(f"{path}: cannot read IDX file ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetError(f"{path}: expected {expected} bytes for shape {shape}, found {len(raw)} (truncated?)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_mnist(directory: str | os.PathLike, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """MNIST or Fashion-MNIST from a directory of the four standard IDX files (gz or raw)."""
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    directory = Path(directory)

    def find(kind: str) -> Path:
        for name in (f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz",
                     f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"):
            if (directory / name).exists():
                return directory / name
        raise DatasetError(f"{directory}: no {prefix}-{kind} IDX file")

    images = read_idx(find("images"))
    labels = read_idx(find("labels"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(f"{directory}: images {images.shape} and labels {labels.shape} do not match")
    return images[:, None].astype(np.float32) / 255.0, labels.astype(np.int64)


def as_unit_interval(x: np.ndarray, source: str = "data") -> np.ndarray:
    """Convert images to float32 in [0, 1]: uint8 is scaled by 1/255, floats must already lie in [0, 1]."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise DatasetError(f"{source}: x must be uint8 or float, not {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise DatasetError(f"{source}: x contains NaN or Inf")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise DatasetError(f"{source}: float x must lie in [0, 1], found [{x.min():g}, {x.max():g}]")
    return x


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A data file: ``.npz`` with ``x`` (N, C, H, W) and integer labels ``y`` (N,)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f.files or "y" not in f.files:
                raise DatasetError(f"{path}: needs arrays 'x' and 'y', found {sorted(f.files)}")
            x, y = f["x"], f["y"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, DatasetError):
            raise
        raise DatasetError(f"{path}: cannot read npz ({err})") from err
    if x.ndim != 4:
        raise DatasetError(f"{path}: x must have shape (N, C, H, W), found {x.shape}")
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{path}: y must be integers of shape ({len(x)},), found {y.dtype} {y.shape}")
    return as_unit_interval(x, str(path)), y.astype(np.int64)
