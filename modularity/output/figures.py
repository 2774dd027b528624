"""Write a results folder from an AnalysisResult: data, figures, graph files, tables and reports.

A results folder holds::

    summary.json            every number (modularity.results)
    arrays.npz              what the figures need beyond summary.json: each layer's
                            magnitude matrix reordered by cluster (binned to at most
                            MATRIX_MAX x MATRIX_MAX) and the first conv layer's filters
    figures/                overview and filters (PNG + SVG), the individual figures of
                            a few featured layers (PNG + SVG), one sheet per layer
                            (figures/layers/, 128-colour PNG: SVG for ~50 layers is slow)
    layers.csv, units.csv   per-layer and per-unit tables
    channel_graph.*         layer-level graph (GraphML, GEXF, node-link JSON, Cytoscape JSON)
    unit_graph.*            unit-level graph (same formats; strongest edges only)
    report.html, report.pdf

Everything except the graph files can be rebuilt from ``summary.json`` and
``arrays.npz`` alone (``python -m modularity report DIR``). This module
prepares data for the figures (reordering, binning, counting); the drawing is
in :mod:`modularity.plots` and the reports in :mod:`modularity.report`.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from . import plots
from ..errors import ModularityError
from .export import (DEFAULT_MAX_EDGES, DEFAULT_TOP_K, GRAPH_FORMATS, LAYER_COLUMNS, layer_graph, layer_rows,
                     unit_graph, unit_rows, write_csv, write_graph)
from ..core.graph import ChannelGraph
from ..core.magnitude import Profile, downstream_profile
from ..results import AnalysisResult, LayerResult, significant

__all__ = [
    "ARRAYS_VERSION", "MATRIX_MAX", "FigureInfo", "layer_file_stem", "profiles_for", "matrix_view",
    "first_conv", "filter_view", "figure_arrays", "save_arrays", "load_arrays", "confusion_table",
    "cluster_fractions", "network_data", "featured_layers", "draw_figures", "write_tables", "write_exports",
    "quiet_glyphs",
]

ARRAYS_VERSION = 1
MATRIX_MAX = 128
MAX_FILTERS = 256
N_FEATURED = 4
SHEET_DPI = 60
SHEET_COLOURS = 128
FIGURE_DPI = 100


@dataclass
class FigureInfo:
    """A figure written into a results folder.

    Attributes
    ----------
    key : str
        ``overview``, ``filters``, ``<kind>:<layer index>`` (kind in
        ``spectrum``, ``embedding``, ``matrix``, ``confusion``, ``null``) or
        ``sheet:<layer index>``.
    title : str
    caption : str
        What the figure shows and what to look for.
    files : list of Path
        The PNG first, then the SVG where one was written (relative to the folder).
    layer : str or None
        The layer it belongs to.
    """

    key: str
    title: str
    caption: str
    files: list[Path] = field(default_factory=list)
    layer: str | None = None

    @property
    def png(self) -> Path:
        """The PNG file (relative to the results folder)."""
        return self.files[0]


def layer_file_stem(index: int, name: str) -> str:
    """A file-name-safe, unique stem for a layer: ``003_inception3a``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "layer"
    return f"{index:03d}_{safe[:80]}"


# -------------------------------------------------------------------------------------- figure data

def profiles_for(graph: ChannelGraph, result: AnalysisResult) -> dict[str, Profile]:
    """The downstream profile of every analysed layer, with the result's reduction and expansion."""
    return {res.name: downstream_profile(graph, res.name, result.reduction, result.expand) for res in result.layers}


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
    m = m[row_order][:, col_order]
    nonzero = m[m > 0]
    scale = float(np.percentile(nonzero, 99)) if nonzero.size else 1.0
    m = np.clip(m / scale, 0.0, 1.0)
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


def figure_arrays(graph: ChannelGraph, result: AnalysisResult, profiles: Mapping[str, Profile] | None = None,
                  max_size: int = MATRIX_MAX) -> dict[str, np.ndarray]:
    """Everything the figures need beyond summary.json, as arrays for ``arrays.npz``.

    Keys: ``version``, ``layer_names``; per layer index ``i``: ``m{i}``,
    ``m{i}_rows``, ``m{i}_cols``, ``m{i}_branches``, ``m{i}_shape`` (see
    :func:`matrix_view`); and, where the network has a conv reading the input,
    ``filters``, ``filters_coord``, ``filters_labels``, ``filters_layer``,
    ``filters_order`` (see :func:`filter_view`).
    """
    profiles = profiles or profiles_for(graph, result)
    out: dict[str, np.ndarray] = {"version": np.asarray(ARRAYS_VERSION),
                                  "layer_names": np.asarray([r.name for r in result.layers], dtype=str)}
    for i, res in enumerate(result.layers):
        view = matrix_view(profiles[res.name].matrix, res.row_clusters, res.clusters, res.branches, max_size)
        out[f"m{i}"], out[f"m{i}_rows"], out[f"m{i}_cols"] = view["matrix"], view["row_labels"], view["col_labels"]
        out[f"m{i}_branches"], out[f"m{i}_shape"] = view["col_branches"], view["shape"]
    stem = first_conv(graph)
    if stem is not None:
        analysed = {r.name: r for r in result.layers}
        labels = analysed[stem].clusters if stem in analysed else None
        view = filter_view(graph.weight(stem).numpy(), labels)
        out.update(filters=view["images"], filters_coord=view["coord"], filters_labels=view["labels"],
                   filters_layer=np.asarray(stem, dtype=str), filters_order=np.asarray(view["description"], dtype=str))
    return out


def save_arrays(arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write figure arrays to a compressed ``.npz`` (no pickles)."""
    path = Path(path)
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_arrays(folder: str | Path, result: AnalysisResult) -> dict[str, np.ndarray]:
    """Read ``arrays.npz`` from a results folder and check it belongs to ``result``.

    Raises
    ------
    ModularityError
        If the file is missing, unreadable, of another version, or lists other layers.
    """
    path = Path(folder) / "arrays.npz"
    if not path.is_file():
        raise ModularityError(f"{folder} lacks arrays.npz (the magnitude matrices and first-layer filters the "
                              "figures need); it was written by an older modularity or is incomplete. Re-run "
                              "'python -m modularity analyze' to regenerate it")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModularityError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc})") from None
    bad = [k for k, v in arrays.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise ModularityError(f"{path}: member '{bad[0]}' is not a .npy array; the file is damaged")
    try:
        version = int(arrays["version"]) if "version" in arrays else None
    except (TypeError, ValueError):
        version = None
    if version != ARRAYS_VERSION:
        raise ModularityError(f"{path} has arrays version {arrays.get('version')}, this modularity reads version "
                              f"{ARRAYS_VERSION}; re-run 'python -m modularity analyze'")
    names = [str(n) for n in arrays.get("layer_names", [])]
    expected = [r.name for r in result.layers]
    if names != expected:
        raise ModularityError(f"{path} lists layers {names[:3]}... but summary.json has {expected[:3]}...; "
                              "the two files come from different runs")
    missing = [f"m{i}" for i in range(len(expected)) if f"m{i}" not in arrays]
    if missing:
        raise ModularityError(f"{path} lacks the matrices {', '.join(missing[:5])}")
    return arrays


def _matrix_entry(arrays: Mapping[str, np.ndarray], i: int) -> dict[str, np.ndarray] | None:
    if f"m{i}" not in arrays:
        return None
    return {"matrix": arrays[f"m{i}"], "row_labels": arrays[f"m{i}_rows"], "col_labels": arrays[f"m{i}_cols"],
            "col_branches": arrays[f"m{i}_branches"], "shape": tuple(int(v) for v in arrays[f"m{i}_shape"])}


def confusion_table(branches: Sequence[int], clusters: Sequence[int]) -> tuple[np.ndarray, list[str]]:
    """Counts of units per (true branch, cluster); a last ``dead`` column when any unit is dead.

    Examples
    --------
    >>> confusion_table([0, 0, 1], [1, 1, -1])
    (array([[0, 2, 0],
           [0, 0, 1]]), ['0', '1', 'dead'])
    """
    b, c = np.asarray(branches, dtype=int), np.asarray(clusters, dtype=int)
    n_b, n_c = int(b.max(initial=-1)) + 1, int(c.max(initial=-1)) + 1
    dead = bool((c < 0).any())
    table = np.zeros((n_b, n_c + dead), dtype=int)
    np.add.at(table, (b, np.where(c < 0, n_c, c)), 1)
    return table, [str(j) for j in range(n_c)] + (["dead"] if dead else [])


def cluster_fractions(clusters: Sequence[int]) -> tuple[list[float], float]:
    """Fraction of units in each cluster (largest first) and the fraction of dead units."""
    c = np.asarray(clusters, dtype=int)
    if c.size == 0:
        return [], 0.0
    counts = np.bincount(c[c >= 0]) if (c >= 0).any() else np.zeros(0)
    counts = np.sort(counts[counts > 0])[::-1]
    return (counts / c.size).tolist(), float((c < 0).mean())


def network_data(result: AnalysisResult) -> dict[str, list]:
    """Per-layer inputs of :func:`modularity.plots.network_figure`."""
    data: dict[str, list] = {k: [] for k in ("names", "fractions", "dead", "ncut_z", "ncut_significant", "ari",
                                             "ari_significant")}
    for res in result.layers:
        fr, dead = cluster_fractions(res.clusters)
        row = res.row()
        data["names"].append(res.name)
        data["fractions"].append(fr)
        data["dead"].append(dead)
        data["ncut_z"].append(row["ncut_z"])
        data["ncut_significant"].append(significant(row["ncut_p_bh"]))
        data["ari"].append(row["ari"])
        data["ari_significant"].append(significant(row["p_bh"]))
    return data


def featured_layers(result: AnalysisResult, n: int = N_FEATURED) -> list[int]:
    """Indices of the layers shown with individual figures: the best-recovered branched layers
    first (highest ARI), then the most clusterable (lowest n-cut z), in network order."""
    rec = sorted((i for i, r in enumerate(result.layers) if r.recovery is not None),
                 key=lambda i: -(result.layers[i].recovery.ari or 0.0))
    z = [(r.structure.ncut.z, i) for i, r in enumerate(result.layers)]
    by_z = [i for v, i in sorted((v, i) for v, i in z if v is not None)]
    chosen: list[int] = []
    for i in rec[: max(1, n // 2) if by_z else n] + by_z + list(range(len(result.layers))):
        if i not in chosen and len(chosen) < n:
            chosen.append(i)
    return sorted(chosen)


# ---------------------------------------------------------------------------------------------- figures

CAPTIONS = {
    "overview": (
        "Each row is an analysed layer, in network order. Left: how its units split into co-clusters "
        "(largest first; grey hatched: dead units with no outgoing weight). Middle: z-score of the layer's "
        "normalised cut against the same layer with shuffled weights; negative means more clusterable than "
        "chance, filled dots have a BH-adjusted p < 0.05. Right: adjusted Rand index between the clusters "
        "and the true branches, where the layer has branches. Look for filled dots: layers whose weights "
        "carry group structure beyond what their shapes alone produce."),
    "filters": (
        "Filters of the first conv layer, {layer}, as RGB images (each scaled to its own largest weight; "
        "grey is zero), ordered by their {order}. Frame colour: the unit's co-cluster, where the layer was "
        "analysed. In trained networks one end of the order tends to hold colour blobs and the other "
        "black-and-white edge detectors; random initial weights show noise."),
    "spectrum": (
        "Singular values of the downstream profile ({shape}; raw |W| left, degree-normalised right) with "
        "the mean and 95% band of shuffled weights. Values above the band mean more low-rank structure than "
        "chance; a drop after the k-th value suggests k groups. The first raw value is mostly overall "
        "magnitude."),
    "embedding": (
        "Each dot is a unit of {layer}, placed by its coordinates on singular vectors 2 and 3 of the "
        "degree-normalised profile (the first is trivial). Left: true branch; right: the co-cluster found "
        "from the weights. Separate colour groups on the left mean the weights tell the branches apart; "
        "matching colourings mean the clusters recover them."),
    "matrix": (
        "Connection magnitudes from the units of {layer} (columns) to their consumers' units (rows), both "
        "ordered by co-cluster, with white lines between clusters; values divided by the 99th percentile{binned}. "
        "Bright blocks on the diagonal mean modules: groups of units that feed separate groups of consumers."),
    "confusion": (
        "Units of {layer} counted by true branch (rows) and co-cluster (columns). One dominant cell per row "
        "and column means the branches are recovered from the weights; spread rows mean they are mixed."),
    "null": (
        "Observed statistics of {layer} (orange line) against the null of {n} shuffled-weights draws (grey): "
        "{how}. p = (r + 1) / (n + 1), r counting null draws at least as extreme."),
    "sheet": "All per-layer views of {layer}: spectrum, units on the singular vectors, ordered magnitudes, "
             "clusters versus branches, nulls and the key numbers.",
}


FigureSink = Callable[[Figure, FigureInfo], None]


def _save_png(fig: Figure, path: Path, dpi: int, colours: int | None) -> None:
    """Save as PNG; with ``colours``, as an adaptive palette image (about a third of the size)."""
    if colours is None:
        fig.savefig(path, dpi=dpi)
        return
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT).save(path, "PNG", optimize=True)


def _save(fig: Figure, folder: Path, rel: str, info: FigureInfo, svg: bool, dpi: int,
          sink: FigureSink | None, colours: int | None = None) -> FigureInfo:
    path = folder / f"{rel}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    with quiet_glyphs():
        _save_png(fig, path, dpi, colours)
        info.files.append(Path(f"{rel}.png"))
        if svg:
            fig.savefig(folder / f"{rel}.svg")
            info.files.append(Path(f"{rel}.svg"))
        if sink is not None:
            sink(fig, info)
    return info


@contextlib.contextmanager
def quiet_glyphs() -> Iterator[None]:
    """Silence matplotlib's "Glyph ... missing from font" warnings inside the block.

    Layer names in scripts the default font lacks (CJK, ...) show as boxes in
    figures; the HTML report shows them correctly.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        yield


def _layer_figures(res: LayerResult, i: int, matrix: dict | None) -> list[tuple[str, Figure, str]]:
    """(kind, figure, caption) for the individual figures of one layer."""
    shape = f"{res.shape[0]} consumer units x {res.shape[1]} units" if len(res.shape) == 2 else "profile"
    out = [("spectrum", plots.spectrum_figure(res), CAPTIONS["spectrum"].format(shape=shape)),
           ("embedding", plots.embedding_figure(res), CAPTIONS["embedding"].format(layer=res.name))]
    if matrix is not None:
        binned = ", then averaged into at most {0} x {0} bins".format(MATRIX_MAX) \
            if tuple(matrix["shape"]) != matrix["matrix"].shape else ""
        fig = plots.matrix_figure(matrix["matrix"], matrix["row_labels"], matrix["col_labels"],
                                  matrix["col_branches"], matrix["shape"], res.name)
        out.append(("matrix", fig, CAPTIONS["matrix"].format(layer=res.name, binned=binned)))
    if res.branches is not None and res.branch_names:
        table, _ = confusion_table(res.branches, res.clusters)
        out.append(("confusion", plots.confusion_figure(table, res.branch_names, res.name, res.recovery.ari
                                                        if res.recovery else None),
                     CAPTIONS["confusion"].format(layer=res.name)))
    draws = getattr(res, "null_draws", None)
    how = "histogram of the raw null draws" if draws else \
        "drawn as a normal curve with the null's mean and sd, because summary.json keeps only those"
    n = res.structure.ncut.n
    out.append(("null", plots.null_figure(res), CAPTIONS["null"].format(layer=res.name, n=n, how=how)))
    return out


def draw_figures(result: AnalysisResult, arrays: Mapping[str, np.ndarray], folder: str | Path,
                 sink: FigureSink | None = None, progress: bool = False,
                 featured: Sequence[int] | None = None) -> list[FigureInfo]:
    """Draw and save every figure of a results folder.

    Writes ``figures/overview`` and ``figures/filters`` (PNG + SVG), the
    individual figures of the featured layers (PNG + SVG), and one sheet per
    layer in ``figures/layers/`` (PNG only, to keep ~50-layer runs fast).

    Parameters
    ----------
    result : AnalysisResult
    arrays : mapping
        Figure arrays (:func:`figure_arrays` or :func:`load_arrays`).
    folder : str or Path
        The results folder.
    sink : callable, optional
        Called with each figure (still open) and its info after it is saved,
        e.g. to append it to a PDF (per-layer sheets included: check ``info.key``).
    progress : bool
        Show a progress bar over the layers.
    featured : sequence of int, optional
        Layer indices with individual figures (default :func:`featured_layers`).

    Returns
    -------
    list of FigureInfo
        In report order.
    """
    folder = Path(folder)
    infos = []
    nd = network_data(result)
    fig = plots.network_figure(nd["names"], nd["fractions"], nd["dead"], nd["ncut_z"], nd["ncut_significant"],
                               nd["ari"], nd["ari_significant"])
    infos.append(_save(fig, folder, "figures/overview", FigureInfo("overview", "Structure across the network",
                                                                   CAPTIONS["overview"]), True, FIGURE_DPI, sink))
    if "filters" in arrays:
        layer, order = str(arrays["filters_layer"]), str(arrays["filters_order"])
        labels = arrays["filters_labels"] if len(arrays["filters_labels"]) else None
        fig = plots.filters_figure(arrays["filters"].astype(float), labels, layer, order)
        info = FigureInfo("filters", "First-layer filters", CAPTIONS["filters"].format(layer=layer, order=order),
                          layer=layer)
        infos.append(_save(fig, folder, "figures/filters", info, True, FIGURE_DPI, sink))
    featured = featured_layers(result) if featured is None else list(featured)
    for i in featured:
        res = result.layers[i]
        for kind, fig, caption in _layer_figures(res, i, _matrix_entry(arrays, i)):
            info = FigureInfo(f"{kind}:{i}", f"{res.name}: {kind}", caption, layer=res.name)
            infos.append(_save(fig, folder, f"figures/{layer_file_stem(i, res.name)}_{kind}", info, True,
                               FIGURE_DPI, sink))
    layers = list(enumerate(result.layers))
    if progress:
        from tqdm.auto import tqdm

        layers = tqdm(layers, desc="figures", unit="layer", leave=False)
    for i, res in layers:
        table = confusion_table(res.branches, res.clusters)[0] if res.branches is not None else None
        fig = plots.layer_sheet(res, _matrix_entry(arrays, i), table)
        info = FigureInfo(f"sheet:{i}", res.name, CAPTIONS["sheet"].format(layer=res.name), layer=res.name)
        infos.append(_save(fig, folder, f"figures/layers/{layer_file_stem(i, res.name)}", info, False, SHEET_DPI,
                           sink, SHEET_COLOURS))
    return infos


# ------------------------------------------------------------------------------------- tables and graphs

def write_tables(result: AnalysisResult, folder: str | Path) -> list[Path]:
    """Write ``layers.csv`` (one row per analysed layer) and ``units.csv`` (one row per unit)."""
    folder = Path(folder)
    return [write_csv(layer_rows(result), folder / "layers.csv", LAYER_COLUMNS),
            write_csv(unit_rows(result), folder / "units.csv")]


def write_exports(result: AnalysisResult, graph: ChannelGraph, folder: str | Path,
                  profiles: Mapping[str, Profile] | None = None, top_k: int | None = DEFAULT_TOP_K,
                  max_edges: int | None = DEFAULT_MAX_EDGES,
                  formats: Sequence[str] = ("graphml", "gexf", "node_link", "cytoscape"),
                  unit_formats: Sequence[str] | None = None) -> list[Path]:
    """Write the layer-level graph in ``formats`` and the unit-level graph in ``unit_formats``.

    Files: ``channel_graph<suffix>`` and ``unit_graph<suffix>``, suffixes from
    :data:`modularity.export.GRAPH_FORMATS`. See :func:`modularity.export.unit_graph`
    for ``top_k`` and ``max_edges``.
    """
    folder = Path(folder)
    unit_formats = formats if unit_formats is None else unit_formats
    written = [write_graph(layer_graph(graph, result), folder / f"channel_graph{GRAPH_FORMATS[f]}", f)
               for f in formats]
    if unit_formats:
        g = unit_graph(graph, result, profiles, top_k=top_k, max_edges=max_edges)
        written += [write_graph(g, folder / f"unit_graph{GRAPH_FORMATS[f]}", f) for f in unit_formats]
    return written
