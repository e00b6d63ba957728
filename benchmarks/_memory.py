"""Resident-memory readings shared by the benchmarks (Linux ``/proc``; None / False elsewhere)."""

from __future__ import annotations


def status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``"VmRSS"``: now, ``"VmHWM"``: peak); None when unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_kib(reset: bool) -> int:
    """The peak RSS in KiB since :func:`reset_peak_rss` when it worked (``reset``), else the lifetime
    peak from ``getrusage`` (it includes imports: an over-estimate of the floor)."""
    if reset:
        hwm = status_kib("VmHWM")
        if hwm is not None:
            return hwm
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
