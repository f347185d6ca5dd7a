"""Paper fills on Kraken's real XBTUSDT trades of 2025-11-10: a scripted list of orders gives
exactly the fills of a table worked out by hand from the file (``trades.json``), and the same
script on the same file twice gives the same reports.

Settings of the run: latency 0.5 s, maker fee 2.5 bps, taker fee 5 bps, fees rounded up to 8
places, the default queue model (the size traded at the order's price in the 60 s before it
rests). Trades are named by their Kraken trade id; ``t(s)`` is a time in epoch seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from core.ticks import Tick
from core.trading_events import OrderAccepted, OrderFilled, OrderSubmitted, TimeInForce
from ingest.files.reader import read_ticks
from trading.paper.matcher import PaperMatcher
from trading.paper.settings import PaperSettings
from trading.paper.venue import VenueReport

from .factories import ACCOUNT, order, plain

D = Decimal
SETTINGS = PaperSettings(
    latency_ns=500_000_000, maker_fee_bps=D("2.5"), taker_fee_bps=D("5"), fee_places=8
)


def t(seconds: str) -> int:
    """Epoch seconds (decimal text) as UTC nanoseconds."""
    return int(D(seconds) * 10**9)


Action = Callable[[PaperMatcher, int], list[VenueReport]]


def submit(submitted: OrderSubmitted) -> Action:
    return lambda paper, ts: paper.submit(submitted, ts)


def cancel(order_id: str) -> Action:
    return lambda paper, ts: paper.cancel(ACCOUNT, order_id, ts)


def amend(order_id: str, **changes: Decimal) -> Action:
    return lambda paper, ts: paper.amend(ACCOUNT, order_id, ts, **changes)


SCRIPT: list[tuple[int, Action]] = [
    (t("1762795433"), submit(order("A", "buy", "0.0002"))),
    (t("1762795433"), submit(order("B", "buy", "0.0001"))),
    (t("1762795473.7"), submit(order("C", "sell", "0.001"))),
    (t("1762795601"), submit(order("E", "sell", "0.4", "105413.7"))),
    (t("1762795620"), submit(order("F", "buy", "0.002", "105400"))),
    (t("1762795900"), cancel("F")),
    (t("1762796510"), submit(order("H", "sell", "0.05", "105722.0", tif=TimeInForce.FOK))),
    (t("1762796515"), submit(order("H2", "buy", "0.03", tif=TimeInForce.FOK))),
    (t("1762796590"), submit(order("I", "buy", "0.01", "105700", tif=TimeInForce.IOC))),
    (t("1762796600"), submit(order("G", "sell", "0.1", stop_price="105650"))),
    (t("1762796660"), submit(order("J", "buy", "0.5", "105668.7"))),
    (t("1762796670"), amend("J", quantity=D("0.47"))),
    (t("1762796700"), submit(order("K", "buy", "0.1", "105600"))),
    (t("1762796840"), amend("K", price=D("105829.9"))),
]

# (order, trade id, price, quantity, liquidity, fee in USDT), each read off trades.json by hand.
# A fee is price * quantity * bps / 10000 rounded up to 8 places (2.5 bps maker, 5 bps taker).
EXPECTED_FILLS = [
    # A, B: market buys sent at 433.0 s, live from 433.5 s. The next trade, 10218208 (433.97 s,
    # 0.00027625 at 105433.6), fills A (earlier) with its 0.0002 and B with the 0.00007625
    # left of it; B takes its last 0.00002375 from 10218209 (0.00005 at 105410.1).
    ("A", 10218208, "105433.6", "0.0002", "taker", "0.01054336"),
    ("B", 10218208, "105433.6", "0.00007625", "taker", "0.00401966"),
    ("B", 10218209, "105410.1", "0.00002375", "taker", "0.00125175"),
    # C: market sell sent at 473.7 s, live from 474.2 s: the latency keeps it out of 10218210
    # and 10218211 (473.94 s). It takes 10218212 (0.00007235 at 105383.7), 10218213
    # (0.00045603 at 105351.1) and the 0.00047162 it still needs of 10218214 (105413.7).
    ("C", 10218212, "105383.7", "0.00007235", "taker", "0.00381226"),
    ("C", 10218213, "105351.1", "0.00045603", "taker", "0.02402164"),
    ("C", 10218214, "105413.7", "0.00047162", "taker", "0.02485761"),
    # E: sell 0.4 limit 105413.7, resting from 601.5 s. In the 60 s before, 0.00229159 traded
    # at 105413.7 (10218214): that is the queue ahead. The burst at 616.31 s is all at its
    # price: 10218215 (0.01600841) gives 0.01600841 - 0.00229159 = 0.01371682; then 10218216
    # (0.00012214) and 10218217 (0.37972444) whole; 10218218 (0.0279696) the last 0.0064366.
    ("E", 10218215, "105413.7", "0.01371682", "maker", "0.36148519"),
    ("E", 10218216, "105413.7", "0.00012214", "maker", "0.00321881"),
    ("E", 10218217, "105413.7", "0.37972444", "maker", "10.00703956"),
    ("E", 10218218, "105413.7", "0.0064366", "maker", "0.16962646"),
    # F: buy 0.002 limit 105400 from 620.5 s. The first trades below 105400 are 10218233
    # (0.00012976 at 105380.7) and 10218234 (0.00034233 at 105380.8), at 806.2 s; it fills
    # at its own price. Nothing else prints below 105400 before the cancel at 900 s.
    ("F", 10218233, "105400", "0.00012976", "maker", "0.00341918"),
    ("F", 10218234, "105400", "0.00034233", "maker", "0.00902040"),
    # H: FOK sell 0.05 limit 105722.0 from 510.5 s: its one trade, 10218268 (0.03479616 at
    # 105722.0), is at its price but too small: canceled, no fill. H2: FOK buy 0.03 market
    # from 515.5 s: its one trade, 10218271 (519.96 s, 0.0858452 at 105722.0), covers it.
    ("H2", 10218271, "105722", "0.03", "taker", "1.58583000"),
    # I: IOC buy 0.01 limit 105700 from 590.5 s: its one trade, 10218272 (0.00118303 at
    # 105692.5, below its limit), fills 0.00118303 at the trade's price; the rest is canceled.
    ("I", 10218272, "105692.5", "0.00118303", "taker", "0.06251870"),
    # G: sell stop 105650 from 600.5 s. 10218274..76 print at 105668.8 and above; 10218277
    # (105648.5) reaches the stop and triggers it. As a market order it takes the trades after:
    # 10218278 (0.09469725 at 105645.8) and 0.00530275 of 10218279 (105645.7).
    ("G", 10218278, "105645.8", "0.09469725", "taker", "5.00218337"),
    ("G", 10218279, "105645.7", "0.00530275", "taker", "0.28010637"),
    # J: buy 0.5 limit 105668.7 from 660.5 s; 10218280 (656.13 s, 0.09469164 at 105668.7) is
    # the queue ahead. 10218281 (0.28386397 at its price) gives 0.28386397 - 0.09469164 =
    # 0.18917233; 10218282 (0.265049), 10218283 (0.006), 10218284 (0.00904) whole: 0.46926133.
    # Amended down to 0.47 at 670 s (keeps its place); 10218285 (105668.6, through its price)
    # gives the last 0.00073867.
    ("J", 10218281, "105668.7", "0.18917233", "maker", "4.99739855"),
    ("J", 10218282, "105668.7", "0.265049", "maker", "7.00184582"),
    ("J", 10218283, "105668.7", "0.006", "maker", "0.15850305"),
    ("J", 10218284, "105668.7", "0.00904", "maker", "0.23881127"),
    ("J", 10218285, "105668.7", "0.00073867", "maker", "0.01951358"),
    # K: buy 0.1 limit 105600 from 700.5 s: every trade until 840 s is above it. Amended to
    # 105829.9 at 840 s; nothing traded at 105829.9 in the minute before, so no queue. At
    # 844.97 s 10218300 (0.0183) and 10218301 (0.00474383) print at 105829.8, through it;
    # 10218302 (0.08426291 at 105829.9, a touch) gives the last 0.07695617.
    ("K", 10218300, "105829.9", "0.0183", "maker", "0.48417180"),
    ("K", 10218301, "105829.9", "0.00474383", "maker", "0.12550977"),
    ("K", 10218302, "105829.9", "0.07695617", "maker", "2.03606595"),
]

# Every other report after the acceptances, in order: (kind, order, ts).
EXPECTED_OTHERS = [
    ("OrderCanceled", "F", t("1762795900")),  # the scripted cancel
    ("OrderCanceled", "H", t("1762796511.1653955")),  # FOK: 10218268 too small
    ("OrderCanceled", "I", t("1762796596.2438984")),  # IOC remainder after 10218272
    ("OrderTriggered", "G", t("1762796643.428433")),  # 10218277 at 105648.5 <= 105650
    ("OrderUpdated", "J", t("1762796670")),
    ("OrderUpdated", "K", t("1762796840")),
]


def kraken_ticks(shared_data: Path) -> list[Tick]:
    path = shared_data / "kraken-xbtusdt-2025-11-10" / "trades.json"
    return [tick for batch in read_ticks(path) for tick in batch.ticks()]


def replay(ticks: list[Tick]) -> list[VenueReport]:
    """Each scripted call at its time, before the trades at or after that time."""
    paper = PaperMatcher(SETTINGS)
    reports: list[VenueReport] = []
    script = iter(SCRIPT)
    pending = next(script, None)
    for tick in ticks:
        while pending is not None and pending[0] <= tick.ts_event:
            ts, action = pending
            reports += action(paper, ts)
            pending = next(script, None)
        reports += paper.on_tick(tick)
    assert pending is None, "the script runs past the file"
    return reports


@pytest.fixture(scope="module")
def ticks(shared_data: Path) -> list[Tick]:
    return kraken_ticks(shared_data)


def test_scripted_orders_on_kraken_trades_give_the_hand_checked_fills(ticks: list[Tick]) -> None:
    reports = replay(ticks)
    got = [
        (r.order_id, r.trade_id, plain(r.price), plain(r.quantity), r.liquidity.value, str(r.fee))
        for r in reports
        if isinstance(r, OrderFilled)
    ]
    assert got == EXPECTED_FILLS
    at = {tick.trade_id: tick.ts_event for tick in ticks}
    assert all(r.ts == at[r.trade_id] for r in reports if isinstance(r, OrderFilled))
    assert {r.fee_currency for r in reports if isinstance(r, OrderFilled)} == {"USDT"}
    others = [
        (type(r).__name__, r.order_id, r.ts)
        for r in reports
        if not isinstance(r, OrderFilled | OrderAccepted)
    ]
    assert others == EXPECTED_OTHERS
    accepted = [r.order_id for r in reports if isinstance(r, OrderAccepted)]
    assert accepted == ["A", "B", "C", "E", "F", "H", "H2", "I", "G", "J", "K"]


def test_the_same_orders_on_the_same_file_give_the_same_reports(ticks: list[Tick]) -> None:
    first = replay(ticks)
    assert replay(ticks) == first
    assert len(first) > len(EXPECTED_FILLS)
