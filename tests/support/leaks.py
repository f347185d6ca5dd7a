"""Which secrets a run's output gives away: each searched as written, percent-encoded and
JSON-escaped (the forms a URL, a query string or a JSON log line would carry it in)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote


def spellings(secret: str) -> set[str]:
    """The forms ``secret`` may be printed in."""
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}


def leaks(output: str, secrets: Mapping[str, str]) -> list[str]:
    """The names of the ``secrets`` (name → value) that appear anywhere in ``output``."""
    return [
        name
        for name, secret in secrets.items()
        if any(form in output for form in spellings(secret))
    ]
