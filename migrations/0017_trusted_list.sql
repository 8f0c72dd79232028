-- The trusted list of Parafa's own trust services (ETSI TS 119 612, issue 18), published at /pki/tl.xml.
--
-- Each trust service is one certificate (the issuing CA for the CA/QC service, each TSA certificate for the
-- qualified timestamp service) and keeps its row for ever: a service withdrawn or replaced stays on the list with
-- its history, so validators can judge signatures made while it was granted.
CREATE TABLE trust_services (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    cert_der   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- A service's status from `since` (Unix seconds) until the next row's: `granted` or `withdrawn`.
CREATE TABLE trust_service_statuses (
    service_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    since      BIGINT NOT NULL,
    reason     TEXT,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (service_id, since)
);

-- Every list signed, by sequence number (TSLSequenceNumber). `content_sha256` is the digest of what the list
-- says (scheme, services, statuses, operator certificate): a list whose content changed is signed afresh.
CREATE TABLE trusted_lists (
    sequence       BIGINT PRIMARY KEY,
    issued_at      BIGINT NOT NULL,
    next_update    BIGINT NOT NULL,
    content_sha256 TEXT NOT NULL,
    xml            TEXT NOT NULL
);
