"""The engine's per-phase profile (``simulate(..., profile=True)``): cycles per stage and phase."""

from __future__ import annotations

from numba import njit

from ..kernel_cache import CACHE
from .intrinsics import _ticks

# the phases of a step, in the order the profile reports them
PHASES = ("input", "delivery", "fire", "compaction", "gate", "count", "readout")
INPUT_PHASE, DELIVERY, FIRE, COMPACTION, GATE_PHASE, COUNT, READOUT = range(len(PHASES))


@njit(cache=CACHE, inline="always")
def _lap(ticks, stage, phase, since, profiling):
    """Charge the ticks since ``since`` to (stage, phase) and return now; a no-op unless profiling."""
    if not profiling:
        return since
    now = _ticks()
    ticks[stage, phase] += now - since
    return now


@njit(cache=CACHE)
def ticks_now() -> int:
    """The cycle counter, callable from Python (to convert ticks into seconds)."""
    return _ticks()
