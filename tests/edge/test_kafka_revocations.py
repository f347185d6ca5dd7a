"""``mdp edge --bus kafka``: a revocation published on Kafka's ``auth.events`` reaches the
running edge (the command's path; the one-second bound is shown in-process by
``test_revocations.py``)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from auth.signing import generate_key
from core.auth_events import AuthEvent, encode_event
from core.topics import AUTH_EVENTS
from streams.kafka.bus import KafkaBus
from streams.kafka.settings import KafkaSettings
from tests.streams.kafka.conftest import fresh_topics, kafka_bootstrap  # noqa: F401

from .conftest import TIMEOUT, Stack, claims, eventually, sign
from .test_command import edge_command


async def test_the_command_follows_auth_events_on_kafka(
    stack: Stack,
    tmp_path: Path,
    fresh_topics: str,  # noqa: F811
) -> None:
    key = generate_key(int(time.time()))
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / f"{key.kid}.pem").write_text(key.public_pem)
    token = sign(key, claims(sub="key:k_kafka", acct=7, sid=""))
    options = ("--keys", str(keys), "--bus", "kafka")
    environment = {"KAFKA_BOOTSTRAP": fresh_topics}
    async with (
        edge_command(stack, tmp_path, *options, env=environment) as (_, url),
        httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as edge,
    ):
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await edge.get("/v1/instruments", headers=bearer)).status_code == 200
        now = int(time.time())
        event = AuthEvent(
            id=1, kind="key-revoked", subject="key:k_kafka", account_id=7, plan=None,
            reason="", at=now, until=now + 300,
        )  # fmt: skip
        async with KafkaBus(KafkaSettings(fresh_topics)) as bus:
            await bus.topic(AUTH_EVENTS).publish(event.key(), encode_event(event))

        async def refused() -> bool:
            return (await edge.get("/v1/instruments", headers=bearer)).status_code == 401

        await eventually(refused, timeout=60)  # the command's consumer joins its group first
