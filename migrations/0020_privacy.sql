-- Privacy in practice (product rules §9, §14): the contact form without a login, legal holds and the daily
-- retention run. Portable SQL (SQLite and PostgreSQL); times are integer seconds, ids text.

-- A contact message may now come from someone who cannot log in (a lost phone, a locked account, a data-protection
-- request): `user_id` becomes optional and such a message names its sender. SQLite cannot drop a NOT NULL, so the
-- table is rebuilt (no table refers to it).
CREATE TABLE contact_messages_v2 (
    id           TEXT PRIMARY KEY,
    number       BIGINT NOT NULL UNIQUE,
    user_id      TEXT REFERENCES users (id),
    order_id     TEXT REFERENCES orders (id),
    topic        TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL,
    answer       TEXT,
    answered_by  TEXT,
    created_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    sender_name  TEXT,
    sender_email TEXT,
    sender_lang  TEXT
);
INSERT INTO contact_messages_v2 (id, number, user_id, order_id, topic, body, state, answer, answered_by, created_at,
                                 answered_at)
SELECT id, number, user_id, order_id, topic, body, state, answer, answered_by, created_at, answered_at
FROM contact_messages;
DROP TABLE contact_messages;
ALTER TABLE contact_messages_v2 RENAME TO contact_messages;
CREATE INDEX contact_messages_user ON contact_messages (user_id, created_at);
CREATE INDEX contact_messages_state ON contact_messages (state, created_at);
CREATE INDEX contact_messages_sender ON contact_messages (sender_email, created_at);

-- A message written without a login waits here until its sender types the code e-mailed to the address given:
-- nobody can flood the operators from addresses they do not read. Only the code's hash is stored; the row goes
-- when confirmed or, expired, with the clean-up.
CREATE TABLE contact_pending (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    code_hash  TEXT NOT NULL,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL,
    lang       TEXT NOT NULL,
    topic      TEXT NOT NULL,
    body       TEXT NOT NULL,
    client     TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX contact_pending_expiry ON contact_pending (expires_at);

-- A legal hold stops the retention run for a disputed record (`kind`: `user`, `order` or `contact_message`) until
-- an operator releases it; both steps are audited and keep who, when and why.
CREATE TABLE legal_holds (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    record_id      TEXT NOT NULL,
    reason         TEXT NOT NULL,
    placed_by      TEXT NOT NULL,
    placed_at      BIGINT NOT NULL,
    released_by    TEXT,
    released_at    BIGINT,
    release_reason TEXT
);
CREATE INDEX legal_holds_record ON legal_holds (kind, record_id, released_at);

-- The daily retention run: the instance whose insert of the day's row succeeds runs it, so several instances do
-- the work once a day.
CREATE TABLE retention_runs (
    day        BIGINT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    report     TEXT
);

-- What the retention run has already made anonymous, so it is not done twice and the export can say so.
ALTER TABLE orders ADD COLUMN financial_erased_at BIGINT;
ALTER TABLE credentials ADD COLUMN evidence_erased_at BIGINT;

-- The audit trail past its retention is deleted from its start: the chain then starts at the last deleted row,
-- whose sequence number and hash are kept here (`parafa admin audit verify` starts from them), so the rows kept
-- still prove that none of them was edited, inserted or deleted. Before any deletion: the chain's genesis.
CREATE TABLE audit_pruned (
    id   BIGINT PRIMARY KEY,
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_pruned (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
