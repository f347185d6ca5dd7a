"""``GET /v1/ticks``: a page of trades in JSON, CSV, Arrow or Parquet, ordered by
(``ts_event``, trade id); the cursor holds the next page's first tick."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from charting import caching, params
from charting.context import Context
from charting.formats import MEDIA_TYPES, choose
from charting.params import Cursor
from charting.routes.candles import check_instrument, next_link
from charting.tick_formats import TickEncoder, tick_encoder
from charting.times import END_OF_TIME
from core.present.text import iso_utc
from storage.reads import TickKey, TickRow


def routes(ctx: Context) -> list[BaseRoute]:
    async def ticks(request: Request) -> Response:
        return await _ticks(ctx, request)

    return [Route("/v1/ticks", ticks, methods=["GET"], name="ticks")]


async def _ticks(ctx: Context, request: Request) -> Response:
    settings = ctx.settings
    query = request.query_params
    fmt = choose(query.get("format"), request.headers.get("accept"))
    instrument = params.instrument(query)
    start, end = params.time_range(query, end_default=END_OF_TIME)
    limit = params.limit(query, settings.default_limit, settings.max_limit)
    cursor = params.cursor(query, "t", start, end)
    window = ctx.gate.window(await check_instrument(ctx, request, instrument))
    end = window.tick_end(end)
    first = TickKey(start, 0) if cursor is None else TickKey(cursor.ns, cursor.trade_id or 0)
    if first.ns < window.floor_ns:
        first = TickKey(window.floor_ns, 0)
    if first.ns >= end:  # all of the range is beyond the plan's depth or delay
        first = TickKey(end, 0)
    page = await ctx.history.tick_page(instrument, first, TickKey(end, 0), limit)
    after = page.next_start
    next_cursor = None if after is None else Cursor("t", after.ns, after.trade_id).encode()
    next_url = next_link(request, next_cursor)
    envelope: dict[str, object] = {
        "instrument": instrument,
        "start": iso_utc(first.ns),
        "end": iso_utc(page.end.ns),
        "next_cursor": next_cursor,
        "next": next_url,
    }
    out = tick_encoder(fmt, instrument, envelope, page.price_scale, page.size_scale)
    validator = (page.rows, first, page.end)
    freshness = caching.Freshness(False, page.end.ns, validator)
    headers = caching.headers_for(request, MEDIA_TYPES[fmt], freshness, settings)
    if next_url is not None:
        headers["Link"] = f'<{next_url}>; rel="next"'
    if (unchanged := caching.not_modified(request, headers)) is not None:
        return unchanged
    rows = ctx.history.tick_rows(instrument, first, page.end, settings.chunk_rows)
    return StreamingResponse(_stream(out, rows), media_type=MEDIA_TYPES[fmt], headers=headers)


async def _stream(
    out: TickEncoder, chunks: AsyncGenerator[list[TickRow], None]
) -> AsyncIterator[bytes]:
    yield out.head()
    async with contextlib.aclosing(chunks):
        async for rows in chunks:
            if data := out.rows(rows):
                yield data
    yield out.tail()
