"""How sizes and durations read to people: one definition for the CLIs, logs and the dashboard.

Sizes are IEC (1 KiB = 1024 B, as qemu-img and the vSphere API count capacities); durations
are seconds in, a short ``1h 5m`` style out.
"""

from __future__ import annotations


def human_size(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; whole bytes below 1 KiB; TiB is the largest unit."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"


def human_duration(seconds: float | None) -> str:
    """``None`` -> ``"-"``; under a minute with a tenth (``"4.2s"``), then ``"3m 5s"``, ``"2h 1m"``, ``"1d 3h"``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"
