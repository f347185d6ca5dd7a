"""The auth service's use cases: the pure rules of the other modules around the store.

Every method takes plain values and returns plain values or raises
:class:`~auth.problems.AuthError`; the routes (:mod:`auth.app`) only parse and answer. The
database being away surfaces as :class:`~storage.unavailable.DatabaseUnavailableError`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from access.grant import Grant
from access.verify import TokenRefused, TokenVerifier
from auth.api_keys import (
    KEY_ID,
    IssuedKey,
    check_name,
    check_scopes,
    new_key,
    secret_matches,
    split_key,
)
from auth.claims import SCOPES, PrincipalKind, access_claims
from auth.families import MAX_TOKEN_CHARS, Outcome, RefreshFamily, new_token, token_hash
from auth.passwords import CONTROL, check_email, check_password, hash_password, verify_password
from auth.plans import Plan
from auth.problems import AuthError, too_many_attempts
from auth.settings import AuthSettings
from auth.signing import LEEWAY_S, Keyring, SigningKey, generate_key
from auth.store import Account, AccountExistsError, ApiKey, AuthStore
from auth.throttle import LoginThrottle
from core.secrets import Secret
from storage.unavailable import DatabaseUnavailableError


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: Secret
    expires_in: int
    plan: str


@dataclass(frozen=True, slots=True)
class Session:
    """What a login or a refresh hands back."""

    access: AccessToken
    refresh_token: Secret
    refresh_expires_in: int


@dataclass(frozen=True, slots=True)
class Caller:
    """The account behind a valid bearer token."""

    account: Account
    grant: Grant


class AuthService:
    def __init__(
        self, store: AuthStore, settings: AuthSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock
        self._throttle = LoginThrottle(settings.login_rates)
        self._keyring: Keyring | None = None
        self._verifier: tuple[Keyring, tuple[str, ...], TokenVerifier] | None = None
        self._keys_read_at = 0.0
        self._keys_lock = asyncio.Lock()
        self.revoked = asyncio.Event()
        """Set after each change recorded for ``auth.events`` (the relay waits on it)."""

    def now(self) -> int:
        return int(self._clock())

    # -- signing keys ---------------------------------------------------------------------

    async def start(self) -> None:
        """Make the first signing key when there is none, and read the keys."""
        await self.store.add_signing_key(self._new_key, retire_others=False, forget_before=0)
        await self.keyring(fresh=True)

    async def rotate_keys(self, lead_s: int = 0) -> SigningKey:
        """A new signing key, published now, signing in ``lead_s`` seconds; the live key
        retires then. With no key signing now, the new one signs at once."""
        current = await self.keyring(fresh=True)
        if current.signer(self.now()) is None:
            lead_s = 0
        key = await self.store.add_signing_key(
            lambda: generate_key(self.now(), lead_s),
            retire_others=True,
            forget_before=self.now() - self._keep_s(),
        )
        assert key is not None
        await self.keyring(fresh=True)
        return key

    def _new_key(self) -> SigningKey:
        return generate_key(self.now())

    def _keep_s(self) -> int:
        return self.settings.access_ttl_s + LEEWAY_S

    async def keyring(self, *, fresh: bool = False) -> Keyring:
        """The keys, read again when older than ``key_reload_s`` (or when ``fresh``); while
        the database is away, the keys read last."""
        async with self._keys_lock:
            stale = self._clock() - self._keys_read_at >= self.settings.key_reload_s
            if self._keyring is None or stale or fresh:
                try:
                    keys = await self.store.signing_keys()
                except DatabaseUnavailableError:
                    if self._keyring is None or fresh:
                        raise
                    return self._keyring  # the keys known: the JWKS and checks carry on
                self._keyring = Keyring(tuple(keys), self.settings.access_ttl_s)
                self._keys_read_at = self._clock()
            return self._keyring

    async def verifier(self) -> TokenVerifier:
        """The one verifier of :mod:`access` over the keys published now (made again when
        the keys or the published set change)."""
        ring, now = await self.keyring(), self.now()
        kids = tuple(key.kid for key in ring.published(now))
        if self._verifier is None or self._verifier[:2] != (ring, kids):
            verifier = TokenVerifier(
                ring.key_set(now), issuer=self.settings.issuer, audience=self.settings.audience
            )
            self._verifier = (ring, kids, verifier)
        return self._verifier[2]

    async def jwks(self) -> dict[str, Any]:
        return (await self.keyring()).jwks(self.now())

    async def _issue(
        self, kind: PrincipalKind, principal: str | int, account: Account, session: str,
        scopes: tuple[str, ...],
    ) -> AccessToken:  # fmt: skip
        settings = self.settings
        plan = self._plan_of(account)
        claims = access_claims(
            issuer=settings.issuer, audience=settings.audience, kind=kind, principal=principal,
            account_id=account.account_id, session=session, scopes=scopes, plan=plan,
            now=self.now(), ttl_s=settings.access_ttl_s,
        )  # fmt: skip
        token = (await self.keyring()).sign(claims)
        return AccessToken(Secret(token), settings.access_ttl_s, plan.name)

    def _plan_of(self, account: Account) -> Plan:
        plans = self.settings.plans
        return plans.plans.get(account.plan) or plans.get(plans.signup)

    # -- accounts and sessions -------------------------------------------------------------

    async def signup(self, email: str, password: Secret, address: str) -> Account:
        if not self.settings.signup:
            raise AuthError("signup-disabled", "accounts are made by an administrator here")
        self._check_attempt(f"signup {email}", address)  # per address; accounts apart from logins
        email, password = _credentials(email, password)
        return await self.create_account(email, password, self.settings.plans.signup)

    async def create_account(self, email: str, password: Secret, plan: str) -> Account:
        email, password = _credentials(email, password)
        if plan not in self.settings.plans.plans:
            raise AuthError("invalid-request", f"there is no plan {plan!r}")
        hashed = await asyncio.to_thread(hash_password, password)
        try:
            return await self.store.create_account(email, hashed, plan)
        except AccountExistsError:
            raise AuthError("account-exists", "an account with this email exists") from None

    async def login(self, email: str, password: Secret, address: str) -> Session:
        email = email.strip().lower()[:320]
        self._check_attempt(email, address)
        if CONTROL.search(email):  # no account has one: refused before the database
            raise AuthError("invalid-credentials", "the email or the password is wrong")
        account = await self.store.account_by_email(email)
        stored = None if account is None else account.password_hash
        if not await asyncio.to_thread(verify_password, stored, password) or account is None:
            raise AuthError("invalid-credentials", "the email or the password is wrong")
        if account.disabled:
            raise AuthError("account-disabled", "this account is disabled")
        self._throttle.succeeded(email)
        token = new_token()
        family = RefreshFamily.start(
            uuid.uuid4().hex, account.account_id, token_hash(token), self.now(),
            self.settings.refresh,
        )  # fmt: skip
        await self.store.start_family(family)
        return await self._session(account, family, token)

    def _check_attempt(self, email: str, address: str) -> None:
        wait = self._throttle.attempt(email, address, self._clock())
        if wait > 0:
            raise too_many_attempts(wait)

    async def _session(self, account: Account, family: RefreshFamily, token: Secret) -> Session:
        access = await self._issue("account", account.account_id, account, family.family_id, SCOPES)
        return Session(access, token, family.token_expires_at - self.now())

    async def refresh(self, presented: Secret) -> Session:
        following = new_token()
        found = await self.store.use_refresh(
            _refresh_hash(presented), token_hash(following), self.now(), self.settings.refresh,
            self._until(),
        )  # fmt: skip
        if found is None:
            raise AuthError("invalid-refresh-token", "the refresh token is unknown")
        family, outcome = found
        if outcome is Outcome.REUSED:
            self.revoked.set()
            raise AuthError(
                "refresh-token-reused",
                "this refresh token was used before: the session is revoked; log in again",
            )
        if outcome is not Outcome.ROTATED:
            raise AuthError(
                "invalid-refresh-token", f"the refresh token's session is {outcome.value}"
            )
        account = await self.store.account(family.account_id)
        if account is None or account.disabled:
            raise AuthError("account-disabled", "this account is disabled")
        return await self._session(account, family, following)

    async def logout(self, presented: Secret) -> None:
        family = await self.store.end_family(_refresh_hash(presented), "logout", self._until())
        if family is None:
            raise AuthError("invalid-refresh-token", "the refresh token is unknown")
        self.revoked.set()

    def _until(self) -> int:
        """When every access token issued until now has expired."""
        return self.now() + self.settings.access_ttl_s + LEEWAY_S

    async def caller(self, authorization: str | None) -> Caller:
        """The account of a ``Bearer`` access token of an account's live session."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token or len(token) > 4096:
            raise AuthError("invalid-token", "send an access token: Authorization: Bearer ...")
        try:
            grant = (await self.verifier()).verify(token.strip(), self.now())
        except TokenRefused as refused:
            raise AuthError("invalid-token", refused.message) from None
        if not grant.subject.startswith("account:") or grant.account_id is None:
            raise AuthError("account-token-required", "API keys are managed by their account")
        account = await self.store.account(grant.account_id)
        if account is None or account.disabled:
            raise AuthError("account-disabled", "this account is disabled")
        if not await self.store.family_live(grant.session):
            raise AuthError("invalid-token", "the token's session has ended")
        return Caller(account, grant)

    # -- API keys -------------------------------------------------------------------------

    async def create_key(
        self, account: Account, name: str, scopes: list[str]
    ) -> tuple[ApiKey, IssuedKey]:
        try:
            name, checked = check_name(name), check_scopes(scopes)
        except ValueError as exc:
            raise AuthError("invalid-request", str(exc)) from None
        issued = new_key()
        key = await self.store.create_key(
            account.account_id, issued.key_id, name, checked, token_hash(issued.secret)
        )
        return key, issued

    async def rotate_key(self, key_id: str, account: Account | None) -> tuple[ApiKey, IssuedKey]:
        issued = new_key(_key_id(key_id))
        owner = None if account is None else account.account_id
        key = await self.store.rotate_key(key_id, token_hash(issued.secret), owner)
        if key is None:
            raise AuthError("not-found", f"there is no live key {key_id}")
        return key, issued

    async def revoke_key(self, key_id: str, account: Account | None) -> ApiKey:
        owner = None if account is None else account.account_id
        key = await self.store.revoke_key(_key_id(key_id), self._until(), owner)
        if key is None:
            raise AuthError("not-found", f"there is no key {key_id}")
        self.revoked.set()
        return key

    async def key_token(self, presented: Secret) -> AccessToken:
        """An access token for a bot's API key."""
        split = split_key(presented)
        if split is None:
            raise AuthError("invalid-api-key", "an API key looks like k_<20 hex>.<secret>")
        key_id, secret = split
        key = await self.store.key(key_id)
        if key is None or not secret_matches(secret, key.secret_hash) or key.revoked:
            raise AuthError("invalid-api-key", "the API key is unknown, revoked or rotated")
        account = await self.store.account(key.account_id)
        if account is None or account.disabled:
            raise AuthError("account-disabled", "the key's account is disabled")
        return await self._issue("key", key.key_id, account, "", key.scopes)

    # -- administration -------------------------------------------------------------------

    async def set_plan(self, email: str, plan: str) -> Account:
        if plan not in self.settings.plans.plans:
            raise AuthError("invalid-request", f"there is no plan {plan!r}")
        account = await self.store.set_plan(email.strip().lower(), plan, self._until())
        if account is None:
            raise AuthError("not-found", f"there is no account {email}")
        self.revoked.set()
        return account

    async def disable_account(self, email: str) -> Account:
        account = await self.store.disable_account(email.strip().lower(), self._until())
        if account is None:
            raise AuthError("not-found", f"there is no account {email}")
        self.revoked.set()
        return account


def _credentials(email: str, password: Secret) -> tuple[str, Secret]:
    try:
        return check_email(email), check_password(password)
    except ValueError as exc:
        raise AuthError("invalid-request", str(exc)) from None


def _key_id(key_id: str) -> str:
    """``key_id`` if it is one (a path's text may be anything, a NUL too), else not found."""
    if KEY_ID.fullmatch(key_id) is None:
        raise AuthError("not-found", "there is no such key: a key id looks like k_<20 hex>")
    return key_id


def _refresh_hash(presented: Secret) -> bytes:
    if not 0 < len(presented.reveal()) <= MAX_TOKEN_CHARS:
        raise AuthError("invalid-refresh-token", "the refresh token is malformed")
    return token_hash(presented)
