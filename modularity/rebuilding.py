"""``python -m modularity report DIR``: rebuild a results folder's tables, figures and reports from its data files.

Kept apart from :mod:`modularity.pipeline` (which loads models and runs
analyses) so that the command imports neither torch nor the analysis: what it
draws comes from ``summary.json`` and ``arrays.npz`` alone.
"""

from __future__ import annotations

from pathlib import Path

from .folders import atomic_output_dir, copy_fresh, folder_bytes
from .output.report import read_results, rebuild_report
from .preflight import REPORT_INPUTS, check_report_folder

__all__ = ["rebuild"]

_SLACK_BYTES = 5_000_000  # beyond twice the folder: figures a rebuild may add (the fixed part of a folder's size)


def rebuild(folder: str | Path, progress: bool = False, jobs: int | None = None) -> list[Path]:
    """Rebuild tables, figures and reports of a results folder, replacing it only when complete.

    The folder must be a results folder that ``analyze`` wrote, holding only
    the files of its manifest (its inputs ``summary.json`` and ``arrays.npz``
    may have been edited: they are carried over as they are) and no symbolic
    link anywhere. Both inputs are read and checked once, before anything is
    written; the rebuild happens in a new folder that replaces the old one
    only when complete, so nothing is written through a link or into a file
    that was not created fresh.
    """
    folder = check_report_folder(folder)
    loaded = read_results(folder)
    with atomic_output_dir(folder, keep=REPORT_INPUTS, option="report",
                           expected_bytes=2 * folder_bytes(folder) + _SLACK_BYTES) as tmp:
        copy_fresh(folder, tmp)
        written = rebuild_report(tmp, progress=progress, jobs=jobs, loaded=loaded)
    return [Path(folder) / p.relative_to(tmp) for p in written]
