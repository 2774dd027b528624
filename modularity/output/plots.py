"""Matplotlib figures drawn from plain data (no maths here).

Every ``draw_*`` function draws into a given ``Axes``; every ``*_figure``
function builds a ``matplotlib.figure.Figure`` from a
:class:`~modularity.results.LayerResult` or from arrays prepared by
:mod:`modularity.output.figures` (which does the reordering, binning and
counting). A ``*_figure`` function given ``fig=`` (a ``Figure`` or a
``SubFigure``, e.g. one cell of a PDF page) draws into it instead of making
a new one. Callers save or show the figure; nothing is written here.

One style throughout: the Okabe-Ito palette (distinguishable with the common
colour-vision deficiencies), grey for dead units and null models, viridis for
magnitudes, labelled axes, titles that name the layer and fit the figure
(long layer names wrap at dots), integer ticks on every count axis, and one
p-value format (:func:`format_p`) in figures, tables and text.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure, FigureBase, SubFigure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from ..results import LayerResult
from .text import pieces, shorten, text_width, wrap

__all__ = [
    "PALETTE", "MARKERS", "NULL_BAND", "P_FLOOR", "label_colour", "display_name", "format_p", "p_text",
    "fit_title", "draw_spectrum", "draw_embedding", "draw_matrix", "draw_confusion", "draw_null", "draw_filters",
    "filter_mosaic",
    "draw_counts", "spectrum_figure", "embedding_figure", "matrix_figure", "confusion_figure", "null_figure",
    "filters_figure", "network_figure", "layer_sheet", "sheet_grid", "SHEET_PANEL_IN", "clusterability_figure",
    "composition_figure", "control_figure",
]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
# With more labels than colours, the marker changes every len(PALETTE) labels.
MARKERS = ["o", "s", "^", "D", "v", "P"]
DEAD = "#9A9A9A"
NULL_GREY = "0.55"
NULL_BAND = "#E69F00"  # the null's 95% band on spectra: a colour the observed line (blue) never takes
P_FLOOR = 1e-5
"""p-values below this are shown as ``< 1e-5`` (the resolution of 10^5 label permutations)."""
_FONT = 8
MIN_FONT = 6.5
"""The smallest font any figure uses, in points at the size the figure is drawn (its size on the PDF page)."""
_CHAR_EM = 0.6  # average advance of a DejaVu Sans character, in em (generous: titles must not be clipped)


# Legends inside axes: a white, slightly see-through box, so that their text reads over points and bars.
_LEGEND = {"frameon": True, "framealpha": 0.85, "edgecolor": "none", "fontsize": _FONT - 1, "borderpad": 0.3,
           "handlelength": 1.5, "borderaxespad": 0.3}


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


def format_p(p: float | None, floor: float = P_FLOOR) -> str:
    """The one format of a p-value in every table, figure and text: two significant digits, ``< 1e-5`` below.

    Examples
    --------
    >>> [format_p(v) for v in (0.0099, 0.01, 1 / 21, 0.5, 1.0, 3.2e-4, 2.5e-5, 1e-7, None)]
    ['0.0099', '0.01', '0.048', '0.5', '1', '0.00032', '2.5e-5', '< 1e-5', '–']
    """
    if p is None or not math.isfinite(p):
        return "–"
    if p < floor:
        mantissa, exponent = f"{floor:.0e}".split("e")
        return f"< {mantissa}e{int(exponent)}"
    text = f"{p:.2g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def p_text(p: float | None, label: str = "p") -> str:
    """``p = 0.0099``, ``p < 1e-5`` or ``p: none`` (no null), with :func:`format_p`."""
    shown = format_p(p)
    if shown == "–":
        return f"{label}: none"
    return f"{label} {shown}" if shown.startswith("<") else f"{label} = {shown}"


def _wrap_name(name: str, width_in: float, fontsize: float, max_lines: int) -> list[str]:
    """A layer name on lines of ``width_in`` inches, broken after dots and underscores (measured widths);
    shortened in the middle onto one line where it needs more than ``max_lines``."""
    lines = wrap(" ".join(pieces(name)), width_in, fontsize)
    lines = [line.replace(" ", "") for line in lines]  # the spaces only marked where the name may break
    if len(lines) > max_lines or "".join(lines) != name.replace(" ", ""):
        return [shorten(name, width_in, fontsize)]
    return lines or [""]


def fit_title(name: str, what: str, width_in: float, fontsize: float) -> str:
    """A title ``"<name>: <what>"`` that fits ``width_in`` inches at ``fontsize`` points.

    When it does not fit on one line, the layer name goes on its own line(s),
    wrapped after dots (at most two lines, else shortened in the middle), and
    ``what`` below it. Widths are measured in the font the title is drawn in
    (wide glyphs from fallback fonts included). ``$`` is escaped (no mathtext).

    Examples
    --------
    >>> fit_title("_blocks.8._expand_conv", "observed vs shuffled weights", 3.4, 10)
    '_blocks.8._expand_conv\\nobserved vs shuffled weights'
    >>> fit_title("conv1", "singular spectrum", 6.6, 10)
    'conv1: singular spectrum'
    """
    width_in = max(width_in - 0.1, 0.5)  # a little room at the edges of the figure
    one = f"{name}: {what}" if what else name
    if text_width(one, fontsize) <= width_in:
        return one.replace("$", r"\$")
    lines = _wrap_name(name, width_in, fontsize, 2)
    if what:
        lines += wrap(what, width_in, fontsize)
    return "\n".join(line.replace("$", r"\$") for line in lines)


def _concrete(fig: FigureBase) -> Figure | SubFigure:
    """``fig`` as its concrete class: matplotlib's stubs give FigureBase no size, dpi, axes or layout engine."""
    assert isinstance(fig, (Figure, SubFigure))
    return fig


def _width_in(fig: FigureBase) -> float:
    f = _concrete(fig)
    return float(f.bbox.width) / float(f.dpi)


def _height_in(fig: FigureBase) -> float:
    f = _concrete(fig)
    return float(f.bbox.height) / float(f.dpi)


def _suptitle(fig: FigureBase, name: str, what: str, fontsize: float = _FONT + 2) -> None:
    fig.suptitle(fit_title(name, what, _width_in(fig), fontsize), fontsize=fontsize)


def _figure(width: float, height: float, caption_space: float = 0.0) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    if caption_space:
        engine = fig.get_layout_engine()
        assert isinstance(engine, ConstrainedLayoutEngine)
        engine.set(rect=(0, caption_space, 1, 1 - caption_space))
    return fig


def _target(fig: FigureBase | None, width: float, height: float) -> FigureBase:
    """The figure to draw into: the one given, else a new constrained-layout figure of this size."""
    return fig if fig is not None else _figure(width, height)


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
    for side in ax.spines.values():
        side.set_visible(False)


def _integer_counts(axis) -> None:
    """Ticks at whole numbers only: for axes that count things."""
    axis.set_major_locator(MaxNLocator(integer=True))


# ---------------------------------------------------------------------------------------- axes-level

def draw_spectrum(ax: Axes, values: Sequence[float], null: Mapping[str, Sequence[float]] | None = None,
                  variant: str = "normalised", n_show: int = 40, title: str | None = None,
                  start: int = 1) -> None:
    """Singular values (descending) as a line, over the null's 95% band when given.

    Parameters
    ----------
    ax : Axes
    values : sequence of float
        Observed singular values.
    null : mapping, optional
        ``{"mean": [...], "lo": [...], "hi": [...]}``: the null's mean and 95% band,
        drawn as a shaded orange band with its edges and a dashed mean line.
    variant : str
        SVD variant, for the axis label.
    n_show : int
        How many leading values to draw.
    title : str, optional
    start : int
        Index (1-based) of the first value drawn: 2 leaves out the trivial
        first value of the degree-normalised form (always 1), which would
        squash the rest of the spectrum and the band against the axis.
    """
    skip = max(0, int(start) - 1)
    s = np.asarray(values, dtype=float)[skip:n_show]
    x = np.arange(skip + 1, skip + len(s) + 1)
    if null and null.get("mean"):
        m = max(0, min(len(null["mean"]), n_show) - skip)
        m = min(m, len(s))
        lo, hi = np.asarray(null["lo"], dtype=float)[skip:skip + m], np.asarray(null["hi"], dtype=float)[skip:skip + m]
        ax.fill_between(x[:m], lo, hi, color=NULL_BAND, alpha=0.35, lw=0, label="null, 95% band")
        for edge in (lo, hi):
            ax.plot(x[:m], edge, color=NULL_BAND, lw=0.7)
        ax.plot(x[:m], np.asarray(null["mean"], dtype=float)[skip:skip + m], color="#9C6B00", lw=0.9, ls="--",
                label="null mean")
    ax.plot(x, s, "o-", color=PALETTE[0], ms=2.5, lw=1.0, label="observed", zorder=3)
    positive = s[s > 0]
    if positive.size and positive.max() > 20 * positive.min():
        ax.set_yscale("log")
        # plain numbers at the decades, no labels between them: superscripts would be below the smallest font,
        # and minor labels (3x10^1, 4x10^1, ...) collide where the range is under a decade
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("index of singular value" + (" (from 2)" if skip == 1 else ""), fontsize=_FONT)
    ax.set_ylabel(f"singular value ({variant})", fontsize=_FONT)
    ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    if title:
        ax.set_title(title, fontsize=_FONT + 1)
    ax.legend(loc="upper right", **_LEGEND)
    _style(ax)


def draw_embedding(ax: Axes, x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray,
                   labels: Sequence[int] | np.ndarray | None,
                   names: Sequence[str] | None = None, what: str = "cluster", title: str | None = None,
                   xlabel: str = "", ylabel: str = "", legend_max: int = 12) -> None:
    """Units as points, coloured (and, past eight labels, shaped) by label.

    ``labels=None`` draws every unit in one colour.
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
            ax.legend(markerscale=1.4, loc="best", **_LEGEND)
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


def draw_matrix(ax: Axes, matrix: np.ndarray, row_labels: Sequence[int] | np.ndarray | None = None,
                col_labels: Sequence[int] | np.ndarray | None = None, shape: Sequence[int] | np.ndarray | None = None,
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
        bar.ax.tick_params(labelsize=MIN_FONT)


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


def draw_counts(ax: Axes, counts: Sequence[int], labels: Sequence[int], title: str | None = None,
                what: str = "cluster") -> None:
    """Units per cluster as bars in the cluster colours (``-1``: dead units, grey), on an integer axis."""
    counts, labels = list(counts), [int(v) for v in labels]
    x = np.arange(len(counts))
    ax.bar(x, counts, color=[label_colour(v) for v in labels], width=0.75)
    ax.set_xticks(x, ["dead" if v < 0 else str(v) for v in labels], fontsize=_FONT - 1)
    ax.set_xlabel(what, fontsize=_FONT)
    ax.set_ylabel("units", fontsize=_FONT)
    _integer_counts(ax.yaxis)
    if title:
        ax.set_title(title, fontsize=_FONT + 1)
    _style(ax)


def draw_null(ax: Axes, observed: float | None, null_mean: float | None, null_sd: float | None,
              draws: Sequence[float] | None = None, statistic: str = "statistic", p_value: float | None = None,
              alternative: str = "greater") -> None:
    """The null distribution of a statistic with the observed value marked.

    With ``draws`` (the raw null values) a histogram of counts is drawn (integer
    axis); otherwise a normal curve with the null's mean and sd stands in for
    it (the axis says so). ``p_value`` is shown with :func:`p_text`.

    The observed value is a vertical line where it lies within about half the
    null's range of it. Further out, an axis spanning both would squash the null
    into a sliver; the axis then keeps the null's shape and a red arrow at its
    edge points towards the observed value, labelled with its value and its
    distance from the null mean in null standard deviations.
    """
    draws = [v for v in (draws or []) if v is not None and np.isfinite(v)]  # strict JSON stores NaN as null
    if observed is None or (null_mean is None and not draws):
        _message(ax, f"no null for {statistic}\n(0 permutations)")
        return
    values = np.asarray(draws, dtype=float)
    if draws:
        mean = float(values.mean())
    else:
        assert null_mean is not None  # returned above otherwise
        mean = float(null_mean)
    sd = float(values.std(ddof=1)) if len(draws) > 1 else float(null_sd or 0.0)
    if draws:
        lo, hi = float(values.min()), float(values.max())
    else:
        sd_shown = sd if sd > 0 else max(abs(mean) * 1e-3, 1e-6)
        lo, hi = mean - 4 * sd_shown, mean + 4 * sd_shown
    span = hi - lo if hi > lo else max(abs(mean) * 1e-3, 1e-6)
    far = observed < lo - 0.5 * span or observed > hi + 0.5 * span
    if far:
        left, right = lo - 0.08 * span, hi + 0.08 * span
    else:
        left, right = min(lo, observed) - 0.05 * span, max(hi, observed) + 0.05 * span
    if draws:
        # one filled outline rather than a patch per bar: the same shape at a fraction of the drawing time
        ax.hist(values, bins=min(30, max(5, len(draws) // 3)), range=(lo, hi) if hi > lo else None, color="0.75",
                histtype="stepfilled", label=f"null draws (n = {len(draws)})")
        ax.set_ylabel("count", fontsize=_FONT)
        _integer_counts(ax.yaxis)
    else:
        xs = np.linspace(left, right, 200)
        ax.fill_between(xs, np.exp(-0.5 * ((xs - mean) / sd_shown) ** 2), color="0.8", lw=0,
                        label="null (normal, mean ± sd)")
        ax.set_ylabel("relative density", fontsize=_FONT)
        ax.set_yticks([])
    p = "" if p_value is None else ", " + p_text(p_value)
    if far:
        distance = f"{(observed - mean) / sd:+.1f} null sd" if sd > 0 else "beyond every draw"
        ax.plot([], [], color=PALETTE[5], lw=1.6, marker=">" if observed > hi else "<", ms=4,
                label=f"observed {observed:.3g}{p}\n{distance} (off the axis)")
        _arrow_outside(ax, right=observed > hi)
    else:
        ax.axvline(observed, color=PALETTE[5], lw=1.6, label=f"observed{p}")
    ax.set_xlim(left, right)
    side = "lower" if alternative == "less" else "higher"
    ax.set_xlabel(f"{statistic} ({side}: more structure)", fontsize=_FONT)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.margins(y=0.45 if far else 0.3)  # room above the bars for the legend (and the arrow's label)
    ax.legend(**_LEGEND, loc="upper left" if far and observed > hi else
              "upper right" if far else "best")
    _style(ax)


def _arrow_outside(ax: Axes, right: bool) -> None:
    """A red arrow at the axis edge, above the bars, pointing to an observed value beyond the axis."""
    tip, tail = (1.0, 0.84) if right else (0.0, 0.16)
    ax.annotate("", xy=(tip, 0.74), xytext=(tail, 0.74), xycoords="axes fraction",
                arrowprops={"arrowstyle": "-|>", "color": PALETTE[5], "lw": 1.8, "shrinkA": 0, "shrinkB": 0})


def filter_mosaic(images: np.ndarray, labels: Sequence[int] | None = None, n_cols: int = 16,
                  tile_px: int = 24) -> np.ndarray:
    """First-layer filters as one RGB image: tiles in the given order, ``n_cols`` a row, each framed in its
    cluster's colour (grey without labels) and parted by white.

    ``images`` has shape (n, kh, kw, 3) with values in [0, 1] (0.5 = zero weight); each kernel pixel becomes
    a square block so that a tile is about ``tile_px`` pixels.
    """
    images = np.clip(np.asarray(images, dtype=float), 0, 1)
    n = len(images)
    n_cols = max(1, min(n_cols, n))
    n_rows = -(-n // n_cols) if n else 1
    kh, kw = images.shape[1:3] if n else (1, 1)
    scale = max(1, tile_px // max(kh, kw))
    frame, gap = 2, 3
    th, tw = kh * scale + 2 * frame, kw * scale + 2 * frame
    mosaic = np.ones((n_rows * (th + gap) - gap, n_cols * (tw + gap) - gap, 3))
    for i in range(n):
        r, c = divmod(i, n_cols)
        y, x = r * (th + gap), c * (tw + gap)
        colour = to_rgb(label_colour(int(labels[i]))) if labels is not None else to_rgb("0.7")
        mosaic[y:y + th, x:x + tw] = colour
        mosaic[y + frame:y + th - frame, x + frame:x + tw - frame] = np.kron(images[i], np.ones((scale, scale, 1)))
    return mosaic


def draw_filters(fig: FigureBase, images: np.ndarray, labels: Sequence[int] | None = None,
                 n_cols: int = 16) -> Axes:
    """First-layer filters as RGB tiles in the given order, framed in their cluster colour, in one image.

    ``images`` has shape (n, kh, kw, 3) with values in [0, 1] (0.5 = zero weight). One image rather than an
    axes per filter: 64 axes took most of the figure's drawing time.
    """
    ax = fig.subplots()
    ax.imshow(filter_mosaic(images, labels, n_cols), interpolation="nearest")
    ax.set_axis_off()
    return ax


# --------------------------------------------------------------------------------------- figure-level

def _start(variant: str) -> int:
    """First singular value drawn: the degree-normalised form's first is trivially 1, so it starts at 2."""
    return 2 if variant == "normalised" else 1


def spectrum_figure(layer: LayerResult, variants: Sequence[str] = ("raw", "normalised"), n_show: int = 40,
                    fig: FigureBase | None = None) -> FigureBase:
    """Singular spectra of a layer's downstream profile, one panel per SVD variant, with the null band.

    Side by side; one above the other in a figure narrower than 4.6 inches.
    """
    fig = _target(fig, 3.3 * len(variants), 3.0)
    stacked = _width_in(fig) < 4.6
    axes = fig.subplots(len(variants) if stacked else 1, 1 if stacked else len(variants), squeeze=False).ravel()
    for ax, variant in zip(axes, variants):
        values = layer.spectra.get(variant, layer.singular_values if variant == "raw" else [])
        null = layer.null_spectra.get(variant)
        draw_spectrum(ax, values, null, variant, n_show, start=_start(variant),
                      title=f"{variant} |W|" + ("" if null else " (no null stored)"))
    _suptitle(fig, layer.name, "singular spectrum")
    return fig


def _embedding_panels(axes: Sequence[Axes], layer: LayerResult, variant: str) -> None:
    """Branch colouring on the first axes (only with true branches), cluster colouring on the last."""
    v = np.asarray(layer.embedding.get(variant, []), dtype=float)
    if v.ndim != 2 or v.shape[1] < 3:
        for ax in axes:
            _message(ax, "fewer than 3 singular vectors")
        return
    xl, yl = f"singular vector 2 ({variant})", f"singular vector 3 ({variant})"
    if layer.branches is not None and len(axes) > 1:
        draw_embedding(axes[0], v[:, 1], v[:, 2], layer.branches, layer.branch_names, "branch",
                       "coloured by true branch", xl, yl)
    draw_embedding(axes[-1], v[:, 1], v[:, 2], layer.clusters, None, "cluster",
                   f"coloured by cluster (k = {layer.k})", xl, yl)


def embedding_figure(layer: LayerResult, variant: str = "normalised", fig: FigureBase | None = None) -> FigureBase:
    """Units on singular vectors 2 and 3, coloured by true branch (left) and by cluster (right).

    A layer without true branches gets the cluster panel only.
    """
    n = 2 if layer.branches is not None else 1
    fig = _target(fig, 3.8 * n, 3.5)
    axes = fig.subplots(1, n, sharex=True, sharey=True, squeeze=False)[0]
    _embedding_panels(list(axes), layer, variant)
    _suptitle(fig, layer.name, "units on the singular vectors")
    return fig


def matrix_figure(matrix: np.ndarray, row_labels: Sequence[int] | None, col_labels: Sequence[int] | None,
                  col_branches: Sequence[int] | None = None, shape: Sequence[int] | None = None,
                  name: str = "", fig: FigureBase | None = None) -> FigureBase:
    """The downstream magnitude matrix reordered by cluster, with a true-branch strip above when given."""
    fig = _target(fig, 4.8, 4.4)
    if col_branches is not None and len(col_branches):
        top, ax = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 18]}, sharex=True)
        _strip(top, np.asarray(col_branches), horizontal=True)
        top.set_title("true branch of each column", fontsize=_FONT - 1)
    else:
        ax = fig.subplots()
    draw_matrix(ax, matrix, row_labels, col_labels, shape)
    _suptitle(fig, name, "magnitudes ordered by co-cluster")
    return fig


def confusion_figure(table: np.ndarray, branch_names: Sequence[str], name: str = "",
                     ari: float | None = None, fig: FigureBase | None = None) -> FigureBase:
    """Cluster-versus-branch counts for one layer."""
    t = np.asarray(table)
    fig = _target(fig, max(3.6, 0.45 * t.shape[1] + 2.2), max(2.6, 0.35 * t.shape[0] + 1.6))
    draw_confusion(fig.subplots(), t, branch_names)
    extra = "" if ari is None else f" (ARI {ari:.2f})"
    _suptitle(fig, name, f"clusters vs branches{extra}")
    return fig


def _null_panels(axes: Sequence[Axes], layer: LayerResult) -> None:
    """The n-cut null on the first axes; the ARI null on the second, where there is one."""
    draws = getattr(layer, "null_draws", None) or {}
    ncut = layer.structure.ncut
    draw_null(axes[0], ncut.observed, ncut.null_mean, ncut.null_sd, draws.get("ncut"), "n-cut", ncut.p_value,
              ncut.alternative)
    axes[0].set_title("clusterability (n-cut)", fontsize=_FONT + 1)
    if len(axes) > 1 and layer.recovery is not None:
        rec = layer.recovery
        draw_null(axes[1], rec.ari, rec.null_ari_mean, rec.null_ari_sd, draws.get("ari"), "ARI", rec.p_value)
        axes[1].set_title("branch recovery (ARI)", fontsize=_FONT + 1)


def null_figure(layer: LayerResult, fig: FigureBase | None = None, drawn: str = "shuffled weights") -> FigureBase:
    """Observed n-cut and ARI against their nulls (the ARI only with true branches); ``drawn`` names the null's draws.

    Uses ``layer.null_draws`` (``{"ncut": [...], "ari": [...]}``) as histograms
    when the result carries them, else a normal curve from the null mean and sd.
    """
    n = 2 if layer.recovery is not None else 1
    fig = _target(fig, 3.4 * n, 2.8)
    _null_panels(fig.subplots(1, n, squeeze=False)[0], layer)
    _suptitle(fig, layer.name, f"observed vs {drawn}")
    return fig


def filters_figure(images: np.ndarray, labels: Sequence[int] | None = None, name: str = "",
                   order: str = "", n_cols: int = 16, fig: FigureBase | None = None) -> FigureBase:
    """First-layer filters as images in the given order (``order`` describes it in the title)."""
    n = len(images)
    n_cols = max(1, min(n_cols, n))
    n_rows = int(np.ceil(n / n_cols)) if n else 1
    tile, top, bottom = 0.5, 0.6, 0.45 if labels is not None else 0.15
    width, height = max(4.0, tile * 1.08 * n_cols + 0.3), tile * 1.08 * n_rows + top + bottom
    if fig is None:
        fig = Figure(figsize=(width, height), layout="constrained")
    draw_filters(fig, images, labels, n_cols)
    _suptitle(fig, name, f"filters ordered by {order}" if order else "", _FONT + 1)
    if labels is not None:
        present = sorted(set(int(v) for v in labels))
        fig.legend(handles=[Patch(color=label_colour(v), label="dead" if v < 0 else f"cluster {v}")
                            for v in present[:12]], loc="outside lower center" if _concrete(fig).get_layout_engine()
                   is not None else "lower center", ncol=min(6, len(present)), frameon=False, fontsize=_FONT - 1)
    return fig


def network_figure(names: Sequence[str], fractions: Sequence[Sequence[float]], dead: Sequence[float],
                   ncut_z: Sequence[float | None], ncut_significant: Sequence[bool],
                   ari: Sequence[float | None], ari_significant: Sequence[bool],
                   fig: FigureBase | None = None, panels: tuple[bool, bool] | None = None) -> FigureBase:
    """Clusters across the whole network: one row per analysed layer.

    Panels: cluster sizes; the n-cut z-score (only when some layer has a
    null); the ARI with the true branches (only when some layer has branches).

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
    fig : Figure or SubFigure, optional
    panels : (bool, bool), optional
        Whether to draw the clusterability and the branch-recovery panels
        (default: where some layer has a value), so that the parts of a long
        network's overview show the same panels.
    """
    n = len(names)
    has_z = any(v is not None and np.isfinite(v) for v in ncut_z)
    has_ari = any(v is not None and np.isfinite(v) for v in ari)
    if panels is not None:
        has_z, has_ari = panels
    ratios = [2.6] + [1.4] * (has_z + has_ari)
    fig = _target(fig, 4.6 + 2.0 * (has_z + has_ari), 1.4 + 0.2 * max(n, 3))
    axes = list(fig.subplots(1, len(ratios), sharey=True, squeeze=False,
                             gridspec_kw={"width_ratios": ratios})[0])
    y = np.arange(n)
    # one bar call per cluster rank (not per layer and rank): the same bars, a fraction of the drawing time
    k = max((len(fr) for fr in fractions), default=0)
    widths = np.zeros((n, k))
    for i, fr in enumerate(fractions):
        widths[i, :len(fr)] = fr
    lefts = np.cumsum(widths, axis=1) - widths
    for c in range(k):
        has = widths[:, c] > 0
        axes[0].barh(y[has], widths[has, c], left=lefts[has, c], color=label_colour(c), height=0.8,
                     edgecolor="white", linewidth=0.4)
    d = np.asarray(dead, dtype=float)
    if (d > 0).any():
        has = d > 0
        axes[0].barh(y[has], d[has], left=widths.sum(axis=1)[has], color=DEAD, height=0.8, hatch="//",
                     edgecolor="white", linewidth=0.4)
    axes[0].set_yticks(y, [display_name(s, 40) for s in names], fontsize=_FONT - 1)
    axes[0].invert_yaxis()
    axes[0].set_xlim(0, 1)
    axes[0].set_xlabel("fraction of units per cluster\n(largest first; grey: dead)", fontsize=_FONT)
    axes[0].set_title("cluster sizes", fontsize=_FONT + 1)
    rest = axes[1:]
    if has_z:
        ax = rest.pop(0)
        _dots(ax, y, ncut_z, ncut_significant, "n-cut z vs null\n(left: more clusterable)")
        ax.axvline(0, color=NULL_GREY, lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title("clusterability", fontsize=_FONT + 1)
    if has_ari:
        ax = rest.pop(0)
        _dots(ax, y, ari, ari_significant, "ARI with true\nbranches")
        ax.axvline(0, color=NULL_GREY, lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title("branch recovery", fontsize=_FONT + 1)
    if has_z or has_ari:
        handles = [Line2D([], [], marker="o", ls="", color=PALETTE[0], label="BH p < 0.05"),
                   Line2D([], [], marker="o", ls="", mfc="white", color=PALETTE[0], label="not significant")]
        fig.legend(handles=handles, frameon=False, fontsize=_FONT - 1, ncol=2,
                   loc="outside lower right" if _concrete(fig).get_layout_engine() is not None else "lower right")
    for ax in axes:
        _style(ax)
    fig.suptitle("Structure across the network", fontsize=_FONT + 2)
    return fig


def control_figure(names: Sequence[str], panels: Sequence[tuple[str, Sequence[float | None], Sequence[float | None],
                                                               Sequence[bool], Sequence[bool]]],
                   model: str = "", fig: FigureBase | None = None) -> FigureBase:
    """Trained against the random-init control, one row per layer and one panel per statistic.

    Parameters
    ----------
    names : sequence of str
        Layer names, in network order (drawn top to bottom).
    panels : sequence of (label, trained, control, trained_significant, control_significant)
        One panel each: the statistic's axis label, its value per layer for the
        trained weights and for the control (None where not computed), and
        whether each is significant (BH-adjusted p < 0.05: filled marker).
    model : str
        For the title.
    fig : Figure or SubFigure, optional

    Notes
    -----
    Each layer is a grey line from its control value (square) to its trained
    value (circle), so the length and direction of the line is what training
    changed beyond what the architecture gives at initialisation.
    """
    n = len(names)
    fig = _target(fig, 2.2 + 2.4 * max(len(panels), 1), 1.5 + 0.2 * max(n, 3))
    axes = list(fig.subplots(1, max(len(panels), 1), sharey=True, squeeze=False)[0])
    y = np.arange(n)
    for ax, (label, trained, control, sig_t, sig_c) in zip(axes, panels):
        a = np.array([np.nan if v is None else float(v) for v in trained])
        b = np.array([np.nan if v is None else float(v) for v in control])
        both = np.isfinite(a) & np.isfinite(b)
        if both.any():  # one segment per layer, as one line artist (NaN breaks the line between layers)
            xs = np.column_stack([b[both], a[both], np.full(both.sum(), np.nan)]).ravel()
            ys = np.column_stack([y[both], y[both], y[both]]).ravel()
            ax.plot(xs, ys, color="0.75", lw=1.2, zorder=1)
        for values, sig, marker, colour, z in ((b, sig_c, "s", PALETTE[1], 2), (a, sig_t, "o", PALETTE[0], 3)):
            mask = np.asarray(sig, dtype=bool)
            for filled in (True, False):
                pick = np.isfinite(values) & (mask == filled)
                if pick.any():
                    ax.plot(values[pick], y[pick], marker, ls="", ms=4, color=colour,
                            mfc=colour if filled else "white", zorder=z)
        ax.axvline(0, color=NULL_GREY, lw=0.8)
        ax.set_xlabel(label, fontsize=_FONT)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.grid(axis="y", color="0.93", lw=0.5)
        ax.tick_params(labelsize=_FONT - 1)
    axes[0].set_yticks(y, [display_name(s, 40) for s in names], fontsize=_FONT - 1)
    axes[0].set_ylim(n - 0.5, -0.5)
    handles = [Line2D([], [], marker="o", ls="", color=PALETTE[0], label="trained"),
               Line2D([], [], marker="s", ls="", color=PALETTE[1], label="random-init control"),
               Line2D([], [], marker="o", ls="", color="0.3", mfc="white", label="open: not significant (BH)")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=_FONT - 1, frameon=False)
    _suptitle(fig, model, "trained against random initialisation")
    return fig


def _dots(ax: Axes, y: np.ndarray, values: Sequence[float | None], significant: Sequence[bool], xlabel: str) -> None:
    """One dot per layer, filled where significant (two line artists in all, not one per layer)."""
    v = np.array([np.nan if x is None else float(x) for x in values])
    sig = np.asarray(significant, dtype=bool)
    ok = np.isfinite(v)
    for filled in (True, False):
        pick = ok & (sig == filled)
        if pick.any():
            ax.plot(v[pick], np.asarray(y)[pick], "o", ls="", ms=4, color=PALETTE[0],
                    mfc=PALETTE[0] if filled else "white")
    ax.set_xlabel(xlabel, fontsize=_FONT)
    ax.grid(axis="y", color="0.93", lw=0.5)


_SHEET_MARGINS_IN = {"left": 0.72, "right": 0.12, "top": 0.62, "bottom": 0.55, "wgap": 0.82, "hgap": 0.8}
SHEET_PANEL_IN = (3.0, 3.0)
"""Width and height of one panel of a stand-alone layer sheet, in inches."""


def sheet_grid(layer: LayerResult, branched: bool | None = None, columns: int | None = None) -> tuple[int, int]:
    """(rows, columns) of a layer sheet: 8 panels with true branches (4 x 2), else 6 (3 x 2)."""
    branched = layer.branches is not None and bool(layer.branch_names) if branched is None else branched
    n = 8 if branched else 6
    columns = columns or (4 if branched else 3)
    return -(-n // columns), columns


def layer_sheet(layer: LayerResult, matrix: Mapping[str, np.ndarray] | None = None,
                table: np.ndarray | None = None, variant: str = "normalised",
                counts: tuple[Sequence[int], Sequence[int]] | None = None,
                fig: FigureBase | None = None, columns: int | None = None) -> FigureBase:
    """Every per-layer view on one sheet, without repeats.

    With true branches (8 panels): spectrum, units coloured by branch and by
    cluster, reordered matrix, cluster-versus-branch counts, the n-cut and ARI
    nulls, the key numbers. Without (6 panels): spectrum, units coloured by
    cluster, matrix, units per cluster, the n-cut null, the key numbers.

    Parameters
    ----------
    layer : LayerResult
    matrix : mapping, optional
        ``{"matrix", "row_labels", "col_labels", "shape"}`` as prepared by
        :func:`modularity.arrays.matrix_view`; omitted when unavailable.
    table : ndarray, optional
        Cluster-versus-branch counts (layers with true branches).
    counts : (counts, labels), optional
        Units per cluster label (layers without true branches).
    fig : Figure or SubFigure, optional
        Drawn into with its own layout engine (if any); else a new figure of
        :data:`SHEET_PANEL_IN` per panel with fixed margins (about 50 sheets
        must draw in seconds).
    columns : int, optional
        Panels per row (default 4 with true branches, else 3).
    """
    branched = table is not None and bool(layer.branch_names)
    n_rows, n_cols = sheet_grid(layer, branched, columns)
    if fig is None:
        pw, ph = SHEET_PANEL_IN
        fig = Figure(figsize=(pw * n_cols, ph * n_rows * 0.85 + 0.3))
    fixed = _concrete(fig).get_layout_engine() is None
    title = fit_title(layer.name, f"{layer.kind}, {layer.n_units} units", _width_in(fig), _FONT + 3)
    if fixed:  # fixed margins and gaps in inches, labels wrapped to their panels: fast, for many sheets
        width, height = _width_in(fig), _height_in(fig)
        m = dict(_SHEET_MARGINS_IN)
        m["top"] += 0.2 * title.count("\n")  # a title on more lines pushes the panels down
        panel_w = (width - m["left"] - m["right"] - (n_cols - 1) * m["wgap"]) / n_cols
        panel_h = (height - m["top"] - m["bottom"] - (n_rows - 1) * m["hgap"]) / n_rows
        margins = {"left": m["left"] / width, "right": 1 - m["right"] / width, "top": 1 - m["top"] / height,
                   "bottom": m["bottom"] / height, "wspace": m["wgap"] / max(panel_w, 0.1),
                   "hspace": m["hgap"] / max(panel_h, 0.1)}
    else:
        margins = {}
    grid = fig.add_gridspec(n_rows, n_cols, **margins)
    cells = iter(grid[r, c] for r in range(n_rows) for c in range(n_cols))

    def panel() -> Axes:
        return fig.add_subplot(next(cells))

    draw_spectrum(panel(), layer.spectra.get(variant, layer.singular_values), layer.null_spectra.get(variant),
                  variant, title="singular spectrum", start=_start(variant))
    if branched:
        _embedding_panels([panel(), panel()], layer, variant)
    else:
        _embedding_panels([panel()], layer, variant)
    ax = panel()
    if matrix is not None and np.size(matrix["matrix"]):
        draw_matrix(ax, matrix["matrix"], matrix.get("row_labels"), matrix.get("col_labels"), matrix.get("shape"),
                    "magnitudes by co-cluster", colorbar=False)
    else:
        _message(ax, "magnitude matrix not stored")
    if branched:
        assert table is not None and layer.branch_names is not None  # what branched means
        draw_confusion(panel(), table, layer.branch_names, "clusters vs branches")
        _null_panels([panel(), panel()], layer)
    else:
        ax = panel()
        if counts is not None:
            draw_counts(ax, counts[0], counts[1], "units per cluster")
        else:
            _message(ax, "cluster sizes not given")
        _null_panels([panel()], layer)
    _facts(panel(), layer)
    for rest in cells:
        fig.add_subplot(rest).set_axis_off()
    if fixed:
        for ax in _concrete(fig).axes:
            _fit_labels(ax, panel_w, panel_h)
    fig.suptitle(title, fontsize=_FONT + 3)
    return fig


def _fit_labels(ax: Axes, width_in: float, height_in: float) -> None:
    """Wrap an axis label longer than its panel onto two lines (at spaces), so that it stays beside its panel."""
    for label, length in ((ax.xaxis.label, width_in), (ax.yaxis.label, height_in)):
        text = label.get_text()
        per_line = max(10, int(length * 72 / (0.55 * float(label.get_fontsize()))))
        if text and "\n" not in text and len(text) > per_line:
            label.set_text("\n".join(textwrap.wrap(text, per_line)[:3]))


def _facts(ax: Axes, layer: LayerResult) -> None:
    ax.set_axis_off()
    ncut = layer.structure.ncut
    lines = [f"k = {layer.k} ({layer.k_source})", f"dead units: {layer.n_dead}",
             f"profile: {layer.shape[0]} x {layer.shape[1]}",
             f"consumers: {display_name(', '.join(layer.consumers), 18)}"]
    if ncut.observed is not None:
        lines.append(f"n-cut {ncut.observed:.3f}")
    if ncut.null_mean is not None:
        lines.append(f"  null {ncut.null_mean:.3f} ± {ncut.null_sd or 0:.3f}")
    if ncut.p_value is not None:
        lines.append(f"  {p_text(ncut.p_value)}, {p_text(ncut.p_value_bh, 'BH')}")
    rec = layer.recovery
    if rec is not None:
        lines.append(f"ARI {rec.ari:.3f}, NMI {rec.nmi:.3f}")
        if rec.p_value is not None:
            lines.append(f"  {p_text(rec.p_value)}, {p_text(rec.p_value_bh, 'BH')}")
        for key, c in rec.controls.items():
            if c.ari is not None:
                lines.append(f"  {key.replace('_', ' ')}: ARI {c.ari:.3f}")
    ax.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize=_FONT - 1, family="monospace",
            transform=ax.transAxes)
    ax.set_title("key numbers", fontsize=_FONT + 1, loc="left")


# ------------------------------------------------------------------------------- whole-network clusterability

def clusterability_figure(null_ncuts: Sequence[float], ncut: float, k: int, title: str,
                          p_value: float | None = None, fig: FigureBase | None = None) -> FigureBase:
    """Histogram of the null networks' n-cuts (integer count axis) with the observed n-cut marked."""
    fig = _target(fig, 5.5, 3.5)
    ax = fig.subplots()
    if len(null_ncuts):
        ax.hist(np.asarray(null_ncuts, dtype=float), bins=min(30, max(5, len(null_ncuts) // 3)), color="0.75",
                histtype="stepfilled", label=f"null networks (n = {len(null_ncuts)})")
    else:
        ax.text(0.5, 0.6, "no null networks (0 shuffles)", ha="center", transform=ax.transAxes, fontsize=_FONT,
                color="0.3")
    p = "" if p_value is None else ", " + p_text(p_value)
    ax.axvline(ncut, color=PALETTE[5], lw=1.8, label=f"observed {ncut:.4f}{p}")
    ax.set_xlabel(f"n-cut of the whole network, k = {k} (lower: more clusterable)", fontsize=_FONT)
    ax.set_ylabel("networks", fontsize=_FONT)
    _integer_counts(ax.yaxis)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.margins(y=0.25)
    ax.legend(loc="upper left", **_LEGEND)
    _style(ax)
    fig.suptitle(fit_title(title, "", _width_in(fig), _FONT + 2), fontsize=_FONT + 2)
    return fig


def composition_figure(names: Sequence[str], fractions: np.ndarray, totals: Sequence[int],
                       fig: FigureBase | None = None) -> FigureBase:
    """Where the whole-network clusters lie: per layer (rows, network order), the fraction of its units
    in each cluster (columns), under a bar chart of each cluster's size in units.

    Parameters
    ----------
    names : sequence of str
        Layer names in network order.
    fractions : ndarray, shape (layers, k)
        Fraction of each layer's units in each cluster (isolated units excluded from none: rows may sum below 1).
    totals : sequence of int
        Units in each cluster.
    """
    f = np.asarray(fractions, dtype=float)
    n, k = f.shape
    fig = _target(fig, max(4.5, 2.6 + 0.32 * k), 2.2 + 0.16 * max(n, 4))
    # the bar chart keeps about 1.3 inches whatever the number of layers; the rest is the layers' rows
    rows_in = max(_height_in(fig) - 1.3 - 1.4, 1.0)
    top, ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1.3, rows_in]})
    x = np.arange(k)
    top.bar(x, totals, color=PALETTE[0], width=0.75)
    top.set_ylabel("units", fontsize=_FONT)
    top.yaxis.set_major_locator(MaxNLocator(4, integer=True))
    top.set_title("cluster sizes", fontsize=_FONT + 1)
    _style(top)
    im = ax.imshow(f, aspect="auto", interpolation="nearest", cmap="Blues", vmin=0.0, vmax=1.0)
    # label every layer where the rows are tall enough for the labels, else every second, third, ...
    row_pt = 72 * rows_in / max(n, 1)
    every = max(1, math.ceil((_FONT - 1) * 1.15 / row_pt))
    ax.set_yticks(np.arange(0, n, every), [display_name(s, 40) for s in names[::every]], fontsize=_FONT - 1)
    ax.set_xticks(x, [str(j) for j in x], fontsize=_FONT - 1)
    ax.set_xlabel("cluster of the whole network", fontsize=_FONT)
    ax.set_ylabel("layer (network order)", fontsize=_FONT)
    bar = fig.colorbar(im, ax=[top, ax], fraction=0.04, pad=0.02, shrink=0.6, location="right")
    bar.set_label("fraction of the layer's units", fontsize=_FONT - 1)
    bar.ax.tick_params(labelsize=MIN_FONT)
    fig.suptitle("Clusters across the layers", fontsize=_FONT + 2)
    return fig
