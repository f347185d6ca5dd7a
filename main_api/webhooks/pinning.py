"""Where one attempt connects (pure: the host's addresses are an input): the host is resolved
once, every address it resolves to is checked, and the request goes to the first of them,
pinned, so that the HTTP client never resolves the name again (a name that answers a public
address to the check and a loopback one to the connection, "DNS rebinding", reaches only the
address checked).

A pinned request names the checked address in its URL (the client connects there and
resolves nothing), keeps the endpoint's host in its ``Host`` header and, for ``https``, in
the TLS handshake (the ``sni_hostname`` request extension of httpx: the server name sent
and the one the certificate is checked against).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import httpx

from main_api.webhooks.urls import IPNetwork, address_allowed

SNI_EXTENSION: Final = "sni_hostname"


@dataclass(frozen=True, slots=True)
class Pinned:
    """A request's target: ``url`` with the checked ``address`` as its host, the ``host``
    header to send and the TLS server name (``https`` and a named host only)."""

    url: httpx.URL
    address: str
    host: str
    server_name: str | None

    @property
    def extensions(self) -> dict[str, str]:
        return {} if self.server_name is None else {SNI_EXTENSION: self.server_name}


def refusal(
    addresses: Sequence[str], *, allow_private: bool, allowed: Sequence[IPNetwork] = ()
) -> str | None:
    """Why the resolved ``addresses`` may not be sent to, or None: ``dns-error`` when there
    are none, ``address-not-allowed`` when any is not public (and not allowed by
    ``allow_private`` or ``allowed``)."""
    if not addresses:
        return "dns-error"
    if allow_private or all(address_allowed(a, allowed) for a in addresses):
        return None
    return "address-not-allowed"


def pinned(url: str, address: str) -> Pinned:
    """``url`` pinned to ``address`` (one its host resolved to, checked)."""
    original = httpx.URL(url)
    name = original.raw_host.decode("ascii")  # IDNA-encoded, without an IPv6's brackets
    host = original.netloc.decode("ascii")  # host[:port], as httpx would send it
    server_name = name if original.scheme == "https" and not _is_literal(name) else None
    return Pinned(
        url=original.copy_with(host=address.split("%", 1)[0]),
        address=address,
        host=host,
        server_name=server_name,
    )


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
