"""Progress display for long runs, on stderr: on a terminal one line redrawn in place; otherwise
(a batch job, a log file) a plain line every ``LOG_EVERY`` seconds, and one at the end of a run
that took that long."""

from __future__ import annotations

import sys
import time
from typing import Callable

Progress = Callable[[int, int], None]

LOG_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


def terminal_progress(label: str, stream=None) -> Progress:
    """A callback ``(done, total)`` that shows how far a run got and how long is left."""
    stream = stream or sys.stderr
    start = time.perf_counter()
    last_line = [start]

    def status(done: int, total: int) -> str:
        elapsed = time.perf_counter() - start
        eta = elapsed / done * (total - done) if done else 0.0
        return (f"{label}: {done}/{total} ({100 * done / max(total, 1):3.0f}%) "
                f"{elapsed:5.1f} s elapsed, ~{eta:4.0f} s left")

    def redraw(done: int, total: int) -> None:
        stream.write("\r" + status(done, total) + ("\n" if done >= total else ""))
        stream.flush()

    def log(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last_line[0] >= LOG_EVERY or (done >= total and last_line[0] > start):
            last_line[0] = now
            stream.write(status(done, total) + "\n")
            stream.flush()

    return redraw if stream.isatty() else log
