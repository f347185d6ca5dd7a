"""``GET /openapi.json``: the API's OpenAPI document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from charting.context import Context
from charting.openapi import document


def routes(ctx: Context) -> list[BaseRoute]:
    body = document(ctx.settings)

    async def openapi(request: Request) -> Response:
        return JSONResponse(body)

    return [Route("/openapi.json", openapi, methods=["GET"], name="openapi")]
