"""The main API as one process (``mdp main-api``, and inside ``mdp up``): its store, opened
(tables made if missing), the HTTP app served and, unless ``settings.webhooks.worker`` is off,
the webhook delivery worker running beside it; instruments are checked against the storage's
``instruments`` table in the same database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from main_api.app import create_app
from main_api.settings import MainApiSettings
from main_api.store import MainStore
from main_api.webhooks.store import WebhookStore
from main_api.webhooks.worker import WebhookWorker
from streams.bus import Bus
from web.server import ApiServer, serving


@contextlib.asynccontextmanager
async def running(settings: MainApiSettings, bus: Bus | None = None) -> AsyncIterator[ApiServer]:
    """The main API serving for the ``async with`` block (``bus``: where revocations come
    from, if anywhere); its server is yielded."""
    async with MainStore.open(settings.database_url, settings.schema) as store:
        app = create_app(store, settings, store.has_instrument, bus=bus)
        async with (
            serving(
                app, settings.host, settings.port, limits=settings.http, tls=settings.tls
            ) as server,
            delivering(store, settings),
        ):
            yield server


@contextlib.asynccontextmanager
async def delivering(store: MainStore, settings: MainApiSettings) -> AsyncIterator[None]:
    """The webhook worker running on ``store`` for the block (nothing if it is turned off)."""
    if not settings.webhooks.worker:
        yield
        return
    worker = WebhookWorker(WebhookStore(store), settings.webhooks, listen_url=settings.database_url)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="main-api:webhooks")
    try:
        yield
    finally:
        stop.set()
        await task
