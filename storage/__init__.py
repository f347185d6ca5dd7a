"""Storage: PostgreSQL or TimescaleDB; migrations, the repositories, the bulk writer, and the
private server the embedded platform starts when no ``DATABASE_URL`` is set.

- :mod:`storage.pg_server`: :class:`PostgresServer`, a private server in a data folder.
- :mod:`storage.migrate`: :func:`migrate`, the versioned schema (plain or TimescaleDB mode).
- :mod:`storage.repository`: :class:`MarketDataStore`, the contract of every store;
  :class:`PostgresStore` and :class:`MemoryStore` keep it.
- :mod:`storage.reads`: :class:`HistoryReads`, the history API's reads;
  :class:`PostgresReads` and :class:`MemoryReads` (over a :class:`MemoryStore`) keep it.

See ``docs/storage.md``.
"""

from storage.memory_reads import MemoryReads
from storage.memory_store import MemoryStore
from storage.migrate import MigrationReport, latest_version, migrate, migrate_async, schema_state
from storage.modes import StorageMode
from storage.pg_binaries import PostgresUnavailableError, find_binaries
from storage.pg_reads import PostgresReads
from storage.pg_server import PostgresServer, PostgresServerError, default_data_dir
from storage.postgres_store import PostgresStore, SchemaNotReadyError
from storage.reads import HistoryReads
from storage.records import Rejection, TopicPartition, WriteReport
from storage.repository import MarketDataStore

__all__ = [
    "HistoryReads",
    "MarketDataStore",
    "MemoryReads",
    "MemoryStore",
    "MigrationReport",
    "PostgresReads",
    "PostgresServer",
    "PostgresServerError",
    "PostgresStore",
    "PostgresUnavailableError",
    "Rejection",
    "SchemaNotReadyError",
    "StorageMode",
    "TopicPartition",
    "WriteReport",
    "default_data_dir",
    "find_binaries",
    "latest_version",
    "migrate",
    "migrate_async",
    "schema_state",
]
