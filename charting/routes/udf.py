"""TradingView UDF under ``/udf``: ``config``, ``symbols``, ``search``, ``history``, ``time``.

Errors are problem details that also carry UDF's ``s: "error"`` and ``errmsg``.
"""

from __future__ import annotations

import contextlib

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from charting import params, udf
from charting.candle_formats import record
from charting.context import Context
from charting.gate import Window
from charting.rolled import page_limit, rolled_latest, rolled_page
from charting.rollup import Plan
from charting.routes.candles import check_instrument, grant_of, plan_for
from charting.times import END_OF_TIME, NS_PER_SECOND, align_up
from charting.udf import Bar
from core.candles import Candle
from core.intervals import Interval
from storage.reads import CandleBar
from web.problems import invalid

_MAX_SECONDS = END_OF_TIME // NS_PER_SECOND - 1


def routes(ctx: Context) -> list[BaseRoute]:
    async def config(request: Request) -> Response:
        grant = grant_of(request)
        names = [name for name in await ctx.history.instruments() if grant.covers(name)]
        venues = sorted({name.split(":", 1)[0] for name in names})
        return JSONResponse(udf.config(ctx.settings.intervals, venues))

    async def symbols(request: Request) -> Response:
        instrument = params.instrument(request.query_params, "symbol")
        await check_instrument(ctx, request, instrument, "symbol")
        price_scale, size_scale = await _scales(ctx, instrument)
        info = udf.symbol_info(instrument, ctx.settings.intervals, price_scale, size_scale)
        return JSONResponse(info)

    async def search(request: Request) -> Response:
        query = request.query_params
        text = (query.get("query") or "").strip().upper()
        kind = (query.get("type") or "").strip().lower()
        exchange = (query.get("exchange") or "").strip().upper()
        limit = params.integer(query, "limit", 30, 1, 1000)
        grant = grant_of(request)
        found = [
            udf.search_result(name)
            for name in await ctx.history.instruments()
            if text in name
            and grant.covers(name)
            and (not exchange or name.split(":", 1)[0] == exchange)
            and kind in ("", "crypto")
        ]
        return JSONResponse(found[:limit])

    async def history(request: Request) -> Response:
        return await _history(ctx, request)

    async def time(request: Request) -> Response:
        return PlainTextResponse(str(ctx.settings.clock() // NS_PER_SECOND))

    return [
        Route("/udf/config", config, methods=["GET"], name="udf_config"),
        Route("/udf/symbols", symbols, methods=["GET"], name="udf_symbols"),
        Route("/udf/search", search, methods=["GET"], name="udf_search"),
        Route("/udf/history", history, methods=["GET"], name="udf_history"),
        Route("/udf/time", time, methods=["GET"], name="udf_time"),
    ]


async def _history(ctx: Context, request: Request) -> Response:
    settings = ctx.settings
    query = request.query_params
    instrument = params.instrument(query, "symbol")
    interval = _resolution(query.get("resolution"))
    start = _seconds(query, "from", required=False)
    end = _seconds(query, "to", required=True)
    assert end is not None
    countback = params.integer(query, "countback", None, 1, settings.max_limit)
    if countback is None:
        if start is None:
            raise invalid("from", "from is required (unix seconds) unless countback is given")
        if start >= end:
            raise invalid("from", "from must be before to (the range is [from, to))")
    plan = plan_for(ctx, interval, "resolution")
    window = ctx.gate.window(await check_instrument(ctx, request, instrument, "symbol"))
    end = window.candle_end(end, plan.target)
    if countback is not None:
        bars = await _latest(ctx, instrument, plan, window, end, countback)
    else:
        assert start is not None
        start = window.start(start)
        bars = [] if start >= end else await _range(ctx, instrument, plan, start, end)
    if bars:
        return Response(udf.history_ok(bars), media_type="application/json")
    body: dict[str, object] = {"s": "no_data"}
    if countback is None and start is not None and start > window.floor_ns:
        before = min(start, end)
        last = await ctx.history.last_open_time(
            instrument, plan.source, align_up(before, plan.target.ns)
        )
        if last is not None and last >= window.floor_ns:
            body["nextTime"] = plan.target.bucket_start(last) // NS_PER_SECOND
    return JSONResponse(body)


async def _scales(ctx: Context, instrument: str) -> tuple[int, int]:
    """Decimal places of the instrument's newest candle (of the finest interval that has
    any); two and eight when it has no candles yet."""
    for interval in ctx.settings.intervals:
        found = await ctx.history.scales(instrument, interval)
        if found is not None:
            return found
    return (2, 8)


def _resolution(text: str | None) -> Interval:
    if text is None or not text.strip():
        raise invalid("resolution", "resolution is required (e.g. 1S, 1, 60, 1D)")
    try:
        interval = udf.parse_resolution(text)
    except ValueError as exc:
        raise invalid("resolution", f"resolution: {exc}") from None
    if interval.ns > params.MAX_INTERVAL_NS:
        raise invalid("resolution", f"resolution: {text!r} is longer than the longest served")
    return interval


def _seconds(query: QueryParams, name: str, *, required: bool) -> int | None:
    value = params.integer(query, name, None, 0, _MAX_SECONDS, f"{name} must be unix seconds")
    if value is None:
        if required:
            raise invalid(name, f"{name} is required (unix seconds)")
        return None
    return value * NS_PER_SECOND


def _bar(candle: Candle) -> Bar:
    fields = record(candle)
    return (
        candle.open_time // NS_PER_SECOND,
        fields[1],
        fields[2],
        fields[3],
        fields[4],
        fields[5],
        candle.gap,
    )


def _row_bar(row: CandleBar) -> Bar:
    """A bar from a stored candle's bar texts."""
    return (row[0] // NS_PER_SECOND, row[1], row[2], row[3], row[4], row[5], row[6] == "true")


async def _latest(
    ctx: Context, instrument: str, plan: Plan, window: Window, end: int, count: int
) -> list[Bar]:
    settings = ctx.settings
    floor = window.start(0)
    if floor >= end:
        return []
    if not plan.rolled:
        bars: list[Bar] = []
        rows = ctx.history.candle_bars(
            instrument, plan.target, floor, end, settings.chunk_rows, descending=True,
            limit=count,
        )  # fmt: skip
        async with contextlib.aclosing(rows):
            async for chunk in rows:
                bars.extend(_row_bar(r) for r in chunk)
        bars.reverse()
        return bars
    count = page_limit(plan, count, settings.max_source_rows)
    candles = await rolled_latest(
        ctx.history, plan, instrument, end, count, settings.chunk_rows, settings.clock()
    )
    return [_bar(c) for c in candles if c.open_time >= floor]


async def _range(ctx: Context, instrument: str, plan: Plan, start: int, end: int) -> list[Bar]:
    settings = ctx.settings
    most = settings.max_limit
    too_many = invalid(
        "from",
        f"from: the range holds more than {most} bars; ask for a shorter one or use countback",
    )
    if not plan.rolled:
        bars: list[Bar] = []
        rows = ctx.history.candle_bars(
            instrument, plan.target, start, end, settings.chunk_rows, limit=most + 1
        )
        async with contextlib.aclosing(rows):
            async for chunk in rows:
                bars.extend(_row_bar(r) for r in chunk)
        if len(bars) > most:
            raise too_many
        return bars
    size = page_limit(plan, most, settings.max_source_rows)
    page = await rolled_page(
        ctx.history, plan, instrument, start, end, size, settings.chunk_rows, settings.clock()
    )
    if page.next_start is not None:
        raise too_many
    return [_bar(c) for c in page.candles]
