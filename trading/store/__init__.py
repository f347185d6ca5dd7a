"""Event sourcing for the trading service on the ``eventsourcing`` library's PostgreSQL
persistence: the event store, snapshots, the transactional outbox and the read-model projector
(docs/trading.md, "Event store, outbox and read models")."""
