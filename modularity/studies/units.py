"""Per-unit properties of first-layer filters, and the "without branches" analysis.

For a first conv layer (one that reads the 3 RGB input channels):

``colour_score``
    the share of each filter's energy that is *not* in the grey direction:
    at every spatial position the filter's RGB weight vector is projected on
    ``(1, 1, 1) / sqrt(3)``; ``1 - grey energy / total energy``. A pure grey
    (luminance) filter scores 0, a filter whose RGB weights sum to zero at
    every position scores 1; an isotropic random filter scores 2/3 on average.
``dominant_frequency``
    the radial frequency (cycles per input pixel) of the peak of the filter's
    amplitude spectrum, ``sum over channels |FFT2|``, zero-padded to
    ``pad x pad`` (0 for a filter dominated by its mean, up to ``sqrt(0.5)``).

The "without branches" analysis (Branch Specialization, Voss et al. 2021)
asks whether the leading right singular vectors of the magnitude matrix from
the first layer to the next (expanded through depthwise convs and 1x1
bottlenecks) line up with these properties: for each SVD variant and each of
the top few vectors it gives Spearman and Pearson correlations with the
colour score and the frequency, with permutation p-values from permuting the
unit labels (the property values across units). That tests association given
the weights; a second p-value (``p_max``) corrects for looking at several
vectors and variants with the permutation distribution of the maximum.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import rankdata

from ..core.graph import INPUT, ChannelGraph
from ..core.magnitude import downstream_profile
from ..core.nulls import study_rng
from ..core.spectral import SVD_VARIANTS, svd_variant
from ..errors import ModularityError

__all__ = ["colour_score", "dominant_frequency", "first_layers", "FactorCorrelation", "FirstLayerAnalysis",
           "first_layer_analysis"]


def _as_array(weight) -> np.ndarray:
    if hasattr(weight, "detach"):
        weight = weight.detach().cpu().numpy()
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ModularityError(f"expected first-layer weights of shape (units, 3, kh, kw), got {w.shape}")
    return w


def colour_score(weight) -> np.ndarray:
    """Colour share of each first-layer filter's energy (0 = grey, 1 = no grey component).

    Parameters
    ----------
    weight : tensor or ndarray, shape (units, 3, kh, kw)

    Returns
    -------
    ndarray, shape (units,)
        NaN for an all-zero filter.

    Examples
    --------
    >>> grey = np.ones((1, 3, 2, 2))
    >>> opponent = np.array([1.0, -1.0, 0.0])[None, :, None, None] * np.ones((1, 3, 2, 2))
    >>> colour_score(np.concatenate([grey, opponent]))
    array([0., 1.])
    """
    w = _as_array(weight)
    grey = w.sum(axis=1) / np.sqrt(3.0)  # projection on (1,1,1)/sqrt(3) at each position
    total = (w ** 2).sum(axis=(1, 2, 3))
    grey_energy = (grey ** 2).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.clip(1.0 - grey_energy / np.where(total > 0, total, 1.0), 0.0, 1.0)
    return np.where(total > 0, share, np.nan)


def dominant_frequency(weight, pad: int = 16) -> np.ndarray:
    """Radial frequency (cycles per pixel) of the peak of each filter's amplitude spectrum.

    Parameters
    ----------
    weight : tensor or ndarray, shape (units, channels, kh, kw)
    pad : int
        Zero-pad the kernel to ``pad x pad`` before the FFT (finer frequency grid).

    Returns
    -------
    ndarray, shape (units,)

    Examples
    --------
    >>> x = np.arange(8); stripes = np.cos(np.pi * x)[None, :] * np.ones((8, 1))  # period 2 pixels
    >>> float(dominant_frequency(stripes[None, None], pad=8)[0])
    0.5
    """
    if hasattr(weight, "detach"):
        weight = weight.detach().cpu().numpy()
    w = np.asarray(weight, dtype=np.float64)
    kh, kw = w.shape[-2:]
    size = max(pad, kh, kw)
    amp = np.abs(np.fft.fft2(w, s=(size, size))).sum(axis=1)  # (units, size, size)
    f = np.fft.fftfreq(size)
    radial = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    peak = amp.reshape(len(w), -1).argmax(axis=1)
    return radial.reshape(-1)[peak]


def first_layers(graph: ChannelGraph) -> list[str]:
    """Conv layers that read the 3-channel network input directly."""
    if INPUT not in graph.layers or graph.layers[INPUT].n_units != 3:
        return []
    return [n for n, layer in graph.layers.items()
            if layer.kind == "conv" and INPUT in graph.producers(n) and layer.in_units == 3 and layer.groups == 1]


@dataclass
class FactorCorrelation:
    """Correlation of one right singular vector with one unit property.

    ``p_spearman`` and ``p_pearson`` are two-sided permutation p-values
    ``(r + 1) / (n + 1)`` over permutations of the property across units;
    ``p_max`` compares ``|spearman|`` with the permutation maximum over every
    vector and variant tested for this property (family-wise).
    """

    variant: str
    vector: int
    prop: str
    spearman: float
    pearson: float
    p_spearman: float | None
    p_pearson: float | None
    p_max: float | None = None


@dataclass
class FirstLayerAnalysis:
    """Colour / frequency properties of first-layer units and their alignment with SVD factors.

    Attributes
    ----------
    layer : str
        The first conv layer.
    consumers : list of str
        Profile row blocks (how the second layer was reached).
    colour : list of float
        Colour score per unit.
    frequency : list of float
        Dominant spatial frequency per unit (cycles per pixel).
    singular_values : dict of str to list of float
        Leading singular values per variant.
    vectors : dict of str to list of list of float
        Per variant, each unit's coordinates on the leading right singular vectors.
    correlations : list of FactorCorrelation
    best : dict of str to dict
        For each property, the (variant, vector) with the largest ``|spearman|``.
    n_permutations : int
    null : str
        What was permuted.
    """

    layer: str
    consumers: list[str]
    colour: list[float]
    frequency: list[float]
    singular_values: dict[str, list[float]]
    vectors: dict[str, list[list[float]]]
    correlations: list[FactorCorrelation]
    best: dict[str, dict] = field(default_factory=dict)
    n_permutations: int = 0
    null: str = "permutation of the property values across units (unit labels)"

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        from ..results import jsonable

        return jsonable(asdict(self))


def _zscore_cols(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=0, keepdims=True)
    sd = np.sqrt((x ** 2).sum(axis=0, keepdims=True))
    return np.divide(x, sd, out=np.zeros_like(x), where=sd > 0)


def first_layer_analysis(graph: ChannelGraph, layer: str | None = None, n_vectors: int = 3,
                         n_permutations: int = 1000, seed: int = 0, expand: str = "product",
                         pad: int = 16) -> FirstLayerAnalysis:
    """Which leading singular vectors of the first-to-second-layer magnitudes track colour and frequency.

    Parameters
    ----------
    graph : ChannelGraph
    layer : str, optional
        The first conv layer (default: the first layer that reads the RGB input).
    n_vectors : int
        Leading right singular vectors per SVD variant.
    n_permutations : int
        Permutations of the property values across units (0: no p-values).
    seed : int
        Seeds the permutations.
    expand : str
        How the profile reaches the second layer (see
        :func:`modularity.core.magnitude.downstream_profile`); ``"product"`` looks
        through depthwise convs and 1x1 bottlenecks.
    pad : int
        FFT size for :func:`dominant_frequency`.

    Returns
    -------
    FirstLayerAnalysis

    Raises
    ------
    ModularityError
        If the graph has no conv layer reading a 3-channel input.
    """
    candidates = first_layers(graph)
    if layer is None:
        if not candidates:
            raise ModularityError("no conv layer reads a 3-channel (RGB) input; the colour analysis needs one")
        layer = candidates[0]
    elif layer not in candidates:
        raise ModularityError(f"'{layer}' is not a conv layer reading the RGB input; candidates: {candidates}")
    w = graph.weight(layer)
    props = {"colour": colour_score(w), "frequency": dominant_frequency(w, pad)}
    profile = downstream_profile(graph, layer, "l1", expand)
    values, vectors, coords = {}, {}, []
    for variant in SVD_VARIANTS:
        res = svd_variant(profile.matrix, variant, n_vectors)
        values[variant] = res.s[:n_vectors].tolist()
        vectors[variant] = res.v.tolist()
        for j in range(res.v.shape[1]):
            coords.append((variant, j, res.v[:, j]))
    v = np.column_stack([c[2] for c in coords])  # units x tests
    v_rank = np.column_stack([rankdata(v[:, i]) for i in range(v.shape[1])])
    zv, zr = _zscore_cols(v), _zscore_cols(v_rank)
    rng = study_rng(seed, "units")
    correlations: list[FactorCorrelation] = []
    best = {}
    for prop, x in props.items():
        ok = np.isfinite(x)
        x = np.where(ok, x, np.nanmean(x))
        zx, zxr = _zscore_cols(x[:, None]), _zscore_cols(rankdata(x)[:, None])
        pear, spear = (zv.T @ zx).ravel(), (zr.T @ zxr).ravel()
        if n_permutations:
            perms = np.column_stack([rng.permutation(len(x)) for _ in range(n_permutations)])
            null_p, null_s = np.abs(zv.T @ zx[perms, 0]), np.abs(zr.T @ zxr[perms, 0])  # tests x perms
            p_p = (np.sum(null_p >= np.abs(pear)[:, None] - 1e-12, axis=1) + 1) / (n_permutations + 1)
            p_s = (np.sum(null_s >= np.abs(spear)[:, None] - 1e-12, axis=1) + 1) / (n_permutations + 1)
            max_null = null_s.max(axis=0)
            p_m = (np.sum(max_null[None, :] >= np.abs(spear)[:, None] - 1e-12, axis=1) + 1) / (n_permutations + 1)
        for i, (variant, j, _) in enumerate(coords):
            correlations.append(FactorCorrelation(
                variant, j, prop, float(spear[i]), float(pear[i]),
                float(p_s[i]) if n_permutations else None, float(p_p[i]) if n_permutations else None,
                float(p_m[i]) if n_permutations else None))
        i_best = int(np.argmax(np.abs(spear)))
        best[prop] = {"variant": coords[i_best][0], "vector": coords[i_best][1], "spearman": float(spear[i_best]),
                      "p_max": float(p_m[i_best]) if n_permutations else None}
    return FirstLayerAnalysis(layer, [b[0] for b in profile.blocks], props["colour"].tolist(),
                              props["frequency"].tolist(), values, vectors, correlations, best, n_permutations)
