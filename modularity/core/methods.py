"""Co-clustering of a magnitude profile: the production methods behind one entry point.

:func:`cocluster` groups the rows (consumer units) and the columns (producer
units) of a non-negative ``(n_rows, n_cols)`` profile into ``k`` co-clusters
with one of the methods named in :data:`METHODS` (the same names as
:data:`~modularity.core.defaults.METHOD_NAMES`, which the command line reads
without importing numpy):

``spectral_refined`` (:func:`refined`)
    The noise-edge spectral embedding and k-means below, then refined by
    information-theoretic co-clustering and merge-split moves
    (:mod:`modularity.core.refine`), which undo the partitions one embedding
    plus k-means can settle on: units on the wrong side of a boundary, and a
    merged pair of small groups beside a split large one. Rows join the column
    cluster that receives the largest share of their weight.
``adaptive_sqrt_unit_r10``
    Bipartite spectral embedding of the columns whose dimension follows the
    matrix's own noise edge (:func:`adaptive`), k-means on the columns alone;
    rows join the nearest column centroid.
``dhillon_km1_cols_sv_r10``
    :func:`~modularity.core.spectral.cocluster_spectrum`: ``k - 1`` non-trivial
    singular vectors weighted by their singular values, columns alone.
``sklearn_scc``, ``sklearn_sbc_bistochastic``, ``sklearn_sbc_log``
    scikit-learn's ``SpectralCoclustering`` (the reference) and
    ``SpectralBiclustering``; rows join the column cluster that receives the
    largest share of their weight (:func:`rows_from_columns`).

Which is the default (:data:`~modularity.core.defaults.DEFAULT_METHOD`) and
why: ``scripts/method_benchmark.py`` chooses among the candidates of the
repository's ``benchmarks/`` package on a selection split and reports on a
held-out one; the numbers are in ``reports/methods.md``. All-zero rows and
columns are set aside before anything is normalised and get label ``-1``, so
no method returns NaN (scikit-learn's ``SpectralCoclustering`` does on such
input, scikit-learn issue 8809).

References
----------
.. [1] Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
   spectral graph partitioning. *KDD 2001*, 269-274.
.. [2] Dhillon, I. S., Mallela, S., & Modha, D. S. (2003). Information-theoretic
   co-clustering. *KDD 2003*, 89-98.
.. [3] Kluger, Y., Basri, R., Chang, J. T., & Gerstein, M. (2003). Spectral
   biclustering of microarray data: coclustering genes and conditions.
   *Genome Research*, 13(4), 703-716.
.. [4] Ng, A. Y., Jordan, M. I., & Weiss, Y. (2002). On spectral clustering:
   analysis and an algorithm. *NIPS 14*.
.. [5] Bai, Z. D., & Yin, Y. Q. (1993). Limit of the smallest eigenvalue of a large
   dimensional sample covariance matrix. *Annals of Probability*, 21(3), 1275-1294.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType

import numpy as np

from ..errors import ModularityError
from .defaults import DEFAULT_METHOD, METHOD_NAMES
from .edge import edge_count, noise_edge
from .refine import balance, itcc, merge_split
from .spectral import (
    cocluster_spectrum,
    degree_normalised,
    kmeans,
    live_submatrix,
    nearest_centre,
    normalise_bipartite,
    relabel,
    top_singular,
    top_singular_values,
)

__all__ = [
    "DEFAULT_METHOD",
    "EDGE_WEIGHTS",
    "EMBEDDINGS",
    "METHODS",
    "METHOD_NAMES",
    "CoClusters",
    "adaptive",
    "cocluster",
    "column_embeddings",
    "columns_on_live",
    "edge_count",
    "edge_embedding",
    "noise_edge",
    "refined",
    "rows_from_columns",
    "sklearn_sbc",
    "sklearn_scc",
]

ColumnMethod = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
"""``(a, k, rng) -> column labels``: the form of a method that groups the columns only."""

_SEED_MAX = 2 ** 31 - 1


@dataclass(frozen=True)
class CoClusters:
    """A co-clustering of a profile's rows and columns.

    Attributes
    ----------
    rows : ndarray of int, shape (n_rows,)
        Cluster of each row (consumer unit), ``-1`` for all-zero rows.
    cols : ndarray of int, shape (n_cols,)
        Cluster of each column (producer unit) in ``0..k-1``, numbered by
        first appearance; ``-1`` for all-zero columns.
    values : ndarray of float
        The leading singular values of ``D_r^-1/2 A D_c^-1/2`` of the live
        submatrix (as many as asked for, fewer when it is smaller, none when
        nothing is live).
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    def __repr__(self) -> str:
        live = self.cols[self.cols >= 0]
        sizes = "/".join(map(str, np.bincount(live)[:12])) if live.size else "-"
        return (f"CoClusters({len(self.rows)} rows x {len(self.cols)} columns, column clusters {sizes}, "
                f"{int((self.cols < 0).sum())} dead columns, {len(self.values)} values)")


Clusterer = Callable[[np.ndarray, int, np.random.Generator, int], CoClusters]
"""``(a, k, rng, n_values) -> CoClusters``: the form of every registered method."""


# ---------------------------------------------------------------- shared steps

def _checked(a: np.ndarray) -> np.ndarray:
    """``a`` as a float64 matrix, or a one-line error if it is not 2-d, finite and non-negative."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ModularityError(f"expected a 2-d matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or (a < 0).any():
        raise ModularityError("the matrix must be finite and non-negative")
    return a


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber non-negative labels ``0, 1, ...`` by first appearance; ``-1`` stays."""
    out = np.full(len(labels), -1)
    seen: dict[int, int] = {}
    for i, x in enumerate(labels.tolist()):
        if x >= 0:
            out[i] = seen.setdefault(x, len(seen))
    return out


def columns_on_live(fn: ColumnMethod, a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Run a column method on the submatrix of non-zero rows and columns; ``-1`` for the rest.

    ``a`` is checked (2-d, finite, non-negative); ``k`` is clipped to
    ``1..min(live rows, live columns)``; with one group, or one live column,
    every live column gets label 0 and ``fn`` is not called. ``fn`` gets its own
    copy of the matrix, never the caller's. Labels are numbered by first appearance.
    """
    a = _checked(a)
    labels = np.full(a.shape[1], -1)
    _, cols, k, sub = live_submatrix(a, k)
    if sub is None:
        return labels
    if k == 1:
        labels[cols] = 0
        return labels
    labels[cols] = fn(sub.copy() if sub is a else sub, k, rng)
    return _canonical(labels)


def rows_from_columns(a: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Each live row joins the column cluster that receives the largest share of its weight (per cluster volume).

    Examples
    --------
    >>> a = np.array([[1.0, 1.0, 0.0], [0.0, 0.1, 2.0], [0.0, 0.0, 0.0]])
    >>> rows_from_columns(a, np.array([0, 0, 1])).tolist()
    [0, 1, -1]
    """
    rows = np.full(a.shape[0], -1)
    live_cols = cols >= 0
    if not live_cols.any():
        return rows
    k = int(cols.max()) + 1
    h = np.zeros((a.shape[1], k))
    h[np.flatnonzero(live_cols), cols[live_cols]] = 1.0
    vol = np.maximum(a.sum(axis=0) @ h, 1e-300)
    score = (a @ h) / vol
    live_rows = a.any(axis=1)
    rows[live_rows] = score[live_rows].argmax(axis=1)
    return rows


def _live_values(a: np.ndarray, n_values: int) -> np.ndarray:
    """The ``n_values`` leading singular values of the degree-normalised live submatrix."""
    live_r, live_c = a.any(axis=1), a.any(axis=0)
    if not live_c.any():
        return np.zeros(0)
    return top_singular_values(normalise_bipartite(a[np.ix_(live_r, live_c)]), n_values)


# ---------------------------------------------------------------- the default: noise-edge embedding

EDGE_WEIGHTS = ("sqrt", "sv", "one", "shrink")


def edge_embedding(sub: np.ndarray, k: int, n_values: int = 0, weights: str = "sqrt", unit: bool = True,
                   count: str = "edge") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column and row embeddings of :func:`adaptive`, and the leading singular values.

    ``sub`` has no zero rows or columns and ``2 <= k <= min(sub.shape)``. The
    leading singular vector of ``D_r^-1/2 A D_c^-1/2`` is kept (constant after
    the ``D^-1/2`` scaling on a connected bipartite graph; a block indicator on a
    disconnected one, where the top singular value 1 repeats), plus
    :func:`edge_count` non-trivial ones (``count="km1"``: ``k - 1`` always);
    vectors of a zero singular value are arbitrary and are left out.

    Parameters
    ----------
    weights : {"sqrt", "sv", "one", "shrink"}
        Scale of each coordinate: ``sqrt(s)``, ``s``, 1, or ``max(s - edge, 0.05 edge)``.
    unit : bool
        Scale every unit's vector to unit length (Ng, Jordan & Weiss).

    Returns
    -------
    zc : ndarray, shape (n_cols, d)
    zr : ndarray, shape (n_rows, d)
    values : ndarray, shape (min(n_values, ...),)
    """
    an, dr, dc = degree_normalised(sub)
    u, s, v = top_singular(an, max(k, n_values))
    tau = noise_edge(an, dr, dc)
    n = edge_count(s, k, tau) if count == "edge" else k - 1
    n = max(1, min(n, len(s) - 1))
    keep = np.flatnonzero(s[:n + 1] > 1e-6 * s[0])  # from a Gram matrix: sqrt(eps) resolution
    sk = s[keep]
    if weights == "sqrt":
        w = np.sqrt(sk)
    elif weights == "sv":
        w = sk
    elif weights == "one":
        w = np.ones(len(sk))
    elif weights == "shrink":
        w = np.maximum(sk - tau, 0.05 * tau)
    else:
        raise ModularityError(f"unknown weights '{weights}'; choose one of {', '.join(EDGE_WEIGHTS)}")
    zc = v[:, keep] * w / np.sqrt(dc)[:, None]
    zr = u[:, keep] * w / np.sqrt(dr)[:, None]
    if unit:
        zc = zc / np.maximum(np.linalg.norm(zc, axis=1, keepdims=True), 1e-300)
        zr = zr / np.maximum(np.linalg.norm(zr, axis=1, keepdims=True), 1e-300)
    return zc, zr, s[:n_values]


def _adaptive_live(sub: np.ndarray, k: int, rng: np.random.Generator, weights: str, unit: bool,
                   count: str, n_init: int) -> np.ndarray:
    zc, _, _ = edge_embedding(sub, k, 0, weights, unit, count)
    return kmeans(zc, k, rng, n_init=n_init)


def adaptive(a: np.ndarray, k: int, rng: np.random.Generator, weights: str = "sqrt", unit: bool = True,
             count: str = "edge", n_init: int = 10) -> np.ndarray:
    """Column labels from a bipartite spectral embedding whose dimension follows the noise edge.

    The number of non-trivial singular vectors of ``D_r^-1/2 A D_c^-1/2`` is the
    number of singular values above the estimated bulk edge
    (:func:`noise_edge`), clipped to ``ceil(log2 k) .. k - 1``: as few as
    scikit-learn uses when the structure is at the noise level (a direction at
    the noise level only adds noise to k-means), and ``k - 1`` when there are
    that many structured directions. With its defaults this is the default
    method's column clustering; the other parameter values are the benchmark's.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes (rows: consumer units; columns: producer units).
    k : int
        Number of groups; clipped to the number of live rows and columns.
    rng : numpy.random.Generator
        Seeds k-means++.
    weights, unit, count
        See :func:`edge_embedding`.
    n_init : int
        k-means restarts (the lowest inertia wins).

    Returns
    -------
    ndarray of int, shape (n_cols,)
        Labels ``0..k-1`` by first appearance; ``-1`` for all-zero columns.

    References
    ----------
    Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
    spectral graph partitioning. KDD 2001, 269-274.
    Ng, A. Y., Jordan, M. I., & Weiss, Y. (2002). On spectral clustering:
    analysis and an algorithm. NIPS 14.

    Examples
    --------
    >>> a = np.kron(np.eye(3), np.ones((4, 2)))
    >>> adaptive(a, 3, np.random.default_rng(0)).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    return columns_on_live(partial(_adaptive_live, weights=weights, unit=unit, count=count, n_init=n_init),
                           a, k, rng)


def _adaptive_cocluster(a: np.ndarray, k: int, rng: np.random.Generator, n_values: int) -> CoClusters:
    """The default: :func:`adaptive` on the columns; each live row joins the nearest column centroid."""
    row_labels = np.full(a.shape[0], -1)
    col_labels = np.full(a.shape[1], -1)
    rows, cols, k, sub = live_submatrix(a, k)
    if sub is None:
        return CoClusters(row_labels, col_labels, np.zeros(0))
    if k == 1:
        values = top_singular(degree_normalised(sub)[0], n_values)[1] if n_values else np.zeros(0)
        row_labels[rows], col_labels[cols] = 0, 0
        return CoClusters(row_labels, col_labels, values)
    zc, zr, values = edge_embedding(sub, k, n_values)
    labels = kmeans(zc, k, rng, n_init=10)
    col_labels[cols] = labels
    row_labels[rows] = nearest_centre(zc, zr, labels, k)
    return CoClusters(*relabel(row_labels, col_labels), values)


def _spectrum_cocluster(a: np.ndarray, k: int, rng: np.random.Generator, n_values: int) -> CoClusters:
    """The previous default: :func:`~modularity.core.spectral.cocluster_spectrum` (columns alone, 10 restarts)."""
    return CoClusters(*cocluster_spectrum(a, k, rng, n_values=n_values))


# ---------------------------------------------------------------- several embeddings, refined by information

EMBEDDINGS = {
    "edge": ("edge", "sqrt", True),  # the default's: noise-edge count, sqrt(s) weights, unit rows
    "km1": ("km1", "sqrt", True),  # k - 1 vectors always
    "log2k": ("log2k", "sqrt", True),  # ceil(log2 k) vectors (scikit-learn's count)
    "log2k_one": ("log2k", "one", True),
    "km1_sv": ("km1", "sv", False),  # the previous default's
}
"""Column embeddings :func:`refined` can start from.

``(vector count, weights, unit rows)`` as in :func:`edge_embedding`.
"""


def column_embeddings(sub: np.ndarray, k: int, names: tuple[str, ...],
                      n_values: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """The column embeddings ``names`` (keys of :data:`EMBEDDINGS`) from one decomposition of ``D_r^-1/2 A D_c^-1/2``,
    and its ``n_values`` leading singular values.

    ``sub`` has no zero rows or columns and ``2 <= k <= min(sub.shape)``.
    """
    an, dr, dc = degree_normalised(sub)
    _, s, v = top_singular(an, max(k, n_values))
    tau = noise_edge(an, dr, dc)
    out = []
    for name in names:
        count, weights, unit = EMBEDDINGS[name]
        n = {"edge": edge_count(s, k, tau), "km1": k - 1, "log2k": math.ceil(math.log2(k))}[count]
        n = max(1, min(n, len(s) - 1))
        keep = np.flatnonzero(s[:n + 1] > 1e-6 * s[0])
        sk = s[keep]
        w = {"sqrt": np.sqrt(sk), "sv": sk, "one": np.ones(len(sk))}[weights]
        z = v[:, keep] * w / np.sqrt(dc)[:, None]
        if unit:
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-300)
        out.append(z)
    return out, s[:n_values]


def _start_rows(w: np.ndarray, cols: np.ndarray, k: int, row_factor: int) -> np.ndarray:
    """Row clusters to start the refinement from: each row joins the column cluster that receives the largest
    share of its weight (as :func:`rows_from_columns`), and each such group is cut at the quantiles of that share
    into ``row_factor`` groups of equal count (rows that prefer the cluster strongly or weakly)."""
    onehot = np.eye(k, dtype=w.dtype)[cols]
    share = (w @ onehot).astype(np.float64) / np.maximum(w.sum(axis=0, dtype=np.float64) @ onehot, 1e-300)
    first = share.argmax(axis=1)
    rows = first.copy()
    for c in range(k):
        members = np.flatnonzero(first == c)
        if len(members) >= row_factor > 1:
            rank = np.argsort(np.argsort(share[members, c], kind="stable"), kind="stable")
            rows[members] = c + k * (rank * row_factor // len(members))
    return rows


def _refined_live(sub: np.ndarray, k: int, rng: np.random.Generator, embeddings: tuple[str, ...], n_init: int,
                  balanced: bool, row_factor: int, max_iter: int, tol: float, moves: bool, tries: int,
                  n_values: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Column labels of :func:`refined` on a live submatrix, and its ``n_values`` leading singular values."""
    # balanced (or scaled) in float64 first, so that the float32 copy whose passes are the refinement's cost
    # neither overflows nor loses whole rows to underflow
    w = balance(sub, dtype=np.float32) if balanced else (sub / sub.max()).astype(np.float32)
    row_factor = max(1, min(row_factor, sub.shape[0] // k))
    k_rows = row_factor * k
    refined_starts: dict[bytes, tuple[np.ndarray, np.ndarray, float]] = {}
    starts, values = column_embeddings(sub, k, embeddings, n_values)
    for z in starts:
        cols = kmeans(z, k, rng, n_init=n_init)
        key = _canonical(cols).tobytes()
        if key not in refined_starts:  # two embeddings often give the same grouping (the edge count equals another)
            refined_starts[key] = itcc(w, _start_rows(w, cols, k, row_factor), cols, k_rows, k, max_iter, tol)
    rows, cols, _ = max(refined_starts.values(), key=lambda r: r[2])  # the first of equals
    if moves:
        rows, cols, _ = merge_split(w, rows, cols, k_rows, k, max_iter=max_iter, tol=tol, tries=tries)
    return cols, values


def refined(a: np.ndarray, k: int, rng: np.random.Generator, embeddings: tuple[str, ...] = ("edge",),
            n_init: int = 10, balanced: bool = True, row_factor: int = 2, max_iter: int = 20, tol: float = 1e-4,
            moves: bool = True, tries: int = 2) -> np.ndarray:
    """Column labels from several spectral embeddings, refined and chosen by the information they keep.

    1. One decomposition of ``D_r^-1/2 A D_c^-1/2`` gives each embedding of
       ``embeddings`` (:data:`EMBEDDINGS`); k-means (best of ``n_init``) groups
       the columns in each.
    2. Each distinct grouping is refined by information-theoretic
       co-clustering (:func:`~modularity.core.refine.itcc`) of the balanced
       matrix, with ``row_factor * k`` row clusters (each row starts in the
       column cluster that receives the largest share of its weight, split at
       the quantiles of that share).
    3. The refined grouping that keeps the most information ``I(R; C)`` wins;
       merge-split moves (:func:`~modularity.core.refine.merge_split`) then
       repair a merged pair plus a split group while that raises the
       information.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes (rows: consumer units; columns: producer units).
    k : int
        Number of groups; clipped to the number of live rows and columns.
    rng : numpy.random.Generator
        Seeds k-means++ (nothing after it draws).
    embeddings : tuple of str
        Keys of :data:`EMBEDDINGS`.
    n_init : int
        k-means restarts per embedding.
    balanced : bool
        Refine on the Sinkhorn-balanced matrix (every row and column weighs
        alike; :func:`~modularity.core.refine.balance`) instead of the raw one.
    row_factor : int
        Row clusters per column cluster in the refinement (consumer units may
        form more kinds than the producer's groups).
    max_iter, tol : int, float
        ITCC iterations per refinement: at most ``max_iter``, and none after one
        that raises the information by less than ``tol`` (relative).
    moves : bool
        Apply merge-split moves after the choice.
    tries : int
        Merge-split moves refined per round (the best by a one-step score).

    Returns
    -------
    ndarray of int, shape (n_cols,)
        Labels ``0..k-1`` by first appearance; ``-1`` for all-zero columns.

    References
    ----------
    Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
    spectral graph partitioning. KDD 2001, 269-274.
    Dhillon, I. S., Mallela, S., & Modha, D. S. (2003). Information-theoretic
    co-clustering. KDD 2003, 89-98.

    Examples
    --------
    >>> a = np.kron(np.eye(3), np.ones((4, 2))) + 0.01
    >>> refined(a, 3, np.random.default_rng(0)).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    def live(sub: np.ndarray, kk: int, r: np.random.Generator) -> np.ndarray:
        return _refined_live(sub, kk, r, tuple(embeddings), n_init, balanced, row_factor, max_iter, tol, moves,
                             tries)[0]

    return columns_on_live(live, a, k, rng)


_REFINED_DEFAULTS = {name: p.default for name, p in inspect.signature(refined).parameters.items()
                     if p.default is not inspect.Parameter.empty}


def _refined_cocluster(a: np.ndarray, k: int, rng: np.random.Generator, n_values: int) -> CoClusters:
    """:func:`refined` with its defaults; rows by :func:`rows_from_columns`, values from the same decomposition."""
    col_labels = np.full(a.shape[1], -1)
    _, cols, k, sub = live_submatrix(a, k)
    if sub is None:
        return CoClusters(np.full(a.shape[0], -1), col_labels, np.zeros(0))
    if k == 1:
        col_labels[cols] = 0
        values = top_singular(degree_normalised(sub)[0], n_values)[1] if n_values else np.zeros(0)
    else:
        live, values = _refined_live(sub.copy() if sub is a else sub, k, rng, **_REFINED_DEFAULTS, n_values=n_values)
        col_labels[cols] = live
        col_labels = _canonical(col_labels)
    return CoClusters(rows_from_columns(a, col_labels), col_labels, values)


# ---------------------------------------------------------------- scikit-learn

def int_seed(rng: np.random.Generator) -> int:
    """One draw from ``rng`` as the integer ``random_state`` scikit-learn takes."""
    return int(rng.integers(_SEED_MAX))


def single_threaded():
    """Limit BLAS and OpenMP to one thread (a context manager).

    scikit-learn's k-means on these few-thousand-point problems gains nothing
    from threads, and on a small shared machine oversubscription made
    ``SpectralBiclustering`` 10 to 30 times slower.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _scc_live(sub: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.cluster import SpectralCoclustering

    with single_threaded():
        return SpectralCoclustering(n_clusters=k, random_state=int_seed(rng)).fit(sub).column_labels_


def sklearn_scc(a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Column labels of scikit-learn's ``SpectralCoclustering`` (defaults) on the live submatrix.

    Randomized SVD, ``1 + ceil(log2 k)`` singular vectors less the trivial
    one, rows and columns clustered together, 10 k-means restarts; seeded by
    one draw of ``rng``.

    References
    ----------
    Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
    spectral graph partitioning. KDD 2001, 269-274.

    Examples
    --------
    >>> a = np.kron(np.eye(2), np.ones((3, 2)))
    >>> sklearn_scc(a, 2, np.random.default_rng(0)).tolist()
    [0, 0, 1, 1]
    """
    return columns_on_live(_scc_live, a, k, rng)


def _sbc_live(sub: np.ndarray, k: int, rng: np.random.Generator, method: str) -> np.ndarray:
    from sklearn.cluster import SpectralBiclustering

    if method == "log":
        pos = sub[sub > 0]
        sub = np.where(sub > 0, sub, 0.5 * pos.min())
    # scikit-learn's defaults are n_components=6, n_best=3; both must fit the matrix
    n_components = max(2, min(6, min(sub.shape) - 1))
    n_best = min(3, n_components - 1 if method == "bistochastic" else n_components)
    model = SpectralBiclustering(n_clusters=(k, k), method=method, n_components=n_components,
                                 n_best=max(1, n_best), random_state=int_seed(rng))
    with single_threaded():
        return model.fit(sub).column_labels_


def sklearn_sbc(a: np.ndarray, k: int, rng: np.random.Generator, method: str = "bistochastic") -> np.ndarray:
    """Column labels of scikit-learn's ``SpectralBiclustering`` (checkerboard) on the live submatrix.

    Parameters
    ----------
    method : {"log", "bistochastic", "scale"}
        Normalisation. ``"log"`` floors zeros inside the live submatrix at half
        its smallest positive entry (the log of zero is undefined).

    References
    ----------
    Kluger, Y., Basri, R., Chang, J. T., & Gerstein, M. (2003). Spectral
    biclustering of microarray data: coclustering genes and conditions.
    Genome Research, 13(4), 703-716.
    """
    return columns_on_live(partial(_sbc_live, method=method), a, k, rng)


def _from_columns(columns: ColumnMethod) -> Clusterer:
    """A co-clustering from a column method: rows by :func:`rows_from_columns`, values of the live submatrix."""

    def run(a: np.ndarray, k: int, rng: np.random.Generator, n_values: int) -> CoClusters:
        cols = columns(a, k, rng)
        return CoClusters(rows_from_columns(a, cols), cols, _live_values(a, n_values))

    run.__doc__ = f"Co-clustering whose columns come from {getattr(columns, '__name__', columns)!r}."
    return run


# ---------------------------------------------------------------- registry and entry point

METHODS: Mapping[str, Clusterer] = MappingProxyType({
    "spectral_refined": _refined_cocluster,
    "adaptive_sqrt_unit_r10": _adaptive_cocluster,
    "dhillon_km1_cols_sv_r10": _spectrum_cocluster,
    "sklearn_scc": _from_columns(sklearn_scc),
    "sklearn_sbc_bistochastic": _from_columns(partial(sklearn_sbc, method="bistochastic")),
    "sklearn_sbc_log": _from_columns(partial(sklearn_sbc, method="log")),
})
"""Every production co-clustering by name (read-only); the order of :data:`METHOD_NAMES`."""

if tuple(METHODS) != METHOD_NAMES or DEFAULT_METHOD not in METHODS:  # pragma: no cover - the CLI offers these names
    raise ImportError(f"modularity.core.defaults: METHOD_NAMES {METHOD_NAMES} or DEFAULT_METHOD {DEFAULT_METHOD!r} "
                      f"do not match the registered {tuple(METHODS)}")


def cocluster(a: np.ndarray, k: int, rng: np.random.Generator | int | None = None,
              method: str = DEFAULT_METHOD, n_values: int = 0) -> CoClusters:
    """Co-cluster the rows and columns of a non-negative profile with a production method.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes (rows: consumer units; columns: producer units).
    k : int
        Number of co-clusters; clipped to ``1..min(live rows, live columns)``.
    rng : Generator, int or None
        Randomness for k-means (and scikit-learn's randomized SVD).
    method : str
        A key of :data:`METHODS`.
    n_values : int
        Also return this many leading singular values of ``D_r^-1/2 A D_c^-1/2``
        of the live submatrix.

    Returns
    -------
    CoClusters
        Row and column labels (``-1`` for all-zero rows and columns, never NaN)
        and the singular values.

    Raises
    ------
    ModularityError
        For an unknown method, a matrix that is not 2-d, or negative or non-finite entries.

    Examples
    --------
    >>> a = np.kron(np.eye(2), np.ones((3, 2)))
    >>> res = cocluster(a, 2, 0, n_values=2)
    >>> res.rows.tolist(), res.cols.tolist(), np.round(res.values, 6).tolist()
    ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1], [1.0, 1.0])
    """
    if method not in METHODS:
        raise ModularityError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
    a = _checked(a)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return METHODS[method](a, k, rng, n_values)
