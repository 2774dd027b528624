"""What machine a benchmark ran on, in words, for the reports' headers."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

__all__ = ["cpu_name"]


def cpu_name(fallback: str | None = None) -> str:
    """The CPU's model name from ``/proc/cpuinfo``; else ``fallback`` (default: what :mod:`platform` says)."""
    with contextlib.suppress(OSError, StopIteration):
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    return fallback if fallback is not None else (platform.processor() or platform.machine())
