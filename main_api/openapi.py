"""The main API's OpenAPI 3.1 document (:mod:`web.openapi` makes it): its bodies and answers."""

from __future__ import annotations

from typing import Any, ClassVar, Final

import msgspec

from core.alerts import Arming, Condition, Source
from core.secrets import MaskedFields
from main_api.views import AlertView, Firing, Notification, Profile, Watchlist
from main_api.webhooks.event import WebhookEvent
from main_api.webhooks.views import Delivery, Webhook
from web.openapi import document as openapi_document
from web.openapi import operation, param


class ProfileBody(msgspec.Struct, kw_only=True):
    """What changes (the fields not given keep theirs)."""

    display_name: str | None = None
    time_zone: str | None = None
    default_interval: str | None = None


class WatchlistBody(msgspec.Struct, kw_only=True):
    """A new watchlist (``name`` required), or what changes in one."""

    name: str | None = None
    instruments: list[str] | None = None


class OrderBody(msgspec.Struct, kw_only=True):
    """Every watchlist's id, in the new order."""

    order: list[str]


class AlertBody(msgspec.Struct, kw_only=True):
    """An alert (threshold as a decimal string; a percentage for the move conditions)."""

    instrument: str
    condition: Condition
    threshold: str
    source: Source = Source.TICKS
    interval: str | None = None
    window_s: int = 0
    arming: Arming = Arming.ONCE
    cooldown_s: int = 0
    expires_at: int | None = None


class ProfileAnswer(msgspec.Struct):
    profile: Profile


class WatchlistAnswer(msgspec.Struct):
    watchlist: Watchlist


class Watchlists(msgspec.Struct):
    watchlists: list[Watchlist]


class AlertAnswer(msgspec.Struct):
    alert: AlertView


class AlertsPage(msgspec.Struct):
    alerts: list[AlertView]
    next_after: int | None


class FiredPage(msgspec.Struct):
    fired: list[Firing]
    next_after: int | None


class NotificationsPage(msgspec.Struct):
    notifications: list[Notification]
    unread: int
    next_before: int | None


class NotificationAnswer(msgspec.Struct):
    notification: Notification


class Marked(msgspec.Struct):
    marked: int


class WebhookBody(msgspec.Struct, kw_only=True):
    """A new endpoint: an http or https URL (a public host unless the service allows
    others)."""

    url: str


class NewSecret(MaskedFields, msgspec.Struct):
    """An endpoint and its signing secret: shown this once."""

    masked: ClassVar[frozenset[str]] = frozenset({"secret"})

    webhook: Webhook
    secret: str


class Webhooks(msgspec.Struct):
    webhooks: list[Webhook]


class DeliveriesPage(msgspec.Struct):
    deliveries: list[Delivery]
    next_after: int | None


class DeadLettersPage(msgspec.Struct):
    dead_letters: list[Delivery]
    next_after: int | None


class DeliveryAnswer(msgspec.Struct):
    delivery: Delivery


class Replayed(msgspec.Struct):
    replayed: int


_TYPES: Final[tuple[type[Any], ...]] = (
    ProfileBody,
    WatchlistBody,
    OrderBody,
    AlertBody,
    ProfileAnswer,
    WatchlistAnswer,
    Watchlists,
    AlertAnswer,
    AlertsPage,
    FiredPage,
    NotificationsPage,
    NotificationAnswer,
    Marked,
    WebhookBody,
    NewSecret,
    Webhooks,
    DeliveriesPage,
    DeadLettersPage,
    DeliveryAnswer,
    Replayed,
    WebhookEvent,
)


def document() -> dict[str, Any]:
    watchlist, alert = (
        param("watchlist_id", "path", "string"),
        param("alert_id", "path", "string"),
    )
    limit, after = param("limit"), param("after")
    base = "/api/v1"
    return openapi_document(
        "Ganntec main API",
        _TYPES,
        {
            f"{base}/profile": {
                "get": operation("The caller's profile", "ProfileAnswer"),
                "put": operation("Change the profile", "ProfileAnswer", "ProfileBody"),
            },
            f"{base}/watchlists": {
                "get": operation("The watchlists, in order", "Watchlists"),
                "post": operation(
                    "A new watchlist", "WatchlistAnswer", "WatchlistBody", status="201"
                ),
            },
            f"{base}/watchlists/order": {
                "put": operation("Reorder the watchlists", "Watchlists", "OrderBody"),
            },
            f"{base}/watchlists/{{watchlist_id}}": {
                "get": operation("One watchlist", "WatchlistAnswer", None, watchlist),
                "patch": operation(
                    "Rename, or set its instruments", "WatchlistAnswer", "WatchlistBody", watchlist
                ),
                "delete": operation("Delete it", None, None, watchlist, status="204"),
            },
            f"{base}/alerts": {
                "get": operation(
                    "The alerts, oldest first",
                    "AlertsPage",
                    None,
                    limit,
                    after,
                    param("status", kind="string"),
                ),
                "post": operation("A new alert", "AlertAnswer", "AlertBody", status="201"),
            },
            f"{base}/alerts/{{alert_id}}": {
                "get": operation("One alert", "AlertAnswer", None, alert),
                "put": operation("Replace what it asks", "AlertAnswer", "AlertBody", alert),
                "delete": operation("Delete it", None, None, alert, status="204"),
            },
            f"{base}/alerts/{{alert_id}}/fired": {
                "get": operation(
                    "Its firings, oldest first", "FiredPage", None, alert, limit, after
                ),
            },
            f"{base}/notifications": {
                "get": operation(
                    "Notifications, newest first",
                    "NotificationsPage",
                    None,
                    limit,
                    param("before"),
                    param("unread", kind="boolean"),
                ),
            },
            f"{base}/notifications/read": {"post": operation("Mark all read", "Marked")},
            f"{base}/notifications/{{fire_id}}/read": {
                "post": operation(
                    "Mark one read", "NotificationAnswer", None, param("fire_id", "path", "string")
                ),
            },
            **_webhook_paths(base, limit, after),
        },
    )


def _webhook_paths(base: str, *page: dict[str, Any]) -> dict[str, Any]:
    hook, fire = param("webhook_id", "path", "string"), param("fire_id", "path", "string")
    of_hook, state = param("webhook_id", kind="string"), param("state", kind="string")
    return {
        f"{base}/webhooks": {
            "get": operation("The webhook endpoints", "Webhooks"),
            "post": operation(
                "A new endpoint and its secret", "NewSecret", "WebhookBody", status="201"
            ),
        },
        f"{base}/webhooks/{{webhook_id}}": {
            "delete": operation("Delete it and its deliveries", None, None, hook, status="204"),
        },
        f"{base}/webhooks/{{webhook_id}}/secret": {
            "post": operation(
                "A new secret (the old one signs for a day more)", "NewSecret", None, hook
            ),
        },
        f"{base}/webhooks/deliveries": {
            "get": operation(
                "Deliveries, oldest first", "DeliveriesPage", None, *page, of_hook, state
            ),
        },
        f"{base}/webhooks/dead-letters": {
            "get": operation("Dead letters, oldest first", "DeadLettersPage", None, *page, of_hook),
        },
        f"{base}/webhooks/dead-letters/replay": {
            "post": operation(
                "Replay every dead letter (of one endpoint)", "Replayed", None, of_hook
            ),
        },
        f"{base}/webhooks/{{webhook_id}}/dead-letters/{{fire_id}}/replay": {
            "post": operation("Replay one dead letter", "DeliveryAnswer", None, hook, fire),
        },
    }
