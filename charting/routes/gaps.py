"""``GET /v1/gaps``: the stored feed gaps of an instrument overlapping a range, in JSON, CSV,
Arrow or Parquet. A range holds at most the row limit of gaps (more is refused, naming
``start``), so a response is one page, without cursors."""

from __future__ import annotations

import hashlib

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from charting import caching, params
from charting.context import Context
from charting.formats import MEDIA_TYPES, choose
from charting.gap_formats import encode_gaps
from charting.routes.candles import check_instrument
from charting.times import END_OF_TIME
from web.problems import invalid


def routes(ctx: Context) -> list[BaseRoute]:
    async def gaps(request: Request) -> Response:
        return await _gaps(ctx, request)

    return [Route("/v1/gaps", gaps, methods=["GET"], name="gaps")]


async def _gaps(ctx: Context, request: Request) -> Response:
    settings = ctx.settings
    query = request.query_params
    fmt = choose(query.get("format"), request.headers.get("accept"))
    instrument = params.instrument(query)
    start, end = params.time_range(query, end_default=END_OF_TIME)
    await check_instrument(ctx, request, instrument)
    most = settings.max_limit
    rows = await ctx.history.gaps(instrument, start, end, most + 1)
    if len(rows) > most:
        raise invalid(
            "start", f"start: the range holds more than {most} feed gaps; ask for a shorter one"
        )
    # Gaps are stored once and never change: the rows themselves are the page's validator.
    digest = hashlib.sha256(msgspec.json.encode(rows)).hexdigest()
    freshness = caching.Freshness(False, end, (digest,))
    headers = caching.headers_for(request, MEDIA_TYPES[fmt], freshness, settings)
    if (unchanged := caching.not_modified(request, headers)) is not None:
        return unchanged
    body = encode_gaps(fmt, instrument, start, end, rows)
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)
