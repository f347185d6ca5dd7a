"""The session's Kafka broker, as the streams tests start it."""

from tests.streams.kafka.conftest import kafka_bootstrap

__all__ = ["kafka_bootstrap"]
