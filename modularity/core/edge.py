"""The noise edge of a degree-normalised profile: how far its singular values must rise to carry structure.

For a residual of ``m x n`` independent entries of equal variance ``sigma^2``
the largest singular value concentrates at ``sigma (sqrt(m) + sqrt(n))`` (the
Marchenko-Pastur / Bai-Yin edge [1]_, with Tracy-Widom fluctuations [2]_);
directions below it are noise, and a planted block is invisible below it [3]_. The default
co-clustering sets its number of vectors by it; the refinement calls a cluster
heterogeneous when its own second singular value rises above it by more than
noise of its size does in 99 % of draws (:func:`edge_margin`).

References
----------
.. [1] Bai, Z. D., & Yin, Y. Q. (1993). Limit of the smallest eigenvalue of a large
   dimensional sample covariance matrix. *Annals of Probability*, 21(3), 1275-1294.
.. [2] Johnstone, I. M. (2001). On the distribution of the largest eigenvalue in
   principal components analysis. *Annals of Statistics*, 29(2), 295-327.
.. [3] Benaych-Georges, F., & Nadakuditi, R. R. (2012). The singular values and
   vectors of low rank perturbations of large rectangular random matrices.
   *J. Multivariate Anal.*, 111, 120-135.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["edge_count", "edge_margin", "noise_edge", "TW1_99"]

TW1_99 = 2.02
"""The 99th percentile of the Tracy-Widom law of order 1 (Johnstone 2001, Table 1)."""


def noise_edge(an: np.ndarray, dr: np.ndarray, dc: np.ndarray) -> float:
    """Estimated bulk edge of the non-trivial singular values of ``an = D_r^-1/2 A D_c^-1/2``.

    The trivial rank-one part ``sqrt(d_r) sqrt(d_c)^T / sum(A)`` (singular value
    1) is removed; for a residual ``R`` of ``m x n`` independent entries of equal
    variance ``sigma^2`` the largest singular value concentrates at
    ``sigma (sqrt(m) + sqrt(n))`` (the Marchenko-Pastur / Bai-Yin edge), with
    ``sigma^2`` estimated by the mean squared residual entry. Planted structure
    lifts ``sigma`` only slightly, so the estimate errs high by a little. One
    pass over the matrix and no residual matrix: with the rank-one part
    ``r c^T``, ``|R|^2 = |an|^2 - 2 r^T an c + |r|^2 |c|^2``.

    References
    ----------
    Bai, Z. D., & Yin, Y. Q. (1993). Limit of the smallest eigenvalue of a large
    dimensional sample covariance matrix. Annals of Probability, 21(3), 1275-1294.
    """
    m, n = an.shape
    r, c = np.sqrt(dr), np.sqrt(dc) / float(dr.sum())
    energy = float(np.vdot(an, an)) - 2.0 * float(r @ (an @ c)) + float(r @ r) * float(c @ c)
    return float(np.sqrt(max(energy, 0.0) / (m * n)) * (math.sqrt(m) + math.sqrt(n)))


def edge_count(s: np.ndarray, k: int, tau: float) -> int:
    """Non-trivial vectors to use: those above the edge ``tau``, at least ``ceil(log2 k)``, at most ``k - 1``.

    ``s`` are the leading singular values, ``s[0]`` the trivial one.

    Examples
    --------
    >>> edge_count(np.array([1.0, 0.3, 0.2, 0.15]), 4, tau=0.1)
    3
    """
    above = int(np.count_nonzero(s[1:k] > tau))
    return max(math.ceil(math.log2(k)), min(k - 1, above))


def edge_margin(m: int, n: int, z: float = TW1_99) -> float:
    """Factor by which the largest singular value of ``m x n`` noise exceeds :func:`noise_edge` with probability
    about 1 % (for ``z`` = the Tracy-Widom 99th percentile).

    With Johnstone's centring ``mu = (sqrt(M - 1) + sqrt(N))^2`` and scale
    ``sigma = (sqrt(M - 1) + sqrt(N)) (1 / sqrt(M - 1) + 1 / sqrt(N))^(1/3)``
    (``M = max(m, n)``, ``N = min(m, n)``), the top squared singular value of
    unit-variance noise is ``mu + sigma TW_1``; the factor is
    ``sqrt(mu + z sigma) / (sqrt(m) + sqrt(n))``. It matters for small
    matrices.

    References
    ----------
    Johnstone, I. M. (2001). On the distribution of the largest eigenvalue in
    principal components analysis. Annals of Statistics, 29(2), 295-327.

    Examples
    --------
    >>> round(edge_margin(60, 24), 3), round(edge_margin(352, 64), 3)
    (1.049, 1.02)
    """
    big, small = max(m, n), min(m, n)
    if small < 1 or big < 2:
        return 1.0
    a = math.sqrt(big - 1) + math.sqrt(small)
    scale = a * (1 / math.sqrt(big - 1) + 1 / math.sqrt(small)) ** (1 / 3)
    return math.sqrt(a * a + z * scale) / (math.sqrt(m) + math.sqrt(n))
