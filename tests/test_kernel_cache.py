"""The compiled-kernel cache: used where it can be, repaired when damaged."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from eventsnn import kernel_cache


def test_without_a_writable_cache_location_the_kernels_are_compiled_uncached():
    """Regression: with no writable cache location every command, even --help, died at import."""
    code = ("import numba.core.caching as c; c.CacheImpl._locator_classes = []; "
            "from eventsnn import kernel_cache; import eventsnn.engine; from eventsnn.cli import main; "
            "assert kernel_cache.CACHE is False; print('uncached')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "uncached" in done.stdout, done.stderr
    assert kernel_cache.cache_available()  # here it is writable


def test_a_damaged_cache_file_is_emptied_once_and_the_kernels_recompiled(monkeypatch):
    """Regression: one overwritten .nbi file made run, demo and warmup fail for good (UnpicklingError, rc 1)."""
    flushed, calls = [], []
    monkeypatch.setattr(kernel_cache, "flush_caches", lambda: flushed.append(1) or {"/cache"})
    monkeypatch.setattr(kernel_cache, "CACHE", True)

    @kernel_cache.repairing
    def run_kernels():
        calls.append(1)
        if len(calls) == 1:
            raise pickle.UnpicklingError("invalid load key, '#'.")
        return "ran"

    with pytest.warns(RuntimeWarning, match=r"cache in /cache was damaged .*compiling again"):
        assert run_kernels() == "ran"
    assert (len(calls), len(flushed)) == (2, 1)

    @kernel_cache.repairing
    def bad_input():
        raise ValueError("steps must be a positive integer")

    with pytest.raises(ValueError):
        bad_input()
    assert len(flushed) == 1  # a user's error does not cost a recompilation


def test_the_cache_indexes_of_the_loaded_kernels_can_be_emptied():
    import eventsnn.engine  # noqa: F401  (loads the kernel modules)

    names = {kernel.py_func.__name__ for kernel in kernel_cache.kernels()}
    assert {"_run_chunk", "_deliver", "_fire_pass", "step_key"} <= names
