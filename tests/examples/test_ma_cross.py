"""The moving-average-cross bot's strategy (``examples/ma_cross.py``), pure: exact averages,
a trade on each cross and none between, a candle counted once it is complete, the position
limit, no sale of what is not held, and the options."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from examples.ma_cross import (
    Params,
    State,
    Trade,
    decide,
    direction,
    on_candle,
    parse,
    refused,
    run,
)

D = Decimal
PARAMS = Params(fast=2, slow=3, quantity=D("0.01"), max_position=D("0.02"))


def feed(
    closes: list[str], params: Params = PARAMS, state: State | None = None
) -> tuple[State, list[Trade | None]]:
    """One candle a close (open times 0, 1, 2...), each complete when the next opens."""
    state = state or State()
    trades = []
    start = 0 if state.open_time is None else state.open_time + 1
    for offset, close in enumerate(closes):
        state, trade = on_candle(state, params, start + offset, D(close))
        trades.append(trade)
    return state, trades


def test_the_averages_are_compared_exactly() -> None:
    # 31 significant digits: beyond the default context (28), which would round them equal
    closes = [D("10"), D("10"), D("10.0000000000000000000000000001")]
    assert direction(closes, PARAMS) == 1
    assert direction([D(1), D(2), D(3)], PARAMS) == 1  # fast 2.5 > slow 2
    assert direction([D(3), D(2), D(1)], PARAMS) == -1
    assert (
        direction([D(1), D(3), D(1)], Params(fast=1, slow=3, quantity=D(1), max_position=D(1)))
        == -1
    )
    assert direction([D(2), D(2), D(2)], PARAMS) == 0
    assert direction([D(1), D(2)], PARAMS) == 0  # too few closes
    # fast 1 against slow 3 of [1, 0, c]: equal at c = 0.5, above one digit past the context's
    third = Params(fast=1, slow=3, quantity=D(1), max_position=D(1))
    assert direction([D(1), D(0), D("0.5")], third) == 0
    assert direction([D(1), D(0), D("0.5000000000000000000000000000001")], third) == 1
    assert direction([D(1), D(0), D("0.4999999999999999999999999999999")], third) == -1


def test_a_cross_up_buys_and_a_cross_down_sells_what_was_bought() -> None:
    # complete candles: 3 2 1 (down), then 5 (up), then 0 (down)
    state, trades = feed(["3", "2", "1", "1", "5", "6", "0", "0", "0"])
    taken = [(t.side, t.quantity) for t in trades if t is not None]
    assert taken == [("buy", D("0.01")), ("sell", D("0.01"))]
    assert state.position == 0


def test_no_trade_before_the_averages_had_an_order_and_none_while_it_holds() -> None:
    # the first known order (up) is no cross: the bot does not know where it came from
    _, trades = feed(["1", "2", "3", "4", "5", "6"])
    assert trades == [None] * 6


def test_a_candle_counts_once_complete_and_its_revisions_change_nothing_after() -> None:
    state, _ = feed(["3", "2", "1"])  # 3, 2 complete; 1 in progress
    assert state.closes == (D(3), D(2))
    again, trade = on_candle(state, PARAMS, 2, D(100))  # the candle in progress moves
    assert (again.closes, again.close, trade) == ((D(3), D(2)), D(100), None)
    older, trade = on_candle(again, PARAMS, 1, D(-5))  # an older candle's revision
    assert (older, trade) == (again, None)
    _, trade = on_candle(again, PARAMS, 3, D(1))  # 100 completes: 2, 100 over 3, 2, 100
    assert trade is None  # the first order the averages had (up): no cross yet


def test_the_position_limit_and_no_short_sales() -> None:
    limit = Params(fast=2, slow=3, quantity=D("0.03"), max_position=D("0.05"))
    assert decide(1, D(0), limit) == Trade("buy", D("0.03"), "fast SMA crossed above slow")
    assert decide(1, D("0.04"), limit) == Trade("buy", D("0.01"), "fast SMA crossed above slow")
    assert decide(1, D("0.05"), limit) is None
    assert decide(-1, D("0.01"), limit) == Trade("sell", D("0.01"), "fast SMA crossed below slow")
    assert decide(-1, D(0), limit) is None
    # three crosses up in a row of the limit: 0.03, then 0.02, then nothing
    state = State(trend=-1)
    bought = []
    for _ in range(3):
        state, trade = on_candle(
            State(closes=(D(3), D(2)), open_time=5, close=D(9), trend=-1, position=state.position),
            limit, 6, D(9),
        )  # fmt: skip
        bought.append(trade.quantity if trade else None)
    assert bought == [D("0.03"), D("0.02"), None]
    assert state.position == D("0.05")


def test_a_refused_trade_is_not_counted_and_history_does_not_trade() -> None:
    state, trades = feed(["3", "2", "1", "1", "5", "6"])
    (trade,) = [t for t in trades if t is not None]
    assert state.position == D("0.01")
    assert refused(state, trade).position == 0
    warm = State()
    for open_time, close in enumerate(["3", "2", "1", "1", "5", "6"]):
        warm, made = on_candle(warm, PARAMS, open_time, D(close), live=False)
        assert made is None
    assert (warm.trend, warm.position) == (1, D(0))  # warmed up: the next cross trades


def test_the_options() -> None:
    options = parse(["--url", "http://127.0.0.1:9000/", "--interval", "1s", "--fast", "3",
                     "--slow", "8", "--quantity", "0.001"])  # fmt: skip
    assert (options.url, options.ws_url, options.trading_url) == (
        "http://127.0.0.1:9000", "ws://127.0.0.1:9000/ws", "http://127.0.0.1:9000"
    )  # fmt: skip
    assert options.params == Params(3, 8, D("0.001"), D("0.05"))
    assert (options.api_key_env, options.fills, options.instrument) == (
        "MDP_API_KEY", "auto", "SYNTH:BTCUSD"
    )  # fmt: skip
    for bad in (["--fast", "8", "--slow", "3"], ["--quantity", "1", "--max-position", "0.5"]):
        with pytest.raises(SystemExit):
            parse(bad)


async def test_without_a_key_the_bot_says_which_variable_and_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BOT_KEY", raising=False)
    out = io.StringIO()
    assert await run(parse(["--api-key-env", "BOT_KEY"]), out) == 2
    assert out.getvalue() == "ma_cross: set BOT_KEY to an API key that may trade\n"
