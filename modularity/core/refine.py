"""Information-theoretic refinement of a co-clustering: balancing, ITCC updates and merge-split moves.

A spectral embedding plus k-means gets most units right but has two failure
modes: units near a boundary end on the wrong side, and k-means (which favours
clusters of equal size) can settle on a partition that merges two small groups
and splits a large one. Both are local optima of k-means, so more restarts do
not remove them. This module scores a co-clustering by the mutual information
its blocks keep, ``I(R; C)`` of the joint distribution ``p(x, y) = W / sum(W)``
summed over row clusters ``R`` and column clusters ``C`` (the profile
log-likelihood of a degree-corrected block model [3]_), and raises it by

- :func:`itcc`: alternating row and column updates of information-theoretic
  co-clustering, each of which cannot lower ``I(R; C)`` (Dhillon, Mallela and
  Modha 2003 [1]_); they move units across a boundary;
- :func:`merge_split`: merging two column clusters while splitting another in
  two (by the second singular vectors of its own submatrix), followed by
  :func:`itcc`, kept only when the information rises; this undoes a merged pair
  plus a split group, which no move of single units can (compare the split-merge moves of [4]_). A move must also be
  detectable: the cluster it splits holds a direction above its noise edge,
  the pair it merges does not (the information alone would rather cut noise in
  a large group than keep a weak small one).

Everything here is numpy, deterministic given the inputs (the split of a
cluster is the exact two-means cut of a one-dimensional embedding found by
power iteration from a data-derived start; no random draw), and equivariant
under permutations of rows and columns up to ties. ``W`` may be float32 (the
passes over it are the cost).
``W`` is non-negative with no all-zero row or column (the caller takes the live
submatrix); :func:`balance` makes every row and every column weigh alike
(Sinkhorn-Knopp [2]_), so that a few consumer units with large batch-norm scales do
not decide the clustering alone.

References
----------
.. [1] Dhillon, I. S., Mallela, S., & Modha, D. S. (2003). Information-theoretic
   co-clustering. *KDD 2003*, 89-98.
.. [2] Sinkhorn, R., & Knopp, P. (1967). Concerning nonnegative matrices and
   doubly stochastic matrices. *Pacific J. Math.*, 21(2), 343-348.
.. [3] Karrer, B., & Newman, M. E. J. (2011). Stochastic blockmodels and community
   structure in networks. *Phys. Rev. E*, 83, 016107. (The degree-corrected block
   model whose profile likelihood is this mutual information.)
.. [4] Jain, S., & Neal, R. M. (2004). A split-merge Markov chain Monte Carlo
   procedure for the Dirichlet process mixture model. *J. Comput. Graph. Stat.*,
   13(1), 158-182. (Split-merge moves that escape what single-unit moves cannot.)
"""

from __future__ import annotations

import numpy as np

from .edge import edge_margin, noise_edge

__all__ = ["balance", "block_information", "information", "itcc", "itcc_step", "merge_split", "two_means_1d"]

_TINY = 1e-300


def balance(w: np.ndarray, n_iter: int = 10, dtype: np.dtype | type | None = None) -> np.ndarray:
    """Scale rows and columns of ``w`` (no zero row or column) towards equal sums (Sinkhorn-Knopp iterations).

    The scalings are iterated as vectors (two matrix-vector products per
    iteration, in the precision of ``w``) and applied once, a block of rows at
    a time: each entry is ``w * r * c`` in the precision of ``w``, then cast to
    ``dtype`` (default: that of ``w``), so no full-size temporary of the input
    precision is allocated.

    Examples
    --------
    >>> b = balance(np.array([[1.0, 3.0], [10.0, 10.0]]), n_iter=50)
    >>> rows, cols = b.sum(axis=1), b.sum(axis=0)
    >>> np.round(rows / rows.mean(), 3).tolist(), np.round(cols / cols.mean(), 3).tolist()
    ([1.0, 1.0], [1.0, 1.0])
    """
    w = np.asarray(w)
    if w.dtype not in (np.float32, np.float64):
        w = w.astype(np.float64)
    c = np.ones(w.shape[1], dtype=w.dtype)
    r = np.ones(w.shape[0], dtype=w.dtype)
    for _ in range(n_iter):
        r = 1.0 / (w @ c)
        c = 1.0 / (r @ w)
    out = np.empty(w.shape, dtype=w.dtype if dtype is None else dtype)
    step = max(1, _BLOCK_ENTRIES // max(w.shape[1], 1))
    for i in range(0, w.shape[0], step):
        out[i:i + step] = w[i:i + step] * r[i:i + step, None] * c[None, :]
    return out


# Rows per block of balance's final scaling: about 1 MB of float64 temporaries (cache-sized), so a 4096-square
# profile is scaled without two 134 MB temporaries that the allocator maps and the kernel zeroes afresh per call.
_BLOCK_ENTRIES = 1 << 17


def _onehot(labels: np.ndarray, k: int, dtype=np.float64) -> np.ndarray:
    h = np.zeros((len(labels), k), dtype=dtype)
    h[np.arange(len(labels)), labels] = 1.0
    return h


def block_information(p: np.ndarray) -> float:
    """Mutual information (nats) between the row and column index of a non-negative block matrix ``p``.

    Examples
    --------
    >>> bool(np.isclose(block_information(np.eye(2)), np.log(2)))
    True
    >>> block_information(np.ones((2, 3)))
    0.0
    """
    p = p / p.sum()
    pr, pc = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / (pr * pc)), 0.0)
    return max(float(terms.sum()), 0.0)


def information(w: np.ndarray, rows: np.ndarray, cols: np.ndarray, k_rows: int, k_cols: int) -> float:
    """``I(R; C)``: the mutual information kept by row clusters ``rows`` and column clusters ``cols`` of ``w``."""
    return block_information(_onehot(rows, k_rows, w.dtype).T @ w @ _onehot(cols, k_cols, w.dtype))


def _assign(to_other: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The ITCC update of one side, from each unit's weight into each cluster of the other side (``to_other``)."""
    to_other = to_other.astype(np.float64, copy=False)
    block = _onehot(labels, k).T @ to_other  # (k, k_other)
    totals = block.sum(axis=1, keepdims=True)
    score = to_other @ np.log(np.maximum(block / np.maximum(totals, _TINY), _TINY)).T  # (n, k)
    score[:, totals[:, 0] <= 0] = -np.inf
    n = np.arange(len(labels))
    best = score.argmax(axis=1)
    current = score[n, labels]
    better = score[n, best] > current + 1e-12 * np.abs(current)
    return np.where(better, best, labels)


def itcc_step(w: np.ndarray, rows: np.ndarray, cols: np.ndarray, k_rows: int, k_cols: int) -> np.ndarray:
    """One ITCC row update: each row joins the row cluster whose distribution over column clusters fits it best.

    Row ``x`` goes to ``argmax_r sum_c p(x, c) log p(c | r)`` (the cluster that
    minimises ``KL(p(C | x) || p(C | r))``), computed from the current clusters;
    a row stays where it is unless another cluster fits strictly better, and an
    empty cluster takes no row. Call it on ``w.T`` for the column update.
    """
    return _assign(w @ _onehot(cols, k_cols, w.dtype), rows, k_rows)


def itcc(w: np.ndarray, rows: np.ndarray, cols: np.ndarray, k_rows: int, k_cols: int, max_iter: int = 20,
         tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray, float]:
    """Alternate ITCC row and column updates while the kept information rises by more than ``tol`` (relative).

    Each update cannot lower ``I(R; C)``; an iteration that does not raise it
    is discarded. Two passes over ``w`` per iteration.

    Returns
    -------
    rows, cols : ndarray of int
    info : float
        ``I(R; C)`` of the returned clusters (never lower than that of the inputs).

    References
    ----------
    Dhillon, I. S., Mallela, S., & Modha, D. S. (2003). Information-theoretic
    co-clustering. KDD 2003, 89-98.
    """
    dt = w.dtype  # float32 halves the two passes over w per iteration
    to_cols = w @ _onehot(cols, k_cols, dt)  # (n_rows, k_cols)
    current = block_information(_onehot(rows, k_rows).T @ to_cols.astype(np.float64))
    for _ in range(max_iter):
        new_rows = _assign(to_cols, rows, k_rows)
        to_rows = (_onehot(new_rows, k_rows, dt).T @ w).T  # (n_cols, k_rows)
        new_cols = _assign(to_rows, cols, k_cols)
        new_to_cols = w @ _onehot(new_cols, k_cols, dt)
        value = block_information(_onehot(new_rows, k_rows).T @ new_to_cols.astype(np.float64))
        if value <= current:
            break
        gain = value - current
        rows, cols, to_cols, current = new_rows, new_cols, new_to_cols, value
        if gain <= tol * current:
            break
    return rows, cols, current


def two_means_1d(x: np.ndarray) -> np.ndarray:
    """The exact two-means split of points on a line (sorted scan): ``True`` for the upper group.

    Examples
    --------
    >>> two_means_1d(np.array([0.0, 0.1, 5.0, 0.2, 4.0])).tolist()
    [False, False, True, False, True]
    """
    order = np.argsort(x, kind="stable")
    s = x[order]
    n = len(s)
    csum, csq = np.cumsum(s), np.cumsum(s * s)
    i = np.arange(1, n)  # lower group = first i points
    lo = csq[i - 1] - csum[i - 1] ** 2 / i
    hi = (csq[-1] - csq[i - 1]) - (csum[-1] - csum[i - 1]) ** 2 / (n - i)
    cut = int(np.argmin(lo + hi)) + 1
    upper = np.zeros(n, dtype=bool)
    upper[order[cut:]] = True
    return upper


def _second_right(sub: np.ndarray, n_iter: int = 30, tol: float = 1e-6,
                  start: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """The second right singular vector of ``D_r^-1/2 sub D_c^-1/2`` (``sub`` with no zero row or column), scaled
    by ``D_c^-1/2`` (the bipartite spectral embedding of the columns), its singular value and the level noise of
    this size stays below in 99 % of draws (:func:`~modularity.core.edge.noise_edge` times
    :func:`~modularity.core.edge.edge_margin`).

    The leading pair is known exactly (``sqrt(d_r)``, ``sqrt(d_c)``, singular
    value 1), so the second is the top of the deflated operator, found by at
    most ``n_iter`` power iterations (until it moves by less than ``tol``) from
    ``start`` or else the columns' squared norms: a start that depends on the
    data only, so the result is equivariant under permutations.
    """
    dr, dc = sub.sum(axis=1), sub.sum(axis=0)
    an = sub / np.sqrt(dr)[:, None]
    an /= np.sqrt(dc)[None, :]  # in place: the same numbers as dividing twice, one full-size temporary fewer
    top = np.sqrt(dc / dc.sum())
    x = (sub * sub).sum(axis=0) / dc if start is None else np.asarray(start, dtype=np.float64)
    x = x - top * (top @ x)
    x /= max(float(np.linalg.norm(x)), 1e-300)
    for _ in range(n_iter):
        y = (an @ x) @ an
        y -= top * (top @ y)
        norm = float(np.linalg.norm(y))
        if norm == 0:
            break
        y /= norm
        done = float(np.abs(y - x).max()) < tol
        x = y
        if done:
            break
    return x / np.sqrt(dc), float(np.linalg.norm(an @ x)), noise_edge(an, dr, dc) * edge_margin(*an.shape)


def _cluster_split(w: np.ndarray, cols: np.ndarray, c: int) -> np.ndarray | None:
    """Columns of cluster ``c`` in two when it is heterogeneous (holds a direction above its noise level).

    The cut is the exact two-means cut of the columns' second bipartite
    spectral coordinate (:func:`_second_right` of ``w[:, cluster]``). Returns a
    boolean mask over all columns (the half that would leave ``c``), or None
    when the cluster is homogeneous or too small to cut.
    """
    members = np.flatnonzero(cols == c)
    found = _second_of(w, members)
    if found is None or found[1] <= found[2]:
        return None
    upper = two_means_1d(found[0])
    if upper.all() or not upper.any():
        return None
    out = np.zeros(len(cols), dtype=bool)
    out[members[upper]] = True
    return out


MIN_SPLIT = 4
"""Clusters with fewer columns or live rows are never cut: the noise level of so small a matrix is not known."""


def _second_of(w: np.ndarray, members: np.ndarray,
               start: np.ndarray | None = None) -> tuple[np.ndarray, float, float] | None:
    """:func:`_second_right` of the columns ``members`` of ``w`` (their live rows), or None below :data:`MIN_SPLIT`."""
    if len(members) < MIN_SPLIT:
        return None
    sub = w[:, members]
    live = sub.any(axis=1)
    sub = (sub if live.all() else sub[live]).astype(np.float64)  # no row-filtered copy when every row is live
    if sub.shape[0] < MIN_SPLIT:
        return None
    return _second_right(sub, start=start)


def _separable(w: np.ndarray, cols: np.ndarray, p: int, q: int) -> bool:
    """True when clusters ``p`` and ``q`` together are heterogeneous (they differ detectably).

    The power iteration starts from the direction that separates them (+1 on
    ``p``, -1 on ``q``), so two blocks with no weight between them (singular
    value 1 twice) are always found apart. Pairs too small to judge count as
    separable (they are not merged).
    """
    members = np.flatnonzero((cols == p) | (cols == q))
    if not (cols == p).any() or not (cols == q).any():
        return False  # an empty cluster: merging it is a pure split
    found = _second_of(w, members, start=np.where(cols[members] == p, 1.0, -1.0))
    return found is None or found[1] > found[2]


def merge_split(w: np.ndarray, rows: np.ndarray, cols: np.ndarray, k_rows: int, k: int, max_rounds: int | None = None,
                max_iter: int = 20, tol: float = 1e-4, tries: int = 2) -> tuple[np.ndarray, np.ndarray, float]:
    """Undo merged pairs plus split groups: merge two column clusters, split a third.

    A move merges clusters ``p < q`` into ``p`` and cuts a heterogeneous
    cluster ``c`` (not among them; :func:`_cluster_split`), its second half
    taking the freed label ``q`` (an empty ``q`` makes it a pure split); ``p``
    and ``q`` together must be homogeneous (not :func:`_separable`): the
    signature of a merged pair plus a split group, judged by detectable
    structure only. Each round scores the moves by the information of the
    moved columns with the rows updated once to fit them (:func:`itcc_step`),
    refines the ``tries`` best with :func:`itcc`, and keeps the best result
    when it keeps more information than the current clusters, or when it
    leaves fewer heterogeneous clusters (the information alone can prefer
    cutting noise in a large group to keeping a weak small one). At most
    ``max_rounds`` rounds (default ``k``).

    Returns
    -------
    rows, cols : ndarray of int
    info : float
    """
    dt = w.dtype
    current = information(w, rows, cols, k_rows, k)
    halves = {c: _cluster_split(w, cols, c) for c in range(k)}
    for _ in range(k if max_rounds is None else max_rounds):
        scored: list[tuple[float, int, int, int]] = []
        for c, half in halves.items():
            if half is None:
                continue
            pieces = np.where(half, k, cols)  # piece k: the half that leaves c
            to_pieces = (w @ _onehot(pieces, k + 1, dt)).astype(np.float64)  # (n_rows, k + 1)
            for p in range(k):
                for q in range(p + 1, k):
                    if c in (p, q):
                        continue
                    to = np.arange(k + 1)
                    to[q], to[k] = p, q
                    to_cols = to_pieces @ _onehot(to, k)
                    moved_rows = _assign(to_cols, rows, k_rows)
                    value = block_information(_onehot(moved_rows, k_rows).T @ to_cols)
                    scored.append((value, p, q, c))
        scored.sort(key=lambda x: -x[0])
        results, separable = [], {}
        for _, p, q, c in scored:
            if (p, q) not in separable:
                separable[p, q] = _separable(w, cols, p, q)
            if separable[p, q]:
                continue
            moved = np.where(cols == q, p, cols)
            moved[halves[c]] = q
            results.append(itcc(w, rows, moved, k_rows, k, max_iter, tol))
            if len(results) == max(1, tries):
                break
        if not results:
            break
        best = max(results, key=lambda r: r[2])  # the first of equals
        best_halves = {c: _cluster_split(w, best[1], c) for c in range(k)}
        fewer = sum(h is not None for h in best_halves.values()) < sum(h is not None for h in halves.values())
        if not (fewer or best[2] > current + 1e-12 * max(current, 1e-12)):
            break
        rows, cols, current = best
        halves = best_halves
    return rows, cols, current
