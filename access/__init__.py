"""How any service checks an access token of the auth service (``docs/auth.md``).

``access`` imports ``core`` only: services import it, never ``auth``. Everything here is
sans-I/O except the key set's fetch shell (:mod:`access.jwks`):

- :mod:`access.grant`: :class:`~access.grant.Grant`, what a verified token (or the anonymous
  plan) lets its holder do;
- :mod:`access.keyset`: :class:`~access.keyset.KeySet`, the one JWKS parser;
- :mod:`access.verify`: :class:`~access.verify.TokenVerifier`, the one way to verify;
- :mod:`access.denylist`: :class:`~access.denylist.Denylist`, revocations from ``auth.events``;
- :mod:`access.jwks`: :class:`~access.jwks.JwksCache`, the key set fetched and kept.
"""
