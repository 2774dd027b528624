"""Matplotlib figures drawn from plain data (no maths here).

Every ``draw_*`` function draws into a given ``Axes``; every ``*_figure``
function builds a ``matplotlib.figure.Figure`` from a
:class:`~modularity.results.LayerResult` or from arrays prepared by
:mod:`modularity.outputs` (which does the reordering, binning and counting).
Callers save or show the figure; nothing is written here.

One style throughout: the Okabe-Ito palette (distinguishable with the common
colour-vision deficiencies), grey for dead units and null models, viridis for
magnitudes, labelled axes, titles that name the layer.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.colors import to_rgb
from matplotlib.ticker import MaxNLocator

from ..results import LayerResult

__all__ = [
    "PALETTE", "MARKERS", "label_colour", "display_name",
    "draw_spectrum", "draw_embedding", "draw_matrix", "draw_confusion", "draw_null", "draw_filters",
    "spectrum_figure", "embedding_figure", "matrix_figure", "confusion_figure", "null_figure",
    "filters_figure", "network_figure", "layer_sheet", "clusterability_figure",
]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
# With more labels than colours, the marker changes every len(PALETTE) labels.
MARKERS = ["o", "s", "^", "D", "v", "P"]
DEAD = "#9A9A9A"
NULL_GREY = "0.55"
_FONT = 8


def label_colour(label: int) -> str:
    """The palette colour of a branch or cluster label (grey for ``-1``, a dead unit)."""
    return DEAD if label < 0 else PALETTE[int(label) % len(PALETTE)]


def _marker(label: int) -> str:
    return "x" if label < 0 else MARKERS[(int(label) // len(PALETTE)) % len(MARKERS)]


def display_name(name: str, width: int = 48) -> str:
    """A layer name fit for a title: ``$`` escaped (no mathtext), long names shortened in the middle."""
    name = name.replace("$", r"\$")
    if len(name) <= width:
        return name
    keep = (width - 1) // 2
    return name[:keep] + "…" + name[-(width - 1 - keep):]


def _figure(width: float, height: float, caption_space: float = 0.0) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    if caption_space:
        fig.get_layout_engine().set(rect=(0, caption_space, 1, 1 - caption_space))
    return fig


def _style(ax: Axes) -> None:
    ax.tick_params(labelsize=_FONT - 1)
    ax.spines[["top", "right"]].set_visible(False)


def _label_text(label: int, names: Sequence[str] | None, what: str) -> str:
    if label < 0:
        return "dead"
    if names is not None and label < len(names):
        return display_name(str(names[label]), 24)
    return f"{what} {label}"


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=_FONT, color="0.3",
            wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------------------- axes-level

def draw_spectrum(ax: Axes, values: Sequence[float], null: Mapping[str, Sequence[float]] | None = None,
                  variant: str = "normalised", n_show: int = 40, title: str | None = None) -> None:
    """Singular values (descending) as a line, over the null band when given.

    Parameters
    ----------
    ax : Axes
    values : sequence of float
        Observed singular values.
    null : mapping, optional
        ``{"mean": [...], "lo": [...], "hi": [...]}``: the shuffled-weights mean and 95% band.
    variant : str
        SVD variant, for the axis label.
    n_show : int
        How many leading values to draw.
    title : str, optional
    """
    s = np.asarray(values, dtype=float)[:n_show]
    x = np.arange(1, len(s) + 1)
    if null and null.get("mean"):
        m = min(len(null["mean"]), len(s))
        ax.fill_between(x[:m], null["lo"][:m], null["hi"][:m], color="0.85", lw=0, label="shuffled weights, 95%")
        ax.plot(x[:m], null["mean"][:m], color=NULL_GREY, lw=1, ls="--", label="shuffled mean")
    ax.plot(x, s, "o-", color=PALETTE[0], ms=2.5, lw=1.1, label="observed")
    positive = s[s > 0]
    if positive.size and positive.max() > 20 * positive.min():
        ax.set_yscale("log")
    ax.set_xlabel("index of singular value", fontsize=_FONT)
    ax.set_ylabel(f"singular value ({variant})", fontsize=_FONT)
    if title:
        ax.set_title(title, fontsize=_FONT + 1)
    ax.legend(frameon=False, fontsize=_FONT - 1, loc="upper right")
    _style(ax)


def draw_embedding(ax: Axes, x: Sequence[float], y: Sequence[float], labels: Sequence[int] | None,
                   names: Sequence[str] | None = None, what: str = "cluster", title: str | None = None,
                   xlabel: str = "", ylabel: str = "", legend_max: int = 12) -> None:
    """Units as points, coloured (and, past eight labels, shaped) by label.

    ``labels=None`` draws every unit in one colour (no true branches).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if labels is None:
        ax.scatter(x, y, s=9, color=PALETTE[0], alpha=0.8, linewidths=0, rasterized=len(x) > 2000)
    else:
        labels = np.asarray(labels)
        for lab in np.unique(labels):
            sel = labels == lab
            ax.scatter(x[sel], y[sel], s=9 if lab >= 0 else 12, color=label_colour(lab), marker=_marker(lab),
                       alpha=0.85, linewidths=0 if lab >= 0 else 0.8, label=_label_text(int(lab), names, what),
                       rasterized=len(x) > 2000)
        if len(np.unique(labels)) <= legend_max:
            ax.legend(frameon=False, fontsize=_FONT - 1, markerscale=1.4, loc="upper right")
    ax.set_xlabel(xlabel, fontsize=_FONT)
    ax.set_ylabel(ylabel, fontsize=_FONT)
    if title:
        ax.set_title(title, fontsize=_FONT + 1)
    _style(ax)


def _strip(ax: Axes, labels: np.ndarray, horizontal: bool) -> None:
    colours = np.array([to_rgb(label_colour(int(v))) for v in labels])
    image = colours[None, :, :] if horizontal else colours[:, None, :]
    ax.imshow(image, aspect="auto", interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """Positions (between cells) where consecutive labels differ."""
    return np.flatnonzero(labels[1:] != labels[:-1]) + 0.5


def draw_matrix(ax: Axes, matrix: np.ndarray, row_labels: Sequence[int] | None = None,
                col_labels: Sequence[int] | None = None, shape: Sequence[int] | None = None,
                title: str | None = None, colorbar: bool = True) -> None:
    """A magnitude matrix already reordered by cluster, with lines between clusters.

    Parameters
    ----------
    ax : Axes
    matrix : ndarray, shape (rows, cols)
        Scaled to [0, 1] by the caller.
    row_labels, col_labels : sequence of int, optional
        Cluster label of each (binned) row and column, in display order.
    shape : (int, int), optional
        Shape of the full matrix, when ``matrix`` was binned, for the axis labels.
    """
    m = np.asarray(matrix, dtype=float)
    im = ax.imshow(m, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0, vmax=1.0)
    for pos in _boundaries(np.asarray(col_labels)) if col_labels is not None and len(col_labels) else []:
        ax.axvline(pos, color="white", lw=0.6)
    for pos in _boundaries(np.asarray(row_labels)) if row_labels is not None and len(row_labels) else []:
        ax.axhline(pos, color="white", lw=0.6)
    rows, cols = shape if shape is not None else m.shape
    binned = " (binned)" if shape is not None and tuple(shape) != m.shape else ""
    ax.set_xlabel(f"producer units by cluster ({cols}){binned}", fontsize=_FONT)
    ax.set_ylabel(f"consumer units by row cluster ({rows})", fontsize=_FONT)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=_FONT + 1)
    if colorbar:
        bar = ax.figure.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
        bar.set_label("magnitude / 99th percentile", fontsize=_FONT - 1)
        bar.ax.tick_params(labelsize=_FONT - 2)


def draw_confusion(ax: Axes, table: np.ndarray, branch_names: Sequence[str], title: str | None = None) -> None:
    """Counts of units per (true branch, cluster), annotated.

    ``table[b, c]`` counts units of branch ``b`` placed in cluster ``c`` (the
    last column counts dead units when the caller adds one).
    """
    t = np.asarray(table)
    ax.imshow(t, cmap="Blues", aspect="auto", interpolation="nearest", vmin=0)
    hi = t.max() if t.size else 0
    if t.size <= 400:
        for (i, j), v in np.ndenumerate(t):
            ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=_FONT - 1,
                    color="white" if v > 0.6 * hi else "black")
    ax.set_yticks(range(t.shape[0]), [display_name(str(b), 18) for b in branch_names], fontsize=_FONT - 1)
    ax.set_xticks(range(t.shape[1]), [str(j) for j in range(t.shape[1])], fontsize=_FONT - 1)
    ax.set_xlabel("cluster found from weights", fontsize=_FONT)
    ax.set_ylabel("true branch", fontsize=_FONT)
    if title:
        ax.set_title(title, fontsize=_FONT + 1)


def draw_null(ax: Axes, observed: float | None, null_mean: float | None, null_sd: float | None,
              draws: Sequence[float] | None = None, statistic: str = "statistic", p_value: float | None = None,
              alternative: str = "greater") -> None:
    """The null distribution of a statistic with the observed value as a vertical line.

    With ``draws`` (the raw null values) a histogram is drawn; otherwise a
    normal curve with the null's mean and sd stands in for it (the axis says so).
    """
    draws = [v for v in (draws or []) if v is not None and np.isfinite(v)]  # strict JSON stores NaN as null
    if observed is None or (null_mean is None and not draws):
        _message(ax, f"no null for {statistic}\n(0 permutations)")
        return
    if draws:
        ax.hist(np.asarray(draws, dtype=float), bins=min(30, max(5, len(draws) // 3)), color="0.75",
                edgecolor="white", label=f"null draws (n={len(draws)})")
        ax.set_ylabel("count", fontsize=_FONT)
    else:
        sd = null_sd if null_sd and null_sd > 0 else max(abs(null_mean) * 1e-3, 1e-6)
        lo, hi = min(null_mean - 4 * sd, observed), max(null_mean + 4 * sd, observed)
        xs = np.linspace(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo), 200)
        ax.fill_between(xs, np.exp(-0.5 * ((xs - null_mean) / sd) ** 2), color="0.8", lw=0,
                        label="null (normal, mean ± sd)")
        ax.set_ylabel("relative density", fontsize=_FONT)
        ax.set_yticks([])
    p = "" if p_value is None else f", p = {p_value:.3g}"
    ax.axvline(observed, color=PALETTE[5], lw=1.6, label=f"observed{p}")
    side = "lower" if alternative == "less" else "higher"
    ax.set_xlabel(f"{statistic} ({side}: more structure)", fontsize=_FONT)
    ax.legend(frameon=False, fontsize=_FONT - 1, loc="upper left")
    _style(ax)


def draw_filters(fig: Figure, images: np.ndarray, labels: Sequence[int] | None = None, n_cols: int = 16) -> None:
    """First-layer filters as RGB tiles in the given order, framed in their cluster colour.

    ``images`` has shape (n, kh, kw, 3) with values in [0, 1] (0.5 = zero weight).
    """
    n = len(images)
    n_cols = max(1, min(n_cols, n))
    n_rows = int(np.ceil(n / n_cols)) if n else 1
    axes = fig.subplots(n_rows, n_cols, squeeze=False, gridspec_kw={"wspace": 0.08, "hspace": 0.08})
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
            continue
        ax.imshow(np.clip(images[i], 0, 1), interpolation="nearest")
        colour = label_colour(int(labels[i])) if labels is not None else "0.7"
        for side in ax.spines.values():
            side.set_color(colour)
            side.set_linewidth(2.0)


# --------------------------------------------------------------------------------------- figure-level

def spectrum_figure(layer: LayerResult, variants: Sequence[str] = ("raw", "normalised"), n_show: int = 40) -> Figure:
    """Singular spectra of a layer's downstream profile, one panel per SVD variant, with the null band."""
    fig = _figure(3.3 * len(variants), 3.0)
    axes = fig.subplots(1, len(variants), squeeze=False)[0]
    for ax, variant in zip(axes, variants):
        values = layer.spectra.get(variant, layer.singular_values if variant == "raw" else [])
        draw_spectrum(ax, values, layer.null_spectra.get(variant), variant, n_show, title=f"{variant} |W|")
    fig.suptitle(f"{display_name(layer.name)}: singular spectrum", fontsize=_FONT + 2)
    return fig


def _embedding_panels(axes: Sequence[Axes], layer: LayerResult, variant: str) -> None:
    v = np.asarray(layer.embedding.get(variant, []), dtype=float)
    if v.ndim != 2 or v.shape[1] < 3:
        for ax in axes:
            _message(ax, "fewer than 3 singular vectors")
        return
    xl, yl = f"singular vector 2 ({variant})", f"singular vector 3 ({variant})"
    if layer.branches is not None:
        draw_embedding(axes[0], v[:, 1], v[:, 2], layer.branches, layer.branch_names, "branch",
                       "coloured by true branch", xl, yl)
    else:
        draw_embedding(axes[0], v[:, 1], v[:, 2], None, title="no true branches in this layer", xlabel=xl,
                       ylabel=yl)
    draw_embedding(axes[1], v[:, 1], v[:, 2], layer.clusters, None, "cluster",
                   f"coloured by cluster (k = {layer.k})", xl, yl)


def embedding_figure(layer: LayerResult, variant: str = "normalised") -> Figure:
    """Units on singular vectors 2 and 3, coloured by true branch (left) and by cluster (right)."""
    fig = _figure(7.6, 3.5)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    _embedding_panels(axes, layer, variant)
    fig.suptitle(f"{display_name(layer.name)}: units on the singular vectors", fontsize=_FONT + 2)
    return fig


def matrix_figure(matrix: np.ndarray, row_labels: Sequence[int] | None, col_labels: Sequence[int] | None,
                  col_branches: Sequence[int] | None = None, shape: Sequence[int] | None = None,
                  name: str = "") -> Figure:
    """The downstream magnitude matrix reordered by cluster, with a true-branch strip above when given."""
    fig = _figure(4.8, 4.4)
    if col_branches is not None and len(col_branches):
        top, ax = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 18]}, sharex=True)
        _strip(top, np.asarray(col_branches), horizontal=True)
        top.set_title("true branch of each column", fontsize=_FONT - 1)
    else:
        ax = fig.subplots()
    draw_matrix(ax, matrix, row_labels, col_labels, shape)
    fig.suptitle(f"{display_name(name)}: magnitudes ordered by co-cluster", fontsize=_FONT + 2)
    return fig


def confusion_figure(table: np.ndarray, branch_names: Sequence[str], name: str = "",
                     ari: float | None = None) -> Figure:
    """Cluster-versus-branch counts for one layer."""
    t = np.asarray(table)
    fig = _figure(max(3.6, 0.45 * t.shape[1] + 2.2), max(2.6, 0.35 * t.shape[0] + 1.6))
    draw_confusion(fig.subplots(), t, branch_names)
    extra = "" if ari is None else f" (ARI {ari:.2f})"
    fig.suptitle(f"{display_name(name)}: clusters vs branches{extra}", fontsize=_FONT + 2)
    return fig


def _null_panels(axes: Sequence[Axes], layer: LayerResult) -> None:
    draws = getattr(layer, "null_draws", None) or {}
    ncut = layer.structure.ncut
    draw_null(axes[0], ncut.observed, ncut.null_mean, ncut.null_sd, draws.get("ncut"), "n-cut", ncut.p_value,
              ncut.alternative)
    axes[0].set_title("clusterability (n-cut)", fontsize=_FONT + 1)
    if len(axes) > 1:
        rec = layer.recovery
        if rec is None:
            _message(axes[1], "no true branches:\nno recovery test")
        else:
            draw_null(axes[1], rec.ari, rec.null_ari_mean, rec.null_ari_sd, draws.get("ari"),
                      "ARI", rec.p_value)
        axes[1].set_title("branch recovery (ARI)", fontsize=_FONT + 1)


def null_figure(layer: LayerResult) -> Figure:
    """Observed n-cut and ARI against their shuffled-weights nulls.

    Uses ``layer.null_draws`` (``{"ncut": [...], "ari": [...]}``) as histograms
    when the result carries them, else a normal curve from the null mean and sd.
    """
    n = 2 if layer.recovery is not None else 1
    fig = _figure(3.4 * n, 2.8)
    _null_panels(fig.subplots(1, n, squeeze=False)[0], layer)
    fig.suptitle(f"{display_name(layer.name)}: observed vs shuffled weights", fontsize=_FONT + 2)
    return fig


def filters_figure(images: np.ndarray, labels: Sequence[int] | None = None, name: str = "",
                   order: str = "", n_cols: int = 16) -> Figure:
    """First-layer filters as images in the given order (``order`` describes it in the title)."""
    n = len(images)
    n_cols = max(1, min(n_cols, n))
    n_rows = int(np.ceil(n / n_cols)) if n else 1
    tile, top, bottom = 0.5, 0.45, 0.45 if labels is not None else 0.15
    width, height = max(4.0, tile * 1.08 * n_cols + 0.3), tile * 1.08 * n_rows + top + bottom
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.15 / width, right=1 - 0.15 / width, top=1 - top / height, bottom=bottom / height)
    draw_filters(fig, images, labels, n_cols)
    fig.suptitle(f"{display_name(name)}: filters ordered by {order}" if order else display_name(name),
                 fontsize=_FONT + 1)
    if labels is not None:
        present = sorted(set(int(v) for v in labels))
        fig.legend(handles=[Patch(color=label_colour(v), label="dead" if v < 0 else f"cluster {v}")
                            for v in present[:12]], loc="lower center", ncol=min(6, len(present)),
                   frameon=False, fontsize=_FONT - 1)
    return fig


def network_figure(names: Sequence[str], fractions: Sequence[Sequence[float]], dead: Sequence[float],
                   ncut_z: Sequence[float | None], ncut_significant: Sequence[bool],
                   ari: Sequence[float | None], ari_significant: Sequence[bool]) -> Figure:
    """Clusters across the whole network: one row per analysed layer.

    Parameters
    ----------
    names : sequence of str
        Layer names, in network order (drawn top to bottom).
    fractions : sequence of sequences of float
        Per layer, the fraction of its units in each cluster (largest first).
    dead : sequence of float
        Per layer, the fraction of dead units.
    ncut_z : sequence of float or None
        Per layer, the n-cut z-score against shuffles (negative = more clusterable).
    ncut_significant, ari_significant : sequence of bool
        BH-adjusted p < 0.05 for the n-cut and the ARI.
    ari : sequence of float or None
        Per layer, the ARI with the true branches (None where there are none).
    """
    n = len(names)
    fig = _figure(10.0, 1.4 + 0.2 * max(n, 3))
    axes = fig.subplots(1, 3, sharey=True, gridspec_kw={"width_ratios": [3.0, 1.3, 1.3]})
    y = np.arange(n)
    for i, (fr, d) in enumerate(zip(fractions, dead)):
        left = 0.0
        for c, f in enumerate(fr):
            axes[0].barh(i, f, left=left, color=label_colour(c), height=0.8, edgecolor="white", linewidth=0.4)
            left += f
        if d > 0:
            axes[0].barh(i, d, left=left, color=DEAD, height=0.8, hatch="//", edgecolor="white", linewidth=0.4)
    axes[0].set_yticks(y, [display_name(s, 40) for s in names], fontsize=max(5, _FONT - 1 - n // 40))
    axes[0].invert_yaxis()
    axes[0].set_xlim(0, 1)
    axes[0].set_xlabel("fraction of units per cluster (largest first; grey: dead)", fontsize=_FONT)
    axes[0].set_title("cluster sizes", fontsize=_FONT + 1)
    _dots(axes[1], y, ncut_z, ncut_significant, "n-cut z vs shuffles (left = more clusterable)")
    axes[1].axvline(0, color=NULL_GREY, lw=0.8)
    _dots(axes[2], y, ari, ari_significant, "ARI with true branches")
    axes[2].axvline(0, color=NULL_GREY, lw=0.8)
    axes[1].xaxis.set_major_locator(MaxNLocator(4))
    if all(v is None for v in ari):
        axes[2].text(0.5, 0.5, "no layer has\ntrue branches", transform=axes[2].transAxes, ha="center",
                     va="center", fontsize=_FONT, color="0.3")
    handles = [Line2D([], [], marker="o", ls="", color=PALETTE[0], label="BH p < 0.05"),
               Line2D([], [], marker="o", ls="", mfc="white", color=PALETTE[0], label="not significant")]
    axes[2].legend(handles=handles, frameon=False, fontsize=_FONT - 1, loc="lower right")
    for ax in axes:
        _style(ax)
    fig.suptitle("Structure across the network", fontsize=_FONT + 2)
    return fig


def _dots(ax: Axes, y: np.ndarray, values: Sequence[float | None], significant: Sequence[bool], xlabel: str) -> None:
    for yi, v, sig in zip(y, values, significant):
        if v is None or not np.isfinite(v):
            continue
        ax.plot(v, yi, "o", ms=4, color=PALETTE[0], mfc=PALETTE[0] if sig else "white")
    ax.set_xlabel(xlabel, fontsize=_FONT)
    ax.grid(axis="y", color="0.93", lw=0.5)


def layer_sheet(layer: LayerResult, matrix: Mapping[str, np.ndarray] | None = None,
                table: np.ndarray | None = None, variant: str = "normalised") -> Figure:
    """Every per-layer view on one sheet: spectrum, embeddings, reordered matrix, confusion and nulls.

    Parameters
    ----------
    layer : LayerResult
    matrix : mapping, optional
        ``{"matrix", "row_labels", "col_labels", "shape"}`` as prepared by
        :func:`modularity.outputs.matrix_view`; omitted when unavailable.
    table : ndarray, optional
        Cluster-versus-branch counts (layers with true branches).
    """
    # Fixed margins instead of constrained layout: ~50 sheets must draw in seconds.
    fig = Figure(figsize=(12.0, 6.2))
    grid = fig.add_gridspec(2, 4, left=0.055, right=0.99, top=0.9, bottom=0.08, wspace=0.32, hspace=0.42)
    draw_spectrum(fig.add_subplot(grid[0, 0]), layer.spectra.get(variant, layer.singular_values),
                  layer.null_spectra.get(variant), variant, title="singular spectrum")
    _embedding_panels([fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[0, 2])], layer, variant)
    ax = fig.add_subplot(grid[0, 3])
    if matrix is not None and np.size(matrix["matrix"]):
        draw_matrix(ax, matrix["matrix"], matrix.get("row_labels"), matrix.get("col_labels"), matrix.get("shape"),
                    "magnitudes by co-cluster", colorbar=False)
    else:
        _message(ax, "magnitude matrix not stored")
    ax = fig.add_subplot(grid[1, 0])
    if table is not None and layer.branch_names:
        draw_confusion(ax, table, layer.branch_names, "clusters vs branches")
    else:
        draw_spectrum(ax, layer.spectra.get("raw", layer.singular_values), layer.null_spectra.get("raw"), "raw",
                      title="raw spectrum (no true branches)")
    _null_panels([fig.add_subplot(grid[1, 1]), fig.add_subplot(grid[1, 2])], layer)
    ax = fig.add_subplot(grid[1, 3])
    _facts(ax, layer)
    fig.suptitle(f"{display_name(layer.name, 90)} ({layer.kind}, {layer.n_units} units)", fontsize=_FONT + 3)
    return fig


def _facts(ax: Axes, layer: LayerResult) -> None:
    ax.set_axis_off()
    ncut = layer.structure.ncut
    lines = [f"k = {layer.k} ({layer.k_source})", f"dead units: {layer.n_dead}",
             f"profile: {layer.shape[0]} x {layer.shape[1]}",
             f"consumers: {display_name(', '.join(layer.consumers), 34)}"]
    if ncut.observed is not None:
        lines.append(f"n-cut {ncut.observed:.3f}")
    if ncut.null_mean is not None:
        lines.append(f"  null {ncut.null_mean:.3f} ± {ncut.null_sd or 0:.3f}")
    if ncut.p_value_bh is not None:
        lines.append(f"  p = {ncut.p_value:.3g}, BH {ncut.p_value_bh:.3g}")
    rec = layer.recovery
    if rec is not None:
        lines.append(f"ARI {rec.ari:.3f}, NMI {rec.nmi:.3f}")
        if rec.p_value_bh is not None:
            lines.append(f"  p = {rec.p_value:.3g}, BH {rec.p_value_bh:.3g}")
        for key, c in rec.controls.items():
            if c.ari is not None:
                lines.append(f"  {key.replace('_', ' ')}: ARI {c.ari:.3f}")
    ax.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=_FONT, family="monospace",
            transform=ax.transAxes)


def clusterability_figure(null_ncuts: Sequence[float], ncut: float, k: int, title: str) -> Figure:
    """Histogram of the shuffled networks' n-cuts with the observed n-cut marked."""
    fig = Figure(figsize=(5.5, 3.5), layout="constrained")
    ax = fig.subplots()
    if len(null_ncuts):
        ax.hist(null_ncuts, bins=min(30, max(5, len(null_ncuts) // 3)), color="0.7",
                label=f"{len(null_ncuts)} shuffled networks")
    ax.axvline(ncut, color="C3", lw=2, label=f"observed {ncut:.4f}")
    ax.set_xlabel(f"n-cut (k = {k})")
    ax.set_ylabel("networks")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(display_name(title, 70), fontsize=10)
    ax.legend(fontsize=8)
    return fig
