"""The numpy twin of one engine draw: the analysis's own numpy steps, fed the keyed random numbers.

:func:`twin_statistics` is ``analysis.matrix_statistics`` for ``adaptive_sqrt_unit_r10``
with one change: k-means++ draws its uniforms from the keyed streams
(:class:`~modularity.core.keyed.KeyedUniforms`) instead of a numpy generator.
Everything else is the production code: the live submatrix, the embedding of
:func:`modularity.core.methods.edge_embedding`, numpy's k-means, the
nearest-centre rows, :func:`~modularity.core.spectral.bipartite_ncut` and the
metrics. The engine's tests compare each draw with it (same labels up to
renumbering, same n-cut to float tolerance).
"""

from __future__ import annotations

import numpy as np

from .. import methods as _methods
from ..keyed import KeyedUniforms
from ..metrics import adjusted_rand, normalized_mutual_info
from ..spectral import bipartite_ncut, degree_normalised, kmeans, live_submatrix, nearest_centre, relabel, top_singular

__all__ = ["twin_cocluster_adaptive", "twin_statistics"]

_embedding = _methods.edge_embedding  # the embedding step of adaptive_sqrt_unit_r10


def twin_cocluster_adaptive(a: np.ndarray, k: int, grid: np.ndarray, n_values: int = 0,
                           n_init: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``adaptive_sqrt_unit_r10`` (``modularity.core.methods._adaptive_cocluster``) with k-means++ seeded from
    ``grid`` ``(n_init, k)`` of uniforms."""
    a = np.asarray(a, dtype=np.float64)
    row_labels = np.full(a.shape[0], -1)
    col_labels = np.full(a.shape[1], -1)
    rows, cols, kk, sub = live_submatrix(a, k)
    if sub is None:
        return row_labels, col_labels, np.zeros(0)
    if kk == 1:
        values = top_singular(degree_normalised(sub)[0], n_values)[1] if n_values else np.zeros(0)
        row_labels[rows], col_labels[cols] = 0, 0
        return row_labels, col_labels, values
    zc, zr, values = _embedding(sub, kk, n_values)
    labels = kmeans(zc, kk, KeyedUniforms(np.asarray(grid)[:n_init, :kk]), n_init=n_init)
    col_labels[cols] = labels
    row_labels[rows] = nearest_centre(zc, zr, labels, kk)
    return (*relabel(row_labels, col_labels), values)


def _ari_nmi(truth: np.ndarray, labels: np.ndarray, live: np.ndarray) -> tuple[float, float]:
    if live.sum() < 2:
        return 0.0, 0.0
    return adjusted_rand(truth[live], labels[live]), normalized_mutual_info(truth[live], labels[live])


def twin_statistics(a: np.ndarray, k: int, branches: np.ndarray | None, grids: dict[str, np.ndarray],
                    n_top: int = 20) -> dict:
    """Every statistic of one draw, as ``analysis.matrix_statistics`` computes it (``adaptive_sqrt_unit_r10``).

    ``grids``: keyed uniforms per k-means, ``"main"`` ``(10, k)`` and, with
    branches, ``"unit"`` ``(10, k)`` and ``"norms"`` ``(4, k)``.
    """
    rows, cols, top = twin_cocluster_adaptive(a, k, grids["main"], n_top)
    out = {"rows": rows, "cols": cols, "top": top, "ncut": bipartite_ncut(a, rows, cols)}
    if branches is None:
        return out
    live = cols >= 0
    out["ari"], out["nmi"] = _ari_nmi(branches, cols, live)
    norms = np.linalg.norm(a, axis=0)
    unit = np.divide(a, norms[None, :], out=np.zeros_like(a), where=norms[None, :] > 0)
    _, cols_unit, _ = twin_cocluster_adaptive(unit, k, grids["unit"], 0)
    out["ari_unit_norm"] = _ari_nmi(branches, cols_unit, live)[0]
    labels = np.full(a.shape[1], -1)
    logn = np.log(np.linalg.norm(a[:, live], axis=0))
    kk = min(k, len(np.unique(logn)))
    if kk < 2:
        labels[live] = 0
    else:
        labels[live] = kmeans(logn[:, None], kk, KeyedUniforms(np.asarray(grids["norms"])[:, :kk]),
                              n_init=len(grids["norms"]))
    out["ari_column_norms"] = _ari_nmi(branches, labels, live)[0]
    out["cols_unit_norm"], out["cols_norms"] = cols_unit, labels
    return out
