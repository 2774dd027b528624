"""The PDF report lays out: every page rendered and read back, text and drawings placed, tables that fill pages."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from modularity.output.pages import MARGIN_IN, PAGE_SIZE
from modularity.output.pdf import PdfReport, text_width, wrap
from tests.output.pdf_layout import overlapping_pairs, page_problems, pdf_problems

pdfplumber = pytest.importorskip("pdfplumber", reason="pdfplumber reads the PDF back (requirements-test.txt)")


def test_every_page_of_a_report_renders_and_lays_out(report_folder):
    """Every page renders; no text or drawing crosses the margins, no two words overlap, no text sits over a
    raster figure or is smaller than 6 pt, no heading runs into what is below it."""
    folder, _ = report_folder
    with pdfplumber.open(str(folder / "report.pdf")) as pdf:
        sizes = {(round(float(p.width)), round(float(p.height))) for p in pdf.pages}
        inked = []
        for page in pdf.pages:
            image = np.asarray(page.to_image(resolution=20).original.convert("L"))
            inked.append(float((image < 200).mean()))
        problems = {n: page_problems(p) for n, p in enumerate(pdf.pages, 1)}
    assert sizes == {(round(PAGE_SIZE[0] * 72), round(PAGE_SIZE[1] * 72))}  # one page size: A4 portrait
    assert min(inked) > 0.0003, inked  # every page rendered with something on it
    assert {n: p for n, p in problems.items() if p} == {}


def test_the_layout_check_finds_text_outside_the_margins_and_overlapping_words(tmp_path):
    """The check itself: a page with a word in the margin, two colliding words and a header over a drawing."""
    fig = Figure(figsize=PAGE_SIZE)
    fig.text(0.1 / PAGE_SIZE[0], 0.5, "margin", fontsize=9)
    fig.text(0.3, 0.5, "collide", fontsize=9)
    fig.text(0.3 + 2 / 72 / PAGE_SIZE[0], 0.5 + 2 / 72 / PAGE_SIZE[1], "collide", fontsize=9)
    fig.text(0.3, 0.8, "Heading", fontsize=12, weight="bold", va="top")
    ax = fig.add_axes((0.2, 0.3, 0.5, 0.52))
    ax.plot([0, 1], [0, 1])
    path = tmp_path / "bad.pdf"
    fig.savefig(path)
    found = " | ".join(pdf_problems(path)[1])
    # the two strings read back as one word ('ccoolllliiddee'): the check compares characters
    assert "outside the margins: 'margin'" in found and "overlapping text: 'ccoolllliiddee'" in found
    assert "heading 'Heading' runs into the drawing" in found


def test_overlaps_allow_touching_boxes_only():
    boxes = np.array([[0, 0, 10, 10], [9.5, 0, 20, 10], [15, 5, 25, 15]], dtype=float)
    assert overlapping_pairs(boxes) == [(1, 2)]  # 0.5 pt of touching is not a collision; 5 x 5 pt is


def test_wrapped_text_stays_within_its_width():
    text = "a_very_long.layer_name.without_spaces_at_all " * 3 + "and plain words " * 20
    lines = wrap(text, 2.0, 9.5)
    assert all(text_width(line, 9.5) <= 2.0 for line in lines) and "".join(lines).replace(" ", "") == \
        text.replace(" ", "")


def _table_pages(pdf: PdfReport) -> list[int]:
    """Data rows of the table on each page that holds some."""
    counts = [sum(1 for t in p.texts if t.text.startswith("layer") and t.size < 8) for p in pdf.pages]
    return [c for c in counts if c]


@pytest.mark.parametrize("extra", [1, 30, 200])
def test_a_table_longer_than_a_page_is_split_evenly(tmp_path, extra):
    """A table a row (or more) longer than its first page: pages of nearly equal length, never a lone row."""
    probe = PdfReport(tmp_path / "probe.pdf")
    probe.table(["name", "kind", "units"], [[f"layer{i}", "conv", str(i)] for i in range(400)], "Per-layer summary")
    first = _table_pages(probe)[0]  # rows that fit the first page
    pdf = PdfReport(tmp_path / "t.pdf")
    pdf.table(["name", "kind", "units"], [[f"layer{i}", "conv", str(i)] for i in range(first + extra)],
              "Per-layer summary")
    counts = _table_pages(pdf)
    assert sum(counts) == first + extra and min(counts) >= 0.8 * max(counts), counts


def test_a_table_that_fits_a_page_is_not_split(tmp_path):
    pdf = PdfReport(tmp_path / "t.pdf")
    pdf.text([("text", "words " * 600)])  # most of a page of text first
    pdf.table(["name", "kind"], [[f"layer{i}", "conv"] for i in range(20)], "Per-layer summary")
    assert _table_pages(pdf) == [20]


def test_a_long_command_line_shares_its_page_with_what_follows(tmp_path):
    """nsfwjs' front page once spilled a wrapped command line alone onto page 2."""
    pdf = PdfReport(tmp_path / "t.pdf")
    command = "python -m modularity analyze " + "x" * 500
    pdf.text([("title", "What the weights say"), ("heading", "Findings")] + [("text", "finding " * 150)] * 3
             + [("line", f"key: value {i}") for i in range(14)] + [("line", "Command line:"), ("mono", command)])
    pdf.table(["name", "kind"], [[f"layer{i}", "conv"] for i in range(10)], "Per-layer summary")
    for page in pdf.pages:
        content = [t for t in page.texts if t.text != str(page.number)]
        assert not all(t.family == "monospace" for t in content), [t.text for t in content]


def test_text_placed_by_the_layout_stays_inside_the_margins(tmp_path):
    pdf = PdfReport(tmp_path / "t.pdf")
    pdf.text([("title", "A title " * 12), ("text", "word " * 400), ("mono", "y" * 700)])
    pdf.table(["layer"] + [f"column {j}" for j in range(30)], [[f"_blocks.{i}._project_conv"] + ["0.000123"] * 30
                                                              for i in range(70)], "Wide table", note="n " * 200)
    w, h = PAGE_SIZE
    for page in pdf.pages:
        for t in page.texts:
            width = max(text_width(line, t.size, t.weight, t.family) for line in t.text.split("\n"))
            x0 = t.x if t.ha == "left" else t.x - width
            assert x0 >= MARGIN_IN - 1e-6 and x0 + width <= w - MARGIN_IN + 1e-6, t.text
            assert MARGIN_IN <= t.y <= h - MARGIN_IN, t.text


def test_the_written_pdf_has_the_pages_in_order(tmp_path):
    pdf = PdfReport(tmp_path / "t.pdf", title="a title")
    rendered = []
    for n in (1, 2, 3):
        fig = Figure(figsize=PAGE_SIZE)
        fig.text(0.5, 0.5, f"page {n}")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf")
        rendered.append(buffer.getvalue())
    pdf.write(rendered)
    with pdfplumber.open(str(pdf.path)) as read:
        assert [p.extract_text() for p in read.pages] == ["page 1", "page 2", "page 3"]
        assert read.metadata["Title"] == "a title"


EXAMPLES = sorted((Path(__file__).parents[2] / "reports").glob("*/report.pdf"))


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_every_example_report_in_the_repository_lays_out(path):
    """The committed example reports (reports/<example>/report.pdf) pass the same page checks."""
    with pdfplumber.open(str(path)) as pdf:
        problems = {n: page_problems(p) for n, p in enumerate(pdf.pages, 1)}
        assert len(pdf.pages) > 3
    assert {n: p for n, p in problems.items() if p} == {}
