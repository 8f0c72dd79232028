-- Payment gateway callbacks, one row per gateway event (a replayed event finds its row and changes nothing).
CREATE TABLE payment_events (
    event_id    TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    order_id    TEXT NOT NULL REFERENCES orders (id),
    status      TEXT NOT NULL,
    amount_bani BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
