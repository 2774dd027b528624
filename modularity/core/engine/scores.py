"""Batched scores of co-clusterings in torch: the bipartite normalised cut, ARI and NMI against known labels.

Twins of :func:`modularity.core.spectral.bipartite_ncut` and of
:func:`modularity.core.metrics.adjusted_rand` /
:func:`~modularity.core.metrics.normalized_mutual_info` (as
``analysis._ari_nmi`` applies them: on the labelled columns only, 0 for both
when fewer than two are labelled), computed for a batch of draws with one-hot
matrix products.
"""

from __future__ import annotations

import torch

__all__ = ["bipartite_ncut", "ari_nmi"]


def _onehot(labels: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot ``(..., n, k + 1)``: label ``-1`` goes to the spare slot ``k``."""
    return torch.nn.functional.one_hot(torch.where(labels >= 0, labels, k), k + 1).to(dtype)


def bipartite_ncut(p: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``sum_k cut(k) / vol(k)`` of each co-clustering ``(rows (B, m), cols (B, n))`` of ``p`` ``(B, m, n)``.

    Unlabelled (``-1``) nodes are ignored; a cluster's cut is summed from the
    weight its nodes send to other clusters, so a closed cluster has a cut of
    exactly 0, as in the numpy version.
    """
    k = max(int(rows.max()), int(cols.max()), 0) + 1
    r1, c1 = _onehot(rows, k, p.dtype), _onehot(cols, k, p.dtype)  # (B, m, k+1), (B, n, k+1)
    to_cols = p @ c1  # (B, m, k+1): each row's weight into each column cluster
    to_rows = r1.transpose(-1, -2) @ p  # (B, k+1, n)
    own_r = torch.where(rows >= 0, rows, k)
    own_c = torch.where(cols >= 0, cols, k)
    to_cols.scatter_(-1, own_r[..., None], 0.0)  # what stays in a node's own cluster does not leave it
    to_rows.scatter_(-2, own_c[:, None, :], 0.0)
    cut = (r1 * to_cols.sum(-1, keepdim=True)).sum(-2) + (c1 * to_rows.sum(-2)[..., None]).sum(-2)
    vol = (r1 * p.sum(-1)[..., None]).sum(-2) + (c1 * p.sum(-2)[..., None]).sum(-2)
    cut, vol = cut[..., :k], vol[..., :k]
    ok = vol > 0
    return torch.where(ok, cut / torch.where(ok, vol, 1.0), 0.0).sum(-1)


def _comb2(x: torch.Tensor) -> torch.Tensor:
    return x * (x - 1) / 2


def _entropy(counts: torch.Tensor) -> torch.Tensor:
    total = counts.sum(-1, keepdim=True)
    p = counts / total.clamp_min(1.0)
    return -torch.where(p > 0, p * p.clamp_min(1e-300).log(), 0.0).sum(-1)


def ari_nmi(truth: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ARI and NMI ``(B,)`` of ``labels`` ``(B, n)`` against ``truth`` ``(n,)`` over the labelled (``>= 0``) units."""
    live = labels >= 0
    n_true = int(truth.max()) + 1
    k = max(int(labels.max()), 0) + 1
    t1 = torch.nn.functional.one_hot(truth, n_true).to(torch.float64)  # (n, T)
    l1 = _onehot(labels, k, torch.float64)[..., :k] * live[..., None]  # (B, n, k)
    table = t1.T[None] @ l1  # (B, T, k)
    n = table.sum((-2, -1))
    a, b = table.sum(-1), table.sum(-2)
    sum_ij = _comb2(table).sum((-2, -1))
    sum_a, sum_b = _comb2(a).sum(-1), _comb2(b).sum(-1)
    expected = sum_a * sum_b / (n * (n - 1) / 2).clamp_min(1e-300)
    maximum = (sum_a + sum_b) / 2
    trivial = maximum == expected
    ari = torch.where(trivial, 1.0, (sum_ij - expected) / torch.where(trivial, 1.0, maximum - expected))
    ha, hb = _entropy(a), _entropy(b)
    pij = table / n.clamp_min(1.0)[:, None, None]
    outer = a[..., :, None] * b[..., None, :] / (n * n).clamp_min(1.0)[:, None, None]
    nz = table > 0
    mi = torch.where(nz, pij * (pij.clamp_min(1e-300) / outer.clamp_min(1e-300)).log(), 0.0).sum((-2, -1))
    degenerate = (ha == 0) | (hb == 0)
    nmi = torch.where(degenerate, (ha == hb).to(torch.float64),
                      (mi / torch.where(degenerate, 1.0, (ha + hb) / 2)).clamp(0.0, 1.0))
    few = n < 2
    return torch.where(few, 0.0, ari), torch.where(few, 0.0, nmi)
