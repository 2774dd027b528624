"""Writing output folders all at once, and never over anything the tool did not write.

A results folder carries a marker file, :data:`MARKER`, that the tool writes
when the folder is complete. ``--out`` may replace only

* a folder that does not exist yet,
* an empty folder, or
* a folder holding that marker (a results folder this tool wrote).

Anything else (a folder with a user's files, the current folder or one of its
ancestors, a file) is refused by :func:`check_output_dir` before any work
starts. The new content is written to a temporary folder beside the target,
named ``.<name>.modularity-partial-<pid>-<random>`` (it has no marker and its
name says what it is, so no command takes it for results), and renamed into
place only when complete. Temporary folders whose process is gone (a run
killed with SIGKILL or by a power cut) are removed by the next run writing to
the same target.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import ModularityError

__all__ = ["MARKER", "PARTIAL_TAG", "atomic_output_dir", "check_output_dir", "is_results_dir", "write_marker",
           "remove_stale_partials"]

MARKER = ".modularity-results"
PARTIAL_TAG = ".modularity-partial-"
_OLD_TAG = ".modularity-old-"
_STALE = re.compile(r"\.modularity-(?:partial|old)-(\d+)-")


def is_results_dir(path: str | Path) -> bool:
    """True when ``path`` is a folder holding the marker of a completed results folder."""
    return (Path(path) / MARKER).is_file()


def write_marker(folder: str | Path, kind: str = "analyze") -> Path:
    """Write the marker that says ``folder`` is a complete results folder of this tool."""
    from . import __version__

    path = Path(folder) / MARKER
    path.write_text(json.dumps({"tool": "modularity", "version": __version__, "kind": kind}) + "\n",
                    encoding="utf-8")
    return path


def check_output_dir(out: str | Path, option: str = "--out") -> Path:
    """Check that ``out`` may receive a results folder, before any work starts.

    Returns the absolute path. Raises :class:`ModularityError` (one line naming
    the reason and what would be accepted) when ``out`` is a file, the current
    folder or one of its ancestors, a non-empty folder without the results
    marker, or a place whose parent cannot be created or written.
    """
    try:
        cwd = Path(os.path.abspath(os.getcwd()))
    except FileNotFoundError:
        raise ModularityError("the current folder no longer exists; cd into an existing folder first") from None
    path = Path(os.path.abspath(Path(out).expanduser()))
    what = f"{option} {out}"
    if path == cwd or path in cwd.parents:
        raise ModularityError(f"{what} is the current folder or one of its ancestors, which modularity will not "
                              "replace; name a new folder such as results/run1")
    if path.exists() or path.is_symlink():
        if path.is_symlink() or not path.is_dir():
            raise ModularityError(f"{what} exists and is not a folder; name a new folder, an empty one, or a "
                                  "results folder modularity wrote")
        try:
            empty = not any(path.iterdir())
        except OSError as exc:
            raise ModularityError(f"{what} cannot be read ({exc.strerror})") from None
        if not empty and not is_results_dir(path):
            raise ModularityError(f"{what} is a folder with other files in it (it has no {MARKER} marker, so "
                                  "modularity did not write it) and would be replaced; name a new folder, an "
                                  "empty one, or a results folder modularity wrote")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ModularityError(f"cannot write {what}: {parent} is not a writable folder")
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def remove_stale_partials(out: str | Path) -> list[Path]:
    """Remove temporary folders left beside ``out`` by runs whose process is gone.

    Only folders named ``.<name>.modularity-partial-<pid>-*`` or
    ``.<name>.modularity-old-<pid>-*`` for this very ``out`` are considered.
    """
    out = Path(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    prefix = f".{out.name}."
    for entry in out.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        match = _STALE.match(entry.name[len(prefix) - 1:])
        if match and entry.is_dir() and not entry.is_symlink() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_output_dir(out: str | Path, kind: str = "analyze") -> Iterator[Path]:
    """Yield a temporary folder beside ``out`` and move it into place on success.

    ``out`` is checked first (:func:`check_output_dir`): only a new folder, an
    empty one or a results folder this tool wrote is ever replaced, and only
    after everything was written and the marker added. If the body raises
    (including ``KeyboardInterrupt``, and SIGTERM where the CLI turns it into
    one), the temporary folder is removed and ``out`` is left as it was.

    Raises
    ------
    ModularityError
        If ``out`` may not be replaced or its parent cannot be created.
    """
    out = check_output_dir(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModularityError(f"cannot create the folder for --out {out} ({exc.strerror})") from None
    remove_stale_partials(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL_TAG}{os.getpid()}-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result should look like any new folder
    try:
        yield tmp
        write_marker(tmp, kind)
        # Re-check: the target may have been filled by someone else while we worked.
        check_output_dir(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}{_OLD_TAG}{os.getpid()}-{tmp.name[-8:]}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
