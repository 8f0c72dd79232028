//! The OAuth 2.0 authorization server of the CSC API (`oauth2/*`, issue 16): a third-party application sends the
//! holder's browser here, the holder logs in and allows it (with their TOTP code when it asks to sign), and the
//! application gets a Parafa bearer token without ever seeing the holder's password.
//!
//! - [`clients`]: the registered applications (confidential or public, redirect URIs, scopes) and how a client
//!   authenticates at the token endpoint;
//! - [`request`]: an authorization request read and checked (client, redirect URI, PKCE, scope or RAR
//!   `authorization_details`, pushed requests);
//! - [`grant`]: the holder's answer on the consent page, which becomes a one-minute authorization code;
//! - [`token`]: the token endpoint (`authorization_code`, `refresh_token` with rotation), revocation.
//!
//! A `service` token is an ordinary Parafa bearer token. A `credential` token is one too, with scope `credential`,
//! and a SAD is stored under the same hash: it is bound to the holder, the credential, the exact digests and their
//! count, the hash algorithm, and lives as long as a SAD, so `signatures/signHash` and `signDoc` take it in place of
//! the SAD and debit through the same ledger.

pub mod clients;
pub mod grant;
pub mod request;
pub mod routes;
pub mod token;

use std::sync::Arc;

use crate::auth::totp::CodeError as TotpCodeError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::audit::AuditRow;
use crate::db::{Db, DbError};
use crate::hsm::Hsm;
use crate::i18n::Text;
use crate::text;

/// The scope of a token that reaches the CSC API as `auth/login`'s do.
pub const SCOPE_SERVICE: &str = crate::auth::tokens::SERVICE;
/// The scope of a token bound to one credential and the hashes the holder approved.
pub const SCOPE_CREDENTIAL: &str = crate::auth::tokens::CREDENTIAL;
/// The RFC 9396 `authorization_details` types of a credential authorisation (CSC v2 and the 2025 URI form).
pub const DETAIL_TYPES: [&str; 2] = ["credential", "https://cloudsignatureconsortium.org/2025/credential"];
/// The prefix of a pushed request's `request_uri` (RFC 9126).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// What the authorization server uses: the database, the token (for the TOTP check), the settings, the clock.
#[derive(Clone, Copy)]
pub struct Services<'a> {
    pub db: &'a Db,
    pub hsm: &'a Arc<Hsm>,
    pub settings: &'a Settings,
    pub clock: &'a dyn Clock,
}

impl Services<'_> {
    /// The issuer identifier (RFC 8414, RFC 9207): the public base URL, which `info` announces as `oauth2`.
    pub fn issuer(&self) -> String {
        self.settings.public_url()
    }

    /// An audit row of this area.
    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        client: &str,
        details: serde_json::Value,
    ) -> AuditRow {
        crate::audit::row(
            self.clock,
            &crate::audit::Event {
                actor,
                action,
                target,
                outcome,
                client,
                details,
            },
        )
    }
}

/// Why the authorization server refused.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// No client with this `client_id`: an error page, never a redirect.
    #[error("{}", self.text())]
    UnknownClient,
    /// The `redirect_uri` is not one the client registered: an error page, never a redirect.
    #[error("{}", self.text())]
    RedirectUri,
    /// The client was disabled by an operator.
    #[error("{}", self.text())]
    ClientDisabled,
    /// `invalid_request`.
    #[error("{0}")]
    Invalid(Text),
    /// `invalid_scope`: a scope the client may not ask, or a malformed credential request.
    #[error("{0}")]
    InvalidScope(Text),
    /// `unsupported_response_type`: only `code` is served.
    #[error("{}", self.text())]
    UnsupportedResponseType,
    /// `access_denied`: the holder refused.
    #[error("{}", self.text())]
    Refused,
    /// `invalid_grant`: a bad, used, expired or foreign code or refresh token, a wrong verifier or redirect URI.
    #[error("{0}")]
    InvalidGrant(Text),
    /// `invalid_client`: the client's authentication failed (401).
    #[error("{0}")]
    InvalidClient(Text),
    /// `unsupported_grant_type`.
    #[error("{}", self.text())]
    UnsupportedGrantType,
    /// The holder's TOTP code on the consent page was refused.
    #[error(transparent)]
    Totp(#[from] TotpCodeError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl OAuthError {
    /// What the person or the client is told, by key.
    pub fn text(&self) -> Text {
        match self {
            OAuthError::UnknownClient => text!("error.oauth.unknown_client"),
            OAuthError::RedirectUri => text!("error.oauth.redirect_uri_not_registered"),
            OAuthError::ClientDisabled => text!("error.oauth.client_disabled"),
            OAuthError::Invalid(t)
            | OAuthError::InvalidScope(t)
            | OAuthError::InvalidGrant(t)
            | OAuthError::InvalidClient(t) => t.clone(),
            OAuthError::UnsupportedResponseType => text!("error.oauth.unsupported_response_type"),
            OAuthError::Refused => text!("error.oauth.access_denied"),
            OAuthError::UnsupportedGrantType => text!("error.oauth.unsupported_grant_type"),
            OAuthError::Totp(e) => e.text(),
            OAuthError::Db(_) => text!("error.http.database_error"),
        }
    }

    /// The RFC 6749 error code (§4.1.2.1 for the authorization endpoint, §5.2 for the token endpoint).
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::UnknownClient | OAuthError::RedirectUri | OAuthError::Invalid(_) => "invalid_request",
            OAuthError::ClientDisabled => "unauthorized_client",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
            OAuthError::Refused => "access_denied",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::Totp(_) => "invalid_otp",
            OAuthError::Db(_) => "server_error",
        }
    }
}

/// The RFC 9207 `iss` and the other parameters of a redirect back to the client, appended to `redirect_uri` (which
/// may have a query of its own).
pub fn redirect_to(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = redirect_uri.to_owned();
    let mut sep = if redirect_uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(&form_encode(k));
        out.push('=');
        out.push_str(&form_encode(v));
        sep = '&';
    }
    out
}

/// Percent-encodes a query component (`application/x-www-form-urlencoded` without `+`).
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether two secrets' stored forms are equal, in time that does not depend on where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_clients_query_and_encode_values() {
        assert_eq!(
            redirect_to("https://app.example/cb", &[("code", "a b"), ("state", "x&y")]),
            "https://app.example/cb?code=a%20b&state=x%26y"
        );
        assert_eq!(
            redirect_to("https://app.example/cb?v=1", &[("code", "c")]),
            "https://app.example/cb?v=1&code=c"
        );
    }
}
