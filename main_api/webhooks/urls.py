"""Which URLs a webhook endpoint may have (pure; the app checks a new endpoint's URL, the
worker each address it is about to send to).

A URL is ``http`` or ``https``, at most :data:`MAX_URL_CHARS` characters, with a host, no
user or password, no fragment, no white space or control characters. Unless private hosts
are allowed (:attr:`~main_api.webhooks.settings.WebhookSettings.allow_private_hosts`, off by
default), its host must be public: not ``localhost`` or a name without a dot or under
``.localhost``, ``.local``, ``.internal``, ``.home.arpa``, and not an address that is not
globally routable (loopback, private, link-local, shared, reserved, multicast): so that an
account cannot make the platform call into its own network.
"""

from __future__ import annotations

import ipaddress
import unicodedata
import urllib.parse
from collections.abc import Sequence
from typing import Final

from main_api.requests import InvalidFieldError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_CHARS: Final = 2048
SCHEMES: Final = ("http", "https")
PRIVATE_SUFFIXES: Final = (".localhost", ".local", ".internal", ".home.arpa", ".lan")


def public_address(address: str) -> bool:
    """Whether the IP ``address`` is globally routable (not loopback, private, link-local,
    shared, reserved or multicast; an IPv4-mapped IPv6 address is judged as its IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def address_allowed(address: str, allowed: Sequence[IPNetwork] = ()) -> bool:
    """Whether the IP ``address`` is public, or in one of the ``allowed`` networks (a setting
    for tests and a single-machine setup, narrower than allowing every private host)."""
    if public_address(address):
        return True
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in network for network in allowed)


def public_host(host: str, allowed: Sequence[IPNetwork] = ()) -> bool:
    """Whether ``host`` (a name or an address literal, lower-case) may be called when private
    hosts are not allowed (an address literal also when it is in ``allowed``). A name is
    judged by its form only: the worker checks the addresses it resolves to before each
    attempt."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return address_allowed(host, allowed)
    name = host.rstrip(".")
    return "." in name and name != "localhost" and not name.endswith(PRIVATE_SUFFIXES)


def webhook_url(
    value: object,
    *,
    allow_private: bool,
    allowed: Sequence[IPNetwork] = (),
    field: str = "url",
) -> str:
    """``value`` checked as an endpoint's URL (the module's rules)."""
    if not isinstance(value, str):
        raise InvalidFieldError(field, "type", "must be a string")
    if len(value) > MAX_URL_CHARS:
        raise InvalidFieldError(field, "too-long", f"at most {MAX_URL_CHARS} characters")
    if any(char.isspace() or unicodedata.category(char).startswith("C") for char in value):
        raise InvalidFieldError(field, "format", "must hold no white space or control characters")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in SCHEMES:
        raise InvalidFieldError(field, "format", "must be an http or https URL")
    try:
        parts.port  # noqa: B018 (a port out of range raises)
    except ValueError:
        raise InvalidFieldError(field, "format", "has a port out of range") from None
    host = parts.hostname
    if not host:
        raise InvalidFieldError(field, "format", "must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidFieldError(field, "format", "must not hold a user or a password")
    if parts.fragment:
        raise InvalidFieldError(field, "format", "must not hold a fragment (#...)")
    if not allow_private and not public_host(host, allowed):
        raise InvalidFieldError(field, "host-not-allowed", f"{host[:64]} is not a public host")
    return value
