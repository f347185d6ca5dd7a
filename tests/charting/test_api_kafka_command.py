"""``mdp api --bus kafka`` as a process (real PostgreSQL, a real Kafka broker): a key revoked
on Kafka's ``auth.events`` is refused (401 ``revoked``) while its token is still valid, and
another key goes on."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import httpx

from core.auth_events import AuthEvent, encode_event
from core.topics import AUTH_EVENTS
from machine import free_port, stop_process
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.streams.kafka.conftest import fresh_topics, kafka_bootstrap  # noqa: F401
from tests.support import tokens
from tests.trading.http.test_command import key_server, started

__all__ = ["key_server"]  # the fixture this module uses
REFUSED_WITHIN_S = 30.0
"""The command's consumer joins its group first."""


async def test_a_key_revoked_on_kafka_is_refused_by_the_history_api_process(
    migrated_database: str,
    key_server: str,
    fresh_topics: str,  # noqa: F811
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mdp.commands.api", "--database-url", migrated_database,
        "--port", str(port), "--jwks-url", key_server, "--bus", "kafka",
    ]  # fmt: skip
    environment = os.environ | {"KAFKA_BOOTSTRAP": fresh_topics}
    process = await asyncio.to_thread(started, command, base, environment)
    now = int(time.time())
    revoked, other = (tokens.key_token(key, now=now) for key in ("k_revoked", "k_other"))
    try:
        async with (
            httpx.AsyncClient(base_url=base, timeout=10) as client,
            KafkaBus(KafkaSettings(fresh_topics)) as bus,
        ):

            async def status(token: str) -> httpx.Response:
                return await client.get(
                    "/v1/instruments", headers={"Authorization": f"Bearer {token}"}
                )

            assert (await status(revoked)).status_code == 200
            event = AuthEvent(id=1, kind="key-revoked", subject="key:k_revoked", account_id=1,
                              plan=None, reason="revoked by its owner", at=now,
                              until=now + 3600)  # fmt: skip
            await bus.topic(AUTH_EVENTS).publish(event.key(), encode_event(event))
            deadline = time.monotonic() + REFUSED_WITHIN_S
            while (answer := await status(revoked)).status_code == 200:
                assert time.monotonic() < deadline, "the revoked key is still served"
                await asyncio.sleep(0.2)
            assert answer.status_code == 401, answer.text
            assert answer.json()["reason"] == "revoked"
            assert (await status(other)).status_code == 200
        assert await asyncio.to_thread(stop_process, process) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
