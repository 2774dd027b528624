"""Writing output folders all at once: a folder is either complete or untouched."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import ModularityError

__all__ = ["atomic_output_dir"]


@contextlib.contextmanager
def atomic_output_dir(out: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``out`` and move it into place on success.

    An existing ``out`` is replaced only after everything was written; if the
    body raises, the temporary folder is removed and ``out`` is left as it was.

    Raises
    ------
    ModularityError
        If ``out`` exists and is not a folder, or its parent cannot be created.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ModularityError(f"--out {out} exists and is not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModularityError(f"cannot create the folder for --out {out} ({exc.strerror})") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result should look like any new folder
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{tmp.name[-12:]}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
