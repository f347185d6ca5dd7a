"""The token benchmark runs on a few tokens and prints every contender (figures unchecked);
its contenders read the same tokens."""

from __future__ import annotations

import time

import pytest

from access.verify import TokenVerifier
from bench import tokens as bench
from tests.support import tokens


def test_the_token_benchmark_prints_every_contender(capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(["--smoke"])
    out = capsys.readouterr().out
    for contender in ("decode only (baseline)", "verify, ES256", "verify, remembered", "issue"):
        assert contender in out


def test_the_baseline_and_the_verifier_read_the_same_tokens() -> None:
    now = int(time.time())
    made = [tokens.issue(now=now, account_id=n) for n in range(5)]
    verifier = TokenVerifier(tokens.keyset())
    assert bench.decode_only(made) == bench.verify_all(verifier, made, now) == 5
