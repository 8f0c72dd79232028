-- The CRLs last published per issuing role, numbered (the CRL number extension must only grow).
CREATE TABLE crls (
    issuer_role   TEXT PRIMARY KEY,
    number        BIGINT NOT NULL,
    der           TEXT NOT NULL,
    this_update   BIGINT NOT NULL,
    next_update   BIGINT NOT NULL,
    revoked_count BIGINT NOT NULL
);
