"""``GET /v1/candles``: a page of candles in JSON, CSV, Arrow or Parquet.

Stored intervals stream straight from the database; others are rolled up on read. Every
page but the last links to the next (``Link: <...>; rel="next"``, and ``next`` in JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from charting import caching, params, rollup
from charting.candle_formats import CandleEncoder, PageInfo, Scales, encoder, media_type, record
from charting.context import Context
from charting.database import Row
from charting.formats import Format, choose
from charting.params import Cursor
from charting.problems import invalid, not_found
from charting.rolled import page_limit, rolled_page
from charting.times import END_OF_TIME
from core.candles import Candle, CandleStatus
from core.intervals import Interval


def routes(ctx: Context) -> list[BaseRoute]:
    async def candles(request: Request) -> Response:
        return await _candles(ctx, request)

    return [Route("/v1/candles", candles, methods=["GET"], name="candles")]


async def check_instrument(ctx: Context, instrument: str, parameter: str = "instrument") -> None:
    if not await ctx.history.has_instrument(instrument):
        raise not_found(parameter, f"{parameter}: no data for {instrument}")


def plan_for(ctx: Context, interval: Interval, parameter: str = "interval") -> rollup.Plan:
    found = rollup.plan(interval, ctx.settings.intervals)
    if found is None:
        stored = " ".join(i.label for i in ctx.settings.intervals)
        raise invalid(
            parameter,
            f"{parameter}: {interval.label} is neither stored ({stored}) nor a multiple of a"
            " stored interval",
        )
    return found


def next_link(request: Request, cursor: str | None) -> str | None:
    """This request's URL (path and query, relative) with ``cursor`` set."""
    if cursor is None:
        return None
    url = request.url.include_query_params(cursor=cursor)
    return f"{url.path}?{url.query}"


async def _candles(ctx: Context, request: Request) -> Response:
    settings = ctx.settings
    query = request.query_params
    fmt = choose(query.get("format"), request.headers.get("accept"))
    instrument = params.instrument(query)
    interval = params.interval(query)
    start, end = params.time_range(query, end_default=END_OF_TIME)
    limit = params.limit(query, settings.default_limit, settings.max_limit)
    cursor = params.cursor(query, "c", start, end)
    plan = plan_for(ctx, interval)
    await check_instrument(ctx, instrument)
    page_start = start if cursor is None else cursor.ns
    if plan.rolled:
        return await _rolled(ctx, request, fmt, instrument, plan, page_start, end, limit)
    media = media_type(fmt)
    key = (request.url.path, tuple(sorted(query.multi_items())), media)
    if (recent := ctx.pages.recent(key)) is not None:
        unchanged = caching.not_modified(request, recent.headers)
        return unchanged or Response(recent.body, media_type=media, headers=recent.headers)
    page = await ctx.history.candle_page(instrument, interval, page_start, end, limit)
    next_cursor = None if page.next_start is None else Cursor("c", page.next_start).encode()
    info = PageInfo(
        instrument, interval.label, None, page_start, page.end, next_cursor,
        next_link(request, next_cursor),
    )  # fmt: skip
    scales = Scales(page.price_scale, page.size_scale, page.quote_scale, page.vwap_scale)
    out = encoder(fmt, info, scales)
    validator = (page.rows, page.updated_us, page.start, page.end)
    freshness = caching.Freshness(page.has_open, page.end, validator)
    headers = _headers(ctx, request, out, info, freshness)
    if (unchanged := caching.not_modified(request, headers)) is not None:
        return unchanged
    final = caching.is_final(freshness, settings)
    if final and (cached := ctx.pages.checked(key, validator)) is not None:
        return Response(cached.body, media_type=media, headers=headers)
    rows = ctx.history.candle_rows(
        out.columns, instrument, interval, page_start, page.end, settings.chunk_rows
    )
    stream = _stream_rows(out, rows)
    if final:
        stream = ctx.pages.tee(key, validator, headers, stream)
    return StreamingResponse(stream, media_type=media, headers=headers)


async def _rolled(
    ctx: Context,
    request: Request,
    fmt: Format,
    instrument: str,
    plan: rollup.Plan,
    start: int,
    end: int,
    limit: int,
) -> Response:
    settings = ctx.settings
    size = page_limit(plan, limit, settings.max_source_rows)
    page = await rolled_page(
        ctx.history, plan, instrument, start, end, size, settings.chunk_rows, settings.clock()
    )
    next_cursor = None if page.next_start is None else Cursor("c", page.next_start).encode()
    page_end = end if page.next_start is None else page.next_start
    info = PageInfo(
        instrument, plan.target.label, plan.source.label, start, page_end, next_cursor,
        next_link(request, next_cursor),
    )  # fmt: skip
    out = encoder(fmt, info, Scales.of(page.candles))
    has_open = any(c.status is CandleStatus.OPEN for c in page.candles)
    freshness = caching.Freshness(has_open, page_end, (_digest(page.candles), start, page_end))
    headers = _headers(ctx, request, out, info, freshness)
    if (unchanged := caching.not_modified(request, headers)) is not None:
        return unchanged
    return StreamingResponse(
        _stream_candles(out, page.candles, settings.chunk_rows),
        media_type=media_type(out.format),
        headers=headers,
    )


def _headers(
    ctx: Context,
    request: Request,
    out: CandleEncoder,
    info: PageInfo,
    freshness: caching.Freshness,
) -> dict[str, str]:
    headers = caching.headers_for(request, media_type(out.format), freshness, ctx.settings)
    if info.next_url is not None:
        headers["Link"] = f'<{info.next_url}>; rel="next"'
    return headers


def _digest(candles: Sequence[Candle]) -> str:
    encoded = msgspec.json.encode([record(c) for c in candles])
    return hashlib.sha256(encoded).hexdigest()


async def _stream_rows(
    out: CandleEncoder, chunks: AsyncGenerator[list[Row], None]
) -> AsyncIterator[bytes]:
    # Arrow and Parquet chunks are parsed and written by Arrow's C++ code, which lets go of
    # the GIL: on a worker thread they leave the event loop (the platform's, when embedded)
    # free meanwhile.
    threaded = out.format in (Format.ARROW, Format.PARQUET)
    yield out.head()
    async with contextlib.aclosing(chunks):
        async for rows in chunks:
            data = await asyncio.to_thread(out.rows, rows) if threaded else out.rows(rows)
            if data:
                yield data
    yield out.tail()


async def _stream_candles(
    out: CandleEncoder, candles: Sequence[Candle], chunk: int
) -> AsyncIterator[bytes]:
    yield out.head()
    for offset in range(0, len(candles), chunk):
        if data := out.candles(candles[offset : offset + chunk]):
            yield data
    yield out.tail()
