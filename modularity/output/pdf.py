"""Lay out a PDF report: text, tables and figures placed on A4 portrait pages, measured, before any drawing.

:class:`PdfReport` turns blocks of text, tables and figures into
:class:`~modularity.output.pages.Page` records (every piece of text measured
with the font it is drawn in, so nothing crosses the margins), and writes the
drawn pages (:func:`modularity.output.pages.render_page`, in any process) into
one file. Text and tables flow: a table starts below the text before it where
there is room, column groups follow one another down the page, and row
chunks are balanced so that no page holds a lone row. Figures go on pages of
their own in a two-column grid, each under a heading and above its numbered
caption.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .pages import MARGIN_IN, PAGE_SIZE, Band, Cell, Page, Rule, Text
from .text import shorten, text_width, wrap

__all__ = ["PdfReport", "TEXT_SIZES", "text_width", "wrap"]

TEXT_SIZES = {"title": 16.0, "heading": 12.0, "text": 9.5, "line": 8.5, "mono": 8.0, "small": 7.5}
_LEADING = 1.3  # line height over font size (glyphs from fallback fonts sit higher than DejaVu's)
_PAGE_NUMBER_SIZE = 7.0


def _line_in(size: float) -> float:
    return size * _LEADING / 72


class PdfReport:
    """A multipage PDF on A4 portrait pages, planned here and drawn page by page.

    Use :meth:`text`, :meth:`table` and :meth:`figures` in reading order; they
    append to :attr:`pages`. Figures are numbered in order; their captions sit
    under them. :meth:`write` assembles the drawn pages into the file.

    Attributes
    ----------
    pages : list of Page
    n_figures : int
        Figures placed so far (the caption numbers).
    """

    page_size = PAGE_SIZE
    margin_in = MARGIN_IN
    table_font = 7.0
    table_font_min = 6.5  # a table with many columns: rather one column group at 6.5 pt than two at 7
    caption_font = 7.5
    _pad = 0.035  # each side of a table cell, inches
    gap_in = 0.16  # between figure rows and between the two columns

    def __init__(self, path: str | Path, title: str = "") -> None:
        self.path = Path(path)
        self.title = title
        self.pages: list[Page] = []
        self.n_figures = 0
        self._y: float | None = None  # where the text flow continues on the last page (None: start a new one)

    # --------------------------------------------------------------------------------------- geometry

    @property
    def width(self) -> float:
        """Usable width between the margins, in inches."""
        return self.page_size[0] - 2 * self.margin_in

    @property
    def top(self) -> float:
        return self.page_size[1] - self.margin_in

    @property
    def bottom(self) -> float:
        """Lowest point of the content: above the page number."""
        return self.margin_in + 0.3

    def _new_page(self) -> Page:
        page = Page(number=len(self.pages) + 1)
        page.texts.append(Text(self.page_size[0] - self.margin_in, self.margin_in + 0.08, str(page.number),
                               _PAGE_NUMBER_SIZE, colour="0.4", ha="right", va="baseline"))
        self.pages.append(page)
        self._y = self.top
        return page

    def _flow(self) -> float:
        """Where the flow continues on the last page, once :meth:`_room` or :meth:`_new_page` has placed it."""
        assert self._y is not None
        return self._y

    def _room(self, need: float) -> Page:
        """The last page when ``need`` inches fit below the flow, else a new one."""
        if self._y is None or not self.pages or self._y - need < self.bottom:
            return self._new_page()
        return self.pages[-1]

    # ------------------------------------------------------------------------------------------- text

    def text(self, blocks: Sequence[tuple[str, str]]) -> None:
        """Flow (style, text) blocks; style is ``title``, ``heading``, ``text`` (paragraphs), ``line`` (lines of
        a list, closer together), ``mono`` or ``small``.

        A title or heading is kept with the first lines of the block after it;
        the flow continues on the last page where the previous text or table
        left room.
        """
        blocks = list(blocks)
        for i, (style, text) in enumerate(blocks):
            size = TEXT_SIZES[style]
            family = "monospace" if style == "mono" else "sans-serif"
            weight = "bold" if style in ("title", "heading") else "normal"
            lines = wrap(text, self.width, size, weight, family)
            step = _line_in(size)
            before = 0.5 * step if style == "heading" and self._y is not None and self._y < self.top - 1e-6 else 0.0
            after = (0.1 if style in ("line", "mono") else 0.45) * step
            need = before + step * len(lines)
            if style in ("title", "heading") and i + 1 < len(blocks):
                nxt = TEXT_SIZES[blocks[i + 1][0]]
                need += _line_in(nxt) * 3  # keep with the next block's first lines
            elif style == "text":
                need = before + step * min(len(lines), 3)  # a paragraph may break after its third line
            page = self._room(need)
            if self._y == self.top:
                before = 0.0
            y = self._flow() - before
            for line in lines:
                if y - step < self.bottom:
                    page = self._new_page()
                    y = self._flow()
                page.texts.append(Text(self.margin_in, y, line, size, weight, family))
                y -= step
            self._y = y - after

    def end_flow(self) -> None:
        """The next text or table starts on a new page."""
        self._y = None

    # ------------------------------------------------------------------------------------------ table

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]], title: str,
              bold: Sequence[bool] | None = None, note: str = "") -> None:
        """A table in the flow, at :attr:`table_font` points, as many pages as it needs.

        Columns that do not fit the page width form further column groups,
        each repeating the first (name) column, placed one after the other down
        the pages; rows that do not fit continue on the next page under a
        repeated header, in chunks of nearly equal length.
        """
        strong = [bool(bold[i]) if bold is not None else False for i in range(len(rows))]
        best = None
        # the largest font, then the widest names (wrapped after dots), that fit every column on the page;
        # else the choice with the fewest column groups
        for size in (self.table_font, self.table_font_min):
            head = [wrap(str(c), max([0.45] + [text_width(w, size, "bold") for w in str(c).split()]) / 0.97, size,
                         "bold") for c in header]  # headers break at spaces only
            for name_in in (1.5, 1.2, 0.95, 0.75):
                cells = [[self._cell_lines(str(v), name_in if j == 0 else 0.9, size) for j, v in enumerate(r)]
                         for r in rows]
                widths = [max([text_width(x, size, "bold") for x in head[j]]
                              + [text_width(x, size, "bold" if strong[i] and j == 0 else "normal")
                                 for i, r in enumerate(cells) for x in r[j]]) + 2 * self._pad
                          for j in range(len(header))]
                groups = self._column_groups(widths)
                if best is None or len(groups) < len(best[4]):
                    best = (size, head, cells, widths, groups)
                if len(groups) == 1:
                    break
            assert best is not None  # set on the first pass
            if len(best[4]) == 1:
                break
        assert best is not None
        size, head, cells, widths, groups = best
        line = _line_in(size) * 0.95
        head_h = max(len(x) for x in head) * line + 0.08
        row_h = [max(len(c) for c in r) * line + 0.04 for r in cells] or [line]
        title_h = _line_in(TEXT_SIZES["heading"]) + 0.04
        note_lines = wrap(note, self.width, TEXT_SIZES["small"]) if note else []
        note_h = len(note_lines) * _line_in(TEXT_SIZES["small"]) + (0.06 if note_lines else 0)
        label_h = _line_in(TEXT_SIZES["small"])
        intro = title_h + note_h + 0.25
        whole = intro + label_h + head_h + sum(row_h)
        start_rows = intro + label_h + head_h + sum(row_h[:3])
        full = self.top - self.bottom
        # a table that fits a page stays whole; a longer one starts here if its first rows fit
        page = self._room(whole if whole <= full else start_rows)
        y = self._flow()
        if y < self.top - 1e-6:
            y -= 0.25
        page.texts.append(Text(self.margin_in, y, title, TEXT_SIZES["heading"], "bold"))
        y -= title_h
        for text in note_lines:
            page.texts.append(Text(self.margin_in, y, text, TEXT_SIZES["small"], colour="0.3"))
            y -= _line_in(TEXT_SIZES["small"])
        y -= 0.06 if note_lines else 0.0
        self._y = y
        for g, cols in enumerate(groups):
            for start, end in self._row_chunks(row_h, head_h + label_h, keep_together=g > 0):
                page = self._room(label_h + head_h + sum(row_h[start:end]))
                y = self._y
                part = f"columns {g + 1} of {len(groups)}, " if len(groups) > 1 else ""
                rows_text = f"rows {start + 1}-{end} of {len(rows)}" if rows else "no rows"
                page.texts.append(Text(self.margin_in, y, f"{title} ({part}{rows_text})", TEXT_SIZES["small"],
                                       colour="0.35"))
                y -= label_h
                y = self._draw_table(page, [head[j] for j in cols], [[cells[i][j] for j in cols]
                                                                    for i in range(start, end)],
                                     [widths[j] for j in cols], y, line, head_h, strong[start:end], size)
                self._y = y - 0.2

    def _cell_lines(self, text: str, width: float, size: float) -> list[str]:
        if text_width(text, size) <= width:
            return [text]
        return wrap(text, width, size)

    def _column_groups(self, widths: Sequence[float]) -> list[list[int]]:
        """Groups of column indices that fit the page width, each starting with column 0 (the names)."""
        groups: list[list[int]] = []
        current, used = [0], widths[0]
        for j in range(1, len(widths)):
            if used + widths[j] > self.width and len(current) > 1:
                groups.append(current)
                current, used = [0], widths[0]
            current.append(j)
            used += widths[j]
        groups.append(current)
        return groups

    def _row_chunks(self, row_h: Sequence[float], fixed: float, keep_together: bool = True) -> list[tuple[int, int]]:
        """(start, end) row ranges, one per page: as few pages as the rows need, of nearly equal length.

        The first range goes in the room left on the current page (when at
        least three rows fit there). Filling every page greedily would leave
        a last page with a row or two; here every page holds about the same
        number of rows. With ``keep_together``, rows that fit a page of their
        own but not the room left start on a new page instead of being split.
        """
        n = len(row_h)
        if n == 0:
            return [(0, 0)]
        room = (self._y if self._y is not None else self.top) - self.bottom - fixed
        full = self.top - self.bottom - fixed - _line_in(TEXT_SIZES["small"])
        here = self._fit(row_h, 0, room)
        if here < min(3, n) or (keep_together and here < n and sum(row_h) <= full):
            room = full  # too little room for a useful start, or rows that fit a page of their own: a new page
        pages, lo = 0, 0
        while lo < n:
            lo += max(1, self._fit(row_h, lo, room if pages == 0 else full))
            pages += 1
        while True:
            target = -(-n // pages)
            chunks: list[tuple[int, int]] = []
            lo = 0
            while lo < n:
                hi = lo + max(1, min(target, self._fit(row_h, lo, room if not chunks else full)))
                chunks.append((lo, hi))
                lo = hi
            if len(chunks) <= pages:
                return chunks
            pages += 1

    @staticmethod
    def _fit(row_h: Sequence[float], start: int, room: float) -> int:
        """How many rows from ``start`` fit ``room`` inches."""
        end, used = start, 0.0
        while end < len(row_h) and used + row_h[end] <= room:
            used += row_h[end]
            end += 1
        return end - start

    def _draw_table(self, page: Page, head: Sequence[list[str]], rows: Sequence[Sequence[list[str]]],
                    widths: Sequence[float], top: float, line: float, head_h: float, bold: Sequence[bool],
                    size: float) -> float:
        pad, x0 = self._pad, self.margin_in
        edges = [x0]
        for w in widths:
            edges.append(edges[-1] + w)
        right = edges[-1]
        page.rules.append(Rule(x0, right, top, "0.2", 0.8))
        for j, label in enumerate(head):
            x = edges[j] + pad if j == 0 else edges[j + 1] - pad
            page.texts.append(Text(x, top - 0.04, "\n".join(label), size, "bold", ha="left" if j == 0 else "right",
                                   linespacing=1.15))
        y = top - head_h
        page.rules.append(Rule(x0, right, y, "0.2", 0.6))
        for i, (cells, strong) in enumerate(zip(rows, bold)):
            height = max(len(c) for c in cells) * line + 0.04
            if i % 2:
                page.bands.append(Band(x0, y - height, right - x0, height))
            for j, text in enumerate(cells):
                x = edges[j] + pad if j == 0 else edges[j + 1] - pad
                page.texts.append(Text(x, y - 0.02, "\n".join(text), size, "bold" if strong and j == 0 else "normal",
                                       ha="left" if j == 0 else "right", linespacing=1.15))
            y -= height
        page.rules.append(Rule(x0, right, y, "0.2", 0.8))
        return y

    # ---------------------------------------------------------------------------------------- figures

    def caption_lines(self, text: str, width_in: float) -> list[str]:
        """A caption wrapped to ``width_in`` inches at :attr:`caption_font` points."""
        return wrap(text, width_in, self.caption_font)

    def _rows(self, items: Sequence[Any]) -> list[list[Any]]:
        """Items in rows of the two-column grid: a full-width item alone, half-width ones in pairs."""
        rows: list[list[Any]] = []
        pending: list[Any] | None = None
        for item in items:
            if item.pdf_span >= 2:
                rows.append([item])
                pending = None
            elif pending is not None and pending[0].layer == item.layer:  # pairs never mix layers
                pending.append(item)
                pending = None
            else:
                pending = [item]
                rows.append(pending)
        return rows

    def figures(self, items: Sequence[Any], heading: str = "", by_layer: bool = False) -> None:
        """Place figures (:class:`~modularity.output.figures.FigureInfo`) on new pages, with numbered captions.

        Items fill a two-column grid row by row: ``pdf_span`` 2 takes a whole
        row, ``pdf_span`` 1 half of one (a lone half-width item keeps the
        half width; pairs never mix layers). ``pdf_height`` is each figure's
        height (lowered when a row is taller than a page); its width is the
        cell's. Each figure's size on the page is the size it is drawn at
        (``info.width``, ``info.height`` are set here). ``by_layer``: each
        layer's figures start a new page headed ``"<heading>: <layer>"``.
        """
        if not items:
            return
        groups: list[tuple[str, list[Any]]] = []
        for item in items:
            title = f"{heading}: {item.layer}" if by_layer and item.layer else heading
            if by_layer and groups and groups[-1][0] == title:
                groups[-1][1].append(item)
            elif by_layer or not groups:
                groups.append((title, [item]))
            else:
                groups[-1][1].append(item)
        for title, group in groups:
            self._figure_group(group, title, by_layer)
        self._y = None

    def _figure_group(self, items: Sequence[Any], heading: str, continued: bool) -> None:
        head_h = _line_in(TEXT_SIZES["heading"]) + 0.1 if heading else 0.0
        area = self.top - self.bottom - head_h
        cap_step = _line_in(self.caption_font)
        planned = []
        for row in self._rows(items):
            cell_w = self.width if len(row) == 1 and row[0].pdf_span >= 2 else (self.width - self.gap_in) / 2
            caps = []
            for item in row:
                self.n_figures += 1
                caps.append(self.caption_lines(f"Figure {self.n_figures}. {item.title}. {item.caption}", cell_w))
            cap_h = max(len(c) for c in caps) * cap_step + 0.08
            fig_h = min(max(i.pdf_height for i in row), area - cap_h - 0.05)
            planned.append((row, caps, cell_w, fig_h, cap_h))
        page = None
        for row, caps, cell_w, fig_h, cap_h in planned:
            need = fig_h + cap_h
            if page is None or self._y - need < self.bottom:
                more = continued and page is not None
                page = self._new_page()
                if heading:
                    suffix = " (continued)" if more else ""
                    room = self.width - text_width(suffix, TEXT_SIZES["heading"], "bold")
                    page.texts.append(Text(self.margin_in, self.top,
                                           shorten(heading, room, TEXT_SIZES["heading"], "bold") + suffix,
                                           TEXT_SIZES["heading"], "bold"))
                    self._y = self.top - head_h
            y_fig = self._y - fig_h
            for k, (item, cap) in enumerate(zip(row, caps)):
                x = self.margin_in + k * (cell_w + self.gap_in)
                item.width, item.height = cell_w, fig_h
                page.cells.append(Cell(item, x, y_fig, cell_w, fig_h))
                page.texts.append(Text(x, y_fig - 0.06, "\n".join(cap), self.caption_font, colour="0.2",
                                       linespacing=_LEADING))
            self._y = y_fig - cap_h - self.gap_in

    # ------------------------------------------------------------------------------------------ write

    def write(self, rendered: Sequence[bytes]) -> Path:
        """Write the drawn pages (one-page PDFs, in page order) as the report's file."""
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter()
        for data in rendered:
            writer.append(PdfReader(io.BytesIO(data)))
        writer.add_metadata({"/Title": self.title, "/Creator": "modularity"})
        writer.compress_identical_objects()  # the pages share fonts and styles
        with self.path.open("wb") as fh:
            writer.write(fh)
        return self.path

