"""SVD variants, spectral co-clustering and normalised cuts of non-negative magnitude matrices.

Matrices are ``(n_rows, n_cols)`` with rows the consumer units and columns the
producer units whose grouping we want. All-zero rows and columns (dead units,
blocks a grouped conv forbids) are set aside before any normalisation, so they
never produce NaN; their cluster label is ``-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.linalg import eigh
from scipy.linalg.blas import dsyrk
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

__all__ = [
    "SVD_VARIANTS",
    "SVDResult",
    "svd_variant",
    "top_singular",
    "top_singular_values",
    "singular_values",
    "normalise_bipartite",
    "degree_normalised",
    "live_submatrix",
    "cocluster",
    "cocluster_spectrum",
    "choose_k",
    "bipartite_ncut",
    "within_share",
    "kmeans",
    "nearest_centre",
    "relabel",
]

SVD_VARIANTS = ("raw", "centred", "normalised")
FULL_SPECTRUM_MAX = 1024
LARGE_SPECTRUM_TOP = 50


class UniformSource(Protocol):
    """What :func:`kmeans` draws from: a ``numpy.random.Generator``, or the keyed uniforms of the engine's twin
    (:class:`modularity.core.keyed.KeyedUniforms`), which hand out given numbers through the same two calls."""

    def random(self) -> float: ...

    def integers(self, high: int, /) -> int: ...


@dataclass
class SVDResult:
    """Singular values (descending) and vectors of one matrix variant.

    ``u`` holds row (consumer-unit) vectors as columns, ``v`` column
    (producer-unit) vectors as columns, both truncated to ``n_vectors``.
    """

    variant: str
    s: np.ndarray
    u: np.ndarray
    v: np.ndarray

    def __repr__(self) -> str:
        top = ", ".join(f"{x:.3g}" for x in np.asarray(self.s)[:4]) + (", ..." if len(self.s) > 4 else "")
        return (f"SVDResult({self.variant!r}, {len(self.s)} values [{top}], u {self.u.shape[0]} x {self.u.shape[1]}, "
                f"v {self.v.shape[0]} x {self.v.shape[1]})")


def _live(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of rows and columns with any non-zero entry."""
    nz = a != 0
    return nz.any(axis=1), nz.any(axis=0)


def normalise_bipartite(a: np.ndarray) -> np.ndarray:
    """Return ``D_r^-1/2 A D_c^-1/2``; all-zero rows and columns stay zero.

    Examples
    --------
    >>> normalise_bipartite(np.array([[1.0, 0.0], [0.0, 4.0]]))
    array([[1., 0.],
           [0., 1.]])
    """
    a = np.asarray(a, dtype=np.float64)
    dr, dc = a.sum(axis=1), a.sum(axis=0)
    with np.errstate(divide="ignore"):
        rr = np.where(dr > 0, 1.0 / np.sqrt(np.where(dr > 0, dr, 1.0)), 0.0)
        rc = np.where(dc > 0, 1.0 / np.sqrt(np.where(dc > 0, dc, 1.0)), 0.0)
    out = a * rr[:, None]
    out *= rc[None, :]  # in place: one 8-byte copy of the matrix, not two
    return out


def degree_normalised(sub: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``D_r^-1/2 A D_c^-1/2`` of a matrix with no zero row or column, with its row and column degrees.

    The form every spectral co-clustering here decomposes (one copy of the
    matrix, divided in place); :func:`normalise_bipartite` is the version that
    tolerates zero rows and columns.
    """
    dr, dc = sub.sum(axis=1), sub.sum(axis=0)
    an = sub / np.sqrt(dr)[:, None]
    an /= np.sqrt(dc)[None, :]
    return an, dr, dc


def live_submatrix(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    """Rows and columns with a non-zero entry, ``k`` clipped to ``1..min(live rows, live columns)``, their submatrix.

    Returns ``(rows, cols, k, sub)``; ``sub`` is ``a`` itself when everything is
    live (no copy) and None when nothing is (``k`` is then 0).
    """
    rows, cols = _live(a)
    n_live = int(min(rows.sum(), cols.sum()))
    if n_live == 0:
        return rows, cols, 0, None
    sub = a if rows.all() and cols.all() else a[np.ix_(rows, cols)]
    return rows, cols, int(max(1, min(k, n_live))), sub


def _variant_matrix(a: np.ndarray, variant: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if variant == "raw":
        return a
    if variant == "centred":
        return a - a.mean(axis=0, keepdims=True) - a.mean(axis=1, keepdims=True) + a.mean()
    if variant == "normalised":
        return normalise_bipartite(a)
    raise ValueError(f"unknown SVD variant '{variant}'; choose one of {', '.join(SVD_VARIANTS)}")


def svd_variant(a: np.ndarray, variant: str = "raw", n_vectors: int = 3) -> SVDResult:
    """Full singular spectrum of a matrix variant, with its leading vectors.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes.
    variant : {"raw", "centred", "normalised"}
        ``raw`` is ``|W|`` itself (its top factor is mostly overall magnitude);
        ``centred`` removes row and column means (double centring);
        ``normalised`` is the bipartite form ``D_r^-1/2 |W| D_c^-1/2``.
    n_vectors : int
        How many leading singular vectors to keep.

    Returns
    -------
    SVDResult
        The full spectrum, or its leading ``LARGE_SPECTRUM_TOP`` (50) values
        when both sides exceed ``FULL_SPECTRUM_MAX`` (1024): a full SVD of a
        4096 x 4096 profile takes about 20 s per variant on one core.
        Vectors have a deterministic sign: each column vector's largest-magnitude
        entry is positive.
    """
    m = _variant_matrix(a, variant)
    if m.size == 0:
        return SVDResult(variant, np.zeros(0), np.zeros((m.shape[0], 0)), np.zeros((m.shape[1], 0)))
    if min(m.shape) > FULL_SPECTRUM_MAX:  # one Lanczos solve for the leading values and vectors
        u, s, v = top_singular(m, max(LARGE_SPECTRUM_TOP, n_vectors))
        u, v = u[:, :n_vectors], v[:, :n_vectors]
    else:
        s = singular_values(m)
        u, _, v = top_singular(m, n_vectors)
    k = u.shape[1]
    sign = np.sign(v[np.abs(v).argmax(axis=0), np.arange(k)]) if k else np.ones(0)
    sign[sign == 0] = 1
    return SVDResult(variant, s, u * sign, v * sign)


def singular_values(m: np.ndarray) -> np.ndarray:
    """Every singular value of ``m`` (descending), from the eigenvalues of its Gram matrix on the smaller side.

    Forming the Gram matrix is one BLAS-3 product (``syrk``), and its
    symmetric eigenvalues cost far less than the bidiagonalisation of a
    singular-value decomposition (2 to 4 times less on the profiles analysed
    here; BENCHMARKS.md). Squaring the matrix costs relative accuracy only in
    the smallest values, which tests bound against ``np.linalg.svd``.
    Eigenvalues of the Gram matrix below ``max(m, n) * eps`` of the largest are
    at its rounding level (the rank tolerance of ``numpy.linalg.matrix_rank``,
    applied to the Gram matrix), so singular values below
    ``sqrt(max(m, n) * eps)`` of the largest (4.3e-7 at 832 units) are returned
    as 0: exact zeros, such as the double-centred variant's, stay zeros
    rather than rounding noise. Magnitudes of float32 weights carry no more
    digits than that anyway.
    """
    m, scale = _gram_safe(np.asarray(m, dtype=np.float64))
    if m.size == 0:
        return np.zeros(0)
    side = m.T if m.shape[0] < m.shape[1] else m
    # side.T @ side (lower triangle), given to BLAS in the memory order it has: no copy
    gram = dsyrk(1.0, side, trans=1, lower=1) if side.flags.f_contiguous else dsyrk(1.0, side.T, trans=0, lower=1)
    w = eigh(gram, eigvals_only=True, lower=True, overwrite_a=True, check_finite=False)[::-1]
    w[w <= w[0] * max(m.shape) * np.finfo(np.float64).eps] = 0.0
    return np.sqrt(w) * scale


_DENSE_MAX = 2048


def _top_right(m: np.ndarray, k: int, vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Top ``k`` eigenpairs of ``m.T @ m`` (descending), ``m`` with at most as many columns as rows.

    Dense LAPACK on the Gram matrix (only the wanted pairs) up to 2048 columns:
    forming ``m.T @ m`` is one BLAS-3 product and beat Lanczos threefold at
    3840 x 1024 (0.27 s against 0.8 s on one core), because the spectra of
    magnitude matrices are flat and Lanczos needs hundreds of matrix-vector
    products. Beyond that, Lanczos (:func:`_top_right_lanczos`), with the dense
    path as fallback when it does not converge.
    """
    n = m.shape[1]
    if n > _DENSE_MAX and k < n // 2:
        out = _top_right_lanczos(m, k, vectors)
        if out is not None:
            return out
    if n >= _FLOAT32_MIN:
        return _top_right_float32(m, k, vectors)
    out = eigh(m.T @ m, subset_by_index=[n - k, n - 1], eigvals_only=not vectors, driver="evr",
               check_finite=False)
    w, vec = out if vectors else (out, None)
    return np.clip(w[::-1], 0.0, None), None if vec is None else vec[:, ::-1]


def _top_right_lanczos(m: np.ndarray, k: int, vectors: bool) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Top ``k`` eigenpairs of ``m.T @ m`` by float32 Lanczos refined in float64 (Rayleigh-Ritz); None if it fails.

    The matrix-vector products ``m.T @ (m @ x)`` are the whole cost and are
    memory-bound, so float32 halves them. ARPACK finds ``k + 8`` Ritz vectors
    in float32 (``tol=1e-6``); projecting ``m`` onto their span in float64 and
    solving the small problem restores double precision, as in
    :func:`_top_right_float32` (about three times faster than float64 ARPACK
    on the largest profiles, with the same values to 1e-10; BENCHMARKS.md).
    Falls back to float64 ARPACK when float32 does not converge.
    """
    n = m.shape[1]
    kk = min(n - 1, k + _RITZ_EXTRA)
    m32 = m.astype(np.float32)
    # ruff sees the `del m32` below before this lambda's body; the lambda only runs inside eigsh, before it
    op = LinearOperator((n, n), matvec=lambda x: m32.T @ (m32 @ x), dtype=np.float32)  # noqa: F821
    try:
        _, v = eigsh(op, k=kk, which="LA", v0=np.full(n, 1 / np.sqrt(n), dtype=np.float32),
                     ncv=min(n, max(2 * kk + 1, 40)), tol=1e-6)
    except (ArpackError, ArpackNoConvergence):
        del m32
        op = LinearOperator((n, n), matvec=lambda x: m.T @ (m @ x), dtype=np.float64)
        try:
            out = eigsh(op, k=k, which="LA", return_eigenvectors=vectors, v0=np.ones(n) / np.sqrt(n),
                        ncv=min(n, max(2 * k + 1, 40)))
        except (ArpackError, ArpackNoConvergence):
            return None
        w, vec = out if vectors else (out, None)
        order = np.argsort(w)[::-1]
        return np.clip(w[order], 0.0, None), None if vec is None else vec[:, order]
    del m32
    return _rayleigh_ritz(m, v, k, vectors)


def _rayleigh_ritz(m: np.ndarray, v: np.ndarray, k: int, vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Top ``k`` eigenpairs of ``m.T @ m`` in float64 from an approximate span ``v`` (its columns, any precision)."""
    q, _ = np.linalg.qr(v.astype(np.float64))
    b = m @ q
    w, y = np.linalg.eigh(b.T @ b)
    return np.clip(w[::-1][:k], 0.0, None), (q @ y[:, ::-1][:, :k]) if vectors else None


# From this many Gram columns the float32 route below is faster (BENCHMARKS.md). A lower switch would move
# observed leading vectors whose singular values nearly coincide, so it stays where observed results do not move.
_FLOAT32_MIN = 320
_RITZ_EXTRA = 8


def _top_right_float32(m: np.ndarray, k: int, vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Top ``k`` eigenpairs of ``m.T @ m`` from a float32 eigensolve refined in float64 (Rayleigh-Ritz).

    The float32 Gram matrix and its top ``k + 8`` eigenvectors cost about half
    of the float64 solve; projecting ``m`` onto their span in float64 and
    solving the small ``(k + 8)``-square problem restores double precision:
    the leading 20 singular values of googlenet's Inception profiles agree with
    the float64 solve to 1.3e-10 relative, and the leading vectors to a cosine
    of 1 (six digits). The 8 extra vectors keep the span accurate at the
    ``k``-th value when the spectrum is flat.
    """
    n = m.shape[1]
    kk = min(n, k + _RITZ_EXTRA)
    m32 = m.astype(np.float32)
    _, v = eigh(m32.T @ m32, subset_by_index=[n - kk, n - 1], driver="evr", check_finite=False)
    return _rayleigh_ritz(m, v, k, vectors)


def _gram_safe(m: np.ndarray) -> tuple[np.ndarray, float]:
    """``m`` divided by a power of two that keeps ``m.T @ m`` finite and normal, and that power.

    Entries beyond about 1e154 overflow the Gram matrix (and below 1e-154
    underflow it); a power-of-two scale is exact, so results are otherwise
    bit-identical. Magnitudes from real weights never come near either bound.
    """
    peak = max(float(m.max(initial=0.0)), -float(m.min(initial=0.0)))  # max |m| without an |m| copy
    if peak == 0.0 or 1e-100 < peak < 1e100:
        return m, 1.0
    scale = float(2.0 ** np.round(np.log2(peak)))
    return m / scale, scale


def top_singular(m: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest singular triplets (descending).

    Computed from the top ``k`` eigenpairs of the Gram operator on the smaller
    side: exact to double precision for the leading values and several times
    faster than a full SVD on the tall or wide matrices analysed here.
    """
    m, scale = _gram_safe(np.asarray(m, dtype=np.float64))
    k = max(0, min(k, min(m.shape)))
    if k == 0:
        return np.zeros((m.shape[0], 0)), np.zeros(0), np.zeros((m.shape[1], 0))
    wide = m.shape[0] < m.shape[1]
    w, vec = _top_right(m.T if wide else m, k, vectors=True)
    assert vec is not None  # asked for with vectors=True
    s = np.sqrt(w)
    inv = np.zeros_like(s)
    nz = s > (s[0] * 1e-12 if s[0] > 0 else np.inf)
    inv[nz] = 1.0 / s[nz]
    if wide:
        u, v = vec, (m.T @ vec) * inv
    else:
        v, u = vec, (m @ vec) * inv
    return u, s * scale, v


def top_singular_values(m: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest singular values (descending), via the Gram matrix on the smaller side."""
    m, scale = _gram_safe(np.asarray(m, dtype=np.float64))
    k = max(0, min(k, min(m.shape)))
    if k == 0:
        return np.zeros(0)
    w, _ = _top_right(m.T if m.shape[0] < m.shape[1] else m, k, vectors=False)
    return np.sqrt(w) * scale


def choose_k(a: np.ndarray, k_max: int = 12) -> int:
    """Number of co-clusters from the largest eigengap of the normalised matrix.

    The normalised bipartite matrix of a graph with ``k`` disconnected blocks
    has ``k`` singular values equal to 1. We pick ``k`` in ``2..k_max`` that
    maximises ``s[k-1] - s[k]`` (1-based singular values), or 1 when fewer
    than two units are live.
    """
    rows, cols = _live(a)
    n = int(min(rows.sum(), cols.sum()))
    if n < 2:
        return 1
    k_max = max(2, min(k_max, n))
    s = top_singular_values(normalise_bipartite(a[np.ix_(rows, cols)]), min(k_max + 1, n))
    s = np.concatenate([s, np.zeros(max(0, k_max + 1 - len(s)))])
    gaps = s[1:k_max] - s[2:k_max + 1]  # gap after the k-th value, k = 2..k_max
    return int(np.argmax(gaps)) + 2


def cocluster(a: np.ndarray, k: int, seed: int | np.random.Generator | None = 0,
              n_init: int = 10, joint: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Spectral co-clustering (see :func:`cocluster_spectrum`, which also returns the spectrum)."""
    rows, cols, _ = cocluster_spectrum(a, k, seed, n_init, joint=joint)
    return rows, cols


def cocluster_spectrum(a: np.ndarray, k: int, seed: int | np.random.Generator | None = 0,
                       n_init: int = 10, n_values: int = 0,
                       joint: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectral co-clustering of the rows and columns of a non-negative matrix.

    ``joint=False`` is ``dhillon_km1_cols_sv_r10``, the previous default
    co-clustering (``reports/methods.md``; still selectable): the ``k``
    leading singular vectors of ``D_r^-1/2 A D_c^-1/2`` (the ``k - 1`` leading
    non-trivial ones and the leading one, which is constant after scaling on a
    connected graph and a block indicator on a disconnected one), each scaled
    by its singular value and by ``D^-1/2``; k-means (best of ``n_init``) on the
    **columns alone**; each row then joins the column cluster whose centroid is
    nearest in the same embedding. On 24 planted and real cases it averaged ARI
    0.478 against 0.285 for scikit-learn's ``SpectralCoclustering`` and 0.294
    for the joint variant: clustering rows and columns together lets the rows
    of a weakly connected consumer (a grouped conv beside a dense one) pull
    every column into one cluster (ARI 0 where columns alone give 1).

    ``joint=True`` is Dhillon's joint clustering of rows and columns with the
    ``k - 1`` non-trivial vectors, unscaled (this package's default before the
    benchmark; ``current`` in the repository's ``benchmarks/candidates.py``).

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes.
    k : int
        Number of co-clusters; clipped to the number of live rows and columns.
    seed : int, Generator or None
        Seeds k-means.
    n_init : int
        k-means restarts.
    n_values : int
        Also return this many leading singular values of the normalised matrix
        (they come from the same decomposition).
    joint : bool
        Cluster rows and columns together (see above).

    Returns
    -------
    row_labels : ndarray of int, shape (n_rows,)
    col_labels : ndarray of int, shape (n_cols,)
        Labels in ``0..k-1``; ``-1`` for all-zero rows or columns.
    values : ndarray
        The ``n_values`` leading singular values of ``D_r^-1/2 A D_c^-1/2``.

    References
    ----------
    Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
    spectral graph partitioning. KDD 2001, 269-274.

    Examples
    --------
    >>> a = np.kron(np.eye(2), np.ones((3, 2)))
    >>> rows, cols, _ = cocluster_spectrum(a, 2)
    >>> len(set(cols[:2])), len(set(cols)), bool(cols[0] != cols[2]), rows.tolist()
    (1, 2, True, [0, 0, 0, 1, 1, 1])
    """
    a = np.asarray(a, dtype=np.float64)
    row_labels = np.full(a.shape[0], -1)
    col_labels = np.full(a.shape[1], -1)
    rows, cols, k, sub = live_submatrix(a, k)
    if sub is None:
        return row_labels, col_labels, np.zeros(0)
    an, dr, dc = degree_normalised(sub)
    u, values, v = top_singular(an, max(k, n_values))
    s = values[:k]
    values = values[:n_values]
    if k == 1:
        row_labels[rows], col_labels[cols] = 0, 0
        return row_labels, col_labels, values
    rs = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)  # see nulls.as_generator
    if joint:
        z = np.vstack([u[:, 1:k] / np.sqrt(dr)[:, None], v[:, 1:k] / np.sqrt(dc)[:, None]])
        labels = kmeans(z, k, rs, n_init=n_init)
        row_labels[rows] = labels[: rows.sum()]
        col_labels[cols] = labels[rows.sum():]
        return (*relabel(row_labels, col_labels), values)
    keep = np.flatnonzero(s > 1e-6 * s[0])  # vectors of a zero singular value are arbitrary
    zc = v[:, keep] * s[keep] / np.sqrt(dc)[:, None]
    zr = u[:, keep] * s[keep] / np.sqrt(dr)[:, None]
    labels = kmeans(zc, k, rs, n_init=n_init)
    col_labels[cols] = labels
    row_labels[rows] = nearest_centre(zc, zr, labels, k)
    return (*relabel(row_labels, col_labels), values)


def nearest_centre(zc: np.ndarray, zr: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The cluster of each row of ``zr``: the one whose centroid of the columns ``zc`` (labelled ``labels``) is nearest.

    An empty cluster has no centroid and takes no rows.

    Examples
    --------
    >>> zc = np.array([[0.0], [0.2], [1.0]])
    >>> nearest_centre(zc, np.array([[0.9], [0.05]]), np.array([0, 0, 1]), 2).tolist()
    [1, 0]
    """
    centres = np.stack([zc[labels == c].mean(axis=0) if np.any(labels == c) else np.full(zc.shape[1], np.inf)
                        for c in range(k)])
    return ((zr[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1).argmin(axis=1)


def kmeans(x: np.ndarray, k: int, rng: UniformSource, n_init: int = 4, max_iter: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; the best of ``n_init`` runs by inertia.

    A small numpy implementation: on the few-thousand-point, few-dimension
    embeddings clustered here (hundreds of times per layer for the null) it is
    much faster than scikit-learn's ``KMeans``, whose per-call overhead
    dominates at this size.

    The ``n_init`` restarts are seeded one after the other (the same draws from
    ``rng`` as running them one by one) and then iterated together, as one
    ``(n_init, k, n)`` array of distances, each restart leaving the batch when
    its labels no longer change. Every restart does the arithmetic it did on
    its own (the same dot products, centre sums by ``bincount`` in point
    order, the first of equal distances and of equal inertias), so the labels
    are those of the one-by-one loop (tested against it); the batch only
    removes Python overhead.

    Returns
    -------
    ndarray of int, shape (n_samples,)
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    k = min(k, n)
    if n_init < 1 or n == 0:
        return np.zeros(n, dtype=int)
    sq = np.einsum("ij,ij->i", x, x)
    seeds = []
    for _ in range(n_init):
        first = x[rng.integers(n)]
        chosen = [first]
        d2 = np.maximum(sq - 2 * x @ first + first @ first, 0)
        for _ in range(1, k):
            total = d2.sum()
            nxt = _choice(rng, d2 / total) if total > 0 else rng.integers(n)
            chosen.append(x[nxt])
            d2 = np.minimum(d2, np.maximum(sq - 2 * x @ x[nxt] + x[nxt] @ x[nxt], 0))
        seeds.append(chosen)
    centres = np.array(seeds, dtype=np.float64).reshape(n_init, k, x.shape[1])  # (n_init, k, d)
    dims = x.shape[1]
    xt = np.tile(x.T, (1, n_init))  # each dimension's values, once per restart (centre sums)
    labels = np.full((n_init, n), -1)
    inertia = np.full(n_init, np.inf)
    active = np.arange(n_init)
    for it in range(max_iter):
        c = centres[active]
        xc = (c.reshape(-1, dims) @ x.T).reshape(len(active), k, n)  # one product for every restart's centres
        dist = sq[None, None, :] - 2 * xc + np.einsum("rij,rij->ri", c, c)[:, :, None]  # (r, k, n)
        nearest = dist[:, 0, :].copy()  # argmin over the k centres, the first of equals (as argmin)
        new = np.zeros(nearest.shape, dtype=np.intp)
        for j in range(1, k):
            closer = dist[:, j, :] < nearest
            new[closer] = j
            np.minimum(nearest, dist[:, j, :], out=nearest)
        moved = (new != labels[active]).any(axis=1)
        done = ~moved if it < max_iter - 1 else np.ones(len(active), dtype=bool)
        if done.any():  # a finished restart's inertia, from its last distances as the loop takes it
            inertia[active[done]] = np.maximum(nearest[done], 0).sum(axis=1)
        labels[active] = new
        active, new = active[moved], new[moved]
        if not len(active):
            break
        r = len(active)
        flat = (new + k * np.arange(r)[:, None]).ravel()
        counts = np.bincount(flat, minlength=r * k).reshape(r, k)
        sums = np.bincount((flat[None, :] + (r * k) * np.arange(dims)[:, None]).ravel(),
                           weights=xt[:, :r * n].ravel(), minlength=dims * r * k)
        sums = sums.reshape(dims, r, k).transpose(1, 2, 0)
        centres[active] = np.where((counts == 0)[:, :, None], centres[active],
                                   sums / np.maximum(counts, 1)[:, :, None])
    best, best_inertia = np.zeros(n, dtype=int), np.inf
    for r in range(n_init):  # the first of equal inertias, as the one-by-one loop keeps it
        if inertia[r] < best_inertia:
            best, best_inertia = labels[r], inertia[r]
    return best


def _choice(rng: UniformSource, p: np.ndarray) -> int:
    """``rng.choice(len(p), p=p)``: the same draw (one ``rng.random()`` through the inverse CDF), without its checks.

    ``Generator.choice`` with probabilities normalises the cumulative sum and
    searches it for one uniform draw; doing that here gives the same index and
    leaves ``rng`` in the same state (tested), at a third of the cost, which
    counts in k-means++ seeding (``k - 1`` draws per restart).
    """
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return int(cdf.searchsorted(rng.random(), side="right"))


def relabel(row_labels: np.ndarray, col_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber labels by first appearance among the columns (then rows), so outputs are canonical."""
    seen = np.concatenate([np.asarray(col_labels)[np.asarray(col_labels) >= 0],
                           np.asarray(row_labels)[np.asarray(row_labels) >= 0]]).astype(np.int64)
    if not len(seen):
        rows, cols = (np.full(len(x), -1, dtype=int) if len(x) else x for x in (row_labels, col_labels))
        return rows, cols
    uniq, first = np.unique(seen, return_index=True)
    mapping = np.full(int(uniq[-1]) + 2, -1, dtype=int)  # the last slot stays -1: where a label is -1
    mapping[uniq[np.argsort(first)]] = np.arange(len(uniq))

    def f(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).astype(np.int64)
        return mapping[np.where(x >= 0, x, len(mapping) - 1)]

    return (f(row_labels) if len(row_labels) else row_labels), (f(col_labels) if len(col_labels) else col_labels)


def bipartite_ncut(a: np.ndarray, row_labels: np.ndarray, col_labels: np.ndarray) -> float:
    """Normalised cut of a co-clustering of the bipartite graph with adjacency ``a``.

    ``sum_k cut(k) / vol(k)`` over clusters containing both rows and columns,
    where ``vol`` is the total edge weight incident to the cluster's nodes and
    ``cut`` the weight leaving it. Unlabelled (``-1``) nodes are ignored. Lower
    means more clusterable; it ranges over ``[0, k]``.

    It is :func:`modularity.studies.clusterability.ncut` of the graph
    ``[[0, a], [a^T, 0]]`` (tested equal), computed on the dense biadjacency
    because it runs once per null draw (about 20 times faster than through
    the sparse block adjacency). Two products with one-hot matrices give
    every node's weight into every cluster, with no copy of ``a``; the cut is
    summed from the weight into other clusters, so a cluster with no edge
    leaving it has a cut of exactly 0, not rounding noise.
    """
    a = np.asarray(a, dtype=np.float64)
    rows, cols = np.asarray(row_labels, dtype=np.int64), np.asarray(col_labels, dtype=np.int64)
    labels = np.unique(np.concatenate([rows, cols]))
    labels = labels[labels >= 0]
    if not len(labels):
        return 0.0
    k = int(labels[-1]) + 1
    r, c = np.where(rows >= 0, rows, k), np.where(cols >= 0, cols, k)  # slot k: unlabelled nodes
    to_cols = a @ np.eye(k + 1)[c]  # (rows, k + 1): each row's weight into each column cluster
    to_rows = np.eye(k + 1)[r].T @ a  # (k + 1, cols)
    to_cols[np.arange(len(r)), r] = 0.0  # what stays leaves the node's own cluster: exact zeros stay zero
    to_rows[c, np.arange(len(c))] = 0.0
    cut = np.bincount(r, weights=to_cols.sum(axis=1), minlength=k + 1) + \
        np.bincount(c, weights=to_rows.sum(axis=0), minlength=k + 1)
    vol = np.bincount(r, weights=a.sum(axis=1), minlength=k + 1) + np.bincount(c, weights=a.sum(axis=0),
                                                                                minlength=k + 1)
    vol, cut = vol[labels], cut[labels]
    ok = vol > 0
    return float(np.sum(cut[ok] / vol[ok]))


def within_share(a: np.ndarray, row_labels: np.ndarray, col_labels: np.ndarray) -> float:
    """The share of a profile's total weight that falls inside co-clusters (row and column in the same group).

    Above one half, the groups connect mostly within themselves; the n-cut can
    beat its null with far less (a group that keeps a third of its weight
    where chance would keep a quarter). Unlabelled (``-1``) rows and columns
    count as outside every group; 0 for an all-zero matrix.

    Examples
    --------
    >>> within_share(np.array([[3.0, 1.0], [1.0, 3.0]]), np.array([0, 1]), np.array([0, 1]))
    0.75
    """
    a = np.asarray(a, dtype=np.float64)
    rows, cols = np.asarray(row_labels, dtype=np.int64), np.asarray(col_labels, dtype=np.int64)
    total = float(a.sum())
    if total <= 0:
        return 0.0
    k = int(max(rows.max(initial=-1), cols.max(initial=-1))) + 1
    if k == 0:
        return 0.0
    r_hot = np.zeros((len(rows), k))
    r_hot[rows >= 0, rows[rows >= 0]] = 1.0
    c_hot = np.zeros((len(cols), k))
    c_hot[cols >= 0, cols[cols >= 0]] = 1.0
    return float(np.einsum("ik,ij,jk->", r_hot, a, c_hot) / total)
