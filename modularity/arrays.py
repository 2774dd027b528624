"""The arrays a results folder keeps beside ``summary.json`` (``arrays.npz``).

The figures need two things that the result records do not hold: each
layer's magnitude matrix reordered by co-cluster (binned to at most
:data:`MATRIX_MAX` x :data:`MATRIX_MAX`) and the first conv layer's
filters. Both come from the model's weights, so they are computed once, when
the analysis is written (from the profiles the analysis measured), and
handed to the output, which draws them and never reaches back into the
model; ``python -m modularity report DIR`` redraws from the saved arrays.
The same file keeps what would make ``summary.json`` large: every null draw
(:func:`draw_arrays`) and every layer's per-unit vectors
(:func:`modularity.results.unit_arrays`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .results import DRAW_STATISTICS, AnalysisResult, unit_arrays

if TYPE_CHECKING:  # types only: what reads a results folder back needs no torch
    from .core.graph import ChannelGraph
    from .core.magnitude import Profile

__all__ = ["ARRAYS_VERSION", "READABLE_ARRAYS_VERSIONS", "MATRIX_MAX", "MAX_FILTERS", "matrix_view", "first_conv",
           "filter_view", "figure_arrays", "draw_arrays", "restore_draws", "DRAW_STATISTICS"]

ARRAYS_VERSION = 2
"""Version of the layout of ``arrays.npz`` (its ``version`` entry): 2 adds the per-unit vectors."""
READABLE_ARRAYS_VERSIONS = (1, 2)
"""The versions ``report DIR`` reads (1: modularity 0.2.0's folders, whose summary.json holds the vectors)."""
MATRIX_MAX = 128
"""Largest side of a saved magnitude matrix: larger profiles are averaged into this many row and column bins."""
MAX_FILTERS = 256
"""Most first-layer filters kept for the filter figure (evenly spaced along their order)."""


def _order(labels: np.ndarray, secondary: np.ndarray | None = None) -> np.ndarray:
    """Indices sorting by label (dead units, ``-1``, last), then by ``secondary``, stably."""
    labels = np.asarray(labels)
    key = np.where(labels < 0, labels.max(initial=0) + 1, labels)
    if secondary is None:
        return np.argsort(key, kind="stable")
    return np.lexsort((np.asarray(secondary), key))


def _bin_edges(n: int, n_bins: int) -> np.ndarray:
    return np.unique(np.linspace(0, n, min(n, n_bins) + 1).round().astype(int))


def _bin_mean(m: np.ndarray, edges: np.ndarray, axis: int) -> np.ndarray:
    sums = np.add.reduceat(m, edges[:-1], axis=axis)
    counts = np.diff(edges)
    return sums / (counts[:, None] if axis == 0 else counts[None, :])


def matrix_view(matrix: np.ndarray, row_labels: Sequence[int] | None, col_labels: Sequence[int],
                col_branches: Sequence[int] | None = None, max_size: int = MATRIX_MAX) -> dict[str, np.ndarray]:
    """A profile matrix reordered by co-cluster, scaled and binned for display.

    Columns (producer units) are sorted by cluster, then by true branch;
    rows (consumer units) by row cluster when ``row_labels`` fits. Values are
    divided by the 99th percentile of the non-zero entries and clipped to
    [0, 1]; then rows and columns are averaged in at most ``max_size`` bins.

    Returns
    -------
    dict
        ``matrix`` (float16), ``row_labels``, ``col_labels``, ``col_branches``
        (the label at each bin's centre; ``col_branches`` empty without
        branches) and ``shape`` (of the full matrix).
    """
    m = np.asarray(matrix, dtype=float)
    cols = np.asarray(col_labels, dtype=int)
    branches = None if col_branches is None else np.asarray(col_branches, dtype=int)
    col_order = _order(cols, branches)
    rows = np.asarray(row_labels if row_labels is not None and len(row_labels) == m.shape[0] else
                      np.zeros(m.shape[0]), dtype=int)
    row_order = _order(rows)
    m = m[np.ix_(row_order, col_order)]  # one copy; everything below works in it (a 4096 x 4096 profile: 134 MB)
    nonzero = m[m > 0]
    scale = float(np.percentile(nonzero, 99, overwrite_input=True)) if nonzero.size else 1.0
    del nonzero
    np.divide(m, scale, out=m)
    np.clip(m, 0.0, 1.0, out=m)
    r_edges, c_edges = _bin_edges(m.shape[0], max_size), _bin_edges(m.shape[1], max_size)
    m = _bin_mean(_bin_mean(m, r_edges, 0), c_edges, 1)
    r_mid, c_mid = (r_edges[:-1] + r_edges[1:] - 1) // 2, (c_edges[:-1] + c_edges[1:] - 1) // 2
    return {
        "matrix": m.astype(np.float16),
        "row_labels": rows[row_order][r_mid],
        "col_labels": cols[col_order][c_mid],
        "col_branches": branches[col_order][c_mid] if branches is not None else np.zeros(0, dtype=int),
        "shape": np.asarray(matrix.shape, dtype=int),
    }


def first_conv(graph: ChannelGraph) -> str | None:
    """The first conv layer that reads the network input directly, or None."""
    for name, layer in graph.layers.items():
        if layer.kind == "conv" and graph.producers(name) == ["input"]:
            return name
    return None


def filter_view(weight: np.ndarray, labels: Sequence[int] | None = None,
                max_filters: int = MAX_FILTERS) -> dict[str, Any]:
    """First-layer filters as RGB images, ordered along a singular vector of their magnitudes.

    The order is each filter's coordinate on the second left singular vector
    of ``|W|`` reshaped to (filters, in_channels * kh * kw), with the sign
    fixed so that the largest entry is positive. The first singular vector is
    mostly overall magnitude; the second contrasts how filters spread their
    weight over input channels (colour) and positions (frequency). Each image
    is the signed kernel scaled by its own largest absolute weight, so grey
    (0.5) is a zero weight. A single input channel is shown in grey; more or
    fewer than three are averaged to grey.

    Returns
    -------
    dict
        ``images`` (n, kh, kw, 3) float16 in the displayed order,
        ``coord`` (their coordinates), ``labels`` (clusters, or empty),
        ``order`` (original indices) and ``description``.
    """
    w = np.asarray(weight, dtype=float)
    a = np.abs(w).reshape(w.shape[0], -1)
    u = np.linalg.svd(a, full_matrices=False)[0]
    j = 1 if u.shape[1] > 1 else 0
    coord = u[:, j] * (np.sign(u[np.abs(u[:, j]).argmax(), j]) or 1.0)
    order = np.argsort(coord, kind="stable")
    if len(order) > max_filters:
        order = order[np.linspace(0, len(order) - 1, max_filters).round().astype(int)]
    peak = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    img = 0.5 + w / (2 * np.where(peak > 0, peak, 1.0))[:, None, None, None]
    img = img.transpose(0, 2, 3, 1)
    if img.shape[-1] != 3:
        img = np.repeat(img.mean(axis=-1, keepdims=True), 3, axis=-1)
    which = "second" if j == 1 else "first"
    return {
        "images": img[order].astype(np.float16),
        "coord": coord[order],
        "labels": np.asarray(labels, dtype=int)[order] if labels is not None else np.zeros(0, dtype=int),
        "order": order,
        "description": f"coordinate on the {which} singular vector of |W| (filters x in*kh*kw)",
    }


def figure_arrays(graph: ChannelGraph, result: AnalysisResult, profiles: Mapping[str, Profile],
                  max_size: int = MATRIX_MAX) -> dict[str, np.ndarray]:
    """Everything ``arrays.npz`` holds: what the figures need beyond the records, the draws, the per-unit vectors.

    Keys: ``version``, ``layer_names``; per layer index ``i``: ``m{i}``,
    ``m{i}_rows``, ``m{i}_cols``, ``m{i}_branches``, ``m{i}_shape`` (see
    :func:`matrix_view`); where the network has a conv reading the input,
    ``filters``, ``filters_coord``, ``filters_labels``, ``filters_layer``,
    ``filters_order`` (see :func:`filter_view`); the null draws
    ``d{i}_<statistic>`` (:func:`draw_arrays`); and the per-unit vectors
    ``u{i}_<field>`` (:func:`modularity.results.unit_arrays`). The control's
    draws and vectors are there too, prefixed ``c`` and ``cu``.
    """
    missing = [r.name for r in result.layers if r.name not in profiles]
    if missing:
        raise ValueError(f"figure_arrays needs the profile of every analysed layer; missing: {', '.join(missing[:5])}")
    out: dict[str, np.ndarray] = {"version": np.asarray(ARRAYS_VERSION),
                                  "layer_names": np.asarray([r.name for r in result.layers], dtype=str)}
    for i, res in enumerate(result.layers):
        view = matrix_view(profiles[res.name].matrix, res.row_clusters, res.clusters, res.branches, max_size)
        out[f"m{i}"], out[f"m{i}_rows"], out[f"m{i}_cols"] = view["matrix"], view["row_labels"], view["col_labels"]
        out[f"m{i}_branches"], out[f"m{i}_shape"] = view["col_branches"], view["shape"]
    out.update(draw_arrays(result))
    out.update(unit_arrays(result))
    stem = first_conv(graph)
    if stem is not None:
        analysed = {r.name: r for r in result.layers}
        labels = analysed[stem].clusters if stem in analysed else None
        view = filter_view(graph.weight(stem).numpy(), labels)
        out.update(filters=view["images"], filters_coord=view["coord"], filters_labels=view["labels"],
                   filters_layer=np.asarray(stem, dtype=str), filters_order=np.asarray(view["description"], dtype=str))
    return out


def draw_arrays(result: AnalysisResult) -> dict[str, np.ndarray]:
    """Every layer's null draws (of :data:`DRAW_STATISTICS`) as float64 arrays, the control's too."""
    out: dict[str, np.ndarray] = {}
    for prefix, res in (("d", result), ("c", result.control)):
        if res is None:
            continue
        for i, layer in enumerate(res.layers):
            for stat in DRAW_STATISTICS:
                if stat in layer.null_draws:
                    out[f"{prefix}{i}_{stat}"] = np.asarray(layer.null_draws[stat], dtype=np.float64)
    return out


def restore_draws(result: AnalysisResult, arrays: Mapping[str, np.ndarray]) -> None:
    """Put the null draws kept in ``arrays`` back on the layers whose summary left them out."""
    for prefix, res in (("d", result), ("c", result.control)):
        if res is None:
            continue
        for i, layer in enumerate(res.layers):
            if layer.null_draws:
                continue
            kept = {stat: arrays[f"{prefix}{i}_{stat}"] for stat in DRAW_STATISTICS if f"{prefix}{i}_{stat}" in arrays}
            layer.null_draws = {stat: [float(v) for v in np.asarray(a, dtype=np.float64).reshape(-1)]
                                for stat, a in kept.items()}
