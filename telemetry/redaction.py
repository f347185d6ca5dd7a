"""Text with our secrets masked: the last guard before a line leaves the process.

Secrets are held as :class:`~core.secrets.Secret` and :class:`~core.secrets.DatabaseUrl`, which
never print; this catches what slips past that (a driver's error quoting a URL, a library
logging a request's headers, a token formatted into a message by mistake). Plain text work,
no I/O: :func:`redact` is what the log setup's filter (:mod:`telemetry.logs`) applies to every
record. What it recognises:

- an API key as presented, ``k_<20 hex>.<secret>``: the id stays, the secret is masked;
- a JWT (``eyJ...``, three base64url parts): masked whole;
- ``Bearer <token>`` (an ``Authorization`` header's value);
- a URL's password, ``scheme://user:password@host`` (a database URL, or any other);
- ``password=...`` (libpq keyword/value strings, query strings) and JSON or ``key=value``
  fields named like a secret (``password``, ``secret``, ``token``, ``refresh_token``,
  ``access_token``, ``api_key``);
- an opaque token such as a refresh token or a bare key secret (32 random bytes, URL-safe
  base64: 43 characters mixing upper case, lower case and digits).
"""

from __future__ import annotations

import re
from typing import Final

from core.secrets import MASK

_B64: Final = r"[A-Za-z0-9_-]"
_API_KEY: Final = re.compile(rf"\b(k_[0-9a-f]{{20}}\.){_B64}+")
_JWT: Final = re.compile(rf"\beyJ{_B64}*\.{_B64}+\.{_B64}*")
_BEARER: Final = re.compile(r"(\bBearer\s+)[^\s\"',;]+", re.IGNORECASE)
_URL_PASSWORD: Final = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@\"']*:)[^\s@/\"']+(@)")
_NAMES: Final = r"(?:[a-z_]*password|secret|token|refresh_token|access_token|api_key)"
_FIELD: Final = re.compile(
    rf"""(?P<key>"{_NAMES}"\s*:\s*|'{_NAMES}'\s*:\s*|\b{_NAMES}=)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s&,;}]+)""",
    re.IGNORECASE,
)
"""A field named like a secret: ``"name": value`` (JSON, a dict's repr) or ``name=value``."""
_OPAQUE: Final = re.compile(rf"(?<!{_B64}){_B64}{{43}}(?!{_B64})")
"""``secrets.token_urlsafe(32)``: a refresh token, a key's secret alone."""


def _field(found: re.Match[str]) -> str:
    value = found["value"]
    if value == MASK or value.strip("\"'") == MASK:
        return found[0]
    quote = value[0] if value[:1] in "\"'" and len(value) > 1 else ""
    return f"{found['key']}{quote}{MASK}{quote}"


def _opaque(found: re.Match[str]) -> str:
    """A 43-character run of base64url is a token when it mixes upper and lower case (a random
    one lacks either with a chance of about 1 in 5 billion; hex digests and snake_case ids
    have one case). Digits are not asked for: about 1 random token in 1,500 has none (a CI
    run printed one unmasked). A 43-character CamelCase word is masked too: harmless."""
    text = found[0]
    mixed = any(c.isupper() for c in text) and any(c.islower() for c in text)
    return MASK if mixed else text


def redact(text: str) -> str:
    """``text`` with every value that looks like one of our secrets replaced by ``***``."""
    if not text:
        return text
    text = _API_KEY.sub(lambda found: found[1] + MASK, text)
    text = _JWT.sub(MASK, text)
    text = _BEARER.sub(lambda found: found[1] + MASK, text)
    text = _URL_PASSWORD.sub(lambda found: f"{found[1]}{MASK}{found[2]}", text)
    text = _FIELD.sub(_field, text)
    return _OPAQUE.sub(_opaque, text)
