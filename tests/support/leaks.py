"""Which secrets a run's output gives away, whole or in part: each searched as written,
percent-encoded and JSON-escaped (the forms a URL, a query string or a JSON log line would
carry it in), and by every run of :data:`FRAGMENT` characters of those (a library that
shortens what it logs, ``'{"token": "eyJhbGciOi...'``, still gives part of it away)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

FRAGMENT: Final = 16


def spellings(secret: str) -> set[str]:
    """The forms ``secret`` may be printed in."""
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}


def fragments(text: str, size: int = FRAGMENT) -> set[str]:
    """Every run of ``size`` characters of ``text`` (``text`` itself when shorter)."""
    if len(text) <= size:
        return {text}
    return {text[i : i + size] for i in range(len(text) - size + 1)}


def leaks(output: str, secrets: Mapping[str, str]) -> list[str]:
    """The names of the ``secrets`` (name → value) that appear, whole or a run of
    :data:`FRAGMENT` characters of them, anywhere in ``output``."""
    seen = fragments(output)
    found = []
    for name, secret in secrets.items():
        forms = spellings(secret)
        short = [form for form in forms if len(form) < FRAGMENT]
        if any(form in output for form in short) or any(
            part in seen for form in forms if len(form) >= FRAGMENT for part in fragments(form)
        ):
            found.append(name)
    return found
