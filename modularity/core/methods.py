"""Candidate methods for grouping the producer units (columns) of a magnitude profile.

Every method has the signature ``(a, k, rng) -> labels``: ``a`` is a
non-negative ``(n_consumer_units, n_producer_units)`` matrix, ``k`` the wanted
number of groups, ``rng`` a :class:`numpy.random.Generator`; the result is one
integer label per column, in ``0..k-1`` (numbered by first appearance), and
``-1`` for all-zero columns. All-zero rows and columns are set aside before
anything is normalised, so no method returns NaN (scikit-learn's
``SpectralCoclustering`` does on such input, scikit-learn issue 8809).

:data:`METHODS` names them; :func:`cocluster_columns` runs one by name.
``scripts/method_benchmark.py`` scores each against the true branches of planted
and real Inception blocks (``reports/methods.md``).

Candidates
----------
``current``
    The package's co-clustering so far (:func:`~modularity.core.spectral.cocluster_spectrum`,
    Dhillon's embedding with ``k - 1`` non-trivial singular vectors, rows and
    columns clustered jointly, 4 k-means restarts).
``sklearn_scc``
    scikit-learn ``SpectralCoclustering`` with its defaults (randomized SVD,
    ``1 + ceil(log2 k)`` singular vectors less the trivial one, 10 restarts) on
    the live submatrix.
``sklearn_sbc_log``, ``sklearn_sbc_bistochastic``
    scikit-learn ``SpectralBiclustering`` (Kluger et al. 2003) with
    ``method="log"`` (zeros inside the live submatrix are floored at half the
    smallest positive entry, since the log of zero is undefined) or
    ``"bistochastic"``; its column labels.
``dhillon_{n}_{side}_r{restarts}``
    Dhillon's embedding ``[D_r^-1/2 U; D_c^-1/2 V]`` with ``n`` non-trivial
    singular vectors of ``D_r^-1/2 A D_c^-1/2`` (``km1``: ``k - 1``; ``k``;
    ``log2k``: ``ceil(log2 k)``), k-means on the rows and columns jointly
    (``joint``) or on the columns alone (``cols``), best of ``restarts``
    k-means++ runs by inertia. Vectors of singular value 0 are left out. The
    leading ("trivial") vector is kept as well:
    it is constant after scaling when the bipartite graph is connected (so it
    changes nothing), and it carries a block indicator when the graph falls
    apart into blocks (a grouped consumer as the only reader), where the top
    singular value 1 is repeated and dropping "the" trivial vector loses a block.
``dhillon_km1_cols_sv_r10``, ``dhillon_k_cols_sv_r10``
    The columns-only embedding with 10 restarts, each coordinate scaled by its
    singular value (weak directions, near the noise, count less).
``consensus_spectral``, ``consensus_average``
    Evidence accumulation: the co-association matrix (how often two columns
    share a cluster) over the six Dhillon embeddings (three vector counts, joint
    and columns-only) with three k-means seeds each (4 restarts), clustered into
    ``k`` groups by normalised spectral clustering of the co-association
    matrix (``spectral``) or by average-linkage on ``1 - C`` (``average``).
``adaptive_{weights}[_unit]_r{restarts}``
    :func:`adaptive`: the columns-only Dhillon embedding with the number of
    non-trivial vectors set by the noise edge (:func:`noise_edge`: singular
    values above it, clipped to ``ceil(log2 k) .. k - 1``), coordinates
    weighted by ``sqrt(s)``, ``s``, 1 (``one``) or ``max(s - edge, 0.05 edge)``
    (``shrink``), with (``_unit``) or without rows scaled to unit length.
``dhillon_km1_cols_sqrt_unit_r10``
    The same embedding as ``adaptive_sqrt_unit_r10`` with ``k - 1`` vectors
    always (isolates the effect of the adaptive count).
``select_{criterion}``
    :func:`select`: three co-clusterings from one decomposition (the default;
    ``ceil(log2 k)`` unweighted vectors, rows and columns jointly; the same,
    columns alone), those whose columns fill fewer than ``k`` groups rejected,
    the rest chosen between by Barber's bipartite ``modularity``, the
    ``stability`` of the column clustering when the columns are embedded from
    a random half of the rows, the columns' ``silhouette`` or the bipartite
    ``ncut``. None meets the rule below (``reports/methods.md``): all still
    miss on Mixed_5c or Mixed_7b (``select_ncut``: 0.196 against 0.215 ± 0.002
    and 0.289 against 0.291 ± 0.000; overall 0.502 against the default's
    0.505), at 1.5 to 7 times the default's cost per call.
``select_sklearn_ncut``
    :func:`select_sklearn`: the default or scikit-learn's ``SpectralCoclustering``
    (exactly ``sklearn_scc`` for the same generator), whichever has the lower
    bipartite normalised cut (a candidate filling fewer than ``k`` column
    groups loses). It does not meet the rule either: it misses Mixed_5c (the
    default's cut is lower there) and is below the default on average
    (``reports/methods.md`` / issue 11 notes). ``select_sklearn_ncut_floor``
    takes scikit-learn's clustering outright when fewer than ``k - 1``
    singular values lie above the noise edge.
``louvain``, ``leiden``
    scikit-network's ``Louvain`` / ``Leiden`` on the bipartite graph whose
    biadjacency matrix is ``a`` (Barber's bipartite modularity, resolution 1,
    shuffled node order): they choose their own number of groups.
``louvain_k``
    Louvain with the resolution searched (geometric bisection, at most
    :data:`RESOLUTION_STEPS` fits) for the number of column groups closest to
    ``k``. (Leiden tuned the same way took about 30 s per run on the largest
    real profile and is not offered.)

Default
-------
:data:`DEFAULT_METHOD` is ``"adaptive_sqrt_unit_r10"`` (:func:`adaptive`;
:func:`cocluster_default` is the same with the rows assigned and the spectrum
returned): the leading singular vector of ``D_r^-1/2 A D_c^-1/2`` plus as many
non-trivial ones as there are singular values above the estimated noise edge
(:func:`noise_edge`), clipped to ``ceil(log2 k) .. k - 1``; each coordinate
scaled by the square root of its singular value and by ``D_c^-1/2``; each
column's vector scaled to unit length; k-means on the columns alone, best of
10 k-means++ restarts. Chosen by ``scripts/method_benchmark.py``
(``reports/methods.md``: googlenet with a planted signal in all 8 Inception
blocks that feed another block, inception_v3 with a planted signal in 2
blocks, grouped-conv networks, random-init nulls, the 11 real nsfwjs
InceptionV3 blocks; 5 network seeds and 5 method seeds):

- The rule (at least as good as scikit-learn's ``SpectralCoclustering`` on
  every non-null case within its seed sd, and best on average) is **not met**
  by any candidate. This default is best on average and misses it on two real
  blocks: Mixed_5c (0.196 against 0.215 ± 0.002) and Mixed_7b (0.238
  against 0.291 ± 0.000); among the 32 per-block googlenet cases, on
  inception4b at signal 0.1 (0.009 against 0.011 ± 0.001, both at the noise
  level).
- Best overall average ARI: 0.505, against 0.303 for ``sklearn_scc``, 0.496
  for the previous default ``dhillon_km1_cols_sv_r10`` and 0.313 for the first
  one ``current``; real blocks 0.237 (0.193, 0.213, 0.192); planted cases
  without grouped_mixed 0.613 (0.559, 0.618, 0.597).
- Against the previous default it removes two of its three losses to
  ``sklearn_scc`` (Mixed_6a 0.038 against 0.034; googlenet inception3a at
  signal 0.2, 0.131 against 0.132 ± 0.007, where the previous default had
  0.096) and halves the other two (Mixed_5c short by 0.019 instead of 0.035,
  Mixed_7b by 0.053 instead of 0.090). It gives up a little at strong planted
  signal (googlenet at 0.3: 0.808 against 0.838; still 0.16 above
  ``sklearn_scc``).
- The noise edge sets the number of vectors: at the noise level (weak planted
  signal) it uses ``ceil(log2 k)`` as scikit-learn does, which removes the
  weak-signal losses of ``k - 1`` vectors (``dhillon_km1_cols_sqrt_unit_r10``,
  the same method with ``k - 1`` vectors always, has the same average but
  three per-block losses at signal 0.2, up to 0.036); with structure above
  the edge it uses ``k - 1``. Square-root weights with unit-length rows gave
  the best real-block average of the weightings measured (0.237; 0.215 with
  singular-value weights, 0.240 unweighted but with two planted losses);
  soft thresholding at the edge (``adaptive_shrink_r10``) is much worse
  (0.468 overall): planted directions barely above the edge still carry the
  branches.
- Cost per call: one truncated decomposition (as before), one pass over the
  matrix for the edge and a 10-restart k-means; about 1.1 to 1.2 times the
  previous default (``cocluster_spectrum``) on 832 x 528 and 576 x 832
  profiles, and it is re-run for every null permutation.

References
----------
.. [1] Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
   spectral graph partitioning. *Proceedings of the 7th ACM SIGKDD International
   Conference on Knowledge Discovery and Data Mining*, 269-274.
.. [2] Kluger, Y., Basri, R., Chang, J. T., & Gerstein, M. (2003). Spectral
   biclustering of microarray data: coclustering genes and conditions.
   *Genome Research*, 13(4), 703-716.
.. [3] Ng, A. Y., Jordan, M. I., & Weiss, Y. (2002). On spectral clustering:
   analysis and an algorithm. *Advances in Neural Information Processing Systems* 14.
.. [4] Fred, A. L. N., & Jain, A. K. (2005). Combining multiple clusterings using
   evidence accumulation. *IEEE TPAMI*, 27(6), 835-850.
.. [5] Barber, M. J. (2007). Modularity and community detection in bipartite
   networks. *Physical Review E*, 76(6), 066102.
.. [6] Traag, V. A., Waltman, L., & van Eck, N. J. (2019). From Louvain to Leiden:
   guaranteeing well-connected communities. *Scientific Reports*, 9, 5233.
.. [7] Bai, Z. D., & Yin, Y. Q. (1993). Limit of the smallest eigenvalue of a large
   dimensional sample covariance matrix. *Annals of Probability*, 21(3), 1275-1294.
   (The ``sigma (sqrt(m) + sqrt(n))`` edge of the largest singular value of noise.)
.. [8] Ben-Hur, A., Elisseeff, A., & Guyon, I. (2002). A stability based method for discovering
   structure in clustered data. *Pacific Symposium on Biocomputing* 7, 6-17.
.. [9] Lange, T., Roth, V., Braun, M. L., & Buhmann, J. M. (2004). Stability-based validation of
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

from .defaults import DEFAULT_METHOD
from ..errors import ModularityError
from .spectral import (bipartite_ncut, cocluster_spectrum, degree_normalised, kmeans, live_submatrix,
                       nearest_centre, relabel, top_singular)

__all__ = ["METHODS", "DEFAULT_METHOD", "cocluster_columns", "dhillon", "current", "sklearn_scc",
           "sklearn_sbc", "consensus", "adaptive", "noise_edge", "cocluster_default", "select", "SELECT_CRITERIA",
           "SELECT_CANDIDATES", "select_sklearn", "community", "community_k", "RESOLUTION_STEPS"]

Method = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

RESOLUTION_STEPS = 10
_SEED_MAX = 2 ** 31 - 1


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Renumber non-negative labels ``0, 1, ...`` by first appearance; ``-1`` stays."""
    out = np.full(len(labels), -1)
    seen: dict[int, int] = {}
    for i, x in enumerate(labels.tolist()):
        if x >= 0:
            out[i] = seen.setdefault(x, len(seen))
    return out


def _on_live(fn: Callable[[np.ndarray, int, np.random.Generator], np.ndarray],
             a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Run ``fn`` on the submatrix of non-zero rows and columns; ``-1`` for the rest.

    ``k`` is clipped to ``1..min(live rows, live columns)``; with one group, or
    one live column, every live column gets label 0 and ``fn`` is not called.
    """
    a = _checked(a)
    labels = np.full(a.shape[1], -1)
    _, cols, k, sub = live_submatrix(a, k)
    if sub is None:
        return labels
    if k == 1:
        labels[cols] = 0
        return labels
    labels[cols] = fn(sub.copy() if sub is a else sub, k, rng)  # methods get their own matrix, never the caller's
    return _canonical(labels)


def _checked(a: np.ndarray) -> np.ndarray:
    """``a`` as a float64 matrix, or a one-line error if it is not 2-d, finite and non-negative."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ModularityError(f"expected a 2-d matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or (a < 0).any():
        raise ModularityError("the matrix must be finite and non-negative")
    return a


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
        return int(math.ceil(math.log2(k)))
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
    return _on_live(partial(_dhillon_live, vectors=vectors, joint=joint, n_init=n_init, weighted=weighted),
                    a, k, rng)


def current(a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Column labels of :func:`~modularity.core.spectral.cocluster_spectrum` (the old default, 4 restarts)."""
    return _on_live(lambda sub, kk, r: cocluster_spectrum(sub, kk, r, n_init=4, joint=True)[1], a, k, rng)


# ---------------------------------------------------------------- adaptive vector count

EDGE_WEIGHTS = ("sqrt", "sv", "one", "shrink")


def noise_edge(an: np.ndarray, dr: np.ndarray, dc: np.ndarray) -> float:
    """Estimated bulk edge of the non-trivial singular values of ``an = D_r^-1/2 A D_c^-1/2``.

    The trivial rank-one part ``sqrt(d_r) sqrt(d_c)^T / sum(A)`` (singular value
    1) is removed; for a residual ``R`` of ``m x n`` independent entries of equal
    variance ``sigma^2`` the largest singular value concentrates at
    ``sigma (sqrt(m) + sqrt(n))`` (the Marchenko-Pastur / Bai-Yin edge), with
    ``sigma^2`` estimated by the mean squared residual entry. On the random-init
    googlenet profiles it agrees with the top singular value of a copy whose
    rows are permuted (0.088 against 0.087 on inception3a); planted structure
    lifts ``sigma`` only slightly, so the estimate errs high by a little. One
    pass over the matrix: no extra decomposition, and no residual matrix: with
    the rank-one part ``r c^T``, ``|R|^2 = |an|^2 - 2 r^T an c + |r|^2 |c|^2``
    (on alexnet's 4096 x 4096 classifier profile 0.05 s instead of 0.5 s).
    """
    m, n = an.shape
    r, c = np.sqrt(dr), np.sqrt(dc) / float(dr.sum())
    energy = float(np.vdot(an, an)) - 2.0 * float(r @ (an @ c)) + float(r @ r) * float(c @ c)
    return float(np.sqrt(max(energy, 0.0) / (m * n)) * (math.sqrt(m) + math.sqrt(n)))


def _edge_count(s: np.ndarray, k: int, tau: float) -> int:
    """Non-trivial vectors to use: those above the edge, at least ``ceil(log2 k)``, at most ``k - 1``."""
    above = int(np.count_nonzero(s[1:k] > tau))
    return max(int(math.ceil(math.log2(k))), min(k - 1, above))


def _adaptive_embedding(sub: np.ndarray, k: int, n_values: int = 0, weights: str = "sqrt",
                        unit: bool = True, count: str = "edge"):
    """Column and row embeddings of the adaptive method, and the leading singular values.

    ``sub`` has no zero rows or columns and ``2 <= k <= min(sub.shape)``.
    """
    an, dr, dc = degree_normalised(sub)
    u, s, v = top_singular(an, max(k, n_values))
    tau = noise_edge(an, dr, dc)
    n = _edge_count(s, k, tau) if count == "edge" else k - 1
    n = max(1, min(n, len(s) - 1))
    # the leading vector is kept (constant after scaling on a connected graph, a block indicator on a
    # disconnected one); vectors of a zero singular value are arbitrary and are left out
    keep = np.flatnonzero(s[:n + 1] > 1e-6 * s[0])
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
    zc, _, _ = _adaptive_embedding(sub, k, 0, weights, unit, count)
    return kmeans(zc, k, rng, n_init=n_init)


def adaptive(a: np.ndarray, k: int, rng: np.random.Generator, weights: str = "sqrt", unit: bool = True,
             count: str = "edge", n_init: int = 10) -> np.ndarray:
    """Column labels from a bipartite spectral embedding whose dimension follows the noise edge.

    The number of non-trivial singular vectors of ``D_r^-1/2 A D_c^-1/2`` is the
    number of singular values above the estimated bulk edge
    (:func:`noise_edge`), clipped to ``ceil(log2 k) .. k - 1``: as few as
    scikit-learn uses when the structure is at the noise level (a direction at
    the noise level only adds noise to k-means), and ``k - 1`` when there are
    that many structured directions. The leading vector is kept too.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes (rows: consumer units; columns: producer units).
    k : int
        Number of groups; clipped to the number of live rows and columns.
    rng : numpy.random.Generator
        Seeds k-means++.
    weights : {"sqrt", "sv", "one", "shrink"}
        Scale of each coordinate: the square root of its singular value, the
        singular value, 1, or the singular value less the edge (soft
        thresholding, floored at 5 % of the edge so that no coordinate vanishes).
    unit : bool
        Scale every column's embedding vector to unit length before k-means
        (Ng, Jordan & Weiss), so that columns are grouped by direction.
    count : {"edge", "km1"}
        ``"km1"`` uses ``k - 1`` vectors whatever the spectrum (for comparison).
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
    Bai, Z. D., & Yin, Y. Q. (1993). Limit of the smallest eigenvalue of a large
    dimensional sample covariance matrix. Annals of Probability, 21(3), 1275-1294.

    Examples
    --------
    >>> a = np.kron(np.eye(3), np.ones((4, 2)))
    >>> adaptive(a, 3, np.random.default_rng(0)).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    return _on_live(partial(_adaptive_live, weights=weights, unit=unit, count=count, n_init=n_init), a, k, rng)


def cocluster_default(a: np.ndarray, k: int, rng: np.random.Generator | int | None = None,
                      n_values: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Co-clustering of rows and columns with the default method (:data:`DEFAULT_METHOD`).

    The contract of :func:`~modularity.core.spectral.cocluster_spectrum`: the
    columns are grouped exactly as by ``cocluster_columns(a, k, DEFAULT_METHOD, rng)``
    (``adaptive_sqrt_unit_r10``: noise-edge vector count, square-root
    singular-value weights, unit-length rows, k-means on the columns alone, best
    of 10 restarts); each live row then joins the column cluster whose centroid
    is nearest to it in the same embedding (rows embedded by their left
    singular vectors, scaled and normalised alike).

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes.
    k : int
        Number of co-clusters; clipped to the number of live rows and columns.
    rng : Generator, int or None
        Seeds k-means.
    n_values : int
        Also return this many leading singular values of ``D_r^-1/2 A D_c^-1/2``
        (from the same decomposition).

    Returns
    -------
    row_labels : ndarray of int, shape (n_rows,)
    col_labels : ndarray of int, shape (n_cols,)
        Labels in ``0..k-1``, numbered by first appearance among the columns,
        then the rows; ``-1`` for all-zero rows or columns.
    values : ndarray
        The ``n_values`` leading singular values (fewer when the live
        submatrix is smaller; none when nothing is live).

    Examples
    --------
    >>> a = np.kron(np.eye(2), np.ones((3, 2)))
    >>> rows, cols, values = cocluster_default(a, 2, 0, n_values=2)
    >>> rows.tolist(), cols.tolist(), np.round(values, 6).tolist()
    ([0, 0, 0, 1, 1, 1], [0, 0, 1, 1], [1.0, 1.0])
    """
    a = _checked(a)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    row_labels = np.full(a.shape[0], -1)
    col_labels = np.full(a.shape[1], -1)
    rows, cols, k, sub = live_submatrix(a, k)
    if sub is None:
        return row_labels, col_labels, np.zeros(0)
    if k == 1:
        values = top_singular(degree_normalised(sub)[0], n_values)[1] if n_values else np.zeros(0)
        row_labels[rows], col_labels[cols] = 0, 0
        return row_labels, col_labels, values
    zc, zr, values = _adaptive_embedding(sub, k, n_values)
    labels = kmeans(zc, k, rng, n_init=10)
    col_labels[cols] = labels
    row_labels[rows] = nearest_centre(zc, zr, labels, k)
    return (*relabel(row_labels, col_labels), values)


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
            n = _edge_count(s, k, noise_edge(an, dr, dc))
            unit, joint = True, False
        elif name in ("log2k_joint", "log2k_cols"):
            n = int(math.ceil(math.log2(k)))
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
    from .metrics import adjusted_rand

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
    ``D_r^-1/2 A D_c^-1/2``: ``"default"`` (:func:`adaptive` with its defaults:
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
    return _on_live(partial(_select_live, criterion=criterion, candidates=tuple(candidates)), a, k, rng)


def _select_sklearn_live(sub: np.ndarray, k: int, rng: np.random.Generator, noise_floor: bool = False) -> np.ndarray:
    from sklearn.cluster import SpectralCoclustering

    # scikit-learn first, with the generator's first draw: exactly what ``sklearn_scc`` returns for this rng
    seed = _seed(rng)
    with _single_threaded():
        model = SpectralCoclustering(n_clusters=k, random_state=seed).fit(sub)
    ref_rows, ref_cols = np.asarray(model.row_labels_), np.asarray(model.column_labels_)
    zc, zr, _ = _adaptive_embedding(sub, k)
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
    """Column labels of the default or of scikit-learn's co-clustering, whichever has the lower normalised cut.

    Two co-clusterings of the live submatrix: scikit-learn's
    ``SpectralCoclustering`` with its defaults, seeded by the generator's first
    draw (so that it is exactly :func:`sklearn_scc` for the same generator), and
    the default (:func:`adaptive` with its defaults; rows join the nearest
    column centroid, as in :func:`cocluster_default`). A candidate whose columns
    fill fewer than ``k`` groups is rejected unless both do; otherwise the one
    with the lower bipartite normalised cut (:func:`~modularity.core.spectral.bipartite_ncut`, each
    candidate with its own row labels) wins, ties going to the default. No
    parameter is tuned. Measured in ``scripts/method_benchmark.py``: it takes
    scikit-learn's clustering on Mixed_7b but not on Mixed_5c, where the
    default's cut is lower; on every real block the true branches have a higher
    cut than both candidates, so the cut cannot tell which candidate is nearer
    to them. Cost: the default plus one ``SpectralCoclustering`` fit, about
    2 to 2.5 times the default.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
        Non-negative magnitudes (rows: consumer units; columns: producer units).
    k : int
        Number of groups; clipped to the number of live rows and columns.
    rng : numpy.random.Generator
        Seeds scikit-learn (first draw) and then the default's k-means++.
    noise_floor : bool
        When fewer than ``k - 1`` singular values lie above the noise edge
        (:func:`noise_edge`; the default then uses scikit-learn's own vector
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
    return _on_live(partial(_select_sklearn_live, noise_floor=noise_floor), a, k, rng)


# ---------------------------------------------------------------- scikit-learn

def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(_SEED_MAX))


def _single_threaded():
    """Limit BLAS and OpenMP to one thread: scikit-learn's k-means on these few-thousand-point
    problems gains nothing from threads, and on a small shared machine oversubscription made
    ``SpectralBiclustering`` 10 to 30 times slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _scc_live(sub: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.cluster import SpectralCoclustering

    with _single_threaded():
        return SpectralCoclustering(n_clusters=k, random_state=_seed(rng)).fit(sub).column_labels_


def sklearn_scc(a: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Column labels of scikit-learn's ``SpectralCoclustering`` (defaults) on the live submatrix.

    References
    ----------
    Dhillon, I. S. (2001). Co-clustering documents and words using bipartite
    spectral graph partitioning. KDD 2001, 269-274.
    """
    return _on_live(_scc_live, a, k, rng)


def _sbc_live(sub: np.ndarray, k: int, rng: np.random.Generator, method: str) -> np.ndarray:
    from sklearn.cluster import SpectralBiclustering

    if method == "log":
        pos = sub[sub > 0]
        sub = np.where(sub > 0, sub, 0.5 * pos.min())
    # scikit-learn's defaults are n_components=6, n_best=3; both must fit the matrix
    n_components = max(2, min(6, min(sub.shape) - 1))
    n_best = min(3, n_components - 1 if method == "bistochastic" else n_components)
    model = SpectralBiclustering(n_clusters=(k, k), method=method, n_components=n_components,
                                 n_best=max(1, n_best), random_state=_seed(rng))
    with _single_threaded():
        return model.fit(sub).column_labels_


def sklearn_sbc(a: np.ndarray, k: int, rng: np.random.Generator, method: str = "bistochastic") -> np.ndarray:
    """Column labels of scikit-learn's ``SpectralBiclustering`` (checkerboard) on the live submatrix.

    Parameters
    ----------
    method : {"log", "bistochastic", "scale"}
        Normalisation. ``"log"`` floors zeros inside the live submatrix at half
        its smallest positive entry.

    References
    ----------
    Kluger, Y., Basri, R., Chang, J. T., & Gerstein, M. (2003). Spectral
    biclustering of microarray data: coclustering genes and conditions.
    Genome Research, 13(4), 703-716.
    """
    return _on_live(partial(_sbc_live, method=method), a, k, rng)


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
    w, vec = np.linalg.eigh(cn)
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
    return _on_live(partial(_consensus_live, final=final), a, k, rng)


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
                random_state=_seed(rng) if seed is None else seed)
    model.fit(sparse.csr_matrix(sub), force_bipartite=True)
    return np.asarray(model.labels_col_)


def _community_live(sub: np.ndarray, k: int, rng: np.random.Generator, algorithm: str) -> np.ndarray:
    return _community_fit(sub, rng, algorithm, 1.0)


def _community_k_live(sub: np.ndarray, k: int, rng: np.random.Generator, algorithm: str) -> np.ndarray:
    seed = _seed(rng)  # one node order for every resolution tried
    lo, hi, res = None, None, 1.0
    best, best_gap = None, None
    for _ in range(RESOLUTION_STEPS):
        lab = _community_fit(sub, rng, algorithm, res, seed)
        n = len(np.unique(lab))
        gap = abs(n - k)
        if best is None or gap < best_gap:
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
    return _on_live(partial(_community_live, algorithm=algorithm), a, k, rng)


def community_k(a: np.ndarray, k: int, rng: np.random.Generator, algorithm: str = "louvain") -> np.ndarray:
    """Like :func:`community`, with the resolution searched for ``k`` column groups.

    Geometric bisection of the resolution starting at 1 (factor 4 until the
    target is bracketed), at most :data:`RESOLUTION_STEPS` fits with one node
    order; returns the partition whose number of column groups is closest to
    ``k`` (exactly ``k`` when one was found).
    """
    return _on_live(partial(_community_k_live, algorithm=algorithm), a, k, rng)


# ---------------------------------------------------------------- registry

METHODS: dict[str, Method] = {
    "current": current,
    "sklearn_scc": sklearn_scc,
    "sklearn_sbc_log": partial(sklearn_sbc, method="log"),
    "sklearn_sbc_bistochastic": partial(sklearn_sbc, method="bistochastic"),
}
for _v in ("km1", "k", "log2k"):
    for _side, _joint in (("joint", True), ("cols", False)):
        for _r in (4, 10, 30):
            METHODS[f"dhillon_{_v}_{_side}_r{_r}"] = partial(dhillon, vectors=_v, joint=_joint, n_init=_r)
for _v in ("km1", "k"):
    METHODS[f"dhillon_{_v}_cols_sv_r10"] = partial(dhillon, vectors=_v, joint=False, n_init=10, weighted=True)
for _w in ("sqrt", "sv", "one", "shrink"):
    METHODS[f"adaptive_{_w}_r10"] = partial(adaptive, weights=_w, unit=False)
    METHODS[f"adaptive_{_w}_unit_r10"] = partial(adaptive, weights=_w, unit=True)
METHODS["adaptive_sqrt_unit_r30"] = partial(adaptive, weights="sqrt", unit=True, n_init=30)
METHODS["dhillon_km1_cols_sqrt_unit_r10"] = partial(adaptive, weights="sqrt", unit=True, count="km1")
for _c in SELECT_CRITERIA:
    METHODS[f"select_{_c}"] = partial(select, criterion=_c)
METHODS["select_sklearn_ncut"] = select_sklearn
METHODS["select_sklearn_ncut_floor"] = partial(select_sklearn, noise_floor=True)
METHODS["consensus_spectral"] = partial(consensus, final="spectral")
METHODS["consensus_average"] = partial(consensus, final="average")
METHODS["louvain"] = partial(community, algorithm="louvain")
METHODS["louvain_k"] = partial(community_k, algorithm="louvain")
METHODS["leiden"] = partial(community, algorithm="leiden")

if DEFAULT_METHOD not in METHODS:  # pragma: no cover - a renamed method must rename the default too
    raise ImportError(f"the default method {DEFAULT_METHOD!r} (modularity.core.defaults) is not registered")


def cocluster_columns(a: np.ndarray, k: int, method: str = DEFAULT_METHOD,
                      rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Group the columns (producer units) of a non-negative matrix with a named method.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_cols)
    k : int
        Number of groups (community methods without ``_k`` choose their own).
    method : str
        A key of :data:`METHODS`.
    rng : Generator, int or None
        Randomness for k-means, randomized SVD or node order.

    Returns
    -------
    ndarray of int, shape (n_cols,)
        Labels ``0..k-1`` numbered by first appearance; ``-1`` for all-zero columns.

    Raises
    ------
    ModularityError
        For an unknown method, a matrix that is not 2-d, or negative or non-finite entries.

    Examples
    --------
    >>> a = np.kron(np.eye(2), np.ones((3, 2)))
    >>> cocluster_columns(a, 2, "sklearn_scc", 0).tolist()
    [0, 0, 1, 1]
    """
    if method not in METHODS:
        raise ModularityError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return METHODS[method](a, k, rng)
