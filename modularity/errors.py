"""Errors the tool reports to users as one clear line."""

from __future__ import annotations

__all__ = ["ModularityError"]


class ModularityError(Exception):
    """A problem with the user's input, reported as one line without a traceback.

    The message names what was wrong and what would be accepted. The CLI prints
    it as ``error: <message>`` and exits with status 2.
    """
