"""The gateway reads ``auth.events`` from a real Kafka: a revocation published before it
started still refuses its token (it reads from the earliest record), and one published while
a connection is open closes it with 4403 within a second."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.exceptions import InvalidStatus

from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.support.tokens import key_token
from tests.ws_gateway.harness import TIMEOUT, client, close_frame, subscribe, until
from tests.ws_gateway.market import BTC
from tests.ws_gateway.revocations import revoke, tokens
from ws_gateway import Gateway, GatewaySettings

EARLIER = "k_00000000000000000001"
LATER = "k_00000000000000000002"


async def test_the_gateway_follows_revocations_on_kafka(fresh_topics: str) -> None:
    async with KafkaBus(KafkaSettings(fresh_topics), create_topics=False) as bus:
        await revoke(bus, "key-revoked", f"key:{EARLIER}", event_id=1)
        gateway = Gateway(bus, None, GatewaySettings(port=0, instruments=(BTC,)), tokens())
        async with gateway:
            await until(lambda: len(gateway.denylist) == 1, timeout=60)  # read from the start
            with pytest.raises(InvalidStatus) as refused:
                async with client(gateway, f"/ws?token={key_token(EARLIER)}"):
                    pass
            assert refused.value.response.status_code == 401
            async with client(gateway, f"/ws?token={key_token(LATER)}") as ws:
                await subscribe(ws, BTC)
                started = time.monotonic()
                await revoke(bus, "key-revoked", f"key:{LATER}", event_id=2)
                closed = await asyncio.wait_for(close_frame(ws), TIMEOUT)
                took = time.monotonic() - started
            assert (closed.code, closed.reason) == (4403, "revoked")
            assert took < 1.0, f"closed {took:.3f} s after the event was published"
