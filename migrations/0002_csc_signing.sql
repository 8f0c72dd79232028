-- CSC signing: bearer tokens, signature activation data (SAD) bound to hashes, and the signature ledger.

-- Access and refresh tokens, stored as SHA-256 hex of the random token.
CREATE TABLE access_tokens (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    kind         TEXT NOT NULL,
    refresh_hash TEXT,
    expires_at   BIGINT NOT NULL,
    revoked      BIGINT NOT NULL DEFAULT 0,
    client       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX access_tokens_refresh ON access_tokens (refresh_hash);

-- A SAD authorises `remaining` more signatures with one credential, over exactly the hashes in sad_hashes.
CREATE TABLE sads (
    sad_hash      TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL REFERENCES credentials (id),
    user_id       TEXT NOT NULL REFERENCES users (id),
    hash_algo     TEXT,
    remaining     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    CHECK (remaining >= 0)
);

CREATE TABLE sad_hashes (
    sad_hash  TEXT NOT NULL REFERENCES sads (sad_hash),
    digest    TEXT NOT NULL,
    uses_left BIGINT NOT NULL,
    PRIMARY KEY (sad_hash, digest),
    CHECK (uses_left >= 0)
);

-- One row per signature returned to a client, written in the transaction that debits the quota.
CREATE TABLE signatures (
    id            TEXT PRIMARY KEY,
    credential_id TEXT NOT NULL REFERENCES credentials (id),
    user_id       TEXT NOT NULL REFERENCES users (id),
    sad_hash      TEXT NOT NULL,
    digest        TEXT NOT NULL,
    hash_algo     TEXT NOT NULL,
    sign_algo     TEXT NOT NULL,
    signature     TEXT NOT NULL,
    client        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX signatures_credential ON signatures (credential_id, created_at);
