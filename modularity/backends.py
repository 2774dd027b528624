"""Where tasks run: in this process, in worker processes, or on a Dask cluster.

Every task here is ``fn(shared, item)``: ``shared`` is one large read-only
object (the traced graph, or a whole-network adjacency) that each worker
receives once, and ``item`` is small (a layer name, a draw index). Results
never depend on the backend: every draw derives its randomness from (seed,
layer, draw index) (:func:`modularity.core.nulls.draw_rng`), so the same tasks
give the same numbers in any process, in any order.

``serial``
    In this process, one BLAS/torch thread.
``processes``
    ``jobs`` worker processes on this machine. On Linux they are forked, so a
    worker starts in milliseconds and inherits ``shared`` without pickling;
    spawning (elsewhere) re-imports torch in every worker, about 2 s each.
``dask``
    The workers of a Dask distributed cluster: the one at ``scheduler``, or a
    ``LocalCluster`` of ``jobs`` single-threaded worker processes when no
    address is given. ``shared`` is scattered to every worker once; the
    workers of a local cluster on Linux are forked instead, and inherit it.

Each worker runs one BLAS/torch thread: the matrices decomposed here are small
to mid-sized and decomposed hundreds of times, and multi-threaded BLAS spends
more time synchronising than computing (one thread per process measured 3-6x
faster per null draw on two cores).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .errors import ModularityError
from .settings import check_scheduler_address

__all__ = ["BACKENDS", "Backend", "check_scheduler_address", "dask_logs", "make_backend", "one_thread"]

BACKENDS = ("local", "dask")

Task = Callable[[Any, Any], Any]

_SHARED: Any = None  # the shared object inside a worker process

# Dask distributed logs every scheduler and worker start and stop at INFO (about 60 lines for a local cluster);
# they are noise unless something goes wrong, so only errors get through unless dask_logs(verbose=True) says so.
_DASK_LOG_LEVEL: contextvars.ContextVar[int] = contextvars.ContextVar("dask_log_level", default=logging.ERROR)


@contextlib.contextmanager
def dask_logs(verbose: bool) -> Iterator[None]:
    """Let Dask distributed's scheduler and worker logs through (``verbose``) or only its errors, inside.

    Parameters
    ----------
    verbose : bool
        True: distributed logs at its own level (INFO); False (the default
        outside this context): errors only.

    Yields
    ------
    None
    """
    token = _DASK_LOG_LEVEL.set(logging.INFO if verbose else logging.ERROR)
    try:
        yield
    finally:
        _DASK_LOG_LEVEL.reset(token)


@contextlib.contextmanager
def _distributed_log_level(level: int) -> Iterator[None]:
    """Set the level of the ``distributed`` loggers (forked workers inherit it), restored on exit."""
    names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    loggers = [logging.getLogger(n) for n in names]
    previous = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, previous):
            lg.setLevel(old)


class one_thread:
    """Run BLAS and torch on one thread inside the block, restoring the settings after."""

    def __enter__(self) -> one_thread:
        import torch
        from threadpoolctl import threadpool_limits

        self._torch = torch.get_num_threads()
        self._limits = threadpool_limits(1)
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        self._limits.restore_original_limits()
        torch.set_num_threads(self._torch)


def _single_thread_worker() -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def _init_process(shared: Any) -> None:
    global _SHARED
    _SHARED = shared
    _single_thread_worker()


def _call_in_process(job: tuple[Task, Any]) -> Any:
    fn, item = job
    return fn(_SHARED, item)


_INHERITED: dict[str, Any] = {}  # shared objects a forked LocalCluster's workers inherit, by token


class _Inherited:
    """Stands for a shared object the worker process inherited when it was forked (no scatter)."""

    def __init__(self, token: str) -> None:
        self.token = token


def _call_on_dask(fn: Task, item: Any, shared: Any) -> Any:
    # A Dask worker may run with several threads and BLAS defaults; hold each task to one thread.
    if isinstance(shared, _Inherited):
        shared = _INHERITED[shared.token]
    with one_thread():
        return fn(shared, item)


class Backend:
    """Runs ``fn(shared, item)`` over items; a context manager that releases its workers on exit.

    Attributes
    ----------
    workers : int
        How many tasks run at once.
    name : str
        ``serial``, ``processes`` or ``dask``.
    """

    workers: int = 1
    name: str = "serial"

    def __init__(self, shared: Any) -> None:
        self.shared = shared
        self._thread: one_thread | None = None

    def map(self, fn: Task, items: Sequence[Any]) -> list[Any]:
        """``[fn(shared, item) for item in items]``, in order."""
        return [fn(self.shared, item) for item in items]

    def as_completed(self, fn: Task, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """``(index, fn(shared, items[index]))`` as each finishes."""
        for i, item in enumerate(items):
            yield i, fn(self.shared, item)

    def __enter__(self) -> Backend:
        self._thread = one_thread().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._thread.__exit__(*exc)


class _Processes(Backend):
    name = "processes"

    def __init__(self, shared: Any, jobs: int) -> None:
        super().__init__(shared)
        self.workers = jobs
        self._pool: Any = None  # a ProcessPoolExecutor while entered

    def __enter__(self) -> _Processes:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if sys.platform.startswith("linux") else "spawn"
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                         initializer=_init_process, initargs=(self.shared,))
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def map(self, fn: Task, items: Sequence[Any]) -> list[Any]:
        return list(self._pool.map(_call_in_process, [(fn, item) for item in items]))

    def as_completed(self, fn: Task, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from concurrent.futures import as_completed

        futures = {self._pool.submit(_call_in_process, (fn, item)): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()


class _Dask(Backend):
    name = "dask"

    def __init__(self, shared: Any, jobs: int, scheduler: str | None) -> None:
        super().__init__(shared)
        self._jobs, self._scheduler = jobs, scheduler
        # a distributed Client, its LocalCluster and the shared object's future (or _Inherited) while entered
        self._client: Any = None
        self._cluster: Any = None
        self._shared_future: Any = None
        self._logs = contextlib.ExitStack()

    def __enter__(self) -> _Dask:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ModularityError("the dask backend needs Dask distributed: pip install 'cnn-modularity[dask]' "
                                  "(or distributed), or use the local backend") from None
        # Quiet from the cluster's start to its close (the close logs as much as the start).
        self._logs.enter_context(_distributed_log_level(_DASK_LOG_LEVEL.get()))
        try:
            return self._start(Client, LocalCluster)
        except BaseException:
            self._logs.close()
            raise

    def _start(self, Client: Any, LocalCluster: Any) -> _Dask:  # noqa: N803 - the classes of distributed
        fork = False
        if self._scheduler:
            check_scheduler_address(self._scheduler)
            try:
                self._client = Client(self._scheduler, timeout="10s")
            except Exception as exc:  # OSError, TimeoutError; ValueError, TypeError for addresses Dask cannot use
                detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                raise ModularityError(f"cannot reach the Dask scheduler at {self._scheduler} ({detail}); give the "
                                      "address of a running scheduler (tcp://host:8786), or no address for a "
                                      "local cluster") from None
        else:
            import dask

            # On Linux the local workers are forked, as the processes backend's are: they start with torch
            # imported and the shared object already in memory, instead of importing torch and unpickling a
            # scattered copy (alexnet's graph: 2.5 s and 1.5 s of a 2-worker cluster's start on 2 cores).
            fork = sys.platform.startswith("linux")
            if fork:
                self._token = f"{os.getpid()}-{id(self)}"
                _INHERITED[self._token] = self.shared
            with dask.config.set({"distributed.worker.multiprocessing-method": "fork" if fork else "spawn"}):
                self._cluster = LocalCluster(n_workers=self._jobs, threads_per_worker=1, processes=True,
                                             dashboard_address=None)
            self._client = Client(self._cluster)
        self.workers = max(1, sum(self._client.nthreads().values()))
        if fork:
            self._shared_future = _Inherited(self._token)
        else:
            self._shared_future = self._client.scatter(self.shared, broadcast=True, hash=False)
        super().__enter__()  # what runs here (a layer's observed statistics) runs on one thread, as in the workers
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
        finally:
            self._logs.close()
        _INHERITED.pop(getattr(self, "_token", ""), None)
        super().__exit__(*exc)

    def map(self, fn: Task, items: Sequence[Any]) -> list[Any]:
        futures = self._client.map(_call_on_dask, [fn] * len(items), list(items), shared=self._shared_future,
                                   pure=False)
        return self._client.gather(futures)

    def as_completed(self, fn: Task, items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        futures = self._client.map(_call_on_dask, [fn] * len(items), list(items), shared=self._shared_future,
                                   pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in as_completed(futures):
            yield index[fut.key], fut.result()


def make_backend(shared: Any, jobs: int = 1, backend: str = "local", scheduler: str | None = None) -> Backend:
    """The backend that runs tasks over ``shared``; use it as a context manager.

    Parameters
    ----------
    shared : object
        What every task reads (sent to each worker once).
    jobs : int
        Worker processes for ``local`` (1: this process; 0: one per CPU core),
        or the workers of the local Dask cluster when ``scheduler`` is None.
    backend : {"local", "dask"}
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``).

    Returns
    -------
    Backend
    """
    if backend not in BACKENDS:
        raise ModularityError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}")
    if scheduler and backend != "dask":
        raise ModularityError("a scheduler address needs backend='dask'")
    if scheduler:
        check_scheduler_address(scheduler)
    jobs = (os.cpu_count() or 1) if jobs == 0 else jobs
    if jobs < 0:
        raise ModularityError(f"jobs must be 0 (one per core) or more, got {jobs}")
    if backend == "dask":
        return _Dask(shared, jobs, scheduler)
    return Backend(shared) if jobs <= 1 else _Processes(shared, jobs)


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
