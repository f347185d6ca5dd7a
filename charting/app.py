"""The history API and chart page as one Starlette app.

Two ways to make it:

- :func:`create_app` with any store's :class:`~storage.reads.HistoryReads` the caller opened
  (and closes): a :class:`~storage.PostgresReads`, or a :class:`~storage.MemoryReads`.
- :func:`create_app_for_url` with a database URL: the app opens and closes the database in
  its own lifespan (``mdp api``, or any ASGI server).

Either way the app checks tokens as its settings say (:mod:`charting.gate`): its lifespan
fetches the key set, and, given a ``bus`` (or ``open_bus``, a bus the app opens and closes in
its lifespan: ``mdp api --bus kafka``), reads ``auth.events`` into the revocations.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import psycopg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from charting.context import Context
from charting.gate import GUARDED_PREFIXES, Gate
from charting.routes import candles, docs, gaps, health, instruments, ticks, udf, web
from charting.settings import ApiSettings
from storage.pg_reads import PostgresReads
from storage.reads import HistoryReads
from streams.bus import Bus
from web.internal_errors import InternalErrors
from web.problems import (
    ProblemError,
    http_error_handler,
    problem_handler,
    unavailable_handler,
)
from web.tokens import checking


def create_app(
    history: HistoryReads, settings: ApiSettings | None = None, bus: Bus | None = None
) -> Starlette:
    """The app over open history reads (the caller owns them, and ``bus``)."""
    ctx = Context(settings or ApiSettings(), history)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with checking(ctx.gate, bus):
            yield

    return _build(ctx, lifespan)


def create_app_for_url(
    database_url: str,
    settings: ApiSettings | None = None,
    bus: Bus | None = None,
    *,
    open_bus: Callable[[], AbstractAsyncContextManager[Bus]] | None = None,
) -> Starlette:
    """The app over the database at ``database_url``, opened for the app's lifespan;
    revocations read from ``bus`` (the caller's) when given, or from the bus ``open_bus()``
    opens for the app's lifespan."""
    ctx = Context(settings or ApiSettings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            revocations = bus
            if open_bus is not None:
                revocations = await stack.enter_async_context(open_bus())
            await stack.enter_async_context(checking(ctx.gate, revocations))
            history = await stack.enter_async_context(
                PostgresReads.open(database_url, max_size=ctx.settings.pool_size)
            )
            ctx.history = history
            try:
                yield
            finally:
                ctx.history = None

    return _build(ctx, lifespan)


class _GateMiddleware:
    """Puts the request's grant in ``request.state.grant`` on the paths that read market
    data, or answers 401 there."""

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _route_path(scope).startswith(GUARDED_PREFIXES):
            request = Request(scope)
            try:
                grant = await self.gate.grant(request)
            except ProblemError as problem:
                await (await problem_handler(request, problem))(scope, receive, send)
                return
            scope.setdefault("state", {})["grant"] = grant
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path below where the app is mounted: a mount keeps the whole path in ``path`` and
    its own prefix in ``root_path``, so ``/cold/v1/candles`` is ``/v1/candles`` here."""
    path, root = str(scope["path"]), str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


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
        middleware=[Middleware(InternalErrors), Middleware(_GateMiddleware, gate=ctx.gate)],
        exception_handlers={
            ProblemError: problem_handler,
            HTTPException: http_error_handler,
            psycopg.OperationalError: unavailable_handler,  # the database went away
        },
        lifespan=lifespan,  # type: ignore[arg-type]
    )
    app.state.context = ctx  # for tests and operators: settings, database, page cache
    return app
