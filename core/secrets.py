"""Values that must never print: a database address with its password, and any other secret.

Configuration holds them as these types from the moment it reads them (the command line or the
environment) until the one call that needs the plain text, which asks for it with
``reveal()``. ``str``, ``repr``, f-strings, logging and tracebacks of a settings object show
``***`` in the secret's place, so a status line, an error or a debug dump cannot leak it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit, urlunsplit

MASK: Final = "***"

_KEYWORD_PASSWORD: Final = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
"""``password=...`` in a libpq keyword/value string, quoted or not."""
_QUERY_PASSWORD: Final = re.compile(r"((?:^|&)password=)[^&]*")
"""``password=...`` among a URL's query parameters."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string (a password, a token, a key): shown as ``***``, never as itself."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        """The plain text, for the one call that needs it (never to print)."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"


@dataclass(frozen=True, slots=True)
class DatabaseUrl:
    """A PostgreSQL address (URL or libpq keyword/value string) whose password never prints.

    ``str()`` is the address with the password masked, so it can name the database in a
    status line or an error: ``postgresql://app:***@db:5432/market``.
    """

    _url: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self._url.strip():
            raise ValueError("the database URL is empty")

    def reveal(self) -> str:
        """The address with its password, for the database driver only."""
        return self._url

    def __str__(self) -> str:
        return redact_url(self._url)

    def __repr__(self) -> str:
        return f"DatabaseUrl({str(self)!r})"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (URL or keyword/value form)."""
    if "://" not in url:
        return _KEYWORD_PASSWORD.sub(lambda match: match[1] + MASK, url)
    parts = urlsplit(url)
    masked_query = _QUERY_PASSWORD.sub(lambda match: match[1] + MASK, parts.query)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hosts}" if colon else netloc
    return urlunsplit(parts._replace(netloc=netloc, query=masked_query))
