"""A moving-average-cross bot on paper money against ``mdp up`` (``docs/trading.md``, "An
example bot").

It deposits its paper cash, follows one instrument's candles with the SDK's ``MarketStream``,
and when the fast simple moving average of the closes crosses the slow one it places a market
order: a buy on a cross up, a sell on a cross down, never holding more than
``--max-position`` and never selling what it does not hold (the paper venue is spot). It prints
its orders, and its fills as they arrive: from the gateway's ``fills`` channel when the gateway
has one, else by polling ``GET /trading/v1/fills`` (it says which).

    export MDP_API_KEY=k_...   # a key with the trade scope, of an account on a plan that trades
    python examples/ma_cross.py --instrument SYNTH:BTCUSD --interval 1s --fast 3 --slow 8

The strategy (:func:`on_candle`) is a pure function of frozen values: no I/O, exact decimals
(the averages are compared by cross-multiplying their sums, never divided), tested on its own
(``tests/examples/test_ma_cross.py``); :func:`run` is the asyncio shell around it. Ctrl-C
stops it cleanly. The API key is read from an environment variable and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Context, Decimal, Inexact, InvalidOperation, localcontext
from typing import Literal, TextIO

from sdk import (
    CandleUpdate,
    Credentials,
    Fill,
    FillUpdate,
    MarketStream,
    SdkError,
    Snapshot,
    TradingClient,
)

ZERO = Decimal(0)
MAX_WINDOW = 1000
EXACT = Context(prec=400, traps=[Inexact, InvalidOperation])
"""Sums and products of prices held exactly (an inexact one raises rather than rounds)."""


# -- the strategy: pure ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Params:
    """``fast`` and ``slow``: the averages' lengths in candles; ``quantity``: one order's
    size; ``max_position``: the most the bot holds."""

    fast: int = 5
    slow: int = 20
    quantity: Decimal = Decimal("0.01")
    max_position: Decimal = Decimal("0.05")

    def __post_init__(self) -> None:
        if not 1 <= self.fast < self.slow <= MAX_WINDOW:
            raise ValueError(f"need 1 <= fast < slow <= {MAX_WINDOW}")
        if not ZERO < self.quantity <= self.max_position:
            raise ValueError("need 0 < quantity <= max_position")


@dataclass(frozen=True, slots=True)
class State:
    """What the bot knows: the closes of the last complete candles (oldest first, at most
    ``slow``), the candle in progress, the averages' last order (``trend``: 1 fast above slow,
    -1 below, 0 not known yet) and its ``position``, counting what it has ordered."""

    closes: tuple[Decimal, ...] = ()
    open_time: int | None = None
    close: Decimal | None = None
    trend: int = 0
    position: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Trade:
    """A market order to place."""

    side: Literal["buy", "sell"]
    quantity: Decimal
    reason: str

    @property
    def signed(self) -> Decimal:
        return self.quantity if self.side == "buy" else -self.quantity


def direction(closes: Sequence[Decimal], params: Params) -> int:
    """1 when the fast average of the last closes is above the slow one, -1 below, 0 equal or
    too few closes. Exact: ``sum(fast)/fast`` against ``sum(slow)/slow`` is compared as
    ``sum(fast) * slow`` against ``sum(slow) * fast``."""
    if len(closes) < params.slow:
        return 0
    with localcontext(EXACT):
        fast = sum(closes[-params.fast :], ZERO) * params.slow
        slow = sum(closes[-params.slow :], ZERO) * params.fast
    return (fast > slow) - (fast < slow)


def decide(towards: int, position: Decimal, params: Params) -> Trade | None:
    """The order a cross ``towards`` (1 up, -1 down) asks for, within the position limit."""
    if towards > 0:
        with localcontext(EXACT):
            room = min(params.quantity, params.max_position - position)
        return Trade("buy", room, "fast SMA crossed above slow") if room > 0 else None
    held = min(params.quantity, position)
    return Trade("sell", held, "fast SMA crossed below slow") if held > 0 else None


def on_candle(
    state: State, params: Params, open_time: int, close: Decimal, *, live: bool = True
) -> tuple[State, Trade | None]:
    """The state after a version of the candle opened at ``open_time`` with ``close``, and the
    trade it asks for. A candle counts once a newer one opens (a candle comes again each time
    it changes); an older candle's revision changes nothing. A cross between two complete
    candles trades when ``live`` (a snapshot's history only warms the averages up)."""
    if state.open_time is not None and open_time < state.open_time:
        return state, None
    if state.open_time is None or state.close is None or open_time == state.open_time:
        return replace(state, open_time=open_time, close=close), None
    closes = (*state.closes, state.close)[-params.slow :]
    now = direction(closes, params)
    trade = None
    if now and now != state.trend:
        if state.trend and live:
            trade = decide(now, state.position, params)
        trend = now
    else:
        trend = state.trend
    with localcontext(EXACT):
        position = state.position + (trade.signed if trade else ZERO)
    return State(closes, open_time, close, trend, position), trade


def refused(state: State, trade: Trade) -> State:
    """The state after ``trade`` was refused (nothing was ordered)."""
    with localcontext(EXACT):
        return replace(state, position=state.position - trade.signed)


# -- the shell: I/O -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    url: str
    ws_url: str
    trading_url: str
    instrument: str
    interval: str
    params: Params
    currency: str
    deposit: Decimal
    api_key_env: str
    fills: Literal["auto", "ws", "poll"]
    duration: float
    poll: float


def parse(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="ma_cross", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", default="http://127.0.0.1:8000",
        help="the edge (auth and trading behind it; default http://127.0.0.1:8000)",
    )  # fmt: skip
    parser.add_argument("--ws-url", help="the gateway (default: the edge's /ws)")
    parser.add_argument("--trading-url", help="the trading API's base (default: the edge)")
    parser.add_argument("--instrument", default="SYNTH:BTCUSD")
    parser.add_argument("--interval", default="1m", help="candle interval (1m; 1s for a demo)")
    parser.add_argument("--fast", type=int, default=5, help="fast SMA length, candles (5)")
    parser.add_argument("--slow", type=int, default=20, help="slow SMA length, candles (20)")
    parser.add_argument("--quantity", type=Decimal, default=Decimal("0.01"))
    parser.add_argument("--max-position", type=Decimal, default=Decimal("0.05"))
    parser.add_argument("--currency", default="USD", help="the paper cash's currency (USD)")
    parser.add_argument(
        "--deposit", type=Decimal, default=Decimal(100_000),
        help="paper cash deposited at start (100000; 0: none)",
    )  # fmt: skip
    parser.add_argument(
        "--api-key-env", default="MDP_API_KEY",
        help="the environment variable holding the API key (MDP_API_KEY)",
    )  # fmt: skip
    parser.add_argument(
        "--fills", choices=("auto", "ws", "poll"), default="auto",
        help="fills from the gateway's fills channel, by polling the API, or the channel when"
        " the gateway has one (auto)",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: never)"
    )
    parser.add_argument("--poll", type=float, default=1.0, help="fills poll period, s (1)")
    args = parser.parse_args(argv)
    try:
        params = Params(args.fast, args.slow, args.quantity, args.max_position)
    except ValueError as exc:
        parser.error(str(exc))
    url = args.url.rstrip("/")
    ws_url = args.ws_url or ("ws" + url.removeprefix("http") + "/ws")
    return Options(
        url, ws_url, (args.trading_url or url).rstrip("/"), args.instrument.upper(),
        args.interval, params, args.currency, args.deposit, args.api_key_env, args.fills,
        args.duration, args.poll,
    )  # fmt: skip


class Bot:
    """The shell: the stream, the trading client, the state, and what it prints."""

    def __init__(self, options: Options, key: str, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.credentials = Credentials(options.url, key)
        self.stream = MarketStream(options.ws_url, self.credentials)
        self.trading = TradingClient(options.trading_url, self.credentials)
        self.state = State()
        self.seen_fills: set[str] = set()
        self.orders = 0

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def start(self) -> None:
        options = self.options
        if options.deposit > 0:
            try:
                balances = await self.trading.deposit(options.currency, options.deposit)
            except SdkError as exc:
                if exc.code != "deposits-off":
                    raise
                balances = await self.trading.balances()
                self.say("the service takes no paper deposits: trading with the cash held")
            else:
                self.say(f"deposited {options.deposit} {options.currency}")
            cash = ", ".join(f"{b.cash:f} {b.currency}" for b in balances)
            self.say(f"cash {cash}")
        held = {p.instrument: p.quantity for p in await self.trading.positions()}
        self.state = State(position=held.get(options.instrument, ZERO))
        self.say(f"position {options.instrument} {self.state.position}")

    async def subscribe(self) -> bool:
        """Candles, and the fills channel where wanted and offered: whether fills stream."""
        window = self.options.params.slow + 1
        await self.stream.subscribe_candles(
            self.options.instrument, self.options.interval, snapshot=window
        )
        self.say(f"candles {self.options.instrument} {self.options.interval}")
        if self.options.fills == "poll":
            self.say("fills: polling GET /trading/v1/fills (--fills poll)")
            return False
        try:
            async with asyncio.timeout(10):
                await self.stream.subscribe_fills(snapshot=0)
        except (SdkError, TimeoutError) as exc:
            if self.options.fills == "ws":
                raise
            self.say(
                f"fills: the gateway has no fills channel ({exc}): polling GET /trading/v1/fills"
            )
            return False
        self.say("fills: streaming from the gateway's fills channel")
        return True

    def fill(self, fill: Fill) -> None:
        if fill.fill_id in self.seen_fills:
            return
        self.seen_fills.add(fill.fill_id)
        self.say(
            f"fill {fill.fill_id} {fill.side} {fill.quantity} {fill.instrument} @ {fill.price}"
            f" fee {fill.fee:f} {fill.fee_currency}"
        )

    async def poll_fills(self) -> None:
        """Print new fills every ``poll`` seconds (those before the start are not printed)."""
        after = 0
        while True:
            page = await self.trading.fills(after=after, limit=1000)
            if not page:
                break
            after = page[-1].seq or after
        while True:
            await asyncio.sleep(self.options.poll)
            try:
                page = await self.trading.fills(after=after, limit=1000)
            except SdkError as exc:
                self.say(f"fills: {exc}")
                continue
            for fill in page:
                self.fill(fill)
                after = fill.seq or after

    async def trade(self, trade: Trade) -> None:
        try:
            order = await self.trading.place(self.options.instrument, trade.side, trade.quantity)
        except SdkError as exc:
            self.state = refused(self.state, trade)
            self.say(f"order refused: {exc}")
            return
        self.orders += 1
        self.say(
            f"order {order.order_id} {trade.side} {trade.quantity} {order.status} ({trade.reason})"
        )

    async def follow(self) -> None:
        """Feed the strategy each candle; place what it asks; print the fills that stream."""
        params = self.options.params
        async for message in self.stream:
            if isinstance(message, Snapshot) and message.channel == "candles":
                if message.reset:  # drop the candles held, keep what the bot holds
                    self.state = State(position=self.state.position)
                for candle in message.candles:
                    self.state, _ = on_candle(
                        self.state, params, candle.open_time, candle.close, live=False
                    )
            elif isinstance(message, CandleUpdate):
                candle = message.candle
                self.state, trade = on_candle(self.state, params, candle.open_time, candle.close)
                if trade is not None:
                    await self.trade(trade)
            elif isinstance(message, FillUpdate):
                self.fill(message.fill)

    async def run(self) -> None:
        """Deposit, subscribe, then follow the candles (and poll the fills where they do not
        stream) until cancelled."""
        await self.stream.__aenter__()  # closed by aclose()
        await self.start()
        streaming = await self.subscribe()
        if streaming:
            await self.follow()
            return
        tasks = [asyncio.create_task(self.follow()), asyncio.create_task(self.poll_fills())]
        try:
            done, _ = await asyncio.wait(tasks, return_when="FIRST_COMPLETED")
            for task in done:
                task.result()  # its error, if it ended with one
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        await self.stream.close()
        await self.trading.aclose()
        await self.credentials.aclose()


async def run(options: Options, out: TextIO = sys.stdout) -> int:
    """Run the bot until Ctrl-C, SIGTERM or ``--duration`` (whichever comes first, also while
    it is still connecting)."""
    key = os.environ.get(options.api_key_env, "")
    if not key:
        print(f"ma_cross: set {options.api_key_env} to an API key that may trade", file=out)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bot = Bot(options, key, out)
    work = asyncio.create_task(bot.run(), name="ma-cross")
    stopping = asyncio.create_task(stop.wait())
    try:
        timeout = options.duration or None
        await asyncio.wait({work, stopping}, timeout=timeout, return_when="FIRST_COMPLETED")
        if work.done():
            work.result()  # the bot ended by itself: its error
    except SdkError as exc:
        bot.say(f"ma_cross: error: {exc}")
        return 1
    finally:
        for task in (work, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, SdkError):
                await task
        await bot.aclose()
    bot.say(f"stopped: {bot.orders} order(s), position {options.instrument} {bot.state.position}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
