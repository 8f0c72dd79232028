//! The token endpoint (`authorization_code`, `refresh_token`), revocation (RFC 7009), the holder's own revocation
//! of an application, and the server's metadata (RFC 8414).
//!
//! `client_credentials` (CSC `oauth2client`) is not offered: a token without a holder's browser in the loop would
//! let a relying party's service account sign without the holder's TOTP code, which Parafa never allows.

use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{same, OAuthError, Services, DETAIL_TYPES, SCOPE_CREDENTIAL, SCOPE_SERVICE};
use crate::auth::tokens;
use crate::db::oauth::{self as store, ClientRow, GrantRow, Issue};
use crate::db::signing::TokenRow;
use crate::hsm::HashAlg;
use crate::signing::{self, Authorization, Digests};
use crate::text;

/// The form of `POST /oauth2/token`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    /// For scope credential (CSC v2).
    #[serde(rename = "credentialID", skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// The RAR details the holder approved, when the request had them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
}

/// `POST /oauth2/token` for an authenticated client.
pub async fn exchange(
    svc: Services<'_>,
    client: &ClientRow,
    req: TokenRequest,
    client_addr: &str,
) -> Result<TokenResponse, OAuthError> {
    match req.grant_type.as_deref() {
        Some("authorization_code") => authorization_code(svc, client, req, client_addr).await,
        Some("refresh_token") => refresh(svc, client, req, client_addr).await,
        None => Err(OAuthError::Invalid(text!(
            "error.oauth.missing_parameter",
            name = "grant_type"
        ))),
        Some(_) => Err(OAuthError::UnsupportedGrantType),
    }
}

fn missing(name: &'static str) -> OAuthError {
    OAuthError::Invalid(text!("error.oauth.missing_parameter", name))
}

/// Whether `verifier` is a PKCE verifier (RFC 7636 §4.1) whose S256 is `challenge`.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && same(&computed, challenge)
}

async fn authorization_code(
    svc: Services<'_>,
    client: &ClientRow,
    req: TokenRequest,
    client_addr: &str,
) -> Result<TokenResponse, OAuthError> {
    let code = req.code.filter(|c| !c.is_empty()).ok_or_else(|| missing("code"))?;
    let invalid = |key: &'static str| OAuthError::InvalidGrant(text!(key));
    let (code, grant) = store::code(svc.db, &tokens::hash(&code))
        .await?
        .ok_or_else(|| invalid("error.oauth.code_invalid"))?;
    // Another client's code is as unknown as a wrong one, and is not spent by the attempt.
    if grant.client_id != client.id {
        return Err(invalid("error.oauth.code_invalid"));
    }
    if !store::use_code(svc.db, &code.code_hash).await? {
        // A code presented twice was intercepted, or is being replayed: what it gave is revoked (RFC 6749 §4.1.2).
        end_grant(svc, client, &grant, "oauth.code.replay", client_addr).await?;
        return Err(invalid("error.oauth.code_used"));
    }
    if code.expires_at <= svc.clock.now() {
        return Err(invalid("error.oauth.code_expired"));
    }
    if grant.revoked {
        return Err(invalid("error.oauth.code_invalid"));
    }
    if req.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
        return Err(invalid("error.oauth.redirect_uri_mismatch"));
    }
    let verifier = req
        .code_verifier
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("code_verifier"))?;
    if !pkce_matches(&verifier, &code.code_challenge) {
        return Err(invalid("error.oauth.code_verifier_wrong"));
    }
    match (&code.credential_id, code.num_signatures) {
        (Some(credential_id), Some(num)) => {
            let details = code
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str::<Value>(d).ok());
            let binding = Binding {
                credential_id,
                num,
                digests: Digests::of_hex(&code.digests),
                hash: code
                    .hash_algo
                    .as_deref()
                    .and_then(|oid| oid.parse().ok())
                    .and_then(|oid| HashAlg::from_oid(&oid)),
            };
            issue_credential(svc, client, &grant, binding, details, client_addr).await
        }
        _ => issue_service(svc, client, &grant, client_addr).await,
    }
}

async fn refresh(
    svc: Services<'_>,
    client: &ClientRow,
    req: TokenRequest,
    client_addr: &str,
) -> Result<TokenResponse, OAuthError> {
    let token = req
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("refresh_token"))?;
    let invalid = |key: &'static str| OAuthError::InvalidGrant(text!(key));
    let (row, grant) = store::refresh_token(svc.db, &tokens::hash(&token))
        .await?
        .ok_or_else(|| invalid("error.oauth.refresh_token_invalid"))?;
    if grant.client_id != client.id || grant.revoked || grant.scope != SCOPE_SERVICE {
        return Err(invalid("error.oauth.refresh_token_invalid"));
    }
    if row.used || !store::use_refresh_token(svc.db, &row.token_hash).await? {
        // A rotated refresh token came back: one of its two holders is not the client. The family ends.
        end_grant(svc, client, &grant, "oauth.refresh.reuse", client_addr).await?;
        return Err(invalid("error.oauth.refresh_token_reused"));
    }
    if row.expires_at <= svc.clock.now() {
        return Err(invalid("error.oauth.refresh_token_invalid"));
    }
    issue_service(svc, client, &grant, client_addr).await
}

/// Revokes a grant (its tokens with it) because of what `action` names, and audits it.
async fn end_grant(
    svc: Services<'_>,
    client: &ClientRow,
    grant: &GrantRow,
    action: &str,
    client_addr: &str,
) -> Result<(), OAuthError> {
    let actor = format!("client:{}", client.id);
    let audit = svc.audit(&actor, action, &grant.id, "grant revoked", client_addr, json!({}));
    Ok(store::revoke_grant(svc.db, &grant.id, &audit).await?)
}

/// A `service` access token and its refresh token, in the grant's family.
async fn issue_service(
    svc: Services<'_>,
    client: &ClientRow,
    grant: &GrantRow,
    client_addr: &str,
) -> Result<TokenResponse, OAuthError> {
    let auth = &svc.settings.auth;
    let now = svc.clock.now();
    let (access, access_hash) = tokens::new_secret();
    let (refresh, refresh_hash) = tokens::new_secret();
    let audit = svc.audit(
        &format!("client:{}", client.id),
        "oauth.token.issue",
        &grant.id,
        "ok",
        client_addr,
        json!({ "scope": SCOPE_SERVICE, "user": grant.user_id }),
    );
    store::insert_issue(
        svc.db,
        &Issue {
            access: TokenRow {
                token_hash: access_hash,
                user_id: grant.user_id.clone(),
                kind: "access".into(),
                refresh_hash: None,
                expires_at: now + auth.access_token_ttl_secs,
                revoked: false,
                scope: SCOPE_SERVICE.into(),
            },
            grant_id: grant.id.clone(),
            refresh: Some((refresh_hash, now + auth.refresh_token_ttl_secs)),
            client: client_addr.to_owned(),
            audit,
            now,
        },
    )
    .await?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: auth.access_token_ttl_secs,
        refresh_token: Some(refresh),
        scope: SCOPE_SERVICE.into(),
        credential_id: None,
        authorization_details: None,
    })
}

/// What a `credential` token is bound to.
struct Binding<'a> {
    credential_id: &'a str,
    num: i64,
    digests: Digests,
    hash: Option<HashAlg>,
}

/// A `credential` access token, which is also the SAD of its credential and digests (stored under the same hash),
/// living as long as a SAD. No refresh token: each signature needs the holder's approval.
async fn issue_credential(
    svc: Services<'_>,
    client: &ClientRow,
    grant: &GrantRow,
    b: Binding<'_>,
    details: Option<Value>,
    client_addr: &str,
) -> Result<TokenResponse, OAuthError> {
    let ttl = svc.settings.csc.sad_ttl_secs;
    let now = svc.clock.now();
    let (access, access_hash) = tokens::new_secret();
    let audit = svc.audit(
        &format!("client:{}", client.id),
        "oauth.token.issue",
        &grant.id,
        "ok",
        client_addr,
        json!({ "scope": SCOPE_CREDENTIAL, "user": grant.user_id, "credential": b.credential_id, "signatures": b.num }),
    );
    store::insert_issue(
        svc.db,
        &Issue {
            access: TokenRow {
                token_hash: access_hash.clone(),
                user_id: grant.user_id.clone(),
                kind: "access".into(),
                refresh_hash: None,
                expires_at: now + ttl,
                revoked: false,
                scope: SCOPE_CREDENTIAL.into(),
            },
            grant_id: grant.id.clone(),
            refresh: None,
            client: client_addr.to_owned(),
            audit,
            now,
        },
    )
    .await?;
    let authorization = Authorization {
        user_id: grant.user_id.clone(),
        credential_id: b.credential_id.to_owned(),
        digests: b.digests,
        hash: b.hash,
        expires_at: now + ttl,
    };
    let event = svc.audit(
        &format!("user:{}", grant.user_id),
        "sad.issue",
        b.credential_id,
        "ok",
        client_addr,
        json!({ "signatures": b.num, "expires_at": authorization.expires_at, "oauth_client": client.id }),
    );
    signing::store_as(svc.db, &access_hash, &authorization, &event, now).await?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: ttl,
        refresh_token: None,
        scope: SCOPE_CREDENTIAL.into(),
        credential_id: Some(b.credential_id.to_owned()),
        authorization_details: details,
    })
}

/// `POST /oauth2/revoke` (RFC 7009): revokes a refresh token (and its whole grant) or an access token of this
/// client. An unknown token, or another client's, changes nothing and is not an error.
pub async fn revoke(svc: Services<'_>, client: &ClientRow, token: &str, client_addr: &str) -> Result<(), OAuthError> {
    let hash = tokens::hash(token);
    let actor = format!("client:{}", client.id);
    if let Some((_, grant)) = store::refresh_token(svc.db, &hash).await? {
        if grant.client_id == client.id {
            let audit = svc.audit(
                &actor,
                "oauth.revoke",
                &grant.id,
                "ok",
                client_addr,
                json!({ "token": "refresh" }),
            );
            store::revoke_grant(svc.db, &grant.id, &audit).await?;
        }
        return Ok(());
    }
    if let Some(grant) = store::grant_of_access_token(svc.db, &hash).await? {
        if grant.client_id == client.id {
            let audit = svc.audit(
                &actor,
                "oauth.revoke",
                &grant.id,
                "ok",
                client_addr,
                json!({ "token": "access" }),
            );
            store::revoke_access_token(svc.db, &hash, &audit).await?;
        }
    }
    Ok(())
}

/// The holder's revocation of an application they allowed (the settings page). Returns whether it was theirs.
pub async fn revoke_by_holder(
    svc: Services<'_>,
    user_id: &str,
    grant_id: &str,
    client_addr: &str,
) -> Result<bool, OAuthError> {
    match store::grant(svc.db, grant_id).await? {
        Some(g) if g.user_id == user_id => {
            let audit = svc.audit(
                &format!("user:{user_id}"),
                "oauth.revoke",
                grant_id,
                "ok",
                client_addr,
                json!({ "client": g.client_id }),
            );
            store::revoke_grant(svc.db, grant_id, &audit).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// An application the holder allowed, as the settings page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AllowedApp {
    pub grant_id: String,
    pub name: String,
    pub scope: String,
    pub since: String,
    pub until: String,
}

/// The applications the holder allowed that still hold a refresh token.
pub async fn allowed_apps(svc: Services<'_>, user_id: &str) -> Result<Vec<AllowedApp>, OAuthError> {
    let apps = store::allowed_apps(svc.db, user_id, svc.clock.now()).await?;
    Ok(apps
        .into_iter()
        .map(|a| AllowedApp {
            grant_id: a.grant_id,
            name: a.client_name,
            scope: a.scope,
            since: crate::clock::rfc3339(a.created_at),
            until: crate::clock::rfc3339(a.until),
        })
        .collect())
}

/// The authorization server's metadata (RFC 8414).
pub fn metadata(svc: Services<'_>) -> Value {
    let issuer = svc.issuer();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "pushed_authorization_request_endpoint": format!("{issuer}/oauth2/pushed_authorize"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": [SCOPE_SERVICE, SCOPE_CREDENTIAL],
        "authorization_details_types_supported": DETAIL_TYPES,
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": ["ro", "en"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_of_the_rfc_7636_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!pkce_matches("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    }
}
