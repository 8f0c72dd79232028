-- The institutional and procurement channel (product rules §13): an operator places the order of a public body
-- (CPV 79132100-9) for a holder; a proforma goes to the institution; an operator records the identification (in
-- person, or by courier with a sworn statement) instead of the video session; the invoice is issued after the
-- certificate, due some days later. Web orders keep channel 'web'.
ALTER TABLE orders ADD COLUMN channel TEXT NOT NULL DEFAULT 'web';
-- When the certificate is due (working days from complete documents), and when the invoice of an institutional
-- order must be paid (set when it is issued, after the certificate).
ALTER TABLE orders ADD COLUMN due_by BIGINT;
ALTER TABLE orders ADD COLUMN invoiced_at BIGINT;
ALTER TABLE orders ADD COLUMN payment_due_at BIGINT;

CREATE TABLE institutional_orders (
    order_id              TEXT PRIMARY KEY REFERENCES orders (id),
    institution_name      TEXT NOT NULL,
    institution_tax_id    TEXT NOT NULL,
    institution_address   TEXT NOT NULL,
    institution_email     TEXT NOT NULL,
    procurement_reference TEXT NOT NULL,
    -- The institution's link to its proforma and invoice: a one-way hash of a random secret.
    link_hash             TEXT NOT NULL UNIQUE,
    created_by            TEXT NOT NULL,
    -- The identification an operator recorded: in_person or courier_sworn_statement, the document (JSON), a note.
    method                TEXT,
    document              TEXT,
    note                  TEXT,
    recorded_by           TEXT,
    documents_complete_at BIGINT,
    created_at            BIGINT NOT NULL
);
