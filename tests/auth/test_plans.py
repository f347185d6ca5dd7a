"""Plans are data: the shipped file loads, a bad file is refused with our message, patterns
match instrument ids, and a plan's claims carry what it grants."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from auth.claims import access_claims
from auth.plans import DELAY_S, MAX_FILE_BYTES, Plan, PlanError, load_plans, parse_plans

PRO = """
signup = "pro"
[plans.pro]
instruments = ["BINANCE:*", "*:BTCUSD"]
data = "delayed"
history_days = 30
ws_subscriptions = 5
ws_connections = 1
requests_per_minute = 100
trading = true
"""


def test_the_shipped_plans_load_with_an_anonymous_and_a_signup_plan() -> None:
    book = load_plans()
    assert book.anonymous is not None
    assert book.get(book.anonymous).name == book.anonymous
    assert book.get(book.signup).name == book.signup
    assert book.with_anonymous(None).anonymous is None
    assert book.with_anonymous(book.signup).anonymous == book.signup
    with pytest.raises(PlanError, match="the anonymous plan 'gold' is not among the plans"):
        book.with_anonymous("gold")


def test_a_plan_file_of_the_operator_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(PRO)
    book = load_plans(path)
    assert set(book.plans) == {"pro"}
    assert book.anonymous is None
    assert book.get("pro").delay_s == DELAY_S


@pytest.mark.parametrize(
    ("instrument", "covered"),
    [
        ("BINANCE:BTCUSDT", True),
        ("BINANCE:ETHUSDT", True),
        ("KRAKEN:BTCUSD", True),
        ("KRAKEN:BTCUSDT", False),
        ("COINBASE:ETH-USD", False),
    ],
)
def test_instrument_patterns_match_with_a_star(instrument: str, covered: bool) -> None:
    assert parse_plans(PRO).get("pro").covers(instrument) is covered


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('data = "sometimes"', "data must be realtime or delayed"),
        ('instruments = ["btc?"]', "instrument pattern 'btc?'"),
        ("history_days = -1", "history_days must be a whole number"),
        ('trading = "yes"', "trading must be true or false"),
    ],
)
def test_a_malformed_plan_is_refused_naming_the_field(line: str, message: str) -> None:
    field = line.split(" = ", maxsplit=1)[0]
    kept = [kept for kept in PRO.splitlines() if not kept.startswith(f"{field} = ")]
    with pytest.raises(PlanError, match=re.escape(message)):
        parse_plans("\n".join([*kept, line]))


def test_a_plan_with_a_field_missing_or_unknown_is_refused() -> None:
    with pytest.raises(PlanError, match="plan pro: missing trading; unknown colour"):
        parse_plans(PRO.replace("trading = true", "colour = 1"))


def test_a_role_naming_no_plan_is_refused() -> None:
    with pytest.raises(PlanError, match="the anonymous plan 'gold' is not among the plans"):
        parse_plans('anonymous = "gold"\n' + PRO)


def test_a_plan_file_past_its_size_bound_is_refused_without_being_read_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "plans.toml"
    with path.open("wb") as file:
        file.truncate(4 * 1024**3)  # 4 GiB, sparse: reading it whole would take seconds
    began = time.monotonic()
    with pytest.raises(PlanError) as refused:
        load_plans(path)
    assert time.monotonic() - began < 1
    assert str(refused.value) == f"the plan file {path} is over {MAX_FILE_BYTES} bytes"
    path.write_bytes(b"#" * MAX_FILE_BYTES)  # at the bound: read, and found without plans
    with pytest.raises(PlanError, match=r"^the plan file has no \[plans.NAME\] tables$"):
        load_plans(path)


def test_a_plan_file_that_is_not_toml_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text("[plans.pro\n")
    with pytest.raises(PlanError, match=f"^the plan file {re.escape(str(path))} is not TOML: "):
        load_plans(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(PlanError, match=f"^cannot read the plan file {re.escape(str(path))}: "):
        load_plans(path)
    missing = tmp_path / "none.toml"
    with pytest.raises(PlanError, match=f"^cannot read the plan file {re.escape(str(missing))}: "):
        load_plans(missing)


def test_claims_carry_the_plan_flat_and_trading_needs_the_trade_scope() -> None:
    plan = parse_plans(PRO).get("pro")
    common = {
        "issuer": "iss",
        "audience": "aud",
        "kind": "key",
        "principal": "k_1",
        "account_id": 7,
        "session": "",
        "plan": plan,
        "now": 1_000,
        "ttl_s": 300,
    }
    read_only = access_claims(scopes=("read",), **common).payload()  # type: ignore[arg-type]
    trader = access_claims(scopes=("trade", "read"), **common).payload()  # type: ignore[arg-type]
    assert read_only["trade"] is False
    assert trader["trade"] is True
    assert trader["scope"] == "read trade"
    assert trader["sub"] == "key:k_1"
    assert (trader["iat"], trader["nbf"], trader["exp"]) == (1_000, 1_000, 1_300)
    assert trader["instruments"] == "BINANCE:* *:BTCUSD"
    assert (trader["delay"], trader["history_days"], trader["rpm"]) == (DELAY_S, 30, 100)
    assert (trader["ws_subs"], trader["ws_conns"], trader["plan"]) == (5, 1, "pro")
    assert all(not isinstance(value, (dict, list)) for value in trader.values())
    assert read_only["jti"] != trader["jti"]


def test_a_plan_is_checked_when_built() -> None:
    with pytest.raises(PlanError, match="plan name"):
        Plan("Gold!", ("*",), "realtime", 1, 1, 1, 1, False)
