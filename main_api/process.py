"""The main API as one process (``mdp main-api``, and inside ``mdp up``): its store, opened
(tables made if missing), and the HTTP app served; instruments are checked against the
storage's ``instruments`` table in the same database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from main_api.app import create_app
from main_api.settings import MainApiSettings
from main_api.store import MainStore
from streams.bus import Bus
from web.server import ApiServer, serving


@contextlib.asynccontextmanager
async def running(settings: MainApiSettings, bus: Bus | None = None) -> AsyncIterator[ApiServer]:
    """The main API serving for the ``async with`` block (``bus``: where revocations come
    from, if anywhere); its server is yielded."""
    async with MainStore.open(settings.database_url, settings.schema) as store:
        app = create_app(store, settings, store.has_instrument, bus=bus)
        async with serving(app, settings.host, settings.port, limits=settings.http) as server:
            yield server
