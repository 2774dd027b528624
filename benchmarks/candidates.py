"""The recovery benchmark's candidate co-clusterings that the package does not ship.

Every candidate has the signature ``(a, k, rng) -> labels``: ``a`` is a
non-negative ``(n_consumer_units, n_producer_units)`` matrix, ``k`` the wanted
number of groups, ``rng`` a :class:`numpy.random.Generator`; the result is one
integer label per column, in ``0..k-1`` (numbered by first appearance), and
``-1`` for all-zero columns (the live submatrix is taken by
:func:`modularity.core.methods.columns_on_live`, so no candidate returns NaN).

:data:`CANDIDATES` names them all, the production methods of
:data:`modularity.core.methods.METHODS` included (their columns exactly as
:func:`modularity.core.methods.cocluster` gives them), and
:func:`candidate_columns` runs one by name. ``scripts/method_benchmark.py``
scores each against true branches; ``reports/methods.md`` has the numbers and
the reasons each was kept or rejected.

Families
--------
``current``
    The package's first co-clustering (:func:`~modularity.core.spectral.cocluster_spectrum`
    with ``joint=True``: ``k - 1`` non-trivial vectors, rows and columns together, 4 restarts).
``dhillon_{n}_{side}_r{restarts}``, ``dhillon_{n}_cols_sv_r10``
    Dhillon's embedding with ``n`` non-trivial singular vectors (``km1``: ``k - 1``;
    ``k``; ``log2k``: ``ceil(log2 k)``), k-means on rows and columns jointly or on the
    columns alone, optionally weighted by the singular values (:func:`dhillon`).
``adaptive_{weights}[_unit]_r{restarts}``, ``dhillon_km1_cols_sqrt_unit_r10``
    Variants of ``adaptive_sqrt_unit_r10``'s noise-edge embedding (:func:`modularity.core.methods.adaptive`).
``consensus_spectral``, ``consensus_average``
    Evidence accumulation over six Dhillon embeddings (:func:`consensus`).
``select_{criterion}``, ``select_sklearn_ncut[_floor]``
    An internal criterion chooses among candidate partitions (:func:`select`,
    :func:`select_sklearn`).
``louvain``, ``louvain_k``, ``leiden``
    Bipartite modularity maximisation with scikit-network (:func:`community`, :func:`community_k`).

References
----------
.. [1] Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
   spectral graph partitioning. *KDD 2001*, 269-274.
.. [2] Fred, A. L. N., & Jain, A. K. (2005). Combining multiple clusterings using
   evidence accumulation. *IEEE TPAMI*, 27(6), 835-850.
.. [3] Barber, M. J. (2007). Modularity and community detection in bipartite
   networks. *Physical Review E*, 76(6), 066102.
.. [4] Traag, V. A., Waltman, L., & van Eck, N. J. (2019). From Louvain to Leiden:
   guaranteeing well-connected communities. *Scientific Reports*, 9, 5233.
.. [5] Ben-Hur, A., Elisseeff, A., & Guyon, I. (2002). A stability based method for discovering
   structure in clustered data. *Pacific Symposium on Biocomputing* 7, 6-17.
.. [6] Lange, T., Roth, V., Braun, M. L., & Buhmann, J. M. (2004). Stability-based validation of
   clustering solutions. *Neural Computation*, 16(6), 1299-1323.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from modularity.core.methods import (
    EMBEDDINGS,
    METHODS,
    adaptive,
    cocluster,
    column_embeddings,
    columns_on_live,
    edge_count,
    edge_embedding,
    int_seed,
    noise_edge,
    refined,
    single_threaded,
)
from modularity.core.spectral import (
    bipartite_ncut,
    cocluster_spectrum,
    degree_normalised,
    kmeans,
    nearest_centre,
    top_singular,
)
from modularity.errors import ModularityError

__all__ = [
    "CANDIDATES",
    "RESOLUTION_STEPS",
    "SELECT_CANDIDATES",
    "SELECT_CRITERIA",
    "candidate_columns",
    "community",
    "community_k",
    "consensus",
    "current",
    "dhillon",
    "select",
    "select_sklearn",
]

Method = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

RESOLUTION_STEPS = 10

# ---------------------------------------------------------------- Dhillon embedding

_EMBED_CACHE: OrderedDict = OrderedDict()
_EMBED_CACHE_SIZE = 4


def _embedding(sub: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Leading (at least ``n``) singular vectors of ``D_r^-1/2 A D_c^-1/2`` and the degrees.

    ``sub`` has no zero rows or columns. The decomposition is deterministic, so
    the last few results are memoised (keyed by a digest of the matrix and the
    number of vectors, rounded up to a multiple of 8): the Dhillon variants and
    the consensus reuse one decomposition per matrix.
    """
    n_compute = min(8 * math.ceil(n / 8), min(sub.shape))
    key = (sub.shape, n_compute, hashlib.blake2b(sub.tobytes(), digest_size=16).digest())
    if key in _EMBED_CACHE:
        _EMBED_CACHE.move_to_end(key)
        return _EMBED_CACHE[key]
    an, dr, dc = degree_normalised(sub)
    u, values, v = top_singular(an, n_compute)
    out = (u, values, v, dr, dc)
    _EMBED_CACHE[key] = out
    if len(_EMBED_CACHE) > _EMBED_CACHE_SIZE:
        _EMBED_CACHE.popitem(last=False)
    return out


def _n_vectors(rule: str, k: int) -> int:
    if rule == "km1":
        return k - 1
    if rule == "k":
        return k
    if rule == "log2k":
        return math.ceil(math.log2(k))
    raise ModularityError(f"unknown vector rule '{rule}'; choose km1, k or log2k")


def _dhillon_live(sub: np.ndarray, k: int, rng: np.random.Generator, vectors: str, joint: bool,
                  n_init: int, weighted: bool = False) -> np.ndarray:
    n = max(1, min(_n_vectors(vectors, k), min(sub.shape) - 1))
    u, s, v, dr, dc = _embedding(sub, n + 1)
    # The leading vector is kept: for a connected bipartite graph it is sqrt(degree), so after the
    # D^-1/2 scaling it is a constant column that k-means ignores; for a disconnected one (a grouped
    # consumer as the only reader) the top singular value 1 is repeated, the "trivial" vector is an
    # arbitrary mix of block indicators, and dropping it loses one of them. Vectors of a zero
    # singular value (a rank-deficient matrix) are arbitrary and are left out.
    keep = np.flatnonzero(s[:n + 1] > 1e-6 * s[0])  # from a Gram matrix: sqrt(eps) resolution
    w = s[keep] if weighted else np.ones(len(keep))
    zc = v[:, keep] * w / np.sqrt(dc)[:, None]
    if not joint:
        return kmeans(zc, k, rng, n_init=n_init)
    zr = u[:, keep] * w / np.sqrt(dr)[:, None]
    return kmeans(np.vstack([zr, zc]), k, rng, n_init=n_init)[len(zr):]


def dhillon(a: np.ndarray, k: int, rng: np.random.Generator, vectors: str = "k", joint: bool = False,
            n_init: int = 10, weighted: bool = False) -> np.ndarray:
    """Column labels from Dhillon's bipartite spectral embedding and k-means.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes (rows: consumer units; columns: producer units).
    k : int
        Number of groups; clipped to the number of live rows and columns.
    rng : numpy.random.Generator
        Seeds k-means++.
    vectors : {"km1", "k", "log2k"}
        Non-trivial singular vectors of ``D_r^-1/2 A D_c^-1/2`` in the embedding:
        ``k - 1``, ``k`` or ``ceil(log2 k)`` (Dhillon's choice, as in
        scikit-learn), at least one and at most ``min(shape) - 1``. The leading
        vector is kept too (constant after scaling on a connected graph; a block
        indicator on a disconnected one).
    joint : bool
        Cluster rows and columns together (Dhillon) instead of the columns alone.
    n_init : int
        k-means restarts (the lowest inertia wins).
    weighted : bool
        Scale each embedding coordinate by its singular value, so that a
        direction barely above the noise counts less than a strong one (the
        bipartite diffusion-map embedding at time 1) instead of equally (Dhillon).

    Returns
    -------
    ndarray of int, shape (n_cols,)
        Labels ``0..k-1`` by first appearance; ``-1`` for all-zero columns.

    References
    ----------
    Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
    spectral graph partitioning. KDD 2001, 269-274.

    Examples
    --------
    >>> a = np.kron(np.eye(3), np.ones((4, 2)))
    >>> dhillon(a, 3, np.random.default_rng(0)).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    return columns_on_live(partial(_dhillon_live, vectors=vectors, joint=joint, n_init=n_init, weighted=weighted),
                           a, k, rng)


def current(a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Column labels of :func:`~modularity.core.spectral.cocluster_spectrum` (the old default, 4 restarts)."""
    return columns_on_live(lambda sub, kk, r: cocluster_spectrum(sub, kk, r, n_init=4, joint=True)[1], a, k, rng)


# ---------------------------------------------------------------- selection among candidates

SELECT_CRITERIA = ("modularity", "stability", "silhouette", "ncut")
SELECT_CANDIDATES = ("default", "log2k_joint", "log2k_cols")
STABILITY_RESAMPLES = 6
STABILITY_RESTARTS = 4


def _bipartite_modularity(sub: np.ndarray, row_labels: np.ndarray, col_labels: np.ndarray, k: int) -> float:
    """Barber's bipartite modularity ``Q = sum_c [A(R_c, C_c) - d_r(R_c) d_c(C_c) / m] / m``."""
    m = float(sub.sum())
    oh_r, oh_c = np.eye(k)[row_labels], np.eye(k)[col_labels]
    inside = np.einsum("ic,ij,jc->", oh_r, sub, oh_c)
    expected = (sub.sum(axis=1) @ oh_r) @ (sub.sum(axis=0) @ oh_c) / m
    return float((inside - expected) / m)


def _silhouette(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Rousseeuw 1987) of the points ``z`` under ``labels``; -1 with fewer than two clusters."""
    used = np.unique(labels)
    if len(used) < 2:
        return -1.0
    sq = np.einsum("ij,ij->i", z, z)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0))
    oh = (labels[:, None] == used[None, :]).astype(float)
    sizes = oh.sum(axis=0)
    sums = d @ oh  # distance of each point to every cluster, summed
    own = np.argmax(oh, axis=1)
    n_own = sizes[own]
    a = np.where(n_own > 1, sums[np.arange(len(z)), own] / np.maximum(n_own - 1, 1), 0.0)
    other = sums / sizes[None, :]
    other[np.arange(len(z)), own] = np.inf
    b = other.min(axis=1)
    s = np.where(n_own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def _select_candidates(sub: np.ndarray, k: int, rng: np.random.Generator, n_values: int = 0,
                       candidates: tuple[str, ...] = SELECT_CANDIDATES):
    """The candidate co-clusterings of :func:`select`, all from one decomposition.

    Returns ``(candidates, values, shared)``: a list of dicts (``name``, ``cols``,
    ``rows``, the column and row embeddings ``zc``, ``zr`` and how to rebuild the
    column embedding from other rows: ``keep``, ``w``, ``unit``, ``joint``), the
    ``n_values`` leading singular values and the shared pieces ``(an, u, s, dr, dc)``.
    """
    an, dr, dc = degree_normalised(sub)
    u, s, v = top_singular(an, max(k, n_values))
    out = []
    for name in candidates:
        if name == "default":
            n = edge_count(s, k, noise_edge(an, dr, dc))
            unit, joint = True, False
        elif name in ("log2k_joint", "log2k_cols"):
            n = math.ceil(math.log2(k))
            unit, joint = False, name == "log2k_joint"
        else:
            raise ModularityError(f"unknown candidate '{name}'; choose from {', '.join(SELECT_CANDIDATES)}")
        n = max(1, min(n, len(s) - 1))
        keep = np.flatnonzero(s[:n + 1] > 1e-6 * s[0])
        w = np.sqrt(s[keep]) if name == "default" else np.ones(len(keep))
        zc = v[:, keep] * w / np.sqrt(dc)[:, None]
        zr = u[:, keep] * w / np.sqrt(dr)[:, None]
        if unit:
            zc = zc / np.maximum(np.linalg.norm(zc, axis=1, keepdims=True), 1e-300)
            zr = zr / np.maximum(np.linalg.norm(zr, axis=1, keepdims=True), 1e-300)
        if joint:
            lab = kmeans(np.vstack([zr, zc]), k, rng, n_init=10)
            rows, cols = lab[:len(zr)], lab[len(zr):]
        else:
            cols = kmeans(zc, k, rng, n_init=10)
            rows = nearest_centre(zc, zr, cols, k)
        out.append({"name": name, "cols": cols, "rows": rows, "zc": zc, "zr": zr, "keep": keep, "w": w,
                    "unit": unit, "joint": joint})
    return out, s[:n_values], (an, u, s, dr, dc)


def _stability(cand: dict, k: int, rng: np.random.Generator, shared, resamples: int = STABILITY_RESAMPLES) -> float:
    """Mean ARI between the candidate's column labels and k-means on the columns embedded from half the rows.

    The column embedding from a random half ``H`` of the consumer rows is
    ``An[H]^T U[H] / s`` (the right singular vectors re-estimated from those
    rows through the left ones, no new decomposition), weighted, scaled and
    clustered (jointly with the rows of ``H`` for a joint candidate) as the
    candidate was.
    """
    from modularity.core.metrics import adjusted_rand

    an, u, s, dr, dc = shared
    keep, w = cand["keep"], cand["w"]
    m = an.shape[0]
    if m < 4:
        return 1.0
    scores = []
    for _ in range(resamples):
        half = rng.permutation(m)[: m // 2]
        vh = an[half].T @ u[half][:, keep] / np.maximum(s[keep], 1e-300)
        z = vh * w / np.sqrt(dc)[:, None]
        if cand["unit"]:
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-300)
        if cand["joint"]:
            zr = u[half][:, keep] * w / np.sqrt(dr[half])[:, None]
            lab = kmeans(np.vstack([zr, z]), k, rng, n_init=STABILITY_RESTARTS)[len(zr):]
        else:
            lab = kmeans(z, k, rng, n_init=STABILITY_RESTARTS)
        scores.append(adjusted_rand(cand["cols"], lab))
    return float(np.mean(scores))


def _select_index(sub: np.ndarray, k: int, rng: np.random.Generator, cands: list[dict], shared,
                  criterion: str) -> int:
    """Index of the chosen candidate: the best score among those that use all ``k`` column groups.

    A candidate whose columns fill fewer than ``k`` groups (a joint clustering in
    which the rows took clusters of their own, the grouped_mixed failure) is
    rejected unless every candidate does. Ties go to the earlier candidate.
    """
    full = [i for i, c in enumerate(cands) if len(np.unique(c["cols"])) == k] or list(range(len(cands)))
    if len(full) == 1:
        return full[0]
    if criterion == "modularity":
        score = [_bipartite_modularity(sub, cands[i]["rows"], cands[i]["cols"], k) for i in full]
    elif criterion == "ncut":
        score = [-bipartite_ncut(sub, cands[i]["rows"], cands[i]["cols"]) for i in full]
    elif criterion == "silhouette":
        score = [_silhouette(cands[i]["zc"], cands[i]["cols"]) for i in full]
    elif criterion == "stability":
        score = [_stability(cands[i], k, rng, shared) for i in full]
    else:
        raise ModularityError(f"unknown criterion '{criterion}'; choose one of {', '.join(SELECT_CRITERIA)}")
    return full[int(np.argmax(score))]


def _select_live(sub: np.ndarray, k: int, rng: np.random.Generator, criterion: str,
                 candidates: tuple[str, ...]) -> np.ndarray:
    cands, _, shared = _select_candidates(sub, k, rng, 0, candidates)
    return cands[_select_index(sub, k, rng, cands, shared, criterion)]["cols"]


def select(a: np.ndarray, k: int, rng: np.random.Generator, criterion: str = "stability",
           candidates: tuple[str, ...] = SELECT_CANDIDATES) -> np.ndarray:
    """Column labels of the candidate co-clustering that an internal criterion prefers.

    All candidates come from one truncated decomposition of
    ``D_r^-1/2 A D_c^-1/2``: ``"default"`` (``adaptive_sqrt_unit_r10``, :func:`~modularity.core.methods.adaptive`:
    noise-edge vector count, ``sqrt(s)`` weights, unit rows, columns alone; rows
    join the nearest column centroid), ``"log2k_joint"`` (Dhillon / scikit-learn:
    ``ceil(log2 k)`` unweighted vectors, rows and columns clustered together)
    and ``"log2k_cols"`` (the same embedding, columns alone). Each is the best of
    10 k-means++ restarts. Candidates whose columns fill fewer than ``k`` groups
    are rejected (unless all do); among the rest the criterion chooses, ties
    going to the earlier candidate. The truth is never seen.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes (rows: consumer units; columns: producer units).
    k : int
        Number of groups; clipped to the number of live rows and columns.
    rng : numpy.random.Generator
        Seeds k-means++ and the resamples.
    criterion : {"modularity", "stability", "silhouette", "ncut"}
        ``"modularity"``: Barber's bipartite modularity of the co-clustering
        (rows as assigned by the candidate), highest wins. ``"stability"``: mean
        ARI between the candidate's column labels and a re-clustering of the
        columns embedded from a random half of the rows
        (:data:`STABILITY_RESAMPLES` resamples, :data:`STABILITY_RESTARTS`
        restarts), highest wins. ``"silhouette"``: mean silhouette of the columns
        in the candidate's own embedding, highest wins. ``"ncut"``: bipartite
        normalised cut, lowest wins.
    candidates : tuple of str
        A subset of :data:`SELECT_CANDIDATES`, in order of preference on ties.

    Returns
    -------
    ndarray of int, shape (n_cols,)
        Labels ``0..k-1`` by first appearance; ``-1`` for all-zero columns.

    References
    ----------
    Barber, M. J. (2007). Modularity and community detection in bipartite
    networks. Physical Review E, 76(6), 066102.
    Ben-Hur, A., Elisseeff, A., & Guyon, I. (2002). A stability based method for
    discovering structure in clustered data. Pacific Symposium on Biocomputing 7, 6-17.
    Lange, T., Roth, V., Braun, M. L., & Buhmann, J. M. (2004). Stability-based
    validation of clustering solutions. Neural Computation, 16(6), 1299-1323.
    Rousseeuw, P. J. (1987). Silhouettes: a graphical aid to the interpretation
    and validation of cluster analysis. J. Comput. Appl. Math., 20, 53-65.
    Shi, J., & Malik, J. (2000). Normalized cuts and image segmentation. IEEE
    TPAMI, 22(8), 888-905.

    Examples
    --------
    >>> a = np.kron(np.eye(3), np.ones((4, 2)))
    >>> select(a, 3, np.random.default_rng(0), "modularity").tolist()
    [0, 0, 1, 1, 2, 2]
    """
    return columns_on_live(partial(_select_live, criterion=criterion, candidates=tuple(candidates)), a, k, rng)


def _select_sklearn_live(sub: np.ndarray, k: int, rng: np.random.Generator, noise_floor: bool = False) -> np.ndarray:
    from sklearn.cluster import SpectralCoclustering

    # scikit-learn first, with the generator's first draw: exactly what ``sklearn_scc`` returns for this rng
    seed = int_seed(rng)
    with single_threaded():
        model = SpectralCoclustering(n_clusters=k, random_state=seed).fit(sub)
    ref_rows, ref_cols = np.asarray(model.row_labels_), np.asarray(model.column_labels_)
    zc, zr, _ = edge_embedding(sub, k)
    cols = kmeans(zc, k, rng, n_init=10)
    rows = nearest_centre(zc, zr, cols, k)
    full = [len(np.unique(c)) == k for c in (cols, ref_cols)]
    if full[0] != full[1]:  # a candidate whose columns fill fewer than k groups loses
        return cols if full[0] else ref_cols
    if noise_floor and zc.shape[1] - 1 < k - 1:
        return ref_cols  # fewer than k - 1 directions above the noise edge: keep scikit-learn's clustering
    ours = bipartite_ncut(sub, rows, cols)
    theirs = bipartite_ncut(sub, ref_rows, ref_cols)
    return ref_cols if theirs < ours else cols


def select_sklearn(a: np.ndarray, k: int, rng: np.random.Generator, noise_floor: bool = False) -> np.ndarray:
    """Column labels of ``adaptive_sqrt_unit_r10`` or of scikit-learn's co-clustering, whichever has the lower n-cut.

    Two co-clusterings of the live submatrix: scikit-learn's
    ``SpectralCoclustering`` with its defaults, seeded by the generator's first
    draw (so that it is exactly ``sklearn_scc`` for the same generator), and
    ``adaptive_sqrt_unit_r10`` (:func:`~modularity.core.methods.adaptive` with
    its defaults; rows join the nearest column centroid). A candidate whose
    columns fill fewer than ``k`` groups is rejected unless both do; otherwise
    the one with the lower bipartite normalised cut
    (:func:`~modularity.core.spectral.bipartite_ncut`, each candidate with its
    own row labels) wins, ties going to ``adaptive_sqrt_unit_r10``. No
    parameter is tuned. Cost: one more ``SpectralCoclustering`` fit.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes (rows: consumer units; columns: producer units).
    k : int
        Number of groups; clipped to the number of live rows and columns.
    rng : numpy.random.Generator
        Seeds scikit-learn (first draw) and then ``adaptive_sqrt_unit_r10``'s k-means++.
    noise_floor : bool
        When fewer than ``k - 1`` singular values lie above the noise edge
        (:func:`~modularity.core.methods.noise_edge`; ``adaptive_sqrt_unit_r10`` then uses scikit-learn's own vector
        count, ``ceil(log2 k)``), take scikit-learn's clustering without
        comparing cuts: at the noise level nothing in the matrix favours the
        default's weighting over the reference (``select_sklearn_ncut_floor``).

    Returns
    -------
    ndarray of int, shape (n_cols,)
        Labels ``0..k-1`` by first appearance; ``-1`` for all-zero columns.

    References
    ----------
    Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
    spectral graph partitioning. KDD 2001, 269-274.
    Shi, J., & Malik, J. (2000). Normalized cuts and image segmentation. IEEE
    TPAMI, 22(8), 888-905.

    Examples
    --------
    >>> a = np.kron(np.eye(3), np.ones((4, 2)))
    >>> select_sklearn(a, 3, np.random.default_rng(0)).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    return columns_on_live(partial(_select_sklearn_live, noise_floor=noise_floor), a, k, rng)


# ---------------------------------------------------------------- consensus

CONSENSUS_VARIANTS = tuple((v, j) for v in ("km1", "k", "log2k") for j in (True, False))
CONSENSUS_SEEDS = 3
CONSENSUS_RESTARTS = 4


def _coassociation(sub: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = sub.shape[1]
    c = np.zeros((n, n))
    runs = 0
    for vectors, joint in CONSENSUS_VARIANTS:
        for _ in range(CONSENSUS_SEEDS):
            lab = _dhillon_live(sub, k, rng, vectors, joint, n_init=CONSENSUS_RESTARTS)
            onehot = np.eye(k)[lab]
            c += onehot @ onehot.T
            runs += 1
    return c / runs


def _consensus_live(sub: np.ndarray, k: int, rng: np.random.Generator, final: str) -> np.ndarray:
    c = _coassociation(sub, k, rng)
    if final == "average":
        d = 1.0 - c
        np.fill_diagonal(d, 0.0)
        z = linkage(squareform(np.clip(d, 0, None), checks=False), method="average")
        return fcluster(z, t=k, criterion="maxclust") - 1
    # normalised spectral clustering of the co-association (an affinity with unit diagonal)
    deg = c.sum(axis=1)
    cn = c / np.sqrt(deg)[:, None] / np.sqrt(deg)[None, :]
    _, vec = np.linalg.eigh(cn)
    x = vec[:, -k:]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return kmeans(x, k, rng, n_init=10)


def consensus(a: np.ndarray, k: int, rng: np.random.Generator, final: str = "spectral") -> np.ndarray:
    """Consensus of the Dhillon variants by evidence accumulation.

    The co-association matrix ``C[i, j]`` is the fraction of the 18 runs (six
    embeddings: ``k - 1``, ``k`` and ``ceil(log2 k)`` vectors, joint and
    columns-only; three k-means seeds each) that put columns ``i`` and ``j``
    together; it is then split into ``k`` groups.

    Parameters
    ----------
    final : {"spectral", "average"}
        Normalised spectral clustering of ``C`` (top ``k`` eigenvectors, rows
        scaled to unit length, k-means) or average linkage on ``1 - C``.

    References
    ----------
    Fred, A. L. N., & Jain, A. K. (2005). Combining multiple clusterings using
    evidence accumulation. IEEE TPAMI, 27(6), 835-850.
    """
    return columns_on_live(partial(_consensus_live, final=final), a, k, rng)


# ---------------------------------------------------------------- community detection

def _community_fit(sub: np.ndarray, rng: np.random.Generator, algorithm: str, resolution: float,
                   seed: int | None = None) -> np.ndarray:
    from scipy import sparse

    try:
        from sknetwork.clustering import Leiden, Louvain
    except ImportError as exc:
        raise ModularityError("the community methods need scikit-network: pip install scikit-network") from exc

    cls = Louvain if algorithm == "louvain" else Leiden
    model = cls(resolution=resolution, shuffle_nodes=True,
                random_state=int_seed(rng) if seed is None else seed)
    model.fit(sparse.csr_matrix(sub), force_bipartite=True)
    return np.asarray(model.labels_col_)


def _community_live(sub: np.ndarray, k: int, rng: np.random.Generator, algorithm: str) -> np.ndarray:
    return _community_fit(sub, rng, algorithm, 1.0)


def _community_k_live(sub: np.ndarray, k: int, rng: np.random.Generator, algorithm: str) -> np.ndarray:
    seed = int_seed(rng)  # one node order for every resolution tried
    lo, hi, res = None, None, 1.0
    best, best_gap = np.zeros(sub.shape[1], dtype=int), sub.shape[1] + k  # replaced by the first fit
    for _ in range(RESOLUTION_STEPS):
        lab = _community_fit(sub, rng, algorithm, res, seed)
        n = len(np.unique(lab))
        gap = abs(n - k)
        if gap < best_gap:
            best, best_gap = lab, gap
        if n == k:
            break
        if n < k:
            lo = res
            res = res * 4 if hi is None else math.sqrt(res * hi)
        else:
            hi = res
            res = res / 4 if lo is None else math.sqrt(res * lo)
    return best


def community(a: np.ndarray, k: int, rng: np.random.Generator, algorithm: str = "louvain") -> np.ndarray:
    """Column labels of bipartite modularity maximisation (scikit-network), resolution 1.

    ``k`` is ignored (beyond ``k = 1`` giving one group): the algorithm picks
    its own number of groups, which may differ from ``k``.

    Parameters
    ----------
    algorithm : {"louvain", "leiden"}

    References
    ----------
    Barber, M. J. (2007). Modularity and community detection in bipartite networks.
    Physical Review E, 76(6), 066102.
    """
    return columns_on_live(partial(_community_live, algorithm=algorithm), a, k, rng)


def community_k(a: np.ndarray, k: int, rng: np.random.Generator, algorithm: str = "louvain") -> np.ndarray:
    """Like :func:`community`, with the resolution searched for ``k`` column groups.

    Geometric bisection of the resolution starting at 1 (factor 4 until the
    target is bracketed), at most :data:`RESOLUTION_STEPS` fits with one node
    order; returns the partition whose number of column groups is closest to
    ``k`` (exactly ``k`` when one was found).
    """
    return columns_on_live(partial(_community_k_live, algorithm=algorithm), a, k, rng)



# ---------------------------------------------------------------- registry

def _production(name: str) -> Method:
    """The columns of a production method, exactly as :func:`modularity.core.methods.cocluster` gives them."""

    def run(a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        return cocluster(a, k, rng, name).cols

    run.__name__ = name
    return run


CANDIDATES: dict[str, Method] = {name: _production(name) for name in METHODS}
CANDIDATES["current"] = current
for _v in ("km1", "k", "log2k"):
    for _side, _joint in (("joint", True), ("cols", False)):
        for _r in (4, 10, 30):
            CANDIDATES[f"dhillon_{_v}_{_side}_r{_r}"] = partial(dhillon, vectors=_v, joint=_joint, n_init=_r)
CANDIDATES.setdefault("dhillon_k_cols_sv_r10", partial(dhillon, vectors="k", joint=False, n_init=10, weighted=True))
for _w in ("sqrt", "sv", "one", "shrink"):
    CANDIDATES.setdefault(f"adaptive_{_w}_r10", partial(adaptive, weights=_w, unit=False))
    CANDIDATES.setdefault(f"adaptive_{_w}_unit_r10", partial(adaptive, weights=_w, unit=True))
CANDIDATES["adaptive_sqrt_unit_r30"] = partial(adaptive, weights="sqrt", unit=True, n_init=30)
CANDIDATES["dhillon_km1_cols_sqrt_unit_r10"] = partial(adaptive, weights="sqrt", unit=True, count="km1")
for _c in SELECT_CRITERIA:
    CANDIDATES[f"select_{_c}"] = partial(select, criterion=_c)
CANDIDATES["select_sklearn_ncut"] = select_sklearn
CANDIDATES["select_sklearn_ncut_floor"] = partial(select_sklearn, noise_floor=True)
CANDIDATES["consensus_spectral"] = partial(consensus, final="spectral")
CANDIDATES["consensus_average"] = partial(consensus, final="average")
CANDIDATES["louvain"] = partial(community, algorithm="louvain")
CANDIDATES["louvain_k"] = partial(community_k, algorithm="louvain")
CANDIDATES["leiden"] = partial(community, algorithm="leiden")
# several embeddings refined by information (issue 20): the variants measured
REFINED_VARIANTS: dict[str, dict] = {
    "spectral_refined": {},
    "spectral_refined_nomoves": {"moves": False},
    "spectral_refined_three": {"embeddings": ("edge", "km1", "log2k")},
    "spectral_refined_three_nomoves": {"embeddings": ("edge", "km1", "log2k"), "moves": False},
    "spectral_refined_five": {"embeddings": ("edge", "km1", "log2k", "log2k_one", "km1_sv")},
    "spectral_refined_rows1": {"row_factor": 1},
    "spectral_refined_rows3": {"row_factor": 3},
    "spectral_refined_raw": {"balanced": False},
    "spectral_refined_raw_rows1": {"balanced": False, "row_factor": 1},
    "spectral_refined_r4": {"n_init": 4},
    "spectral_refined_iter5": {"max_iter": 5},
    "spectral_refined_tol3": {"tol": 1e-3},
    "spectral_refined_tries1": {"tries": 1},
}
for _name, _kw in REFINED_VARIANTS.items():
    CANDIDATES.setdefault(_name, partial(refined, **_kw))


def _kmeans_live(sub: np.ndarray, k: int, rng: np.random.Generator, embedding: str) -> np.ndarray:
    return kmeans(column_embeddings(sub, k, (embedding,))[0][0], k, rng, n_init=10)


def embedding_kmeans(a: np.ndarray, k: int, rng: np.random.Generator, embedding: str = "edge") -> np.ndarray:
    """k-means (best of 10) in one column embedding of :data:`modularity.core.methods.EMBEDDINGS`: one of the
    starting points of :func:`~modularity.core.methods.refined`, unrefined."""
    return columns_on_live(partial(_kmeans_live, embedding=embedding), a, k, rng)


for _e in EMBEDDINGS:
    CANDIDATES[f"kmeans_{_e}"] = partial(embedding_kmeans, embedding=_e)


def candidate_columns(a: np.ndarray, k: int, method: str, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Group the columns of a non-negative matrix with a named candidate (a key of :data:`CANDIDATES`).

    Raises
    ------
    ModularityError
        For an unknown name, a matrix that is not 2-d, or negative or non-finite entries.

    Examples
    --------
    >>> a = np.kron(np.eye(2), np.ones((3, 2)))
    >>> candidate_columns(a, 2, "dhillon_k_joint_r4", 0).tolist()
    [0, 0, 1, 1]
    """
    if method not in CANDIDATES:
        raise ModularityError(f"unknown method '{method}'; choose one of {', '.join(CANDIDATES)}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return CANDIDATES[method](a, k, rng)
