-- Portable SQL for SQLite and PostgreSQL: ids and hashes as TEXT, times as BIGINT Unix seconds, flags as BIGINT,
-- binary values as base64 TEXT.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    given_name    TEXT NOT NULL,
    surname       TEXT NOT NULL,
    phone         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL,
    two_factor    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE totp_pairings (
    user_id         TEXT PRIMARY KEY REFERENCES users (id),
    seed_wrapped    TEXT NOT NULL,
    algorithm       TEXT NOT NULL,
    digits          BIGINT NOT NULL,
    period          BIGINT NOT NULL,
    status          TEXT NOT NULL,
    last_used_step  BIGINT NOT NULL DEFAULT 0,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    created_at      BIGINT NOT NULL,
    activated_at    BIGINT
);

CREATE TABLE ca_keys (
    role       TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    key_spec   TEXT NOT NULL,
    cert_der   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    not_after  BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE certificates (
    serial            TEXT PRIMARY KEY,
    issuer_role       TEXT NOT NULL,
    credential_id     TEXT,
    subject           TEXT NOT NULL,
    cert_der          TEXT NOT NULL,
    not_before        BIGINT NOT NULL,
    not_after         BIGINT NOT NULL,
    status            TEXT NOT NULL,
    revoked_at        BIGINT,
    revocation_reason TEXT,
    created_at        BIGINT NOT NULL
);
CREATE INDEX certificates_credential ON certificates (credential_id);

CREATE TABLE credentials (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    key_spec    TEXT NOT NULL,
    key_label   TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX credentials_user ON credentials (user_id);

CREATE TABLE quotas (
    credential_id TEXT PRIMARY KEY REFERENCES credentials (id),
    package_id    BIGINT NOT NULL,
    total         BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    CHECK (used >= 0 AND used <= total)
);

-- Audit rows are appended freely (no lock on the signing path) and chained afterwards by the sealer, which gives
-- each row its place (seq) and its hash over the previous one. audit_head holds the end of the chain.
CREATE TABLE audit_events (
    id        TEXT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    client    TEXT NOT NULL,
    details   TEXT NOT NULL,
    seq       BIGINT UNIQUE,
    prev_hash TEXT,
    hash      TEXT
);
CREATE INDEX audit_events_unsealed ON audit_events (at, id) WHERE seq IS NULL;

CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY,
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
