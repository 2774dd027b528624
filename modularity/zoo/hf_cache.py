"""Find files in a Hugging Face hub cache without the network (``HF_HUB_OFFLINE`` semantics).

The hub cache keeps each repository as ``models--ORG--NAME/`` with the files
of every downloaded revision under ``snapshots/REV/`` and the revision a branch
points to in ``refs/BRANCH``. The cache folder is ``$HF_HUB_CACHE``, else the
legacy ``$HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, else
``$XDG_CACHE_HOME/huggingface/hub`` (``~/.cache/huggingface/hub``), as
``huggingface_hub`` resolves it. Nothing here opens a connection: a file that
is not in the cache is an error naming where it would be.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModularityError

__all__ = ["CachedFile", "PREFIX", "hub_cache_dir", "repo_folder", "snapshot_dir", "find_cached_file", "is_hf_name",
           "is_model_folder", "resolve_folder"]

PREFIX = "hf/"

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class CachedFile:
    """A file found in the hub cache: its path, repository and the snapshot revision it belongs to."""

    path: Path
    repo_id: str
    revision: str


def hub_cache_dir() -> Path:
    """The hub cache folder, from the environment as ``huggingface_hub`` reads it."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def repo_folder(repo_id: str, cache: Path | None = None) -> Path:
    """``<cache>/models--ORG--NAME`` for ``repo_id`` ``"ORG/NAME"``.

    Raises
    ------
    ModularityError
        If ``repo_id`` is not of the form ``ORG/NAME``.
    """
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise ModularityError(f"'{repo_id}' is not a Hugging Face repository id (ORG/NAME, e.g. "
                              "google/vit-base-patch16-224)")
    return (cache or hub_cache_dir()) / ("models--" + repo_id.replace("/", "--"))


def snapshot_dir(repo_id: str, revision: str = "main", cache: Path | None = None) -> Path | None:
    """The cached snapshot of ``repo_id`` at ``revision`` (a branch in ``refs/`` or a commit hash), or None.

    Where ``refs/main`` is missing but exactly one snapshot is cached (a cache
    filled by copying one snapshot), that snapshot is taken for ``main``.
    """
    folder = repo_folder(repo_id, cache)
    ref = folder / "refs" / revision
    rev = ref.read_text().strip() if ref.is_file() else revision
    snap = folder / "snapshots" / rev
    if snap.is_dir():
        return snap
    snaps = sorted(p for p in (folder / "snapshots").glob("*") if p.is_dir()) if folder.is_dir() else []
    if revision == "main" and not ref.is_file() and len(snaps) == 1:
        return snaps[0]
    return None


def find_cached_file(repo_id: str, filenames: tuple[str, ...], revision: str = "main",
                     cache: Path | None = None) -> CachedFile:
    """The first of ``filenames`` cached for ``repo_id`` at ``revision``.

    Raises
    ------
    ModularityError
        One line naming the path where the first file would be, and how to
        fill the cache on a machine with network.
    """
    cache = cache or hub_cache_dir()
    snap = snapshot_dir(repo_id, revision, cache)
    if snap is not None:
        for name in filenames:
            if (snap / name).is_file():
                return CachedFile(path=snap / name, repo_id=repo_id, revision=snap.name)
    where = (snap or repo_folder(repo_id, cache) / "snapshots" / "<revision>") / filenames[0]
    others = f" (or {', '.join(filenames[1:])})" if len(filenames) > 1 else ""
    raise ModularityError(
        f"weights of {repo_id} are not in the Hugging Face cache: expected {where}{others}; no download is "
        f"attempted (offline); on a machine with network run 'hf download {repo_id}' and copy "
        f"{repo_folder(repo_id, cache).name} into {cache}, or pass a local file with --weights"
    )


def is_hf_name(name: str) -> bool:
    """True for ``hf/<org>/<name>``."""
    return name.startswith(PREFIX)


def is_model_folder(path: str | Path) -> bool:
    """True for a folder holding ``config.json`` (a transformers model folder)."""
    try:
        return Path(path).is_dir() and (Path(path) / "config.json").is_file()
    except (OSError, ValueError):
        return False


def resolve_folder(name: str) -> tuple[Path, str]:
    """The model folder of ``name`` (a folder path or ``hf/<org>/<name>``) and how it was found.

    Raises
    ------
    ModularityError
        For a malformed ``hf/`` name, or a repository not in the hub cache
        (naming where its snapshot would be).
    """
    if not is_hf_name(name):
        return Path(name), "a local model folder"
    repo, _, revision = name.removeprefix(PREFIX).partition("@")
    folder = repo_folder(repo)  # checks ORG/NAME
    snap = snapshot_dir(repo, revision or "main")
    if snap is None or not (snap / "config.json").is_file():
        where = (snap or folder / "snapshots" / "<revision>") / "config.json"
        raise ModularityError(f"{repo} is not in the Hugging Face cache: expected {where}; no download is attempted "
                              f"(offline); on a machine with network run 'hf download {repo}' and copy "
                              f"{folder.name} into {hub_cache_dir()}, or give the model folder itself")
    return snap, f"the Hugging Face cache ({repo}, revision {snap.name})"
