"""Agreement between two labellings: adjusted Rand index and normalised mutual information.

Fast numpy versions of scikit-learn's ``adjusted_rand_score`` and
``normalized_mutual_info_score`` (arithmetic mean normalisation), which are
called hundreds of times per layer for the null model.
"""

from __future__ import annotations

import numpy as np

__all__ = ["contingency", "adjusted_rand", "normalized_mutual_info"]


def contingency(a: np.ndarray, b: np.ndarray, return_labels: bool = False):
    """Counts of each (label in ``a``, label in ``b``) pair; with ``return_labels``, also the sorted labels.

    Examples
    --------
    >>> table, la, lb = contingency(np.array([0, 0, 1]), np.array([5, 5, 5]), return_labels=True)
    >>> table.tolist(), la.tolist(), lb.tolist()
    ([[2], [1]], [0, 1], [5])
    """
    la, ai = np.unique(np.asarray(a), return_inverse=True)
    lb, bi = np.unique(np.asarray(b), return_inverse=True)
    n_a, n_b = len(la), len(lb)
    table = np.bincount(ai.ravel() * n_b + bi.ravel(), minlength=n_a * n_b).reshape(n_a, n_b).astype(np.int64)
    return (table, la, lb) if return_labels else table


def _comb2(x: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float((x * (x - 1) / 2).sum())


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index (1 for identical partitions, about 0 for independent ones).

    Examples
    --------
    >>> adjusted_rand([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    table = contingency(a, b)
    n = table.sum()
    if n < 2:
        return 1.0
    sum_ij = _comb2(table)
    sum_a, sum_b = _comb2(table.sum(axis=1)), _comb2(table.sum(axis=0))
    expected = sum_a * sum_b / (n * (n - 1) / 2)
    maximum = (sum_a + sum_b) / 2
    if maximum == expected:  # both partitions trivial (one cluster or all singletons)
        return 1.0
    return float((sum_ij - expected) / (maximum - expected))


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def normalized_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """Mutual information divided by the mean of the two entropies (0 to 1).

    Examples
    --------
    >>> normalized_mutual_info([0, 0, 1, 1], [0, 0, 1, 1])
    1.0
    """
    table = contingency(a, b).astype(np.float64)
    n = table.sum()
    if n == 0:
        return 1.0
    ha, hb = _entropy(table.sum(axis=1)), _entropy(table.sum(axis=0))
    if ha == 0 or hb == 0:
        return 1.0 if ha == hb else 0.0
    nz = table > 0
    pij = table[nz] / n
    outer = np.outer(table.sum(axis=1), table.sum(axis=0))[nz] / n**2
    mi = float((pij * np.log(pij / outer)).sum())
    return float(min(1.0, max(0.0, mi / ((ha + hb) / 2))))
