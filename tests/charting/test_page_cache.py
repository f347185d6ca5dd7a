"""The kept pages' checks against the database (``charting/page_cache.py``): one request at a
time checks a page that is due, the others meanwhile get it as it is, and a check that never
ends is taken over. Pure: a clock of our own, no database."""

from __future__ import annotations

from charting.page_cache import PageCache

MS = 1_000_000
RECHECK = 1_000 * MS
KEY = ("/v1/candles", (), "application/json", 0, 60)


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def kept(clock: Clock, recheck_ns: int = RECHECK) -> PageCache:
    pages = PageCache(1 << 20, recheck_ns, clock)
    pages.put(KEY, ("v", 1), b"page", {"ETag": 'W/"1"'})
    return pages


def test_a_page_checked_lately_is_served_as_it_is() -> None:
    clock = Clock()
    pages = kept(clock)
    clock.now = RECHECK - 1
    assert pages.recent(KEY) is not None


def test_one_request_at_a_time_checks_a_page_that_is_due() -> None:
    clock = Clock()
    pages = kept(clock)
    clock.now = RECHECK + 5 * MS
    assert pages.recent(KEY) is None  # the first request checks it
    clock.now += 2 * MS
    during = pages.recent(KEY)  # another, while that check runs: the page as it is
    assert during is not None
    assert during.body == b"page"
    assert pages.checked(KEY, ("v", 1)) is not None  # the check found it current
    clock.now += RECHECK - 1
    assert pages.recent(KEY) is not None  # checked lately again


def test_a_check_that_never_ends_is_taken_over_after_the_recheck_time() -> None:
    clock = Clock()
    pages = kept(clock)
    clock.now = RECHECK
    assert pages.recent(KEY) is None  # its check fails: checked() never comes
    clock.now += RECHECK - 1
    assert pages.recent(KEY) is not None
    clock.now += 1
    assert pages.recent(KEY) is None  # the next request checks it


def test_a_page_found_changed_is_replaced_and_checked_lately() -> None:
    clock = Clock()
    pages = kept(clock)
    clock.now = RECHECK
    assert pages.recent(KEY) is None
    assert pages.checked(KEY, ("v", 2)) is None  # the database moved on
    assert pages.recent(KEY) is None  # no one gets the old page while it is read again
    pages.put(KEY, ("v", 2), b"new page", {"ETag": 'W/"2"'})
    again = pages.recent(KEY)
    assert again is not None
    assert again.body == b"new page"


def test_without_a_recheck_time_every_request_checks() -> None:
    clock = Clock()
    pages = kept(clock, recheck_ns=0)
    assert pages.recent(KEY) is None
    assert pages.recent(KEY) is None
