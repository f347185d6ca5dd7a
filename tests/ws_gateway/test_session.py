"""The session's shell without a socket: it carries out its core's actions on a link and a
store (the rules themselves: ``test_session_core.py``; over real sockets: ``test_gateway.py``)."""

from __future__ import annotations

import json
import time
from typing import Any

from core.candles import Candle
from storage.memory_store import MemoryStore
from ws_gateway.auth import Principal
from ws_gateway.hub import Hub
from ws_gateway.protocol import ConnectionProtocol
from ws_gateway.session import Session
from ws_gateway.session_core import Directory
from ws_gateway.settings import GatewaySettings, Limits
from ws_gateway.wire import CloseCode

from .chart import as_json
from .market import BTC, ETH, final, updates


def framing(payload: bytes) -> bytes:
    return payload + b"\n"


class Link:
    """A link that takes every write and records the close."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.open = True
        self.closed: tuple[int, str] | None = None

    def offer(self, data: bytes, limit: int) -> bool:
        self.data += data
        return True

    async def writable(self) -> None:
        return None

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.open = False

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in bytes(self.data).splitlines()]


class FailingStore(MemoryStore):
    """A store whose reads all fail."""

    async def candles(self, *args: Any, **kwargs: Any) -> list[Candle]:
        raise OSError("database went away")

    async def last_candles(self, *args: Any, **kwargs: Any) -> list[Candle]:
        raise OSError("database went away")

    async def instruments(self) -> list[str]:
        raise OSError("database went away")


def session(store: MemoryStore | None, **settings: Any) -> tuple[Session, Link]:
    config = GatewaySettings(**settings)
    hub = Hub(config, "epoch-1", framing)
    link = Link()
    principal = Principal("anonymous", config.anonymous_permissions)
    protocol = ConnectionProtocol(config, principal, time.monotonic())
    directory = Directory(hub, storage=store is not None)
    made = Session(hub, link, protocol, directory, store)
    hub.attach(made)
    return made, link


def subscribe(instrument: str, label: str, **extra: Any) -> str:
    body = {"op": "subscribe", "id": 1, "channel": "candles", "instrument": instrument}
    return json.dumps({**body, "interval": label, **extra})


async def test_the_shell_performs_the_reads_the_core_asks_for_and_writes_its_answer() -> None:
    history = updates(ETH, "1m", duration=600.0, rate=2.0)
    store = MemoryStore()  # the only place ETH and its candles are known
    await store.write(candles=list(final(history).values()))
    made, link = session(store)
    await made.handle(subscribe(ETH, "1m", snapshot=4))
    joined, snap = link.messages()
    assert (joined["type"], snap["type"], snap["seq"]) == ("subscribed", "snapshot", 0)
    assert snap["candles"] == [as_json(c) for _, c in sorted(final(history).items())[-4:]]


async def test_a_failing_store_is_handed_to_the_core_and_nothing_raises() -> None:
    made, link = session(FailingStore())
    await made.handle(subscribe(ETH, "1m"))
    (error,) = link.messages()
    assert (error["type"], error["code"]) == ("error", "unknown_instrument")
    made.hub.instruments.add(BTC)
    await made.handle(subscribe(BTC, "1m"))
    _, joined, snap = link.messages()
    assert (joined["type"], snap["type"], snap["candles"]) == ("subscribed", "snapshot", [])


async def test_a_flooder_is_closed_by_the_shell_when_the_core_says_so() -> None:
    made, link = session(None, limits=Limits(rate=0.001, burst=1, max_rate_violations=2))
    for _ in range(3):
        await made.handle('{"op":"ping"}')
    assert [m.get("code") for m in link.messages()] == [None, "rate_limited", "rate_limited"]
    await made.finish()
    assert link.closed == (CloseCode.RATE_LIMITED, "too many requests")
    assert made.close_code == CloseCode.RATE_LIMITED
