"""Intervals that are not stored, rolled up on read from a stored one that divides them.

The rules are the engine's (``docs/candles.md``), so a rolled-up ``2h`` candle equals the one
the engine would have built: open of the first trading part, close of the last, the highest
high and lowest low of the trading parts, exact sums of volume, notional, taker-buy volume
and trade count, and the trade ids of the first and last trades. Flat parts (the ``fill``
rule's empty intervals, without trades) contribute no price; a bucket made of flat parts only
is flat itself. A rolled candle is flagged ``gap`` when one of its parts is: some of its
trades may be missing. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from core.candles import Candle, CandleStatus
from core.intervals import Interval
from core.numbers import rescale


@dataclass(frozen=True, slots=True)
class Plan:
    """How to serve ``target``: read ``source`` candles (the same interval when it is stored)."""

    target: Interval
    source: Interval

    @property
    def ratio(self) -> int:
        """Source candles per target candle."""
        return self.target.ns // self.source.ns

    @property
    def rolled(self) -> bool:
        return self.ratio > 1


def plan(target: Interval, stored: Sequence[Interval]) -> Plan | None:
    """The stored interval to read for ``target``: itself, else the coarsest divisor; or None."""
    if target in stored:
        return Plan(target, target)
    divisors = [s for s in stored if target.ns % s.ns == 0]
    if not divisors:
        return None
    return Plan(target, max(divisors))


def bucket_groups(candles: Iterable[Candle], target: Interval) -> Iterator[list[Candle]]:
    """Consecutive candles grouped by their ``target`` bucket (input sorted either way)."""
    group: list[Candle] = []
    bucket = None
    for candle in candles:
        start = target.bucket_start(candle.open_time)
        if start != bucket and group:
            yield group
            group = []
        bucket = start
        group.append(candle)
    if group:
        yield group


def roll_up(candles: Iterable[Candle], target: Interval, now_ns: int) -> Iterator[Candle]:
    """Fold sorted candles of a finer interval into ``target`` candles, in the input order."""
    for group in bucket_groups(candles, target):
        yield fold(group, target, now_ns)


def fold(parts: Sequence[Candle], target: Interval, now_ns: int) -> Candle:
    """One ``target`` candle from its parts (candles of one bucket, any order).

    Status: ``open`` when a part is open or the bucket has not ended by ``now_ns``; else
    ``revised`` when a part was revised, else ``closed``. Revision: the sum of the parts'
    revisions, so that it grows whenever a part is revised. Gap: whether any part has it.
    """
    ordered = sorted(parts, key=lambda c: c.open_time)
    first = ordered[0]
    open_time = target.bucket_start(first.open_time)
    if any(target.bucket_start(c.open_time) != open_time for c in ordered):
        raise ValueError("the parts of a rolled-up candle must share one bucket")
    ps = max(c.price_scale for c in ordered)
    ss = max(c.size_scale for c in ordered)
    traded = [c for c in ordered if c.trades > 0]
    priced = traded or ordered

    def price(raw: int, candle: Candle) -> int:
        return rescale(raw, candle.price_scale, ps)

    def size(raw: int, candle: Candle) -> int:
        return rescale(raw, candle.size_scale, ss)

    return Candle(
        instrument=first.instrument,
        interval=target,
        open_time=open_time,
        price_scale=ps,
        size_scale=ss,
        open_raw=price(priced[0].open_raw, priced[0]),
        high_raw=max(price(c.high_raw, c) for c in priced),
        low_raw=min(price(c.low_raw, c) for c in priced),
        close_raw=price(priced[-1].close_raw, priced[-1]),
        volume_raw=sum(size(c.volume_raw, c) for c in ordered),
        quote_volume_raw=sum(
            rescale(c.quote_volume_raw, c.price_scale + c.size_scale, ps + ss) for c in ordered
        ),
        taker_buy_volume_raw=sum(size(c.taker_buy_volume_raw, c) for c in ordered),
        trades=sum(c.trades for c in ordered),
        first_trade_id=traded[0].first_trade_id if traded else None,
        last_trade_id=traded[-1].last_trade_id if traded else None,
        revision=sum(c.revision for c in ordered),
        status=_status(ordered, open_time + target.ns, now_ns),
        gap=any(c.gap for c in ordered),
    )


def _status(parts: Sequence[Candle], end_ns: int, now_ns: int) -> CandleStatus:
    statuses = {c.status for c in parts}
    if CandleStatus.OPEN in statuses or end_ns > now_ns:
        return CandleStatus.OPEN
    if CandleStatus.REVISED in statuses:
        return CandleStatus.REVISED
    return CandleStatus.CLOSED
