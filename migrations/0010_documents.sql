-- A transaction is a signature or a timestamp (product rules §1): both are rows of the ledger, so debits always
-- equal rows. A timestamp row's digest is the message imprint it covers and its signature the token's digest.
ALTER TABLE signatures ADD COLUMN kind TEXT NOT NULL DEFAULT 'signature';
