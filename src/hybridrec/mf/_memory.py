"""Refusing, before allocating anything, a training run that cannot fit in memory."""

from __future__ import annotations

from pathlib import Path

from hybridrec._errors import DataError

__all__ = ["available_memory", "check_memory"]


def available_memory() -> int | None:
    """Bytes of memory this process may still use (MemAvailable, capped by a cgroup v2
    limit), or None when the system does not say."""
    available: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit.isdigit():
            free = int(limit) - int((cgroup / "memory.current").read_text().strip())
            available = free if available is None else min(available, free)
    except (OSError, ValueError):
        pass
    return available


def check_memory(needed: int, num_factors: int, n_users: int, n_items: int) -> None:
    """Refuse to start training that cannot fit in memory (before allocating anything)."""
    available = available_memory()
    if available is not None and needed > available:
        raise DataError(
            f"training with num_factors={num_factors} on {n_users} users and {n_items} items "
            f"needs about {_size(needed)} of memory (factor matrices plus one "
            f"(num_factors+1)-square system per thread) but only {_size(available)} is "
            "available: lower num_factors"
        )


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"
