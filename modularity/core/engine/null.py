"""The null draws of one producer layer as batched torch work: :class:`NullEngine` and :func:`sequential_draws`.

A draw's numbers depend only on ``(seed, layer, draw index)``: its shuffles
(:class:`~modularity.core.keyed.KeyedPermutation`, one stream per consumer) and
its k-means++ seeds (:func:`~modularity.core.keyed.uniforms`, one stream per
clustering) are keyed on them, on every device and for any batch size. The
observed profile goes through the same code with the reserved key
:data:`~modularity.core.keyed.OBSERVED`.

What one draw computes is ``analysis.matrix_statistics`` for the method
``adaptive_sqrt_unit_r10`` (the embedding and k-means that the default
``spectral_refined`` starts from, without its refinement), with keyed k-means
seeds: the co-clustering (:func:`~modularity.core.engine.cocluster.cocluster_adaptive`),
its bipartite n-cut, the leading ``n_top`` normalised singular values and,
where the units are not exchangeable (``branches`` given), ARI and NMI against
the branches and the two scale controls (the co-clustering of the
column-normalised profile, and 4-restart k-means of the log column norms).

Where each step runs on the CPU (the numpy/SciPy routine or the batched torch
one) is chosen by :func:`cpu_solver` from measurements recorded in
BENCHMARKS.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from ...errors import ModularityError
from ..graph import ChannelGraph
from ..keyed import OBSERVED, Purpose, draw_key, uniforms
from ..spectral import relabel
from .cocluster import N_INIT, cocluster_adaptive
from .device import resolve_device, threads, usable_cores
from .kmeans import kmeans
from .scores import ari_nmi, bipartite_ncut
from .shuffle import ShuffledProfiles
from .twin import twin_statistics

__all__ = ["NullEngine", "DrawBatch", "sequential_draws", "cpu_route", "cpu_solver", "SUPPORTED_NULLS",
           "SUPPORTED_METHODS",
           "N_INIT_NORMS"]

SUPPORTED_NULLS = ("shuffle",)
SUPPORTED_METHODS = ("adaptive_sqrt_unit_r10",)
N_INIT_NORMS = 4
"""k-means restarts of the column-norms control (``spectral.kmeans``'s default, as the analysis calls it)."""
STREAM_MAIN, STREAM_UNIT, STREAM_NORMS = 0, 1, 2  # k-means streams of one draw
TORCH_SIDE = 2048
"""On the CPU, profiles with a side this long or longer take the torch route (see :func:`cpu_route`)."""
TORCH_ENTRIES = 1 << 22
"""On the CPU, layers whose consumers hold this many weights or more take the torch route."""
_THREADED_FROM = 1 << 21
"""Profiles with at least this many entries are decomposed on every usable core (smaller ones on one)."""


def cpu_route(profiles: ShuffledProfiles) -> str:
    """``"torch"`` or ``"numpy"`` for a layer's draws on the CPU (see :class:`NullEngine`), by measured cost.

    Small layers are cheaper draw by draw in numpy: torch's per-operation
    overhead dominates their small matrices, and numpy's float32 subset
    eigensolver beats a full float64 ``eigh`` from about 500 columns. Long
    profiles and large shuffles gain from the torch route (batched ``eigh`` of
    the Gram matrix, block Krylov beyond 2048 columns). Both routes build the
    profiles by the same scatter. The thresholds come from the engine
    branch's per-step timings of 2026-12-04 on the 2-core machine; re-measure
    with ``scripts/benchmark_device.py`` (BENCHMARKS.md, "keyed null").
    """
    m, n = profiles.shape
    entries = sum(c.flat.numel() for c in profiles._info.values())
    return "torch" if max(m, n) >= TORCH_SIDE or entries >= TORCH_ENTRIES else "numpy"


def cpu_solver(shape: tuple[int, int]) -> str:
    """Which eigensolver the torch route uses on the CPU for profiles of ``shape``.

    See :func:`~modularity.core.engine.spectra.top_singular`.

    ``"torch"`` throughout: a batched float64 ``eigh`` of the Gram matrix up to
    2048 columns on its smaller side, block Krylov beyond, which the engine
    branch measured faster than numpy's ARPACK route on 4096 x 4096 profiles.
    The numpy route stays selectable (``"scipy"``) for comparison.
    """
    return "torch"


@dataclass
class DrawBatch:
    """The statistics of a batch of draws, one row per draw (numpy arrays).

    Attributes
    ----------
    indices : ndarray of int, shape (B,)
        Draw indices (:data:`~modularity.core.keyed.OBSERVED` for the observation).
    ncut : ndarray, shape (B,)
    top : ndarray, shape (B, n_top)
        Leading singular values of the normalised live profile (NaN where it has fewer).
    col_labels, row_labels : ndarray of int, shapes (B, n_units), (B, n_rows)
        Co-clusters, numbered by first appearance (columns, then rows); ``-1`` dead.
    ari, nmi, ari_unit_norm, ari_column_norms : ndarray, shape (B,), or None
        Recovery of the branches and its two scale controls (only with branches).
    cols_unit_norm, cols_norms : ndarray of int, shape (B, n_units), or None
        The controls' column labels.
    """

    indices: np.ndarray
    ncut: np.ndarray
    top: np.ndarray
    col_labels: np.ndarray
    row_labels: np.ndarray
    ari: np.ndarray | None = None
    nmi: np.ndarray | None = None
    ari_unit_norm: np.ndarray | None = None
    ari_column_norms: np.ndarray | None = None
    cols_unit_norm: np.ndarray | None = None
    cols_norms: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def head(self, n: int) -> DrawBatch:
        """The first ``n`` draws."""
        # field by field (getattr: Any), so that a new field is cut too; each stays an array or None
        cut: dict[str, Any] = {f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[:n]
                               for f in fields(self)}
        return replace(self, **cut)

    @staticmethod
    def concat(batches: list[DrawBatch]) -> DrawBatch:
        """The draws of several batches, in order."""
        first = batches[0]
        joined: dict[str, Any] = {f.name: None if getattr(first, f.name) is None else
                                  np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(first)}
        return DrawBatch(**joined)

    def values(self, i: int) -> np.ndarray:
        """Draw ``i``'s leading singular values without the NaN padding."""
        v = self.top[i]
        return v[~np.isnan(v)]


class NullEngine:
    """Null draws of one producer layer, many at once, on the CPU or a GPU.

    Parameters
    ----------
    graph : ChannelGraph
    producer : str
    consumers : sequence of str, optional
        The layers whose weights the null shuffles, as the analysis found them
        (checked against the profile's own).
    reduction : {"l1", "l2", "max"}
    expand : {"none", "depthwise", "product"}
    null : {"shuffle"}
    k : int
        Co-clusters.
    branches : ndarray of int, optional
        True branch labels, where the recovery is re-fitted on every draw.
    method : str
        The co-clustering; only ``adaptive_sqrt_unit_r10`` is implemented here.
    seed : int
    device : {"auto", "cpu", "cuda"} or torch.device
    n_top : int
        Leading normalised singular values kept per draw.
    batch_size : int, optional
        Draws decomposed at once (default: from the profile's size and the device).
    n_threads : int, optional
        CPU threads for the engine's work (default: every usable core).
    route : {"auto", "torch", "numpy"}
        ``numpy`` (CPU only) builds the profiles in torch as ``torch`` does and
        computes each draw's statistics with the numpy twins of the steps
        (:mod:`~modularity.core.engine.twin`) on the same keyed numbers: equal
        results, less overhead on small layers. ``auto`` picks by
        :func:`cpu_route` on the CPU and ``torch`` on a GPU.

    Raises
    ------
    ModularityError
        For a null, expand mode or method the engine does not implement
        (:meth:`unsupported` says which), or an unknown device.
    """

    def __init__(self, graph: ChannelGraph, producer: str, consumers=None, *, reduction: str = "l1",
                 expand: str = "depthwise", null: str = "shuffle", k: int, branches: np.ndarray | None = None,
                 method: str = "adaptive_sqrt_unit_r10", seed: int = 0, device: str | torch.device = "auto",
                 n_top: int = 20, batch_size: int | None = None, n_threads: int | None = None,
                 route: str = "auto") -> None:
        why = self.unsupported(null, expand, method)
        if why:
            raise ModularityError(f"the torch engine cannot run this layer's null: {why}")
        self.device = resolve_device(device)
        self.producer, self.seed, self.k, self.n_top = producer, int(seed), int(k), int(n_top)
        self.n_threads = n_threads or usable_cores()
        self.profiles = ShuffledProfiles(graph, producer, reduction, expand, self.device, workers=self.n_threads)
        self.route = route if route != "auto" else (cpu_route(self.profiles) if self.device.type == "cpu" else "torch")
        if self.route not in ("torch", "numpy") or (self.route == "numpy" and self.device.type != "cpu"):
            raise ModularityError(f"route '{route}': choose auto, torch or (on the CPU) numpy")
        if consumers is not None and list(consumers) != self.profiles.consumers:
            raise ModularityError(f"layer '{producer}': consumers {list(consumers)} differ from the profile's "
                                  f"{self.profiles.consumers}")
        self.branches = None if branches is None else np.asarray(branches)
        self._truth = self._labels(branches)
        self.shape = self.profiles.shape
        self.solver = cpu_solver(self.shape) if self.device.type == "cpu" else "torch"
        self.batch_size = batch_size or self._default_batch()
        # threads pay off only for large products: on small matrices (and on a busy machine) their
        # synchronisation costs more than it saves (googlenet's draws ran several times slower on 2 threads)
        self._stat_threads = self.n_threads if self.shape[0] * self.shape[1] >= _THREADED_FROM else 1

    @staticmethod
    def unsupported(null: str, expand: str, method: str) -> str:
        """Why the engine cannot run this configuration ('' when it can)."""
        if null not in SUPPORTED_NULLS:
            return f"null '{null}' (the engine draws {', '.join(SUPPORTED_NULLS)})"
        if expand not in ("none", "depthwise", "product"):
            return f"expand '{expand}' (signed kernels are composed draw by draw in numpy)"
        if method not in SUPPORTED_METHODS:
            return f"method '{method}' (the engine implements {', '.join(SUPPORTED_METHODS)})"
        return ""

    def _default_batch(self) -> int:
        m, n = self.shape
        per_draw = 8 * m * n * 6 + 8 * N_INIT * self.k * n * 4  # profile, normalised copy, Gram, k-means distances
        budget = (4 << 30) if self.device.type == "cuda" else (96 << 20)
        return int(max(1, min(64 if self.device.type == "cuda" else 16, budget // per_draw)))

    def _threads(self, n: int | None = None):
        return threads(n or self.n_threads) if self.device.type == "cpu" else _nothing()

    def keys(self, indices) -> list[tuple[int, int]]:
        return [draw_key(self.seed, self.producer, int(i)) for i in indices]

    def _grid(self, keys: list[tuple[int, int]], stream: int, restarts: int) -> torch.Tensor:
        kt = torch.as_tensor(keys, dtype=torch.int64, device=self.device)
        u = uniforms(kt, Purpose.KMEANS, stream, restarts * self.k, device=self.device)
        return u.reshape(len(keys), restarts, self.k)

    def grids(self, index: int) -> dict[str, np.ndarray]:
        """Draw ``index``'s k-means uniforms, as :func:`~modularity.core.engine.twin.twin_statistics` takes them."""
        return self._grids(self.keys([index])[0])

    # ---------------------------------------------------------------- statistics

    def draws(self, indices) -> DrawBatch:
        """Statistics of the null draws ``indices`` (each depends only on the seed, the layer and its index)."""
        indices = [int(i) for i in indices]
        if any(i < 0 for i in indices):
            raise ValueError("null draw indices start at 0")
        if not indices:
            return self._empty()
        out: list[DrawBatch] = []
        if self.route == "numpy":  # the batch's profiles in torch (one scatter for small consumers), numpy statistics
            with self._threads(1):
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start:start + self.batch_size]
                    keys = self.keys(chunk)
                    matrices = self.profiles(keys).numpy()
                    out.extend(self._twin_draw(a, key, i, self.branches) for a, key, i in zip(matrices, keys, chunk))
            return DrawBatch.concat(out)
        for start in range(0, len(indices), self.batch_size):
            chunk = indices[start:start + self.batch_size]
            keys = self.keys(chunk)
            with self._threads(1):  # the shuffle's threads are its own workers, each op on one thread
                profiles = self.profiles(keys)
            with self._threads(self._stat_threads):
                out.append(self._statistics(profiles, keys, chunk, self._truth))
        return DrawBatch.concat(out)

    def _empty(self) -> DrawBatch:
        m, n = self.shape
        none = np.zeros(0)
        with_branches = self._truth is not None
        return DrawBatch(np.zeros(0, dtype=int), none, np.zeros((0, self.n_top)), np.zeros((0, n), dtype=int),
                         np.zeros((0, m), dtype=int), *([none] * 4 if with_branches else [None] * 4),
                         *([np.zeros((0, n), dtype=int)] * 2 if with_branches else [None] * 2))

    def observed(self, matrix: np.ndarray, branches: np.ndarray | None | str = "draws") -> DrawBatch:
        """The observed profile's statistics, through the same code as the draws (key :data:`OBSERVED`).

        ``branches``: score the recovery against these labels (``"draws"``: the
        engine's own; the analysis scores every observation, also where the
        draws need no re-fitted recovery).
        """
        truth = self._truth if isinstance(branches, str) else self._labels(branches)
        if self.route == "numpy":
            labels = None if truth is None else truth.cpu().numpy()
            with self._threads(1):
                return self._twin_draw(np.asarray(matrix, dtype=np.float64), self.keys([OBSERVED])[0], OBSERVED,
                                       labels)
        p = torch.as_tensor(np.asarray(matrix, dtype=np.float64), device=self.device)[None]
        with self._threads(self._stat_threads):
            return self._statistics(p, self.keys([OBSERVED]), [OBSERVED], truth)

    def _twin_draw(self, a: np.ndarray, key: tuple[int, int], index: int, branches) -> DrawBatch:
        """One draw's statistics by the numpy twins (``branches``: labels, or None/False for none)."""
        branches = branches if isinstance(branches, np.ndarray) else None
        st = twin_statistics(a, self.k, branches, self._grids(key), self.n_top)
        top = np.full((1, self.n_top), np.nan)
        top[0, :len(st["top"])] = st["top"]
        batch = DrawBatch(np.array([index]), np.array([st["ncut"]]), top, st["cols"][None], st["rows"][None])
        if branches is not None:
            batch.ari, batch.nmi = np.array([st["ari"]]), np.array([st["nmi"]])
            batch.ari_unit_norm, batch.ari_column_norms = np.array([st["ari_unit_norm"]]), \
                np.array([st["ari_column_norms"]])
            batch.cols_unit_norm, batch.cols_norms = st["cols_unit_norm"][None], st["cols_norms"][None]
        return batch

    def _grids(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        return {"main": self._grid([key], STREAM_MAIN, N_INIT)[0].cpu().numpy(),
                "unit": self._grid([key], STREAM_UNIT, N_INIT)[0].cpu().numpy(),
                "norms": self._grid([key], STREAM_NORMS, N_INIT_NORMS)[0].cpu().numpy()}

    def _labels(self, branches: np.ndarray | None) -> torch.Tensor | None:
        return None if branches is None else torch.as_tensor(np.asarray(branches), dtype=torch.long,
                                                             device=self.device)

    def _statistics(self, p: torch.Tensor, keys: list[tuple[int, int]], indices: list[int],
                    truth: torch.Tensor | None) -> DrawBatch:
        km = "numpy" if self.device.type == "cpu" else "torch"
        cc = cocluster_adaptive(p, self.k, self._grid(keys, STREAM_MAIN, N_INIT), self.n_top, self.solver, km)
        ncut = bipartite_ncut(p, cc.rows, cc.cols)
        rows, cols = cc.rows.cpu().numpy(), cc.cols.cpu().numpy()
        canon = [relabel(r, c) for r, c in zip(rows, cols)]
        batch = DrawBatch(np.asarray(indices), ncut.cpu().numpy(), cc.values.cpu().numpy(),
                          np.stack([c for _, c in canon]), np.stack([r for r, _ in canon]))
        if truth is None:
            return batch
        ari, nmi = ari_nmi(truth, cc.cols)
        norms = torch.linalg.vector_norm(p, dim=-2)  # (B, n)
        unit = torch.where(norms[:, None, :] > 0, p / norms.clamp_min(1e-300)[:, None, :], 0.0)
        cols_unit = cocluster_adaptive(unit, self.k, self._grid(keys, STREAM_UNIT, N_INIT), 0, self.solver, km).cols
        live = cc.cols >= 0
        ari_unit = ari_nmi(truth, torch.where(live, cols_unit, -1))[0]
        cols_norms = self._norm_labels(norms, live, self._grid(keys, STREAM_NORMS, N_INIT_NORMS))
        ari_norms = ari_nmi(truth, cols_norms)[0]
        batch.ari, batch.nmi = ari.cpu().numpy(), nmi.cpu().numpy()
        batch.ari_unit_norm, batch.ari_column_norms = ari_unit.cpu().numpy(), ari_norms.cpu().numpy()
        batch.cols_unit_norm, batch.cols_norms = cols_unit.cpu().numpy(), cols_norms.cpu().numpy()
        return batch

    def _norm_labels(self, norms: torch.Tensor, live: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """Clusters of the live units from their log column norm alone (4-restart 1-d k-means), per draw."""
        out = torch.full(norms.shape, -1, dtype=torch.long, device=norms.device)
        for i in range(norms.shape[0]):
            x = norms[i][live[i]].log()
            kk = min(self.k, int(torch.unique(x).numel()))
            if kk < 2:
                out[i, live[i]] = 0
                continue
            out[i, live[i]] = kmeans(x[None, :, None], kk, grid[i:i + 1, :, :kk])[0]
        return out


class _nothing:
    def __enter__(self) -> _nothing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _needed(extreme: int, drawn: int, h: int) -> int:
    """Draws still expected before ``h`` are extreme, at the rate seen so far (for batch sizes only)."""
    if extreme >= h:
        return 0
    if extreme == 0:
        return max(h - drawn, 1) if drawn < h else 1 << 30
    return math.ceil((h - extreme) * drawn / extreme)


def _recovery(batch: DrawBatch) -> np.ndarray:
    """The batch's ARI, which a sequential test of the recovery reads (present where the draws had branches)."""
    if batch.ari is None:
        raise ValueError("recovery=True needs the ARI of the observation and of the draws: an engine with branches")
    return batch.ari


def sequential_draws(engine: NullEngine, observed: DrawBatch, n_permutations: int, h: int,
                     recovery: bool = False, tol: float = 1e-12) -> DrawBatch:
    """Null draws ``0, 1, ...`` until Besag-Clifford stops them (``h`` at least as extreme) or ``n_permutations``.

    The rule is ``analysis._stop``'s: every re-fitted statistic (the n-cut, and
    the ARI with ``recovery``) has ``h`` draws at least as extreme as observed
    (within ``tol``). Draws are computed in batches but read in index order, so
    the draws returned (and every p-value from them) do not depend on the batch
    size; batches are sized by the rate of extreme draws so far, so few draws
    past the stopping point are computed.
    """
    got: list[DrawBatch] = []
    done = 0
    ext_ncut = ext_ari = 0
    while done < n_permutations:
        if h:
            need = max(_needed(ext_ncut, done, h), _needed(ext_ari, done, h) if recovery else 0)
            size = max(1, min(engine.batch_size, need, n_permutations - done))
        else:
            size = min(engine.batch_size, n_permutations - done)
        batch = engine.draws(range(done, done + size))
        ari = _recovery(batch) if recovery else None
        for j in range(len(batch)):
            ext_ncut += int(batch.ncut[j] <= observed.ncut[0] + tol)
            if ari is not None:
                ext_ari += int(ari[j] >= _recovery(observed)[0] - tol)
            if h and ext_ncut >= h and (not recovery or ext_ari >= h):
                got.append(batch.head(j + 1))
                return DrawBatch.concat(got)
        got.append(batch)
        done += size
    return DrawBatch.concat(got) if got else engine.draws([])
