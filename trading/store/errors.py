"""The event store's errors, each with a code of ours (a library's wording never leaks out)."""

from __future__ import annotations


class StoreError(Exception):
    """An event store operation failed; ``code`` says which way."""

    code = "store-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConcurrencyConflict(StoreError):  # noqa: N818 (the name issue #15 gives it)
    """Another writer appended to the aggregate first: its version is not the expected one."""

    code = "concurrency-conflict"

    def __init__(self, aggregate_id: str, expected_version: int) -> None:
        super().__init__(
            f"aggregate {aggregate_id!r} is no longer at version {expected_version}; "
            "load it again and retry"
        )
        self.aggregate_id = aggregate_id
        self.expected_version = expected_version


class AlreadyTracked(StoreError):  # noqa: N818 (a refusal, like ConcurrencyConflict)
    """An append carried a reader's position that is not past the one stored: what it
    records was stored before (a replay after a crash), so it stores nothing."""

    code = "already-applied"

    def __init__(self, reader: str, position: int) -> None:
        super().__init__(f"{reader!r} is already at or past {position}")
        self.reader = reader
        self.position = position


class StoreUnavailableError(StoreError):
    """The database cannot be reached (the caller may retry later)."""

    code = "store-unavailable"


class UndecodableEventError(StoreError):
    """A stored record is not an event of the type its topic names."""

    code = "undecodable-event"


class InvalidAppendError(StoreError, ValueError):
    """An append the store refuses before asking the database (no events, a bad version)."""

    code = "invalid-append"
