"""Text from outside made fit to keep: control characters escaped.

Reject reasons quote what was refused (a field of a file row, a venue frame), and that may hold
anything: a NUL byte, which PostgreSQL refuses in text, or a line break that would split a log
line. :func:`printable` makes it one line; it is idempotent, so text that went through it once
goes through again unchanged.
"""

from __future__ import annotations

import re
from typing import Final

_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 controls (NUL, tab, line breaks...), DEL, C1 controls and lone surrogates."""


def printable(text: str) -> str:
    """``text`` with each control character written as an escape: ``\\x00``, ``\\x0a``,
    ``\\x7f``, ``\\x9b``, and a lone surrogate as ``\\udc80``."""
    return _CONTROLS.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
