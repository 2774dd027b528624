"""Batched k-means in torch: k-means++ seeding from keyed uniforms, then Lloyd's iterations, best restart by inertia.

The batched twin of :func:`modularity.core.spectral.kmeans`, for ``B`` point
sets (one per null draw) and ``R`` restarts each at once: the same seeding rule
(k-means++ [1]_: first centre ``floor(u * n)``, each next one by the inverse CDF of the squared
distances at the next uniform, uniform over the points when every distance is
zero), the same distances (``|x|^2 - 2 x.c + |c|^2``), the first of equal
distances and of equal inertias, empty clusters keeping their centre, and each
restart stopping when its labels no longer change (a stopped restart is a
fixed point, so iterating the batch until all stop changes nothing). The
uniforms come from :func:`modularity.core.keyed.uniforms`; handed to the numpy
function through :class:`~modularity.core.keyed.KeyedUniforms` they give the
same labels (tested), up to ties broken differently by rounding.

References
----------
.. [1] Arthur, D., & Vassilvitskii, S. (2007). k-means++: the advantages of careful
   seeding. *Proceedings of SODA 2007*, 1027-1035.
"""

from __future__ import annotations

import torch

__all__ = ["seed_centres", "lloyd", "kmeans"]


def seed_centres(x: torch.Tensor, k: int, u: torch.Tensor) -> torch.Tensor:
    """k-means++ centres ``(B, R, k, d)`` for points ``x`` ``(B, n, d)`` from uniforms ``u`` ``(B, R, k)``."""
    b, n, d = x.shape
    r = u.shape[1]
    sq = (x * x).sum(-1)  # (B, n)
    xs = x[:, None].expand(b, r, n, d)

    def pick(idx: torch.Tensor) -> torch.Tensor:  # (B, R) point indices -> (B, R, d)
        return torch.gather(xs, 2, idx[:, :, None, None].expand(b, r, 1, d))[:, :, 0]

    def dist2(c: torch.Tensor) -> torch.Tensor:  # squared distances (B, R, n) to one centre per restart
        return (sq[:, None, :] - 2.0 * (c @ x.transpose(-1, -2)) + (c * c).sum(-1, keepdim=True)).clamp_min(0.0)

    def uniform_index(v: torch.Tensor) -> torch.Tensor:  # KeyedUniforms.integers
        return torch.clamp((v * n).floor().long(), max=n - 1)

    first = pick(uniform_index(u[:, :, 0]))
    centres = [first]
    d2 = dist2(first)
    for j in range(1, k):
        total = d2.sum(-1, keepdim=True)
        cdf = torch.cumsum(d2 / torch.where(total > 0, total, 1.0), dim=-1)
        cdf = cdf / torch.where(cdf[..., -1:] > 0, cdf[..., -1:], 1.0)
        by_weight = torch.searchsorted(cdf, u[:, :, j, None].contiguous(), right=True)[..., 0]
        nxt = torch.where(total[..., 0] > 0, by_weight.clamp(max=n - 1), uniform_index(u[:, :, j]))
        c = pick(nxt)
        centres.append(c)
        d2 = torch.minimum(d2, dist2(c))
    return torch.stack(centres, dim=2)


def lloyd(x: torch.Tensor, centres: torch.Tensor, max_iter: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's iterations from ``centres`` ``(B, R, k, d)``: labels ``(B, R, n)`` and inertia ``(B, R)``."""
    b, n, _ = x.shape
    r, k = centres.shape[1:3]
    sq = (x * x).sum(-1)[:, None, None, :]  # (B, 1, 1, n)
    xt = x.transpose(-1, -2)[:, None]  # (B, 1, d, n)
    labels = torch.full((b, r, n), -1, dtype=torch.long, device=x.device)
    inertia = torch.full((b, r), float("inf"), dtype=x.dtype, device=x.device)
    active = torch.ones(b, r, dtype=torch.bool, device=x.device)
    c = centres.clone()
    for it in range(max_iter):
        dist = sq - 2.0 * (c @ xt) + (c * c).sum(-1)[..., None]  # (B, R, k, n)
        nearest, new = dist.min(dim=2)  # first of equal distances
        moved = (new != labels).any(-1)
        done = active & (~moved if it < max_iter - 1 else torch.ones_like(moved))
        inertia = torch.where(done, nearest.clamp_min(0.0).sum(-1), inertia)
        labels = torch.where(active[..., None], new, labels)
        active = active & ~done
        if not bool(active.any()):
            break
        onehot = torch.nn.functional.one_hot(labels, k).to(x.dtype)  # (B, R, n, k)
        counts = onehot.sum(2)  # (B, R, k)
        sums = onehot.transpose(-1, -2) @ x[:, None]  # (B, R, k, d)
        fresh = sums / counts.clamp_min(1.0)[..., None]
        keep = (counts == 0)[..., None] | ~active[..., None, None]
        c = torch.where(keep, c, fresh)
    return labels, inertia


def kmeans(x: torch.Tensor, k: int, u: torch.Tensor, max_iter: int = 100) -> torch.Tensor:
    """Labels ``(B, n)``: the best of ``R = u.shape[1]`` k-means++ restarts of each point set, by inertia.

    Parameters
    ----------
    x : tensor, shape (B, n, d), float64
    k : int
        Clusters (at most ``n``).
    u : tensor, shape (B, R, k), float64
        Keyed uniforms: restart ``r`` seeds from ``u[:, r]``.
    """
    n = x.shape[1]
    k = min(k, n)
    labels, inertia = lloyd(x, seed_centres(x, k, u[..., :k]), max_iter)
    best = inertia.argmin(dim=1)  # the first of equal inertias
    return torch.gather(labels, 1, best[:, None, None].expand(-1, 1, n))[:, 0]
