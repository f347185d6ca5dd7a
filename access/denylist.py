"""Revocations from ``auth.events``, as a service applies them to the tokens it sees.

:class:`Denylist` is sans-I/O: :meth:`~Denylist.apply` an event, then ask
:meth:`~Denylist.refuses` of a grant. A token is refused while its key (``key:<id>``), its
session (``session:<sid>``) or its account (``account:<id>``) has an entry that has not yet
reached its ``until`` (when every token the revocation concerns has expired anyway); entries
past it are dropped. Plan changes (``entitlements-changed``) revoke nothing: they are kept
as the account's new plan claims (:meth:`~Denylist.plan_of`) until their ``until``.
"""

from __future__ import annotations

from typing import Final

from access.grant import Grant
from core.auth_events import AuthEvent, PlanClaims

PRUNE_EVERY_S: Final = 60


class Denylist:
    def __init__(self) -> None:
        self._until: dict[str, int] = {}
        self._plans: dict[int, tuple[PlanClaims, int]] = {}
        self._pruned_at = 0

    def __len__(self) -> int:
        return len(self._until)

    def apply(self, event: AuthEvent, now: int) -> None:
        """Take ``event`` in (a repeat changes nothing)."""
        self._prune(now)
        if event.until <= now:
            return
        if event.kind == "entitlements-changed":
            if event.claims is not None:
                self._plans[event.account_id] = (event.claims, event.until)
            return
        self._until[event.subject] = max(event.until, self._until.get(event.subject, 0))

    def refuses(self, grant: Grant, now: int) -> bool:
        """Whether ``grant``'s key, session or account is revoked at ``now``."""
        if grant.is_anonymous:
            return False
        subjects = [grant.subject]
        if grant.session:
            subjects.append(f"session:{grant.session}")
        if grant.account_id is not None:
            subjects.append(f"account:{grant.account_id}")
        return any(now < self._until.get(subject, 0) for subject in subjects)

    def plan_of(self, grant: Grant, now: int) -> Grant:
        """``grant`` on its account's newest plan when that changed after it was issued."""
        changed = None if grant.account_id is None else self._plans.get(grant.account_id)
        if changed is None or now >= changed[1]:
            return grant
        return grant.with_plan(changed[0])

    def _prune(self, now: int) -> None:
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        self._until = {subject: until for subject, until in self._until.items() if now < until}
        self._plans = {key: entry for key, entry in self._plans.items() if now < entry[1]}
