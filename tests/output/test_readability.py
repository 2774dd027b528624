"""Figures are readable where they are shown: fonts big enough at their displayed size, no colliding text."""

from __future__ import annotations

import matplotlib.text
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from modularity.arrays import figure_arrays
from modularity.output.pages import HTML_WIDTH_PX, RASTER_DPI, VECTOR_HTML_DPI
from modularity.output.plots import MIN_FONT, network_figure
from modularity.output.report import plan_report
from modularity.output.text import quiet_glyphs
from modularity.pipeline import profiles_of
from tests.output.conftest import WEIRD
from tests.output.pdf_layout import overlapping_pairs

READABLE_PT = 6.0
CSS_PX_PER_IN = 96  # a CSS pixel is 1/96 inch: what a 1280 px wide window shows at 100 % zoom


@pytest.fixture(scope="module")
def planned(planted, tmp_path_factory):
    """The report's figures with the sizes the PDF gives them (nothing drawn), the concat layer named WEIRD."""
    result, graph = planted()
    arrays = figure_arrays(graph, result, profiles_of(graph, result))
    result.layers[-1].name = WEIRD
    figures, _ = plan_report(result, arrays, tmp_path_factory.mktemp("plan"))
    return figures


def _drawn(info, monkeypatch) -> tuple[Figure, list[tuple[str, float, object]]]:
    """The figure drawn alone at its size on the PDF page, laid out as on the page, with every text it drew:
    (text, font size, box in pixels). Recorded while drawing: a figure also holds texts it never draws (the
    labels of ticks outside the axis range, inner labels of shared axes)."""
    drawn = []
    original = matplotlib.text.Text.draw

    def record(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self.get_text(), self.get_fontsize(), self.get_window_extent(renderer)))

    fig = Figure(figsize=(info.width, info.height), layout=None if info.raster else "constrained")
    FigureCanvasAgg(fig)
    with quiet_glyphs(), monkeypatch.context() as m:  # the weird layer name has glyphs DejaVu Sans lacks
        info.draw(fig)
        m.setattr(matplotlib.text.Text, "draw", record)
        fig.canvas.draw()
    # constrained layout draws once without rendering first: keep the last drawing's texts
    return fig, _last_pass(drawn)


def _last_pass(drawn):
    seen, out = set(), []
    for item in reversed(drawn):
        key = (item[0], round(item[2].x0, 1), round(item[2].y0, 1))
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out[::-1]


def _shown_scale(info) -> tuple[float, float]:
    """(PDF, HTML at a 1280 px window): how many points a point of the figure is where it is shown.

    On the PDF page a figure has the size it was drawn at. The HTML shows its
    PNG at its pixel width, at most the report's column.
    """
    dpi = RASTER_DPI if info.raster else VECTOR_HTML_DPI
    pixels = info.width * dpi
    return 1.0, min(pixels, HTML_WIDTH_PX) / (info.width * CSS_PX_PER_IN)


def test_every_figure_has_a_size_on_the_page(planned):
    assert all(f.width and f.height and f.width <= 7.2 and f.height <= 10.2 for f in planned)
    assert {f.key.split(":")[0] for f in planned} >= {"overview", "filters", "spectrum", "embedding", "matrix",
                                                       "confusion", "null", "sheet"}


def test_no_text_is_smaller_than_readable_where_the_figure_is_shown(planned, monkeypatch):
    """Computed from each figure's font sizes, its size in inches and the size it is placed at (PDF, HTML)."""
    smallest = {}
    for info in planned:
        sizes = [size for _, size, _ in _drawn(info, monkeypatch)[1]]
        pdf, html = _shown_scale(info)
        smallest[info.key] = (min(sizes) * pdf, min(sizes) * html)
    assert min(v[0] for v in smallest.values()) >= MIN_FONT >= READABLE_PT, smallest
    assert min(v[1] for v in smallest.values()) >= READABLE_PT, smallest


def test_no_two_texts_of_a_figure_collide(planned, monkeypatch):
    """Axis labels, tick labels, titles and legends of every figure (sheets too: they are images in the PDF,
    where the PDF check cannot see their text) keep apart."""
    found = {}
    for info in planned:
        fig, drawn = _drawn(info, monkeypatch)
        boxes = np.array([[b.x0, fig.bbox.height - b.y1, b.x1, fig.bbox.height - b.y0] for _, _, b in drawn])
        pairs = overlapping_pairs(boxes * 72 / fig.dpi)  # pixels to points
        if pairs:
            found[info.key] = [(drawn[i][0][:30], drawn[j][0][:30]) for i, j in pairs]
    assert found == {}


def test_the_html_shows_the_overview_as_wide_as_its_column(report_folder):
    """At a 1280 px window the overview fills the report's column, and its layer names read at 7 pt or more."""
    folder, _ = report_folder
    from PIL import Image

    with Image.open(folder / "figures" / "overview.png") as image:
        width = image.size[0]
    assert width >= 0.95 * HTML_WIDTH_PX
    fig = network_figure(["a", "b"], [[1.0], [1.0]], [0.0, 0.0], [1.0, 2.0], [True, False], [None, None],
                         [False, False])
    names = min(t.get_fontsize() for t in fig.axes[0].get_yticklabels())
    assert names * min(width, HTML_WIDTH_PX) / (7.17 * CSS_PX_PER_IN) >= 7.0
