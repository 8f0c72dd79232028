-- Web signing jobs: the uploaded files (kept until the retention time, default 24 h), their signed outputs, and
-- the signing history, which keeps only names and digests once the files are gone.
CREATE TABLE sign_jobs (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    credential_id TEXT NOT NULL REFERENCES credentials (id),
    state         TEXT NOT NULL,
    p7s_for_pdf   BIGINT NOT NULL,
    level         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    signed_at     BIGINT
);
CREATE INDEX sign_jobs_expiry ON sign_jobs (expires_at);

CREATE TABLE sign_job_files (
    job_id      TEXT NOT NULL REFERENCES sign_jobs (id),
    n           BIGINT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    digest      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    rect        TEXT,
    content     BYTEA,
    output_name TEXT,
    output      BYTEA,
    PRIMARY KEY (job_id, n)
);

CREATE TABLE sign_history (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    credential_id TEXT NOT NULL,
    job_id        TEXT,
    name          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    format        TEXT NOT NULL,
    level         TEXT NOT NULL,
    transactions  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX sign_history_user ON sign_history (user_id, created_at);
