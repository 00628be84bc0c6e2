"""Matrix products on the run's own threads.

A run stage by stage alternates BLAS products with the engine's kernels. Left to itself, OpenBLAS
runs every product on all cores and its threads then keep spinning for a while, competing with the
kernels that follow (on 2 cores, VGG-16 and ResNet-20 ran 1.62x and 1.98x slower stage by stage
than with BLAS held: ``benchmarks/bench_lockstep_parts.py``). So, while ``single_threaded`` holds,
BLAS runs one thread and ``matmul`` splits each product over the run's ``threads`` itself (or each
thread multiplies its own rows, as ``winograd.convolve`` does): no thread spins, and a run uses the
threads it was given. The setting is the process's: other threads' products run on one thread too meanwhile.
Where the BLAS library cannot be told (not OpenBLAS, or no ``/proc/self/maps`` to find it by),
nothing changes: products use BLAS's own threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from collections.abc import Iterator

import numpy as np

from .loop import in_threads

_LOCK = threading.Lock()
_STATE = {"held": 0, "before": 1}  # runs inside single_threaded; BLAS's thread count before the first


@functools.cache
def _openblas_controls() -> tuple[ctypes._CFuncPtr, ctypes._CFuncPtr] | None:
    """(get_num_threads, set_num_threads) of the OpenBLAS this process loaded (NumPy's wheels name
    theirs scipy_openblas, 64-bit interface), or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", "_64_", ""):
                get = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
                set_ = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    return get, set_
    return None


@contextlib.contextmanager
def single_threaded() -> Iterator[bool]:
    """BLAS on one thread while this holds (nested and concurrent runs included); yields whether it
    could be told so."""
    controls = _openblas_controls()
    if controls is None:
        yield False
        return
    get, set_ = controls
    with _LOCK:
        if _STATE["held"] == 0:
            _STATE["before"] = get()
            set_(1)
        _STATE["held"] += 1
    try:
        yield True
    finally:
        with _LOCK:
            _STATE["held"] -= 1
            if _STATE["held"] == 0:
                set_(_STATE["before"])


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, n_threads: int = 1) -> np.ndarray:
    """a @ b into out; inside ``single_threaded``, split over n_threads along a's first axis (and
    b's, for stacks of matrices)."""
    if out is None:
        out = np.empty(a.shape[:-1] + b.shape[-1:], np.result_type(a, b))
    if _STATE["held"] == 0 or n_threads <= 1 or len(a) < 2:
        return np.matmul(a, b, out=out)
    stacked = a.ndim == 3
    in_threads(lambda lo, hi: np.matmul(a[lo:hi], b[lo:hi] if stacked else b, out=out[lo:hi]), len(a), n_threads)
    return out
