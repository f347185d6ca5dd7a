"""The SDK's private streams against the platform (``mdp up``'s ``Platform`` in the test's
loop: the auth service, the edge, the gateway with its private channels, the trading service):
a bot's API key, ``TradingClient`` places market orders, and ``MarketStream`` delivers their
order events, fills and positions; the socket is cut while an order fills and the stream
resumes with nothing missed and nothing twice. The fills streamed equal the fills over HTTP,
and the last position streamed equals the position over HTTP and the sum of the fills."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import httpx

from core.trading_events import OrderAccepted, OrderFilled
from sdk import (
    Credentials,
    Fill,
    FillUpdate,
    MarketStream,
    Message,
    OrderUpdate,
    PositionUpdate,
    PrivateSnapshot,
    SdkError,
    TradingClient,
)
from sdk.protocol import Backoff
from tests.mdp.running import printed, running_platform
from tests.mdp.test_up_front import PASSWORD, set_plan, settings_of

D = Decimal
XBT = "SYNTH:BTCUSD"
AUTH = re.compile(r"auth: (http://\S+)/auth")
WAIT_S = 60.0


async def api_key(auth: str, database: str) -> str:
    """An account on the pro plan and its API key of the read and trade scopes."""
    email = "stream-bot@example.org"
    async with httpx.AsyncClient(base_url=auth, timeout=10) as client:
        credentials = {"email": email, "password": PASSWORD}
        assert (await client.post("/auth/v1/accounts", json=credentials)).status_code == 201
        await asyncio.to_thread(set_plan, database, email, "pro")
        token = (await client.post("/auth/v1/login", json=credentials)).json()["access_token"]
        made = await client.post(
            "/auth/v1/keys",
            json={"name": "stream-bot", "scopes": ["read", "trade"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201, made.text
        return str(made.json()["api_key"])


async def first_order(trading: TradingClient) -> None:
    """A market buy, once the paper venue has seen a trade of the feed (``no-price`` before)."""
    while True:
        try:
            await trading.place(XBT, "buy", "0.001")
            return
        except SdkError as error:
            if error.code != "no-price":
                raise
            await asyncio.sleep(0.3)


async def test_fills_orders_and_positions_stream_and_resume(migrated_database: str) -> None:
    async with running_platform(settings_of(migrated_database)) as platform:
        auth = AUTH.findall(printed(platform))[-1]
        assert platform.trading_url is not None
        assert platform.gateway_url is not None
        base = platform.trading_url.removesuffix("/trading/v1")
        key = await api_key(auth, migrated_database)
        seen: list[Message] = []
        async with (
            Credentials(auth, key) as credentials,
            TradingClient(base, credentials) as trading,
            MarketStream(
                platform.gateway_url, credentials, backoff=Backoff(base=0.05, cap=0.1)
            ) as stream,
        ):
            await stream.subscribe_orders(snapshot=10)
            await stream.subscribe_fills(snapshot=10)
            await stream.subscribe_positions()

            async def read() -> None:
                async for message in stream:
                    seen.append(message)

            def fills() -> list[Fill]:
                return [m.fill for m in seen if isinstance(m, FillUpdate)]

            async def until_filled(quantity: Decimal) -> None:
                while sum((f.signed_quantity for f in fills()), D(0)) != quantity:
                    await asyncio.sleep(0.05)

            reading = asyncio.create_task(read())
            async with asyncio.timeout(WAIT_S):
                await trading.deposit("USD", "100000")
                await first_order(trading)
                await trading.place(XBT, "buy", "0.002")
                await until_filled(D("0.003"))
                assert stream._ws is not None
                stream._ws.transport.abort()  # cut: no close frame, as a reset
                await trading.place(XBT, "sell", "0.001")  # fills while the stream is away
                await until_filled(D("0.002"))  # the sell, streamed after the resume
                while stream.connections < 2:
                    await asyncio.sleep(0.05)
                await trading.place(XBT, "buy", "0.004")
                await until_filled(D("0.006"))
                await asyncio.sleep(0.5)  # anything streamed twice would have come by now
            reading.cancel()
            over_http = await trading.fills(limit=1000)
            positions = {p.instrument: p for p in await trading.positions()}
        assert stream.connections >= 2
        assert stream.core.resumes >= 3  # each private channel resumed on the new connection
        snapshots = [m for m in seen if isinstance(m, PrivateSnapshot)]
        assert {s.channel for s in snapshots} >= {"orders", "fills", "positions"}
        streamed = fills()
        assert [f.fill_id for f in streamed] == [f.fill_id for f in over_http]  # once, in order
        assert [(f.quantity, f.price) for f in streamed] == [
            (f.quantity, f.price) for f in over_http
        ]
        total = sum((f.signed_quantity for f in over_http), D(0))
        assert total == D("0.006")
        last = [m.position for m in seen if isinstance(m, PositionUpdate)][-1]
        assert last.instrument == XBT
        assert last.quantity == positions[XBT].quantity == total
        events = [m.event for m in seen if isinstance(m, OrderUpdate)]
        accepted = {e.order_id for e in events if isinstance(e, OrderAccepted)}
        assert len(accepted) == 4
        assert {e.fill_id for e in events if isinstance(e, OrderFilled)} == {
            f.fill_id for f in over_http
        }
