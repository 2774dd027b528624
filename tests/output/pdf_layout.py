"""Checks of a PDF's layout from the positions of what is drawn on its pages (pdfplumber).

Used by tests/output/test_pdf_layout.py on a report built from a small
analysis, and usable on any report: ``python -m tests.output.pdf_layout
report.pdf`` prints the problems of every page.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from modularity.output.pages import MARGIN_IN

MARGIN_PT = MARGIN_IN * 72
# pdfminer's box of a character is its advance wide and its font size tall. Neighbours in a word can touch by a
# fraction of a point (kerning; a superscript's box against its base), and rounding of the page's coordinates
# adds about 0.01 pt; a real collision of two labels covers several points. 1 pt tells the two apart.
OVERLAP_PT = 1.0
EDGE_PT = 0.5  # rounding of positions at the margins
MIN_TEXT_PT = 6.0


def _boxes(items) -> np.ndarray:
    return np.array([[w["x0"], w["top"], w["x1"], w["bottom"]] for w in items], dtype=float).reshape(-1, 4)


def overlapping_pairs(boxes: np.ndarray, tolerance: float = OVERLAP_PT, cell: float = 24.0) -> list[tuple[int, int]]:
    """Index pairs (i < j) of boxes (x0, top, x1, bottom) that intersect by more than ``tolerance`` both ways.

    Boxes are binned on a grid of ``cell`` points so that only neighbours are compared (a page holds thousands
    of characters).
    """
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    bins: dict[tuple[int, int], list[int]] = {}
    for n, (x0, t, x1, b) in enumerate(boxes):
        for gx in range(int(x0 // cell), int(x1 // cell) + 1):
            for gy in range(int(t // cell), int(b // cell) + 1):
                bins.setdefault((gx, gy), []).append(n)
    pairs = set()
    for members in bins.values():
        if len(members) < 2:
            continue
        m = np.array(members)
        x0, t, x1, b = (boxes[m, k] for k in range(4))
        w = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
        h = np.minimum(b[:, None], b[None, :]) - np.maximum(t[:, None], t[None, :])
        i, j = np.nonzero(np.triu((w > tolerance) & (h > tolerance), k=1))
        pairs.update(zip(m[i].tolist(), m[j].tolist()))
    return sorted(pairs)


def _word_at(words, char) -> str:
    """The word a character belongs to (for messages)."""
    for w in words:
        if w["x0"] - 0.1 <= char["x0"] and char["x1"] <= w["x1"] + 0.1 and w["top"] - 0.1 <= char["top"] \
                and char["bottom"] <= w["bottom"] + 0.1:
            return w["text"]
    return char["text"]


def page_problems(page) -> list[str]:
    """What is wrong with one pdfplumber page: text or graphics outside the margins, overlapping text,
    text over a raster figure, text smaller than :data:`MIN_TEXT_PT`, a heading over a drawing."""
    problems = []
    width, height = float(page.width), float(page.height)
    lo_x, hi_x = MARGIN_PT - EDGE_PT, width - MARGIN_PT + EDGE_PT
    lo_y, hi_y = MARGIN_PT - EDGE_PT, height - MARGIN_PT + EDGE_PT
    words = page.extract_words(extra_attrs=["size", "upright"], keep_blank_chars=False)
    for w in words:
        if w["x0"] < lo_x or w["x1"] > hi_x or w["top"] < lo_y or w["bottom"] > hi_y:
            problems.append(f"text outside the margins: {w['text']!r} at ({w['x0']:.0f}, {w['top']:.0f})")
    for c in page.chars:
        # a character's box is its font size tall when upright; turned a quarter (a y-axis label), as wide
        size = c["size"] if c["upright"] else c["x1"] - c["x0"]
        if c["text"].strip() and size < MIN_TEXT_PT - 0.05:
            problems.append(f"text at {size:.1f} pt: {c['text']!r} near ({c['x0']:.0f}, {c['top']:.0f})")
    # characters, not words: two strings drawn over each other on one line read back as one word
    chars = [c for c in page.chars if c["text"].strip()]
    for i, j in overlapping_pairs(_boxes(chars)):
        if j == i + 1 and abs(chars[i]["top"] - chars[j]["top"]) < 0.01:
            continue  # neighbours in one string: kerning ("y." "Te") tucks one glyph's box under the next
        problems.append(f"overlapping text: {_word_at(words, chars[i])!r} and {_word_at(words, chars[j])!r} near "
                        f"({chars[i]['x0']:.0f}, {chars[i]['top']:.0f})")
    boxes = _boxes(words)
    images = page.images
    background = [r for r in page.rects if r["x1"] - r["x0"] >= width - 1 and r["bottom"] - r["top"] >= height - 1]
    drawn = list(images) + [r for r in page.rects if r not in background] + list(page.lines) + list(page.curves)
    for d in drawn:
        if d["x0"] < lo_x or d["x1"] > hi_x or d["top"] < lo_y or d["bottom"] > hi_y:
            problems.append(f"{d.get('object_type', 'drawing')} outside the margins at ({d['x0']:.0f}, {d['top']:.0f})")
    # a raster figure (an image most of the text width wide) carries its own text: nothing may be drawn over it;
    # smaller images are parts of vector figures (heatmaps), which may carry numbers and labels
    figures = [im for im in images if im["x1"] - im["x0"] > 0.6 * (width - 2 * MARGIN_PT)]
    if figures and words:
        for i, j in overlapping_pairs(np.vstack([_boxes(figures), boxes]), OVERLAP_PT):
            if i < len(figures) <= j:
                problems.append(f"text over a raster figure: {words[j - len(figures)]['text']!r}")
    # headings (the page's, the report's title: 11.5 pt and up; figures' own titles are smaller) over no drawing
    headings = [w for w in words if w["size"] >= 11.5]
    if headings and drawn:
        shapes = _boxes(drawn)
        for i, j in overlapping_pairs(np.vstack([_boxes(headings), shapes])):
            if i < len(headings) <= j:
                problems.append(f"heading {headings[i]['text']!r} runs into the drawing below it")
    return problems


def pdf_problems(path: str | Path) -> dict[int, list[str]]:
    """Problems of every page (1-based page numbers; pages without problems left out)."""
    import pdfplumber

    out = {}
    with pdfplumber.open(str(path)) as pdf:
        for number, page in enumerate(pdf.pages, 1):
            found = page_problems(page)
            if found:
                out[number] = found
    return out


if __name__ == "__main__":  # pragma: no cover
    for name in sys.argv[1:]:
        for number, found in pdf_problems(name).items():
            for line in found:
                print(f"{name}: page {number}: {line}")
