"""The auth service: accounts, API keys, access and refresh tokens, entitlements.

The decisions are plain objects without I/O (:mod:`auth.plans`, :mod:`auth.claims`,
:mod:`auth.families`, :mod:`auth.throttle`, :mod:`auth.api_keys`, :mod:`auth.signing`); the
store (:mod:`auth.store`) and the Starlette app (:mod:`auth.app`) are thin shells around
them. See ``docs/auth.md``.
"""
