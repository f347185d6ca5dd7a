"""A grant: the plan's patterns matched in upper case with ``*`` for any run of characters,
claims read strictly, the anonymous plan, a plan change applied to a token's grant."""

from __future__ import annotations

import pytest

from access.grant import Grant, GrantError
from core.auth_events import PlanClaims
from tests.support import tokens


def _plan(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "plan": "demo", "instruments": "SYNTH:* BINANCE:BTCUSDT", "delay": 0,
        "history_days": 7, "ws_subs": 4, "ws_conns": 2, "rpm": 60, "trade": False,
    }  # fmt: skip
    return base | changes


def test_patterns_match_whole_ids_in_upper_case() -> None:
    grant = Grant.anonymous(_plan())
    assert grant.covers("SYNTH:BTCUSD")
    assert grant.covers("synth:ethusd")
    assert grant.covers("BINANCE:BTCUSDT")
    assert not grant.covers("BINANCE:BTCUSDT2")
    assert not grant.covers("XBINANCE:BTCUSDT")
    assert not grant.covers("BINANCE:ETHUSDT")
    assert Grant.anonymous(_plan(instruments="*:BTC*")).covers("KRAKEN:BTCEUR")
    assert not Grant.anonymous(_plan(instruments="A.B:C")).covers("AXB:C")  # . is itself


def test_the_anonymous_grant_has_no_account_and_never_expires() -> None:
    grant = Grant.anonymous(_plan())
    assert (grant.subject, grant.account_id, grant.expires_at, grant.is_anonymous) == (
        "anonymous", None, None, True,
    )  # fmt: skip
    assert grant == Grant.anonymous(PlanClaims(**_plan()))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("claims", "names"),
    [
        (_plan(delay="0"), "delay"),
        (_plan(trade=1), "trade"),
        (_plan(history_days=True), "history_days"),
        ({k: v for k, v in _plan().items() if k != "rpm"}, "rpm"),
        (_plan(delay=-1), "delay"),
        (_plan(instruments=""), "instruments"),
        (_plan(instruments=" ".join(["A:B"] * 257)), "instruments"),
    ],
)
def test_missing_mistyped_or_out_of_range_claims_are_refused_naming_the_claim(
    claims: dict[str, object], names: str
) -> None:
    with pytest.raises(GrantError, match=names):
        Grant.anonymous(claims)


def test_a_plan_change_keeps_trading_off_for_a_read_only_key() -> None:
    payload = tokens.claims(plan="free", kind="key", principal="k_1", scopes=("read",)).payload()
    grant = Grant.from_claims(payload)
    pro = PlanClaims(**_plan(plan="pro", instruments="*", trade=True))  # type: ignore[arg-type]
    moved = grant.with_plan(pro)
    assert (moved.plan, moved.instruments, moved.trading) == ("pro", ("*",), False)
    assert moved.subject == grant.subject
