-- Accounts: the notifications outbox, enrolment and the other multi-step flows, one-time codes, browser sessions,
-- login throttling and consents.

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    medium          TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by      TEXT,
    claimed_until   BIGINT,
    sent_at         BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

ALTER TABLE users ADD COLUMN lang TEXT NOT NULL DEFAULT 'ro';
ALTER TABLE users ADD COLUMN privacy_ack_at BIGINT;
ALTER TABLE users ADD COLUMN privacy_version TEXT;
-- 2FA set-up postponed: 'date' (until two_factor_until), 'next_login' or 'never' (both only until the mandatory date).
ALTER TABLE users ADD COLUMN two_factor_postponed TEXT;
ALTER TABLE users ADD COLUMN two_factor_until BIGINT;

-- A multi-step flow reached by a link or a session: enrolment (invitation), TOTP pairing, password recovery, phone
-- change. token_hash identifies link-based flows; attempts counts failed steps (three kill the flow).
CREATE TABLE flows (
    id         TEXT PRIMARY KEY,
    token_hash TEXT UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id),
    kind       TEXT NOT NULL,
    stage      TEXT NOT NULL,
    data       TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX flows_user ON flows (user_id, kind);

-- One-time codes sent by SMS or e-mail, stored as hashes.
CREATE TABLE one_time_codes (
    id          TEXT PRIMARY KEY,
    flow_id     TEXT NOT NULL REFERENCES flows (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    purpose     TEXT NOT NULL,
    destination TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX one_time_codes_sent ON one_time_codes (user_id, purpose, created_at);

-- Browser sessions (cookie = random token; stored as its hash).
CREATE TABLE web_sessions (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    remember_me BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked     BIGINT NOT NULL DEFAULT 0,
    client      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- Failed logins, for throttling per account and per client address.
CREATE TABLE login_failures (
    id     TEXT PRIMARY KEY,
    email  TEXT NOT NULL,
    client TEXT NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX login_failures_email ON login_failures (email, at);
CREATE INDEX login_failures_client ON login_failures (client, at);

-- Consents and acknowledgements, with the text version and time (product rules §9).
CREATE TABLE consents (
    id      TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    kind    TEXT NOT NULL,
    version TEXT NOT NULL,
    granted BIGINT NOT NULL,
    client  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX consents_user ON consents (user_id, kind, at);
