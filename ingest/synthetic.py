"""A seeded synthetic tick feed: random-walk prices, vectorised with numpy.

Each instrument gets its own random stream (spawned from ``seed``), so the ticks of one
instrument do not depend on which others are generated. Prices are an integer random walk in
fixed point (steps of up to about 1 basis point of the start price, reflected above 1% of it),
sizes are uniform between one unit of the size scale and 0.1, sides are buy or sell at random.
A feed of ``weight`` w stands for a market w times as dense: steps up to ``isqrt(w)`` times
and sizes up to w times as large, so that its candles look like the dense market's.
Only integers are drawn, so the output is exact and identical for a seed on every platform of
one numpy version.

Timing: the ``rate`` gives a spacing of ``round(1e9 / rate)`` ns; tick ``i`` of an instrument
falls at a random point of the ``i``-th slot, so timestamps strictly increase, every tick lies in
``[start_ns, start_ns + duration)`` and an instrument gets ``duration // spacing`` ticks
(``rate * duration`` when that is whole). ``ts_recv`` equals ``ts_event``; trade ids count from
1 per instrument.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import numpy as np

from core.instruments import validate_instrument
from core.numbers import MAX_SCALE, to_raw
from core.ticks import TickBatch

NS_PER_SECOND: Final = 1_000_000_000
DEFAULT_INSTRUMENTS: Final = ("SYNTH:BTCUSD", "SYNTH:ETHUSD", "SYNTH:SOLUSD")
DEFAULT_START_NS: Final = 1_767_225_600 * NS_PER_SECOND
"""2026-01-01T00:00:00Z."""
START_PRICES: Final = {
    "SYNTH:BTCUSD": Decimal(87_000),
    "SYNTH:ETHUSD": Decimal(3_000),
    "SYNTH:SOLUSD": Decimal(130),
    "SYNTH:XRPUSD": Decimal(2),
}
"""Where the walks of known instruments start; any other starts at :data:`OTHER_START_PRICE`."""
OTHER_START_PRICE: Final = Decimal(100)
MAX_SIZE: Final = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class SyntheticFeed:
    """Settings of a synthetic feed; :meth:`batches` generates it.

    ``rate`` is ticks per second per instrument, ``duration`` seconds, ``start_ns`` the epoch
    nanoseconds of the first slot, ``batch_size`` the most rows in a batch. ``start_prices``
    sets where the walks of some instruments start (else :data:`START_PRICES`); ``weight``
    scales steps and sizes (see the module's doc).
    """

    instruments: tuple[str, ...] = DEFAULT_INSTRUMENTS
    rate: float = 10.0
    duration: float = 60.0
    start_ns: int = DEFAULT_START_NS
    seed: int = 0
    batch_size: int = 10_000
    first_trade_id: int = 1
    price_scale: int = 2
    size_scale: int = 6
    start_prices: Mapping[str, Decimal] = field(default_factory=dict)
    weight: int = 1

    def __post_init__(self) -> None:
        if not self.instruments or len(set(self.instruments)) != len(self.instruments):
            raise ValueError("instruments must be a non-empty list without repeats")
        for instrument in self.instruments:
            validate_instrument(instrument)
        if not self.rate > 0 or not self.duration >= 0:
            raise ValueError("rate must be positive and duration not negative")
        if self.first_trade_id < 0 or self.weight < 1:
            raise ValueError("first_trade_id must not be negative, weight must be positive")
        if any(price <= 0 for price in self.start_prices.values()):
            raise ValueError("start prices must be positive")
        if self.start_ns <= 0 or self.batch_size < 1 or self.seed < 0:
            raise ValueError("start_ns and batch_size must be positive, seed not negative")
        if not 0 <= self.price_scale <= MAX_SCALE or not 1 <= self.size_scale <= MAX_SCALE:
            raise ValueError(f"price_scale must be in 0..{MAX_SCALE}, size_scale in 1..{MAX_SCALE}")
        if self.start_ns + round(self.duration * NS_PER_SECOND) >= 2**63:
            raise ValueError("the feed would run past the year 2262")

    @property
    def spacing_ns(self) -> int:
        """Nanoseconds between the slots of consecutive ticks of one instrument."""
        return max(1, round(NS_PER_SECOND / self.rate))

    @property
    def ticks_per_instrument(self) -> int:
        """How many ticks each instrument gets."""
        return round(self.duration * NS_PER_SECOND) // self.spacing_ns

    @property
    def total_ticks(self) -> int:
        """How many ticks :meth:`batches` yields in all."""
        return self.ticks_per_instrument * len(self.instruments)

    def batches(self) -> Iterator[TickBatch]:
        """All ticks: per instrument in time order, batches merged by their first timestamp."""
        streams = np.random.SeedSequence(self.seed).spawn(len(self.instruments))
        walks = [
            self._instrument_batches(instrument, np.random.default_rng(stream))
            for instrument, stream in zip(self.instruments, streams, strict=True)
        ]
        return heapq.merge(*walks, key=lambda batch: int(batch.ts_event[0]))

    def _instrument_batches(self, instrument: str, rng: np.random.Generator) -> Iterator[TickBatch]:
        price = self.start_prices.get(instrument, START_PRICES.get(instrument, OTHER_START_PRICE))
        start = max(
            1, to_raw(price.quantize(Decimal(1).scaleb(-self.price_scale)), self.price_scale)
        )
        floor = max(1, start // 100)
        max_step = max(1, start // 10_000) * math.isqrt(self.weight)
        max_size = max(1, to_raw(MAX_SIZE, self.size_scale)) * self.weight
        spacing = self.spacing_ns
        walk = start
        total = self.ticks_per_instrument
        for first in range(0, total, self.batch_size):
            n = min(self.batch_size, total - first)
            index = np.arange(first, first + n, dtype=np.int64)
            steps = rng.integers(-max_step, max_step + 1, size=n, dtype=np.int64)
            free = walk + np.cumsum(steps)
            walk = int(free[-1])
            ts = self.start_ns + index * spacing + rng.integers(0, spacing, size=n, dtype=np.int64)
            yield TickBatch(
                instrument=instrument,
                price_scale=self.price_scale,
                size_scale=self.size_scale,
                trade_id=index + self.first_trade_id,
                price=floor + np.abs(free - floor),
                size=rng.integers(1, max_size + 1, size=n, dtype=np.int64),
                side=(rng.integers(0, 2, size=n, dtype=np.int8) * 2 - 1).astype(np.int8),
                ts_event=ts,
                ts_recv=ts.copy(),
                trades=np.ones(n, dtype=np.int64),
            )
