-- The auth service's tables (auth/, docs/auth.md): accounts and their plan, API keys,
-- refresh-token families, the signing keys of access tokens, and the revocations published
-- on auth.events. Times of the token machinery are timestamptz; the service works in UNIX
-- seconds and converts at its store (auth/store.py).

-- People. The email is stored in canonical form (trimmed, lower case); the password as an
-- Argon2id hash (its own salt and parameters inside). The plan names one of the plan file's
-- plans (plans are data, not rows: an account whose plan the file no longer has gets none).
CREATE TABLE auth_accounts (
    account_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text        NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
    password_hash   text        NOT NULL,
    plan            text        NOT NULL,
    plan_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);
COMMENT ON TABLE auth_accounts IS 'People who sign in with an email and a password (docs/auth.md).';

-- Bots' keys: a public id and the SHA-256 of a 256-bit secret (the secret is shown once).
CREATE TABLE auth_api_keys (
    key_id      text        PRIMARY KEY CHECK (key_id ~ '^k_[0-9a-f]{20}$'),
    account_id  bigint      NOT NULL REFERENCES auth_accounts ON DELETE CASCADE,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    scopes      text[]      NOT NULL,
    secret_hash bytea       NOT NULL CHECK (length(secret_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    rotated_at  timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX auth_api_keys_account ON auth_api_keys (account_id);

-- Sessions: one refresh-token family per login. current_hash is the token that may be used
-- next; every token ever issued to the family is in auth_refresh_tokens, so that a spent one
-- handed in again finds its family (and revokes it).
CREATE TABLE auth_refresh_families (
    family_id         text        PRIMARY KEY,
    account_id        bigint      NOT NULL REFERENCES auth_accounts ON DELETE CASCADE,
    current_hash      bytea       NOT NULL,
    started_at        timestamptz NOT NULL,
    token_expires_at  timestamptz NOT NULL,
    family_expires_at timestamptz NOT NULL,
    revoked           text
);
CREATE INDEX auth_refresh_families_account ON auth_refresh_families (account_id);

CREATE TABLE auth_refresh_tokens (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id  text        NOT NULL REFERENCES auth_refresh_families ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auth_refresh_tokens_family ON auth_refresh_tokens (family_id);

-- ES256 key pairs. A key is published from created_at, signs from signs_from (a rotation's
-- lead time) until retired_at, and stays published until the tokens it signed have expired;
-- then it is deleted. The private key is PKCS#8 PEM: this table is as secret as the
-- service's own configuration.
CREATE TABLE auth_signing_keys (
    kid         text        PRIMARY KEY,
    private_pem text        NOT NULL,
    public_pem  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    signs_from  timestamptz NOT NULL,
    retired_at  timestamptz,
    CHECK (signs_from >= created_at)
);

-- Revocations and entitlement changes, an outbox of auth.events: written in the transaction
-- of the change, published by the running service (published_at set once the bus took it).
-- until: when every token the revocation concerns has expired (the edge may forget it then).
CREATE TABLE auth_revocations (
    revocation_id bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text        NOT NULL,
    subject       text        NOT NULL,
    account_id    bigint      NOT NULL,
    plan          text,
    reason        text        NOT NULL DEFAULT '',
    at            timestamptz NOT NULL DEFAULT now(),
    until         timestamptz NOT NULL,
    published_at  timestamptz
);
CREATE INDEX auth_revocations_unpublished ON auth_revocations (revocation_id)
    WHERE published_at IS NULL;
