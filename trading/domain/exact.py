"""Exact decimal arithmetic: :mod:`core.exact`, where the gateway's positions share it."""

from __future__ import annotations

from core.exact import EXACT, exact

__all__ = ["EXACT", "exact"]
