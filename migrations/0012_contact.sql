-- The contact form (product rules §14): a holder's messages (data changes, lost e-mails, complaints, other), each
-- tied to the account and optionally to one of its orders, with a number the holder can quote (from the
-- `counters` row `contact`), and the operator's answer, which closes it. Times are integer seconds, ids text.
CREATE TABLE contact_messages (
    id          TEXT PRIMARY KEY,
    number      BIGINT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users (id),
    order_id    TEXT REFERENCES orders (id),
    topic       TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,
    answer      TEXT,
    answered_by TEXT,
    created_at  BIGINT NOT NULL,
    answered_at BIGINT
);
CREATE INDEX contact_messages_user ON contact_messages (user_id, created_at);
CREATE INDEX contact_messages_state ON contact_messages (state, created_at);
