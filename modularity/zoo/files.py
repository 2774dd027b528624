"""Checks of a weights or model file that need no torch: it exists, can be read, and has a known format.

The command line runs them before importing torch (:mod:`modularity.preflight`),
and :func:`~modularity.zoo.checkpoints.load_state_dict_file` runs the same ones
before loading, so both say the same thing about the same file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import ModularityError

__all__ = ["ACCEPTED", "sha256_file", "check_readable_file", "sniff_format", "check_weights_file", "first_line"]

ACCEPTED = ("expected a state dict saved with torch.save(model.state_dict(), 'weights.pth') "
            "or a .safetensors file")


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_readable_file(path: str | Path, what: str = "weights file") -> Path:
    """Check that ``path`` is an existing, readable, non-empty regular file.

    Parameters
    ----------
    path : str or Path
    what : str
        How the message names the file (``"weights file"``, ``"ONNX file"``).

    Returns
    -------
    Path

    Raises
    ------
    ModularityError
        One line: not found, a folder, not a regular file, unreadable, or empty.
    """
    path = Path(path)
    try:
        exists, is_dir, is_file = path.exists(), path.is_dir(), path.is_file()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, ...
        raise ModularityError(f"{what} {str(path)[:80]!r} cannot be opened "
                              f"({getattr(exc, 'strerror', None) or first_line(exc)})") from None
    if not exists:
        raise ModularityError(f"{what} not found: {path}")
    if is_dir:
        raise ModularityError(f"{what} {path} is a folder, not a file")
    if not is_file:
        raise ModularityError(f"{what} {path} is not a regular file")
    try:
        with open(path, "rb") as fh:
            first = fh.read(1)
    except OSError as exc:
        raise ModularityError(f"cannot read {what} {path} ({exc.strerror or type(exc).__name__})") from None
    if not first:
        raise ModularityError(f"{what} {path} is empty (0 bytes)")
    return path


def sniff_format(path: str | Path) -> str:
    """Tell a weights file's format from its first bytes.

    Returns
    -------
    str
        ``"zip"`` (PyTorch >= 1.6 checkpoint, or any zip), ``"pickle"`` (the
        legacy PyTorch format, a pickle stream), ``"tar"`` (PyTorch < 0.4),
        ``"safetensors"``, or ``"unknown"``.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if head[257:262] == b"ustar":
        return "tar"
    if len(head) >= 9 and head[8:9] == b"{":
        n = int.from_bytes(head[:8], "little")
        if 0 < n <= size - 8:
            return "safetensors"
    if path.suffix == ".safetensors" and len(head) >= 8:
        return "safetensors"  # let the safetensors reader say what is wrong with it
    return "unknown"


def check_weights_file(path: str | Path) -> tuple[Path, str]:
    """Check that ``path`` is a readable weights file of a format that can be loaded safely.

    Returns
    -------
    path : Path
    format : str
        ``"zip"``, ``"pickle"`` or ``"safetensors"`` (see :func:`sniff_format`).

    Raises
    ------
    ModularityError
        As :func:`check_readable_file`, or for the pre-0.4 tar format and for
        a file that is no checkpoint at all (naming its first bytes).
    """
    path = check_readable_file(path)
    try:
        fmt = sniff_format(path)
    except OSError as exc:
        raise ModularityError(f"cannot read weights file {path} ({exc.strerror or type(exc).__name__})") from None
    if fmt == "tar":
        raise ModularityError(f"{path} is in the tar format of PyTorch < 0.4, which cannot be loaded safely; "
                              f"re-save it with a current PyTorch; {ACCEPTED}")
    if fmt == "unknown":
        with open(path, "rb") as fh:
            head = fh.read(8)
        raise ModularityError(f"{path} is not a PyTorch checkpoint (zip or legacy format) nor a safetensors file "
                              f"(it starts with bytes {head.hex(' ')}); {ACCEPTED}")
    return path, fmt


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name if it has none."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
