"""``GET /healthz`` (the process answers) and ``GET /readyz`` (the database answers too), for
load balancers and orchestrators. ``/readyz`` is 503 while the database is unavailable."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from charting.context import Context
from web.problems import RETRY_AFTER_S

log = logging.getLogger(__name__)
_NO_STORE = {"Cache-Control": "no-store"}


def routes(ctx: Context) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def readyz(request: Request) -> Response:
        problem = await ctx.history.unreachable()
        if problem is None:
            return JSONResponse({"status": "ready"}, headers=_NO_STORE)
        # why (the database's host and port) is for the operator's log, not for any caller
        log.info("not ready: database unavailable (%s)", problem)
        body = {"status": "unavailable", "detail": "database unavailable"}
        headers = _NO_STORE | {"Retry-After": str(RETRY_AFTER_S)}
        return JSONResponse(body, status_code=503, headers=headers)

    return [
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        Route("/readyz", readyz, methods=["GET"], name="readyz"),
    ]
