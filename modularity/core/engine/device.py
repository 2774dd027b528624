"""Which device the engine runs on, and how many CPU threads it may use."""

from __future__ import annotations

import os

import torch

from ...errors import ModularityError
from ..defaults import DEVICES

__all__ = ["DEVICES", "resolve_device", "usable_cores", "threads"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA where torch sees a GPU, else the CPU; ``"cuda"`` without one is an error.

    Raises
    ------
    ModularityError
        For an unknown name, or ``"cuda"`` on a machine without CUDA.
    """
    if isinstance(device, torch.device):
        name = device.type
    else:
        name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ModularityError(f"unknown device '{device}'; choose one of {', '.join(DEVICES)}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModularityError(f"device '{device}' asked for, but torch sees no CUDA GPU here; use --device cpu "
                              "or auto")
    return torch.device(name)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


class threads:
    """Run torch and BLAS on ``n`` threads inside the block, restoring the settings after.

    The analysis runs single-threaded by default (many small decompositions);
    the engine's big steps (a 4096-wide profile's products, a shuffle of 10^8
    weights) gain from the cores of one process.
    """

    def __init__(self, n: int) -> None:
        self.n = max(1, int(n))

    def __enter__(self) -> threads:
        from threadpoolctl import threadpool_limits

        self._torch = torch.get_num_threads()
        self._limits = threadpool_limits(self.n)
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc: object) -> None:
        self._limits.restore_original_limits()
        torch.set_num_threads(self._torch)
