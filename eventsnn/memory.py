"""Memory budgets: what a step will allocate is estimated and checked before it allocates.

The limit is a fraction of the memory available when eventsnn starts (``DEFAULT_FRACTION``), or
``EVENTSNN_MEMORY_LIMIT_MIB`` from the environment (the CLI's ``--memory-limit-mib`` sets it).
Estimates are upper bounds of the peak, measured where building takes more than the result
(an unrolled CSR peaks at about 45-49 bytes per synapse while it is built, 8 once built).
"""

from __future__ import annotations

import os

ENV = "EVENTSNN_MEMORY_LIMIT_MIB"
DEFAULT_FRACTION = 0.8
CSR_BUILD_BYTES_PER_SYNAPSE = 52  # measured 44-49 (conv, avg-pool, max-pool windows), with headroom
CSR_BUILD_BYTES_PER_ROW = 16


class MemoryLimitError(ValueError):
    """A step would need more memory than the limit allows."""


def available_bytes() -> int:
    """Memory the system can give now (MemAvailable on Linux; else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def limit_bytes() -> int:
    value = os.environ.get(ENV)
    if value is not None:
        try:
            mib = float(value)
        except ValueError:
            raise MemoryLimitError(f"{ENV} must be a number of MiB, not {value!r}") from None
        if not mib > 0:
            raise MemoryLimitError(f"{ENV} must be positive, not {value!r}")
        return int(mib * 2**20)
    return int(DEFAULT_FRACTION * available_bytes())


def _mib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check(nbytes: float, what: str) -> None:
    """Refuse ``what`` when it would need more than the limit, saying how much it would need."""
    limit = limit_bytes()
    if nbytes > limit:
        raise MemoryLimitError(f"{what} would need about {_mib(nbytes)}, more than the memory limit of {_mib(limit)} "
                               f"(set {ENV} or --memory-limit-mib to change it)")


def csr_build_bytes(synapses: int, rows: int) -> int:
    """The peak while an unrolled CSR of this many synapses and rows is built."""
    return CSR_BUILD_BYTES_PER_SYNAPSE * synapses + CSR_BUILD_BYTES_PER_ROW * (rows + 1)


def csr_bytes(synapses: int, rows: int) -> int:
    """What an unrolled CSR of this many synapses and rows keeps once built (int32 column and float32
    weight per synapse, int64 row pointers)."""
    return 8 * synapses + 8 * (rows + 1)
