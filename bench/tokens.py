"""Access tokens in a service: how many the one verifier checks per second.

Contenders, on the same ``--tokens`` distinct tokens of the auth service, in one run:

- **decode only (baseline)**: the payload's claims read without checking anything (base64
  and JSON): what a service would pay if it trusted its callers;
- **verify, ES256** (:class:`access.verify.TokenVerifier` without memory): every call checks
  the signature, the algorithm, the key, the claims and the times;
- **verify, remembered**: the same verifier with an LRU of ``--tokens`` verified tokens, each
  token seen again (the common case: a client sends its token with every request for minutes);
  only the times are checked again;
- **issue, ES256** (:meth:`auth.signing.Keyring.sign`): the auth service's side, for scale.

Usage: ``python -m bench.tokens [--tokens N] [--repeat N] [--smoke]``.
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Sequence
from typing import Final

import msgspec

from access.verify import TokenVerifier
from auth.claims import AccessClaims, access_claims
from auth.plans import load_plans
from auth.signing import Keyring, generate_key
from bench.common import Figure, measure, print_table

PRO: Final = load_plans().get("pro")


def _claims(principal: int, now: int) -> AccessClaims:
    return access_claims(
        issuer="ganntec-auth", audience="ganntec", kind="account", principal=principal,
        account_id=principal, session=f"s{principal}", scopes=("read",), plan=PRO, now=now,
        ttl_s=300,
    )  # fmt: skip


def decode_only(tokens: Sequence[str]) -> int:
    """Claims read without any check (the baseline)."""
    read = 0
    for token in tokens:
        payload = token.split(".")[1]
        claims = msgspec.json.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        read += claims["acct"] >= 0
    return read


def verify_all(verifier: TokenVerifier, tokens: Sequence[str], now: int) -> int:
    return sum(verifier.verify(token, now).account_id is not None for token in tokens)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tokens", description=__doc__)
    parser.add_argument("--tokens", type=int, default=2_000, help="distinct tokens (2000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per contender (5)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (CI)")
    args = parser.parse_args(argv)
    count, repeat = (50, 1) if args.smoke else (args.tokens, args.repeat)
    now = int(time.time())
    ring = Keyring((generate_key(now - 60),), 300)
    tokens = [ring.sign(_claims(n, now)) for n in range(count)]
    verifier = TokenVerifier(ring.key_set(now))
    remembered = TokenVerifier(ring.key_set(now), cache_size=count)
    assert decode_only(tokens) == verify_all(verifier, tokens, now) == count
    baseline = measure("decode only (baseline)", count, lambda: decode_only(tokens), repeat)
    claims = _claims(1, now)
    figures: list[Figure] = [
        baseline,
        measure("verify, ES256", count, lambda: verify_all(verifier, tokens, now), repeat),
        measure(
            "verify, remembered (LRU)", count, lambda: verify_all(remembered, tokens, now), repeat
        ),
        measure("issue, ES256", count, lambda: [ring.sign(claims) for _ in range(count)], repeat),
    ]
    print_table(f"access tokens, {count} distinct", figures, baseline, "tokens/s")


if __name__ == "__main__":
    main()
