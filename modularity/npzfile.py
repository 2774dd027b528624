"""Reading ``.npz`` files without trusting them: every member's header is checked before its data is loaded.

A results folder's ``arrays.npz`` may come from anywhere (a colleague's
archive, a tampered copy). :func:`open_npz` reads the declared shape and
dtype of every member from its ``.npy`` header alone; :meth:`NpzMembers.load`
then loads one member only if its header fits a :class:`Spec` (plain numbers
or text, no objects, and no dimension beyond what the caller allows), so a
header declaring terabytes is refused without allocating anything. Low-level
failures (a truncated zip, a corrupt stream) become one ``ModularityError``
line naming the file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModularityError

__all__ = ["Spec", "spec", "npz_headers", "open_npz", "NpzMembers"]


@dataclass(frozen=True)
class Spec:
    """What a member may be: dtype kinds (``"f"``, ``"iu"``, ``"U"``), and shapes with None for "any size up to
    ``max_dim``"."""

    kinds: str
    shape: tuple[tuple[int | None, ...], ...]  # the shapes allowed
    max_dim: int = 0
    max_itemsize: int = 8


def spec(kinds: str, *shapes: tuple[int | None, ...], max_dim: int = 0, max_itemsize: int = 8) -> Spec:
    """A :class:`Spec` from dtype kinds and the allowed shapes."""
    return Spec(kinds, shapes, max_dim, max_itemsize)


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """The declared shape and dtype of every ``.npy`` member, read from the headers alone.

    Remembered while the file is unchanged (its size, times and inode), as a
    folder's summary and its figures read the same file one after the other.
    """
    st = os.stat(path)
    return dict(_headers(str(path), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)))


@functools.lru_cache(maxsize=8)
def _headers(path: str, stamp: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    headers = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"member {info.filename}: .npy format {version} is not one numpy.save writes")
            headers[info.filename[:-4]] = (tuple(shape), dtype)
    return headers


class NpzMembers:
    """The members of an open ``.npz`` file, loaded one at a time after their header is checked."""

    def __init__(self, path: Path, headers: Mapping[str, tuple[tuple[int, ...], np.dtype]], data: Any) -> None:
        self.path, self.headers, self._data = path, headers, data

    def __contains__(self, key: object) -> bool:
        return key in self.headers

    def keys(self) -> list[str]:
        """The members' names, in the file's order."""
        return list(self.headers)

    def load(self, key: str, want: Spec) -> np.ndarray:
        """Check ``key``'s header against ``want``, then load it (and only it).

        Raises
        ------
        ModularityError
            If the member is missing, or its dtype or declared shape does not fit ``want``.
        """
        if key not in self.headers:
            raise ModularityError(f"{self.path} lacks the member '{key}'; the file is incomplete or from another run")
        shape, dtype = self.headers[key]
        where = f"{self.path}: member '{key}'"
        if (dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None
                or dtype.kind not in want.kinds):
            raise ModularityError(f"{where} has dtype {dtype}, expected {'text' if want.kinds == 'U' else 'numbers'}")
        if dtype.itemsize > want.max_itemsize:
            raise ModularityError(f"{where} has dtype {dtype}, wider than modularity writes")
        fits = any(len(shape) == len(w) and all(d >= 0 and (s is None and d <= want.max_dim or d == s)
                                                for d, s in zip(shape, w)) for w in want.shape)
        if not fits:
            limit = f" (each dimension at most {want.max_dim})" if want.max_dim else ""
            raise ModularityError(f"{where} declares shape {shape}, which this layer cannot have{limit}; the file "
                                  "is damaged or from another run")
        return self._data[key]


@contextlib.contextmanager
def open_npz(path: str | Path) -> Iterator[NpzMembers]:
    """Open ``path`` for :meth:`NpzMembers.load` (no pickles); a file that cannot be read is one error line.

    Raises
    ------
    ModularityError
        If the file is not a readable ``.npz`` (a truncated or corrupt zip, a
        damaged member), or a member fails its check.
    """
    path = Path(path)
    try:
        headers = npz_headers(path)
        with np.load(path, allow_pickle=False) as data:
            yield NpzMembers(path, headers, data)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ModularityError(f"{path} is not a readable .npz file ({type(exc).__name__}: {detail})") from None
