-- Issue 19: fiscal documents a Romanian accountant accepts. Each invoice keeps its e-Factura file (UBL 2.1,
-- RO_CIUS) as issued, so it never changes afterwards; a refund issues one credit note (storno) per order, numbered
-- in its own gap-free series (the `counters` row `credit-note-<year>`, taken inside the refund's transaction),
-- referring to the invoice, with its own e-Factura file.
ALTER TABLE orders ADD COLUMN efactura_xml TEXT;

CREATE TABLE credit_notes (
    number          TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL UNIQUE REFERENCES orders (id),
    invoice_number  TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    amount_ron_bani BIGINT NOT NULL,
    refund_ref      TEXT NOT NULL,
    efactura_xml    TEXT
);
