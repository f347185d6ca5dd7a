"""Topic administration: the platform's topics with their partitions and settings, made up front.

:func:`platform_topics` lists every topic (``core.topics`` names, plus the worker's internal
step journal) with its partition count and settings; :class:`KafkaAdmin` (kafka-python's admin
client, synchronous: call it from a thread in async code) creates the missing ones, reads
partition counts and the cluster id. ``docs/topics.md`` describes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Final, Self

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from core import topics
from streams.kafka.settings import KafkaSettings

_log = logging.getLogger(__name__)

STEPS: Final = "mdp.engine.steps"
"""The candle workers' step journal (see :mod:`streams.kafka.journal`); one partition per
partition of ``md.ticks``."""

_WEEK_MS: Final = str(7 * 24 * 3600 * 1000)
_TOPIC_EXISTS: Final = 36
_UNKNOWN_TOPIC: Final = 3


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as the platform wants it: name, partitions and topic-level settings."""

    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def platform_topics(partitions: int = 8) -> list[TopicSpec]:
    """Every topic of cluster mode; ``partitions`` bounds how many workers share the load.

    ``md.ticks`` and the step journal must keep the same partition count (partition *p* of
    the journal records the steps of partition *p* of ``md.ticks``).
    """
    if partitions < 1:
        raise ValueError(f"a topic needs at least one partition, got {partitions}")
    week = MappingProxyType({"retention.ms": _WEEK_MS, "cleanup.policy": "delete"})
    return [
        TopicSpec(topics.TICKS, partitions, week),
        TopicSpec(topics.CANDLES, partitions, week),
        TopicSpec(topics.TICKS_REJECTED, max(1, min(partitions, 4)), week),
        TopicSpec(topics.TRADING_COMMANDS, partitions, week),
        TopicSpec(topics.TRADING_EVENTS, partitions, week),
        TopicSpec(topics.AUTH_EVENTS, 1, week),
        TopicSpec(topics.ALERTS_EVENTS, partitions, week),
        TopicSpec(STEPS, partitions, week),
    ]


class TopicMismatchError(RuntimeError):
    """A topic exists with other partitions than the platform needs."""


class KafkaAdmin:
    """A synchronous admin connection (kafka-python); close it, or use it as ``with``."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._client = KafkaAdminClient(
            bootstrap_servers=settings.servers,
            client_id=f"{settings.client_id}-admin",
            request_timeout_ms=round(settings.request_timeout * 1000),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def cluster_id(self) -> str:
        cluster: dict[str, Any] = self._client.describe_cluster()
        return str(cluster["cluster_id"])

    def partitions(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Partition counts of the existing topics among ``names`` (all topics: ``None``)."""
        wanted = None if names is None else list(names)
        found: list[dict[str, Any]] = self._client.describe_topics(wanted)
        return {
            str(topic["name"]): len(topic["partitions"])
            for topic in found
            if topic["error_code"] == 0 and not topic.get("is_internal", False)
        }

    def group_protocol(self, group: str) -> str | None:
        """The partition assignment protocol the members of consumer group ``group`` run (Faust's
        assignor is ``faust``); ``None`` while it has no member, or where the broker cannot say
        yet (a group coordinator not elected: nobody has joined a group on this cluster)."""
        try:
            found: dict[str, dict[str, Any]] = self._client.describe_groups([group])
        except KafkaError as exc:  # no coordinator yet; or the broker could not say: told
            _log.info("the members of group %s could not be described: %s", group, exc)
            return None
        described = found.get(group) or {}
        if not described.get("members"):
            return None
        return str(described.get("protocol_data") or "") or None

    def leaderless(self, names: list[str]) -> list[str]:
        """The topics among ``names`` with a partition that has no leader (yet)."""
        found: list[dict[str, Any]] = self._client.describe_topics(names)
        return [
            str(topic["name"])
            for topic in found
            if topic["error_code"] != 0
            or any(
                part.get("leader_id", part.get("leader", -1)) < 0 for part in topic["partitions"]
            )
        ]

    def delete(self, names: list[str]) -> None:
        """Delete topics and wait until they are gone (tests; operators use Kafka's tools)."""
        self._client.delete_topics(names, raise_errors=False)
        for _ in range(300):
            if not self.partitions(names):
                return
            time.sleep(0.1)
        raise RuntimeError(f"topics {names} are still there after deletion")

    def ensure(self, specs: Iterable[TopicSpec], *, strict: bool = False) -> list[str]:
        """Create the topics that do not exist; return the names created.

        An existing topic is left as it is; with ``strict``, one whose partition count
        differs from its spec raises :class:`TopicMismatchError`.
        """
        specs = list(specs)
        existing = self.partitions([spec.name for spec in specs])
        missing = [spec for spec in specs if spec.name not in existing]
        created: list[str] = []
        if missing:
            request = {
                spec.name: {
                    "num_partitions": spec.partitions,
                    "replication_factor": -1,
                    "configs": dict(spec.config),
                }
                for spec in missing
            }
            result = self._client.create_topics(request, raise_errors=False, wait_for_metadata=True)
            for topic in result["topics"]:
                code = topic["error_code"]
                if code == 0:
                    created.append(str(topic["name"]))
                elif code != _TOPIC_EXISTS:
                    raise RuntimeError(
                        f"creating topic {topic['name']} failed: {topic['error_message']}"
                    )
        if strict:
            existing = self.partitions([spec.name for spec in specs])
            for spec in specs:
                if existing.get(spec.name, spec.partitions) != spec.partitions:
                    raise TopicMismatchError(
                        f"topic {spec.name} has {existing[spec.name]} partitions, the platform"
                        f" needs {spec.partitions}"
                    )
        return created
