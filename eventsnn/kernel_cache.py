"""Numba's on-disk cache of the compiled kernels, used when it can be and repaired when it is damaged.

Every kernel is compiled with ``cache=CACHE``: True when Numba finds a writable place for its cache
(beside the package, or ``NUMBA_CACHE_DIR``, or the user's cache folder), else False, so that a
read-only install without a writable home still runs (compiling in each process). A damaged cache
file (a truncated or overwritten index or data file) makes Numba fail with an unpickling error on
its first use; ``repairing`` empties the kernels' cache indexes once and recompiles.
"""

from __future__ import annotations

import functools
import pickle
import sys
import warnings
from typing import Callable, TypeVar

import numba

T = TypeVar("T")


def _probe() -> int:  # a module-level function of this package: its cache goes where the kernels' go
    return 0


def cache_available() -> bool:
    """Whether Numba has a writable cache location for this package's kernels."""
    try:
        numba.njit(cache=True)(_probe)  # looks for a writable cache location when decorated
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return False
    return True


CACHE = cache_available()
DAMAGE = (pickle.UnpicklingError, EOFError)  # what reading an overwritten or truncated cache file raises


def kernels() -> list:
    """The compiled kernels (Numba dispatchers) of the eventsnn modules loaded so far."""
    found = []
    for name, module in list(sys.modules.items()):
        if name.startswith("eventsnn.") and module is not None:
            found += [v for v in vars(module).values() if isinstance(v, numba.core.dispatcher.Dispatcher)]
    return found


def flush_caches() -> set[str]:
    """Empty the cache index of every kernel (their next use compiles and saves anew); the folders."""
    folders = set()
    for kernel in kernels():
        cache = getattr(kernel, "_cache", None)
        if cache is not None and getattr(cache, "cache_path", None):
            cache.flush()
            folders.add(cache.cache_path)
    return folders


def repairing(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` (which runs kernels), retried once after emptying the kernel caches when a
    damaged cache file made Numba fail."""
    @functools.wraps(function)
    def run(*args, **kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except DAMAGE as err:
            if not CACHE:
                raise
            folders = flush_caches()
            warnings.warn(f"the compiled-kernel cache in {', '.join(sorted(folders)) or 'Numba cache'} was damaged "
                          f"({type(err).__name__}: {err}); emptied it and compiling again", RuntimeWarning, stacklevel=2)
            return function(*args, **kwargs)
    return run
