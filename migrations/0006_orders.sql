-- Orders: a unique human-readable registration number, the package, the price fixed at order time (integer
-- minor units; the RON rate with its date), the invoice data (JSON, frozen once issued), the acknowledgements, and
-- the state with its history.
CREATE TABLE orders (
    id                  TEXT PRIMARY KEY,
    registration_number TEXT NOT NULL UNIQUE,
    user_id             TEXT NOT NULL REFERENCES users (id),
    kind                TEXT NOT NULL,
    package_id          BIGINT NOT NULL,
    state               TEXT NOT NULL,
    net_eur_cents       BIGINT NOT NULL,
    discount_eur_cents  BIGINT NOT NULL,
    promo_code          TEXT,
    vat_basis_points    BIGINT NOT NULL,
    vat_eur_cents       BIGINT NOT NULL,
    gross_eur_cents     BIGINT NOT NULL,
    ron_per_eur_1e4     BIGINT NOT NULL,
    rate_date           TEXT NOT NULL,
    total_ron_bani      BIGINT NOT NULL,
    invoice             TEXT NOT NULL,
    acknowledgements    TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX orders_user ON orders (user_id, created_at);

CREATE TABLE order_history (
    id       TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (id),
    state    TEXT NOT NULL,
    actor    TEXT NOT NULL,
    note     TEXT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX order_history_order ON order_history (order_id, at);
