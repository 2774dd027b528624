"""Write a results folder from an AnalysisResult: data, figures, graph files, tables and reports.

A results folder holds::

    summary.json            settings, provenance, every per-layer number (modularity.results)
    arrays.npz              every layer's per-unit vectors (labels, spectra, coordinates)
                            and null draws, and what the figures need beyond the records:
                            each layer's magnitude matrix reordered by cluster (binned to
                            at most MATRIX_MAX x MATRIX_MAX) and the first conv layer's filters
    figures/                overview, control and filters (palette PNG + SVG), the
                            individual figures of a few featured layers (palette
                            PNG; vectors in the PDF), one sheet per layer
                            (figures/layers/, palette PNG, also in the PDF)
    layers.csv, units.csv   per-layer and per-unit tables
    channel_graph.*         layer-level graph (GraphML, GEXF, node-link JSON, Cytoscape JSON)
    unit_graph.graphml.gz   unit-level graph of the featured layers (strongest edges only;
                            every layer, or none, when asked)
    report.html, report.pdf

A clusterability folder (``python -m modularity clusterability``) holds
``clusterability.json``, ``clusterability_layers.csv``, ``figures/`` (the
null histogram and the clusters across layers) and its own ``report.html``
and ``report.pdf`` (:func:`modularity.output.report.build_clusterability_report`).

Everything except the graph files can be rebuilt from ``summary.json`` and
``arrays.npz`` alone (``python -m modularity report DIR``). This module
describes the figures (what to draw, with what data, under which caption)
from the results and the arrays it is handed (:mod:`modularity.arrays`
prepares those); the report lays them out (:mod:`modularity.output.pdf`) and
draws each once, on its PDF page (:mod:`modularity.output.pages`); the
drawing itself is in :mod:`modularity.output.plots`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..arrays import DRAW_STATISTICS, MATRIX_MAX, MAX_FILTERS, READABLE_ARRAYS_VERSIONS
from ..errors import ModularityError
from ..npzfile import Spec, open_npz, spec
from ..results import COLUMNS, COMPARISON, AnalysisResult, LayerResult, significant
from ..settings import MAX_PERMUTATIONS
from . import plots
from .export import (
    DEFAULT_MAX_EDGES,
    DEFAULT_TOP_K,
    GRAPH_FORMATS,
    layer_graph,
    unit_graph,
    unit_rows,
    write_csv,
    write_graph,
    write_rows,
)
from .pages import quiet_glyphs
from .words import NULL_NOUN, null_noun

if TYPE_CHECKING:  # types only: drawing a results folder needs no torch
    from ..core.graph import ChannelGraph
    from ..core.magnitude import Profile

__all__ = [
    "FigureInfo", "Drawing", "layer_file_stem", "save_arrays", "load_arrays", "confusion_table",
    "cluster_fractions", "cluster_counts", "network_data", "featured_layers", "layer_figures", "figure_infos",
    "clusterability_data", "clusterability_infos", "write_tables", "write_exports", "quiet_glyphs",
    "OVERVIEW_ROWS", "UNIT_GRAPH_LAYERS",
]

N_FEATURED = 4
OVERVIEW_ROWS = 50
"""Most layers one overview (or control) figure shows: more go to further parts, so that every layer name
stays at a readable size on its page."""
UNIT_GRAPH_LAYERS = ("featured", "all", "none")
"""Which analysed layers the unit graph covers: the featured layers (default), every layer, or none."""


class Drawing:
    """A picklable ``draw(fig=None)``: ``modularity.output.plots.<name>(*args, fig=fig, **kwargs)``.

    Figures are drawn in worker processes; a closure would not travel to a
    spawned one, a module function's name and plain arguments do.
    """

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.name, self.args, self.kwargs = name, args, kwargs

    def __call__(self, fig: Any = None) -> Any:
        from . import plots

        return getattr(plots, self.name)(*self.args, fig=fig, **self.kwargs)

    def __repr__(self) -> str:
        return f"Drawing({self.name})"


@dataclass
class FigureInfo:
    """A figure of a report: what it is, how to draw it, where its files go.

    Attributes
    ----------
    key : str
        ``overview`` (``overview_2``, ... for further parts), ``control``,
        ``filters``, ``<kind>:<layer index>`` (kind in ``spectrum``,
        ``embedding``, ``matrix``, ``confusion``, ``null``) or ``sheet:<layer index>``.
    title : str
    caption : str
        What the figure shows and what to look for.
    files : list of Path
        The PNG first, then the SVG where one was written (relative to the
        folder); filled in when the figure is drawn.
    layer : str or None
        The layer it belongs to.
    draw : callable or None
        ``draw(fig)`` draws the figure into ``fig`` (a ``Figure`` or
        ``SubFigure``, e.g. its cell of a PDF page; None: a new figure of its
        own size) and returns it (picklable: a :class:`Drawing`).
    pdf_height : float
        Height in inches the figure wants on a PDF page.
    pdf_span : int
        Columns it spans in the PDF's two-column grid (1 or 2).
    stem : str
        Its files without suffix, relative to the folder (``figures/overview``).
    raster : bool
        Drawn as an image into the PDF (the layer sheets), not as vectors.
    svg : bool
        Also saved as SVG.
    palette : bool
        Its PNG is a palette image (flat colours); False for images of weights.
    width, height : float or None
        Its size in inches on the PDF page, the size it is drawn at (set when the report is laid out).
    pixels : (int, int) or None
        Size of its PNG.
    """

    key: str
    title: str
    caption: str
    files: list[Path] = field(default_factory=list)
    layer: str | None = None
    draw: Any = field(default=None, repr=False, compare=False)
    pdf_height: float = 3.0
    pdf_span: int = 2
    stem: str = ""
    raster: bool = False
    svg: bool = True
    palette: bool = True
    width: float | None = None
    height: float | None = None
    pixels: tuple[int, int] | None = None

    @property
    def png(self) -> Path:
        """The PNG file (relative to the results folder)."""
        return self.files[0]


def layer_file_stem(index: int, name: str) -> str:
    """A file-name-safe, unique stem for a layer: ``003_inception3a``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "layer"
    return f"{index:03d}_{safe[:80]}"


def save_arrays(arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write figure arrays to a compressed ``.npz`` (no pickles)."""
    path = Path(path)
    with path.open("wb") as fh:
        np.savez_compressed(fh, **cast(dict[str, Any], arrays))  # numpy's stub fears a key named allow_pickle
    return path


def load_arrays(folder: str | Path, result: AnalysisResult) -> dict[str, np.ndarray]:
    """Read ``arrays.npz`` from a results folder and check it belongs to ``result``.

    Each member's ``.npy`` header is read and checked before any data is
    loaded (:mod:`modularity.npzfile`): its dtype (plain numbers or text, no
    objects) and its declared shape against what ``result`` implies (a
    layer's matrix is at most :data:`MATRIX_MAX` square and no larger than the
    layer's profile; label vectors match it; at most :data:`MAX_FILTERS`
    first-layer filters), so a header declaring terabytes is refused without
    allocating anything. Then the values are checked: labels within range for
    the layer's k, matrices finite and within [0, 1], the recorded profile
    shape equal to ``summary.json``'s. Members the figures do not use (the
    per-unit vectors :func:`~modularity.results.load_summary` reads) are not
    loaded.

    Raises
    ------
    ModularityError
        If the file is missing, unreadable, of another version, lists other
        layers, lacks a member, or a member has the wrong dtype, shape or values.
    """
    path = Path(folder) / "arrays.npz"
    if not path.is_file():
        raise ModularityError(f"{folder} lacks arrays.npz (the magnitude matrices and first-layer filters the "
                              "figures need); it was written by an older modularity or is incomplete. Re-run "
                              "'python -m modularity analyze' to regenerate it")
    with open_npz(path) as data:
        version = data.load("version", spec("iu", ()))
        if int(version) not in READABLE_ARRAYS_VERSIONS:
            raise ModularityError(f"{path} has arrays version {int(version)}, this modularity reads versions "
                                  f"{', '.join(map(str, READABLE_ARRAYS_VERSIONS))}; re-run "
                                  "'python -m modularity analyze'")
        arrays = {"version": version}
        for key, want in _member_specs(result, data.headers).items():
            arrays[key] = data.load(key, want)
    names = [str(n) for n in arrays["layer_names"]]
    expected = [r.name for r in result.layers]
    if names != expected:
        raise ModularityError(f"{path} lists layers {names[:3]}... but summary.json has {expected[:3]}...; "
                              "the two files come from different runs")
    _check_values(arrays, result, path)
    return arrays


_MAX_KERNEL = 128  # side of a first-layer filter shown (AlexNet's is 11)


def _member_specs(result: AnalysisResult, headers: Mapping[str, Any]) -> dict[str, Spec]:
    """The members the figures need, each with the dtype and largest shape ``result`` allows."""
    longest = max((len(r.name) for r in result.layers), default=1)
    specs = {"layer_names": spec("U", (len(result.layers),), max_itemsize=4 * longest)}
    for i, res in enumerate(result.layers):
        rows, cols = min(MATRIX_MAX, res.shape[0]), min(MATRIX_MAX, res.n_units)
        specs[f"m{i}"] = spec("f", (None, None), max_dim=max(rows, cols))
        specs[f"m{i}_rows"] = spec("iu", (None,), max_dim=rows)
        specs[f"m{i}_cols"] = spec("iu", (None,), max_dim=cols)
        specs[f"m{i}_branches"] = spec("iu", (None,), max_dim=cols)
        specs[f"m{i}_shape"] = spec("iu", (2,))
    if "filters" in headers:
        specs.update(filters=spec("f", (None, None, None, 3), max_dim=max(MAX_FILTERS, _MAX_KERNEL)),
                     filters_coord=spec("f", (None,), max_dim=MAX_FILTERS),
                     filters_labels=spec("iu", (None,), max_dim=MAX_FILTERS),
                     filters_layer=spec("U", (), max_itemsize=4 * 4096),
                     filters_order=spec("U", (), max_itemsize=4 * 4096))
    for prefix, run in (("d", result), ("c", result.control)):  # null draws, where the folder keeps them
        for i in range(len(run.layers) if run is not None else 0):
            for stat in DRAW_STATISTICS:
                if f"{prefix}{i}_{stat}" in headers:
                    specs[f"{prefix}{i}_{stat}"] = spec("f", (None,), max_dim=MAX_PERMUTATIONS)
    return specs


def _check_values(arrays: Mapping[str, np.ndarray], result: AnalysisResult, path: Path) -> None:
    """Labels within the layer's k, matrices finite in [0, 1], shapes consistent with each other and summary.json."""
    for i, res in enumerate(result.layers):
        m, where = arrays[f"m{i}"], f"{path}: layer {i} ('{res.name}')"
        fits = (1 <= m.shape[0] <= min(MATRIX_MAX, res.shape[0]) and 1 <= m.shape[1] <= min(MATRIX_MAX, res.n_units)
                and arrays[f"m{i}_rows"].shape == (m.shape[0],) and arrays[f"m{i}_cols"].shape == (m.shape[1],)
                and arrays[f"m{i}_branches"].shape[0] in (0, m.shape[1]))
        if not fits:
            raise ModularityError(f"{where}: the matrix ({m.shape}) and its row, column and branch labels "
                                  f"({arrays[f'm{i}_rows'].shape}, {arrays[f'm{i}_cols'].shape}, "
                                  f"{arrays[f'm{i}_branches'].shape}) do not fit together")
        if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
            raise ModularityError(f"{where}: the matrix holds values outside [0, 1] or not finite")
        if [int(v) for v in arrays[f"m{i}_shape"]] != list(res.shape):
            raise ModularityError(f"{where}: the profile shape {arrays[f'm{i}_shape'].tolist()} differs from "
                                  f"summary.json's {res.shape}")
        top = len(res.branch_names) - 1 if res.branch_names else res.n_units - 1
        for key, low, high in ((f"m{i}_rows", -1, res.k - 1), (f"m{i}_cols", -1, res.k - 1),
                               (f"m{i}_branches", 0, top)):
            v = arrays[key]
            if v.size and (v.min() < low or v.max() > high):
                raise ModularityError(f"{path}: member '{key}' holds labels outside {low}..{high} for layer "
                                      f"'{res.name}'")
    if "filters" in arrays:
        f, n = arrays["filters"], arrays["filters"].shape[0]
        if f.shape[1] > _MAX_KERNEL or f.shape[2] > _MAX_KERNEL or n > MAX_FILTERS:
            raise ModularityError(f"{path}: member 'filters' declares {f.shape}, more filters or larger kernels "
                                  "than modularity shows")
        if arrays["filters_coord"].shape != (n,) or arrays["filters_labels"].shape[0] not in (0, n):
            raise ModularityError(f"{path}: the filters ({n}) and their coordinates and labels do not fit together")
        if not np.all(np.isfinite(f)) or not np.all(np.isfinite(arrays["filters_coord"])):
            raise ModularityError(f"{path}: member 'filters' holds values that are not finite")
        stem = next((r for r in result.layers if r.name == str(arrays["filters_layer"])), None)
        labels = arrays["filters_labels"]
        if labels.size and (labels.min() < -1 or labels.max() > (stem.k - 1 if stem else MAX_FILTERS)):
            raise ModularityError(f"{path}: member 'filters_labels' holds labels out of range")


def _matrix_entry(arrays: Mapping[str, np.ndarray], i: int) -> dict[str, Any] | None:
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
    counts: np.ndarray = np.bincount(c[c >= 0]) if (c >= 0).any() else np.zeros(0)
    counts = np.sort(counts[counts > 0])[::-1]
    return (counts / c.size).tolist(), float((c < 0).mean())


def cluster_counts(clusters: Sequence[int]) -> tuple[list[int], list[int]]:
    """Units per cluster label, in label order with dead units (``-1``) last: (counts, labels).

    Examples
    --------
    >>> cluster_counts([1, 0, 1, -1])
    ([1, 2, 1], [0, 1, -1])
    """
    c = np.asarray(clusters, dtype=int)
    labels = sorted(int(v) for v in np.unique(c) if v >= 0) + ([-1] if (c < 0).any() else [])
    return [int((c == v).sum()) for v in labels], labels


def network_data(result: AnalysisResult) -> dict[str, list]:
    """Per-layer inputs of :func:`modularity.output.plots.network_figure`."""
    data: dict[str, list] = {k: [] for k in ("names", "fractions", "dead", "ncut_z", "ncut_significant", "ari",
                                             "ari_significant")}
    for res in result.layers:
        fr, dead = cluster_fractions(res.clusters)
        row = res.row()
        data["names"].append(res.name)
        data["fractions"].append(fr)
        data["dead"].append(dead)
        data["ncut_z"].append(row.ncut_z)
        data["ncut_significant"].append(significant(row.ncut_p_bh))
        data["ari"].append(row.ari)
        data["ari_significant"].append(significant(row.p_bh))
    return data


def featured_layers(result: AnalysisResult, n: int = N_FEATURED) -> list[int]:
    """Indices of the layers shown with individual figures, in network order.

    Chosen by effect size among significant layers (BH-adjusted p below the
    report's level): branched layers by their ARI effect first (up to half the
    places where both kinds exist), then layers by their n-cut effect (the
    reduction against the null mean), so a tiny but very precise effect
    (a large z) does not crowd out a visible one. Places left over go to the
    largest effects of the rest.
    """
    layers = result.layers

    def ari_effect(i: int) -> float:
        rec = layers[i].recovery
        return (rec.effect or 0.0) if rec is not None else 0.0

    ari = sorted((i for i, r in enumerate(layers) if r.recovery is not None and significant(r.recovery.p_value_bh)),
                 key=lambda i: -ari_effect(i))
    ncut = sorted((i for i, r in enumerate(layers) if significant(r.structure.ncut.p_value_bh)),
                  key=lambda i: -(layers[i].structure.ncut.effect or 0.0))
    rest = sorted(range(len(layers)), key=lambda i: -max(layers[i].structure.ncut.effect or 0.0, ari_effect(i)))
    chosen: list[int] = []
    for i in ari[: max(1, n // 2) if ncut else n] + ncut + ari + rest:
        if i not in chosen and len(chosen) < n:
            chosen.append(i)
    return sorted(chosen)


# ---------------------------------------------------------------------------------------------- figures

CAPTIONS = {
    "control": (
        "Trained weights (circles) against the same architecture at random initialisation with the same "
        "settings (squares), one row per layer; the grey line is what training changed. {panels}Filled "
        "markers: BH-adjusted p < 0.05. A structure the control shows as well comes from the architecture "
        "and the null, not from training."),
    "control_ncut": "n-cut effect: reduction of the n-cut relative to the null mean (right: more clusterable). ",
    "control_ari": "ARI effect: ARI above its null mean (true branches only). ",
    "overview": (
        "Each row is an analysed layer, in network order. Left: how its units split into co-clusters "
        "(largest first; grey hatched: dead units with no outgoing weight).{panels} Look for filled dots: "
        "layers whose weights carry group structure beyond what their shapes alone produce."),
    "overview_z": (
        " Clusterability: z-score of the layer's normalised cut against its null (the same layer with "
        "{drawn}); negative means more clusterable than chance, filled dots have a BH-adjusted "
        "p < 0.05."),
    "overview_ari": (
        " Branch recovery: adjusted Rand index between the clusters and the true branches, for the layers "
        "that have branches; filled dots have a BH-adjusted p < 0.05."),
    "filters": (
        "Filters of the first conv layer, {layer}, as RGB images (each scaled to its own largest weight; "
        "grey is zero), ordered by their {order}. Frame colour: the unit's co-cluster, where the layer was "
        "analysed. In trained networks one end of the order tends to hold colour blobs and the other "
        "black-and-white edge detectors; random initial weights show noise."),
    "spectrum": (
        "Singular values of the downstream profile ({shape}; raw |W| {first}, degree-normalised {second}, whose "
        "first value is always 1 and is left out) against the null: its mean (dashed) and 95% band (shaded "
        "orange) over {drawn}, where the run stored them. Values above the band mean more low-rank "
        "structure than chance; a drop after the k-th value suggests k groups. The first raw value is mostly "
        "overall magnitude."),
    "embedding": (
        "Each dot is a unit of {layer}, placed by its coordinates on singular vectors 2 and 3 of the "
        "degree-normalised profile (the first is trivial). Left: true branch; right: the co-cluster found "
        "from the weights. Separate colour groups on the left mean the weights tell the branches apart; "
        "matching colourings mean the clusters recover them."),
    "embedding_plain": (
        "Each dot is a unit of {layer}, placed by its coordinates on singular vectors 2 and 3 of the "
        "degree-normalised profile (the first is trivial), coloured by the co-cluster found from the "
        "weights. The layer has no true branches, so there is no ground truth to colour by. Well separated "
        "colour groups mean the clusters are distinct in the spectral embedding."),
    "matrix": (
        "Connection magnitudes from the units of {layer} (columns) to their consumers' units (rows), both "
        "ordered by co-cluster, with white lines between clusters; values divided by the 99th percentile{binned}. "
        "Bright blocks on the diagonal mean modules: groups of units that feed separate groups of consumers."),
    "confusion": (
        "Units of {layer} counted by true branch (rows) and co-cluster (columns). One dominant cell per row "
        "and column means the branches are recovered from the weights; spread rows mean they are mixed."),
    "null": (
        "Observed statistics of {layer} (red line) against the null of {n} draws of {drawn} (grey): "
        "{how}. Where the observed value lies far outside the null, the axis keeps the null's shape and a red "
        "arrow at its edge points to the observed value, labelled with its distance from the null mean in null "
        "standard deviations. p = (r + 1) / (n + 1), r counting null draws at least as extreme."),
    "sheet": "All per-layer views of {layer}: spectrum, units on the singular vectors, ordered magnitudes, "
             "{middle}, nulls and the key numbers.",
    "clusterability": (
        "The normalised cut of the whole network's spectral clustering into k = {k} clusters (red line) "
        "against {n} null networks (grey histogram; '{null}' null: {null_what}). Lower n-cut means less "
        "weight crosses between clusters: a network left of its null is more clusterable than chance. "
        "p = (r + 1) / (n + 1), r counting null networks whose n-cut is at most the observed one."),
    "composition": (
        "Top: units in each of the k = {k} clusters of the whole network. Bottom: for each layer (rows, "
        "network order), the fraction of its units in each cluster (isolated units, with no weight, are in "
        "none). Clusters confined to a few consecutive layers follow depth; clusters spread across many "
        "layers cut across it."),
}

NULL_WHAT = {
    "shuffle": "every layer's BN-folded weights permuted within the layer",
    "degree": "every layer's magnitudes redrawn keeping each unit's total incoming and outgoing magnitude",
}


def _parts(n: int, size: int = OVERVIEW_ROWS) -> list[tuple[int, int]]:
    """(start, end) of the parts a figure with one row per layer is cut into: nearly equal, at most ``size``."""
    parts = max(1, -(-n // size))
    return [(n * p // parts, n * (p + 1) // parts) for p in range(parts)]


def _rows_height(n: int, base: float) -> float:
    """Height of a figure with one row per layer: readable rows, at most a page."""
    return min(9.0, base + 0.165 * max(n, 3))


def _part_key(key: str, p: int) -> str:
    return key if p == 0 else f"{key}_{p + 1}"


def _part_title(title: str, p: int, parts: list[tuple[int, int]]) -> str:
    if len(parts) == 1:
        return title
    lo, hi = parts[p]
    return f"{title} (layers {lo + 1}-{hi} of {parts[-1][1]})"


def _overview_infos(result: AnalysisResult) -> list[FigureInfo]:
    nd = network_data(result)
    has_z = any(v is not None for v in nd["ncut_z"])
    has_ari = any(v is not None for v in nd["ari"])
    z_text = CAPTIONS["overview_z"].format(drawn=null_noun(result.null)) if has_z else ""
    caption = CAPTIONS["overview"].format(panels=z_text
                                          + (CAPTIONS["overview_ari"] if has_ari else ""))
    parts = _parts(len(result.layers))
    infos = []
    for p, (lo, hi) in enumerate(parts):
        cut = {k: v[lo:hi] for k, v in nd.items()}
        # every part keeps all panels of the whole network, so that parts read alike
        draw = Drawing("network_figure", cut["names"], cut["fractions"], cut["dead"], cut["ncut_z"],
                       cut["ncut_significant"], cut["ari"], cut["ari_significant"], panels=(has_z, has_ari))
        key = _part_key("overview", p)
        infos.append(FigureInfo(key, _part_title("Structure across the network", p, parts), caption, draw=draw,
                                pdf_height=_rows_height(hi - lo, 1.45), pdf_span=2, stem=f"figures/{key}"))
    return infos


def _control_infos(result: AnalysisResult) -> list[FigureInfo]:
    """Trained against the random-init control (:meth:`AnalysisResult.comparison_rows`), when there is one."""
    rows = result.comparison_rows()
    if not rows:
        return []
    text = ""
    keys = []
    if any(r.ncut_effect is not None for r in rows):
        keys.append(("n-cut effect (right: more clusterable)", "ncut_effect", "ncut_effect_control", "ncut_p_bh",
                     "ncut_p_bh_control"))
        text += CAPTIONS["control_ncut"]
    if any(r.ari_effect is not None for r in rows):
        keys.append(("ARI effect (above its null mean)", "ari_effect", "ari_effect_control", "p_bh", "p_bh_control"))
        text += CAPTIONS["control_ari"]
    parts = _parts(len(rows))
    infos = []
    for p, (lo, hi) in enumerate(parts):
        part = rows[lo:hi]
        panels = [(label, [getattr(r, a) for r in part], [getattr(r, b) for r in part],
                   [significant(getattr(r, c)) for r in part], [significant(getattr(r, d)) for r in part])
                  for label, a, b, c, d in keys]
        key = _part_key("control", p)
        infos.append(FigureInfo(key, _part_title("Trained against the random-init control", p, parts),
                                CAPTIONS["control"].format(panels=text),
                                draw=Drawing("control_figure", [r.name for r in part], panels, model=result.model),
                                pdf_height=_rows_height(hi - lo, 1.7), pdf_span=2, stem=f"figures/{key}"))
    return infos


def _filters_info(arrays: Mapping[str, np.ndarray]) -> FigureInfo | None:
    if "filters" not in arrays:
        return None
    layer, order = str(arrays["filters_layer"]), str(arrays["filters_order"])
    labels = np.asarray(arrays["filters_labels"]) if len(arrays["filters_labels"]) else None
    images = np.asarray(arrays["filters"], dtype=float)
    rows = int(np.ceil(len(images) / 16)) if len(images) else 1
    return FigureInfo("filters", "First-layer filters", CAPTIONS["filters"].format(layer=layer, order=order),
                      layer=layer, draw=Drawing("filters_figure", images, labels, layer, order),
                      pdf_height=min(9.0, 1.0 + 0.46 * rows), pdf_span=2, stem="figures/filters", palette=False)


def _light(res: LayerResult) -> LayerResult:
    """The layer without its in-memory profile: what a figure needs, small enough to send to a worker."""
    return dataclasses.replace(res, profile=None) if getattr(res, "profile", None) is not None else res


def layer_figures(res: LayerResult, i: int, matrix: Mapping[str, Any] | None,
                  drawn: str = NULL_NOUN["shuffle"]) -> list[FigureInfo]:
    """The individual figures of one layer (spectrum, embedding, matrix, confusion, null), not yet drawn.

    A layer without true branches gets no confusion table, the cluster
    colouring alone in the embedding and the n-cut null alone. Their vector
    form is in the PDF; their files are PNG only (the summary figures also
    get an SVG).
    """
    shape = f"{res.shape[0]} consumer units x {res.shape[1]} units" if len(res.shape) == 2 else "profile"
    branched = res.branches is not None
    light = _light(res)
    stem = f"figures/{layer_file_stem(i, res.name)}"
    # with branches: spectrum, embedding (two panels), matrix | confusion, null (two panels), over two pages;
    # without: embedding | matrix, spectrum (panels stacked) | null, on one page
    spectrum = FigureInfo(
        f"spectrum:{i}", f"{res.name}: spectrum",
        CAPTIONS["spectrum"].format(shape=shape, first="left" if branched else "above",
                                    second="right" if branched else "below", drawn=drawn),
        layer=res.name, draw=Drawing("spectrum_figure", light), pdf_height=2.6 if branched else 3.5,
        pdf_span=2 if branched else 1, stem=f"{stem}_spectrum", svg=False)
    embedding = FigureInfo(
        f"embedding:{i}", f"{res.name}: embedding",
        CAPTIONS["embedding" if branched else "embedding_plain"].format(layer=res.name), layer=res.name,
        draw=Drawing("embedding_figure", light), pdf_height=3.0, pdf_span=2 if branched else 1,
        stem=f"{stem}_embedding", svg=False)
    matrix_info = None
    if matrix is not None:
        binned = f", then averaged into at most {MATRIX_MAX} x {MATRIX_MAX} bins" \
            if tuple(matrix["shape"]) != matrix["matrix"].shape else ""
        matrix_info = FigureInfo(
            f"matrix:{i}", f"{res.name}: matrix", CAPTIONS["matrix"].format(layer=res.name, binned=binned),
            layer=res.name, pdf_height=3.0, pdf_span=1, stem=f"{stem}_matrix", svg=False,
            draw=Drawing("matrix_figure", matrix["matrix"], matrix["row_labels"], matrix["col_labels"],
                         matrix["col_branches"], matrix["shape"], res.name))
    confusion = None
    if branched and res.branch_names:
        assert res.branches is not None  # branched
        table, _ = confusion_table(res.branches, res.clusters)
        ari = res.recovery.ari if res.recovery else None
        confusion = FigureInfo(
            f"confusion:{i}", f"{res.name}: confusion", CAPTIONS["confusion"].format(layer=res.name),
            layer=res.name, pdf_height=min(4.5, max(2.4, 0.3 * table.shape[0] + 1.6)), pdf_span=1,
            stem=f"{stem}_confusion", svg=False, draw=Drawing("confusion_figure", table, list(res.branch_names),
                                                              res.name, ari))
    draws = getattr(res, "null_draws", None)
    how = "histogram of the raw null draws" if draws else \
        "drawn as a normal curve with the null's mean and sd, because summary.json keeps only those"
    null = FigureInfo(
        f"null:{i}", f"{res.name}: null",
        CAPTIONS["null"].format(layer=res.name, n=res.structure.ncut.n, how=how, drawn=drawn),
        layer=res.name, draw=Drawing("null_figure", light, drawn=drawn),
        pdf_height=2.5 if res.recovery is not None else 3.5,
        pdf_span=2 if res.recovery is not None else 1, stem=f"{stem}_null", svg=False)
    order = [spectrum, embedding, matrix_info, confusion, null] if branched else [embedding, matrix_info, spectrum,
                                                                                  null]
    return [f for f in order if f is not None]


def _sheet_info(res: LayerResult, i: int, matrix: Mapping[str, Any] | None) -> FigureInfo:
    table = confusion_table(res.branches, res.clusters)[0] if res.branches is not None else None
    counts = None if table is not None else cluster_counts(res.clusters)
    middle = "clusters versus branches" if table is not None else "units per cluster"
    rows = plots.sheet_grid(res, table is not None, 3)[0]
    # a page holds two sheets of two panel rows (no branches) or one of three (branches), filling it
    height = 9.2 if rows > 2 else 4.45
    return FigureInfo(f"sheet:{i}", res.name, CAPTIONS["sheet"].format(layer=res.name, middle=middle),
                      layer=res.name, draw=Drawing("layer_sheet", _light(res), matrix, table, counts=counts, columns=3),
                      pdf_height=height, pdf_span=2, stem=f"figures/layers/{layer_file_stem(i, res.name)}",
                      raster=True, svg=False)


def figure_infos(result: AnalysisResult, arrays: Mapping[str, np.ndarray],
                 featured: Sequence[int] | None = None) -> list[FigureInfo]:
    """Every figure of a results folder's report, in report order, not yet drawn.

    The summary figures (overview, control with a random-init control,
    first-layer filters), the individual figures of the featured layers
    (PNG + SVG, vectors in the PDF), and one sheet per layer (PNG; an image
    in the PDF's appendix). :func:`modularity.output.report.build_reports`
    lays them out and draws each once.

    Parameters
    ----------
    result : AnalysisResult
    arrays : mapping
        Figure arrays (:func:`modularity.arrays.figure_arrays` or :func:`load_arrays`).
    featured : sequence of int, optional
        Layer indices with individual figures (default :func:`featured_layers`).
    """
    infos = _overview_infos(result) + _control_infos(result)
    filters = _filters_info(arrays)
    if filters is not None:
        infos.append(filters)
    featured = featured_layers(result) if featured is None else list(featured)
    for i in featured:
        infos += layer_figures(result.layers[i], i, _matrix_entry(arrays, i), null_noun(result.null))
    infos += [_sheet_info(res, i, _matrix_entry(arrays, i)) for i, res in enumerate(result.layers)]
    return infos


def clusterability_data(result: Any) -> dict[str, Any]:
    """Per-layer cluster composition of a :class:`~modularity.studies.clusterability.ClusterabilityResult`.

    Returns
    -------
    dict
        ``names`` (layers, network order), ``counts`` (layers x k units per
        cluster), ``fractions`` (counts over each layer's units), ``totals``
        (units per cluster), ``isolated`` (per layer) and ``spread`` (per
        cluster, the number of layers holding at least one of its units).
    """
    k = int(result.k)
    names = list(result.layers)
    counts = np.zeros((len(names), k), dtype=int)
    for r, name in enumerate(names):
        row = list(result.cluster_sizes.get(name, []))[:k]
        counts[r, :len(row)] = row
    sizes = np.asarray(result.layer_sizes, dtype=float)
    fractions = counts / np.where(sizes > 0, sizes, 1.0)[:, None]
    return {"names": names, "counts": counts, "fractions": fractions, "totals": counts.sum(axis=0).tolist(),
            "isolated": (np.asarray(result.layer_sizes, dtype=int) - counts.sum(axis=1)).tolist(),
            "spread": (counts > 0).sum(axis=0).tolist()}


def clusterability_infos(result: Any) -> list[FigureInfo]:
    """The figures of a clusterability report (the n-cut against its null; the clusters across layers)."""
    data = clusterability_data(result)
    title = f"{result.model}: whole-network n-cut vs its null"
    null_what = NULL_WHAT.get(result.null, f"the '{result.null}' null model")
    return [
        FigureInfo("clusterability", "Observed n-cut against the null",
                   CAPTIONS["clusterability"].format(k=result.k, n=len(result.null_ncuts), null=result.null,
                                                     null_what=null_what),
                   draw=Drawing("clusterability_figure", list(result.null_ncuts), result.ncut, result.k, title,
                                result.p_value),
                   pdf_height=3.4, pdf_span=2, stem="figures/clusterability"),
        FigureInfo("composition", "Clusters across the layers", CAPTIONS["composition"].format(k=result.k),
                   draw=Drawing("composition_figure", data["names"], data["fractions"], data["totals"]),
                   pdf_height=min(9.0, 2.4 + 0.15 * max(len(data["names"]), 4)), pdf_span=2,
                   stem="figures/composition"),
    ]


# ------------------------------------------------------------------------------------- tables and graphs

def write_tables(result: AnalysisResult, folder: str | Path) -> list[Path]:
    """Write ``layers.csv`` (one row per analysed layer), ``units.csv`` (one row per unit) and, with a
    random-init control, ``comparison.csv`` (trained against control) and ``control_layers.csv``."""
    folder = Path(folder)
    written = [write_rows(result.rows(), COLUMNS, folder / "layers.csv"),
               write_csv(unit_rows(result), folder / "units.csv")]
    if result.control is not None:
        written += [write_rows(result.comparison_rows(), COMPARISON, folder / "comparison.csv"),
                    write_rows(result.control.rows(), COLUMNS, folder / "control_layers.csv")]
    return written


def write_exports(result: AnalysisResult, graph: ChannelGraph, folder: str | Path,
                  profiles: Mapping[str, Profile], top_k: int | None = DEFAULT_TOP_K,
                  max_edges: int | None = DEFAULT_MAX_EDGES,
                  formats: Sequence[str] = ("graphml", "gexf", "node_link", "cytoscape"),
                  unit_formats: Sequence[str] | None = None, unit_layers: Sequence[str] | None = None) -> list[Path]:
    """Write the layer-level graph in ``formats`` and the unit-level graph in ``unit_formats``.

    Files: ``channel_graph<suffix>`` and ``unit_graph<suffix>``, suffixes from
    :data:`modularity.output.export.GRAPH_FORMATS`. ``unit_layers`` limits the
    unit graph to these analysed layers (default: all). See
    :func:`modularity.output.export.unit_graph` for ``top_k`` and ``max_edges``.
    """
    folder = Path(folder)
    unit_formats = formats if unit_formats is None else unit_formats
    written = [write_graph(layer_graph(graph, result), folder / f"channel_graph{GRAPH_FORMATS[f]}", f)
               for f in formats]
    if unit_formats:
        g = unit_graph(graph, result, profiles, top_k=top_k, max_edges=max_edges, layers=unit_layers)
        written += [write_graph(g, folder / f"unit_graph{GRAPH_FORMATS[f]}", f) for f in unit_formats]
    return written
