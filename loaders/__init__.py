"""Loaders (installed as ``eventsnn.loaders``): checkpoints, architecture specs and datasets into the IR."""

from __future__ import annotations

import json
import os
from pathlib import Path

from eventsnn.ir import Network
from eventsnn.spec import SpecError, network_from_spec

from .checkpoint import CheckpointError, load_checkpoint
from .datasets import DatasetError, load_cifar, load_dataset, load_image_folder, load_mnist, load_npz, read_idx
from .nir_graph import NirError, from_nir, load_nir, save_nir, to_nir
from .onnx_export import save_onnx, to_onnx
from .onnx_model import OnnxError, load_onnx
from .torch_module import TraceError, from_torch


def load_arch(path: str | os.PathLike) -> dict:
    """Read an architecture spec (JSON)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SpecError(f"{path}: cannot read architecture spec ({err})") from None


def load_network(checkpoint: str | os.PathLike, arch: str | os.PathLike | None = None) -> Network:
    """The IR network of an ``.onnx`` file, or of a state_dict checkpoint (``.pt`` or ``.npz``)
    described by an architecture spec."""
    if Path(checkpoint).suffix.lower() == ".onnx":
        if arch is not None:
            raise SpecError("an ONNX file describes its own architecture; do not pass an architecture spec")
        return load_onnx(checkpoint)
    if arch is None:
        raise SpecError(f"{checkpoint}: a state_dict checkpoint needs an architecture spec (JSON)")
    return network_from_spec(load_arch(arch), load_checkpoint(checkpoint))


__all__ = ["CheckpointError", "DatasetError", "NirError", "OnnxError", "SpecError", "TraceError", "from_nir",
           "from_torch", "load_arch", "load_checkpoint", "load_cifar", "load_dataset", "load_image_folder", "load_mnist",
           "load_network", "load_nir", "load_npz", "load_onnx", "read_idx", "save_nir", "save_onnx", "to_nir", "to_onnx"]
