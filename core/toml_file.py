"""A TOML data file of the operator's (plans, plan limits) read one way for every such file:
bounded (never read whole when it is too large) and decoded, each refusal the caller's error
naming the file (:mod:`core.toml_tables` then checks its tables)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_toml(
    path: Path, max_bytes: int, what: str, error: type[Exception] = ValueError
) -> dict[str, Any]:
    """The TOML document of the file at ``path``, of at most ``max_bytes`` bytes (at most
    ``max_bytes + 1`` are read). ``what`` names the file in a refusal (``the plan file``),
    raised as ``error``: a file that cannot be read, is larger, is not UTF-8 or not TOML."""
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    if len(data) > max_bytes:
        raise error(f"{what} {path} is over {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    return toml_document(text, f"{what} {path}", error)


def toml_document(text: str, what: str, error: type[Exception] = ValueError) -> dict[str, Any]:
    """The TOML document ``text`` (``error``: ``<what> is not TOML: <where and why>``)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} is not TOML: {exc}") from None
