"""The trading service's test desk (real PostgreSQL, the real service and paper venue, the
guarded server), shared with ``tests/trading/http/test_api.py``, for the SDK's trading client."""

from tests.trading.http.test_api import database, desk

__all__ = ["database", "desk"]
