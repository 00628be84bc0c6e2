"""Optional dependencies (torch, onnx, nir): imported when a loader needs them, with the install hint."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ImportError saying which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{purpose} needs {module}: pip install {module} (or, in the eventsnn checkout, "
                          f"pip install -e '.[{extra}]')") from err
