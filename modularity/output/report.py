"""HTML and PDF reports of a results folder, built from the same results and figures.

:func:`build_reports` lays out the PDF (:mod:`modularity.output.pdf`), draws
its pages in worker processes (:mod:`modularity.output.render`), each figure
once, on its page, at the size it has there (:mod:`modularity.output.pages`),
and writes

* ``report.pdf``: A4 portrait pages only (matplotlib and pypdf: no system
  libraries), the summary and featured figures as vector graphics, several to
  a page with numbered captions, the layer sheets of the appendix as images;
  the table flows over pages and column groups at 7 pt;
* ``report.html``: one self-contained file with every figure embedded once as
  a palette PNG cut from its PDF page (as wide as the report's column where
  the figure spans the page), a sortable per-layer table with a sticky header
  in its own scroll container (a few lines of inline JavaScript, no CDN), the
  run metadata, an auto-generated "Findings" text and the method. It reads at
  any width from a phone's 400 px up (checked in headless Chromium).

Columns with nothing to show (the branch columns of a network without
branches) are left out of both. Every p-value goes through one formatter,
:func:`modularity.output.plots.format_p`. :func:`rebuild_report` rebuilds
from a results folder alone (``python -m modularity report DIR``);
:func:`build_clusterability_report` writes the same kind of report for
whole-network clusterability.
"""

from __future__ import annotations

import base64
import math
import re
import shutil
import struct
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..arrays import restore_draws
from ..errors import ModularityError
from ..results import ALPHA, COLUMNS, COMPARISON, AnalysisResult, Column, LayerResult, load_summary
from ..results import significant as _sig
from .figures import FigureInfo, clusterability_data, clusterability_infos, figure_infos, load_arrays, write_tables
from .pages import PAGE_SIZE
from .pdf import PdfReport
from .plots import format_p, p_text
from .render import draw_pages, progress_bar
from .words import SMALL_NCUT_EFFECT, findings, method_sections, run_metadata

__all__ = ["findings", "method_sections", "run_metadata", "summary_columns", "build_reports",
           "write_html", "PdfReport", "PAGE_SIZE", "rebuild_report", "format_p", "break_at_dots",
           "clusterability_findings", "clusterability_method", "clusterability_metadata",
           "build_clusterability_report"]

_TEMPLATE = "report.html.j2"
_CLUSTERABILITY_TEMPLATE = "clusterability.html.j2"


# --------------------------------------------------------------------------------------------- content

def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}".rstrip("0").rstrip(".") or "0"


_TABLE_KEYS = ("name", "kind", "n_units", "n_branches", "k", "k_source", "ari", "ari_effect", "p", "p_bh",
               "ari_column_norms_only", "signal_ratio", "expected_ari", "verdict", "ncut", "ncut_null_mean",
               "ncut_effect", "ncut_z", "ncut_p", "ncut_p_bh", "within_share", "n_dead")
_TEXT_KEYS = ("name", "kind", "k_source")


_P_KEYS = ("p", "p_bh", "ncut_p", "ncut_p_bh")


def _empty(values: Sequence[Any]) -> bool:
    return all(v is None or (isinstance(v, float) and not math.isfinite(v)) for v in values)


def summary_columns(result: AnalysisResult | None = None) -> list[Column]:
    """The columns of the per-layer summary table (HTML and PDF), taken from :data:`~modularity.results.COLUMNS`.

    Given a result, columns with nothing to show are left out: those empty
    in every layer (the ARI columns of a network without branches, the null
    columns of a run without permutations), and ``branches`` when no layer
    has any.
    """
    by_key = {c.key: c for c in COLUMNS}
    keys = list(_TABLE_KEYS)
    if result is not None:
        rows = [r.row() for r in result.layers]
        keys = [k for k in keys if k == "name" or not _empty([getattr(row, k) for row in rows])]
        if all(row.n_branches == 0 for row in rows):
            keys.remove("n_branches")
    return [by_key[k] for k in keys]


def _summary_values(res: LayerResult, columns: Sequence[Column] | None = None) -> list[Any]:
    row = res.row()
    return [getattr(row, c.key) for c in columns] if columns is not None else [getattr(row, k) for k in _TABLE_KEYS]


def _row_significant(res: LayerResult) -> bool:
    row = res.row()
    return _sig(row.ncut_p_bh) or _sig(row.p_bh)


def _shown(v: Any, key: str = "") -> str:
    if key in _P_KEYS:
        return format_p(v)
    if isinstance(v, float):
        return _fmt(v)
    return "–" if v is None else str(v)


def break_at_dots(text: str) -> Any:
    """HTML-escaped ``text`` with a line-break opportunity (``<wbr>``) after every dot between
    non-digits and digits alike (``_blocks.8.<wbr>_expand``), but not inside a number (``0.05``).

    Examples
    --------
    >>> str(break_at_dots("_blocks.8._expand_conv <b>"))
    '_blocks.<wbr>8.<wbr>_expand_conv &lt;b&gt;'
    >>> str(break_at_dots("p = 0.05."))
    'p = 0.05.'
    """
    from markupsafe import Markup, escape

    escaped = str(escape(text))
    return Markup(re.sub(r"(?<!\d)\.(?=[^\s.])|(?<=\d)\.(?=[^\s\d.])", ".<wbr>", escaped))


# ------------------------------------------------------------------------------------------------ HTML

def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ModularityError("figure file is not a PNG")
    return struct.unpack(">II", data[16:24])


def _embed(folder: Path, info: FigureInfo, number: int | None = None, inline: bool = True) -> dict[str, Any]:
    """A figure as the template shows it: its PNG inline (base64), or linked by its path in the folder."""
    path = folder / info.png
    if not path.is_file():
        raise ModularityError(f"figure {info.png} is missing from {folder}")
    data = path.read_bytes()
    w, h = _png_size(data)
    svg = next((f.as_posix() for f in info.files if f.suffix == ".svg"), None)
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii") if inline else info.png.as_posix()
    return {"title": info.title, "caption": info.caption, "src": src, "width": w, "height": h, "svg": svg,
            "anchor": "fig-" + info.key.replace(":", "-"), "number": number}


_FILES = [
    ("report.pdf", "the same report as a PDF"),
    ("summary.json", "settings, provenance and every per-layer number (read the folder with modularity.load_summary)"),
    ("layers.csv", "one row per analysed layer"), ("units.csv", "one row per unit: branch, cluster, coordinates"),
    ("comparison.csv", "trained against the random-init control, one row per layer"),
    ("control_layers.csv", "the random-init control's per-layer table"),
    ("arrays.npz", "per-unit vectors (clusters, spectra, coordinates), null draws, and the reordered magnitude "
                   "matrices and first-layer filters the figures use"),
    ("channel_graph.graphml", "layer-level graph (GraphML: networkx, yEd)"),
    ("channel_graph.gexf", "layer-level graph (GEXF: Gephi)"),
    ("channel_graph.node_link.json", "layer-level graph (networkx node-link JSON)"),
    ("channel_graph.cytoscape.json", "layer-level graph (Cytoscape.js JSON)"),
    ("unit_graph.graphml", "unit-level graph, strongest connections per consumer unit (GraphML)"),
    ("unit_graph.graphml.gz", "unit-level graph, every connection (gzipped GraphML)"),
    ("unit_graph.gexf", "unit-level graph (GEXF: Gephi)"),
    ("unit_graph.node_link.json", "unit-level graph (networkx node-link JSON)"),
    ("unit_graph.cytoscape.json", "unit-level graph (Cytoscape.js JSON)"),
    ("figures/", "every figure as PNG, summary and featured-layer figures also as SVG"),
]

_CLUSTERABILITY_FILES = [
    ("report.pdf", "the same report as a PDF"),
    ("clusterability.json", "every number of the run, the cluster of every unit included"),
    ("clusterability_layers.csv", "per layer: units, isolated units and units in each cluster"),
    ("figures/", "the figures as PNG and SVG"),
]


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("modularity.output", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["wbr"] = break_at_dots
    return env


def _table(columns: Sequence[Column], rows: Sequence[Sequence[Any]], significant: Sequence[bool],
           text_keys: Sequence[str] = _TEXT_KEYS) -> dict[str, Any]:
    """The per-layer table as the template wants it: header cells and rows of (sort key, shown) cells."""
    body = []
    for values, sig in zip(rows, significant):
        cells = [{"sort": "" if v is None else (repr(float(v)) if isinstance(v, float) else v),
                  "shown": _shown(v, col.key), "text": col.key in text_keys, "name": i == 0}
                 for i, (col, v) in enumerate(zip(columns, values))]
        body.append({"cells": cells, "sig": sig})
    return {"columns": columns, "rows": body}


def _table_note(result: AnalysisResult, columns: Sequence[Column]) -> str:
    shown = {c.key for c in columns}
    notes = []
    if "ari" not in shown:
        notes.append("No analysed layer has true branches, so the branch-recovery columns (ARI and its p-values) "
                     "are left out.")
    if "ncut_p" not in shown:
        notes.append("No null was computed (0 permutations), so there are no p-values.")
    return " ".join(notes)


def write_html(result: AnalysisResult, figures: Sequence[FigureInfo], folder: str | Path) -> Path:
    """Write ``report.html``: the summary and featured figures inline (base64 PNG), the layer sheets linked.

    The report's own figures travel with the file; the appendix of layer
    sheets shows the PNG files in ``figures/layers/`` beside it (and the PDF
    holds them too), so no image is stored twice in the HTML and the folder
    stays small.
    """
    from .. import __version__

    folder = Path(folder)
    columns = summary_columns(result)
    table = _table(columns, [_summary_values(r, columns) for r in result.layers],
                   [_row_significant(r) for r in result.layers])
    main = [f for f in figures if not f.key.startswith("sheet:")]
    groups: list[dict[str, Any]] = []
    for n, f in enumerate(main, 1):
        heading = "Across the network" if f.layer is None or f.key == "filters" else f"Layer {f.layer}"
        if not groups or groups[-1]["heading"] != heading:
            groups.append({"heading": heading, "figures": []})
        groups[-1]["figures"].append(_embed(folder, f, n))
    # the layer sheets (about 50 for a whole network) are linked, not inlined: each image is stored once
    sheets = [_embed(folder, f, inline=False) for f in figures if f.key.startswith("sheet:")]
    files = [{"href": name, "name": name, "what": what} for name, what in _FILES if (folder / name).exists()]
    comparison = None
    if result.control is not None:
        rows = result.comparison_rows()
        shown = [c for c in COMPARISON if c.key == "name" or not _empty([getattr(r, c.key) for r in rows])]
        comparison = _table(shown, [[getattr(r, c.key) for c in shown] for r in rows],
                            [_sig(r.ncut_p_bh) or _sig(r.p_bh) for r in rows])
    html = _environment().get_template(_TEMPLATE).render(
        comparison=comparison, control_weights=None if result.control is None else result.control.provenance,
        title=f"What the weights of {result.model} say about its structure", page_title=result.model,
        model=result.model, findings=findings(result), meta=run_metadata(result), command=result.command,
        table=table, table_note=_table_note(result, columns), n_permutations=result.n_permutations,
        n_layers=len(result.layers), alpha=ALPHA, groups=groups, sheets=sheets, method=method_sections(result),
        files=files, version=__version__, rebuild=True)
    path = folder / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def _front_blocks(title: str, paragraphs: Sequence[str], meta: Sequence[tuple[str, str]],
                  command: str) -> list[tuple[str, str]]:
    blocks = [("title", title), ("heading", "Findings")] + [("text", p) for p in paragraphs]
    blocks += [("heading", "What was run")] + [("line", f"{k}: {v}") for k, v in meta]
    if command:
        blocks += [("line", "Command line:"), ("mono", command)]
    return blocks


def _pdf_front(pdf: PdfReport, result: AnalysisResult) -> None:
    pdf.text(_front_blocks(f"What the weights of {result.model} say about its structure", findings(result),
                                 run_metadata(result), result.command))
    columns = summary_columns(result)
    header = [c.label for c in columns]
    rows = [[_shown(v, c.key) for c, v in zip(columns, _summary_values(r, columns))] for r in result.layers]
    note = (f"Bold: BH-adjusted p < {ALPHA} for the n-cut or the ARI. " + _table_note(result, columns)).strip()
    pdf.table(header, rows, "Per-layer summary", bold=[_row_significant(r) for r in result.layers], note=note)
    comparison = result.comparison_rows()
    if comparison:
        assert result.control is not None  # the comparison is with it
        shown = [c for c in COMPARISON if c.key == "name" or not _empty([getattr(r, c.key) for r in comparison])]
        pdf.table([c.label for c in shown], [[_shown(getattr(r, c.key), c.key) for c in shown] for r in comparison],
                        "Trained against the random-init control",
                        bold=[_sig(r.ncut_p_bh) or _sig(r.p_bh) for r in comparison],
                        note=f"The same architecture with {result.control.provenance}, the same settings and layers. "
                             "n-cut effect gap: the trained n-cut effect minus the control's.")


def _method_blocks(title: str, sections: Sequence[tuple[str, list[str]]]) -> list[tuple[str, str]]:
    blocks: list[tuple[str, str]] = [("title", title)]
    for heading, paragraphs in sections:
        blocks.append(("heading", heading))
        blocks.extend(("text", p) for p in paragraphs)
    return blocks


# ----------------------------------------------------------------------------------------------- build

def build_reports(result: AnalysisResult, arrays: Mapping[str, np.ndarray], folder: str | Path,
                  progress: bool = False, jobs: int | None = None, alongside: Sequence[Callable[[], Any]] = (),
                  bar: Any = None) -> list[Path]:
    """Draw the figures and write ``report.pdf`` and ``report.html`` into ``folder``.

    The PDF (A4 portrait throughout) holds: findings and run metadata, the
    per-layer table, the summary figures, the featured layers' figures, the
    method, and an appendix of every layer's sheet (two to a page, one with
    true branches). Every figure is drawn once, on its page, and captioned;
    its PNG (and SVG) are cut from there.

    Parameters
    ----------
    result : AnalysisResult
    arrays : mapping
        Figure arrays (:func:`modularity.arrays.figure_arrays` or :func:`load_arrays`).
    folder : str or Path
    progress : bool
        A progress bar over the pages (when ``bar`` is not given).
    jobs : int, optional
        Drawing processes (None: one per available core; 1: this process).
    alongside : sequence of callables
        Other work for this process while the pages are drawn (each counts as
        a step of the bar).
    bar : progress bar, optional
        One to advance instead of a new one; its total grows by this report's steps (its pages and the HTML).

    Returns
    -------
    list of Path
        Figure files, ``report.pdf`` and ``report.html``.
    """
    folder = Path(folder)
    figures, pdf = plan_report(result, arrays, folder)
    own = bar is None
    if own:
        bar = progress_bar(progress, len(pdf.pages) + len(alongside) + 1, "report")
    else:
        bar.total += len(pdf.pages) + 1
        bar.refresh()
    try:
        rendered = draw_pages(pdf.pages, folder, jobs, bar, alongside)
        _record_files(figures, rendered)
        pdf.write([r.pdf for r in rendered])
        html = write_html(result, figures, folder)
        bar.update(1)
    finally:
        if own:
            bar.close()
    return [folder / f for info in figures for f in info.files] + [pdf.path, html]


def plan_report(result: AnalysisResult, arrays: Mapping[str, np.ndarray],
                folder: str | Path) -> tuple[list[FigureInfo], PdfReport]:
    """The report's figures and its PDF laid out page by page, nothing drawn yet."""
    figures = figure_infos(result, arrays)
    pdf = PdfReport(Path(folder) / "report.pdf", f"modularity report: {result.model}")
    _pdf_front(pdf, result)
    pdf.figures([f for f in figures if f.layer is None or f.key == "filters"], "Across the network")
    pdf.figures([f for f in figures if ":" in f.key and not f.key.startswith("sheet:")], "Featured layer",
                by_layer=True)
    pdf.text(_method_blocks("Method and null", method_sections(result)))
    pdf.figures([f for f in figures if f.key.startswith("sheet:")], "Appendix: every layer")
    return figures, pdf


def _record_files(figures: Sequence[FigureInfo], rendered: Sequence[Any]) -> None:
    """Give every figure the files (and PNG size) its page wrote."""
    files: dict[str, list[str]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for page in rendered:
        files.update(page.files)
        sizes.update(page.sizes)
    for info in figures:
        info.files = [Path(f) for f in files.get(info.key, [])]
        info.pixels = sizes.get(info.key)


def read_results(folder: str | Path) -> tuple[AnalysisResult, dict[str, np.ndarray]]:
    """A results folder's records and figure arrays, every check applied: what its report is drawn from.

    ``summary.json`` with the per-unit vectors and null draws it keeps in
    ``arrays.npz`` (:func:`~modularity.results.load_summary`), and the
    figures' arrays (:func:`~modularity.output.figures.load_arrays`). ``analyze``
    draws its report from these too, so ``report DIR`` redraws the same one.
    """
    result = load_summary(folder)
    arrays = load_arrays(folder, result)
    restore_draws(result, arrays)  # folders whose summary.json predates unit_arrays keep the draws here alone
    return result, arrays


def rebuild_report(folder: str | Path, progress: bool = False, jobs: int | None = None,
                   loaded: tuple[AnalysisResult, Mapping[str, np.ndarray]] | None = None) -> list[Path]:
    """Re-draw figures, tables, HTML and PDF of a results folder from summary.json and arrays.npz.

    Nothing is recomputed and the model is not needed. Graph files
    (GraphML, GEXF, JSON) are left as they are, and so are the CSV tables
    the analysis wrote at full precision (``summary.json`` keeps 7
    significant digits); a table that is missing is written again.
    ``loaded``: the folder's :func:`read_results`, when the caller has read
    it already (``report DIR`` reads it before it copies the folder).

    Raises
    ------
    ModularityError
        If the folder lacks summary.json or arrays.npz, or they come from another version.
    """
    folder = Path(folder)
    result, arrays = read_results(folder) if loaded is None else loaded
    tables = ("layers.csv", "units.csv") + (("comparison.csv", "control_layers.csv") if result.control else ())
    written: list[Path] = []
    alongside = [] if all((folder / name).is_file() for name in tables) else \
        [lambda: written.extend(write_tables(result, folder))]
    return build_reports(result, arrays, folder, progress=progress, jobs=jobs, alongside=alongside) + written


# ------------------------------------------------------------------------------- whole-network clusterability

_NULL_TEXT = {
    "shuffle": "every layer's BN-folded weights are permuted at random within the layer (Filan et al. 2021), "
               "which keeps each layer's weight distribution and the architecture but destroys where the large "
               "weights sit",
    "degree": "every layer's connection magnitudes are redrawn keeping each unit's total incoming and outgoing "
              "magnitude, so that unequal unit scales (batch-norm folding makes them very unequal in trained "
              "networks) cannot by themselves make the network look clusterable",
}


def clusterability_findings(result: Any) -> list[str]:
    """Plain-language paragraphs on a whole-network clusterability result (p-values via :func:`format_p`)."""
    layers = len(result.layers)
    out = [f"{result.model} ({result.weights or 'weights not recorded'}): one graph over the units of its "
           f"{layers} layers ({result.n_nodes} units, {result.n_edges} weighted edges, {result.n_isolated} isolated "
           f"units without any weight), split into k = {result.k} clusters by normalised spectral clustering. "
           f"Its normalised cut is {result.ncut:.4f} (lower: less weight crosses between clusters)."]
    if not result.null_ncuts or result.null_mean is None:
        out.append("No null networks were drawn (0 shuffles), so there is no test: the n-cut above cannot be "
                   "compared with chance.")
        return out
    effect = (result.null_mean - result.ncut) / result.null_mean if result.null_mean else None
    z = "undefined (the null has no spread)" if result.z is None else f"{result.z:.2f}"
    out.append(f"Against {len(result.null_ncuts)} null networks ('{result.null}' null) whose n-cut averages "
               f"{result.null_mean:.4f} (sd {result.null_sd or 0:.4f}): z = {z}, empirical {p_text(result.p_value)}"
               + (f"; the observed n-cut is {100 * effect:.1f}% {'lower' if effect >= 0 else 'higher'} than the "
                  "null's mean" if effect is not None else "") + ".")
    if _sig(result.p_value) and result.ncut < result.null_mean:
        leaving = result.ncut / result.k if result.k else 1.0  # mean over clusters of cut / vol
        held = ("most of a cluster's connection weight stays inside it" if leaving < 1 / 3 else
                "most of a cluster's connection weight still leaves it, so the clusters are a tendency, not "
                "separate modules")
        verdict = (f"The network is more clusterable than its null at p < {ALPHA}: its clusters cut less weight than "
                   f"those of the '{result.null}' null's networks do; on average {held} (cut / volume "
                   f"{leaving:.2f} per cluster; below 1/3 means more than half of its edge weight stays inside).")
        if effect is not None and effect < SMALL_NCUT_EFFECT:
            verdict += (f" The effect is small ({100 * effect:.1f}% of the null's mean): significant, but the "
                        "clusters are only slightly more separate than chance.")
    else:
        verdict = (f"The network is not detectably more clusterable than its null (p ≥ {ALPHA} or an n-cut above "
                   "the null's mean).")
    floor = 1 / (len(result.null_ncuts) + 1)
    verdict += (f" With {len(result.null_ncuts)} null networks p cannot fall below 1/({len(result.null_ncuts)}+1) = "
                f"{format_p(floor)}" + ("; use --shuffles 100 or more for a real test." if floor >= ALPHA else "."))
    out.append(verdict)
    data = clusterability_data(result)
    spread = data["spread"]
    if spread:
        narrow = sum(1 for s in spread if s <= max(1, layers // 10))
        out.append(f"The clusters span between {min(spread)} and {max(spread)} of the {layers} layers; "
                   f"{narrow} of the {result.k} lie within {max(1, layers // 10)} layer"
                   f"{'s' if max(1, layers // 10) != 1 else ''} or fewer (see 'Clusters across the layers').")
    return out


def clusterability_metadata(result: Any, extra: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs describing a clusterability run."""
    extra = dict(extra or {})
    return [
        ("model", result.model), ("weights", result.weights or "not recorded"),
        ("weights sha256", extra.get("weights_sha256") or "not recorded"),
        ("provenance", extra.get("provenance") or "–"),
        ("clusters k", str(result.k)), ("null model", result.null), ("null networks", str(result.n_shuffles)),
        ("seed", str(result.seed)), ("linear layers", "included" if result.include_linear else "left out"),
        ("graph", f"{result.n_nodes} units in {len(result.layers)} layers, {result.n_edges} edges, "
                  f"{result.n_isolated} isolated"),
        ("run time", f"{result.runtime_s:.1f} s"),
    ]


def clusterability_method(result: Any) -> list[tuple[str, list[str]]]:
    """The "Method and null" text of a clusterability report, with this run's settings filled in."""
    null = _NULL_TEXT.get(result.null, f"the '{result.null}' null model redraws every layer's weights")
    return [
        ("The graph", [
            "Following Filan et al. (2021, 'Clusterability in Neural Networks'), the whole network becomes one "
            "undirected weighted graph. Its nodes are the units (output channels) of every conv layer and the "
            "input channels" + (", and the features of every linear layer" if result.include_linear else "")
            + ". The edge between a producer unit and a consumer unit weighs the L1 norm of the kernel slice "
            "that connects them, times the consumer's folded batch-norm scale. Concatenations are not nodes: "
            "their consumers connect straight to the layers that produced each channel, and a residual stream "
            "links every layer that writes into it."]),
        ("Clustering and n-cut", [
            f"The graph is split into k = {result.k} clusters by normalised spectral clustering (Shi and Malik): "
            "the k leading eigenvectors of D^-1/2 A D^-1/2, rescaled by D^-1/2, then k-means. The normalised "
            "cut, the sum over clusters of cut(k) / vol(k), measures how much of each cluster's weight leaves "
            "it: 0 for disconnected clusters, up to k. Isolated units (no non-zero edge) take no part."]),
        ("The null and the p-value", [
            f"Each null network is the same architecture whose weights are redrawn: {null}. The null network is "
            f"clustered the same way and its n-cut recorded ({result.n_shuffles} networks, seed {result.seed}). "
            "The p-value is empirical, p = (r + 1) / (n + 1), where r counts null networks whose n-cut is at most "
            "the observed one; z = (observed - null mean) / null sd; the effect size is the observed n-cut's "
            f"reduction relative to the null mean. The network counts as more clusterable when p < {ALPHA}."]),
    ]


def _clusterability_table(result: Any) -> tuple[list[Column], list[list[Any]]]:
    data = clusterability_data(result)
    columns = [Column("layer", "layer", "layer, in network order"), Column("n_units", "units", "units of the layer"),
               Column("n_isolated", "isolated", "units without any weight (in no cluster)"),
               Column("n_clusters", "clusters", "clusters holding at least one of the layer's units"),
               Column("main", "main cluster", "the cluster holding most of the layer's units"),
               Column("main_share", "share", "fraction of the layer's units in its main cluster")]
    columns += [Column(f"cluster_{c}", str(c), f"units of the layer in cluster {c}") for c in range(result.k)]
    rows = []
    for name, size, counts, isolated in zip(data["names"], result.layer_sizes, data["counts"], data["isolated"]):
        main = int(np.argmax(counts)) if counts.sum() else None
        share = float(counts[main]) / size if main is not None and size else None
        rows.append([name, int(size), int(isolated), int((counts > 0).sum()), main, share]
                    + [int(v) for v in counts])
    return columns, rows


def build_clusterability_report(result: Any, folder: str | Path, extra: Mapping[str, Any] | None = None,
                                progress: bool = False, jobs: int | None = None) -> list[Path]:
    """Write the figures, ``report.html`` and ``report.pdf`` of a whole-network clusterability result.

    Parameters
    ----------
    result : ClusterabilityResult
    folder : str or Path
        Folder to write into (it must exist).
    extra : mapping, optional
        ``weights_sha256`` and ``provenance`` of the model, for the run metadata.
    progress : bool
        A progress bar over the pages.
    jobs : int, optional
        Drawing processes (None: one per available core).

    Returns
    -------
    list of Path
        Figure files, ``report.pdf`` and ``report.html``.
    """
    from .. import __version__

    folder = Path(folder)
    figures = clusterability_infos(result)
    columns, values = _clusterability_table(result)
    text_keys = ("layer",)
    meta = clusterability_metadata(result, extra)
    title = f"How clusterable is {result.model}?"
    paragraphs = clusterability_findings(result)
    pdf = PdfReport(folder / "report.pdf", f"modularity clusterability report: {result.model}")
    pdf.text(_front_blocks(title, paragraphs, meta, result.command))
    pdf.figures(figures, "Figures")
    pdf.table([c.label for c in columns], [[_shown(v) for v in r] for r in values],
              "Units per layer and cluster", note="Cluster columns count the layer's units in each of the "
              f"k = {result.k} clusters of the whole network.")
    pdf.text(_method_blocks("Method and null", clusterability_method(result)))
    with progress_bar(progress, len(pdf.pages), "report", "page") as bar:
        rendered = draw_pages(pdf.pages, folder, jobs, bar)
    _record_files(figures, rendered)
    pdf.write([r.pdf for r in rendered])
    shutil.copyfile(folder / figures[0].png, folder / "clusterability_null.png")  # the file earlier versions wrote
    table = _table(columns, values, [False] * len(values), text_keys)
    files = [{"href": name, "name": name, "what": what} for name, what in _CLUSTERABILITY_FILES
             if (folder / name).exists()]
    html = _environment().get_template(_CLUSTERABILITY_TEMPLATE).render(
        title=title, page_title=f"clusterability of {result.model}", findings=paragraphs, meta=meta,
        command=result.command, table=table,
        groups=[{"heading": "", "figures": [_embed(folder, f, n) for n, f in enumerate(figures, 1)]}],
        method=clusterability_method(result), files=files, version=__version__, k=result.k)
    path = folder / "report.html"
    path.write_text(html, encoding="utf-8")
    return [folder / f for info in figures for f in info.files] + [pdf.path, path]
