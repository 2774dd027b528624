"""HTML and PDF reports of a results folder, built from the same results and figures.

:func:`build_reports` draws the figures (via :func:`modularity.output.figures.draw_figures`),
saving each as PNG (and SVG), then writes

* ``report.html``: one self-contained file with every figure embedded as a
  base64 PNG, a sortable per-layer table with a sticky header in its own
  scroll container (a few lines of inline JavaScript, no CDN), the run
  metadata, an auto-generated "Findings" text and the method. It reads at
  any width from a phone's 400 px up (checked in headless Chromium);
* ``report.pdf``: A4 portrait pages only (matplotlib ``PdfPages``: no system
  libraries), the figures redrawn as vector graphics several to a page with
  numbered captions, the table split over pages and column groups at 7.5 pt.

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
import struct
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..errors import ModularityError
from .figures import (FigureInfo, clusterability_data, draw_clusterability_figures, draw_figures, load_arrays,
                      quiet_glyphs, write_tables)
from .plots import format_p, p_text
from .words import SMALL_NCUT_EFFECT, findings, method_sections, run_metadata
from ..arrays import restore_draws
from ..results import ALPHA, COLUMNS, COMPARISON, AnalysisResult, Column, LayerResult, load_summary
from ..results import significant as _sig

__all__ = ["findings", "method_sections", "run_metadata", "summary_columns", "build_reports",
           "write_html", "PdfReport", "rebuild_report", "format_p", "break_at_dots",
           "clusterability_findings", "clusterability_method", "clusterability_metadata",
           "build_clusterability_report"]

_A4 = (8.27, 11.69)
PAGE_SIZE = _A4
"""Every page of every PDF report: A4 portrait, in inches."""
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


def break_at_dots(text: str) -> "Any":
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


def _embed(folder: Path, info: FigureInfo, number: int | None = None) -> dict[str, Any]:
    path = folder / info.png
    if not path.is_file():
        raise ModularityError(f"figure {info.png} is missing from {folder}")
    data = path.read_bytes()
    w, h = _png_size(data)
    svg = next((f.as_posix() for f in info.files if f.suffix == ".svg"), None)
    return {"title": info.title, "caption": info.caption, "data": base64.b64encode(data).decode("ascii"),
            "width": w, "height": h, "svg": svg, "anchor": "fig-" + info.key.replace(":", "-"),
            "number": number}


_FILES = [
    ("report.pdf", "the same report as a PDF"),
    ("summary.json", "every number of the analysis (read with modularity.load_summary)"),
    ("layers.csv", "one row per analysed layer"), ("units.csv", "one row per unit: branch, cluster, coordinates"),
    ("comparison.csv", "trained against the random-init control, one row per layer"),
    ("control_layers.csv", "the random-init control's per-layer table"),
    ("arrays.npz", "reordered magnitude matrices and first-layer filters used by the figures"),
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
    """Write ``report.html``: one self-contained file (figures embedded as base64 PNG)."""
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
    sheets = [_embed(folder, f) for f in figures if f.key.startswith("sheet:")]
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


# ------------------------------------------------------------------------------------------------- PDF

def _tex(s: str) -> str:
    """Text safe for matplotlib (no mathtext from ``$``)."""
    return str(s).replace("$", r"\$")


def _wrap_cell(text: str, width: int) -> list[str]:
    """A table cell's lines: layer names break after dots or underscores, other text at spaces."""
    if len(text) <= width:
        return [text]
    if " " in text:
        return textwrap.wrap(text, width, break_long_words=True) or [text]
    lines: list[str] = []
    for piece in re.split(r"(?<=[._])", text):
        while len(piece) > width:
            lines.append(piece[:width])
            piece = piece[width:]
        if lines and len(lines[-1]) + len(piece) <= width:
            lines[-1] += piece
        elif piece:
            lines.append(piece)
    return lines


class PdfReport:
    """A multipage PDF on A4 portrait pages only, built with matplotlib (``PdfPages``).

    Use as a context manager; :meth:`text_pages`, :meth:`table_pages` and
    :meth:`figure_pages` append pages in order. Figures are drawn as vector
    graphics (text, lines, markers; images stay images), several to a page,
    each under a numbered caption; the table is split over pages (rows) and
    column groups (columns) so that its font stays at :attr:`table_font` points.
    """

    line_in = 0.19
    margin_in = 0.6
    table_font = 7.5
    caption_font = 7.5
    page_size = PAGE_SIZE

    def __init__(self, path: str | Path, title: str = "", progress: bool = False) -> None:
        self.path = Path(path)
        self._pdf = PdfPages(self.path, metadata={"Title": title, "Creator": "modularity"})
        self.n_pages = 0
        self.n_figures = 0
        self.progress = progress

    def __enter__(self) -> "PdfReport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Finish the file."""
        self._pdf.close()

    def _page(self, layout: bool = False) -> Figure:
        return Figure(figsize=self.page_size, layout="constrained" if layout else None)

    def _save(self, fig: Figure) -> None:
        self.n_pages += 1
        w, h = self.page_size
        fig.text(1 - self.margin_in / w, 0.35 / h, str(self.n_pages), ha="right", va="bottom", fontsize=7,
                 color="0.4")
        with quiet_glyphs():
            self._pdf.savefig(fig)

    def text_pages(self, blocks: Sequence[tuple[str, str]], width: int = 100) -> None:
        """Flow (style, text) blocks onto pages; style is ``title``, ``heading``, ``text`` or ``mono``."""
        sizes = {"title": 16, "heading": 12, "text": 9.5, "mono": 8}
        w, h = self.page_size
        fig, y = None, 0.0
        for style, text in blocks:
            wrap = {"title": 60, "heading": 80, "mono": 110}.get(style, width)
            lines = textwrap.wrap(text, wrap, break_long_words=True, break_on_hyphens=False) or [""]
            step = self.line_in * sizes[style] / 9.5
            need = step * (len(lines) + (1.0 if style in ("title", "heading") else 0.6))
            if fig is None or y - need < self.margin_in:
                if fig is not None:
                    self._save(fig)
                fig, y = self._page(), h - self.margin_in
            if style == "heading":
                y -= 0.5 * step
            for line in lines:
                fig.text(self.margin_in / w, y / h, _tex(line), fontsize=sizes[style], va="top",
                         weight="bold" if style in ("title", "heading") else "normal",
                         family="monospace" if style == "mono" else "sans-serif")
                y -= step
            y -= 0.6 * step
        if fig is not None:
            self._save(fig)

    # ----------------------------------------------------------------------------------------- table

    def _text_in(self, text: str, bold: bool = False) -> float:
        """Width of one line of table text in inches, measured with the font the page uses."""
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.font_manager import FontProperties

        if not hasattr(self, "_renderer"):
            self._renderer = RendererAgg(10, 10, 72)
        prop = FontProperties(size=self.table_font, weight="bold" if bold else "normal")
        return self._renderer.get_text_width_height_descent(_tex(text), prop, ismath=False)[0] / 72

    def _column_blocks(self, widths: Sequence[float], usable: float) -> list[list[int]]:
        """Groups of column indices that fit ``usable`` inches, each starting with column 0 (the names)."""
        blocks: list[list[int]] = []
        current, used = [0], widths[0]
        for j in range(1, len(widths)):
            if used + widths[j] > usable and len(current) > 1:
                blocks.append(current)
                current, used = [0], widths[0]
            current.append(j)
            used += widths[j]
        blocks.append(current)
        return blocks

    def table_pages(self, header: Sequence[str], rows: Sequence[Sequence[str]], title: str,
                    bold: Sequence[bool] | None = None, note: str = "", name_width: int = 30) -> None:
        """A table on as many portrait pages as needed at :attr:`table_font` points.

        Columns that do not fit the page width go to further column groups,
        each repeating the first (name) column; rows that do not fit go to
        further pages, each repeating the header. Names wrap after dots.
        """
        w, h = self.page_size
        usable_w, pad = w - 2 * self.margin_in, 0.06
        head = [_wrap_cell(str(c), 10) for c in header]
        best = None
        for width in sorted({name_width, 24, 18}, reverse=True):  # narrower names when that saves a column group
            cells = [[_wrap_cell(str(v), width if j == 0 else 14) for j, v in enumerate(r)] for r in rows]
            widths = [max([self._text_in(x, True) for x in head[j]] + [self._text_in(x, bool(bold and bold[i]))
                                                                        for i, r in enumerate(cells) for x in r[j]])
                      + 2 * pad for j in range(len(header))]
            blocks = self._column_blocks(widths, usable_w)
            if best is None or len(blocks) < len(best[2]):
                best = (cells, widths, blocks)
        cells, widths, blocks = best
        line = self.table_font * 1.35 / 72
        head_h = max(len(x) for x in head) * line + 0.06
        top = h - self.margin_in - 0.45 - (0.3 if note else 0.0)
        for b, cols in enumerate(blocks):
            start = 0
            while start < len(rows) or (start == 0 and not rows):
                fig = self._page()
                y = top - head_h
                end = start
                while end < len(rows) and y - (max(len(c) for c in cells[end]) * line + 0.05) >= self.margin_in + 0.2:
                    y -= max(len(c) for c in cells[end]) * line + 0.05
                    end += 1
                end = max(end, min(start + 1, len(rows)))
                part = f"columns {b + 1} of {len(blocks)}, " if len(blocks) > 1 else ""
                fig.text(self.margin_in / w, (h - self.margin_in) / h,
                         _tex(f"{title} ({part}rows {start + 1}-{end} of {len(rows)})" if rows else title),
                         fontsize=12, weight="bold", va="top")
                if note:
                    fig.text(self.margin_in / w, (h - self.margin_in - 0.32) / h,
                             "\n".join(textwrap.wrap(_tex(note), 120)), fontsize=7.5, va="top", color="0.3")
                self._draw_table(fig, [head[j] for j in cols], [[cells[i][j] for j in cols] for i in range(start, end)],
                                 [widths[j] for j in cols], top, line, head_h,
                                 [bool(bold[i]) if bold is not None else False for i in range(start, end)])
                self._save(fig)
                start = end
                if not rows:
                    break

    def _draw_table(self, fig: Figure, head: Sequence[list[str]], rows: Sequence[Sequence[list[str]]],
                    widths: Sequence[float], top: float, line: float, head_h: float, bold: Sequence[bool]) -> None:
        w, h = self.page_size
        pad, x0 = 0.06, self.margin_in
        edges = np.concatenate([[x0], x0 + np.cumsum(widths)])
        right = float(edges[-1])

        def rule(y: float, colour: str, lw: float) -> None:
            fig.add_artist(Line2D([x0 / w, right / w], [y / h, y / h], color=colour, lw=lw))

        rule(top, "0.2", 0.8)
        for j, label in enumerate(head):
            x = edges[j] + pad if j == 0 else edges[j + 1] - pad
            fig.text(x / w, (top - 0.03) / h, _tex("\n".join(label)), fontsize=self.table_font, weight="bold",
                     va="top", ha="left" if j == 0 else "right", linespacing=1.15)
        y = top - head_h
        rule(y, "0.2", 0.6)
        for i, (cells, strong) in enumerate(zip(rows, bold)):
            n_lines = max(len(c) for c in cells)
            height = n_lines * line + 0.05
            if i % 2:
                fig.add_artist(_band(x0 / w, (y - height) / h, (right - x0) / w, height / h))
            for j, text in enumerate(cells):
                x = edges[j] + pad if j == 0 else edges[j + 1] - pad
                fig.text(x / w, (y - 0.025) / h, _tex("\n".join(text)), fontsize=self.table_font, va="top",
                         ha="left" if j == 0 else "right", weight="bold" if strong and j == 0 else "normal",
                         linespacing=1.15)
            y -= height
        rule(y, "0.2", 0.8)

    # --------------------------------------------------------------------------------------- figures

    def _caption_lines(self, text: str, width_in: float) -> list[str]:
        per_line = max(30, int(width_in * 72 / (0.5 * self.caption_font)))
        return textwrap.wrap(_tex(text), per_line)

    def _rows(self, items: Sequence[FigureInfo], usable_w: float) -> list[list[FigureInfo]]:
        """Items in rows of the two-column grid: a full-width item alone, half-width ones in pairs."""
        rows: list[list[FigureInfo]] = []
        pending: list[FigureInfo] | None = None
        for item in items:
            if item.pdf_span >= 2:
                rows.append([item])
            elif pending is not None and pending[0].layer == item.layer:  # pairs never mix layers
                pending.append(item)
                pending = None
            else:
                pending = [item]
                rows.append(pending)
        return rows

    def figure_pages(self, items: Sequence[FigureInfo], heading: str = "", layout: bool = True) -> None:
        """Redraw ``items`` (each with ``draw``) as vector figures, several to a page, with numbered captions.

        Items fill a two-column grid row by row: ``pdf_span`` 2 takes a whole
        row, ``pdf_span`` 1 half of one (a lone half-width item takes the row;
        pairs never mix layers). ``pdf_height`` sets each row's height; a page
        takes rows until full. ``layout=False`` skips matplotlib's constrained
        layout (several times faster) for figures that place their own axes,
        such as the layer sheets.
        """
        w, h = self.page_size
        usable_w = w - 2 * self.margin_in
        usable_h = h - 2 * self.margin_in - (0.35 if heading else 0.0) - 0.15
        gap = 0.12
        rows = []
        for row in self._rows(items, usable_w):
            cell_w = usable_w if len(row) == 1 else (usable_w - gap) / 2
            caps = []
            for item in row:
                self.n_figures += 1
                caps.append(self._caption_lines(f"Figure {self.n_figures}. {item.title}. {item.caption}", cell_w))
            cap_h = max(len(c) for c in caps) * self.caption_font * 1.3 / 72 + 0.1
            rows.append((row, caps, max(i.pdf_height for i in row), cap_h))
        pages: list[list[tuple]] = []
        used = 0.0
        for entry in rows:
            need = entry[2] + entry[3] + gap
            if not pages or used + need > usable_h:
                pages.append([])
                used = 0.0
            pages[-1].append(entry)
            used += need
        iterator: Any = pages
        if self.progress:
            from tqdm.auto import tqdm

            iterator = tqdm(pages, desc=f"PDF: {heading or 'figures'}", unit="page", leave=False)
        for page in iterator:
            self._figure_page(page, heading, usable_w, usable_h, gap, layout)

    def _figure_page(self, page: Sequence[tuple], heading: str, usable_w: float, usable_h: float,
                     gap: float, layout: bool = True) -> None:
        w, h = self.page_size
        fig = self._page(layout=layout)
        heights = [fig_h + cap_h for _, _, fig_h, cap_h in page]
        total = sum(heights) + gap * (len(page) - 1)
        scale = min(1.0, usable_h / total) if total > 0 else 1.0
        top = h - self.margin_in - (0.35 if heading else 0.0)
        area_h = total * scale
        rect = (self.margin_in / w, (top - area_h) / h, usable_w / w, area_h / h)
        if layout:
            fig.get_layout_engine().set(rect=rect, w_pad=0.02, h_pad=0.03, hspace=0.0, wspace=0.0)
            area = fig
        else:
            area = fig.add_subfigure(fig.add_gridspec(1, 1, left=rect[0], right=rect[0] + rect[2], bottom=rect[1],
                                                      top=rect[1] + rect[3])[0])
        if heading:
            fig.text(self.margin_in / w, (h - self.margin_in) / h, _tex(heading), fontsize=12, weight="bold",
                     va="top")
        subs = area.subfigures(len(page), 1, height_ratios=heights, hspace=gap / max(total, 1e-9)) \
            if len(page) > 1 else [area.subfigures(1, 1)]
        for sub, (row, caps, fig_h, cap_h) in zip(np.atleast_1d(subs), page):
            cells = [sub] if len(row) == 1 else list(sub.subfigures(1, 2, wspace=gap / usable_w))
            for cell, item, cap in zip(cells, row, caps):
                plot, text = cell.subfigures(2, 1, height_ratios=[fig_h, cap_h])
                item.draw_for_pdf(plot)
                text.text(0.0, 1.0, "\n".join(cap), fontsize=self.caption_font, va="top", ha="left", color="0.2",
                          linespacing=1.2)
        self._save(fig)


def _band(x: float, y: float, width: float, height: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), width, height, color="0.95", lw=0, zorder=-1)


def _short(s: str, width: int) -> str:
    return s if len(s) <= width else s[: width // 2 - 1] + "…" + s[-(width - width // 2):]


def _front_blocks(title: str, paragraphs: Sequence[str], meta: Sequence[tuple[str, str]],
                  command: str) -> list[tuple[str, str]]:
    blocks = [("title", title), ("heading", "Findings")] + [("text", p) for p in paragraphs]
    blocks += [("heading", "What was run")] + [("text", f"{k}: {v}") for k, v in meta]
    if command:
        blocks += [("text", "Command line:"), ("mono", command)]
    return blocks


def _pdf_front(pdf: PdfReport, result: AnalysisResult) -> None:
    pdf.text_pages(_front_blocks(f"What the weights of {result.model} say about its structure", findings(result),
                                 run_metadata(result), result.command))
    columns = summary_columns(result)
    header = [c.label for c in columns]
    rows = [[_shown(v, c.key) for c, v in zip(columns, _summary_values(r, columns))] for r in result.layers]
    note = (f"Bold: BH-adjusted p < {ALPHA} for the n-cut or the ARI. " + _table_note(result, columns)).strip()
    pdf.table_pages(header, rows, "Per-layer summary", bold=[_row_significant(r) for r in result.layers], note=note)
    comparison = result.comparison_rows()
    if comparison:
        shown = [c for c in COMPARISON if c.key == "name" or not _empty([getattr(r, c.key) for r in comparison])]
        pdf.table_pages([c.label for c in shown], [[_shown(getattr(r, c.key), c.key) for c in shown] for r in comparison],
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
                  progress: bool = False) -> list[Path]:
    """Draw the figures and write ``report.pdf`` and ``report.html`` into ``folder``.

    The PDF (A4 portrait throughout) holds: findings and run metadata, the
    per-layer table, the summary figures, each featured layer's figures on
    a page of its own, the method, and an appendix of every layer's sheet
    (two to a page); every figure is vector and captioned.

    Returns
    -------
    list of Path
        Figure files, ``report.pdf`` and ``report.html``.
    """
    folder = Path(folder)
    figures = draw_figures(result, arrays, folder, progress=progress)
    with PdfReport(folder / "report.pdf", f"modularity report: {result.model}", progress=progress) as pdf:
        _pdf_front(pdf, result)
        summary = [f for f in figures if f.layer is None or f.key == "filters"]
        pdf.figure_pages(summary, "Across the network")
        pdf.figure_pages([f for f in figures if ":" in f.key and not f.key.startswith("sheet:")],
                         "Featured layers")
        pdf.text_pages(_method_blocks("Method and null", method_sections(result)))
        pdf.figure_pages([f for f in figures if f.key.startswith("sheet:")], "Appendix: every layer", layout=False)
    html = write_html(result, figures, folder)
    return [folder / f for info in figures for f in info.files] + [pdf.path, html]


def rebuild_report(folder: str | Path, progress: bool = False) -> list[Path]:
    """Re-draw figures, HTML and PDF of a results folder from summary.json and arrays.npz.

    Nothing is recomputed and the model is not needed. Graph files
    (GraphML, GEXF, JSON) are left as they are, and so are the CSV tables
    the analysis wrote at full precision (``summary.json`` keeps 7
    significant digits); a table that is missing is written again.

    Raises
    ------
    ModularityError
        If the folder lacks summary.json or arrays.npz, or they come from another version.
    """
    folder = Path(folder)
    result = load_summary(folder)
    arrays = load_arrays(folder, result)
    restore_draws(result, arrays)
    tables = ("layers.csv", "units.csv") + (("comparison.csv", "control_layers.csv") if result.control else ())
    written = [] if all((folder / name).is_file() for name in tables) else write_tables(result, folder)
    return written + build_reports(result, arrays, folder, progress=progress)


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
                                progress: bool = False) -> list[Path]:
    """Write the figures, ``report.html`` and ``report.pdf`` of a whole-network clusterability result.

    Parameters
    ----------
    result : ClusterabilityResult
    folder : str or Path
        Folder to write into (it must exist).
    extra : mapping, optional
        ``weights_sha256`` and ``provenance`` of the model, for the run metadata.
    progress : bool
        Progress bars while the PDF is drawn.

    Returns
    -------
    list of Path
        Figure files, ``report.pdf`` and ``report.html``.
    """
    from .. import __version__

    folder = Path(folder)
    figures = draw_clusterability_figures(result, folder)
    columns, values = _clusterability_table(result)
    text_keys = ("layer",)
    meta = clusterability_metadata(result, extra)
    title = f"How clusterable is {result.model}?"
    paragraphs = clusterability_findings(result)
    with PdfReport(folder / "report.pdf", f"modularity clusterability report: {result.model}",
                   progress=progress) as pdf:
        pdf.text_pages(_front_blocks(title, paragraphs, meta, result.command))
        pdf.figure_pages(figures, "Figures")
        pdf.table_pages([c.label for c in columns], [[_shown(v) for v in r] for r in values],
                        "Units per layer and cluster", note="Cluster columns count the layer's units in each of the "
                        f"k = {result.k} clusters of the whole network.")
        pdf.text_pages(_method_blocks("Method and null", clusterability_method(result)))
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
