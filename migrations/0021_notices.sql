-- Issue 19, notifications #4 and #6.
--
-- The files an e-mail carries (the order-accepted e-mail's order note, terms and order conditions), queued in the
-- same transaction as their message and deleted once it has been handed over: the outbox keeps no copy of a
-- document after sending.
CREATE TABLE outbox_attachments (
    outbox_id    TEXT NOT NULL REFERENCES outbox (id),
    n            BIGINT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content      BYTEA NOT NULL,
    PRIMARY KEY (outbox_id, n)
);

-- The session-code SMS an identification provider asked Parafa to send during a video session: how many and when
-- the last, so that a provider (or whoever holds a session link) cannot turn Parafa into an SMS cannon.
ALTER TABLE identity_sessions ADD COLUMN sms_sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE identity_sessions ADD COLUMN sms_last_at BIGINT;
