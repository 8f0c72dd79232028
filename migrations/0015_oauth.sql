-- The OAuth 2.0 authorization server (CSC oauth2/*, issue 16): registered client applications, authorization
-- codes, grants (what one "Allow" gave an application: its tokens and its refresh-token family) and pushed
-- authorization requests (RFC 9126). Secrets, codes and tokens are stored as SHA-256 hex, as access tokens are.

-- A bearer token's scope: `service` (auth/login, or an OAuth grant of scope service) or `credential` (an OAuth
-- grant bound to one credential and exact hashes: the token is also that credential's SAD, see `sads`), and the
-- OAuth grant it came from, if any (revoking the grant revokes it).
ALTER TABLE access_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'service';
ALTER TABLE access_tokens ADD COLUMN oauth_grant TEXT;
CREATE INDEX access_tokens_oauth_grant ON access_tokens (oauth_grant);

-- A client application. `secret_hash` only for a confidential client; `redirect_uris` and `scopes` one per line.
CREATE TABLE oauth_clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    confidential  BIGINT NOT NULL,
    secret_hash   TEXT,
    redirect_uris TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

-- What a holder allowed one client: the tokens issued for it carry its id (access_tokens.oauth_grant), and its
-- refresh tokens are one family. Revoked: a replayed code, a reused refresh token, or the holder's revocation.
CREATE TABLE oauth_grants (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES oauth_clients (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    scope      TEXT NOT NULL,
    revoked    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id, revoked);

-- An authorization code: once, for a minute, for its client and redirect URI, with its PKCE challenge (S256) and,
-- for scope credential, the credential, the number of signatures and the digests (hex, one per line, repeated as
-- often as they may be signed) the holder approved with their TOTP code.
CREATE TABLE oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL REFERENCES oauth_grants (id),
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    credential_id  TEXT,
    num_signatures BIGINT,
    digests        TEXT,
    hash_algo      TEXT,
    details        TEXT,
    expires_at     BIGINT NOT NULL,
    used           BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);

-- Refresh tokens (scope service only), rotated: each is used once; a used one presented again revokes its grant.
CREATE TABLE oauth_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES oauth_grants (id),
    used       BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);

-- A pushed authorization request (RFC 9126): the parameters a client sent, as JSON, behind a request_uri.
CREATE TABLE oauth_requests (
    uri_hash   TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES oauth_clients (id),
    params     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used       BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
