"""Properties of the paper matcher on random orders, cancels, amends and trades: no trade is
over-allocated, no order fills beyond its quantity, limits never fill at a worse price, every
report is a valid ``trading.events`` event, and a replay gives the same reports."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from core.ticks import Side, Tick
from core.trading_events import (
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderSide,
    OrderSubmitted,
    OrderType,
    OrderUpdated,
    TimeInForce,
    decode_event,
    encode_event,
)
from trading.domain.orders import fold
from trading.paper.matcher import PaperMatcher
from trading.paper.settings import PaperSettings, QueueModel
from trading.paper.venue import AmendRefused, CancelRefused, VenueReport

from .factories import ACCOUNT, SECOND, T0, order

INSTRUMENTS = ("KRAKEN:XBTUSDT", "KRAKEN:ETHUSD")
prices = st.integers(196, 204).map(lambda n: Decimal(n) / 2)  # 98 .. 102 by 0.5: many touches
sizes = st.integers(1, 300).map(lambda n: Decimal(n) / 100)


@dataclass(frozen=True)
class Submit:
    order_id: str
    side: str
    type: OrderType
    tif: TimeInForce
    quantity: Decimal
    price: Decimal
    instrument: str


@dataclass(frozen=True)
class Cancel:
    order_id: str


@dataclass(frozen=True)
class Amend:
    order_id: str
    quantity: Decimal | None
    price: Decimal | None


@dataclass(frozen=True)
class Trade:
    price: Decimal
    size: Decimal
    instrument: str


ids = st.sampled_from([f"o{n}" for n in range(6)])
submits = st.builds(
    Submit,
    ids,
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(list(OrderType)),
    st.sampled_from(list(TimeInForce)),
    sizes,
    prices,
    st.sampled_from(INSTRUMENTS),
)
trades = st.builds(Trade, prices, sizes, st.sampled_from(INSTRUMENTS))
cancels = st.builds(Cancel, ids)
amends = st.builds(Amend, ids, st.none() | sizes, st.none() | prices)
# mostly orders and trades, so that most examples fill something
_WEIGHTED = (submits, submits, trades, trades, trades, cancels, amends)
steps = st.integers(0, len(_WEIGHTED) - 1).flatmap(lambda k: _WEIGHTED[k])
settings = st.builds(
    PaperSettings,
    latency_ns=st.sampled_from([0, SECOND, 3 * SECOND]),
    maker_fee_bps=st.sampled_from([Decimal(0), Decimal("2.5")]),
    taker_fee_bps=st.sampled_from([Decimal(0), Decimal("7.5")]),
    queue=st.builds(
        QueueModel,
        lookback_ns=st.sampled_from([0, 5 * SECOND, 60 * SECOND]),
        fraction=st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(1)]),
    ),
)


Step = Submit | Cancel | Amend | Trade


def run(config: PaperSettings, script: list[Step]) -> list[tuple[Step, int, list[VenueReport]]]:
    """Each step of ``script`` (one a second) with its time and the reports it gave."""
    paper = PaperMatcher(config)
    out: list[tuple[Step, int, list[VenueReport]]] = []
    for n, step in enumerate(script):
        ts = T0 + n * SECOND
        if isinstance(step, Submit):
            reports = paper.submit(submitted(step), ts)
        elif isinstance(step, Cancel):
            reports = paper.cancel(ACCOUNT, step.order_id, ts)
        elif isinstance(step, Amend):
            reports = paper.amend(
                ACCOUNT, step.order_id, ts, quantity=step.quantity, price=step.price
            )
        else:
            reports = paper.on_tick(
                Tick(step.instrument, n, step.price, step.size, Side.UNKNOWN, ts, ts)
            )
        out.append((step, ts, reports))
    return out


def submitted(step: Submit) -> OrderSubmitted:
    is_limit = step.type == OrderType.LIMIT
    return order(
        step.order_id,
        step.side,
        str(step.quantity),
        str(step.price) if is_limit else None,
        type=step.type,
        stop_price=str(step.price) if step.type == OrderType.STOP_MARKET else None,
        tif=step.tif,
        instrument=step.instrument,
    )


@given(settings, st.lists(steps, min_size=10, max_size=80))
def test_no_trade_is_over_allocated_and_no_order_overfills(
    config: PaperSettings, script: list[Step]
) -> None:
    quantity: dict[str, Decimal] = {}
    limit: dict[str, Decimal | None] = {}
    filled: dict[str, Decimal] = {}
    for step, _, reports in run(config, script):
        if isinstance(step, Submit) and isinstance(reports[0], OrderAccepted):
            quantity[step.order_id] = step.quantity
            limit[step.order_id] = step.price if step.type == OrderType.LIMIT else None
            filled[step.order_id] = Decimal(0)
        given_here = Decimal(0)
        for report in reports:
            if isinstance(report, OrderFilled):
                assert report.quantity > 0
                assert report.fee >= 0
                given_here += report.quantity
                filled[report.order_id] += report.quantity
                assert filled[report.order_id] <= quantity[report.order_id]
                bound = limit[report.order_id]
                if bound is not None:
                    buy = report.side == OrderSide.BUY
                    assert report.price <= bound if buy else report.price >= bound
            elif isinstance(report, OrderUpdated):
                quantity[report.order_id] = report.quantity
                limit[report.order_id] = report.price
            elif isinstance(report, OrderCanceled):
                assert filled[report.order_id] < quantity[report.order_id]
        if isinstance(step, Trade):
            assert given_here <= step.size
        else:
            assert given_here == 0  # only trades fill


@given(settings, st.lists(steps, min_size=10, max_size=80))
def test_every_report_is_a_valid_event_and_a_replay_gives_the_same(
    config: PaperSettings, script: list[Step]
) -> None:
    first = run(config, script)
    for _, _, reports in first:
        for report in reports:
            if not isinstance(report, CancelRefused | AmendRefused):
                assert decode_event(encode_event(report)) == report
    assert run(config, script) == first


@given(settings, st.lists(steps, min_size=10, max_size=80))
def test_every_orders_reports_fold_through_the_domains_state_machine(
    config: PaperSettings, script: list[Step]
) -> None:
    """What the venue reports is always a legal path of the strict order state machine, and
    the folded order agrees with the venue on what has filled."""
    histories: list[list[OrderEvent]] = []
    working: dict[str, list[OrderEvent]] = {}
    for step, _, reports in run(config, script):
        if isinstance(step, Submit):
            events: list[OrderEvent] = [submitted(step), *_order_events(reports)]
            histories.append(events)
            if isinstance(reports[0], OrderAccepted):
                working[step.order_id] = events
            continue
        for event in _order_events(reports):
            working[event.order_id].append(event)
    for events in histories:
        folded = fold(events)
        fills = [e.quantity for e in events if isinstance(e, OrderFilled)]
        assert folded.filled_quantity == sum(fills, Decimal(0))


def _order_events(reports: list[VenueReport]) -> list[OrderEvent]:
    return [r for r in reports if not isinstance(r, CancelRefused | AmendRefused)]
