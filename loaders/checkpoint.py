"""Read PyTorch ``state_dict`` checkpoints without torch, and ``.npz`` files of named arrays.

A ``.pt`` file written by ``torch.save`` (zip format, PyTorch >= 1.6) holds a pickle that rebuilds
tensors from raw storages. We unpickle it with a restricted unpickler that resolves only the
handful of globals a state_dict needs (tensor and parameter rebuilders, typed storages,
OrderedDict) to our own NumPy stand-ins and refuses every other global with an error, before
anything is called. Nothing from the file is ever executed.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from eventsnn import memory
from eventsnn.model import npz_error


class CheckpointError(ValueError):
    """A checkpoint is malformed, truncated, or asks for something a weights file must not."""


_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands in for torch.FloatStorage and the like; immutable, and made fresh for every load, so
    nothing a pickle does to it can reach another checkpoint."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", _STORAGE_DTYPES[name])

    def __setattr__(self, name, value):
        raise CheckpointError("checkpoint tries to modify a storage type")


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_ignored) -> np.ndarray:
    if not isinstance(storage, np.ndarray):
        raise CheckpointError("tensor rebuilt from something that is not a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
        raise CheckpointError(f"tensor with invalid size {size} / stride {stride}")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise CheckpointError(f"tensor reaches element {last} of a storage of {storage.size} (truncated file?)")
    view = np.lib.stride_tricks.as_strided(storage[offset:], size, tuple(s * storage.itemsize for s in stride))
    return np.array(view)


def _allowed_for_one_load() -> dict[tuple[str, str], object]:
    """What a checkpoint's pickle may name, as fresh objects for this load only (a pickle can set
    attributes on what it names; fresh stand-ins keep that from reaching any other load)."""
    tensor_type = type("Tensor", (), {})  # torch.Tensor / torch.nn.Parameter

    def rebuild_tensor(*args):
        return _rebuild_tensor(*args)

    def rebuild_parameter(data, *_ignored):
        return data

    def rebuild_from_type(func, new_type, args, state):
        if func is not rebuild_tensor or new_type is not tensor_type:
            raise CheckpointError("checkpoint rebuilds a tensor subclass, which a weights file does not need")
        return rebuild_tensor(*args)

    allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,  # a built-in type: its attributes cannot be set
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type,
        ("torch", "Tensor"): tensor_type,
        ("torch.nn.parameter", "Parameter"): tensor_type,
    }
    allowed.update({("torch", name): _StorageType(name) for name in _STORAGE_DTYPES})
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, read_storage):
        super().__init__(file)
        self._read_storage = read_storage
        self._storages: dict[str, np.ndarray] = {}
        self._allowed = _allowed_for_one_load()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise CheckpointError(f"checkpoint refers to '{module}.{name}', which a weights file may not use; "
                                  "refused without running it (only tensors and dicts are allowed)") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"unsupported persistent id in checkpoint: {pid!r:.80}")
        _, storage_type, key, _location, numel = pid
        if key not in self._storages:
            self._storages[key] = self._read_storage(str(key), storage_type.dtype, int(numel))
        return self._storages[key]


def _decode(raw: bytes, dtype, numel: int, big_endian: bool, where: str) -> np.ndarray:
    if dtype == "bfloat16":  # the upper half of a float32
        itemsize = 2
        data = np.frombuffer(raw, ">u2" if big_endian else "<u2")
    else:
        dt = np.dtype(dtype).newbyteorder(">" if big_endian else "<")
        itemsize = dt.itemsize
        data = np.frombuffer(raw, dt)
    if len(raw) != numel * itemsize:
        raise CheckpointError(f"{where}: storage holds {len(raw)} bytes, expected {numel * itemsize} (truncated file?)")
    if dtype == "bfloat16":
        return (data.astype(np.uint32) << 16).view(np.float32)
    return data.astype(np.dtype(dtype), copy=False)


def _load_torch_zip(path: Path) -> object:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            starts_like_zip = f.read(4) == b"PK\x03\x04"
        if starts_like_zip:  # a zip whose end (the central directory) is missing or damaged
            raise CheckpointError(f"{path}: damaged or truncated checkpoint (its zip directory is unreadable)") from None
        raise CheckpointError(f"{path}: not a zip-format PyTorch checkpoint; legacy (pre-1.6) files are not "
                              "supported, re-save with a current torch.save") from None
    with archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        big_endian = False
        if prefix + "byteorder" in names:
            big_endian = archive.read(prefix + "byteorder").strip() == b"big"

        def read_storage(key: str, dtype, numel: int) -> np.ndarray:
            member = f"{prefix}data/{key}"
            if member not in names:
                raise CheckpointError(f"{path}: storage '{member}' is missing (truncated file?)")
            memory.check(archive.getinfo(member).file_size, f"{path}: reading storage '{member}'")
            return _decode(archive.read(member), dtype, numel, big_endian, f"{path}:{member}")

        try:
            memory.check(archive.getinfo(pickles[0]).file_size, f"{path}: reading {pickles[0]}")
            return _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), read_storage).load()
        except memory.MemoryLimitError:
            raise
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from None
        except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, TypeError, ValueError, KeyError,
                AttributeError, IndexError, zlib.error, NotImplementedError, OverflowError) as err:
            raise CheckpointError(f"{path}: malformed checkpoint ({type(err).__name__}: {err})") from None


def _as_state_dict(obj: object, path: Path) -> dict[str, np.ndarray]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state_dict (a dict of tensors), found {type(obj).__name__}")
    params = {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if not params:
        raise CheckpointError(f"{path}: the checkpoint holds no tensors")
    return params


def load_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Named parameter arrays from a ``.pt``/``.pth`` state_dict or an ``.npz`` of named arrays."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise CheckpointError(f"{path}: cannot read npz ({npz_error(err)})") from None
    return _as_state_dict(_load_torch_zip(path), path)
