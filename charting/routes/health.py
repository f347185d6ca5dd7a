"""``GET /healthz`` (the process answers) and ``GET /readyz`` (the database answers too), for
load balancers and orchestrators, in the shape every service shares (:mod:`web.health`).
``/readyz`` is 503 while the database is unavailable."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from charting.context import Context
from web import health

log = logging.getLogger(__name__)


def routes(ctx: Context) -> list[BaseRoute]:
    async def readyz(request: Request) -> Response:
        problem = await ctx.history.unreachable()
        if problem is not None:
            # why (the database's host and port) is for the operator's log, not for any caller
            log.info("not ready: database unavailable (%s)", problem)
        return health.ready({"database": None if problem is None else "unavailable"})

    return [
        Route(health.ALIVE_PATH, health.alive, methods=["GET"], name="healthz"),
        Route(health.READY_PATH, readyz, methods=["GET"], name="readyz"),
    ]
