"""Measured text: widths, wrapping and shortening with the fonts matplotlib draws in.

Layout code (the PDF's pages, figure titles) places text by its measured
width rather than by counting characters: layer names can hold wide glyphs
(CJK, drawn from a fallback font) that a character count underestimates.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from functools import lru_cache

__all__ = ["text_width", "wrap", "shorten", "pieces", "quiet_glyphs"]


@contextlib.contextmanager
def quiet_glyphs() -> Iterator[None]:
    """Silence matplotlib's "Glyph ... missing from font" warnings inside the block.

    Layer names in scripts the default font lacks (CJK, ...) show as boxes in
    figures; the HTML report shows them correctly.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        yield


_DPI = 720
_SAFETY = 0.98  # the PDF lays out text unhinted, Agg hinted: lines may come out up to ~1% wider than measured


@lru_cache(maxsize=1)
def _renderer():
    from matplotlib.backends.backend_agg import RendererAgg

    # at 720 dpi: at 72 dpi the hinted layout snaps widths to whole points (6.5 pt and 7 pt text measure alike)
    return RendererAgg(10, 10, _DPI)


@lru_cache(maxsize=65536)
def text_width(text: str, size: float, weight: str = "normal", family: str = "sans-serif") -> float:
    """Width in inches of one line of ``text`` drawn by matplotlib in that font (``$`` taken literally)."""
    from matplotlib.font_manager import FontProperties

    prop = FontProperties(size=size, weight=weight, family=family)
    with quiet_glyphs():
        return _renderer().get_text_width_height_descent(text, prop, ismath=False)[0] / _DPI


def pieces(word: str) -> list[str]:
    """A long unbreakable word cut after dots, underscores, slashes and hyphens."""
    return [p for p in re.split(r"(?<=[._/\-,=])", word) if p]


def wrap(text: str, width_in: float, size: float, weight: str = "normal", family: str = "sans-serif") -> list[str]:
    """Lines of ``text`` no wider than ``width_in`` inches: greedy at spaces, long words cut where they allow.

    Examples
    --------
    >>> wrap("a b c", 10.0, 9.5)
    ['a b c']
    >>> all(text_width(line, 9.5) <= 1.0 for line in wrap("word " * 40, 1.0, 9.5))
    True
    """
    limit = width_in * _SAFETY
    fits = lambda s: text_width(s, size, weight, family) <= limit  # noqa: E731
    space = text_width("a a", size, weight, family) - text_width("aa", size, weight, family)
    lines: list[str] = []
    current, used = "", 0.0
    for word in text.split():
        # a line's width is the sum of its words' and spaces' (each word measured once): kerning across a space
        # is nil in DejaVu, and the safety margin covers rounding
        width = text_width(word, size, weight, family)
        if current and used + space + width <= limit:
            current, used = f"{current} {word}", used + space + width
            continue
        if current:
            lines.append(current)
            current, used = "", 0.0
        if width <= limit:
            current, used = word, width
            continue
        for piece in pieces(word):  # a word wider than the line: cut it after punctuation, else anywhere
            candidate = current + piece
            if fits(candidate):
                current = candidate
                continue
            if current:
                lines.append(current)
                current = ""
            while not fits(piece):
                cut = max(1, _longest_prefix(piece, fits))
                lines.append(piece[:cut])
                piece = piece[cut:]
            current = piece
        used = text_width(current, size, weight, family)
    if current or not lines:
        lines.append(current)
    return lines


def _longest_prefix(s: str, fits) -> int:
    lo, hi = 1, len(s)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(s[:mid]):
            lo = mid
        else:
            hi = mid - 1
    return lo


def shorten(text: str, width_in: float, size: float, weight: str = "normal", family: str = "sans-serif") -> str:
    """``text`` as it is where it fits ``width_in`` inches, else cut in the middle with an ellipsis to fit.

    Examples
    --------
    >>> shorten("conv1", 1.0, 9)
    'conv1'
    >>> s = shorten("a_very_long_layer_name_" * 6, 1.5, 9)
    >>> s.startswith("a_very") and "…" in s and text_width(s, 9) <= 1.5
    True
    """
    width_in *= _SAFETY
    if text_width(text, size, weight, family) <= width_in:
        return text
    lo, hi = 1, len(text)
    best = text[:1] + "…"
    while lo <= hi:
        keep = (lo + hi) // 2
        head, tail = keep - keep // 2, keep // 2
        candidate = text[:head] + "…" + (text[-tail:] if tail else "")
        if text_width(candidate, size, weight, family) <= width_in:
            best, lo = candidate, keep + 1
        else:
            hi = keep - 1
    return best
