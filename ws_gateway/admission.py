"""Who may open a connection: allowed browser origins, a cap per client address and a cap per
principal (its plan's ``ws_connections``). Sans I/O.

``Origin`` is what a browser says about the page that opens a WebSocket; checking it keeps
other sites' pages from using a visitor's browser as a client (cross-site WebSocket
hijacking). Clients that are no browser (bots, scripts) send no ``Origin`` and are always
let through: they could send any ``Origin`` they like, so refusing them would protect
nothing. The check itself is the ``websockets`` server's (403 on a foreign origin); here the
settings' spellings become its matchers. Browsers leave a scheme's default port (80 for
http, 443 for https) out of ``Origin``, and scheme and host are compared regardless of case
(RFC 6454), so ``http://Example.com:80`` in the settings matches ``http://example.com``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

ANY_ORIGIN: Final = "*"
ANY_PORT: Final = ":*"
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
LOOPBACK_ORIGINS: Final = tuple(f"http://{host}{ANY_PORT}" for host in LOOPBACK_HOSTS)
"""Pages served from this machine, on any port: the cluster gateway's default."""

OriginMatcher = re.Pattern[str] | None
_AUTHORITY = re.compile(r"(?P<host>.+?)(?::(?P<port>[0-9]{1,5}))?")


def check_origin(origin: str) -> str:
    """``origin`` if it is one the settings accept, else ``ValueError`` saying why.

    Accepted: ``*`` (any origin), ``scheme://host[:port]`` (exactly that origin), and
    ``scheme://host:*`` (that host on any port, or none).
    """
    if origin == ANY_ORIGIN:
        return origin
    exact = origin.removesuffix(ANY_PORT)
    scheme, sep, host = exact.partition("://")
    if not sep or scheme.lower() not in DEFAULT_PORTS or not host or "/" in host:
        raise ValueError(
            f"allowed origin {origin!r} is not scheme://host[:port] (http or https, no path),"
            " scheme://host:* or *"
        )
    return origin


def origin_matchers(origins: Iterable[str]) -> Sequence[OriginMatcher] | None:
    """What ``websockets``' ``origins`` takes for these settings: None accepts any origin;
    otherwise a list that always holds None (clients that send no ``Origin``)."""
    matchers: list[OriginMatcher] = [None]
    for origin in origins:
        if origin == ANY_ORIGIN:
            return None
        matchers.append(_matcher(origin))
    return matchers


def _matcher(origin: str) -> re.Pattern[str]:
    """``scheme://host[:port]`` or ``scheme://host:*`` (checked) as a pattern for the whole
    ``Origin``: scheme and host in any case; a default port or none where the port is the
    scheme's default or not given."""
    scheme, _, authority = origin.partition("://")
    any_port = authority.endswith(ANY_PORT)
    parts = _AUTHORITY.fullmatch(authority.removesuffix(ANY_PORT))
    if parts is None:
        raise ValueError(f"allowed origin {origin!r} has no host")
    default = DEFAULT_PORTS[scheme.lower()]
    port = parts["port"]
    if any_port:
        ports = "(?::[0-9]{1,5})?"
    elif port is None or int(port) == default:
        ports = f"(?::{default})?"
    else:
        ports = f":{int(port)}"
    return re.compile(re.escape(f"{scheme}://{parts['host']}") + ports, re.IGNORECASE)


def page_origins(host: str, port: int) -> tuple[str, ...]:
    """The origins of a page served over http on ``host:port`` as browsers on this machine
    name it (port 80, http's default, is left out, as browsers do).

    Port 0 (a free port, not known yet) stands for any port. A wildcard ``host``
    (``0.0.0.0``, ``::``) adds no name: the machine's other names must be configured.
    """
    suffix = ANY_PORT if port == 0 else "" if port == DEFAULT_PORTS["http"] else f":{port}"
    hosts = list(LOOPBACK_HOSTS)
    named = f"[{host}]" if ":" in host else host
    if host not in ("0.0.0.0", "::", "") and named not in hosts:
        hosts.append(named)
    return tuple(f"http://{name}{suffix}" for name in hosts)


class _Slots:
    """Connections held per key (an address, a principal)."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[str, int] = {}

    def _take(self, key: str, limit: int) -> bool:
        """Count one more connection of ``key``; False (nothing counted) when it holds
        ``limit`` already (0: no cap)."""
        held = self._held.get(key, 0)
        if limit and held >= limit:
            return False
        self._held[key] = held + 1
        return True

    def give_back(self, key: str) -> None:
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        return self._held.get(key, 0)


class AddressSlots(_Slots):
    """Connections held per client address, at most ``limit`` each (0: no cap).

    :meth:`take` a slot when a connection arrives and :meth:`give_back` it when it closes.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"the connection cap must not be negative, got {limit}")
        super().__init__()
        self.limit = limit

    def take(self, address: str) -> bool:
        """Count one more connection from ``address``; False (and nothing counted) when it
        already holds ``limit``."""
        return self._take(address, self.limit)


class PrincipalSlots(_Slots):
    """Connections held per principal (a token's subject) across the gateway, each at most
    the limit its plan names (``ws_connections``).

    :meth:`take` a slot once a connection's principal is known and :meth:`give_back` it when
    the connection ends.
    """

    __slots__ = ()

    def take(self, subject: str, limit: int) -> bool:
        """Count one more connection of ``subject``; False when it holds ``limit`` already
        (a plan of 0 connections allows none)."""
        return limit > 0 and self._take(subject, limit)
