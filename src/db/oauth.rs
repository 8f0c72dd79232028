//! The OAuth 2.0 authorization server's tables: client applications, grants, authorization codes, refresh-token
//! families and pushed authorization requests. A code or a refresh token is used once by a conditional UPDATE whose
//! affected-row count decides, so a replay is seen as one even when two requests race.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::audit::AuditRow;
use super::signing::TokenRow;
use super::{Db, DbError};

/// A registered client application.
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    /// A confidential client authenticates with its secret; a public one (a native or desktop app) cannot keep one.
    pub confidential: bool,
    /// SHA-256 hex of the secret (confidential clients only).
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    /// `service`, `credential`.
    pub scopes: Vec<String>,
    pub disabled: bool,
    pub created_at: i64,
}

fn lines(text: &str) -> Vec<String> {
    text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn client_of(r: &AnyRow) -> Result<ClientRow, DbError> {
    Ok(ClientRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        confidential: r.try_get::<i64, _>("confidential")? != 0,
        secret_hash: r.try_get("secret_hash")?,
        redirect_uris: lines(&r.try_get::<String, _>("redirect_uris")?),
        scopes: lines(&r.try_get::<String, _>("scopes")?),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: r.try_get("created_at")?,
    })
}

const CLIENT_COLUMNS: &str = "id, name, confidential, secret_hash, redirect_uris, scopes, disabled, created_at";

/// Registers a client, with its audit row.
pub async fn insert_client(db: &Db, c: &ClientRow, audit: &AuditRow) -> Result<(), DbError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query(
        "INSERT INTO oauth_clients (id, name, confidential, secret_hash, redirect_uris, scopes, disabled, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(i64::from(c.confidential))
    .bind(&c.secret_hash)
    .bind(c.redirect_uris.join("\n"))
    .bind(c.scopes.join("\n"))
    .bind(c.created_at)
    .execute(&mut *tx)
    .await?;
    super::audit::insert(&mut *tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

/// The client with this id.
pub async fn client(db: &Db, id: &str) -> Result<Option<ClientRow>, DbError> {
    let row = sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(client_of).transpose()
}

/// Every client, oldest first.
pub async fn clients(db: &Db) -> Result<Vec<ClientRow>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {CLIENT_COLUMNS} FROM oauth_clients ORDER BY created_at, id"
    ))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(client_of).collect()
}

/// Disables a client and revokes every grant it holds (and their tokens). Returns whether the client exists.
pub async fn disable_client(db: &Db, id: &str, audit: &AuditRow) -> Result<bool, DbError> {
    let mut tx = db.writer().begin().await?;
    let n = sqlx::query("UPDATE oauth_clients SET disabled = 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 1 {
        sqlx::query(
            "UPDATE access_tokens SET revoked = 1
             WHERE oauth_grant IN (SELECT id FROM oauth_grants WHERE client_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE oauth_grants SET revoked = 1 WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        super::audit::insert(&mut *tx, audit).await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// What a holder allowed a client.
#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    /// `service` or `credential`.
    pub scope: String,
    pub revoked: bool,
    pub created_at: i64,
}

fn grant_of(r: &AnyRow) -> Result<GrantRow, DbError> {
    Ok(GrantRow {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        scope: r.try_get("scope")?,
        revoked: r.try_get::<i64, _>("revoked")? != 0,
        created_at: r.try_get("created_at")?,
    })
}

/// An authorization code as stored.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// For scope credential: the credential, the signatures and the digests (hex, each as often as it may be
    /// signed), and the hash algorithm OID if the client named one.
    pub credential_id: Option<String>,
    pub num_signatures: Option<i64>,
    pub digests: Vec<String>,
    pub hash_algo: Option<String>,
    /// The RFC 9396 `authorization_details` as the client sent them (JSON), to echo in the token response.
    pub details: Option<String>,
    pub expires_at: i64,
    pub used: bool,
}

/// What the holder's "Allow" writes, in one transaction: the grant, its code, the consent, the audit row, and the
/// pushed request it came from marked used.
#[derive(Debug, Clone)]
pub struct Allowed {
    pub grant: GrantRow,
    pub code: CodeRow,
    /// `consents.version` of the [`ConsentKind::Application`](super::accounts::ConsentKind::Application) consent:
    /// the client's id and the scope.
    pub consent_version: String,
    pub client: String,
    pub request_uri_hash: Option<String>,
    pub audit: AuditRow,
}

/// Stores an "Allow" (see [`Allowed`]).
pub async fn insert_allowed(db: &Db, a: &Allowed) -> Result<(), DbError> {
    let mut tx = db.writer().begin().await?;
    let g = &a.grant;
    sqlx::query(
        "INSERT INTO oauth_grants (id, client_id, user_id, scope, revoked, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(&g.id)
    .bind(&g.client_id)
    .bind(&g.user_id)
    .bind(&g.scope)
    .bind(g.created_at)
    .execute(&mut *tx)
    .await?;
    let c = &a.code;
    sqlx::query(
        "INSERT INTO oauth_codes (code_hash, grant_id, redirect_uri, code_challenge, credential_id, num_signatures,
                                  digests, hash_algo, details, expires_at, used, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11)",
    )
    .bind(&c.code_hash)
    .bind(&c.grant_id)
    .bind(&c.redirect_uri)
    .bind(&c.code_challenge)
    .bind(&c.credential_id)
    .bind(c.num_signatures)
    .bind((!c.digests.is_empty()).then(|| c.digests.join("\n")))
    .bind(&c.hash_algo)
    .bind(&c.details)
    .bind(c.expires_at)
    .bind(g.created_at)
    .execute(&mut *tx)
    .await?;
    super::accounts::insert_consent(
        &mut *tx,
        &g.user_id,
        super::accounts::ConsentKind::Application,
        &a.consent_version,
        true,
        &a.client,
        g.created_at,
    )
    .await?;
    if let Some(uri) = &a.request_uri_hash {
        sqlx::query("UPDATE oauth_requests SET used = 1 WHERE uri_hash = $1")
            .bind(uri)
            .execute(&mut *tx)
            .await?;
    }
    super::audit::insert(&mut *tx, &a.audit).await?;
    tx.commit().await?;
    Ok(())
}

/// The code with this hash and its grant.
pub async fn code(db: &Db, code_hash: &str) -> Result<Option<(CodeRow, GrantRow)>, DbError> {
    let row = sqlx::query(
        "SELECT c.code_hash, c.grant_id, c.redirect_uri, c.code_challenge, c.credential_id, c.num_signatures,
                c.digests, c.hash_algo, c.details, c.expires_at, c.used,
                g.id, g.client_id, g.user_id, g.scope, g.revoked, g.created_at
         FROM oauth_codes c JOIN oauth_grants g ON g.id = c.grant_id WHERE c.code_hash = $1",
    )
    .bind(code_hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let code = CodeRow {
        code_hash: r.try_get("code_hash")?,
        grant_id: r.try_get("grant_id")?,
        redirect_uri: r.try_get("redirect_uri")?,
        code_challenge: r.try_get("code_challenge")?,
        credential_id: r.try_get("credential_id")?,
        num_signatures: r.try_get("num_signatures")?,
        digests: lines(&r.try_get::<Option<String>, _>("digests")?.unwrap_or_default()),
        hash_algo: r.try_get("hash_algo")?,
        details: r.try_get("details")?,
        expires_at: r.try_get("expires_at")?,
        used: r.try_get::<i64, _>("used")? != 0,
    };
    Ok(Some((code, grant_of(&r)?)))
}

/// Marks a code used; false when it already was (a replay, or a concurrent exchange that won).
pub async fn use_code(db: &Db, code_hash: &str) -> Result<bool, DbError> {
    let n = sqlx::query("UPDATE oauth_codes SET used = 1 WHERE code_hash = $1 AND used = 0")
        .bind(code_hash)
        .execute(db.writer())
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Revokes a grant: the grant, every access token issued for it and, with them, their refresh tokens (which are
/// refused once their grant is revoked). Writes the audit row in the same transaction.
pub async fn revoke_grant(db: &Db, grant_id: &str, audit: &AuditRow) -> Result<(), DbError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("UPDATE oauth_grants SET revoked = 1 WHERE id = $1")
        .bind(grant_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE oauth_grant = $1")
        .bind(grant_id)
        .execute(&mut *tx)
        .await?;
    super::audit::insert(&mut *tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

/// The grant with this id.
pub async fn grant(db: &Db, grant_id: &str) -> Result<Option<GrantRow>, DbError> {
    let row = sqlx::query("SELECT id, client_id, user_id, scope, revoked, created_at FROM oauth_grants WHERE id = $1")
        .bind(grant_id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(grant_of).transpose()
}

/// Tokens a grant issues at once: an access token (with its scope) and, for scope service, a refresh token.
#[derive(Debug, Clone)]
pub struct Issue {
    pub access: TokenRow,
    pub grant_id: String,
    /// The refresh token's hash and expiry.
    pub refresh: Option<(String, i64)>,
    pub client: String,
    pub audit: AuditRow,
    pub now: i64,
}

/// Stores the tokens of an [`Issue`] in one transaction.
pub async fn insert_issue(db: &Db, i: &Issue) -> Result<(), DbError> {
    let mut tx = db.writer().begin().await?;
    let t = &i.access;
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, user_id, kind, refresh_hash, expires_at, revoked, client, created_at,
                                    scope, oauth_grant)
         VALUES ($1, $2, $3, NULL, $4, 0, $5, $6, $7, $8)",
    )
    .bind(&t.token_hash)
    .bind(&t.user_id)
    .bind(&t.kind)
    .bind(t.expires_at)
    .bind(&i.client)
    .bind(i.now)
    .bind(&t.scope)
    .bind(&i.grant_id)
    .execute(&mut *tx)
    .await?;
    if let Some((hash, expires_at)) = &i.refresh {
        sqlx::query(
            "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, used, expires_at, created_at)
             VALUES ($1, $2, 0, $3, $4)",
        )
        .bind(hash)
        .bind(&i.grant_id)
        .bind(expires_at)
        .bind(i.now)
        .execute(&mut *tx)
        .await?;
    }
    super::audit::insert(&mut *tx, &i.audit).await?;
    tx.commit().await?;
    Ok(())
}

/// A stored refresh token.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub token_hash: String,
    pub grant_id: String,
    pub used: bool,
    pub expires_at: i64,
}

/// The refresh token with this hash and its grant.
pub async fn refresh_token(db: &Db, token_hash: &str) -> Result<Option<(RefreshRow, GrantRow)>, DbError> {
    let row = sqlx::query(
        "SELECT r.token_hash, r.grant_id, r.used, r.expires_at,
                g.id, g.client_id, g.user_id, g.scope, g.revoked, g.created_at
         FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id WHERE r.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let refresh = RefreshRow {
        token_hash: r.try_get("token_hash")?,
        grant_id: r.try_get("grant_id")?,
        used: r.try_get::<i64, _>("used")? != 0,
        expires_at: r.try_get("expires_at")?,
    };
    Ok(Some((refresh, grant_of(&r)?)))
}

/// Marks a refresh token used (rotated); false when it already was.
pub async fn use_refresh_token(db: &Db, token_hash: &str) -> Result<bool, DbError> {
    let n = sqlx::query("UPDATE oauth_refresh_tokens SET used = 1 WHERE token_hash = $1 AND used = 0")
        .bind(token_hash)
        .execute(db.writer())
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// The grant an access token was issued for, if it came from one.
pub async fn grant_of_access_token(db: &Db, token_hash: &str) -> Result<Option<GrantRow>, DbError> {
    let row = sqlx::query(
        "SELECT g.id, g.client_id, g.user_id, g.scope, g.revoked, g.created_at
         FROM access_tokens t JOIN oauth_grants g ON g.id = t.oauth_grant WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(grant_of).transpose()
}

/// Revokes one access token.
pub async fn revoke_access_token(db: &Db, token_hash: &str, audit: &AuditRow) -> Result<(), DbError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE token_hash = $1")
        .bind(token_hash)
        .execute(&mut *tx)
        .await?;
    super::audit::insert(&mut *tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

/// A grant a holder gave, as their settings page lists it.
#[derive(Debug, Clone)]
pub struct AllowedApp {
    pub grant_id: String,
    pub client_name: String,
    pub scope: String,
    pub created_at: i64,
    /// The latest expiry of its unused refresh tokens.
    pub until: i64,
}

/// The holder's grants that still have a live refresh token at `now`, newest first.
pub async fn allowed_apps(db: &Db, user_id: &str, now: i64) -> Result<Vec<AllowedApp>, DbError> {
    let rows = sqlx::query(
        "SELECT g.id, c.name, g.scope, g.created_at, MAX(r.expires_at) AS until
         FROM oauth_grants g
         JOIN oauth_clients c ON c.id = g.client_id
         JOIN oauth_refresh_tokens r ON r.grant_id = g.id AND r.used = 0 AND r.expires_at > $2
         WHERE g.user_id = $1 AND g.revoked = 0
         GROUP BY g.id, c.name, g.scope, g.created_at
         ORDER BY g.created_at DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AllowedApp {
                grant_id: r.try_get("id")?,
                client_name: r.try_get("name")?,
                scope: r.try_get("scope")?,
                created_at: r.try_get("created_at")?,
                until: r.try_get("until")?,
            })
        })
        .collect()
}

/// A pushed authorization request.
#[derive(Debug, Clone)]
pub struct RequestRow {
    pub uri_hash: String,
    pub client_id: String,
    /// The parameters, as a JSON object of strings.
    pub params: String,
    pub expires_at: i64,
    pub used: bool,
}

/// Stores a pushed authorization request.
pub async fn insert_request(db: &Db, r: &RequestRow, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO oauth_requests (uri_hash, client_id, params, expires_at, used, created_at)
         VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(&r.uri_hash)
    .bind(&r.client_id)
    .bind(&r.params)
    .bind(r.expires_at)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The pushed request with this hash.
pub async fn request(db: &Db, uri_hash: &str) -> Result<Option<RequestRow>, DbError> {
    let row =
        sqlx::query("SELECT uri_hash, client_id, params, expires_at, used FROM oauth_requests WHERE uri_hash = $1")
            .bind(uri_hash)
            .fetch_optional(db.pool())
            .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(RequestRow {
        uri_hash: r.try_get("uri_hash")?,
        client_id: r.try_get("client_id")?,
        params: r.try_get("params")?,
        expires_at: r.try_get("expires_at")?,
        used: r.try_get::<i64, _>("used")? != 0,
    }))
}

/// Marks a pushed request used (the holder refused it).
pub async fn use_request(db: &Db, uri_hash: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE oauth_requests SET used = 1 WHERE uri_hash = $1")
        .bind(uri_hash)
        .execute(db.writer())
        .await?;
    Ok(())
}
