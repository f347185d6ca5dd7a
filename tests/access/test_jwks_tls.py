"""The key set fetched from an auth service that serves mutual TLS (``mdp auth serve
--tls-*``): with the service's context (:class:`~access.settings.TokenSettings` ``tls``) the
keys come; without a client certificate the fetch is refused and no key is taken."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from access.settings import TokenSettings
from tests.support import tokens
from tests.support.tls import make_pki
from web.server import serving

JWKS_PATH = "/auth/.well-known/jwks.json"


async def jwks(_: Request) -> Response:
    return Response(tokens.jwks(), media_type="application/json")


async def test_the_key_set_is_fetched_over_mutual_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    app = Starlette(routes=[Route(JWKS_PATH, jwks)])
    async with serving(app, tls=pki.server) as auth:
        url = f"{auth.url}{JWKS_PATH}"
        ours = TokenSettings(jwks_url=url, tls=pki.client.client_context()).key_cache()
        bare = TokenSettings(jwks_url=url, tls=pki.without_certificate()).key_cache()
        assert ours is not None
        assert bare is not None
        async with ours, bare:
            assert ours.keys is not None
            assert ours.keys == tokens.keyset()
            assert bare.keys is None  # refused: the last good key set is none
            assert bare.fetches == 1
