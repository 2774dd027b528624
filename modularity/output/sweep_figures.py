"""The figure of a sweep: statistics across checkpoints, one line per layer (plain data in, Figure out).

Nothing is computed or written here: callers pass each statistic as a layer x
checkpoint array and save or show the returned figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..results import ALPHA, SWEEP_STATISTICS
from .plots import MARKERS, NULL_GREY, PALETTE, display_name

__all__ = ["FIGURE_STATISTICS", "STATISTIC_LABELS", "sweep_figure"]

FIGURE_STATISTICS = SWEEP_STATISTICS
"""The statistics drawn across checkpoints (one panel each)."""

STATISTIC_LABELS: dict[str, str] = {
    "ari": "ARI (clusters vs true branches)",
    "p": "p-value of the ARI",
    "p_bh": "p-value of the ARI (BH)",
    "ari_effect": "ARI effect (above null mean)",
    "ncut_z": "n-cut z (below 0: more clusterable)",
    "ncut_effect": "n-cut effect (reduction vs null)",
    "ncut_p": "p-value of the n-cut",
    "ncut_p_bh": "p-value of the n-cut (BH)",
    "ncut": "n-cut",
    "k": "k (co-clusters)",
}
"""Axis labels of the statistics the sweep table holds; other keys are shown as they are."""

_LOG = ("p", "p_bh", "ncut_p", "ncut_p_bh")
_LEGEND_MAX = 16  # more layers than this: a colour scale from the first to the last layer instead of a legend


def _layer_styles(n: int) -> list[dict]:
    if n <= len(PALETTE) * len(MARKERS) and n <= _LEGEND_MAX:
        return [{"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[(i // len(PALETTE)) % len(MARKERS)]}
                for i in range(n)]
    cmap = colormaps["viridis"]
    return [{"color": cmap(i / max(1, n - 1)), "marker": "o"} for i in range(n)]


def _draw(ax, x: np.ndarray, values: np.ndarray, styles: list[dict], key: str) -> bool:
    drawn = False
    for row, style in zip(values, styles):
        if not np.isfinite(row).any():
            continue
        ax.plot(x, row, lw=1.2, ms=3.5, alpha=0.9, **style)
        drawn = True
    if key in _LOG:
        if drawn and (values[np.isfinite(values)] > 0).any():
            ax.set_yscale("log")
        ax.axhline(ALPHA, color=NULL_GREY, lw=0.8, ls="--")
    elif key not in ("ncut", "k"):
        ax.axhline(0.0, color=NULL_GREY, lw=0.8, ls="--")
    if not drawn:
        ax.text(0.5, 0.5, "no values" + (" (no layer has true branches)" if key in ("ari", "p", "p_bh", "ari_effect")
                                         else ""), ha="center", va="center", transform=ax.transAxes,
                fontsize=8, color=NULL_GREY)
    ax.set_ylabel(STATISTIC_LABELS.get(key, key), fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.25, lw=0.5)
    return drawn


def _x_ticks(ax, labels: Sequence[str]) -> None:
    n = len(labels)
    step = max(1, math.ceil(n / 24))
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks)
    shown = [display_name(labels[i], 24) for i in ticks]
    rotate = n > 4 or max((len(s) for s in shown), default=0) > 10
    ax.set_xticklabels(shown, rotation=45 if rotate else 0, ha="right" if rotate else "center", fontsize=7)
    ax.set_xlim(-0.5, n - 0.5)


def sweep_figure(checkpoints: Sequence[str], layers: Sequence[str],
                 values: Mapping[str, Sequence[Sequence[float | None]] | np.ndarray],
                 title: str = "") -> Figure:
    """Each statistic across checkpoints: one panel per statistic, one line per layer.

    Parameters
    ----------
    checkpoints : sequence of str
        Checkpoint labels, in the order of the x axis.
    layers : sequence of str
        Layer names, in execution order (the order of the lines and the legend).
    values : mapping of str to array-like, shape (n_layers, n_checkpoints)
        Per statistic (keys such as ``ari``, ``p``, ``ari_effect``, ``ncut_z``,
        ``ncut_effect``; see :data:`STATISTIC_LABELS`), the value of each layer at
        each checkpoint; None or NaN where there is none (a layer without true
        branches has no ARI). p-values are drawn on a log scale with the 0.05
        line; the other statistics with a line at 0.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
        With up to 16 layers a legend names them; with more, their colour runs
        along viridis from the first layer to the last.
    """
    keys = list(values)
    if not keys:
        raise ValueError("sweep_figure needs at least one statistic")
    n_layers, n_ckpt = len(layers), len(checkpoints)
    arrays = {}
    for key in keys:
        arr = np.array([[np.nan if v is None else float(v) for v in row] for row in values[key]], dtype=float) \
            if n_layers else np.zeros((0, n_ckpt))
        if arr.shape != (n_layers, n_ckpt):
            raise ValueError(f"statistic '{key}' has shape {arr.shape}, expected (layers, checkpoints) = "
                             f"({n_layers}, {n_ckpt})")
        arrays[key] = arr
    legend = n_layers <= _LEGEND_MAX
    ncols = 1 if len(keys) == 1 else 2
    nrows = math.ceil((len(keys) + (1 if ncols == 2 and legend and len(keys) % 2 else 0)) / ncols)
    width = 5.0 * ncols + (0.0 if ncols == 2 else 2.2) + min(6.0, 0.12 * n_ckpt)
    fig = Figure(figsize=(width, 0.6 + 2.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False)).ravel()
    x = np.arange(n_ckpt, dtype=float)
    styles = _layer_styles(n_layers)
    for ax, key in zip(axes, keys):
        _draw(ax, x, arrays[key], styles, key)
    used = axes[:len(keys)]
    for ax in axes[len(keys):]:
        ax.set_axis_off()
    for ax in axes:  # x tick labels on the bottom panel of every column
        ax.xaxis.set_tick_params(labelbottom=False)
    for col in range(ncols):
        column = [ax for i, ax in enumerate(used) if i % ncols == col]
        if column:
            _x_ticks(column[-1], checkpoints)
            column[-1].xaxis.set_tick_params(labelbottom=True)
            column[-1].set_xlabel("checkpoint", fontsize=8)
    if legend and n_layers:
        handles = [Line2D([], [], lw=1.2, ms=3.5, **style) for style in styles]
        names = [display_name(name, 32) for name in layers]
        spare = axes[len(keys)] if len(axes) > len(keys) else None
        if spare is not None:
            spare.legend(handles, names, loc="center", fontsize=7, title="layer", title_fontsize=8, frameon=False,
                         ncol=1 if n_layers <= 8 else 2)
        else:
            fig.legend(handles, names, loc="outside right center", fontsize=7, title="layer", title_fontsize=8,
                       frameon=False)
    elif n_layers:
        mappable = ScalarMappable(Normalize(0, n_layers - 1), colormaps["viridis"])
        bar = fig.colorbar(mappable, ax=list(used), location="right", shrink=0.8, pad=0.02)
        bar.set_ticks([0, n_layers - 1])
        bar.set_ticklabels([display_name(layers[0], 20), display_name(layers[-1], 20)], fontsize=7)
        bar.set_label(f"layer ({n_layers}, in execution order)", fontsize=8)
    if title:
        fig.suptitle(display_name(title, 90), fontsize=10)
    return fig
