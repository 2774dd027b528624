"""Draw a report's pages in worker processes, with other work of the writer alongside.

Drawing is most of what writing a results folder costs, and matplotlib draws
on one core and is not thread-safe, so pages are drawn in processes, one
page per task, the slowest first. On Linux the workers are forked: they start
in milliseconds with the pages (and everything they hold) already in memory
and send back only the page's PDF bytes; the figure files they write go
straight into the folder. Elsewhere they are spawned and receive the pages
once each. The process that asked waits for them doing work of its own
(``alongside``: writing the graph files), so that on two cores both are busy.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..folders import signals_deferred
from .pages import Page, RenderedPage, render_page

__all__ = ["available_cores", "draw_pages", "progress_bar", "MAX_WORKERS"]

MAX_WORKERS = 8
"""Most drawing processes: each holds a page or two of figures (tens of MB), beyond eight the pages run out."""

_PAGES: Sequence[Page] = ()
_FOLDER: Path | None = None


def available_cores() -> int:
    """CPU cores this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class _Silent:
    """Stands in for a progress bar when none is shown."""

    total = 0

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(show: bool, total: int, desc: str, unit: str = "step") -> Any:
    """A tqdm bar over ``total`` steps when ``show``, else a silent stand-in with the same methods."""
    if not show:
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


def _init(pages: Sequence[Page], folder: Path) -> None:
    global _PAGES, _FOLDER
    _PAGES, _FOLDER = pages, folder


def _spawned(pages: Sequence[Page], folder: Path) -> None:
    _init(pages, folder)
    _one_thread()


def _one_thread() -> None:
    try:  # drawing is single-threaded; keep BLAS in each worker to one thread too
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


def _draw(index: int) -> RenderedPage:
    assert _FOLDER is not None  # set by _init in every worker
    return render_page(_PAGES[index], _FOLDER)


def draw_pages(pages: Sequence[Page], folder: str | Path, jobs: int | None = None, bar: Any = None,
               alongside: Sequence[Callable[[], Any]] = ()) -> list[RenderedPage]:
    """Draw every page (:func:`modularity.output.pages.render_page`) and return them in page order.

    Parameters
    ----------
    pages : sequence of Page
    folder : str or Path
        Where the figures' files go.
    jobs : int, optional
        Drawing processes: None or 0 for one per available core (at most
        :data:`MAX_WORKERS`); 1 draws in this process.
    bar : progress bar, optional
        Advanced by one for every page drawn and every ``alongside`` task done.
    alongside : sequence of callables
        Work for this process while the workers draw (run in order, each once).

    Returns
    -------
    list of RenderedPage
    """
    folder = Path(folder)
    bar = bar if bar is not None else _Silent()
    workers = min(jobs or available_cores(), MAX_WORKERS, len(pages))
    order = sorted(range(len(pages)), key=lambda i: -pages[i].cost())
    done: dict[int, RenderedPage] = {}
    if workers <= 1:
        for task in alongside:
            task()
            bar.update(1)
        for i in order:
            done[i] = render_page(pages[i], folder)
            bar.update(1)
        return [done[i] for i in range(len(pages))]
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    fork = sys.platform.startswith("linux")
    context = multiprocessing.get_context("fork" if fork else "spawn")
    if fork:
        _init(pages, folder)  # inherited by the forked workers: nothing to pickle
        options: dict[str, Any] = {"initializer": _one_thread}
    else:
        options = {"initializer": _spawned, "initargs": (list(pages), folder)}
    pool = ProcessPoolExecutor(workers, mp_context=context, **options)
    try:
        gc.freeze()  # the workers start on the first submit: keep the parent's objects out of their collector
        try:
            futures = {pool.submit(_draw, i): i for i in order}
        finally:
            gc.unfreeze()
        for task in alongside:
            task()
            bar.update(1)
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                done[futures[future]] = future.result()
                bar.update(1)
    except BaseException:
        # interrupted or failed: no worker may go on drawing into the folder the caller is about to remove
        with signals_deferred():
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    else:
        with signals_deferred():  # a signal during the shutdown waits for it, so no worker outlives this call
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        if fork:
            _init((), folder)
    return [done[i] for i in range(len(pages))]
