"""Null models and the statistics that compare an observation with them.

A null keeps the architecture (shapes, groups, which layer reads which) and
destroys what training put into the weights:

``shuffle``
    permute all the entries of one layer's weight tensor (Filan et al.);
``shuffle-nonzero``
    permute only the non-zero entries, keeping pruned or dead weights in place;
``resample``
    draw every entry independently from the layer's own empirical distribution
    (with replacement), which keeps the marginal but not the exact multiset;
``reinit``
    re-initialise the layer with the architecture's own ``reset_parameters``
    (what the weights looked like before training);
``degree``
    keep every unit's total incoming and outgoing magnitude: permute the
    layer's (batch-norm folded) connection magnitudes among the connections
    the architecture allows, then rescale rows and columns alternately
    (iterative proportional fitting) until every row and column sum is the
    observed one again. What is left random is only *which* units connect
    strongly, not *how much* each unit sends or receives, so a structure that
    beats this null is not explained by unequal unit scales alone (batch-norm
    folding makes row scales very unequal in trained networks).

Each draw of a null gets its own generator, ``layer_rng(seed, layer, draw + 1)``
(stream 0 is the observation's), so a draw's weights depend only on the seed,
the layer and the draw's index: never on how many draws ran before it, in
which process, or whether a sequential test stopped early.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import cast

import numpy as np
import torch
from torch import nn

from .graph import ChannelGraph
from .magnitude import layer_magnitude, place_magnitude, reduce_kernel
from .null_summary import NullSummary

__all__ = ["MAX_SEED", "study_rng", "as_generator", "NULL_MODELS", "fit_margins", "degree_preserving_magnitude",
           "null_magnitude", "MagnitudeShuffle", "draw_rng", "shuffle_weight", "resample_weight", "reinit_weight",
           "null_weight", "empirical_p",
           "NullSummary", "summarise_null", "layer_rng", "benjamini_hochberg", "binomial_ci"]

NULL_MODELS = ("shuffle", "shuffle-nonzero", "resample", "reinit", "degree")
"""The null models of this module (the choices of ``--null``; see the module docstring)."""


MAX_SEED = 2**64 - 1


def layer_rng(seed: int, name: str, stream: int = 0) -> np.random.Generator:
    """A generator that depends only on ``seed``, a layer name and a stream number.

    Results for one layer are then the same whichever other layers are analysed.
    The seed and the stream enter as two 32-bit words each, so different
    ``(seed, name, stream)`` never share a stream.

    Raises
    ------
    ValueError
        If ``seed`` is outside ``0..2**64 - 1`` or ``stream`` outside ``0..2**64 - 1``.
    """
    seed, stream = int(seed), int(stream)
    if not 0 <= seed <= MAX_SEED or not 0 <= stream <= MAX_SEED:
        raise ValueError(f"seed and stream must be integers from 0 to 2**64 - 1, got {seed} and {stream}")
    key = np.frombuffer(name.encode("utf-8"), dtype=np.uint8).astype(np.uint32).tolist()
    words = [seed & 0xFFFFFFFF, seed >> 32, stream & 0xFFFFFFFF, stream >> 32]
    return np.random.default_rng(np.random.SeedSequence([*words, len(key), *key]))


def study_rng(seed: int, study: str) -> np.random.Generator:
    """The generator of a named study (``clusterability``, ``agreement``, ``units``, ``calibration``, ...).

    A named stream of :func:`layer_rng` (``"study:<name>"``), so no two studies
    share random numbers and no salt is picked by hand.
    """
    return layer_rng(seed, f"study:{study}")


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from a seed, or the Generator itself (for functions that accept either)."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def draw_rng(seed: int, name: str, draw: int) -> np.random.Generator:
    """The generator of null draw ``draw`` (0-based) of layer ``name``: stream ``draw + 1``."""
    return layer_rng(seed, name, draw + 1)


def _shuffled_abs(weight: torch.Tensor, rng: np.random.Generator, norm: str) -> np.ndarray:
    """Kernel magnitudes of a uniformly shuffled copy of ``weight``, computed in float32.

    Shuffling the entries and then reducing each kernel is the same as permuting
    the flat absolute values once and reducing consecutive runs of ``kh * kw``:
    one ``torch.randperm`` (1.6 s for 37.7 M entries on one core, against 2.9 s
    for ``Generator.shuffle`` in float64), one gather and a reshape-sum in
    float32 (0.03 s, against 1.95 s for a float64 copy and reduction). For a
    1x1 conv or a linear layer the "kernel" is one entry, so this *is* a
    permutation of the reduced ``|W|`` matrix: the same null, exactly.
    """
    return MagnitudeShuffle.of_weight(weight, norm).reduced(rng)


class MagnitudeShuffle:
    """Draws of the ``shuffle`` null of one layer's kernel magnitudes, with ``|W|`` read once.

    Exact shortcuts (the null is the same, draw for draw):

    - The magnitude of a kernel depends only on the absolute values of its
      entries, so shuffling the signed weight and then taking ``|.|`` is
      shuffling ``|W|``: the flat weights (float32, as ``_shuffled_abs``
      computes it; a view, not a copy) are kept once per layer, and a draw is one
      ``torch.randperm`` seeded from ``rng``, one gather and, for ``k x k``
      kernels, one reshape-sum in float32. No weight tensor is read, copied
      or converted per draw.
    - For a 1x1 conv, or a linear layer (which reads no spatial positions),
      a kernel is one entry: its reduced magnitude is ``|w|`` itself
      (``l1`` and ``max``), so the draw is a permutation of the observed
      reduced ``|W|`` matrix and no reduction runs at all.
    - Batch-norm row scales are applied after the draw, as
      :func:`null_magnitude` does: the raw weights are permuted and every
      output row keeps its own scale (``fold_first`` permutes the folded
      weights instead).

    Each draw takes exactly the random numbers of ``_shuffled_abs`` (one
    ``rng.integers`` seeding one ``torch.randperm``) and gives the same
    magnitudes to the bit, so a draw depends on ``rng`` alone, as before.

    Parameters
    ----------
    graph : ChannelGraph
    name : str
        A conv or linear layer.
    norm : {"l1", "l2", "max"}
    fold_first : bool
        See :func:`null_magnitude`.
    """

    def __init__(self, graph: ChannelGraph | None, name: str | None, norm: str = "l1", fold_first: bool = False,
                 *, weight: torch.Tensor | None = None) -> None:
        self.graph, self.name, self.norm = graph, name, norm
        if weight is None:
            if graph is None or name is None:
                raise ValueError("MagnitudeShuffle needs a graph and a layer name, or a weight")
            weight = graph.weight(name)
        w = weight.detach().to("cpu")
        self.fold_bn = True
        scale = graph.layers[name].row_scale if graph is not None and name is not None else None
        if fold_first and scale is not None:
            w = w * torch.as_tensor(scale, dtype=w.dtype).reshape(-1, *([1] * (w.dim() - 1)))
            self.fold_bn = False
        self.shape = (w.shape[0], w.shape[1], -1)
        # the weights themselves (a view of the module's float32 parameter, no copy): a draw gathers and then
        # takes |.|, which is |W| gathered, exactly; holding no |W| copy saves its size at the draw's peak
        # (alexnet's classifier.1: 151 MB; vgg16's classifier.0: 411 MB)
        self.flat = w.reshape(-1).to(torch.float32)
        self.point = w[0, 0].numel() == 1 if w.numel() else False  # one entry per kernel: 1x1 conv or linear

    @classmethod
    def of_weight(cls, weight: torch.Tensor, norm: str = "l1") -> MagnitudeShuffle:
        """A shuffler of a bare weight tensor (no graph: :meth:`reduced` only)."""
        return cls(None, None, norm, weight=weight)

    def reduced(self, rng: np.random.Generator, widen: bool = True) -> np.ndarray:
        """One draw's reduced magnitudes ``(out, in / groups)``, float64, before any batch-norm scale.

        ``widen=False`` leaves the magnitudes of one-entry kernels (1x1 convs,
        linear layers; ``l1`` and ``max``) in float32: they are the permuted
        ``|W|`` entries themselves, exact in float32, and a reader that widens
        them (:class:`~modularity.core.magnitude.ProfileBuilder` does, a block
        of rows at a time) gets the same numbers without a float64 copy of the
        whole matrix (alexnet's classifier.1: 0.3 GB).
        """
        g = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
        n = self.flat.numel()
        # int32 indices below 2^31 entries: the same permutation as int64 for the same generator (tested), half
        # the memory (vgg16's classifier.0: 0.4 instead of 0.8 GB) and 30 % faster (16.8 M entries: 0.35 s vs 0.49 s)
        perm = torch.randperm(n, generator=g, dtype=torch.int32 if n < 2**31 else torch.int64)
        r = torch.index_select(self.flat, 0, perm).abs_().reshape(self.shape)  # flat[perm], 3x faster on one core
        del perm
        if self.point and self.norm in ("l1", "max"):  # the reduction of one entry is the entry
            return r[:, :, 0].numpy().astype(np.float64) if widen else r[:, :, 0].numpy()
        if self.norm == "l1":
            red = r.sum(-1)
        elif self.norm == "l2":
            red = r.pow(2).sum(-1).sqrt()
        else:
            red = r.amax(-1)
        return red.numpy().astype(np.float64)

    def __call__(self, rng: np.random.Generator, widen: bool = True) -> np.ndarray:
        """One draw's ``(units, in_units)`` magnitude matrix, groups placed and scales folded as observed.

        ``widen``: see :meth:`reduced` (a folded scale widens to float64 anyway).
        """
        if self.graph is None or self.name is None:
            raise ValueError("a shuffler of a bare weight (of_weight) has no graph to place magnitudes in: "
                             "use reduced()")
        return place_magnitude(self.graph, self.name, self.reduced(rng, widen), fold_bn=self.fold_bn)


def fit_margins(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, row_sums: np.ndarray,
                col_sums: np.ndarray, tol: float = 1e-10, max_iter: int = 1000) -> np.ndarray:
    """Rescale non-negative entries ``values`` at ``(rows, cols)`` to the given row and column sums.

    Iterative proportional fitting (Sinkhorn-Knopp, RAS): scale rows, then
    columns, until every sum is within ``tol`` (relative) of its target. Rows
    and columns whose target is zero become zero.

    Examples
    --------
    >>> v = fit_margins(np.ones(4), np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]),
    ...                 np.array([3.0, 1.0]), np.array([2.0, 2.0]))
    >>> np.round(v, 3).tolist()
    [1.5, 1.5, 0.5, 0.5]
    """
    v = np.asarray(values, dtype=np.float64).copy()
    n_r, n_c = len(row_sums), len(col_sums)
    scale = max(float(np.max(row_sums, initial=0.0)), float(np.max(col_sums, initial=0.0)), 1e-300)
    for _ in range(max_iter):
        r = np.bincount(rows, weights=v, minlength=n_r)
        v *= np.divide(row_sums, r, out=np.zeros(n_r), where=r > 0)[rows]
        c = np.bincount(cols, weights=v, minlength=n_c)
        v *= np.divide(col_sums, c, out=np.zeros(n_c), where=c > 0)[cols]
        r = np.bincount(rows, weights=v, minlength=n_r)
        if np.max(np.abs(r - row_sums), initial=0.0) <= tol * scale:
            break
    return v


def degree_preserving_magnitude(magnitude: np.ndarray, allowed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw of the ``degree`` null for a magnitude matrix (see the module docstring).

    ``allowed`` marks the connections the architecture has (conv groups leave
    the others zero); their magnitudes are permuted among themselves and then
    fitted back to the observed row and column sums.
    """
    m = np.asarray(magnitude, dtype=np.float64)
    r, c = np.nonzero(allowed)
    v = rng.permutation(m[r, c])
    out = np.zeros_like(m)
    out[r, c] = fit_margins(v, r, c, m.sum(axis=1), m.sum(axis=0))
    return out


def null_magnitude(graph: ChannelGraph, name: str, kind: str, rng: np.random.Generator,
                   norm: str = "l1", fold_first: bool = False) -> np.ndarray:
    """Magnitudes of one null draw of layer ``name``'s weights (see :func:`modularity.core.magnitude.layer_magnitude`).

    ``shuffle`` takes the fast exact route of ``_shuffled_abs``; ``degree``
    randomises the folded magnitudes with their margins kept
    (:func:`degree_preserving_magnitude`); the other nulls draw a weight with
    :func:`null_weight` and reduce it.

    With ``fold_first``, ``shuffle`` permutes the weights *after* the batch-norm
    scale is multiplied into each output row, as Filan et al. shuffle networks
    for whole-network clusterability; by default the raw weights are permuted
    and every row keeps its own scale (the per-layer analysis). The other nulls
    always draw raw weights and fold after.
    """
    if kind == "degree":
        observed = layer_magnitude(graph, name, norm)
        w = graph.weight(name)
        allowed = place_magnitude(graph, name, np.ones((w.shape[0], w.shape[1])), fold_bn=False) > 0
        return degree_preserving_magnitude(observed, allowed, rng)
    if kind == "shuffle":
        return MagnitudeShuffle(graph, name, norm, fold_first)(rng)
    red = reduce_kernel(null_weight(kind, graph.weight(name), rng, graph.modules[name]), norm)
    return place_magnitude(graph, name, red)


def shuffle_weight(weight: torch.Tensor | np.ndarray, rng: np.random.Generator,
                   nonzero_only: bool = False) -> torch.Tensor:
    """Permute the entries of a weight tensor uniformly at random.

    Parameters
    ----------
    weight : tensor or ndarray
    rng : numpy Generator
    nonzero_only : bool
        Permute only the non-zero entries among themselves.

    Returns
    -------
    torch.Tensor
        A new tensor with the same shape and the same multiset of values.
    """
    w = torch.as_tensor(weight).detach().cpu()
    flat = w.reshape(-1).numpy().copy()
    if nonzero_only:
        idx = np.flatnonzero(flat)
        flat[idx] = rng.permuted(flat[idx])
    else:
        rng.shuffle(flat)  # in place: about twice as fast as indexing with a permutation on large layers
    return torch.from_numpy(flat).reshape(w.shape)


def empirical_p(null: np.ndarray, observed: float, alternative: str = "greater") -> float:
    """Empirical p-value ``(r + 1) / (n + 1)``.

    ``r`` counts null values at least as extreme as ``observed``: ``>=`` for
    ``alternative="greater"``, ``<=`` for ``"less"``.

    Examples
    --------
    >>> empirical_p(np.array([0.1, 0.2, 0.3]), 0.25)
    0.5
    """
    null = np.asarray(null, dtype=float)
    if alternative == "greater":
        r = int(np.sum(null >= observed - 1e-12))
    elif alternative == "less":
        r = int(np.sum(null <= observed + 1e-12))
    else:
        raise ValueError("alternative must be 'greater' or 'less'")
    return (r + 1) / (len(null) + 1)


def summarise_null(observed: float, null: np.ndarray, alternative: str = "greater", *, effect: str = "difference",
                   p_value: float | None = None, method: str = "weight-shuffle") -> NullSummary:
    """Mean, sd, z-score, p-value and effect size of ``observed`` against ``null``.

    ``z`` is None when the null has zero spread (the statistic is fixed by the
    architecture, e.g. recovery of conv groups). ``p_value`` overrides the
    empirical ``(r + 1) / (n + 1)`` (for a sequential or label-permutation p);
    ``effect`` is ``"difference"`` or ``"relative"`` (see :class:`NullSummary`).
    """
    null = np.asarray(null, dtype=float)
    sd = float(null.std(ddof=1)) if len(null) > 1 else 0.0
    mean = float(null.mean()) if len(null) else float("nan")
    z = (observed - mean) / sd if sd > 1e-12 else None
    p = empirical_p(null, observed, alternative) if p_value is None else float(p_value)
    sign = -1.0 if alternative == "less" else 1.0
    eff = ci = None
    if len(null) and np.isfinite(observed):
        scale = abs(mean) if effect == "relative" else 1.0
        if scale > 0:
            eff = sign * (observed - mean) / scale
            lo, hi = np.percentile(null, [2.5, 97.5])
            ci = sorted(float(sign * (observed - q) / scale) for q in (lo, hi))
    return NullSummary(float(observed), mean, sd, None if z is None else float(z), p, len(null), alternative,
                       method=method, effect=eff, effect_ci=ci)


def resample_weight(weight: torch.Tensor | np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Draw each entry independently, with replacement, from the tensor's own entries."""
    w = torch.as_tensor(weight).detach()
    flat = w.reshape(-1)
    return flat[torch.as_tensor(rng.integers(0, flat.numel(), flat.numel()))].reshape(w.shape).clone()


def reinit_weight(module: nn.Module, rng: np.random.Generator) -> torch.Tensor:
    """A fresh weight from the module's own ``reset_parameters`` (its architecture's init).

    The module itself is not changed; a copy is re-initialised under a torch
    seed drawn from ``rng``.
    """
    if not hasattr(module, "reset_parameters"):
        raise ValueError(f"{type(module).__name__} has no reset_parameters(); use another null model")
    clone = copy.deepcopy(module).to("cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**62)))
        # nn.Module.__getattr__ is typed Tensor | Module: these are the module's method and parameter
        cast(Callable[[], None], clone.reset_parameters)()
    return cast(torch.Tensor, clone.weight).detach().to(torch.float32)


def null_weight(kind: str, weight: torch.Tensor, rng: np.random.Generator,
                module: nn.Module | None = None) -> torch.Tensor:
    """One draw of a null weight of ``kind`` (see :data:`NULL_MODELS`)."""
    if kind == "shuffle":
        return shuffle_weight(weight, rng)
    if kind == "shuffle-nonzero":
        return shuffle_weight(weight, rng, nonzero_only=True)
    if kind == "resample":
        return resample_weight(weight, rng)
    if kind == "reinit":
        if module is None:
            raise ValueError("the reinit null needs the module")
        return reinit_weight(module, rng)
    if kind == "degree":
        raise ValueError("the degree null acts on magnitudes, not weights: use null_magnitude")
    raise ValueError(f"unknown null model '{kind}'; choose one of {', '.join(NULL_MODELS)}")


def benjamini_hochberg(p_values: list[float | None] | np.ndarray) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate); None entries stay None.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, None])
    [0.03, 0.04, 0.04, None]
    """
    idx = [i for i, p in enumerate(p_values) if p is not None and np.isfinite(p)]
    out: list[float | None] = [None] * len(p_values)
    if not idx:
        return out
    p = np.array([p_values[i] for i in idx], dtype=float)
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    for j, i in enumerate(np.array(idx)[order]):
        out[int(i)] = float(min(1.0, adjusted[j]))
    return out


def binomial_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) confidence interval for a binomial rate ``k / n``.

    Used to report the false-positive rate of a test over ``n`` null networks.

    Examples
    --------
    >>> lo, hi = binomial_ci(0, 40)
    >>> lo, round(hi, 4)
    (0.0, 0.0881)
    """
    from scipy.stats import beta

    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    a = (1.0 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi
