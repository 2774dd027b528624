"""Errors the tool reports to users as one clear line, and the escaping that keeps them one line."""

from __future__ import annotations

import re

__all__ = ["ModularityError", "escape_line"]


class ModularityError(Exception):
    """A problem with the user's input, reported as one line without a traceback.

    The message names what was wrong and what would be accepted. The CLI prints
    it as ``error: <message>`` (through :func:`escape_line`) and exits with
    status 2.
    """


# C0 controls (newline, carriage return, escape, ...), DEL, C1 controls, and the Unicode characters that break
# or reorder a line in a terminal: line and paragraph separators, bidirectional overrides and isolates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_line(text: str) -> str:
    r"""``text`` with every control character written as an escape, so it prints as one inert line.

    Names echoed in messages come from files and command lines (weights
    paths, ONNX node names, layer names) and may carry newlines or ANSI
    escape sequences; printed raw, they would split the one-line error or
    drive the terminal. Lone surrogates (from undecodable file names) are
    escaped too, so printing never fails.

    Examples
    --------
    >>> escape_line("layer 'a\nb' has \x1b[31mred\x1b[0m weights")
    "layer 'a\\nb' has \\x1b[31mred\\x1b[0m weights"
    """
    def sub(match: re.Match[str]) -> str:
        ch = match.group()
        if ch in _NAMED:
            return _NAMED[ch]
        code = ord(ch)
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

    return _UNSAFE.sub(sub, str(text))
