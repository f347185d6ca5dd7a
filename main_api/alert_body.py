"""An alert's request body into a :class:`core.alerts.AlertSpec` (sans-I/O), every refusal
naming the field.

Rules beyond each field's own: ``source: candles`` needs ``interval`` (and ticks refuse one);
``move-up``/``move-down`` need ``window_s`` above 0 and a ``threshold`` that is a percentage
up to 1000 (the others refuse a window); ``cooldown_s`` belongs to ``arming: rearm``;
``expires_at`` is in the future, within a year and a day.
"""

from __future__ import annotations

from typing import Final

from core.alerts import AlertSpec, Arming, Condition, Source
from main_api.requests import (
    MAX_COOLDOWN_S,
    MAX_EXPIRY_NS,
    MAX_PERCENT,
    MAX_WINDOW_S,
    InvalidFieldError,
    choice,
    decimal,
    fields,
    instrument,
    interval,
    whole,
)

ALERT_FIELDS: Final = (
    "instrument", "condition", "threshold", "source", "interval", "window_s", "arming",
    "cooldown_s", "expires_at",
)  # fmt: skip
_MOVES: Final = frozenset({Condition.MOVE_UP, Condition.MOVE_DOWN})


def alert_request(
    body: bytes, *, alert_id: str, account: int, now_ns: int, intervals: tuple[str, ...]
) -> AlertSpec:
    """The alert ``body`` asks for, as ``alert_id`` of ``account``."""
    given = fields(body, ALERT_FIELDS)
    for required in ("instrument", "condition", "threshold"):
        if required not in given:
            raise InvalidFieldError(required, "required", f"an alert needs {required}")
    condition = choice(given["condition"], Condition, "condition")
    threshold = decimal(given["threshold"], "threshold")
    source = choice(given.get("source", "ticks"), Source, "source")
    label = None
    if source is Source.CANDLES:
        if "interval" not in given:
            raise InvalidFieldError("interval", "required", "an alert on candles needs interval")
        label = interval(given["interval"], intervals)
    elif "interval" in given:
        raise InvalidFieldError("interval", "forbidden", "only an alert on candles has an interval")
    window = whole(given.get("window_s", 0), "window_s", 0, MAX_WINDOW_S)
    if condition in _MOVES:
        if window == 0:
            raise InvalidFieldError("window_s", "required", "a move alert needs window_s above 0")
        if threshold > MAX_PERCENT:
            raise InvalidFieldError(
                "threshold", "out-of-range", f"a move is a percentage up to {MAX_PERCENT}"
            )
    elif window:
        raise InvalidFieldError("window_s", "forbidden", "only a move alert has a window")
    arming = choice(given.get("arming", "once"), Arming, "arming")
    cooldown = whole(given.get("cooldown_s", 0), "cooldown_s", 0, MAX_COOLDOWN_S)
    if cooldown and arming is not Arming.REARM:
        raise InvalidFieldError("cooldown_s", "forbidden", "only a re-arming alert has a cool-down")
    expires = given.get("expires_at")
    if expires is not None:
        expires = whole(expires, "expires_at", 0, 2**63 - 1)
        if expires <= now_ns:
            raise InvalidFieldError(
                "expires_at", "in-the-past", "must be in the future (UTC nanoseconds)"
            )
        if expires > now_ns + MAX_EXPIRY_NS:
            raise InvalidFieldError("expires_at", "out-of-range", "must be within a year and a day")
    return AlertSpec(
        alert_id=alert_id,
        account=account,
        instrument=instrument(given["instrument"]),
        condition=condition,
        threshold=threshold,
        source=source,
        interval=label,
        window_s=window,
        arming=arming,
        cooldown_s=cooldown,
        expires_at=expires,
    )
