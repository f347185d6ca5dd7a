"""Values that must never print: a database address with its password, and any other secret.

Configuration holds them as these types from the moment it reads them (the command line or the
environment) until the one call that needs the plain text, which asks for it with
``reveal()``. ``str``, ``repr``, f-strings, logging and tracebacks of a settings object show
``***`` in the secret's place, so a status line, an error or a debug dump cannot leak it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Final
from urllib.parse import unquote

MASK: Final = "***"

_KEYWORD_PASSWORD: Final = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
"""``password=...`` in a libpq keyword/value string, quoted or not."""
_QUERY_PASSWORD: Final = re.compile(r"((?:^|[?&])password=)([^&#]*)")
"""``password=...`` among a URL's query parameters."""
_URL: Final = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#]*)(?P<rest>.*)$", re.DOTALL
)
"""A URL's scheme, its authority (``user:password@hosts``) and the rest."""


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


class MaskedFields:
    """A mixin for a ``msgspec.Struct`` that carries a secret (a request or answer body with a
    password, a token or a signing secret): its :attr:`masked` fields show as ``***`` in
    ``repr`` and ``str``. Put it first among the bases, before ``msgspec.Struct``."""

    __slots__ = ()
    masked: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        names: tuple[str, ...] = getattr(self, "__struct_fields__", ())
        shown = (f"{n}={MASK if n in self.masked else repr(getattr(self, n))}" for n in names)
        return f"{type(self).__name__}({', '.join(shown)})"


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

    def scrub(self, text: str) -> str:
        """``text`` (say, a driver's error about this address) with the password masked, in
        every form it was given in: as written, percent-decoded, unquoted."""
        for password in sorted(_passwords(self._url), key=len, reverse=True):
            text = text.replace(password, MASK)
        return text

    def __str__(self) -> str:
        return redact_url(self._url)

    def __repr__(self) -> str:
        return f"DatabaseUrl({str(self)!r})"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (URL or keyword/value form). Plain text
    work, no URL parser: an address too malformed to parse still prints safely."""
    match = _URL.match(url)
    if match is None:
        return _KEYWORD_PASSWORD.sub(lambda found: found[1] + MASK, url)
    netloc = match["netloc"]
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hosts}" if colon else netloc
    rest = _QUERY_PASSWORD.sub(lambda found: found[1] + MASK, match["rest"])
    return match["scheme"] + netloc + rest


def _passwords(url: str) -> set[str]:
    """Every spelling of the password(s) in ``url``: raw, percent-decoded, unquoted."""
    found: set[str] = set()
    match = _URL.match(url)
    if match is not None:
        userinfo, at, _hosts = match["netloc"].rpartition("@")
        if at and ":" in userinfo:
            found.add(userinfo.partition(":")[2])
        found.update(password for _key, password in _QUERY_PASSWORD.findall(match["rest"]))
    else:
        for _key, password in _KEYWORD_PASSWORD.findall(url):
            found.update({password, password.strip("'").replace("\\'", "'")})
    found |= {unquote(password) for password in found}
    return {password for password in found if password}
