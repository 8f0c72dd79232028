-- The certificate lifecycle: identification sessions, verified identities, bans, rekey requests, reminders sent,
-- the signed issuance evidence, and invoice numbering. Times are integer seconds, ids text, binary data base64.

-- One remote identification of an order (a resubmission is a new row with attempt + 1). The link is a one-time
-- secret kept as a hash. document_key / personal_key are SHA-256 digests of the document (country, type, series,
-- number) and of the personal numeric code, so that the same document on two accounts is found without keeping a
-- second copy of the number.
CREATE TABLE identity_sessions (
    id              TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL REFERENCES orders (id),
    user_id         TEXT NOT NULL REFERENCES users (id),
    state           TEXT NOT NULL,
    attempt         BIGINT NOT NULL,
    link_hash       TEXT NOT NULL UNIQUE,
    link_expires_at BIGINT NOT NULL,
    document        TEXT,
    document_key    TEXT,
    personal_key    TEXT,
    consents        TEXT,
    phone           TEXT,
    flagged         BIGINT NOT NULL DEFAULT 0,
    fake            BIGINT NOT NULL DEFAULT 0,
    reason          TEXT,
    reviewer        TEXT,
    created_at      BIGINT NOT NULL,
    submitted_at    BIGINT,
    decided_at      BIGINT
);
CREATE INDEX identity_sessions_order ON identity_sessions (order_id, attempt);
CREATE INDEX identity_sessions_document ON identity_sessions (document_key);
CREATE INDEX identity_sessions_personal ON identity_sessions (personal_key);
CREATE INDEX identity_sessions_state ON identity_sessions (state, submitted_at);

-- The identity an operator accepted: what the next certificate's subject says.
CREATE TABLE identities (
    user_id         TEXT PRIMARY KEY REFERENCES users (id),
    given_name      TEXT NOT NULL,
    surname         TEXT NOT NULL,
    personal_number TEXT,
    country         TEXT NOT NULL,
    document        TEXT NOT NULL,
    phone           TEXT,
    session_id      TEXT NOT NULL,
    verified_at     BIGINT NOT NULL
);

CREATE TABLE user_bans (
    user_id    TEXT PRIMARY KEY REFERENCES users (id),
    until      BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A rekey request of a paid rekey order. The document copy is kept base64 (≤ 3 MB by default) with its digest.
-- A scheduler claims an approved request (claimed_at) before it issues the successor.
CREATE TABLE rekey_requests (
    id            TEXT PRIMARY KEY,
    order_id      TEXT NOT NULL UNIQUE REFERENCES orders (id),
    user_id       TEXT NOT NULL REFERENCES users (id),
    credential_id TEXT NOT NULL REFERENCES credentials (id),
    state         TEXT NOT NULL,
    document      TEXT,
    photo         TEXT,
    photo_type    TEXT,
    photo_sha256  TEXT,
    privacy_ack_at BIGINT NOT NULL,
    submitted_at  BIGINT,
    reason        TEXT,
    reviewer      TEXT,
    issue_at      BIGINT,
    claimed_at    BIGINT,
    successor_id  TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX rekey_requests_state ON rekey_requests (state, issue_at);

-- A reminder sent: the primary key makes "once each, even with two instances" a unique-constraint question.
CREATE TABLE reminders (
    credential_id TEXT NOT NULL REFERENCES credentials (id),
    days          BIGINT NOT NULL,
    sent_at       BIGINT NOT NULL,
    PRIMARY KEY (credential_id, days)
);

-- The holder's acceptance of the issuance terms, signed (CMS, detached) by the new key.
CREATE TABLE issuance_evidence (
    credential_id TEXT PRIMARY KEY REFERENCES credentials (id),
    order_id      TEXT NOT NULL REFERENCES orders (id),
    terms_version TEXT NOT NULL,
    terms_sha256  TEXT NOT NULL,
    cms           TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Gap-free counters (invoice numbers per year).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

ALTER TABLE orders ADD COLUMN credential_id TEXT;
ALTER TABLE orders ADD COLUMN frozen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN paid_at BIGINT;
ALTER TABLE orders ADD COLUMN payment_ref TEXT;
ALTER TABLE orders ADD COLUMN invoice_number TEXT;
ALTER TABLE orders ADD COLUMN refunded_bani BIGINT;
CREATE UNIQUE INDEX orders_invoice_number ON orders (invoice_number);
CREATE INDEX orders_state ON orders (state, kind);
