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
:data:`DEFAULT_METHOD` is ``"dhillon_km1_cols_sv_r10"``: the ``k - 1`` leading
non-trivial singular vectors of ``D_r^-1/2 A D_c^-1/2`` (plus the leading one),
each scaled by its singular value and by ``D_c^-1/2``, k-means on the columns
alone, best of 10 k-means++ restarts. Chosen by ``scripts/method_benchmark.py``
(``reports/methods.md``; googlenet and inception_v3 blocks with planted signal,
grouped-conv networks, random-init nulls and the 11 real nsfwjs InceptionV3
blocks, 5 network seeds and 5 method seeds):

- No candidate is at least as good as scikit-learn's ``SpectralCoclustering``
  on every case within its seed spread; the rule could not be met, so the
  default is the best on average, with its losses stated.
- It is tied for the best overall average ARI (0.478, against 0.285 for
  ``sklearn_scc`` and 0.294 for the old default ``current``); planted cases
  without the grouped_mixed family 0.568 (0.510, 0.547); real blocks 0.213
  (0.193, 0.192).
- It beats ``sklearn_scc`` on 19 of 24 non-null cases and loses on 4:
  googlenet at signal 0.2 (0.144 against 0.162), Mixed_5c (0.180 against
  0.215), Mixed_6a (0.025 against 0.034) and Mixed_7b (0.201 against 0.291).
  It beats the old default on 21 of 24 and loses on Mixed_5d (0.533 against
  0.570) and Mixed_6a.
- Clustering columns alone, not rows and columns jointly, is the largest
  effect: with low-degree consumer units (a grouped reader beside a dense one)
  the joint embedding's outlying rows take the clusters and every joint method
  scores ARI 0 where every columns-only method scores 1.
- Among the methods with the best averages (``dhillon_k_cols_sv_r10`` is
  0.0004 higher) it has the fewest and smallest losses to ``sklearn_scc``, and
  it costs one truncated SVD and a 10-restart k-means (it is re-run for every
  null permutation).

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

from ..errors import ModularityError
from .spectral import cocluster_spectrum, kmeans, top_singular

__all__ = ["METHODS", "DEFAULT_METHOD", "cocluster_columns", "dhillon", "current", "sklearn_scc",
           "sklearn_sbc", "consensus", "community", "community_k", "RESOLUTION_STEPS"]

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
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ModularityError(f"expected a 2-d matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or (a < 0).any():
        raise ModularityError("the matrix must be finite and non-negative")
    labels = np.full(a.shape[1], -1)
    nz = a != 0
    rows, cols = nz.any(axis=1), nz.any(axis=0)
    n_live = int(min(rows.sum(), cols.sum()))
    if n_live == 0:
        return labels
    k = int(max(1, min(k, n_live)))
    if k == 1:
        labels[cols] = 0
        return labels
    labels[cols] = fn(np.ascontiguousarray(a[np.ix_(rows, cols)]), k, rng)
    return _canonical(labels)


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
    dr, dc = sub.sum(axis=1), sub.sum(axis=0)
    an = sub / np.sqrt(dr)[:, None] / np.sqrt(dc)[None, :]
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
METHODS["consensus_spectral"] = partial(consensus, final="spectral")
METHODS["consensus_average"] = partial(consensus, final="average")
METHODS["louvain"] = partial(community, algorithm="louvain")
METHODS["louvain_k"] = partial(community_k, algorithm="louvain")
METHODS["leiden"] = partial(community, algorithm="leiden")

DEFAULT_METHOD = "dhillon_km1_cols_sv_r10"
"""The default: see the module docstring and ``reports/methods.md`` for the evidence."""


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
