//! The registered client applications, and how a client authenticates at the token, revocation and PAR endpoints.
//!
//! A confidential client's secret is 32 random bytes, shown once and stored as its SHA-256 (as bearer tokens are):
//! a secret of that entropy cannot be guessed, so a slow password hash (Argon2) would add nothing but a CPU cost on
//! every token request, which an unauthenticated caller could use to load the password workers.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{same, OAuthError, Services, SCOPE_CREDENTIAL, SCOPE_SERVICE};
use crate::auth::tokens;
use crate::db::oauth::{self as store, ClientRow};
use crate::text;

/// A client to register.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// A public client (a native or desktop app) gets no secret and must use PKCE, as every client here must.
    pub public: bool,
    /// `service`, `credential`.
    pub scopes: Vec<String>,
}

/// A registered client: its id, and its secret (confidential clients only; shown this once).
#[derive(Debug)]
pub struct Registered {
    pub client_id: String,
    pub secret: Option<SecretString>,
}

/// Registers a client (`parafa admin oauth-client create`, or the operator console); `actor` and `client_addr`
/// are the audit's.
pub async fn create(
    svc: Services<'_>,
    new: NewClient,
    actor: &str,
    client_addr: &str,
) -> Result<Registered, OAuthError> {
    let name = new.name.trim().to_owned();
    if name.is_empty() {
        return Err(OAuthError::Invalid(text!("error.oauth.client_name_required")));
    }
    if new.redirect_uris.is_empty() {
        return Err(OAuthError::Invalid(text!("error.oauth.redirect_uri_required")));
    }
    for uri in &new.redirect_uris {
        if !acceptable_redirect(uri) {
            return Err(OAuthError::Invalid(text!(
                "error.oauth.redirect_uri_unacceptable",
                uri = uri
            )));
        }
    }
    let scopes: Vec<String> = if new.scopes.is_empty() {
        vec![SCOPE_SERVICE.into(), SCOPE_CREDENTIAL.into()]
    } else {
        new.scopes
    };
    if let Some(bad) = scopes
        .iter()
        .find(|s| ![SCOPE_SERVICE, SCOPE_CREDENTIAL].contains(&s.as_str()))
    {
        return Err(OAuthError::InvalidScope(text!(
            "error.oauth.unknown_scope",
            scope = bad
        )));
    }
    let client_id = format!("pc-{}", uuid::Uuid::new_v4().simple());
    let (secret, secret_hash) = if new.public {
        (None, None)
    } else {
        let (secret, hash) = tokens::new_secret();
        (Some(SecretString::from(secret)), Some(hash))
    };
    let row = ClientRow {
        id: client_id.clone(),
        name,
        confidential: !new.public,
        secret_hash,
        redirect_uris: new.redirect_uris,
        scopes,
        disabled: false,
        created_at: svc.clock.now(),
    };
    let audit = svc.audit(
        actor,
        "oauth.client.create",
        &client_id,
        "ok",
        client_addr,
        json!({ "name": row.name, "confidential": row.confidential, "redirect_uris": row.redirect_uris, "scopes": row.scopes }),
    );
    store::insert_client(svc.db, &row, &audit).await?;
    Ok(Registered { client_id, secret })
}

/// A redirect URI a client may register: an absolute `https://` URI, or `http://` for a loopback address (native
/// apps, RFC 8252 §7.3) or `localhost`; never with a fragment.
fn acceptable_redirect(uri: &str) -> bool {
    if uri.contains('#') || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if let Some(rest) = uri.strip_prefix("https://") {
        return !rest.is_empty() && !rest.starts_with('/');
    }
    loopback(uri).is_some() || uri.starts_with("http://localhost:") || uri.starts_with("http://localhost/")
}

/// A loopback redirect URI (`http://127.0.0.1[:port]/…` or `http://[::1][:port]/…`) as (host, path and query).
fn loopback(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = if let Some(port) = authority.strip_prefix("[::1]") {
        (port.is_empty() || valid_port(port)).then_some("[::1]")?
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        (host == "127.0.0.1" && port.is_none_or(|p| valid_port(&format!(":{p}")))).then_some("127.0.0.1")?
    };
    Some((host, path))
}

fn valid_port(p: &str) -> bool {
    p.strip_prefix(':')
        .is_some_and(|n| !n.is_empty() && n.len() <= 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `given` is one of the client's redirect URIs: exactly, or, for a public client, a loopback URI that
/// differs from a registered one only in its port (RFC 8252 §7.3: a native app listens on whatever port it gets).
pub fn redirect_registered(client: &ClientRow, given: &str) -> bool {
    if client.redirect_uris.iter().any(|r| r == given) {
        return true;
    }
    if client.confidential {
        return false;
    }
    let Some(given) = loopback(given) else { return false };
    client.redirect_uris.iter().any(|r| loopback(r) == Some(given))
}

/// A registered client as the CLI and the operator console show it (never its secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientView {
    pub id: String,
    pub name: String,
    pub confidential: bool,
    pub disabled: bool,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub created_at: String,
}

/// Every client, oldest first (`parafa admin oauth-client list`, the operator console).
pub async fn list(svc: Services<'_>) -> Result<Vec<ClientView>, OAuthError> {
    Ok(store::clients(svc.db)
        .await?
        .into_iter()
        .map(|c| ClientView {
            id: c.id,
            name: c.name,
            confidential: c.confidential,
            disabled: c.disabled,
            scopes: c.scopes,
            redirect_uris: c.redirect_uris,
            created_at: crate::clock::rfc3339(c.created_at),
        })
        .collect())
}

/// Disables a client and revokes its grants and tokens (`parafa admin oauth-client disable`, the operator
/// console). Returns whether it exists.
pub async fn disable(svc: Services<'_>, client_id: &str, actor: &str, client_addr: &str) -> Result<bool, OAuthError> {
    let audit = svc.audit(actor, "oauth.client.disable", client_id, "ok", client_addr, json!({}));
    Ok(store::disable_client(svc.db, client_id, &audit).await?)
}

/// How a client presented itself at the token, revocation or PAR endpoint.
#[derive(Debug, Default)]
pub struct Presented {
    /// From `Authorization: Basic` (`client_secret_basic`), form-decoded as RFC 6749 §2.3.1 says.
    pub basic: Option<(String, SecretString)>,
    /// The form's `client_id`.
    pub client_id: Option<String>,
    /// The form's `client_secret` (`client_secret_post`).
    pub client_secret: Option<SecretString>,
}

/// The client that presented itself: a confidential client with its secret (Basic or in the form, never both), a
/// public one with its `client_id` alone. A disabled client is refused like an unknown one.
pub async fn authenticate(svc: Services<'_>, p: Presented) -> Result<ClientRow, OAuthError> {
    let invalid = |key: &'static str| OAuthError::InvalidClient(text!(key));
    let (id, secret) = match (p.basic, p.client_secret) {
        (Some(_), Some(_)) => return Err(invalid("error.oauth.client_auth_twice")),
        (Some((id, secret)), None) => {
            if p.client_id.as_ref().is_some_and(|c| *c != id) {
                return Err(invalid("error.oauth.client_auth_failed"));
            }
            (id, Some(secret))
        }
        (None, secret) => (
            p.client_id
                .filter(|c| !c.is_empty())
                .ok_or_else(|| invalid("error.oauth.client_auth_failed"))?,
            secret,
        ),
    };
    let client = store::client(svc.db, &id)
        .await?
        .ok_or_else(|| invalid("error.oauth.client_auth_failed"))?;
    if client.disabled {
        return Err(OAuthError::InvalidClient(text!("error.oauth.client_disabled")));
    }
    match (&client.secret_hash, secret) {
        (Some(stored), Some(secret)) if same(stored, &tokens::hash(secret.expose_secret())) => Ok(client),
        (None, None) => Ok(client),
        _ => Err(invalid("error.oauth.client_auth_failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(uris: &[&str]) -> ClientRow {
        ClientRow {
            id: "c".into(),
            name: "App".into(),
            confidential: false,
            secret_hash: None,
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            scopes: vec![],
            disabled: false,
            created_at: 0,
        }
    }

    #[test]
    fn loopback_redirects_of_public_clients_match_on_any_port() {
        let c = public(&["http://127.0.0.1/cb", "http://[::1]:8000/cb"]);
        assert!(redirect_registered(&c, "http://127.0.0.1:51234/cb"));
        assert!(redirect_registered(&c, "http://127.0.0.1/cb"));
        assert!(redirect_registered(&c, "http://[::1]:9/cb"));
        assert!(!redirect_registered(&c, "http://127.0.0.1:51234/other"));
        assert!(!redirect_registered(&c, "http://127.0.0.2:51234/cb"));
        assert!(!redirect_registered(&c, "http://127.0.0.1:x/cb"));
        assert!(!redirect_registered(&c, "http://127.0.0.1.evil.example/cb"));
        let confidential = ClientRow {
            confidential: true,
            ..c
        };
        assert!(!redirect_registered(&confidential, "http://127.0.0.1:51234/cb"));
    }

    #[test]
    fn only_https_or_loopback_redirects_are_registered() {
        assert!(acceptable_redirect("https://app.example/cb"));
        assert!(acceptable_redirect("http://127.0.0.1/cb"));
        assert!(acceptable_redirect("http://localhost:8080/cb"));
        assert!(!acceptable_redirect("http://app.example/cb"));
        assert!(!acceptable_redirect("https://app.example/cb#x"));
        assert!(!acceptable_redirect("https:///cb"));
    }
}
