"""A JSON request body into its fields (sans-I/O): what the main API and the trading API
share before each checks its own values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec


def json_object(
    body: bytes,
    allowed: tuple[str, ...],
    refused: Callable[[str, str, str], Exception],
    *,
    decoder: msgspec.json.Decoder[Any],
    value: Callable[[str, object], object] | None = None,
) -> dict[str, Any]:
    """The JSON object ``body`` as a dict of its ``allowed`` names (``null`` is absent), each
    value made by ``value`` (given its name) where one is given. A refusal is
    ``refused(field, code, message)``: ``format`` for a body that is no JSON object,
    ``forbidden`` for a name not allowed."""
    try:
        document = decoder.decode(body)
    except msgspec.DecodeError:
        raise refused("body", "format", "the body must be a JSON object") from None
    if not isinstance(document, dict):
        raise refused("body", "format", "the body must be a JSON object")
    fields: dict[str, Any] = {}
    for name, given in document.items():
        if name not in allowed:
            raise refused(
                str(name)[:64], "forbidden", f"not a field here (the fields: {', '.join(allowed)})"
            )
        if given is not None:
            fields[name] = given if value is None else value(name, given)
    return fields
