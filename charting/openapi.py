"""The OpenAPI 3.1 document of the history API, served at ``/openapi.json``.

Written by hand next to the routes it describes; ``tests/charting/test_openapi_fuzz.py``
fuzzes the app from it (schemathesis) and checks the responses against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, get_args

from access.verify import RefusalCode
from charting.candle_formats import CANDLE_FIELDS
from charting.formats import MEDIA_TYPES, Format
from charting.gap_formats import GAP_FIELDS
from charting.settings import ApiSettings
from charting.tick_formats import TICK_FIELDS
from core.present import CandleFormat, candle_formats
from web.problems import PROBLEM_MEDIA_TYPE

_INSTRUMENT: Final = {
    "type": "string",
    "pattern": "^[A-Z0-9_]{1,32}:[A-Z0-9_./-]{1,64}$",
    "examples": ["BINANCE:BTCUSDT"],
}
_INTERVAL: Final = {
    "type": "string",
    "pattern": "^[1-9][0-9]{0,5}[smhd]$",
    "description": "A count and a unit (s, m, h, d): stored intervals are read directly, "
    "multiples of a stored one are rolled up on read.",
    "examples": ["1m", "5m", "2h"],
}
_TIME: Final = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": "^[0-9]{1,13}$"},
    ],
    "description": "ISO 8601 (UTC when no offset is given) or epoch milliseconds.",
}
_NULLABLE_STRING: Final = {"type": ["string", "null"]}
_NULLABLE_INT: Final = {"type": ["integer", "null"]}
_DECIMAL: Final = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}
_BINARY: Final = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}


def document(settings: ApiSettings) -> dict[str, Any]:
    """The document, with the limits of ``settings``."""
    problems = {
        "400": _problem("A parameter is missing or malformed; `parameter` names it."),
        "401": _UNAUTHORIZED,
        "403": _problem(
            "The instrument is outside the token's plan (`type` ends in"
            " `instrument-not-in-plan`; `parameter` names it)."
        ),
        "404": _problem("The instrument (or symbol) has no data."),
        "503": _problem(
            "The database is unavailable (`type` ends in `database-unavailable`); try again"
            " after the `Retry-After` header's seconds."
        ),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ganntec market data: history API",
            "version": "1",
            "description": "Candles, ticks and feed gaps over HTTP (JSON, CSV, Arrow, "
            "Parquet), and TradingView UDF. See docs/history-api.md.",
        },
        "paths": {
            "/v1/candles": {"get": _candles(settings, problems)},
            "/v1/ticks": {"get": _ticks(settings, problems)},
            "/v1/gaps": {"get": _gaps(problems)},
            "/v1/instruments": {"get": _instruments(problems)},
            "/udf/config": {"get": _udf_config()},
            "/udf/symbols": {"get": _udf_symbols(problems)},
            "/udf/search": {"get": _udf_search(problems)},
            "/udf/history": {"get": _udf_history(settings, problems)},
            "/udf/time": {"get": _udf_time()},
            "/config.json": {"get": _chart_config()},
            "/healthz": {"get": _health("Alive: the process answers", "healthz")},
            "/readyz": {"get": _health("Ready: the database answers (else 503)", "readyz")},
        },
        "components": {"schemas": _schemas()},
    }


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemError"}}},
    }


_UNAUTHORIZED: Final = _problem(
    "When the API checks tokens (docs/auth.md): no token and no anonymous plan"
    " (`token-required`), or a token refused (`invalid-token`, `token-expired`; `reason` is"
    " our refusal code)."
)


def _param(name: str, schema: dict[str, Any], description: str, required: bool = False) -> Any:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def _paging(settings: ApiSettings, formats: list[str]) -> list[dict[str, Any]]:
    return [
        _param("start", _TIME, "Start of the range (inclusive).", required=True),
        _param("end", _TIME, "End of the range (exclusive); open-ended when absent."),
        _param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": settings.max_limit},
            f"Rows per page (default {settings.default_limit}).",
        ),
        _param("cursor", {"type": "string"}, "Where the next page starts (from a next link)."),
        _param(
            "format",
            {"type": "string", "enum": formats},
            "The response format; else the Accept header chooses; else JSON.",
        ),
    ]


def _page_response(
    description: str, json_schema: str, formats: Sequence[CandleFormat]
) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for fmt in formats:
        if fmt.name == Format.JSON:
            content[fmt.media_types[0]] = {
                "schema": {"$ref": f"#/components/schemas/{json_schema}"}
            }
        else:
            content[fmt.media_types[0]] = _BINARY if fmt.binary else {"schema": {"type": "string"}}
    return {
        "description": description
        + ' A `Link: <...>; rel="next"` header points to the next page, if any.',
        "content": content,
    }


def _tick_formats() -> list[CandleFormat]:
    """The formats of ticks: those of candles with the same names."""
    return [fmt for fmt in candle_formats() if fmt.name in set(Format)]


def _candles(settings: ApiSettings, problems: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": "Candles of one instrument and interval",
        "operationId": "getCandles",
        "parameters": [
            _param("instrument", _INSTRUMENT, "VENUE:SYMBOL", required=True),
            _param("interval", _INTERVAL, "Candle interval", required=True),
            *_paging(settings, [fmt.name for fmt in candle_formats()]),
        ],
        "responses": {
            "200": _page_response(
                "A page of candles opening in [start, end).", "CandlePage", candle_formats()
            ),
            "304": {"description": "Not modified (If-None-Match matched the ETag)."},
            **problems,
            "406": _problem("No offered format matches the Accept header."),
        },
    }


def _ticks(settings: ApiSettings, problems: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": "Trades of one instrument",
        "operationId": "getTicks",
        "parameters": [
            _param("instrument", _INSTRUMENT, "VENUE:SYMBOL", required=True),
            *_paging(settings, [f.value for f in Format]),
        ],
        "responses": {
            "200": _page_response(
                "A page of ticks with ts_event in [start, end).", "TickPage", _tick_formats()
            ),
            "304": {"description": "Not modified (If-None-Match matched the ETag)."},
            **problems,
            "406": _problem("No offered format matches the Accept header."),
        },
    }


def _gaps(problems: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": "Feed gaps of one instrument: spans in which trades may be missing",
        "operationId": "getGaps",
        "parameters": [
            _param("instrument", _INSTRUMENT, "VENUE:SYMBOL", required=True),
            _param("start", _TIME, "Start of the range (inclusive).", required=True),
            _param("end", _TIME, "End of the range (exclusive); open-ended when absent."),
            _param(
                "format",
                {"type": "string", "enum": [f.value for f in Format]},
                "The response format; else the Accept header chooses; else JSON.",
            ),
        ],
        "responses": {
            "200": {
                "description": "Every stored gap overlapping [start, end), by start; a range "
                "holding more than the row limit is refused (400, parameter start).",
                "content": {
                    MEDIA_TYPES[Format.JSON]: {"schema": {"$ref": "#/components/schemas/GapPage"}},
                    "text/csv": {"schema": {"type": "string"}},
                    MEDIA_TYPES[Format.ARROW]: _BINARY,
                    MEDIA_TYPES[Format.PARQUET]: _BINARY,
                },
            },
            "304": {"description": "Not modified (If-None-Match matched the ETag)."},
            **problems,
            "406": _problem("No offered format matches the Accept header."),
        },
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _instruments(problems: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": "Every instrument with data, and the stored intervals",
        "operationId": "getInstruments",
        "responses": {
            "200": _json({"$ref": "#/components/schemas/Instruments"}),
            "503": problems["503"],
        },
    }


def _health(summary: str, operation: str) -> dict[str, Any]:
    state = {"type": "object", "required": ["status"]}
    return {
        "summary": summary,
        "operationId": operation,
        "responses": {"200": _json(state), "503": _json(state)},
    }


def _udf_config() -> dict[str, Any]:
    return {
        "summary": "UDF: datafeed configuration",
        "operationId": "udfConfig",
        "responses": {
            "200": _json({"type": "object", "required": ["supported_resolutions"]}),
            "401": _UNAUTHORIZED,
        },
    }


def _udf_symbols(problems: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": "UDF: symbol information",
        "operationId": "udfSymbols",
        "parameters": [_param("symbol", _INSTRUMENT, "VENUE:SYMBOL", required=True)],
        "responses": {
            "200": _json({"type": "object", "required": ["name", "ticker", "pricescale"]}),
            **problems,
        },
    }


def _udf_search(problems: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": "UDF: symbol search",
        "operationId": "udfSearch",
        "parameters": [
            _param("query", {"type": "string"}, "Text the symbol contains"),
            _param("type", {"type": "string"}, "Symbol type (crypto)"),
            _param("exchange", {"type": "string"}, "Venue"),
            _param("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Most results"),
        ],
        "responses": {
            "200": _json({"type": "array", "items": {"type": "object"}}),
            "400": problems["400"],
        },
    }


def _udf_history(settings: ApiSettings, problems: dict[str, Any]) -> dict[str, Any]:
    seconds = {"type": "integer", "minimum": 0, "maximum": 253_370_764_799}
    return {
        "summary": "UDF: bars",
        "operationId": "udfHistory",
        "parameters": [
            _param("symbol", _INSTRUMENT, "VENUE:SYMBOL", required=True),
            _param(
                "resolution",
                {
                    "type": "string",
                    "pattern": "^([1-9][0-9]{0,5})?[SD]?$",
                    "minLength": 1,
                    "examples": ["1S", "1", "60", "1D"],
                },
                "Seconds (1S), minutes (1, 60) or days (1D); weeks and months are not served.",
                required=True,
            ),
            _param("from", seconds, "Leftmost bar (inclusive), unix seconds"),
            _param("to", seconds, "Rightmost bar (exclusive), unix seconds", required=True),
            _param(
                "countback",
                {"type": "integer", "minimum": 1, "maximum": settings.max_limit},
                "Bars wanted before `to` (wins over `from`)",
            ),
        ],
        "responses": {
            "200": _json({"$ref": "#/components/schemas/UdfHistory"}),
            **problems,
        },
    }


def _udf_time() -> dict[str, Any]:
    return {
        "summary": "UDF: server time, unix seconds",
        "operationId": "udfTime",
        "responses": {
            "200": {
                "description": "Unix seconds",
                "content": {"text/plain": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}},
            },
            "401": _UNAUTHORIZED,
        },
    }


def _chart_config() -> dict[str, Any]:
    return {
        "summary": "The chart page's configuration",
        "operationId": "chartConfig",
        "responses": {"200": _json({"$ref": "#/components/schemas/ChartConfig"})},
    }


def _schemas() -> dict[str, Any]:
    candle_props: dict[str, Any] = dict.fromkeys(CANDLE_FIELDS, _DECIMAL)
    candle_props |= {
        "instrument": {"type": "string"},
        "interval": {"type": "string"},
        "open_time": {"type": "string", "format": "date-time"},
        "trades": {"type": "integer", "minimum": 0},
        "first_trade_id": _NULLABLE_INT,
        "last_trade_id": _NULLABLE_INT,
        "status": {"type": "string", "enum": ["open", "closed", "revised"]},
        "revision": {"type": "integer", "minimum": 0},
        "gap": {"type": "boolean"},
    }
    tick_props: dict[str, Any] = {
        "instrument": {"type": "string"},
        "trade_id": {"type": "integer"},
        "price": _DECIMAL,
        "size": _DECIMAL,
        "side": {"type": "string", "enum": ["buy", "sell", "unknown"]},
        "ts_event": {"type": "string", "format": "date-time"},
        "ts_recv": {"type": "string", "format": "date-time"},
        "trades": {"type": "integer", "minimum": 1},
    }
    assert set(tick_props) == set(TICK_FIELDS)
    gap_props: dict[str, Any] = {
        "instrument": {"type": "string"},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "reason": {"type": "string", "examples": ["disconnected", "sequence"]},
        "detail": {"type": "string"},
        "noticed": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    }
    assert tuple(gap_props) == GAP_FIELDS
    page_props: dict[str, Any] = {
        "instrument": {"type": "string"},
        "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "next_cursor": _NULLABLE_STRING,
        "next": _NULLABLE_STRING,
    }
    return {
        "ProblemError": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "parameter": {"type": "string"},
                "invalid_params": {"type": "array", "items": {"type": "object"}},
                "reason": {
                    "enum": list(get_args(RefusalCode)),
                    "description": "Why a token was refused (401 only).",
                },
                "s": {"const": "error"},
                "errmsg": {"type": "string"},
            },
        },
        "Candle": {
            "type": "object",
            "required": list(CANDLE_FIELDS),
            "properties": candle_props,
        },
        "CandlePage": {
            "type": "object",
            "required": [*page_props, "interval", "rolled_up_from", "candles"],
            "properties": page_props
            | {
                "interval": {"type": "string"},
                "rolled_up_from": _NULLABLE_STRING,
                "candles": {"type": "array", "items": {"$ref": "#/components/schemas/Candle"}},
            },
        },
        "Tick": {"type": "object", "required": list(TICK_FIELDS), "properties": tick_props},
        "TickPage": {
            "type": "object",
            "required": [*page_props, "ticks"],
            "properties": page_props
            | {"ticks": {"type": "array", "items": {"$ref": "#/components/schemas/Tick"}}},
        },
        "Gap": {"type": "object", "required": list(GAP_FIELDS), "properties": gap_props},
        "GapPage": {
            "type": "object",
            "required": ["instrument", "start", "end", "gaps"],
            "properties": {
                "instrument": {"type": "string"},
                "start": {"type": "string", "format": "date-time"},
                "end": {"type": "string", "format": "date-time"},
                "gaps": {"type": "array", "items": {"$ref": "#/components/schemas/Gap"}},
            },
        },
        "Instruments": {
            "type": "object",
            "required": ["instruments", "intervals"],
            "properties": {
                "instruments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["instrument", "venue", "symbol"],
                        "properties": {
                            "instrument": {"type": "string"},
                            "venue": {"type": "string"},
                            "symbol": {"type": "string"},
                        },
                    },
                },
                "intervals": {"type": "array", "items": {"type": "string"}},
            },
        },
        "UdfHistory": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["s", "t", "o", "h", "l", "c", "v"],
                    "properties": {
                        "s": {"const": "ok"},
                        **{k: {"type": "array", "items": {"type": "number"}} for k in "tohlcv"},
                        "gap": {
                            "type": "array",
                            "items": {"type": "boolean"},
                            "description": "Per bar: it overlaps a feed gap (trades may be "
                            "missing). Present only when a bar is flagged.",
                        },
                    },
                },
                {
                    "type": "object",
                    "required": ["s"],
                    "properties": {"s": {"const": "no_data"}, "nextTime": {"type": "integer"}},
                },
            ]
        },
        "ChartConfig": {
            "type": "object",
            "required": ["ws_url", "api_base"],
            "properties": {
                "ws_url": _NULLABLE_STRING,
                "api_base": {"type": "string"},
                "intervals": {"type": "array", "items": {"type": "string"}},
            },
        },
    }
