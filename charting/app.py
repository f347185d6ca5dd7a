"""The history API and chart page as one Starlette app.

Two ways to make it:

- :func:`create_app` with any store's :class:`~storage.reads.HistoryReads` the caller opened
  (and closes): a :class:`~storage.PostgresReads`, or a :class:`~storage.MemoryReads`.
- :func:`create_app_for_url` with a database URL: the app opens and closes the database in
  its own lifespan (``mdp api``, or any ASGI server).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import psycopg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from charting.context import Context
from charting.problems import (
    ProblemError,
    http_error_handler,
    problem_handler,
    unavailable_handler,
)
from charting.routes import candles, docs, gaps, health, instruments, ticks, udf, web
from charting.settings import ApiSettings
from storage.pg_reads import PostgresReads
from storage.reads import HistoryReads


def create_app(history: HistoryReads, settings: ApiSettings | None = None) -> Starlette:
    """The app over open history reads (the caller owns them)."""
    return _build(Context(settings or ApiSettings(), history), lifespan=None)


def create_app_for_url(database_url: str, settings: ApiSettings | None = None) -> Starlette:
    """The app over the database at ``database_url``, opened for the app's lifespan."""
    ctx = Context(settings or ApiSettings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with PostgresReads.open(database_url, max_size=ctx.settings.pool_size) as history:
            ctx.history = history
            try:
                yield
            finally:
                ctx.history = None

    return _build(ctx, lifespan=lifespan)


def _build(ctx: Context, lifespan: object) -> Starlette:
    routes: list[BaseRoute] = [
        *candles.routes(ctx),
        *ticks.routes(ctx),
        *gaps.routes(ctx),
        *instruments.routes(ctx),
        *udf.routes(ctx),
        *docs.routes(ctx),
        *web.routes(ctx),
        *health.routes(ctx),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ProblemError: problem_handler,
            HTTPException: http_error_handler,
            psycopg.OperationalError: unavailable_handler,  # the database went away
        },
        lifespan=lifespan,  # type: ignore[arg-type]
    )
    app.state.context = ctx  # for tests and operators: settings, database, page cache
    return app
