"""How the platform's processes reach Kafka: one frozen settings object, made at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_BOOTSTRAP: Final = "127.0.0.1:9092"
DEFAULT_REQUEST_TIMEOUT: Final = 30.0
"""Seconds a request may wait for its broker; a producer gives up a batch held that long."""


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Client settings shared by the bus adapter, the admin client and the Faust worker.

    - ``bootstrap``: ``host:port[,host:port...]`` of the brokers (``$KAFKA_BOOTSTRAP``).
    - ``connect_timeout``: how long a process waits for an unreachable broker at start,
      retrying with backoff (``None``: for ever).
    - ``session_timeout``/``heartbeat_interval``: consumer group liveness; a member that
      misses heartbeats for ``session_timeout`` seconds loses its partitions.
    - ``max_poll_interval``: a member that neither polls nor idles
      (:meth:`streams.bus.Subscription.idle`) for this long leaves its group.
    """

    bootstrap: str = DEFAULT_BOOTSTRAP
    client_id: str = "mdp"
    connect_timeout: float | None = 60.0
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    session_timeout: float = 10.0
    heartbeat_interval: float = 0.5
    max_poll_interval: float = 300.0
    max_message_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        if not self.bootstrap.strip():
            raise ValueError("the Kafka bootstrap address is empty")
        if self.heartbeat_interval <= 0 or self.session_timeout <= self.heartbeat_interval:
            raise ValueError("the session timeout must exceed the heartbeat interval")
        if self.max_poll_interval <= 0:
            raise ValueError("the maximum poll interval must be positive")

    @property
    def servers(self) -> list[str]:
        return [part.strip() for part in self.bootstrap.split(",") if part.strip()]
