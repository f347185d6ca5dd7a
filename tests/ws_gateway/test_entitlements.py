"""Entitlements in the session's core, without a socket: instruments outside the plan,
subscriptions per connection, connections per principal, the ``auth`` first frame, an
entitlement change, and the delay (one shared view per channel, on a fake clock)."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from access.grant import Grant
from core.candles import Candle, CandleStatus
from core.intervals import Interval
from ws_gateway.admission import PrincipalSlots
from ws_gateway.auth import AuthenticationError, Principal
from ws_gateway.delay import DelayedCandles
from ws_gateway.hub import Hub
from ws_gateway.protocol import ConnectionProtocol
from ws_gateway.session_core import (
    Action,
    Authenticate,
    Close,
    Directory,
    ReadLastCandles,
    SessionCore,
)
from ws_gateway.settings import GatewaySettings
from ws_gateway.tokens import principal_of
from ws_gateway.wire import CANDLES, TICKS, ChannelKey, CloseCode

from .market import BTC, ETH, final, updates
from .test_session_core import Shelf, Watcher, framing, only_sent, sent, types

EPOCH = "epoch-e"
NS = 1_000_000_000
DELAY = 900
SECOND = Interval.parse("1s")
READ = frozenset({"read:candles", "read:ticks"})


def grant(**overrides: Any) -> Grant:
    claims: dict[str, Any] = {
        "subject": "account:7",
        "account_id": 7,
        "session": "s-1",
        "token_id": "t-1",
        "scopes": ("read",),
        "plan": "pro",
        "instruments": ("*",),
        "delay_s": 0,
        "history_days": 3650,
        "ws_subscriptions": 200,
        "ws_connections": 10,
        "requests_per_minute": 1200,
        "trading": False,
        "expires_at": None,
    }
    claims.update(overrides)
    return Grant(**claims)


def principal(**overrides: Any) -> Principal:
    return principal_of(grant(**overrides))


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


class Client:
    """One connection's core on a shared hub, with a fake clock."""

    def __init__(
        self,
        hub: Hub,
        who: Principal,
        clock: Clock,
        slots: PrincipalSlots | None = None,
        storage: bool = False,
        **core: Any,
    ) -> None:
        self.hub = hub
        self.watcher = Watcher()
        self.protocol = ConnectionProtocol(hub.settings, who, 0.0)
        self.now = 0.0
        self.core = SessionCore(
            hub,
            self.watcher,
            self.protocol,
            Directory(hub, storage),
            storage=storage,
            clock=clock,
            slots=slots,
            **core,
        )

    def send(self, **body: Any) -> list[Action]:
        self.now += 0.001
        return self.core.receive(json.dumps(body), self.now)

    def subscribe(self, instrument: str = BTC, label: str = "1s", **extra: Any) -> list[Action]:
        where = {"channel": CANDLES, "instrument": instrument, "interval": label}
        return self.send(op="subscribe", id=1, **where, **extra)


def hub_of(**settings: Any) -> Hub:
    settings.setdefault("instruments", (BTC, ETH))
    return Hub(GatewaySettings(**settings), EPOCH, framing)


def error_of(actions: list[Action]) -> dict[str, Any]:
    (message,) = sent(actions)
    assert message["type"] == "error"
    return message


# -- instruments, subscriptions, ticks --------------------------------------------------------


def test_an_instrument_outside_the_plan_is_forbidden_naming_the_field() -> None:
    client = Client(hub_of(), principal(plan="demo", instruments=("BINANCE:*",)), Clock(0))
    refused = error_of(client.subscribe(ETH))
    assert (refused["id"], refused["code"], refused["field"]) == (1, "forbidden", "instrument")
    assert "plan demo does not cover SYNTH:ETHUSD" in refused["message"]
    assert not client.protocol.subscriptions


def test_patterns_match_instruments_in_any_case() -> None:
    client = Client(hub_of(), principal(instruments=("SYNTH:*",)), Clock(0))
    joined, _ = only_sent(client.subscribe("synth:btcusd"))
    assert joined["type"] == "subscribed"


def test_the_plan_bounds_subscriptions_per_connection_within_the_gateway_limit() -> None:
    client = Client(hub_of(), principal(ws_subscriptions=1), Clock(0))
    assert types(only_sent(client.subscribe(BTC))) == ["subscribed", "snapshot"]
    refused = error_of(client.subscribe(ETH))
    assert (refused["code"], refused["field"]) == ("too_many_subscriptions", "channel")
    assert "at most 1 subscriptions per connection on plan pro" in refused["message"]
    assert types(only_sent(client.subscribe(BTC))) == ["subscribed", "snapshot"]  # held already


def test_a_delayed_plan_has_no_ticks() -> None:
    client = Client(hub_of(), principal(plan="free", delay_s=DELAY), Clock(0))
    refused = error_of(client.send(op="subscribe", id=3, channel=TICKS, instrument=BTC))
    assert (refused["id"], refused["code"], refused["field"]) == (3, "forbidden", "channel")


# -- connections per principal ----------------------------------------------------------------


def test_connections_per_principal_are_counted_across_the_gateway() -> None:
    hub, slots, clock = hub_of(), PrincipalSlots(), Clock(0)
    who = principal(ws_connections=2)
    first, second, third = (Client(hub, who, clock, slots) for _ in range(3))
    assert first.core.start() == []
    assert second.core.start() == []
    refused = third.core.start()
    assert error_of(refused[:-1])["code"] == "too_many_connections"
    assert refused[-1] == Close(CloseCode.RATE_LIMITED, "too many connections")
    other = Client(hub, principal(subject="key:k_1", ws_connections=1), clock, slots)
    assert other.core.start() == []  # another principal is unaffected
    first.core.finish()
    assert Client(hub, who, clock, slots).core.start() == []


def test_anonymous_and_plan_less_principals_are_not_counted() -> None:
    hub, slots, clock = hub_of(), PrincipalSlots(), Clock(0)
    anonymous = principal(subject="anonymous", account_id=None, ws_connections=1)
    for who in (anonymous, anonymous, Principal("bot", READ)):
        assert Client(hub, who, clock, slots).core.start() == []


# -- the auth frame ---------------------------------------------------------------------------


def test_the_auth_frame_is_checked_by_the_shell_and_answered() -> None:
    hub = hub_of()
    nobody = Principal("unauthenticated")
    client = Client(hub, nobody, Clock(0), token_sent=False, anonymous=False)
    actions = client.send(op="auth", id=1, token="a.b.c")
    assert actions == [Authenticate("a.b.c")]
    who = principal(plan="free", delay_s=DELAY, expires_at=1_900_000_000)
    answer = only_sent(client.core.answer(who))
    assert answer == [
        {"type": "authenticated", "id": 1, "plan": "free", "delay": DELAY, "expires": 1_900_000_000}
    ]
    assert client.core.principal is who
    assert not client.core.must_auth
    assert client.send(op="auth", id=2, token="d.e.f") == [Authenticate("d.e.f")]  # renewal
    other = error_of(client.core.answer(principal(subject="account:8", account_id=8)))
    assert (other["id"], other["code"], other["field"]) == (2, "forbidden", "token")
    assert client.core.principal is who


def test_a_refused_auth_frame_is_unauthorized_then_4401() -> None:
    client = Client(hub_of(), Principal("anonymous", READ), Clock(0), token_sent=False)
    assert client.send(op="auth", id=1, token="forged") == [Authenticate("forged")]
    actions = client.core.refused(AuthenticationError("signature: the token is forged"))
    refused = error_of(actions[:-1])
    assert (refused["id"], refused["code"], refused["field"]) == (1, "unauthorized", "token")
    assert actions[-1] == Close(CloseCode.UNAUTHORIZED, "unauthorized")


def test_without_anonymous_access_anything_but_auth_first_closes_4401() -> None:
    client = Client(
        hub_of(), Principal("unauthenticated"), Clock(0), token_sent=False, anonymous=False
    )
    actions = client.subscribe()
    assert error_of(actions[:-1])["code"] == "unauthorized"
    assert actions[-1] == Close(CloseCode.UNAUTHORIZED, "unauthorized")
    late = Client(
        hub_of(), Principal("unauthenticated"), Clock(0), token_sent=False, anonymous=False
    )
    timed_out = late.core.auth_timed_out(5.0)
    assert "no token within 5 s" in error_of(timed_out[:-1])["message"]
    assert timed_out[-1] == Close(CloseCode.UNAUTHORIZED, "unauthorized")


def test_anonymous_clients_may_send_auth_first_but_not_later() -> None:
    client = Client(hub_of(), Principal("anonymous", READ), Clock(0), token_sent=False)
    assert types(only_sent(client.send(op="ping", id=1))) == ["pong"]
    late = error_of(client.send(op="auth", id=2, token="a.b.c"))
    assert (late["code"], late["field"]) == ("bad_request", "op")


def test_an_auth_frame_renews_the_token_of_its_own_principal() -> None:
    hub = hub_of()
    client = Client(hub, principal(expires_at=1_000), Clock(0))
    client.subscribe(BTC)
    client.subscribe(ETH)
    assert client.send(op="auth", id=5, token="g.h.i") == [Authenticate("g.h.i")]
    renewed = principal(expires_at=2_000, plan="narrow", instruments=("SYNTH:BTC*",))
    dropped, answer = only_sent(client.core.answer(renewed))
    assert (dropped["code"], dropped["instrument"]) == ("forbidden", ETH)  # the new plan's
    assert (answer["type"], answer["id"], answer["expires"]) == ("authenticated", 5, 2_000)
    assert client.core.principal.expires_at_ns == 2_000 * NS
    assert client.protocol.subscriptions == {ChannelKey(CANDLES, BTC, "1s")}
    client.send(op="auth", id=6, token="bad")
    actions = client.core.refused(AuthenticationError("expired: the token has expired"))
    assert error_of(actions[:-1])["code"] == "unauthorized"
    assert actions[-1] == Close(CloseCode.UNAUTHORIZED, "unauthorized")


def test_a_plan_less_or_anonymous_connection_takes_no_later_auth_frame() -> None:
    anonymous = principal(subject="anonymous", account_id=None)
    for who in (Principal("bot", READ), anonymous):
        client = Client(hub_of(), who, Clock(0))
        refused = error_of(client.send(op="auth", id=1, token="a.b.c"))
        assert (refused["code"], refused["field"]) == ("bad_request", "op")


def test_an_auth_frame_beyond_the_plans_connections_is_refused() -> None:
    hub, slots = hub_of(), PrincipalSlots()
    who = principal(ws_connections=1)
    assert Client(hub, who, Clock(0), slots).core.start() == []
    client = Client(hub, Principal("anonymous", READ), Clock(0), slots, token_sent=False)
    client.send(op="auth", id=1, token="a.b.c")
    actions = client.core.answer(who)
    assert error_of(actions[:-1])["code"] == "too_many_connections"
    assert actions[-1] == Close(CloseCode.RATE_LIMITED, "too many connections")


# -- an entitlement change ----------------------------------------------------------------------


def test_a_downgrade_drops_the_channels_the_new_plan_does_not_cover() -> None:
    hub = hub_of()
    client = Client(hub, principal(), Clock(0))
    client.subscribe(BTC)
    client.subscribe(ETH)
    actions = client.core.regrant(principal(plan="demo", instruments=("SYNTH:BTC*",)))
    (dropped,) = only_sent(actions)
    assert (dropped["type"], dropped["code"], dropped["field"]) == ("error", "forbidden", "channel")
    assert (dropped["channel"], dropped["instrument"], dropped["interval"]) == (CANDLES, ETH, "1s")
    assert client.protocol.subscriptions == {ChannelKey(CANDLES, BTC, "1s")}
    eth = hub.candle_channel(ETH, "1s")
    assert eth is not None
    assert client.watcher not in eth.subscribers


def test_a_change_of_delay_drops_every_channel_to_be_subscribed_again() -> None:
    hub = hub_of()
    client = Client(hub, principal(), Clock(0))
    client.subscribe(BTC)
    actions = client.core.regrant(principal(plan="free", delay_s=DELAY))
    (dropped,) = only_sent(actions)
    assert dropped["code"] == "forbidden"
    assert "subscribe again" in dropped["message"]
    assert not client.protocol.subscriptions
    assert types(only_sent(client.subscribe(BTC))) == ["subscribed", "snapshot"]
    assert client.protocol.subscriptions == {ChannelKey(CANDLES, BTC, "1s")}


def test_an_upgrade_keeps_the_channels() -> None:
    client = Client(hub_of(), principal(instruments=("SYNTH:BTC*",)), Clock(0))
    client.subscribe(BTC)
    assert client.core.regrant(principal(ws_subscriptions=500)) == []
    assert client.protocol.subscriptions == {ChannelKey(CANDLES, BTC, "1s")}


# -- the delay --------------------------------------------------------------------------------


def candles_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if message["type"] == "snapshot":
            out.extend(message["candles"])
        elif message["type"] == "candle":
            out.append(message["candle"])
    return out


def assert_no_candle_younger_than_the_delay(
    candles: list[dict[str, Any]], now_ns: int, label: str = "1s"
) -> None:
    length = Interval.parse(label).ns
    for candle in candles:
        close_ns = candle["open_time"] * 1_000_000 + length
        assert close_ns <= now_ns - DELAY * NS, (candle, now_ns)


def test_a_delayed_plan_sees_no_candle_younger_than_the_delay_live_or_in_snapshots() -> None:
    stream = updates(duration=60.0)
    start = stream[0].open_time
    clock = Clock(start)
    hub = hub_of()
    live = Client(hub, principal(), clock)
    delayed = Client(hub, principal(plan="free", delay_s=DELAY), clock)
    live.subscribe()
    joined, snapshot = only_sent(delayed.subscribe())
    assert joined["epoch"] == f"{EPOCH}-d{DELAY}"
    assert snapshot["candles"] == []
    for candle in stream:  # published in real time: every update at its candle's open time
        clock.now_ns = max(clock.now_ns, candle.open_time)
        hub.candle(candle, clock.now_ns)
        hub.release(clock.now_ns)
        hub.flush()
        assert_no_candle_younger_than_the_delay(candles_of(delayed.watcher.written), clock.now_ns)
    assert delayed.watcher.written == []  # nothing is 15 minutes old yet
    assert len(live.watcher.written) == len(stream)
    seen = 0
    for step_s in range(0, DELAY + 120, 7):  # the clock moves on; the view releases
        clock.now_ns = start + step_s * NS
        hub.release(clock.now_ns)
        hub.flush()
        got = candles_of(delayed.watcher.written)
        assert_no_candle_younger_than_the_delay(got, clock.now_ns)
        assert len(got) >= seen
        seen = len(got)
    newest = final(stream)
    assert {
        c["open_time"] * 1_000_000: c["revision"] for c in candles_of(delayed.watcher.written)
    } == {
        open_time: candle.revision for open_time, candle in newest.items()
    }  # every candle once, at its newest revision
    seqs = [message["seq"] for message in delayed.watcher.written]
    assert seqs == list(range(1, len(newest) + 1))
    late = Client(hub, principal(plan="free", delay_s=DELAY), clock)
    _, snapshot = only_sent(late.subscribe(snapshot=1000))
    assert snapshot["candles"]
    assert_no_candle_younger_than_the_delay(snapshot["candles"], clock.now_ns)


def test_delayed_clients_share_one_view_per_channel_and_delay() -> None:
    stream = updates(duration=10.0)
    clock = Clock(stream[0].open_time)
    hub = hub_of()
    clients = [Client(hub, principal(plan="free", delay_s=DELAY), clock) for _ in range(50)]
    for client in clients:
        client.subscribe()
    assert len(hub.views) == 1
    (view,) = hub.views.values()
    assert isinstance(view, DelayedCandles)
    assert len(view.subscribers) == 50
    for candle in stream:
        hub.candle(candle, candle.open_time)
    clock.now_ns = stream[-1].open_time + DELAY * NS + 2 * NS
    assert hub.release(clock.now_ns) == len(final(stream))  # one release for all 50
    hub.flush()
    first = clients[0].watcher.written
    assert first
    assert all(client.watcher.written == first for client in clients)
    other = Client(hub, principal(plan="slow", delay_s=2 * DELAY), clock)
    other.subscribe()
    assert len(hub.views) == 2


def test_a_delayed_snapshot_reads_storage_only_up_to_the_delay() -> None:
    stream = updates(duration=30.0)
    now = stream[-1].open_time + 10 * NS
    hub = hub_of()
    client = Client(hub, principal(plan="free", delay_s=DELAY), Clock(now), storage=True)
    shelf = Shelf(candles=stream)
    actions = client.subscribe()
    read = actions[-1]
    assert isinstance(read, ReadLastCandles)
    assert read.before == SECOND.bucket_start(now - DELAY * NS)
    assert read.before < stream[0].open_time  # all of the stream is younger than the delay
    messages = sent(client.core.answer(shelf(read)))
    assert types(messages) == ["subscribed", "snapshot"]
    assert messages[1]["candles"] == []


def test_a_view_starts_from_the_live_cache_and_releases_revisions_of_old_candles() -> None:
    stream = updates(duration=10.0)
    start = stream[0].open_time
    hub = hub_of()
    for candle in stream:
        hub.candle(candle, candle.open_time)
    later = start + (DELAY + 60) * NS
    client = Client(hub, principal(plan="free", delay_s=DELAY), Clock(later))
    _, snapshot = only_sent(client.subscribe(snapshot=1000))
    assert len(snapshot["candles"]) == len(final(stream))
    oldest: Candle = final(stream)[start]
    revised = msgspec.structs.replace(
        oldest, revision=oldest.revision + 1, status=CandleStatus.REVISED
    )
    hub.candle(revised, later)  # an old candle is due at once
    hub.flush()
    (update,) = client.watcher.written
    assert (update["type"], update["candle"]["revision"]) == ("candle", revised.revision)


def test_a_plan_changed_while_storage_answers_is_checked_before_joining() -> None:
    stream = updates(duration=5.0)
    hub = hub_of()
    client = Client(hub, principal(), Clock(stream[-1].open_time), storage=True)
    read = client.subscribe(ETH)[-1]
    assert isinstance(read, ReadLastCandles)
    assert client.core.regrant(principal(plan="demo", instruments=("SYNTH:BTC*",))) == []
    refused = error_of(client.core.answer(Shelf(candles=stream)(read)))
    assert (refused["id"], refused["code"], refused["field"]) == (1, "forbidden", "instrument")
    eth = hub.candle_channel(ETH, "1s")
    assert eth is not None
    assert client.watcher not in eth.subscribers
    assert not client.protocol.subscriptions


def test_a_malformed_first_frame_where_a_token_is_required_is_unauthorized() -> None:
    client = Client(
        hub_of(), Principal("unauthenticated"), Clock(0), token_sent=False, anonymous=False
    )
    actions = client.core.receive("{not json", 0.0)
    refused = error_of(actions[:-1])
    assert refused["code"] == "unauthorized"
    assert refused["message"].endswith("; send auth first")
    assert actions[-1] == Close(CloseCode.UNAUTHORIZED, "unauthorized")


def test_a_delayed_client_resumes_within_its_views_epoch() -> None:
    stream = updates(duration=20.0)
    start = stream[0].open_time
    clock = Clock(start)
    hub = hub_of()
    first = Client(hub, principal(plan="free", delay_s=DELAY), clock)
    first.subscribe()
    for candle in stream:
        hub.candle(candle, candle.open_time)
    clock.now_ns = start + DELAY * NS + 5 * NS
    hub.release(clock.now_ns)
    hub.flush()
    seen = first.watcher.written
    assert [message["seq"] for message in seen] == [1, 2, 3, 4, 5]
    back = Client(hub, principal(plan="free", delay_s=DELAY), clock)
    where = {"channel": CANDLES, "instrument": BTC, "interval": "1s"}
    replayed = only_sent(back.send(op="resume", id=2, seq=2, epoch=f"{EPOCH}-d{DELAY}", **where))
    assert types(replayed) == ["subscribed", "candle", "candle", "candle"]
    assert [message["seq"] for message in replayed[1:]] == [3, 4, 5]
    other = Client(hub, principal(plan="free", delay_s=DELAY), clock)
    reset = only_sent(other.send(op="resume", id=3, seq=2, epoch=EPOCH, **where))
    assert types(reset) == ["subscribed", "snapshot"]
    assert reset[1]["reset"] is True
    assert_no_candle_younger_than_the_delay(reset[1]["candles"], clock.now_ns)
    assert len(reset[1]["candles"]) == 5


def test_a_views_pending_candles_are_bounded_by_the_cache() -> None:
    stream = updates(duration=30.0)
    hub = hub_of(cache_candles=10, max_snapshot=10, default_snapshot=10)
    client = Client(hub, principal(plan="slow", delay_s=10 * DELAY), Clock(stream[0].open_time))
    client.subscribe()
    for candle in stream:
        hub.candle(candle, candle.open_time)
    (view,) = hub.views.values()
    assert len(view.pending) == 10
    assert view.dropped == len(final(stream)) - 10
    assert min(view.pending) == sorted(final(stream))[-10]  # the newest are kept
