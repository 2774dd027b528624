"""HTML and PDF reports of a results folder, built from the same results and figures.

:func:`build_reports` draws the figures once (via :func:`modularity.outputs.draw_figures`),
saving each as PNG (and SVG) and appending it with its caption to ``report.pdf``
(matplotlib ``PdfPages``: no system libraries), then writes ``report.html``: one
self-contained file with every figure embedded as a base64 PNG, a sortable
per-layer table (a few lines of inline JavaScript, no CDN), the run metadata, an
auto-generated "Findings" text and the method. :func:`rebuild_report` does the
same from a results folder alone (``python -m modularity report DIR``).
"""

from __future__ import annotations

import base64
import math
import struct
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from ..errors import ModularityError
from .figures import FigureInfo, draw_figures, load_arrays, quiet_glyphs, write_tables
from ..results import ALPHA, COLUMNS, AnalysisResult, Column, LayerResult, load_summary
from ..results import significant as _sig

__all__ = ["findings", "method_sections", "run_metadata", "summary_columns", "build_reports",
           "write_html", "PdfReport", "rebuild_report"]

_A4 = (8.27, 11.69)
_TEMPLATE = "report.html.j2"


# --------------------------------------------------------------------------------------------- content

def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}".rstrip("0").rstrip(".") or "0"


def _names(layers: Sequence[LayerResult], n: int = 3) -> str:
    shown = [f"{r.name}" for r in layers[:n]]
    more = f" and {len(layers) - n} more" if len(layers) > n else ""
    return ", ".join(shown) + more


def findings(result: AnalysisResult) -> list[str]:
    """A few plain-language paragraphs on what the weights say, generated from the numbers.

    Covers: how many layers are more clusterable than their shuffled-weights
    nulls at BH-adjusted p < 0.05, how well true branches are recovered (best
    layers, with the scale controls), dead units, and the limits the number of
    permutations puts on the p-values.
    """
    layers = result.layers
    n = len(layers)
    out = [f"{result.model} ({result.weights} weights): {n} producer layer{'s' if n != 1 else ''} analysed, "
           f"each against up to {result.n_permutations} draws of the '{result.null}' null"
           + (f" (sequential stopping after {result.sequential_h} draws as extreme)" if result.sequential_h else "")
           + (f"; branch recovery against {result.n_label_permutations} label permutations where the units are "
              "exchangeable under the null" if result.n_label_permutations else "") + "."]
    if result.n_permutations == 0:
        out.append("No null was computed (0 permutations), so there are no p-values: the clusters below are "
                   "what the weights suggest, without a test of whether chance would suggest the same.")
    elif 1 / (result.n_permutations + 1) >= ALPHA:
        out.append(f"With {result.n_permutations} null draws no n-cut p-value can fall below "
                   f"1/({result.n_permutations}+1) = {1 / (result.n_permutations + 1):.3f}, so no layer can be "
                   f"called more clusterable at p < {ALPHA}; re-run with --permutations 100 or more for a real "
                   "test.")
    clusterable = sorted((r for r in layers if _sig(r.structure.ncut.p_value_bh)),
                         key=lambda r: -(r.structure.ncut.effect or 0.0))
    if result.n_permutations:
        if clusterable:
            out.append(f"{len(clusterable)} of {n} layers are more clusterable than their null (normalised cut "
                       f"lower than the null, BH-adjusted p < {ALPHA}): their units split into groups that "
                       f"connect mostly within themselves more than chance arrangements of the same weights do. "
                       f"Largest effects: {_strongest_ncut(clusterable)}.")
            top = clusterable[0].structure.ncut.effect or 0.0
            if top < SMALL_NCUT_EFFECT:
                out.append(f"These effects are significant but small: the largest n-cut reduction is "
                           f"{100 * top:.1f}% of the null's mean, so the groups are only slightly more separate "
                           "than chance. Precision (many units, many draws) makes small effects significant.")
        else:
            out.append(f"No layer is more clusterable than its null at BH-adjusted p < {ALPHA}: the "
                       "connection magnitudes look like random rearrangements of themselves, as expected of "
                       "untrained (randomly initialised) weights or of layers without modules.")
    out.extend(_branch_findings(result))
    dead = sum(r.n_dead for r in layers)
    if dead:
        worst = max(layers, key=lambda r: r.n_dead)
        out.append(f"{dead} units have no outgoing weight (dead) and were left out of the clustering; "
                   f"most in {worst.name} ({worst.n_dead} of {worst.n_units}).")
    return out


def _strongest_ncut(layers: Sequence[LayerResult]) -> str:
    parts = []
    for r in layers[:3]:
        d = r.structure.ncut
        z = f", z = {d.z:.1f}" if d.z is not None else ""
        parts.append(f"{r.name} (n-cut {_fmt(d.observed)} vs {_fmt(d.null_mean)}: "
                     f"{100 * (d.effect or 0.0):.1f}% lower{z})")
    return "; ".join(parts) + (f"; and {len(layers) - 3} more" if len(layers) > 3 else "")


def _branch_findings(result: AnalysisResult) -> list[str]:
    branched = [r for r in result.layers if r.recovery is not None]
    if not branched:
        return ["No analysed layer has true branches (concatenations or grouped convolutions), so there is no "
                "ground truth to score against: the clusters show the grouping the weights suggest on their own."]
    recovered = sorted((r for r in branched if _sig(r.recovery.p_value_bh)),
                       key=lambda r: -(r.recovery.effect or 0.0))
    out = [f"{len(branched)} analysed layer{'s have' if len(branched) != 1 else ' has'} true branches "
           f"(concatenations or grouped convolutions). The clusters found from the weights recover them beyond the "
           f"null (ARI, BH-adjusted p < {ALPHA}) in {len(recovered)} of {len(branched)}."]
    if not recovered:
        out[0] += " No layer's branches are recovered beyond chance."
        return out
    out[0] += " Best recovered: " + "; ".join(
        f"{r.name} (ARI {_fmt(r.recovery.ari)}, NMI {_fmt(r.recovery.nmi)}, null ARI "
        f"{_fmt(r.recovery.null_ari_mean)}, p_BH {_fmt(r.recovery.p_value_bh)})" for r in recovered[:3]) + "."
    if (recovered[0].recovery.effect or 0.0) < SMALL_ARI_EFFECT:
        out.append(f"The recovery is significant but weak: the best ARI is {_fmt(recovered[0].recovery.ari)} "
                   "(1 would be the branches exactly), so the weights tell the branches apart only slightly.")
    best = recovered
    top = best[0].recovery
    row = best[0].row()
    unit, norms = row["ari_unit_norm_columns"], row["ari_column_norms_only"]
    if unit is not None and norms is not None and (top.ari or 0) > 0.05:
        if unit >= 0.5 * top.ari and norms < 0.5 * top.ari:
            verdict = "so the branches differ in their pattern of connections, not just in scale"
        elif norms >= 0.5 * top.ari and unit < 0.5 * top.ari:
            verdict = "so much of the recovery comes from the branches' different overall scale, not pattern"
        else:
            verdict = "so both pattern and scale contribute"
        out.append(f"Scale controls for {best[0].name}: columns scaled to unit norm give ARI {_fmt(unit)}; the "
                   f"column norms alone give ARI {_fmt(norms)}, {verdict}.")
    return out


def method_sections(result: AnalysisResult) -> list[tuple[str, list[str]]]:
    """The "Method and null" text: (heading, paragraphs), with this run's settings filled in."""
    red = {"l1": "L1 norm (sum of absolute values)", "l2": "L2 norm", "max": "largest absolute value"}.get(
        result.reduction, result.reduction)
    expand = {
        "none": "Connections are taken as they are, without looking through intermediate layers.",
        "depthwise": "Depthwise consumers (one input channel per unit) are looked through: the profile uses the "
                     "layers that read the depthwise conv, composing the two magnitude matrices.",
        "product": "Depthwise consumers and 1x1 bottlenecks are looked through by multiplying magnitude matrices "
                   "(ignoring the non-linearity between them).",
        "signed": "Depthwise consumers and 1x1 bottlenecks are looked through by composing the signed kernels and "
                  "taking the magnitude of the result.",
    }.get(result.expand, result.expand)
    n = result.n_permutations
    return [
        ("Downstream profile", [
            "A unit is an output channel of a conv layer or an output feature of a linear layer. The magnitude "
            f"of the connection from producer unit i to consumer unit j is the {red} of the kernel slice "
            "W[j, i, :, :], zero where conv groups forbid the connection, times the consumer's folded batch-norm "
            "scale |gamma| / sqrt(var + eps). A layer's downstream profile stacks the magnitudes from its units "
            "(columns) to the units of every layer that reads it (rows). Concatenations count as layers whose "
            "units carry true branch labels (which input each channel came from); so do the inputs of grouped "
            "convolutions (which group reads them). " + expand]),
        ("SVD variants", [
            "The profile is factorised three ways. Raw |W|: its first singular vector is mostly each unit's overall "
            "magnitude. Row/column-centred |W| (double centring) removes those means, so its leading vectors show "
            "contrasts between units. Degree-normalised D_r^-1/2 |W| D_c^-1/2 is the bipartite spectral form: its "
            "first singular vector is trivial (the square roots of the degrees), and vectors 2, 3, ... place units "
            "that connect to the same consumers close together. The unit scatter plots use vectors 2 and 3 of "
            "this form; the spectrum plots show the raw and normalised singular values against the null band."]),
        ("Co-clustering and scores", [
            "Producer units (columns) and consumer units (rows) are clustered together by spectral co-clustering "
            "(Dhillon's bipartite spectral partitioning, as scikit-learn's SpectralCoclustering) into k groups: "
            "k is the number of true branches where the layer has them, otherwise chosen by the largest eigengap "
            "(or set with --k). Units with no outgoing weight are dead and left out (label -1). The normalised cut "
            "of the partition, the sum over clusters of cut(k) / vol(k), measures how much weight crosses between "
            "groups: lower is more clusterable. Where true branches exist, the adjusted Rand index (ARI: 0 for "
            "chance, 1 for identical partitions) and the normalised mutual information (NMI) compare the clusters "
            "with them."]),
        ("The null and p-values", [
            f"The null model ('{result.null}') keeps the architecture and destroys what training put into the "
            "weights: each consumer's weight tensor is shuffled within itself (its entries permuted at random), "
            f"and the co-clustering is re-fitted, up to {n} times (seed {result.seed}; every draw has its own "
            "seed, so results do not depend on --jobs). The n-cut's p-value is empirical, p = (r + 1) / (n + 1), "
            "where r counts the draws at least as low as observed; with sequential stopping (Besag and Clifford "
            f"1991, h = {result.sequential_h}) a layer stops once h draws are as extreme, with p = h / (draws made), "
            "so layers without structure cost few draws.",
            "Branch recovery needs no re-fit where every consumer reads all of a layer's units alike: the units "
            "are then exchangeable under the null, the clusters are independent of the branches, and the exact "
            "null of the ARI and NMI is the permutation distribution of their contingency table "
            f"({result.n_label_permutations} label permutations, or all tables where they are few: p resolves to "
            f"1 / {result.n_label_permutations + 1}). Where the architecture ties units to groups (a grouped "
            "consumer) the re-fitted weight draws are used instead; each layer's method is in summary.json.",
            "Because many layers are tested, p-values are adjusted across the analysed layers with the "
            "Benjamini-Hochberg procedure (false discovery rate); a layer counts as showing structure when its "
            f"BH-adjusted p is below {ALPHA}. Each statistic also has an effect size: the ARI above its null mean, "
            "and the n-cut's reduction relative to its null mean; a significant but small effect is reported as "
            "such."]),
        ("Scale controls", [
            "A branch can look recovered only because its units differ in overall scale (one branch's outputs run "
            "larger, so consumers weight them less). Recovery is therefore repeated on the profile with each "
            "producer column scaled to unit norm (pattern without scale) and on the column norms alone (scale "
            "without pattern). If the unit-norm ARI stays high, the branches differ in whom they connect to; if "
            "the column norms alone recover them, scale explains much of it."]),
        ("Reading the figures", [
            "Per layer: the singular spectrum against the null band; the units on singular vectors 2 and 3 "
            "coloured by true branch and by cluster; the magnitude matrix reordered by cluster (bright diagonal "
            "blocks are modules); counts of units per branch and cluster; and the observed n-cut and ARI against "
            "their nulls. The overview shows cluster sizes and test results for every layer; the first-layer "
            "filters show what the earliest units respond to, ordered along a singular vector of their "
            "magnitudes."]),
    ]


def run_metadata(result: AnalysisResult) -> list[tuple[str, str]]:
    """(label, value) pairs describing what was run."""
    versions = ", ".join(f"{k} {v}" for k, v in result.versions.items()) or "not recorded"
    return [
        ("model", result.model), ("weights", result.weights),
        ("weights sha256", result.weights_sha256 or "not recorded (random or in-memory weights)"),
        ("provenance", result.provenance or "–"), ("input size", " x ".join(str(v) for v in result.input_size)),
        ("layers analysed", str(len(result.layers))), ("kernel reduction", result.reduction),
        ("expanded connections", result.expand), ("null model", result.null),
        ("permutations", str(result.n_permutations)), ("seed", str(result.seed)),
        ("run time", f"{result.runtime_s:.1f} s"), ("versions", versions),
    ]


SMALL_NCUT_EFFECT = 0.05  # n-cut reductions under 5% of the null's mean are called small
SMALL_ARI_EFFECT = 0.2  # recovery with ARI under 0.2 above its null is called weak

_TABLE_KEYS = ("name", "kind", "n_units", "n_branches", "k", "k_source", "ari", "ari_effect", "p", "p_bh", "ncut",
               "ncut_null_mean", "ncut_effect", "ncut_z", "ncut_p", "ncut_p_bh", "n_dead")
_TEXT_KEYS = ("name", "kind", "k_source")


def summary_columns() -> list[Column]:
    """The columns of the per-layer summary table (HTML and PDF), taken from :data:`~modularity.results.COLUMNS`."""
    by_key = {c.key: c for c in COLUMNS}
    return [by_key[k] for k in _TABLE_KEYS]


def _summary_values(res: LayerResult) -> list[Any]:
    row = res.row()
    return [row[k] for k in _TABLE_KEYS]


def _row_significant(res: LayerResult) -> bool:
    row = res.row()
    return _sig(row["ncut_p_bh"]) or _sig(row["p_bh"])


def _shown(v: Any) -> str:
    if isinstance(v, float):
        return _fmt(v)
    return "–" if v is None else str(v)


# ------------------------------------------------------------------------------------------------ HTML

def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ModularityError("figure file is not a PNG")
    return struct.unpack(">II", data[16:24])


def _embed(folder: Path, info: FigureInfo) -> dict[str, Any]:
    path = folder / info.png
    if not path.is_file():
        raise ModularityError(f"figure {info.png} is missing from {folder}")
    data = path.read_bytes()
    w, h = _png_size(data)
    svg = next((f.as_posix() for f in info.files if f.suffix == ".svg"), None)
    return {"title": info.title, "caption": info.caption, "data": base64.b64encode(data).decode("ascii"),
            "width": w, "height": h, "svg": svg, "anchor": "fig-" + info.key.replace(":", "-")}


_FILES = [
    ("report.pdf", "the same report as a PDF"),
    ("summary.json", "every number of the analysis (read with modularity.load_summary)"),
    ("layers.csv", "one row per analysed layer"), ("units.csv", "one row per unit: branch, cluster, coordinates"),
    ("arrays.npz", "reordered magnitude matrices and first-layer filters used by the figures"),
    ("channel_graph.graphml", "layer-level graph (GraphML: networkx, yEd)"),
    ("channel_graph.gexf", "layer-level graph (GEXF: Gephi)"),
    ("channel_graph.node_link.json", "layer-level graph (networkx node-link JSON)"),
    ("channel_graph.cytoscape.json", "layer-level graph (Cytoscape.js JSON)"),
    ("unit_graph.graphml", "unit-level graph, strongest connections per consumer unit (GraphML)"),
    ("unit_graph.gexf", "unit-level graph (GEXF: Gephi)"),
    ("unit_graph.node_link.json", "unit-level graph (networkx node-link JSON)"),
    ("unit_graph.cytoscape.json", "unit-level graph (Cytoscape.js JSON)"),
    ("figures/", "every figure as PNG, summary and featured-layer figures also as SVG"),
]


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("modularity.output", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)


def write_html(result: AnalysisResult, figures: Sequence[FigureInfo], folder: str | Path) -> Path:
    """Write ``report.html``: one self-contained file (figures embedded as base64 PNG)."""
    from .. import __version__

    folder = Path(folder)
    columns = summary_columns()
    rows = []
    for res in result.layers:
        cells = [{"sort": "" if v is None else (repr(float(v)) if isinstance(v, float) else v), "shown": _shown(v),
                  "text": col.key in _TEXT_KEYS} for col, v in zip(columns, _summary_values(res))]
        rows.append({"cells": cells, "sig": _row_significant(res)})
    figs = [_embed(folder, f) for f in figures if not f.key.startswith("sheet:")]
    sheets = [_embed(folder, f) for f in figures if f.key.startswith("sheet:")]
    files = [{"href": name, "name": name, "what": what} for name, what in _FILES if (folder / name).exists()]
    html = _environment().get_template(_TEMPLATE).render(
        model=result.model, findings=findings(result), meta=run_metadata(result), command=result.command,
        columns=columns, rows=rows, n_permutations=result.n_permutations, n_layers=len(result.layers),
        figures=figs, sheets=sheets, method=method_sections(result), files=files, version=__version__)
    path = folder / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------- PDF

def _tex(s: str) -> str:
    """Text safe for matplotlib (no mathtext from ``$``)."""
    return str(s).replace("$", r"\$")


class PdfReport:
    """A multipage PDF built page by page with matplotlib (``PdfPages``).

    Use as a context manager; :meth:`text_pages`, :meth:`table_pages` and
    :meth:`figure_page` append pages in order.
    """

    line_in = 0.19
    margin_in = 0.7

    def __init__(self, path: str | Path, title: str = "") -> None:
        self.path = Path(path)
        self._pdf = PdfPages(self.path, metadata={"Title": title, "Creator": "modularity"})
        self.n_pages = 0

    def __enter__(self) -> "PdfReport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Finish the file."""
        self._pdf.close()

    def _save(self, fig: Figure) -> None:
        with quiet_glyphs():
            self._pdf.savefig(fig)
        self.n_pages += 1

    def text_pages(self, blocks: Sequence[tuple[str, str]], width: int = 96) -> None:
        """Flow (style, text) blocks onto A4 pages; style is ``title``, ``heading``, ``text`` or ``mono``."""
        sizes = {"title": 16, "heading": 12, "text": 9.5, "mono": 8}
        fig, y = None, 0.0
        for style, text in blocks:
            wrap = {"title": 60, "heading": 80, "mono": 110}.get(style, width)
            lines = textwrap.wrap(text, wrap, break_long_words=True, break_on_hyphens=False) or [""]
            step = self.line_in * sizes[style] / 9.5
            need = step * (len(lines) + (1.0 if style in ("title", "heading") else 0.6))
            if fig is None or y - need < self.margin_in:
                if fig is not None:
                    self._save(fig)
                fig, y = Figure(figsize=_A4), _A4[1] - self.margin_in
            if style == "heading":
                y -= 0.5 * step
            for line in lines:
                fig.text(self.margin_in / _A4[0], y / _A4[1], _tex(line), fontsize=sizes[style], va="top",
                         weight="bold" if style in ("title", "heading") else "normal",
                         family="monospace" if style == "mono" else "sans-serif")
                y -= step
            y -= 0.6 * step
        if fig is not None:
            self._save(fig)

    def table_pages(self, header: Sequence[str], rows: Sequence[Sequence[str]], title: str,
                    rows_per_page: int = 34, bold: Sequence[bool] | None = None) -> None:
        """A table across as many landscape A4 pages as needed, repeating the header."""
        for start in range(0, max(len(rows), 1), rows_per_page):
            chunk = rows[start:start + rows_per_page]
            fig = Figure(figsize=(_A4[1], _A4[0]))
            fig.text(0.05, 0.95, _tex(f"{title} ({start + 1}-{start + len(chunk)} of {len(rows)})"), fontsize=12,
                     weight="bold", va="top")
            ax = fig.add_axes((0.03, 0.04, 0.94, 0.86))
            ax.set_axis_off()
            if chunk:
                table = ax.table(cellText=[[_tex(c) for c in r] for r in chunk], colLabels=list(header),
                                 loc="upper center", cellLoc="right")
                table.auto_set_font_size(False)
                table.set_fontsize(6.5)
                table.auto_set_column_width(list(range(len(header))))
                for (r, c), cell in table.get_celld().items():
                    cell.set_linewidth(0.3)
                    if c == 0:
                        cell.set_text_props(ha="left")
                    if r == 0 or (bold is not None and r > 0 and bold[start + r - 1] and c == 0):
                        cell.set_text_props(weight="bold")
            self._save(fig)

    def figure_page(self, fig: Figure, title: str, caption: str) -> None:
        """Append a figure with a wrapped caption below it (the figure is modified, not closed)."""
        w, h = fig.get_size_inches()
        lines = textwrap.wrap(_tex(caption), max(40, int(w * 15)))
        cap_in = 0.16 * (len(lines) + 1) + 0.15
        fig.set_size_inches(w, h + cap_in)
        engine = fig.get_layout_engine()
        if engine is not None and hasattr(engine, "set"):
            engine.set(rect=(0, cap_in / (h + cap_in), 1, h / (h + cap_in)))
        else:
            fig.subplots_adjust(bottom=cap_in / (h + cap_in) + 0.02)
        fig.text(0.02, (cap_in - 0.08) / (h + cap_in), "\n".join(lines), fontsize=7.5, va="top", ha="left",
                 color="0.25")
        self._save(fig)


    def image_pages(self, images: Sequence[tuple[str, Path]], title: str, per_page: int = 2) -> None:
        """Raster images (PNG files) stacked ``per_page`` to a portrait A4 page, each under its title."""
        for start in range(0, len(images), per_page):
            fig = Figure(figsize=_A4)
            fig.text(0.5, 0.975, _tex(title), ha="center", va="top", fontsize=11, weight="bold")
            slot = 0.93 / per_page
            for j, (name, path) in enumerate(images[start:start + per_page]):
                top = 0.95 - j * slot
                fig.text(0.05, top - 0.005, _tex(_short(name, 100)), fontsize=9, va="top")
                ax = fig.add_axes((0.04, top - slot + 0.01, 0.92, slot - 0.04))
                # "none": embedded as it is (a <=256-colour image becomes an indexed PDF image)
                ax.imshow(_read_png(path), interpolation="none")
                ax.set_axis_off()
            self._save(fig)


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _pdf_front(pdf: PdfReport, result: AnalysisResult) -> None:
    blocks = [("title", f"What the weights of {result.model} say about its structure"),
              ("heading", "Findings")] + [("text", p) for p in findings(result)]
    blocks += [("heading", "What was run")] + [("text", f"{k}: {v}") for k, v in run_metadata(result)]
    if result.command:
        blocks += [("text", "Command line:"), ("mono", result.command)]
    pdf.text_pages(blocks)
    header = [c.label for c in summary_columns()]
    rows = [[_short(_shown(v), 44) if i == 0 else _shown(v) for i, v in enumerate(_summary_values(r))]
            for r in result.layers]
    pdf.table_pages(header, rows, "Per-layer summary", bold=[_row_significant(r) for r in result.layers])


def _short(s: str, width: int) -> str:
    return s if len(s) <= width else s[: width // 2 - 1] + "…" + s[-(width - width // 2):]


def _pdf_method(pdf: PdfReport, result: AnalysisResult) -> None:
    blocks: list[tuple[str, str]] = [("title", "Method and null")]
    for heading, paragraphs in method_sections(result):
        blocks.append(("heading", heading))
        blocks.extend(("text", p) for p in paragraphs)
    pdf.text_pages(blocks)


# ----------------------------------------------------------------------------------------------- build

def build_reports(result: AnalysisResult, arrays: Mapping[str, np.ndarray], folder: str | Path,
                  progress: bool = False) -> list[Path]:
    """Draw the figures and write ``report.pdf`` and ``report.html`` into ``folder``.

    The PDF holds: title page with findings and run metadata, the per-layer
    table, the summary and featured-layer figures (vector, with captions), the
    method, and an appendix of every layer's sheet (raster, two to a page).

    Returns
    -------
    list of Path
        Figure files, ``report.pdf`` and ``report.html``.
    """
    folder = Path(folder)

    def vector_page(fig: Figure, info: FigureInfo) -> None:
        if not info.key.startswith("sheet:"):
            pdf.figure_page(fig, info.title, info.caption)

    with PdfReport(folder / "report.pdf", f"modularity report: {result.model}") as pdf:
        _pdf_front(pdf, result)
        figures = draw_figures(result, arrays, folder, progress=progress, sink=vector_page)
        _pdf_method(pdf, result)
        pdf.image_pages([(f.title, folder / f.png) for f in figures if f.key.startswith("sheet:")],
                        "Appendix: every layer")
    html = write_html(result, figures, folder)
    return [folder / f for info in figures for f in info.files] + [pdf.path, html]


def rebuild_report(folder: str | Path, progress: bool = False) -> list[Path]:
    """Re-draw figures, tables, HTML and PDF of a results folder from summary.json and arrays.npz.

    Nothing is recomputed and the model is not needed. Graph files
    (GraphML, GEXF, JSON) are left as they are.

    Raises
    ------
    ModularityError
        If the folder lacks summary.json or arrays.npz, or they come from another version.
    """
    folder = Path(folder)
    result = load_summary(folder)
    arrays = load_arrays(folder, result)
    return write_tables(result, folder) + build_reports(result, arrays, folder, progress=progress)
