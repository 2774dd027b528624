"""Checks that run before torch is imported, where a failure could not be caught afterwards.

Under a low address-space limit (``ulimit -v``), importing torch can fail in
ways Python cannot catch: a C++ ``std::bad_alloc`` in a static initialiser
aborts the process, and OpenBLAS exits after failing to allocate its
buffers. Which limit is too low depends on the build (a CUDA build maps
gigabytes of libraries). So where a limit is set, torch is first imported in
a child process under the same limit; if that fails, the command stops with
one line instead of a crash.
"""

from __future__ import annotations

import subprocess
import sys

from .errors import ModularityError

__all__ = ["check_torch_starts"]

_PROBE = "import torch, torch.nn; torch.zeros(1)"
_checked: list[bool] = []


def _address_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def check_torch_starts() -> None:
    """Refuse with one line when torch cannot even be imported under this process's memory limit.

    Does nothing when torch is already imported or no address-space limit is
    set (the usual case); otherwise costs one import of torch in a child
    process (a few seconds), once per process.

    Raises
    ------
    ModularityError
        Naming the limit and what to do.
    """
    if "torch" in sys.modules or _checked:
        return
    limit = _address_limit()
    if limit is None:
        return
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:  # cannot even start a process: memory or fork limits
        raise ModularityError(f"cannot start under the memory limit of {limit / 2**30:.1f} GiB (ulimit -v): "
                              f"{type(exc).__name__}; raise the limit") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
        detail = lines[-1].strip()[:160] if lines else f"exit status {proc.returncode}"
        raise ModularityError(f"torch cannot start under the memory limit of {limit / 2**30:.1f} GiB (ulimit -v; "
                              f"{detail}); raise the limit (this torch build needs more address space)")
    _checked.append(True)
