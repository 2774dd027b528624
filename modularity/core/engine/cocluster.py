"""The co-clustering ``adaptive_sqrt_unit_r10`` of a batch of profiles, assembled from batched steps.

The steps are those of ``modularity.core.methods._adaptive_cocluster`` (the
embedding and k-means that the default ``spectral_refined`` starts from), each
a small function here so that another co-clustering can be assembled from
them (a different vector count, weighting or number of restarts, several
embeddings scored by :func:`~modularity.core.engine.scores.bipartite_ncut`):

1. the live submatrix (rows and columns with a non-zero entry; ``k`` clipped
   to their number) - draws whose live part is the whole matrix go as one
   batch, the others one by one;
2. degree normalisation and the leading ``max(k, n_values)`` singular triplets
   (:mod:`~modularity.core.engine.spectra`);
3. the noise edge and the vector count (:func:`edge_count`);
4. the embedding (:func:`edge_embedding`: the leading vector plus the counted
   non-trivial ones, coordinates scaled by ``sqrt(s)`` and ``D_c^-1/2``, rows
   scaled to unit length; coordinates a draw does not use are zero, which
   leaves every distance unchanged);
5. k-means on the columns, best of 10 k-means++ restarts from keyed uniforms
   (:mod:`~modularity.core.engine.kmeans`);
6. each row to the nearest column centroid (:func:`nearest_centre`).

Labels come back un-renumbered (``-1`` for dead rows and columns);
:func:`modularity.core.spectral.relabel` makes them canonical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..keyed import KeyedUniforms
from ..spectral import kmeans as np_kmeans
from .kmeans import kmeans
from .spectra import degree_normalise, live, noise_edge, top_singular

__all__ = ["CoClusters", "edge_count", "edge_embedding", "nearest_centre", "cocluster_adaptive", "N_INIT"]

N_INIT = 10
"""k-means++ restarts of ``adaptive_sqrt_unit_r10``."""


@dataclass
class CoClusters:
    """A batch of co-clusterings: ``rows (B, m)``, ``cols (B, n)`` (``-1`` dead) and ``values (B, n_values)``
    (NaN where fewer)."""

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor


def edge_count(s: torch.Tensor, k: int, tau: torch.Tensor) -> torch.Tensor:
    """Non-trivial vectors per draw: those above the edge ``tau``, at least ``ceil(log2 k)``, at most ``k - 1``."""
    above = (s[..., 1:k] > tau[..., None]).sum(-1)
    return torch.clamp(above, max=k - 1).clamp_min(math.ceil(math.log2(k)))


def edge_embedding(u: torch.Tensor, s: torch.Tensor, v: torch.Tensor, dr: torch.Tensor, dc: torch.Tensor,
                   count: torch.Tensor, unit: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Column and row embeddings ``(B, n, D)``, ``(B, m, D)`` with ``sqrt(s)`` weights (``D = max(count) + 1``)."""
    count = count.clamp(min=1, max=s.shape[-1] - 1)
    d = int(count.max()) + 1
    j = torch.arange(d, device=s.device)
    keep = (j[None, :] <= count[:, None]) & (s[:, :d] > 1e-6 * s[:, :1])  # vectors of a zero value are arbitrary
    w = torch.where(keep, s[:, :d].sqrt(), 0.0)
    zc = v[..., :d] * w[:, None, :] / dc.sqrt()[..., None]
    zr = u[..., :d] * w[:, None, :] / dr.sqrt()[..., None]
    if unit:
        zc = zc / torch.linalg.vector_norm(zc, dim=-1, keepdim=True).clamp_min(1e-300)
        zr = zr / torch.linalg.vector_norm(zr, dim=-1, keepdim=True).clamp_min(1e-300)
    return zc, zr


def nearest_centre(zc: torch.Tensor, zr: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Each row of ``zr`` to the cluster whose centroid of ``zc`` (labelled ``labels``) is nearest; empty clusters
    take none."""
    onehot = torch.nn.functional.one_hot(labels, k).to(zc.dtype)  # (B, n, k)
    counts = onehot.sum(1)  # (B, k)
    centres = (onehot.transpose(-1, -2) @ zc) / counts.clamp_min(1.0)[..., None]
    centres = torch.where((counts > 0)[..., None], centres, float("inf"))
    dist = ((zr[:, :, None, :] - centres[:, None, :, :]) ** 2).sum(-1)  # (B, m, k)
    return dist.argmin(-1)


def _kmeans(zc: torch.Tensor, k: int, u: torch.Tensor, backend: str) -> torch.Tensor:
    """k-means labels of each draw's columns: batched in torch, or numpy's own k-means draw by draw (the CPU)."""
    if backend == "torch":
        return kmeans(zc, k, u[..., :k])
    labels = [np_kmeans(z.numpy(), k, KeyedUniforms(g[:, :k].numpy()), n_init=g.shape[0])
              for z, g in zip(zc.cpu(), u.cpu())]
    return torch.as_tensor(np.stack(labels), dtype=torch.long, device=zc.device)


def _cocluster_live(sub: torch.Tensor, k: int, u: torch.Tensor, n_values: int,
                    solver: str, kmeans_backend: str = "torch") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows, columns and leading values of matrices with no zero row or column (``2 <= k <= min(m, n)``)."""
    an, dr, dc = degree_normalise(sub)
    if k == 1:
        zeros = torch.zeros(sub.shape[:2], dtype=torch.long, device=sub.device)
        values = top_singular(an, n_values, solver, (dr, dc))[1] if n_values else \
            sub.new_zeros(sub.shape[0], 0)
        return zeros, torch.zeros(sub.shape[0], sub.shape[2], dtype=torch.long, device=sub.device), values
    uu, s, v = top_singular(an, max(k, n_values), solver, (dr, dc))
    tau = noise_edge(an, dr, dc)
    zc, zr = edge_embedding(uu, s, v, dr, dc, edge_count(s, k, tau))
    cols = _kmeans(zc, k, u, kmeans_backend)
    rows = nearest_centre(zc, zr, cols, k)
    return rows, cols, s[..., :n_values]


def cocluster_adaptive(p: torch.Tensor, k: int, u: torch.Tensor, n_values: int = 0,
                      solver: str = "torch", kmeans_backend: str = "torch") -> CoClusters:
    """The co-clustering ``adaptive_sqrt_unit_r10`` of each profile in ``p`` ``(B, m, n)``.

    Parameters
    ----------
    p : tensor, shape (B, m, n), float64
        Non-negative profiles.
    k : int
        Co-clusters; clipped per draw to its live rows and columns.
    u : tensor, shape (B, N_INIT, k), float64
        Keyed uniforms for the k-means++ restarts (restart ``r`` uses ``u[:, r]``).
    n_values : int
        Leading singular values of ``D_r^-1/2 A D_c^-1/2`` to return.
    solver : str
        See :func:`~modularity.core.engine.spectra.top_singular`.
    kmeans_backend : {"torch", "numpy"}
        Batched torch k-means, or :func:`modularity.core.spectral.kmeans` draw by
        draw on the same uniforms (faster on the CPU: it drops converged
        restarts and has no per-operation overhead).
    """
    b, m, n = p.shape
    rows = torch.full((b, m), -1, dtype=torch.long, device=p.device)
    cols = torch.full((b, n), -1, dtype=torch.long, device=p.device)
    values = torch.full((b, n_values), float("nan"), dtype=p.dtype, device=p.device)
    live_r, live_c = live(p)
    whole = live_r.all(-1) & live_c.all(-1)
    batch = whole.nonzero().squeeze(1)
    if len(batch):
        kk = max(1, min(k, m, n))
        whole_batch = len(batch) == b
        r, c, s = _cocluster_live(p if whole_batch else p[batch], kk, u if whole_batch else u[batch], n_values,
                                  solver, kmeans_backend)
        rows[batch], cols[batch] = r, c
        values[batch, :s.shape[-1]] = s
    for i in (~whole).nonzero().squeeze(1).tolist():  # dead rows or columns: this draw's own live submatrix
        lr, lc = live_r[i], live_c[i]
        n_live = int(min(lr.sum(), lc.sum()))
        if n_live == 0:
            continue
        sub = p[i][lr][:, lc][None]
        r, c, s = _cocluster_live(sub, max(1, min(k, n_live)), u[i:i + 1], n_values, solver, kmeans_backend)
        rows[i, lr], cols[i, lc] = r[0], c[0]
        values[i, :s.shape[-1]] = s[0]
    return CoClusters(rows, cols, values)
