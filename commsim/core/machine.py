"""Facts about this machine that the bounds checked before work compare with (standard library only,
so that processes such as the worker reaper can import it without torch)."""
from __future__ import annotations


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable`` of ``/proc/meminfo``), or ``None``
    where it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
