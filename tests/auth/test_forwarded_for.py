"""The login throttle counts per client address: ``X-Forwarded-For`` names the client only
when the peer is a trusted proxy (the edge); by default no peer is, and the header is ignored."""

from __future__ import annotations

import httpx
import pytest

from auth.app import create_app
from auth.settings import AuthSettings
from auth.throttle import LoginRates, Rate
from web.server import serving

from .conftest import PASSWORD, code_of, with_settings

RATES = LoginRates(per_account=Rate(100, 0.1), per_address=Rate(2, 60.0))


async def statuses(settings: AuthSettings, url: str, forwarded: list[str]) -> list[str]:
    """The outcome of one failed login per ``forwarded`` address, through a real server."""
    app = create_app(url, settings)
    outcomes = []
    async with (
        app.router.lifespan_context(app),
        serving(app) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        for n, address in enumerate(forwarded):
            body = {"email": f"nobody{n}@example.org", "password": PASSWORD}
            answer = await client.post(
                "/auth/v1/login", json=body, headers={"X-Forwarded-For": address}
            )
            outcomes.append(code_of(answer))
    return outcomes


CLIENTS = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.1", "198.51.100.1"]


async def test_forwarded_for_is_ignored_unless_the_peer_is_trusted(migrated_database: str) -> None:
    untrusted = await statuses(with_settings(login_rates=RATES), migrated_database, CLIENTS)
    # every attempt counts against the peer (127.0.0.1): the third is throttled
    assert untrusted == ["invalid-credentials"] * 2 + ["too-many-attempts"] * 3


async def test_a_trusted_proxy_names_the_client(migrated_database: str) -> None:
    settings = with_settings(login_rates=RATES, trusted_proxies=("127.0.0.0/8",))
    trusted = await statuses(settings, migrated_database, CLIENTS)
    # three clients with a bucket each: only the first one's third attempt is throttled
    assert trusted == ["invalid-credentials"] * 4 + ["too-many-attempts"]


def test_a_trusted_proxy_must_be_an_address_or_a_network() -> None:
    with pytest.raises(ValueError, match="trusted proxy '\\*' is not an address or network"):
        with_settings(trusted_proxies=("*",))
