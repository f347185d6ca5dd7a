"""The webhooks' pure rules: the retry schedule (doubling waits under a cap, drawn with full
jitter), the delivery's state machine, and which URLs an endpoint may have."""

from __future__ import annotations

import ipaddress

import pytest

from main_api.requests import InvalidFieldError
from main_api.webhooks.event import event_body
from main_api.webhooks.pinning import pinned, refusal
from main_api.webhooks.schedule import (
    DeliveryState,
    Next,
    Outcome,
    RetrySchedule,
    after_attempt,
)
from main_api.webhooks.urls import public_address, webhook_url
from tests.main_api.test_accounts import fired_for

SCHEDULE = RetrySchedule(max_attempts=5, base_s=2.0, max_delay_s=10.0)
NOW = 1_000 * 10**9


def test_the_waits_double_up_to_the_cap_and_are_drawn_below_it() -> None:
    assert [SCHEDULE.cap(n) for n in range(1, 6)] == [2.0, 4.0, 8.0, 10.0, 10.0]
    assert SCHEDULE.cap(10_000) == 10.0
    draws = iter([0.0, 0.5, 0.999])
    assert [SCHEDULE.delay(3, lambda: next(draws)) for _ in range(3)] == [0.0, 4.0, 7.992]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 51}, "max_attempts"),
        ({"base_s": 0.0}, "base_s"),
        ({"base_s": 5.0, "max_delay_s": 1.0}, "base_s"),
    ],
)
def test_a_schedule_out_of_bounds_is_refused(schedule: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetrySchedule(**schedule)  # type: ignore[arg-type]


def test_an_attempt_delivers_retries_later_or_ends_dead() -> None:
    ok, failed = Outcome(status=204), Outcome(status=500)
    assert after_attempt(1, ok, SCHEDULE, NOW) == Next(DeliveryState.DELIVERED)
    assert after_attempt(5, ok, SCHEDULE, NOW) == Next(DeliveryState.DELIVERED)
    half = after_attempt(2, failed, SCHEDULE, NOW, lambda: 0.5)
    assert half == Next(DeliveryState.PENDING, NOW + 2 * 10**9)
    assert after_attempt(4, Outcome(error="timeout"), SCHEDULE, NOW, lambda: 0.25) == Next(
        DeliveryState.PENDING, NOW + int(2.5 * 10**9)
    )
    assert after_attempt(5, failed, SCHEDULE, NOW) == Next(DeliveryState.DEAD)
    assert (failed.describe(), Outcome(error="timeout").describe(), ok.describe()) == (
        "status 500", "timeout", None
    )  # fmt: skip
    assert not Outcome(status=302).ok


def test_the_body_is_the_firing_without_its_account() -> None:
    body = event_body(fired_for(7, "a-1"), now_ns=5)
    assert body.startswith(b'{"id":"a-1:1","type":"alert.fired","created_at":5,"data":{')
    assert b'"price":"100.5"' in body
    assert b"account" not in body


@pytest.mark.parametrize(
    "url",
    ["https://example.com/hook", "http://hooks.example.org:8080/a?b=c", "https://8.8.8.8/x"],
)
def test_a_public_url_is_taken(url: str) -> None:
    assert webhook_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/x", "format"),
        ("example.com/hook", "format"),
        ("https:///nohost", "format"),
        ("https://user:pw@example.com/", "format"),
        ("https://example.com/#frag", "format"),
        ("https://example.com:99999/", "format"),
        ("https://example.com/a b", "format"),
        ("https://example.com/" + "a" * 2100, "too-long"),
        ("http://127.0.0.1:9000/hook", "host-not-allowed"),
        ("http://localhost/hook", "host-not-allowed"),
        ("http://[::1]/hook", "host-not-allowed"),
        ("http://[::ffff:10.0.0.1]/hook", "host-not-allowed"),
        ("http://169.254.169.254/latest", "host-not-allowed"),
        ("http://10.1.2.3/hook", "host-not-allowed"),
        ("http://192.168.1.1/hook", "host-not-allowed"),
        ("http://db.internal/hook", "host-not-allowed"),
        ("http://intranet/hook", "host-not-allowed"),
    ],
)
def test_a_url_that_is_not_a_public_http_one_is_refused(url: str, code: str) -> None:
    with pytest.raises(InvalidFieldError) as refused:
        webhook_url(url, allow_private=False)
    assert (refused.value.field, refused.value.code) == ("url", code)


def test_private_hosts_are_taken_when_the_setting_allows_them() -> None:
    assert webhook_url("http://127.0.0.1:9000/hook", allow_private=True)
    assert not public_address("127.0.0.1")
    assert not public_address("not an address")
    assert public_address("1.1.1.1")


def test_a_request_is_pinned_to_the_checked_address_keeping_the_host_and_tls_name() -> None:
    named = pinned("https://Hooks.Example.com/in?x=1", "93.184.215.14")
    assert (str(named.url), named.host, named.extensions) == (
        "https://93.184.215.14/in?x=1", "hooks.example.com",
        {"sni_hostname": "hooks.example.com"},
    )  # fmt: skip
    plain = pinned("http://hooks.example.com:8080/in", "2606:2800:220:1::1")
    assert (str(plain.url), plain.host, plain.extensions) == (
        "http://[2606:2800:220:1::1]:8080/in", "hooks.example.com:8080", {}
    )  # fmt: skip
    literal = pinned("https://93.184.215.14:8443/in", "93.184.215.14")
    assert (str(literal.url), literal.host, literal.server_name) == (
        "https://93.184.215.14:8443/in", "93.184.215.14:8443", None
    )  # fmt: skip


def test_every_resolved_address_is_checked_and_an_allow_list_lets_only_its_own_through() -> None:
    loopback = (ipaddress.ip_network("127.0.0.1/32"),)
    assert refusal([], allow_private=False) == "dns-error"
    assert refusal(["93.184.215.14"], allow_private=False) is None
    assert refusal(["93.184.215.14", "127.0.0.1"], allow_private=False) == "address-not-allowed"
    assert refusal(["127.0.0.1"], allow_private=False, allowed=loopback) is None
    for other in ("127.0.0.2", "10.0.0.1", "::1", "169.254.169.254"):
        assert refusal([other], allow_private=False, allowed=loopback) == "address-not-allowed"
    assert refusal(["10.0.0.1"], allow_private=True) is None
    assert webhook_url("http://127.0.0.1:9/h", allow_private=False, allowed=loopback)
    with pytest.raises(InvalidFieldError):
        webhook_url("http://127.0.0.2:9/h", allow_private=False, allowed=loopback)
