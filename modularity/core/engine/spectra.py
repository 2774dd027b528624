"""Batched spectral steps in torch: live parts, degree normalisation, leading singular triplets, the noise edge.

Each function takes a batch ``(B, m, n)`` of profiles (float64) and is the
batched twin of a numpy function the analysis uses on one matrix:
:func:`live` of :func:`~modularity.core.spectral.live_submatrix`,
:func:`degree_normalise` of :func:`~modularity.core.spectral.degree_normalised`,
:func:`top_singular` of :func:`~modularity.core.spectral.top_singular` and
:func:`noise_edge` of :func:`~modularity.core.methods.noise_edge`.

Leading singular triplets come, as in numpy, from the top eigenpairs of the
Gram matrix on the smaller side (one batched product and one batched
``torch.linalg.eigh``). Where numpy refines a float32 solve in float64
(``_top_right_float32``, from 320 columns), so does :func:`top_singular`
(``precision="mixed"``): the float32 eigenvectors of ``K + 8`` leading pairs
span the subspace, and a float64 Rayleigh-Ritz step on it restores double
precision. On the CPU, :func:`top_singular` can also hand each draw to the
numpy/SciPy routine itself (``solver="scipy"``); which is faster for which
size is measured (BENCHMARKS.md) and chosen in :mod:`modularity.core.engine.null`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..spectral import top_singular as _np_top_singular

__all__ = ["live", "degree_normalise", "noise_edge", "top_singular", "RITZ_EXTRA", "MIXED_MIN"]

KRYLOV_TOL = 2e-5
KRYLOV_MAX_DIM = 1024
"""Largest Krylov space built; beyond it the deflated Gram matrix is decomposed densely."""
KRYLOV_MIN = {"cpu": 2049, "cuda": 1024}
"""From this many columns on a Gram matrix's side, :func:`top_singular` uses :func:`krylov_top` instead of
``eigh`` (per device type: on the CPU a dense float64 eigh was faster up to 2048 columns)."""
KRYLOV_BLOCK = 16
"""Residual of every wanted Ritz pair, relative to the largest, at which :func:`krylov_top` stops."""
RITZ_EXTRA = 8
"""Extra eigenvectors in the float32 span that Rayleigh-Ritz refines (numpy's ``_RITZ_EXTRA``)."""
MIXED_MIN = 320
"""From this many Gram columns the float32 solve refined in float64 is used (numpy's ``_FLOAT32_MIN``)."""


def live(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks ``(B, m)`` and ``(B, n)`` of the rows and columns with a non-zero entry."""
    nz = p != 0
    return nz.any(dim=-1), nz.any(dim=-2)


def degree_normalise(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``D_r^-1/2 A D_c^-1/2`` of each matrix (no zero row or column), with the row and column degrees."""
    dr, dc = p.sum(dim=-1), p.sum(dim=-2)
    an = p / dr.sqrt()[..., :, None]
    an /= dc.sqrt()[..., None, :]
    return an, dr, dc


def noise_edge(an: torch.Tensor, dr: torch.Tensor, dc: torch.Tensor) -> torch.Tensor:
    """Estimated bulk edge of the non-trivial singular values of each ``an``
    (see :func:`~modularity.core.edge.noise_edge`)."""
    m, n = an.shape[-2:]
    r = dr.sqrt()
    c = dc.sqrt() / dr.sum(dim=-1, keepdim=True)
    cross = (r[..., None, :] @ (an @ c[..., :, None]))[..., 0, 0]
    energy = (an * an).sum(dim=(-2, -1)) - 2.0 * cross + (r * r).sum(-1) * (c * c).sum(-1)
    return (energy.clamp_min(0.0) / (m * n)).sqrt() * (math.sqrt(m) + math.sqrt(n))


def _gram_top(side: torch.Tensor, k: int, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` eigenpairs (descending) of ``side^T side`` for a batch ``(B, big, small)``."""
    n = side.shape[-1]
    if precision == "mixed" and n >= MIXED_MIN:
        kk = min(n, k + RITZ_EXTRA)
        s32 = side.to(torch.float32)
        _, vec32 = torch.linalg.eigh(s32.transpose(-1, -2) @ s32)
        q, _ = torch.linalg.qr(vec32[..., n - kk:].to(torch.float64))
        b = side @ q
        w, y = torch.linalg.eigh(b.transpose(-1, -2) @ b)
        w, y = w.flip(-1)[..., :k], y.flip(-1)[..., :k]
        return w.clamp_min(0.0), q @ y
    w, vec = torch.linalg.eigh(side.transpose(-1, -2) @ side)
    return w.flip(-1)[..., :k].clamp_min(0.0), vec.flip(-1)[..., :k]


def _orth(x: torch.Tensor, basis: torch.Tensor | None) -> torch.Tensor:
    """Orthonormal columns spanning ``x`` with ``basis``'s span projected out (twice: classical Gram-Schmidt is not
    enough)."""
    if basis is not None:
        for _ in range(2):
            x = x - basis @ (basis.transpose(-1, -2) @ x)
    return torch.linalg.qr(x)[0]


def krylov_top(side: torch.Tensor, trivial: torch.Tensor, k: int, start: torch.Tensor, tol: float = KRYLOV_TOL,
               extra: int = RITZ_EXTRA) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` eigenpairs of ``side^T side`` with its known top eigenvector ``trivial`` (eigenvalue 1) deflated.

    Block Lanczos with full reorthogonalisation (block size ``start.shape[-1]``)
    in float32 on the operator ``x -> side^T (side x) - t (t^T x)``, then one
    Rayleigh-Ritz step in float64 on its leading ``k + extra`` Ritz vectors, as
    numpy's Lanczos route does (``spectral._top_right_lanczos``). Every step is
    a matrix product (memory-bound matrix-vector products are what make ARPACK
    slow on 4096-wide profiles), and the deflation removes the trivial direction
    (singular value 1, far above the rest) whose size would otherwise set the
    float32 rounding errors. The float32 iteration stops when every wanted Ritz
    pair's residual is below ``tol`` times the largest deflated eigenvalue, or
    stops improving (float32's floor is about ``1e-5`` of it); the float64
    step then gives values within about ``1e-10`` (relative) of a float64
    solve on 4096-wide profiles.
    Returns the ``k`` leading pairs of the deflated operator, descending.

    References
    ----------
    Golub, G. H., & Underwood, R. (1977). The block Lanczos method for computing
    eigenvalues. *Mathematical Software III*, 361-377.
    """
    n = side.shape[-1]
    t = trivial[..., None]
    s32, t32 = side.to(torch.float32), t.to(torch.float32)

    def op(x: torch.Tensor, m: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
        return m.transpose(-1, -2) @ (m @ x) - tt @ (tt.transpose(-1, -2) @ x)

    kk = min(n - 1, k + extra)
    q = _orth(start.to(torch.float32), t32)
    basis, images = [q], [op(q, s32, t32)]
    h = q.transpose(-1, -2) @ images[0]  # the projected operator, grown a block at a time
    step, best = 0, float("inf")
    while True:
        step += 1
        v = torch.cat(basis, dim=-1)
        if v.shape[-1] + q.shape[-1] > min(n - 1, KRYLOV_MAX_DIM):  # the space is used up: decompose densely
            del s32, images, basis
            full = side.transpose(-1, -2) @ side - t @ t.transpose(-1, -2)
            w, vec = torch.linalg.eigh(full)
            return w.flip(-1)[..., :k].clamp_min(0.0), vec.flip(-1)[..., :k]
        if v.shape[-1] >= 2 * kk and step % 3 == 0:  # test convergence every third block
            w = torch.cat(images, dim=-1)
            theta, y = torch.linalg.eigh((h + h.transpose(-1, -2)) / 2)
            theta, y = theta.flip(-1), y.flip(-1)
            res = torch.linalg.vector_norm(w @ y[..., :k] - (v @ y[..., :k]) * theta[..., None, :k], dim=-2)
            worst = float((res / theta[..., :1].abs().clamp_min(1e-30)).max())
            if worst <= tol or worst > 0.9 * best:  # converged, or stuck at float32's resolution
                break
            best = worst
        q = _orth(images[-1], v)
        img = op(q, s32, t32)
        basis.append(q)
        images.append(img)
        top = v.transpose(-1, -2) @ img  # (d, p): the new block's column of the projection
        h = torch.cat([torch.cat([h, top], dim=-1),
                       torch.cat([top.transpose(-1, -2), q.transpose(-1, -2) @ img], dim=-1)], dim=-2)
    del s32, w, images
    q = _orth((v @ y[..., :kk]).to(torch.float64), t)  # float64 Rayleigh-Ritz on the leading Ritz vectors
    b = side @ q
    h = b.transpose(-1, -2) @ b - (q.transpose(-1, -2) @ t) @ (t.transpose(-1, -2) @ q)
    w, y = torch.linalg.eigh((h + h.transpose(-1, -2)) / 2)
    return w.flip(-1)[..., :k].clamp_min(0.0), q @ y.flip(-1)[..., :k]


def top_singular(an: torch.Tensor, k: int, solver: str = "torch",
                 degrees: tuple[torch.Tensor, torch.Tensor] | None = None,
                 start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``k`` largest singular triplets ``(u (B, m, k), s (B, k), v (B, n, k))`` of each matrix, descending.

    Parameters
    ----------
    an : tensor, shape (B, m, n), float64
        Degree-normalised matrices ``D_r^-1/2 A D_c^-1/2``.
    k : int
        Clipped to ``min(m, n)``.
    solver : {"torch", "scipy"}
        ``torch``: the Gram matrix's eigenpairs, by batched float64 ``eigh``
        below :data:`KRYLOV_MIN` columns on the smaller side (per device type)
        and by :func:`krylov_top` from there; ``scipy``: numpy's
        :func:`~modularity.core.spectral.top_singular`, draw by draw (CPU only).
    degrees : (dr, dc), optional
        Row and column degrees of the matrices before normalisation: they give
        the trivial singular pair (value 1, vectors ``sqrt(d) / |sqrt(d)|``),
        which :func:`krylov_top` deflates. Without them the dense route is used.
    start : tensor, shape (B, small side, block), optional
        Start block for :func:`krylov_top` (default: a fixed pseudo-random block).
    """
    m, n = an.shape[-2:]
    k = max(0, min(k, m, n))
    if solver == "scipy":
        outs = [_np_top_singular(a.numpy(), k) for a in an.cpu()]
        u, s, v = (torch.as_tensor(np.stack([o[i] for o in outs]), device=an.device) for i in range(3))
        return u, s, v
    wide = m < n
    side = an.transpose(-1, -2) if wide else an
    small = side.shape[-1]
    if degrees is not None and small >= KRYLOV_MIN.get(an.device.type, KRYLOV_MIN["cpu"]) and k >= 1:
        d = degrees[0] if wide else degrees[1]
        trivial = d.sqrt() / torch.linalg.vector_norm(d.sqrt(), dim=-1, keepdim=True)
        if start is None:
            g = torch.Generator(device="cpu").manual_seed(0)
            start = (torch.rand(small, KRYLOV_BLOCK, generator=g, dtype=torch.float64) - 0.5).to(an.device)
            start = start.expand(side.shape[0], -1, -1)
        w, vec = krylov_top(side, trivial, k - 1, start)
        w = torch.cat([torch.ones_like(w[..., :1]), w], dim=-1)
        vec = torch.cat([trivial[..., None], vec], dim=-1)
    else:
        w, vec = _gram_top(side, k, "float64")
    s = w.sqrt()
    inv = torch.where(s > s[..., :1] * 1e-12, 1.0 / s.clamp_min(1e-300), torch.zeros_like(s))
    other = (side @ vec) * inv[..., None, :]
    return (vec, s, other) if wide else (other, s, vec)
