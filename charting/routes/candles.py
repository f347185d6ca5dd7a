"""``GET /v1/candles``: a page of candles in JSON, CSV, Arrow or Parquet.

Stored intervals are read through :class:`storage.reads.HistoryReads`: a JSON, CSV, Arrow or
Parquet page in its ready form (one statement on PostgreSQL), a longer page in chunks, other
formats (JSON lines) as candles; others are rolled up on read. Every page but the last
links to the next (``Link: <...>; rel="next"``, and ``next`` in JSON).
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

from access.grant import Grant
from charting import caching, params, rollup
from charting.candle_formats import (
    CandleEncoder,
    PageInfo,
    ReadyEncoder,
    Scales,
    encoder,
    ready_encoder,
    record,
)
from charting.context import Context
from charting.formats import choose_candles
from charting.gate import forbidden
from charting.params import Cursor
from charting.rolled import page_limit, rolled_page
from charting.times import END_OF_TIME
from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.present import CandleFormat
from storage.reads import CandlePage
from web.problems import invalid, not_found


def routes(ctx: Context) -> list[BaseRoute]:
    async def candles(request: Request) -> Response:
        return await _candles(ctx, request)

    return [Route("/v1/candles", candles, methods=["GET"], name="candles")]


def grant_of(request: Request) -> Grant:
    """The grant the gate found for ``request`` (:mod:`charting.gate`)."""
    grant: Grant = request.state.grant
    return grant


async def check_instrument(
    ctx: Context, request: Request, instrument: str, parameter: str = "instrument"
) -> Grant:
    """The request's grant, once it covers ``instrument`` (else 403) and there is data for
    it (else 404); the plan is checked first, so a 403 tells nothing of what is stored."""
    grant = grant_of(request)
    if not grant.covers(instrument):
        raise forbidden(parameter, instrument, grant)
    if not await ctx.history.has_instrument(instrument):
        raise not_found(parameter, f"{parameter}: no data for {instrument}")
    return grant


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
    fmt = choose_candles(query.get("format"), request.headers.get("accept"))
    instrument = params.instrument(query)
    interval = params.interval(query)
    start, end = params.time_range(query, end_default=END_OF_TIME)
    limit = params.limit(query, settings.default_limit, settings.max_limit)
    cursor = params.cursor(query, "c", start, end)
    plan = plan_for(ctx, interval)
    window = ctx.gate.window(await check_instrument(ctx, request, instrument))
    page_start = window.start(start if cursor is None else cursor.ns)
    end = window.candle_end(end, interval)
    page_start = min(page_start, end)  # a range all beyond the plan's depth or delay: empty
    if plan.rolled:
        return await _rolled(ctx, request, fmt, instrument, plan, page_start, end, limit)
    stored = _Stored(ctx, request, fmt, instrument, interval, page_start, end)
    if (recent := ctx.pages.recent(stored.key)) is not None:
        unchanged = caching.not_modified(request, recent.headers)
        return unchanged or Response(recent.body, media_type=stored.media, headers=recent.headers)
    # The summary alone first when it may spare reading the rows (a kept page, or an ETag to
    # match) and for a format without a ready form; otherwise summary and rows come in one
    # statement.
    form = fmt.reads
    summary_first = (
        form is None
        or ctx.pages.holds(stored.key)
        or request.headers.get("if-none-match") is not None
    )
    if summary_first:
        page = await ctx.history.candle_page(instrument, interval, page_start, end, limit)
        known = stored.answer(page)
        if known is not None:
            return known
        if form is None:
            return stored.respond(page, _stored_candles(ctx, stored, page))
    assert form is not None
    read = ctx.history.read_ready(
        form, instrument, interval, page_start, end, limit, settings.chunk_rows
    )
    page = await read.open()
    try:
        known = None if summary_first else stored.answer(page)
        if known is not None:
            await read.aclose()
            return known
        if not read.complete:  # rows without the ready form: read the page as candles
            await read.aclose()
            page = await ctx.history.candle_page(instrument, interval, page_start, end, limit)
            return stored.respond(page, _stored_candles(ctx, stored, page))
        if (body := read.whole) is not None:  # one statement read it all: one body
            return stored.respond_whole(page, await _encode_whole(fmt, stored.ready(page), body))
        return stored.respond(page, _from_ready(fmt, stored.ready(page), read.chunks()))
    except BaseException:
        await read.aclose()
        raise


class _Stored:
    """One request for a page of a stored interval: its cache key, encoder and headers."""

    def __init__(
        self,
        ctx: Context,
        request: Request,
        fmt: CandleFormat,
        instrument: str,
        interval: Interval,
        start: int,
        end: int,
    ) -> None:
        self.ctx = ctx
        self.request = request
        self.fmt = fmt
        self.instrument = instrument
        self.interval = interval
        self.start = start
        self.media = fmt.media_type
        # the range read is part of the key: a plan's depth or delay may cut the range asked
        query = tuple(sorted(request.query_params.multi_items()))
        self.key = (request.url.path, query, self.media, start, end)

    def info(self, page: CandlePage) -> PageInfo:
        next_cursor = None if page.next_start is None else Cursor("c", page.next_start).encode()
        return PageInfo(
            self.instrument, self.interval.label, None, self.start, page.end, next_cursor,
            next_link(self.request, next_cursor),
        )  # fmt: skip

    def scales(self, page: CandlePage) -> Scales:
        return Scales(page.price_scale, page.size_scale, page.quote_scale, page.vwap_scale)

    def out(self, page: CandlePage) -> CandleEncoder:
        return encoder(self.fmt, self.info(page), self.scales(page))

    def ready(self, page: CandlePage) -> ReadyEncoder:
        return ready_encoder(self.fmt, self.info(page), self.scales(page))

    def validator(self, page: CandlePage) -> tuple[object, ...]:
        """What the page's bytes follow from, besides the query: its summary."""
        return (page.rows, page.updated_us, page.start, page.end)

    def freshness(self, page: CandlePage) -> caching.Freshness:
        return caching.Freshness(page.has_open, page.end, self.validator(page))

    def headers(self, page: CandlePage) -> dict[str, str]:
        return _headers(self.ctx, self.request, self.fmt, self.info(page), self.freshness(page))

    def answer(self, page: CandlePage) -> Response | None:
        """What needs no rows: a 304, or a kept final page that is still current."""
        headers = self.headers(page)
        cached = None
        if caching.is_final(self.freshness(page), self.ctx.settings):  # a 304 checks it too
            cached = self.ctx.pages.checked(self.key, self.validator(page))
        if (unchanged := caching.not_modified(self.request, headers)) is not None:
            return unchanged
        if cached is not None:
            return Response(cached.body, media_type=self.media, headers=headers)
        return None

    def respond_whole(self, page: CandlePage, body: bytes | memoryview) -> Response:
        headers = self.headers(page)
        if caching.is_final(self.freshness(page), self.ctx.settings):
            self.ctx.pages.put(self.key, self.validator(page), body, headers)
        return Response(body, media_type=self.media, headers=headers)

    def respond(self, page: CandlePage, stream: AsyncIterator[bytes]) -> Response:
        headers = self.headers(page)
        freshness = self.freshness(page)
        if caching.is_final(freshness, self.ctx.settings):
            stream = self.ctx.pages.tee(self.key, self.validator(page), headers, stream)
        return StreamingResponse(stream, media_type=self.media, headers=headers)


def _stored_candles(ctx: Context, stored: _Stored, page: CandlePage) -> AsyncIterator[bytes]:
    """A page read as :class:`Candle` s: for formats without a ready form, and for rows
    that lack theirs."""
    candles = ctx.history.candle_chunks(
        stored.instrument, stored.interval, stored.start, page.end, ctx.settings.chunk_rows
    )
    return _from_candles(stored.out(page), candles)


async def _rolled(
    ctx: Context,
    request: Request,
    fmt: CandleFormat,
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
    headers = _headers(ctx, request, fmt, info, freshness)
    if (unchanged := caching.not_modified(request, headers)) is not None:
        return unchanged
    return StreamingResponse(
        _stream_candles(out, page.candles, settings.chunk_rows),
        media_type=fmt.media_type,
        headers=headers,
    )


def _headers(
    ctx: Context,
    request: Request,
    fmt: CandleFormat,
    info: PageInfo,
    freshness: caching.Freshness,
) -> dict[str, str]:
    headers = caching.headers_for(request, fmt.media_type, freshness, ctx.settings)
    if info.next_url is not None:
        headers["Link"] = f'<{info.next_url}>; rel="next"'
    return headers


def _digest(candles: Sequence[Candle]) -> str:
    encoded = msgspec.json.encode([record(c) for c in candles])
    return hashlib.sha256(encoded).hexdigest()


async def _encode_whole(fmt: CandleFormat, out: ReadyEncoder, body: bytes) -> bytes | memoryview:
    """A page read in one statement, encoded whole (it is in memory already). A format
    that compresses (:attr:`~core.present.CandleFormat.threaded`: Parquet) is encoded on a
    worker thread (Arrow's C++ lets go of the GIL), which leaves the event loop, the
    platform's when embedded, free meanwhile. JSON is a join, and an Arrow batch is a few
    whole-array numpy steps: no longer than a thread hand-over."""
    if fmt.threaded:
        return await asyncio.to_thread(out.whole, body)
    return out.whole(body)


async def _from_ready(
    fmt: CandleFormat, out: ReadyEncoder, chunks: AsyncGenerator[bytes, None]
) -> AsyncIterator[bytes]:
    """A page from its rows' ready form: the encoder's head, a part per chunk, its tail."""
    threaded = fmt.threaded
    yield out.head()
    async with contextlib.aclosing(chunks):
        async for body in chunks:
            data = await asyncio.to_thread(out.stored, body) if threaded else out.stored(body)
            if data:
                yield data
    yield out.tail()


async def _from_candles(
    out: CandleEncoder, chunks: AsyncGenerator[list[Candle], None]
) -> AsyncIterator[bytes]:
    yield out.head()
    async with contextlib.aclosing(chunks):
        async for candles in chunks:
            if data := out.candles(candles):
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
