"""Run candidate methods over benchmark instances in single-threaded worker processes, and time them per call."""

from __future__ import annotations

import multiprocessing as mp
import time
import zlib
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.candidates import CANDIDATES
from modularity.core.metrics import adjusted_rand

__all__ = ["run", "time_calls"]

_JOB: dict = {}


def _instance_id(d: dict) -> int:
    return zlib.crc32(f"{d['split']}|{d['case']}|{d['net']}".encode())


def _run_one(i: int) -> tuple[int, np.ndarray, np.ndarray]:
    """ARI ``(methods, seeds)`` and seconds ``(methods,)`` of every method on instance ``i`` (shared by fork)."""
    d, methods, n_seeds = _JOB["instances"][i], _JOB["methods"], _JOB["n_seeds"]
    a, truth, k = d["matrix"], d["truth"], d["k"]
    ari = np.zeros((len(methods), n_seeds))
    seconds = np.zeros(len(methods))
    with threadpool_limits(1):
        for j, name in enumerate(methods):
            for s in range(n_seeds):
                rng = np.random.default_rng([s, _instance_id(d)])
                t = time.perf_counter()
                labels = CANDIDATES[name](a, k, rng)
                seconds[j] += time.perf_counter() - t
                if labels.shape != truth.shape or labels.dtype.kind not in "iu":
                    raise AssertionError(f"{name} returned {labels.dtype} {labels.shape}")
                live = labels >= 0
                ari[j, s] = adjusted_rand(truth[live], labels[live])
    return i, ari, seconds


def run(instances: list[dict], methods: list[str], n_seeds: int, workers: int,
        log: Callable[[str], None] = lambda s: None) -> tuple[np.ndarray, np.ndarray]:
    """ARI of every method on every instance with ``n_seeds`` method seeds, and seconds per method (summed).

    Returns ``ari`` of shape ``(instances, methods, seeds)`` and ``seconds`` of
    shape ``(methods,)``. Method seed ``s`` on an instance is
    ``default_rng([s, crc32(split|case|net)])``: the same draws for every method
    and every run. Each worker runs BLAS and OpenMP single-threaded.
    """
    _JOB.update(instances=instances, methods=methods, n_seeds=n_seeds)
    ari = np.zeros((len(instances), len(methods), n_seeds))
    seconds = np.zeros(len(methods))
    order = sorted(range(len(instances)), key=lambda i: -instances[i]["matrix"].size)  # largest first
    if workers > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            results = pool.imap_unordered(_run_one, order)
            for n, (i, a, sec) in enumerate(results):
                ari[i], seconds = a, seconds + sec
                if n % 20 == 0 or n == len(order) - 1:
                    log(f"  [{n + 1}/{len(order)}] {instances[i]['case']} net {instances[i]['net']}")
    else:
        for i in order:
            _, ari[i], sec = _run_one(i)
            seconds += sec
    return ari, seconds


def time_calls(fn: Callable[[], object], repeat: int = 15) -> float:
    """Median CPU seconds of ``repeat`` single-threaded calls of ``fn`` (after one warm-up call).

    CPU time of this process, not wall time: on a shared machine wall time
    counts the other jobs' turns too (it moved ratios between methods by 50 %
    from one run to the next here); CPU time still includes what contention
    for caches and memory costs.
    """
    with threadpool_limits(1):
        fn()
        times = []
        for _ in range(repeat):
            t = time.process_time()
            fn()
            times.append(time.process_time() - t)
    return float(np.median(times))
