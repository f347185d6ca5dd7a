"""Accounts' credentials: email addresses and passwords, hashed with Argon2id.

``argon2-cffi``'s defaults (RFC 9106's second recommended set: 64 MiB, 3 passes) are kept.
A login to an unknown address verifies against a dummy hash, so that it takes as long as a
wrong password and the answer's timing does not tell which addresses have accounts.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.secrets import Secret

MIN_PASSWORD_CHARS: Final = 10
MAX_PASSWORD_CHARS: Final = 256
MAX_EMAIL_CHARS: Final = 254
CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
"""A control character: in no address (and a NUL is in no PostgreSQL text)."""
_EMAIL: Final = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    return _hasher().hash("not a password of anyone")


def check_email(email: str) -> str:
    """The address in canonical form (trimmed, lower case), or ``ValueError``."""
    canonical = email.strip().lower()
    if CONTROL.search(canonical):
        raise ValueError("an email address has no control characters")
    if len(canonical) > MAX_EMAIL_CHARS or _EMAIL.fullmatch(canonical) is None:
        raise ValueError(
            f"an email address looks like name@example.org, at most {MAX_EMAIL_CHARS} characters"
        )
    return canonical


def check_password(password: Secret) -> Secret:
    """The password if its length is within bounds, else ``ValueError``."""
    if not MIN_PASSWORD_CHARS <= len(password.reveal()) <= MAX_PASSWORD_CHARS:
        raise ValueError(f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")
    return password


def hash_password(password: Secret) -> str:
    """The Argon2id hash to store (it carries its own salt and parameters)."""
    return _hasher().hash(password.reveal())


def verify_password(stored: str | None, password: Secret) -> bool:
    """Whether ``password`` matches the ``stored`` hash; with no hash (no such account), the
    same work is done against a dummy and the answer is False."""
    try:
        return _hasher().verify(stored or _dummy_hash(), password.reveal()) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
