"""One connection's side of the protocol, sans I/O: frames in, checked requests out.

:class:`ConnectionProtocol` knows nothing of sockets or of the hub. It is fed each frame the
client sent and hands back a :class:`~ws_gateway.wire.Request` that is well formed, allowed and
within the connection's limits, or raises :class:`~ws_gateway.wire.RequestError` carrying the
error message to send. What needs the gateway's state (is the instrument known? what is the
snapshot?) is the session's business (:mod:`ws_gateway.session`).
"""

from __future__ import annotations

from core.instruments import validate_instrument
from core.intervals import Interval
from ws_gateway.auth import Principal
from ws_gateway.ratelimit import TokenBucket
from ws_gateway.settings import GatewaySettings
from ws_gateway.wire import (
    CANDLES,
    TICKS,
    TRADING_KINDS,
    Auth,
    ChannelKey,
    ErrorCode,
    Ping,
    Request,
    RequestError,
    Resume,
    Subscribe,
    Unsubscribe,
    parse_json,
    parse_request,
    request_id,
)


def account_of(principal: Principal, kind: str) -> int | None:
    """The account whose private channel ``kind`` the principal may read: its grant's (for
    a trading channel, only when the grant may trade: its plan allows trading and its scopes
    include ``trade``), else None."""
    grant = principal.grant
    if grant is None or grant.account_id is None:
        return None
    if kind in TRADING_KINDS and not (grant.trading and "trade" in grant.scopes):
        return None
    return grant.account_id


def entitlement(principal: Principal, channel: ChannelKey) -> tuple[str, str] | None:
    """Why the principal's plan does not allow ``channel`` (the field to blame and a message),
    or None when it does. Ticks are real-time data only: a delayed plan has none; private
    channels need an account (that may trade, for the trading ones)."""
    if channel.private:
        if account_of(principal, channel.kind) is None:
            needs = " with the trade scope" if channel.kind in TRADING_KINDS else ""
            return "channel", (
                f"{channel.kind} is an account's own channel: it needs a token of an account{needs}"
            )
        return None
    if not principal.covers(channel.instrument):
        return "instrument", f"plan {principal.plan} does not cover {channel.instrument}"
    if channel.kind == TICKS and principal.delay_s:
        return "channel", (
            f"plan {principal.plan} sees data {principal.delay_s} s late: ticks are real time only"
        )
    return None


class ConnectionProtocol:
    """Checks one client's requests against the settings, its principal and its state."""

    def __init__(self, settings: GatewaySettings, principal: Principal, now: float) -> None:
        self.settings = settings
        self.limits = settings.limits
        self.principal = principal
        self.subscriptions: set[ChannelKey] = set()
        self.violations = 0
        """Requests refused by the rate limit since the last one accepted."""
        self._bucket = TokenBucket(self.limits.rate, self.limits.burst, now)
        self._served = ", ".join(interval.label for interval in settings.intervals)

    @property
    def abusive(self) -> bool:
        """True once the client kept sending past its rate limit: close it (4429)."""
        return self.violations >= self.limits.max_rate_violations

    def receive(self, frame: str | bytes, now: float) -> Request:
        """The request in ``frame``; raises :class:`RequestError` when it cannot be served."""
        if not self._bucket.take(now):
            self.violations += 1
            raise RequestError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.limits.rate:g} requests a second (burst {self.limits.burst});"
                " this one was dropped",
            )
        self.violations = 0
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
        if size > self.limits.max_frame_bytes:
            raise RequestError(
                ErrorCode.FRAME_TOO_LARGE,
                f"a request may have at most {self.limits.max_frame_bytes} bytes, this one has"
                f" {size}",
            )
        body = parse_json(frame)
        try:
            request = parse_request(body)
        except RequestError as exc:
            if exc.id is None and exc.field != "id":
                exc = RequestError(exc.code, exc.message, exc.field, request_id(body))
            raise exc from None
        if not isinstance(request, Ping | Auth):
            self._check(request)
        return request

    def _check(self, request: Subscribe | Unsubscribe | Resume) -> None:
        channel, rid = request.channel, request.id
        if not channel.private:
            try:
                validate_instrument(channel.instrument)
            except ValueError as exc:
                raise RequestError(ErrorCode.BAD_REQUEST, str(exc), "instrument", rid) from None
        if channel.kind == CANDLES:
            self._check_interval(channel.interval or "", rid)
        if isinstance(request, Unsubscribe):
            if channel not in self.subscriptions:
                raise RequestError(
                    ErrorCode.NOT_SUBSCRIBED,
                    f"not subscribed to {channel.describe()}",
                    "channel",
                    rid,
                )
            return
        principal = self.principal
        if channel.private:
            refused = entitlement(principal, channel)
            if refused is not None:
                raise RequestError(ErrorCode.NOT_ENTITLED, refused[1], "channel", rid)
        elif not principal.may_read(channel.kind):
            raise RequestError(
                ErrorCode.UNAUTHORIZED,
                f"{principal.name} may not read {channel.kind}",
                "channel",
                rid,
            )
        refusal = entitlement(principal, channel)
        if refusal is not None:
            raise RequestError(ErrorCode.FORBIDDEN, refusal[1], refusal[0], rid)
        if request.snapshot is not None and request.snapshot > self.settings.max_snapshot:
            raise RequestError(
                ErrorCode.BAD_REQUEST,
                f"`snapshot` may ask for at most {self.settings.max_snapshot}",
                "snapshot",
                rid,
            )
        held = len(self.subscriptions)
        most = principal.subscriptions(self.limits.max_subscriptions)
        if channel not in self.subscriptions and held >= most:
            plan = "" if principal.plan is None else f" on plan {principal.plan}"
            raise RequestError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {most} subscriptions per connection{plan}",
                "channel",
                rid,
            )

    def _check_interval(self, label: str, rid: int | str | None) -> None:
        try:
            interval = Interval.parse(label)
        except ValueError as exc:
            raise RequestError(ErrorCode.BAD_INTERVAL, str(exc), "interval", rid) from None
        if interval.label != label:
            raise RequestError(
                ErrorCode.BAD_INTERVAL,
                f"interval {label!r} is not canonical: use {interval.label!r}",
                "interval",
                rid,
            )
        if self.settings.serves(label) is None:
            raise RequestError(
                ErrorCode.BAD_INTERVAL,
                f"interval {label} is not served here (served: {self._served})",
                "interval",
                rid,
            )

    def regrant(self, principal: Principal) -> list[tuple[ChannelKey, str]]:
        """Take the principal's new entitlements; the channels held that they no longer
        allow, each with why (the caller unsubscribes them)."""
        self.principal = principal
        dropped = []
        for channel in sorted(self.subscriptions):
            refusal = entitlement(principal, channel)
            if refusal is not None:
                dropped.append((channel, refusal[1]))
        return dropped

    def snapshot_size(self, request: Subscribe | Resume) -> int:
        """How many candles (or ticks) the snapshot of ``request`` holds."""
        return self.settings.default_snapshot if request.snapshot is None else request.snapshot

    def added(self, channel: ChannelKey) -> None:
        self.subscriptions.add(channel)

    def removed(self, channel: ChannelKey) -> None:
        self.subscriptions.discard(channel)
