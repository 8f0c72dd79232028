-- Facts about the deployment fixed at first start, such as the public base URL written into certificates when
-- no PARAFA_PUBLIC_URL is configured (so the CLI and later starts on another port write the same URLs).
CREATE TABLE deployment (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
