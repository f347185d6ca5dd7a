"""Text from outside made fit to keep: control characters escaped, length bounded.

Reject reasons quote what was refused (a field of a file row, a venue frame), and that may hold
anything: a NUL byte, which PostgreSQL refuses in text, a line break that would split a log
line, or megabytes of one field. :func:`printable` and :func:`clipped` make it one bounded
line; both are idempotent, so text that went through them once goes through again unchanged.
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


def clipped(text: str, most: int) -> str:
    """``text`` when it has at most ``most`` characters; else its start and a marker that
    says how long it was (``... [cut from 3,000,033 characters]``), ``most`` in all."""
    if len(text) <= most:
        return text
    marker = f"... [cut from {len(text):,} characters]"
    return text[: max(0, most - len(marker))] + marker
