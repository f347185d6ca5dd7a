"""The history API's settings: one frozen object, built by whoever runs the app."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from access.settings import TokenSettings
from core.intervals import DEFAULT_INTERVALS, NS_PER_SECOND, Interval

WEB_DIR = Path(__file__).resolve().parent / "web"
"""The chart page, its script, and (after ``npm ci``) ``node_modules`` with lightweight-charts."""


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """What the history API and the chart page need to know.

    - ``intervals``: the intervals stored in the database (the engine's configured set).
      Others are rolled up on read from the coarsest stored interval that divides them.
    - ``max_limit``: the most rows one request may ask for (``limit``, UDF ``countback``,
      or a UDF range without ``countback``); ``default_limit`` when a request sets none.
    - ``max_source_rows``: the most stored candles one rolled-up page may read; a page of a
      coarse roll-up holds fewer candles so that it stays under this (the cursor goes on).
    - ``chunk_rows``: rows read from the database and sent on per step while streaming: a
      JSON, CSV, Arrow or Parquet page of at most this many stored candles is one statement
      (:mod:`storage.pg_pages`), a longer one a statement per chunk; ticks, JSON lines and
      the sources of roll-ups are fetched this many rows at a time. Memory per request is about
      this many rows (some 350 bytes each in JSON).
    - ``pool_size``: database connections when the app opens the database itself, in each
      of its two pools (asyncio, and blocking ones for candle pages read in worker threads);
      a streaming response holds one while it streams.
    - ``final_after_ns``: how long after its end a candle can still be revised (the engine's
      horizon plus its lateness). A page that ends longer ago than this and holds no open
      candle is final: it gets a long ``Cache-Control`` besides its ``ETag``.
    - ``cache_max_age``: seconds that final pages may be cached; ``cache_bytes``: memory for
      final pages kept encoded in the server (0: none), each served without asking the
      database again for ``cache_recheck_ns`` (see :mod:`charting.page_cache`).
    - ``ws_url``: the WebSocket gateway the chart page connects to (``/config.json``);
      ``{host}`` in it stands for the host the page was loaded from
      (``ws://{host}:8765/ws``); None leaves the chart without live updates.
      ``api_base``: where the page finds this API ("" when it is served by this very app).
    - ``web_dir``: the chart page's folder; ``clock``: the wall clock, UTC nanoseconds.
    - ``tokens``: how tokens are checked (:class:`web.tokens.TokenSettings`: the auth
      service's key set, or none: then every request reads everything; the anonymous plan);
      the tokens' clock is ``clock``.
    """

    intervals: tuple[Interval, ...] = DEFAULT_INTERVALS
    max_limit: int = 10_000
    default_limit: int = 1_000
    max_source_rows: int = 200_000
    chunk_rows: int = 10_000
    pool_size: int = 8
    final_after_ns: int = 3602 * NS_PER_SECOND
    cache_max_age: int = 86_400
    cache_bytes: int = 128 * 1024 * 1024
    cache_recheck_ns: int = NS_PER_SECOND
    ws_url: str | None = None
    api_base: str = ""
    web_dir: Path = WEB_DIR
    clock: Callable[[], int] = field(default=time.time_ns, repr=False)
    tokens: TokenSettings = field(default_factory=TokenSettings)

    @property
    def checks_tokens(self) -> bool:
        return self.tokens.checks_tokens

    def __post_init__(self) -> None:
        if not self.intervals:
            raise ValueError("at least one stored interval is needed")
        if not 1 <= self.default_limit <= self.max_limit:
            raise ValueError("default_limit must be between 1 and max_limit")
        if self.chunk_rows < 1 or self.max_source_rows < 1:
            raise ValueError("chunk_rows and max_source_rows must be positive")
