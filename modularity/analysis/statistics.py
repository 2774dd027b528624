"""The statistics of one profile matrix: its co-clustering and everything that is compared with a null.

One function, :func:`matrix_statistics`, serves the observation and every
null draw alike, so that both are measured the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.defaults import DEFAULT_METHOD
from ..core.methods import cocluster
from ..core.metrics import adjusted_rand, normalized_mutual_info
from ..core.spectral import bipartite_ncut, kmeans

__all__ = ["MatrixStatistics", "BranchScores", "matrix_statistics", "N_NULL_SPECTRUM", "CONTROLS"]

N_NULL_SPECTRUM = 20
"""Leading normalised singular values kept per null draw, for the null band of the spectrum figure."""

CONTROLS = {"unit_norm_columns": "ari_unit_norm", "column_norms_only": "ari_column_norms"}
"""The two scale controls of a recovery and the :class:`MatrixStatistics` field holding each one's ARI."""


@dataclass(frozen=True)
class BranchScores:
    """The recovery statistics of a profile fitted against true branches (:meth:`MatrixStatistics.branch_scores`).

    The fields of :class:`MatrixStatistics` that are None without branches, none of them None here.
    """

    ari: float
    nmi: float
    ari_unit_norm: float
    ari_column_norms: float
    cols_unit_norm: np.ndarray
    cols_norms: np.ndarray


@dataclass
class MatrixStatistics:
    """A profile's co-clustering and the statistics that get a null.

    ``ari``, ``nmi`` and the two controls' ARIs are None without true branches;
    ``top`` holds the leading singular values of the degree-normalised profile
    (key ``normalised``).
    """

    col_labels: np.ndarray
    row_labels: np.ndarray
    ncut: float
    ari: float | None
    nmi: float | None
    ari_unit_norm: float | None
    ari_column_norms: float | None
    top: dict[str, np.ndarray]
    cols_unit_norm: np.ndarray | None = None
    cols_norms: np.ndarray | None = None

    def branch_scores(self) -> BranchScores:
        """The recovery of the true branches and its two controls.

        Raises
        ------
        ValueError
            If these statistics were computed without true branches.
        """
        if (self.ari is None or self.nmi is None or self.ari_unit_norm is None or self.ari_column_norms is None
                or self.cols_unit_norm is None or self.cols_norms is None):
            raise ValueError("these statistics were computed without true branches: there is no recovery to read")
        return BranchScores(self.ari, self.nmi, self.ari_unit_norm, self.ari_column_norms, self.cols_unit_norm,
                            self.cols_norms)


def _ari_nmi(truth: np.ndarray, labels: np.ndarray, live: np.ndarray) -> tuple[float, float]:
    if live.sum() < 2:
        return 0.0, 0.0
    t, lab = truth[live], labels[live]
    return adjusted_rand(t, lab), normalized_mutual_info(t, lab)


def _column_norm_labels(a: np.ndarray, k: int, live: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clusters of the producer units from their overall outgoing magnitude alone."""
    labels = np.full(a.shape[1], -1)
    norms = np.log(np.linalg.norm(a[:, live], axis=0))
    k = min(k, len(np.unique(norms)))
    if k < 2:
        labels[live] = 0
        return labels
    labels[live] = kmeans(norms[:, None], k, rng)
    return labels


def matrix_statistics(a: np.ndarray, k: int, branches: np.ndarray | None, rng: np.random.Generator,
                      n_top: int = N_NULL_SPECTRUM, method: str = DEFAULT_METHOD) -> MatrixStatistics:
    """Co-cluster a profile matrix and compute every statistic that gets a null.

    Parameters
    ----------
    a : ndarray, shape (n_rows, n_units)
        A non-negative profile (rows: consumer units; columns: producer units).
    k : int
        Number of co-clusters.
    branches : ndarray or None
        True branch labels of the columns.
    rng : numpy Generator
        k-means' randomness (the only randomness here).
    n_top : int
        Leading normalised singular values kept (for the null spectrum band).
    method : str
        Co-clustering (:data:`~modularity.core.defaults.METHOD_NAMES`).

    Returns
    -------
    MatrixStatistics
        With the recovery of the true branches, and of the two scale
        controls (columns scaled to unit norm: pattern without scale; the
        column norms alone: scale without pattern), where ``branches`` is given.
    """
    found = cocluster(a, k, rng, method, n_values=n_top)
    rows, cols, s_norm = found.rows, found.cols, found.values
    live = cols >= 0
    ari = nmi = ari_unit = ari_norms = None
    cols_unit = cols_norms = None
    if branches is not None:
        ari, nmi = _ari_nmi(branches, cols, live)
        norms = np.linalg.norm(a, axis=0)
        unit = np.divide(a, norms[None, :], out=np.zeros_like(a), where=norms[None, :] > 0)
        cols_unit = cocluster(unit, k, rng, method).cols
        ari_unit, _ = _ari_nmi(branches, cols_unit, live)
        cols_norms = _column_norm_labels(a, k, live, rng)
        ari_norms, _ = _ari_nmi(branches, cols_norms, live)
    return MatrixStatistics(cols, rows, bipartite_ncut(a, rows, cols), ari, nmi, ari_unit, ari_norms,
                            {"normalised": s_norm}, cols_unit, cols_norms)
