"""Writing output folders all at once, never outside themselves, and never over anything the tool did not write.

A results folder carries a marker file, :data:`MARKER`, written last. It is
JSON and holds a *manifest*: every file the tool wrote (relative path, size
and SHA-256) and every folder it made. ``--out`` (and ``report DIR``) may
replace only

* a folder that does not exist yet,
* an empty folder, or
* a folder whose marker is a regular file with a manifest, and which holds
  nothing but the files of that manifest, unchanged (no symbolic link, no file
  added or edited by anyone else).

Anything else (a folder with a user's files, a folder from an older
modularity whose marker lists no files, an empty or symlinked marker, the
current folder or one of its ancestors, a file, a mount point) is refused by
:func:`check_output_dir` before any work starts, naming the unexpected files.
Paths are compared after resolving symbolic links (:func:`os.path.realpath`),
so a symlinked parent cannot disguise the current folder.

Why SHA-256 and not sizes and modification times: a folder copied with
``cp -r`` or unpacked from an archive gets new times but keeps its bytes, and
an edit that keeps the size (a cell changed in ``layers.csv``) keeps the size;
hashing a results folder costs little next to an analysis (BENCHMARKS.md), and
hashes are cached for files unchanged within one process.

The new content is written to a temporary folder beside the target, named
``.<name>.modularity-partial-<pid>-<random>`` (no marker, and its name says
what it is, so no command takes it for results); it is made fresh by
:func:`tempfile.mkdtemp`, so every file written into it is new and no link
can lead outside it. It replaces the target only when complete: on Linux by
one atomic exchange (``renameat2(RENAME_EXCHANGE)``), elsewhere by two
renames. If writing fails (a full disk, a name too long, a read-only
filesystem) or is interrupted, the temporary folder is removed and the
error is one line. Temporary folders whose process is gone (a run killed
with SIGKILL or by a power cut) are removed by the next run writing to the
same target.

Interrupts always win: the CLI's signal handler records the signal with
:func:`note_interrupt` (as well as raising ``KeyboardInterrupt``, which Python
may lose inside a finaliser or weakref callback), and the swap checks that
record with SIGINT and SIGTERM blocked, so a signal either stops the run
before the folder is published or arrives after it is complete.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import ModularityError

__all__ = ["MARKER", "PARTIAL_TAG", "MANIFEST_VERSION", "atomic_output_dir", "check_output_dir", "is_results_dir",
           "write_marker", "read_manifest", "check_replaceable", "check_no_symlinks", "copy_fresh", "folder_bytes",
           "remove_stale_partials", "signals_deferred", "note_interrupt", "interrupt_received", "reset_interrupt",
           "published_folder"]

MARKER = ".modularity-results"
PARTIAL_TAG = ".modularity-partial-"
MANIFEST_VERSION = 1
_OLD_TAG = ".modularity-old-"
_STALE = re.compile(r"\.modularity-(?:partial|old)-(\d+)-")
_MAX_MARKER_BYTES = 64 << 20  # a manifest line is ~120 bytes: half a million files
_TEMP_EXTRA = 48  # bytes a temporary sibling's name adds: "." + tag + pid + "-" + random, with room to spare
_PATH_MARGIN = 160  # bytes left for the longest path inside a results folder (figures/layers/NNN_<layer>...)
_SHOWN = 4  # unexpected files named in a message


# --------------------------------------------------------------------------------------------- interrupts

_INTERRUPT: dict[str, object] = {"signal": None, "published": None}


def note_interrupt(signum: int) -> None:
    """Record that SIGINT or SIGTERM arrived (called by the CLI's signal handler)."""
    _INTERRUPT["signal"] = signum


def interrupt_received() -> int | None:
    """The signal recorded by :func:`note_interrupt` since :func:`reset_interrupt`, or None."""
    return _INTERRUPT["signal"]  # type: ignore[return-value]


def published_folder() -> Path | None:
    """The last folder :func:`atomic_output_dir` published since :func:`reset_interrupt`, or None."""
    return _INTERRUPT["published"]  # type: ignore[return-value]


def reset_interrupt() -> None:
    """Forget recorded interrupts and published folders (at the start of a command)."""
    _INTERRUPT.update(signal=None, published=None)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends (main thread, POSIX); they are delivered after it."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# --------------------------------------------------------------------------------------------- scanning

def _scan(folder: Path) -> tuple[dict[str, os.stat_result], list[str], list[str], list[str]]:
    """Everything under ``folder`` without following links: files, folders, symbolic links, other entries.

    Paths are relative, with ``/``; the marker is left out.
    """
    files: dict[str, os.stat_result] = {}
    dirs: list[str] = []
    links: list[str] = []
    other: list[str] = []
    stack = [("", folder)]
    while stack:
        rel, path = stack.pop()
        with os.scandir(path) as it:
            for entry in it:
                name = f"{rel}{entry.name}"
                if name == MARKER:
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    links.append(name)
                elif stat.S_ISDIR(st.st_mode):
                    dirs.append(name)
                    stack.append((name + "/", Path(entry.path)))
                elif stat.S_ISREG(st.st_mode):
                    files[name] = st
                else:
                    other.append(name)
    return files, sorted(dirs), sorted(links), sorted(other)


_HASHES: dict[tuple[int, ...], str] = {}


def _sha256(path: Path, st: os.stat_result) -> str:
    """SHA-256 of a regular file, read without following links; cached while the file's stat is unchanged."""
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _HASHES:
        return _HASHES[key]
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    if len(_HASHES) > 100_000:
        _HASHES.clear()
    _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def _shown(names: list[str], n: int = _SHOWN) -> str:
    text = ", ".join(names[:n])
    return text + (f" and {len(names) - n} more" if len(names) > n else "")


def folder_bytes(folder: str | Path) -> int:
    """Total size of the regular files under ``folder`` (links not followed)."""
    files, *_ = _scan(Path(folder))
    return sum(st.st_size for st in files.values())


# --------------------------------------------------------------------------------------------- the marker

def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist; a link there is not followed) and write ``data`` to it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o666)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def write_marker(folder: str | Path, kind: str = "analyze") -> Path:
    """Write the marker that says ``folder`` is a complete results folder of this tool, with its manifest.

    The manifest lists every regular file under ``folder`` (size and SHA-256)
    and every subfolder; a symbolic link or a special file in ``folder`` is an
    error (the tool never writes one).
    """
    from . import __version__

    folder = Path(folder)
    files, dirs, links, other = _scan(folder)
    if links or other:
        raise ModularityError(f"{folder} holds {'a symbolic link' if links else 'a special file'} "
                              f"({_shown(links + other)}), which modularity never writes; it was changed while "
                              "modularity was writing it")
    manifest = {"files": {rel: [st.st_size, _sha256(folder / rel, st)] for rel, st in sorted(files.items())},
                "dirs": dirs}
    data = {"tool": "modularity", "version": __version__, "kind": kind, "manifest_version": MANIFEST_VERSION,
            "manifest": manifest}
    path = folder / MARKER
    _write_new(path, _marker_text(data).encode("ascii"))
    return path


def _marker_text(data: dict) -> str:
    """The marker's JSON: readable, one line per file."""
    head = {k: v for k, v in data.items() if k != "manifest"}
    files = data["manifest"]["files"]
    lines = [f"  {json.dumps(rel)}: {json.dumps(entry)}" for rel, entry in files.items()]
    return ("{\n" + "".join(f" {json.dumps(k)}: {json.dumps(v)},\n" for k, v in head.items())
            + ' "manifest": {\n  "dirs": ' + json.dumps(data["manifest"]["dirs"]) + ',\n  "files": {\n'
            + ",\n".join(" " + line for line in lines) + "\n  }\n }\n}\n")


def is_results_dir(path: str | Path) -> bool:
    """True when ``path`` is a folder holding a marker that is a regular file (not a link): a results folder."""
    try:
        return stat.S_ISREG(os.lstat(Path(path) / MARKER).st_mode)
    except OSError:
        return False


def _untrusted(what: str, why: str, option: str) -> ModularityError:
    if option.startswith("--"):
        fix = f"remove the folder yourself if it holds nothing you need, or choose another {option}"
    else:
        fix = "run 'analyze' again to write a new folder"
    return ModularityError(f"{what}: {why}, so modularity cannot tell its own files from yours and will not "
                           f"replace it; {fix}")


def read_manifest(folder: str | Path, what: str | None = None, option: str = "--out") -> dict:
    """Read and check the marker of ``folder``; return its content (``kind``, ``manifest``).

    Raises
    ------
    ModularityError
        If the marker is missing, a link or not a regular file, empty,
        unreadable, not JSON, or holds no manifest (folders of modularity
        0.2.0 and before): such a folder is not trusted.
    """
    folder = Path(folder)
    what = what or f"{option} {folder}"
    path = folder / MARKER
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ModularityError(f"{what} is not a results folder written by modularity (it has no {MARKER} "
                              "marker)") from None
    except OSError as exc:
        raise ModularityError(f"{what}: its {MARKER} marker cannot be read ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise _untrusted(what, f"its {MARKER} marker is a symbolic link", option)
    if not stat.S_ISREG(st.st_mode):
        raise _untrusted(what, f"its {MARKER} marker is not a regular file", option)
    if st.st_size == 0:
        raise _untrusted(what, f"its {MARKER} marker is empty", option)
    if st.st_size > _MAX_MARKER_BYTES:
        raise _untrusted(what, f"its {MARKER} marker is {st.st_size} bytes, more than modularity writes", option)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read(_MAX_MARKER_BYTES + 1).decode("utf-8"))
    except OSError as exc:
        raise ModularityError(f"{what}: its {MARKER} marker cannot be read ({exc.strerror})") from None
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep, huge integers
        raise _untrusted(what, f"its {MARKER} marker is not the JSON modularity writes", option) from None
    manifest = data.get("manifest") if isinstance(data, dict) else None
    if not isinstance(manifest, dict):
        raise _untrusted(what, f"its {MARKER} marker lists no files (a folder from modularity 0.2.0 or earlier, "
                               "or a damaged marker)", option)
    files, dirs = manifest.get("files"), manifest.get("dirs")
    if (not isinstance(files, dict) or not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs)
            or not all(isinstance(v, list) and len(v) == 2 and type(v[0]) is int and isinstance(v[1], str)
                       for v in files.values())):
        raise _untrusted(what, f"its {MARKER} marker has a damaged file list", option)
    return data


def check_no_symlinks(folder: str | Path, what: str) -> None:
    """Refuse a folder holding a symbolic link anywhere inside it (one line naming the first few)."""
    _, _, links, _ = _scan(Path(folder))
    if links:
        shown = []
        for rel in links[:_SHOWN]:
            try:
                shown.append(f"{rel} -> {os.readlink(Path(folder) / rel)}")
            except OSError:
                shown.append(rel)
        raise ModularityError(f"{what} holds {len(links)} symbolic link{'s' if len(links) != 1 else ''} "
                              f"({_shown(shown + links[_SHOWN:])}); modularity writes no links and will not "
                              "rewrite a folder through them: remove the links, or rebuild from a fresh "
                              "'analyze' run")


def check_replaceable(folder: str | Path, what: str | None = None, option: str = "--out",
                      keep: Iterable[str] = ()) -> dict:
    """Check that ``folder`` holds nothing but the files of its own manifest, unchanged; return the marker.

    Parameters
    ----------
    folder : str or Path
        An existing, non-empty folder.
    what : str, optional
        How messages name it (default: ``"<option> <folder>"``).
    option : str
        ``--out`` or ``report``, for the advice in messages.
    keep : iterable of str
        Files whose content may differ from the manifest because they are
        carried over unchanged (``report DIR`` keeps its inputs).

    Raises
    ------
    ModularityError
        One line naming the first few unexpected entries (files or folders not
        in the manifest, files changed since, links, special files, folders
        that are not writable) and their count.
    """
    folder = Path(folder)
    what = what or f"{option} {folder}"
    marker = read_manifest(folder, what, option)
    manifest = marker["manifest"]
    try:
        files, dirs, links, other = _scan(folder)
    except OSError as exc:
        raise ModularityError(f"{what} cannot be read ({exc.strerror}: {exc.filename})") from None
    known, known_dirs, keep = manifest["files"], set(manifest["dirs"]), set(keep)
    unexpected = [f"{rel} (a symbolic link)" for rel in links] + [f"{rel} (a special file)" for rel in other]
    unexpected += [f"{rel}/" for rel in dirs if rel not in known_dirs]
    for rel, st in sorted(files.items()):
        if rel not in known:
            unexpected.append(rel)
        elif rel not in keep:
            size, digest = known[rel]
            if st.st_size != size:
                unexpected.append(f"{rel} (changed)")
            else:
                try:
                    same = _sha256(folder / rel, st) == digest
                except OSError as exc:
                    raise ModularityError(f"{what}: {rel} cannot be read ({exc.strerror})") from None
                if not same:
                    unexpected.append(f"{rel} (changed)")
    if unexpected:
        fix = "move them out, or choose another --out" if option.startswith("--") else \
            "move them out of the folder first"
        raise ModularityError(f"{what} holds {len(unexpected)} file{'s' if len(unexpected) != 1 else ''} "
                              f"modularity did not write or that changed since it wrote them ({_shown(unexpected)}); "
                              f"it replaces only folders holding nothing but its own files: {fix}")
    locked = [rel or "." for rel in ["", *dirs] if not os.access(folder / rel, os.W_OK | os.X_OK)]
    if locked:
        raise ModularityError(f"{what} is read-only ({_shown(locked)} cannot be changed), so modularity cannot "
                              "replace it; make it writable (chmod -R u+w) or choose another "
                              f"{'--out' if option.startswith('--') else 'copy of it'}")
    return marker


# --------------------------------------------------------------------------------------------- names

def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _path_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):
        return 4096


def _temp_stem(out: Path) -> str:
    """The part of ``out``'s name its temporary siblings carry: the name, or a shortened form with a hash."""
    name = out.name
    limit = _name_max(_existing_ancestor(out)) - _TEMP_EXTRA
    if len(os.fsencode(name)) <= limit:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    short = os.fsencode(name)[: max(limit - 13, 1)].decode("utf-8", "ignore")
    return f"{short}~{digest}"


def _existing_ancestor(path: Path) -> Path:
    return next((p for p in (path, *path.parents) if p.is_dir()), Path("/"))


def _abbreviated(path: str | Path, limit: int = 120) -> str:
    """``path`` as messages show it: whole up to ``limit`` characters, else its ends around an ellipsis."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]}"


def _check_name(path: Path, what: str) -> None:
    """Refuse names longer than the filesystem allows, before any work (the OS would refuse them at the end)."""
    base = _existing_ancestor(path.parent)
    name_max = _name_max(base)
    long = [part for part in path.parts if len(os.fsencode(part)) > name_max]
    if long:
        raise ModularityError(f"{what}: a name in it is {len(os.fsencode(long[0]))} bytes long, more than this "
                              f"filesystem allows ({name_max}); choose a shorter name")
    size = len(os.fsencode(str(path)))
    if size + _PATH_MARGIN > _path_max(base):
        raise ModularityError(f"{what}: the path is {size} bytes long; with the files inside it, it would pass "
                              f"this system's limit ({_path_max(base)}); choose a shorter path")


# --------------------------------------------------------------------------------------------- checks

def check_output_dir(out: str | Path, option: str = "--out", keep: Iterable[str] = ()) -> Path:
    """Check that ``out`` may receive a results folder, before any work starts.

    Returns the resolved path (symbolic links in its parents resolved).
    Raises :class:`ModularityError` (one line naming the reason and what
    would be accepted) when ``out`` is a symbolic link, a file, a mount point,
    the current folder or one of its ancestors, a non-empty folder that is
    not a results folder holding only its own files (see
    :func:`check_replaceable`), or a place whose parent cannot be created or
    written, or whose name is longer than the filesystem allows.
    """
    try:
        cwd = Path(os.path.realpath(os.getcwd()))
    except FileNotFoundError:
        raise ModularityError("the current folder no longer exists; cd into an existing folder first") from None
    what = f"{option} {_abbreviated(out)}"
    try:
        raw = Path(os.path.abspath(Path(out).expanduser()))
        _check_name(raw, what)
        if raw.is_symlink():
            raise ModularityError(f"{what} is a symbolic link (to {os.readlink(raw)}); name the folder itself, "
                                  f"or a new one")
        path = Path(os.path.realpath(raw))
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long, a loop of links
        raise ModularityError(f"{what} cannot be used ({getattr(exc, 'strerror', None) or exc})") from None
    if path == cwd or path in cwd.parents:
        raise ModularityError(f"{what} is the current folder or one of its ancestors, which modularity will not "
                              "replace; name a new folder such as results/run1")
    _check_name(path, what)  # again: resolving links may have made it longer
    try:
        exists = path.exists()
        if exists and not path.is_dir():
            raise ModularityError(f"{what} exists and is not a folder; name a new folder, an empty one, or a "
                                  "results folder modularity wrote")
        if exists and os.path.ismount(path):
            raise ModularityError(f"{what} is a mount point (a filesystem is mounted there), which cannot be "
                                  f"replaced; name a folder inside it, such as {Path(out) / 'results'}")
        empty = not exists or not any(path.iterdir())
    except OSError as exc:
        raise ModularityError(f"{what} cannot be read ({exc.strerror})") from None
    if not empty:
        if not os.path.lexists(path / MARKER):
            names = sorted(p.name for p in path.iterdir())
            raise ModularityError(f"{what} is a folder with other files in it ({_shown(names)}; it has no {MARKER} "
                                  "marker, so modularity did not write it) and would be replaced; name a new folder, "
                                  "an empty one, or a results folder modularity wrote")
        check_replaceable(path, what, option, keep)
    parent = _existing_ancestor(path.parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ModularityError(f"cannot write {what}: {parent} is not a writable folder")
    return path


def _check_space(folder: Path, needed: int, what: str) -> None:
    if needed <= 0:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed:
        raise ModularityError(f"{what} needs about {_mb(needed)} (an upper estimate) but its filesystem has "
                              f"{_mb(free)} free; free some space or choose another --out")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


def _free(folder: Path) -> str:
    try:
        return _mb(shutil.disk_usage(folder).free)
    except OSError:
        return "unknown"


def _write_error(exc: OSError, what: str, tmp: Path | None, parent: Path) -> ModularityError:
    """One line for an OSError while writing a results folder, naming the file as it would be inside ``out``."""
    name = exc.filename
    if isinstance(name, (str, bytes, os.PathLike)):
        name = os.fsdecode(name)
        if tmp is not None and name.startswith(str(tmp)):
            name = name[len(str(tmp)):].lstrip("/") or name
    where = f" ({name})" if name else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ModularityError(f"no space left while writing {what}{where}: {_free(parent)} free on its filesystem "
                               "(nothing was written); free some space or choose another --out")
    if exc.errno == errno.EFBIG:
        return ModularityError(f"a file grew past the file size limit while writing {what}{where} (ulimit -f; "
                               "nothing was written); raise the limit or write fewer files (--unit-graph-top-k)")
    return ModularityError(f"cannot write {what}{where}: {exc.strerror or exc} (nothing was written)")


def remove_stale_partials(out: str | Path) -> list[Path]:
    """Remove temporary folders left beside ``out`` by runs whose process is gone.

    Only folders named ``.<name>.modularity-partial-<pid>-*`` or
    ``.<name>.modularity-old-<pid>-*`` for this very ``out``, owned by this
    user, are considered.
    """
    out = Path(out)
    removed: list[Path] = []
    if not out.parent.is_dir():
        return removed
    prefix = f".{_temp_stem(out)}."
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = _STALE.match(entry.name[len(prefix) - 1:])
        try:
            st = entry.lstat()
        except OSError:
            continue
        if (match and stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
                and not _pid_alive(int(match.group(1)))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # exists but belongs to someone else; or no such pid at all
        return True
    return True


# --------------------------------------------------------------------------------------------- copying

def copy_fresh(src: str | Path, dst: str | Path) -> list[Path]:
    """Copy the regular files and folders under ``src`` into the existing folder ``dst`` as new files.

    Nothing is followed: a symbolic link or a special file in ``src`` is an
    error, sources are opened with ``O_NOFOLLOW`` and every destination is
    created with ``O_EXCL``, so the copy writes only inside ``dst``. The
    marker is not copied. Returns the files written.
    """
    src, dst = Path(src), Path(dst)
    files, dirs, links, other = _scan(src)
    if links or other:
        check_no_symlinks(src, f"{src}")
        raise ModularityError(f"{src} holds a special file ({_shown(other)}); modularity writes none")
    for rel in dirs:
        (dst / rel).mkdir()
    nofollow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    written = []
    for rel in sorted(files):
        fd_in = os.open(src / rel, os.O_RDONLY | nofollow)
        with os.fdopen(fd_in, "rb") as fin:
            fd_out = os.open(dst / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o666)
            with os.fdopen(fd_out, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        written.append(dst / rel)
    return written


# --------------------------------------------------------------------------------------------- the swap

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where the system or filesystem cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fsdecode(b))


def _swap(tmp: Path, out: Path) -> None:
    """Put ``tmp`` at ``out``; the old ``out`` (if any) is removed after."""
    if not out.exists():
        tmp.rename(out)
        return
    if _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old folder
        return
    old = out.with_name(f".{_temp_stem(out)}{_OLD_TAG}{os.getpid()}-{tmp.name[-8:]}")
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_output_dir(out: str | Path, kind: str = "analyze", *, expected_bytes: int = 0,
                      keep: Iterable[str] = (), option: str = "--out") -> Iterator[Path]:
    """Yield a new, empty temporary folder beside ``out`` and put it in place of ``out`` when complete.

    ``out`` is checked first (:func:`check_output_dir`): only a new folder, an
    empty one or a results folder holding nothing but its own files is ever
    replaced, and only after everything was written and the marker (with the
    manifest of what was written) added. If the body raises (including
    ``KeyboardInterrupt``, and SIGTERM where the CLI turns it into one) or a
    signal was recorded (:func:`note_interrupt`), the temporary folder is
    removed and ``out`` is left as it was.

    Parameters
    ----------
    out : str or Path
    kind : str
        Recorded in the marker (``analyze``, ``sweep``, ``clusterability``).
    expected_bytes : int
        A rough upper bound of what will be written: refused up front when the
        filesystem has less free space.
    keep : iterable of str
        Files of an existing ``out`` that may differ from its manifest (see
        :func:`check_replaceable`).
    option : str
        How messages name ``out``.

    Raises
    ------
    ModularityError
        If ``out`` may not be replaced, its parent cannot be created, too
        little space is free, or writing fails (a full disk, a read-only
        filesystem, ...): one line, and nothing is left behind.
    """
    keep = tuple(keep)
    what = f"{option} {_abbreviated(out)}"
    out = check_output_dir(out, option, keep)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModularityError(f"cannot create the folder for {what} ({exc.strerror})") from None
    remove_stale_partials(out)
    _check_space(out.parent, expected_bytes, what)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{_temp_stem(out)}{PARTIAL_TAG}{os.getpid()}-", dir=out.parent))
    except OSError as exc:
        raise _write_error(exc, what, None, out.parent) from None
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result should look like any new folder
    try:
        try:
            yield tmp
            write_marker(tmp, kind)
        except OSError as exc:
            raise _write_error(exc, what, tmp, out.parent) from None
        with signals_deferred():  # a signal now waits until the folder is either published or removed
            if interrupt_received() is not None:
                raise KeyboardInterrupt
            check_output_dir(out, option, keep)  # someone may have filled the target while we worked
            try:
                _swap(tmp, out)
            except OSError as exc:
                raise _write_error(exc, what, tmp, out.parent) from None
            _INTERRUPT["published"] = out
    except BaseException:
        with signals_deferred():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
