"""Pages of a PDF report as plain data, and drawing one page with its figure files.

A report is planned first (:mod:`modularity.output.pdf` places text, tables and
figure cells in inches) and drawn afterwards, page by page, in any process
(:mod:`modularity.output.render`). Drawing a page is the only place a figure is
drawn: each figure is drawn once, into its cell of the page, at the size it has
on the page, and every file of it comes from that one figure object:

* a **vector** cell (summary and featured figures) is saved with the page as
  vector PDF; the PNG the HTML report embeds is cut from that PDF page
  rendered at :data:`VECTOR_HTML_DPI` (PDFium), and, where asked, the SVG is
  the page cropped to the cell with everything else hidden;
* a **raster** cell (the layer sheets of the appendix, about 50 of them, where
  vectors would make the PDF slow to draw and to open) is drawn once into an
  image at :data:`RASTER_DPI`, reduced to a palette, saved as PNG (the file
  the HTML report shows) and placed on the page as it is.

Coordinates are in inches from the bottom-left corner of the page.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from .text import quiet_glyphs

__all__ = ["PAGE_SIZE", "MARGIN_IN", "RASTER_DPI", "HTML_WIDTH_PX", "VECTOR_HTML_DPI", "Text",
           "Rule", "Band", "Cell", "Page", "RenderedPage", "render_page", "quiet_glyphs"]

PAGE_SIZE = (8.27, 11.69)
"""Every page of every PDF report: A4 portrait, in inches."""
MARGIN_IN = 0.55
"""Nothing is drawn closer than this to a page's edge, the page number included."""
RASTER_DPI = 120
"""Resolution of the raster figures (layer sheets), in the PDF and in their PNG files (which the HTML report
shows at their natural size): 7 pt text is 12 pixels high, and 50 sheets stay under 2 MB."""
HTML_WIDTH_PX = 1100
"""Widest an HTML figure is shown: the report's column at a 1280 px window (CSS pixels)."""
VECTOR_HTML_DPI = int(HTML_WIDTH_PX / (PAGE_SIZE[0] - 2 * MARGIN_IN))
"""Resolution of the vector figures' HTML images: a figure that spans the PDF page's text width is as wide as
the HTML report's column (:data:`HTML_WIDTH_PX`), so it reads as large on screen as on paper."""
_PALETTE_COLOURS = 256


# ------------------------------------------------------------------------------------------------ items

@dataclass(frozen=True)
class Text:
    """A run of text (one or more lines) placed at (x, y) inches."""

    x: float
    y: float
    text: str
    size: float
    weight: str = "normal"
    family: str = "sans-serif"
    colour: str = "black"
    ha: str = "left"
    va: str = "top"
    linespacing: float = 1.2


@dataclass(frozen=True)
class Rule:
    """A horizontal line from x0 to x1 at height y."""

    x0: float
    x1: float
    y: float
    colour: str = "0.2"
    width: float = 0.8


@dataclass(frozen=True)
class Band:
    """A filled rectangle (table row shading) behind the text."""

    x: float
    y: float
    width: float
    height: float
    colour: str = "0.95"


@dataclass
class Cell:
    """A figure's rectangle on a page (x, y: its bottom-left corner).

    ``figure`` is a :class:`modularity.output.figures.FigureInfo`: its ``draw``
    draws it, ``stem`` names its files, ``raster`` and ``svg`` say how it is saved.
    """

    figure: Any
    x: float
    y: float
    width: float
    height: float

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) in inches."""
        return self.x, self.y, self.x + self.width, self.y + self.height


@dataclass
class Page:
    """Everything on one page: text, rules, bands and figure cells (all vector, or all raster)."""

    number: int
    texts: list[Text] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)

    @property
    def raster(self) -> bool:
        return any(c.figure.raster for c in self.cells)

    def cost(self) -> float:
        """A rough relative drawing cost, to start the slow pages first."""
        return 1.0 + sum(4.0 if c.figure.raster else 6.0 for c in self.cells)


@dataclass
class RenderedPage:
    """What drawing a page gives back: the page as a one-page PDF and the files written per figure key."""

    number: int
    pdf: bytes
    files: dict[str, list[str]]
    sizes: dict[str, tuple[int, int]]


# ----------------------------------------------------------------------------------------------- drawing

_STYLE = {"pdf.fonttype": 3, "svg.fonttype": "path", "svg.hashsalt": "modularity", "pdf.compression": 6}


def render_page(page: Page, folder: str | Path) -> RenderedPage:
    """Draw ``page``: return it as a one-page PDF and write its figures' PNG (and SVG) files into ``folder``.

    The page comes out the same, byte for byte, in every process (:func:`_settle`), so that ``report DIR``
    redraws what ``analyze`` drew.
    """
    import matplotlib

    with matplotlib.rc_context(cast(Any, _STYLE)), quiet_glyphs():  # its stubs want literal rc keys
        return _render(page, Path(folder))


def _render(page: Page, folder: Path) -> RenderedPage:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    w, h = PAGE_SIZE
    vector = [c for c in page.cells if not c.figure.raster]
    fig = Figure(figsize=PAGE_SIZE, layout="constrained" if vector else None)
    fig.patch.set_visible(False)  # paper is white: no page-sized rectangle under everything
    for b in page.bands:
        fig.add_artist(Rectangle((b.x / w, b.y / h), b.width / w, b.height / h, color=b.colour, lw=0, zorder=-1))
    for r in page.rules:
        fig.add_artist(Line2D([r.x0 / w, r.x1 / w], [r.y / h, r.y / h], color=r.colour, lw=r.width))
    for t in page.texts:
        fig.text(t.x / w, t.y / h, _tex(t.text), fontsize=t.size, weight=t.weight, family=t.family, color=t.colour,
                 ha=t.ha, va=t.va, linespacing=t.linespacing)
    files: dict[str, list[str]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for cell in page.cells:
        if cell.figure.raster:
            files[cell.figure.key], sizes[cell.figure.key] = _raster_cell(fig, cell, folder)
    subfigures = _vector_cells(fig, vector) if vector else []
    if vector:
        # lay out once, then freeze: saving would otherwise lay out again in a dry draw before each format
        engine = fig.get_layout_engine()
        assert engine is not None  # made with layout="constrained" when there are vector cells
        engine.execute(fig)
        fig.set_layout_engine("none")
        _settle(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="pdf", metadata={"Creator": None, "Producer": None, "CreationDate": None})
    if vector:
        files.update(_crops(fig, vector, subfigures, folder, sizes, buffer.getvalue()))
    return RenderedPage(page.number, buffer.getvalue(), files, sizes)


_SETTLE_GRID = 2.0 ** 24
"""Positions are rounded to 1/2**24 of their (sub)figure: 0.00005 pt on an A4 page, far below a pixel and far
above the solver's noise (about 1e-15). A binary grid, because laid-out positions often sit exactly halfway
between decimal ones (0.8153203125), where that noise would round them either way."""


def _snap(values: Any) -> np.ndarray:
    return np.round(np.asarray(values, dtype=float) * _SETTLE_GRID) / _SETTLE_GRID


def _settle(fig) -> None:
    """Round every position constrained layout chose, so that the page is the same in every process.

    Its solver (kiwisolver) orders its work by where objects sit in memory, so
    the same layout comes out differing in the last bits from one process to
    the next; that moves nothing on the page but changes the PDF's and SVG's
    bytes (clip boxes, coordinates).
    """
    from matplotlib.axes import Axes
    from matplotlib.figure import SubFigure
    from matplotlib.transforms import Bbox

    for sub in fig.findobj(SubFigure):
        sub._redo_transform_rel_fig(bbox=Bbox(_snap(sub.bbox_relative.get_points())))
    for ax in fig.findobj(Axes):  # both positions: an axes with a fixed aspect is drawn inside its original one
        ax._set_position(Bbox(_snap(ax.get_position(original=True).get_points())), "original")
        ax._set_position(Bbox(_snap(ax.get_position(original=False).get_points())), "active")
    for sub in [fig, *fig.findobj(SubFigure)]:
        for label in (sub._suptitle, sub._supxlabel, sub._supylabel):
            if label is not None:
                label.set_position(tuple(_snap(label.get_position())))


def _tex(s: str) -> str:
    """Text safe for matplotlib (no mathtext from ``$``)."""
    return str(s).replace("$", r"\$")


def _vector_cells(fig, cells: list[Cell]) -> list:
    """Subfigures exactly at the cells' rectangles, laid out together by constrained layout.

    The page is cut into nested subfigures by width and height ratios alone
    (rows top to bottom, cells left to right, margins and gaps as empty
    subfigures), which is where constrained layout keeps them; it arranges the
    axes inside each. So every figure is drawn already knowing its final size
    (its titles and labels are fitted to it).
    """
    w, h = PAGE_SIZE
    rows: dict[tuple[float, float], list[Cell]] = {}
    for c in cells:
        rows.setdefault((round(c.y + c.height, 4), round(c.height, 4)), []).append(c)
    fig.get_layout_engine().set(rect=(0, 0, 1, 1), w_pad=3 / 72, h_pad=3 / 72, hspace=0.0,
                                wspace=0.0)  # 3 pt around axes and titles
    heights: list[float] = []
    kinds: list[list[Cell] | None] = []
    y = h
    for (row_top, row_h), row in sorted(rows.items(), key=lambda kv: -kv[0][0]):
        if y - row_top > 1e-6:
            heights.append(y - row_top)
            kinds.append(None)
        heights.append(row_h)
        kinds.append(sorted(row, key=lambda c: c.x))
        y = row_top - row_h
    if y > 1e-6:
        heights.append(y)
        kinds.append(None)
    bands = fig.subfigures(len(heights), 1, height_ratios=heights, hspace=0.0, squeeze=False, facecolor="none")[:, 0]
    placed: dict[int, Any] = {}
    for band, kind in zip(bands, kinds):
        if kind is None:
            continue
        widths: list[float] = []
        slots: list[Cell | None] = []
        x = 0.0
        for c in kind:
            if c.x - x > 1e-6:
                widths.append(c.x - x)
                slots.append(None)
            widths.append(c.width)
            slots.append(c)
            x = c.x + c.width
        if w - x > 1e-6:
            widths.append(w - x)
            slots.append(None)
        subs = band.subfigures(1, len(widths), width_ratios=widths, wspace=0.0, squeeze=False,
                               facecolor="none")[0]
        for sub, slot in zip(subs, slots):
            if slot is not None:
                slot.figure.draw(sub)
                placed[id(slot)] = sub
    return [placed[id(c)] for c in cells]


def _crops(fig, cells: list[Cell], subfigures: list, folder: Path, sizes: dict[str, tuple[int, int]],
           pdf: bytes) -> dict[str, list[str]]:
    """Save each vector cell on its own: PNG for the HTML cut from an image of the page, SVG where asked.

    The image is the page's PDF rendered by PDFium (pypdfium2): the HTML shows
    exactly what the PDF does, and rendering the finished PDF takes about a
    tenth of the time of drawing the page again with matplotlib's Agg.
    """
    import pypdfium2
    from matplotlib.transforms import Bbox

    dpi = VECTOR_HTML_DPI
    document = pypdfium2.PdfDocument(pdf)
    try:
        page = document[0].render(scale=dpi / 72, fill_color=(255, 255, 255, 255)).to_pil().convert("RGB")
    finally:
        document.close()
    _, height = PAGE_SIZE
    files: dict[str, list[str]] = {}
    for cell in cells:
        info = cell.figure
        (folder / info.stem).parent.mkdir(parents=True, exist_ok=True)
        x0, y0, x1, y1 = cell.rect
        box = (round(x0 * dpi), round((height - y1) * dpi), round(x1 * dpi), round((height - y0) * dpi))
        sizes[info.key] = _save_png(page.crop(box), folder / f"{info.stem}.png", info.palette, dpi)
        files[info.key] = [f"{info.stem}.png"]
    svg = [(c, s) for c, s in zip(cells, subfigures) if c.figure.svg]
    if svg:
        # the page's own text, rules and bands are children of the page; the cells are subfigures of rows
        for a in fig.texts + fig.lines + fig.patches + fig.artists + subfigures:
            a.set_visible(False)
        for cell, sub in svg:
            sub.set_visible(True)
            fig.savefig(folder / f"{cell.figure.stem}.svg", format="svg", bbox_inches=Bbox.from_extents(*cell.rect),
                        metadata={"Date": None, "Creator": None})
            files[cell.figure.key].append(f"{cell.figure.stem}.svg")
            sub.set_visible(False)
    return files


def _raster_cell(fig, cell: Cell, folder: Path) -> tuple[list[str], tuple[int, int]]:
    """Draw a raster figure once at :data:`RASTER_DPI`: one palette image, its PNG file and its place on the page."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    info = cell.figure
    own = Figure(figsize=(cell.width, cell.height), dpi=RASTER_DPI)
    canvas = FigureCanvasAgg(own)
    info.draw(own)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    image = image.convert("RGB")
    if info.palette:
        image = _palette(image)
    path = folder / f"{info.stem}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    size = _save_png(image, path, False, RASTER_DPI)
    w, h = PAGE_SIZE
    ax = fig.add_axes((cell.x / w, cell.y / h, cell.width / w, cell.height / h))
    ax.set_axis_off()
    # interpolation "none": the PDF gets the pixels as they are (a palette image where there are <= 256 colours)
    ax.imshow(np.asarray(image.convert("RGB")), interpolation="none", aspect="auto")
    return [f"{info.stem}.png"], size


def _palette(image):
    """An adaptive palette of at most 256 colours, without dithering (plots are flat colours and lines)."""
    from PIL import Image

    # fast octree: about six times faster than median cut here, and smaller files
    return image.quantize(_PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def _save_png(data: Any, path: Path, palette: bool, dpi: int) -> tuple[int, int]:
    """Write a PNG (PNG bytes or a PIL image; a palette image where ``palette``) with its resolution.

    Returns its size in pixels.
    """
    from PIL import Image

    image = Image.open(io.BytesIO(data)) if isinstance(data, bytes) else data
    if image.mode != "P":
        image = image.convert("RGB")
        if palette:
            image = _palette(image)
    image.save(path, "PNG", compress_level=6, dpi=(dpi, dpi))  # level 9 saves 4% at seven times the time
    return image.size

