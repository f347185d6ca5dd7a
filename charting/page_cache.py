"""Encoded final pages kept in memory, so that a popular closed range is read once.

Only final pages go in (no open candle, and ended longer ago than candles can be revised).
A page checked against the database (its summary: row count and last change) less than
``recheck_ns`` ago is served as it is; an older one is checked again first, so that a
backfill into a closed range shows within that time and the one check's. One request at a
time checks a page: the others meanwhile get it as it is, for at most ``recheck_ns`` more
(a check that never ends, its request failed, is then taken over by the next request).
Before, every request that came while the check ran checked too: under load, 433 of 32,000
requests of a popular page (1.4 %) went to the database, and made the p99 (docs/benchmarks.md,
"The history API's own tail"). Least recently used pages leave first; the total stays under
``max_bytes``, and no page over an eighth of it is kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class CachedPage:
    validator: Hashable
    body: bytes | memoryview
    headers: dict[str, str]
    checked_ns: int
    checking_since_ns: int | None = None


class PageCache:
    def __init__(self, max_bytes: int, recheck_ns: int, clock: Callable[[], int]) -> None:
        self.max_bytes = max_bytes
        self.recheck_ns = recheck_ns
        self._clock = clock
        self._pages: OrderedDict[Hashable, CachedPage] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def recent(self, key: Hashable) -> CachedPage | None:
        """The page, if it was checked against the database less than ``recheck_ns`` ago, or
        if another request is checking it (since less than ``recheck_ns``). None: the caller
        checks it (then :meth:`checked`), or there is none."""
        page = self._pages.get(key)
        if page is None:
            return None
        now = self._clock()
        if now - page.checked_ns >= self.recheck_ns:
            since = page.checking_since_ns
            if since is None or now - since >= self.recheck_ns:
                page.checking_since_ns = now  # this caller checks it; the others need not
                return None
        self._pages.move_to_end(key)
        self.hits += 1
        return page

    def holds(self, key: Hashable) -> bool:
        """Whether a page is kept under ``key`` (checked or not)."""
        return key in self._pages

    def checked(self, key: Hashable, validator: Hashable) -> CachedPage | None:
        """The page, if its validator is still ``validator`` (the database's summary); a page
        found changed goes at once (no other request gets it while it is read again)."""
        page = self._pages.get(key)
        if page is None or page.validator != validator:
            self.misses += 1
            if page is not None:
                del self._pages[key]
                self._bytes -= len(page.body)
            return None
        page.checked_ns = self._clock()
        page.checking_since_ns = None
        self._pages.move_to_end(key)
        self.hits += 1
        return page

    def put(
        self, key: Hashable, validator: Hashable, body: bytes | memoryview, headers: dict[str, str]
    ) -> None:
        if len(body) > self.max_bytes // 8:
            return
        old = self._pages.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._pages[key] = CachedPage(validator, body, dict(headers), self._clock())
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            _, evicted = self._pages.popitem(last=False)
            self._bytes -= len(evicted.body)

    async def tee(
        self,
        key: Hashable,
        validator: Hashable,
        headers: dict[str, str],
        chunks: AsyncIterator[bytes],
    ) -> AsyncIterator[bytes]:
        """Pass ``chunks`` on, and keep the whole body once it has all gone out."""
        kept: list[bytes] = []
        size = 0
        limit = self.max_bytes // 8
        async for chunk in chunks:
            if size <= limit:
                kept.append(chunk)
                size += len(chunk)
            yield chunk
        if size <= limit:
            self.put(key, validator, b"".join(kept), headers)
