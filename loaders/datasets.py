"""Dataset readers: every reader returns ``x`` (N, C, H, W) float32 in [0, 1] and ``y`` (N,) int64.

With ``lazy=True`` a reader returns ``x`` as ``Images`` instead: the stored uint8 pixels (or
floats), left on disk where the file allows it (raw IDX files, CIFAR ``.bin`` batches,
uncompressed ``.npz``; ``FileRows`` reads the rows asked for), scaled to float32 only for the
slices that are read. That keeps a large
set on disk while it is streamed through in chunks (``eventsnn run`` does).
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from eventsnn import memory
from eventsnn.model import NPZ_READ_ERRORS, npz_error

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetError(ValueError):
    """A dataset file is missing, malformed or truncated."""


FINGERPRINT_BLOCK = 1 << 16


def _fingerprint(f, size: int) -> str:
    """A hash of the size and of three 64 KB blocks (start, middle, end) of an open file: cheap, and
    the same for a copy of the file on another machine."""
    import hashlib

    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    for start in sorted({0, max(size // 2 - FINGERPRINT_BLOCK // 2, 0), max(size - FINGERPRINT_BLOCK, 0)}):
        f.seek(start)
        digest.update(f.read(FINGERPRINT_BLOCK))
    return digest.hexdigest()


def file_identity(path: str | os.PathLike) -> tuple[int, int, str]:
    """(size, modification time, fingerprint) of a data file, to tell later whether it is still the same."""
    try:
        with open(path, "rb") as f:
            stat = os.fstat(f.fileno())
            return stat.st_size, stat.st_mtime_ns, _fingerprint(f, stat.st_size)
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err})") from None


class FileRows:
    """An array of rows read from a file on demand, with ordinary reads rather than a memory map:
    a file truncated while a run reads it then gives a clear error instead of a SIGBUS. Row i
    (``shape[1:]`` of ``dtype``) starts at ``offset + i * stride`` bytes."""

    def __init__(self, path: str | os.PathLike, offset: int, dtype, shape: tuple[int, ...], stride: int | None = None,
                 identity: tuple | None = None):
        self.path, self.offset, self.dtype, self.shape = Path(path), int(offset), np.dtype(dtype), tuple(shape)
        self.row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        self.stride = stride or self.row_bytes
        self.ndim = len(self.shape)
        self.identity = identity or file_identity(self.path)  # (size, mtime, fingerprint) when opened

    def __len__(self) -> int:
        return self.shape[0]

    def head(self, n: int) -> "FileRows":
        return FileRows(self.path, self.offset, self.dtype, (min(n, len(self)),) + self.shape[1:], self.stride,
                        self.identity)

    def with_row_shape(self, row_shape: tuple[int, ...]) -> "FileRows":
        """The same rows seen with another shape of as many elements (e.g. a channel axis added)."""
        if int(np.prod(row_shape)) * self.dtype.itemsize != self.row_bytes:
            raise ValueError(f"rows of shape {self.shape[1:]} cannot be seen as {row_shape}")
        return FileRows(self.path, self.offset, self.dtype, (len(self),) + tuple(row_shape), self.stride,
                        self.identity)

    def _check_same_file(self, f) -> None:
        """Refuse to read on from a file that is not the one opened (replaced or rewritten since)."""
        stat = os.fstat(f.fileno())
        size, mtime, print_ = self.identity
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime) and _fingerprint(f, stat.st_size) != print_:
            raise DatasetError(f"{self.path}: the file changed during the run (another file at this path now); "
                               "results would mix two data sets")

    def _rows(self, start: int, stop: int) -> np.ndarray:
        n = max(stop - start, 0)
        if n == 0:
            return np.zeros((0,) + self.shape[1:], self.dtype)
        span = (n - 1) * self.stride + self.row_bytes
        data = np.empty(span, np.uint8)  # read straight into a writable array: no extra copy
        try:
            with open(self.path, "rb") as f:
                self._check_same_file(f)
                f.seek(self.offset + start * self.stride)
                got = f.readinto(data)
        except OSError as err:
            raise DatasetError(f"{self.path}: cannot read ({err})") from None
        if got != span:
            raise DatasetError(f"{self.path}: the file is shorter than when it was opened (changed during the run?)")
        if self.stride != self.row_bytes:  # rows with gaps (CIFAR records' label bytes): gather them, one copy
            data = np.lib.stride_tricks.as_strided(data, (n, self.row_bytes), (self.stride, 1)).copy()
        return data.view(self.dtype).reshape((n,) + self.shape[1:])

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(len(self))
            return self._rows(start, stop)
        rows = np.arange(len(self))[key]  # an index, a strided slice or an index array: read the span it covers
        if rows.size == 0:
            return np.zeros(rows.shape + self.shape[1:], self.dtype)
        lo = int(rows.min())
        return self._rows(lo, int(rows.max()) + 1)[rows - lo]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)


class Images:
    """N images (N, C, H, W) kept as stored (uint8, possibly read from the file on demand, or floats in [0, 1]);
    indexing returns float32 in [0, 1] for just the selected images. ``np.asarray`` reads all."""

    def __init__(self, data: np.ndarray, source: str):
        if data.ndim != 4:
            raise DatasetError(f"{source}: images must have shape (N, C, H, W), found {data.shape}")
        if data.dtype != np.uint8 and not np.issubdtype(data.dtype, np.floating):
            raise DatasetError(f"{source}: x must be uint8 or float, not {data.dtype}")
        self.data, self.source = data, source

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key) -> np.ndarray:
        return as_unit_interval(np.asarray(self.data[key]), self.source)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)

    def head(self, n: int) -> "Images":
        """The first n images, still lazy."""
        return Images(self.data.head(n) if isinstance(self.data, (FileRows, _Rows)) else self.data[:n], self.source)

    def spread(self, n: int) -> "Images":
        """n images at even intervals over the set (all of them where it has no more): a set stored
        class by class still gives every class, where ``head`` gives its first classes only."""
        if len(self) <= n:
            return self
        return self.take(np.unique(np.linspace(0, len(self) - 1, n).round().astype(np.int64)))

    def take(self, rows: np.ndarray) -> "Images":
        """The images at these indices (sorted, for reads in file order), still lazy."""
        return Images(_Rows(self.data, np.asarray(rows, np.int64)), self.source)

    @property
    def rows(self) -> np.ndarray | None:
        """The indices in the stored set of a sample made by ``take`` (None: the first len(self))."""
        return self.data.rows if isinstance(self.data, _Rows) else None


class _Rows:
    """Some rows of an array or ``FileRows``, read when indexed (a sample of a data set)."""

    def __init__(self, data, rows: np.ndarray):
        self.data, self.rows = data, rows
        self.dtype, self.ndim, self.shape = data.dtype, data.ndim, (len(rows),) + tuple(data.shape[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.data[self.rows[key]])

    def head(self, n: int) -> "_Rows":
        return _Rows(self.data, self.rows[:n])


def balanced_sample(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """The sorted indices of n samples drawn at random (seeded), as evenly over the classes as
    they allow: sets stored class by class would otherwise give their first class alone."""
    labels = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    rank = np.empty(len(labels), np.int64)  # each sample's place among its class in the shuffled order
    shuffled = labels[order]
    for label in np.unique(shuffled):
        where = np.flatnonzero(shuffled == label)
        rank[where] = np.arange(where.size)
    return np.sort(order[np.argsort(rank, kind="stable")[:n]])


def _finish(x: np.ndarray, y: np.ndarray, lazy: bool, source: str):
    return (Images(x, source) if lazy else as_unit_interval(np.asarray(x), source)), np.asarray(y, np.int64)


def read_idx(path: str | os.PathLike, mmap: bool = False) -> np.ndarray | FileRows:
    """Read one IDX file (MNIST format), gzip-compressed or raw; ``mmap``: leave a raw file on disk
    and read its rows on demand (``FileRows``)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    mapped = mmap and path.suffix != ".gz"
    limit = memory.limit_bytes()
    try:
        with opener(path, "rb") as f:
            raw = f.read(4 + 4 * 255) if mapped else f.read(limit + 1)  # a gzip member may inflate without bound
        size = path.stat().st_size if mapped else len(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"{path}: cannot read IDX file ({err})") from err
    if size > limit:
        raise DatasetError(f"{path}: holds (or decompresses to) more than the memory limit of {limit / 2**20:.0f} MiB")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if size != expected:
        raise DatasetError(f"{path}: expected {expected} bytes for shape {shape}, found {size} (truncated?)")
    if mapped:
        return FileRows(path, header, dtype, shape)
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_mnist(directory: str | os.PathLike, split: str = "test", lazy: bool = False):
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

    images = read_idx(find("images"), mmap=lazy)
    labels = read_idx(find("labels"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(f"{directory}: images {images.shape} and labels {labels.shape} do not match")
    if images.dtype != np.uint8:
        raise DatasetError(f"{directory}: MNIST images must be uint8, found {images.dtype}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{directory}: MNIST labels must be integers, found {labels.dtype}")
    images = images.with_row_shape((1,) + images.shape[1:]) if isinstance(images, FileRows) else images[:, None]
    return _finish(images, labels, lazy, str(directory))


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


def _npz_rows(path: Path, name: str) -> FileRows | None:
    """One array of an uncompressed .npz (np.savez) left on disk, its rows read on demand; None if
    it is compressed (or in Fortran order)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the member's local header: name and extra field lengths at 26..30
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject:
            raise DatasetError(f"{path}: '{name}' holds Python objects, which a data file may not")
        offset = f.tell()
    if fortran or len(shape) == 0:
        return None
    return FileRows(path, offset, dtype, shape)


def _npz_array_bytes(path: Path, name: str) -> int:
    """What one array of an .npz takes once read, from its header (before anything is read)."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def load_npz(path: str | os.PathLike, lazy: bool = False):
    """A data file: ``.npz`` with ``x`` (N, C, H, W) and integer labels ``y`` (N,)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f.files or "y" not in f.files:
                raise DatasetError(f"{path}: needs arrays 'x' and 'y', found {sorted(f.files)}")
            x = _npz_rows(path, "x") if lazy else None
            memory.check(_npz_array_bytes(path, "y") + (0 if x is not None else _npz_array_bytes(path, "x")),
                         f"{path}: reading the arrays")
            y = f["y"]
            x = f["x"] if x is None else x
    except NPZ_READ_ERRORS as err:
        if isinstance(err, DatasetError):
            raise
        raise DatasetError(f"{path}: cannot read npz ({npz_error(err)})") from None
    if x.ndim != 4:
        raise DatasetError(f"{path}: x must have shape (N, C, H, W), found {x.shape}")
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{path}: y must be integers of shape ({len(x)},), found {y.dtype} {y.shape}")
    return _finish(x, y, lazy, str(path))


# ---------------------------------------------------------------------------------------------
# CIFAR-10/100: binary batches and python pickles (read without unrestricted pickle)

class _ArrayUnpickler:
    """Unpickles only what CIFAR's python batches hold: dicts, lists, strings and NumPy arrays."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    @classmethod
    def load(cls, raw: bytes, source: str):
        import pickle

        class Restricted(pickle.Unpickler):
            def find_class(self, module, name):
                if (module, name) not in cls.ALLOWED:
                    raise DatasetError(f"{source}: refers to '{module}.{name}', which a data file may not use")
                return super().find_class(module, name)

        try:
            return Restricted(io.BytesIO(raw), encoding="bytes").load()
        except DatasetError:
            raise
        except Exception as err:  # any malformed pickle: a clear error, nothing executed
            raise DatasetError(f"{source}: malformed CIFAR python batch ({type(err).__name__}: {err})") from None


def _plain_array(value, source: str, what: str) -> np.ndarray:
    """An unpickled array, accepted only with a plain numeric dtype: a structured dtype from a
    pickle can place its fields outside the element, and casting it would read stray memory."""
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return np.array(value, np.int64)
    if not isinstance(value, np.ndarray) or value.dtype.fields is not None or value.dtype.subdtype is not None \
            or value.dtype.hasobject or value.dtype.kind not in "uif":
        kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise DatasetError(f"{source}: CIFAR {what} must be a plain integer or float array, not {kind}")
    return value


def _cifar_python_batch(raw: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _ArrayUnpickler.load(raw, source)
    if not isinstance(batch, dict) or b"data" not in batch:
        raise DatasetError(f"{source}: not a CIFAR python batch (no b'data')")
    labels = batch.get(b"labels", batch.get(b"fine_labels"))
    data = _plain_array(batch[b"data"], source, "data")
    labels = None if labels is None else _plain_array(labels, source, "labels")
    if labels is None or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DatasetError(f"{source}: CIFAR batch has data {data.shape} and {0 if labels is None else len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).astype(np.uint8), np.asarray(labels, np.int64)


def _cifar_binary_batch(raw, source: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 records are 1 label byte + 3072 pixels; CIFAR-100 records 2 label bytes (coarse,
    fine). ``raw``: the bytes of the file."""
    for label_bytes in (1, 2):
        record = label_bytes + 3072
        if len(raw) % record == 0 and len(raw) and (label_bytes == 2 or (len(raw) % 3074 != 0)):
            rows = np.frombuffer(raw, np.uint8) if isinstance(raw, bytes) else raw
            rows = rows.reshape(-1, record)
            return rows[:, label_bytes:].reshape(-1, 3, 32, 32), rows[:, label_bytes - 1].astype(np.int64)
    raise DatasetError(f"{source}: {len(raw)} bytes is not a whole number of CIFAR records (truncated?)")


_CIFAR_SPLITS = {"train": ("data_batch", "train"), "test": ("test_batch", "test")}


def load_cifar(path: str | os.PathLike, split: str = "test", lazy: bool = False):
    """CIFAR-10/100 from the python or binary release: a directory or a .tar.gz as downloaded."""
    if split not in _CIFAR_SPLITS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    path = Path(path)
    members = _archive_members(path)
    wanted = sorted(name for name in members if Path(name).name.startswith(_CIFAR_SPLITS[split]))
    if not wanted:
        raise DatasetError(f"{path}: no CIFAR {split} batches found")
    xs, ys = [], []
    for name in wanted:
        raw, source = members[name](), f"{path}:{name}"
        x, y = _cifar_binary_batch(raw, source) if name.endswith(".bin") else _cifar_python_batch(raw, source)
        xs.append(x)
        ys.append(y)
    return _finish(np.concatenate(xs), np.concatenate(ys), lazy, str(path))


# ---------------------------------------------------------------------------------------------
# image folders and archives: class/*.png|jpg

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _check_members(path: Path, sizes: list[int]) -> None:
    """The declared sizes of an archive's members, checked before any is read (zip and tar members
    never yield more than they declare)."""
    memory.check(sum(sizes), f"{path}: unpacking {len(sizes)} archive members")


def _reader(path: Path, name: str, read):
    """A function reading one member, with corrupt or unsupported compression as a DatasetError."""
    import tarfile

    def read_member() -> bytes:
        try:
            return read(name)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError, NotImplementedError) as err:
            raise DatasetError(f"{path}: cannot read member '{name}' ({type(err).__name__}: {err})") from None

    return read_member


def _archive_members(path: Path) -> dict:
    """name -> a function returning the bytes, for a directory, a .zip or a .tar(.gz)."""
    import tarfile

    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes for p in sorted(path.rglob("*")) if p.is_file()}
    try:
        if zipfile.is_zipfile(path):
            archive = zipfile.ZipFile(path)
            infos = [i for i in archive.infolist() if not i.filename.endswith("/")]
            _check_members(path, [i.file_size for i in infos])
            return {i.filename: _reader(path, i.filename, archive.read) for i in infos}
        if tarfile.is_tarfile(path):
            tar = tarfile.open(path)
            members = [m for m in tar.getmembers() if m.isfile()]
            _check_members(path, [m.size for m in members])
            return {m.name: _reader(path, m.name, lambda name, m=m: tar.extractfile(m).read()) for m in members}
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as err:
        raise DatasetError(f"{path}: cannot read archive ({err})") from None
    raise DatasetError(f"{path}: not a directory, zip or tar archive")


def load_image_folder(path: str | os.PathLike, split: str | None = None, lazy: bool = False):
    """Images in ``[split/]class/*.png|jpg`` (a directory or archive); labels are the sorted class
    names' indices. All images must have the same size; needs Pillow."""
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError("reading image folders needs Pillow: pip install pillow") from None
    path = Path(path)
    members = _archive_members(path)
    images = {}
    for name in members:
        parts = Path(name).parts
        if name.lower().endswith(_IMAGE_SUFFIXES) and len(parts) >= 2:
            if split is not None and (len(parts) < 3 or parts[-3] != split):
                continue
            images[name] = parts[-2]
    if not images:
        raise DatasetError(f"{path}: no class/*.png|jpg images" + (f" under '{split}/'" if split else ""))
    classes = sorted(set(images.values()))
    xs, ys, shape = [], [], None
    for name, label in sorted(images.items()):
        try:
            with Image.open(io.BytesIO(members[name]())) as img:
                pixels = np.asarray(img.convert("L" if img.mode in ("L", "1", "I;16") else "RGB"), np.uint8)
        except Exception as err:  # Pillow raises many types for broken files
            raise DatasetError(f"{path}:{name}: cannot decode image ({err})") from None
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        if shape is not None and pixels.shape != shape:
            raise DatasetError(f"{path}:{name}: image shape {pixels.shape} differs from {shape}")
        shape = pixels.shape
        xs.append(pixels)
        ys.append(classes.index(label))
    return _finish(np.stack(xs), np.array(ys), lazy, str(path))


def _looks_like_cifar(names: list[str]) -> bool:
    """CIFAR-10 batches (data_batch_*, test_batch), or CIFAR-100's train/test files beside its
    'meta' file (a folder that merely holds a file called 'test' is not CIFAR)."""
    if any(Path(n).name.startswith(("data_batch", "test_batch")) for n in names):
        return True
    folders_with_meta = {Path(n).parent for n in names if Path(n).name == "meta"}
    return any(Path(n).name in ("train", "test") and Path(n).parent in folders_with_meta for n in names)


def load_dataset(path: str | os.PathLike, split: str = "test", lazy: bool = False):
    """Any supported data set, recognised by its layout: ``.npz``; a CIFAR ``.bin`` batch; MNIST or
    Fashion-MNIST IDX files; CIFAR-10/100 batches (python or binary) or ``[split/]class/image``
    folders, each as a directory or an archive (.zip, .tar, .tar.gz). ``lazy``: ``x`` as
    ``Images`` (left on disk where possible, scaled per slice), see the module docstring."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory")
    if path.suffix == ".npz":
        return load_npz(path, lazy)
    if path.suffix == ".bin":
        raw = path.read_bytes()
        x, y = _cifar_binary_batch(raw, str(path))
        if lazy and len(x):  # leave the pixels on disk, read by rows of records on demand
            label_bytes = len(raw) // len(x) - 3072
            x = FileRows(path, label_bytes, np.uint8, x.shape, label_bytes + 3072)
        return _finish(x, y, lazy, str(path))
    if path.is_dir() and any("-idx" in p.name for p in path.iterdir()):
        return load_mnist(path, split, lazy)
    names = list(_archive_members(path))
    if _looks_like_cifar(names):
        return load_cifar(path, split, lazy)
    has_split = any(Path(n).parts[0] == split for n in names)
    return load_image_folder(path, split if has_split else None, lazy)
