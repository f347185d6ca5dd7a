"""``GET /v1/instruments``: every instrument with data that the caller's plan covers, and the
intervals served."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from charting.context import Context
from charting.routes.candles import grant_of


def routes(ctx: Context) -> list[BaseRoute]:
    async def instruments(request: Request) -> Response:
        grant = grant_of(request)
        found = [name for name in await ctx.history.instruments() if grant.covers(name)]
        body = {
            "instruments": [
                {
                    "instrument": name,
                    "venue": name.split(":", 1)[0],
                    "symbol": name.split(":", 1)[1],
                }
                for name in found
            ],
            "intervals": [interval.label for interval in ctx.settings.intervals],
        }
        return JSONResponse(body, headers={"Cache-Control": "no-cache"})

    return [Route("/v1/instruments", instruments, methods=["GET"], name="instruments")]
