"""Progress display for long runs: one line on stderr, redrawn in place, only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import Callable

Progress = Callable[[int, int], None]


def terminal_progress(label: str, stream=None) -> Progress | None:
    """A callback ``(done, total)`` that redraws a progress line, or None when not on a terminal."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (total - done) if done else 0.0
        end = "\n" if done >= total else ""
        stream.write(f"\r{label}: {done}/{total} ({100 * done / max(total, 1):3.0f}%) "
                     f"{elapsed:5.1f} s elapsed, ~{eta:4.0f} s left{end}")
        stream.flush()

    return show
