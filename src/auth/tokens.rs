//! Bearer tokens for the CSC API: random, stored as SHA-256 hashes, with an expiry; a refresh token ("remember
//! me") obtains new access tokens, and revoking it revokes them too.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::config::AuthSettings;
use crate::db::signing::{self, TokenRow};
use crate::db::{Db, DbError};
use crate::i18n::Text;
use crate::text;

/// The scope of a token that reaches the whole CSC API (auth/login's, an OAuth grant of scope service).
pub const SERVICE: &str = "service";
/// The scope of an OAuth token bound to one credential and exact hashes: it is also their SAD.
pub const CREDENTIAL: &str = "credential";

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{}", self.text())]
    Invalid,
    #[error("{}", self.text())]
    Expired,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl TokenError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            TokenError::Invalid => text!("error.totp.access_token_invalid"),
            TokenError::Expired => text!("error.totp.access_token_has_expired"),
            TokenError::Db(_) => text!("error.http.database_error"),
        }
    }
}

/// Tokens handed to a client.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: Option<String>,
}

/// A new random token and its stored hash.
pub fn new_secret() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

/// The stored form of a token or SAD.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Issues an access token (and a refresh token when `remember_me`) for `user_id`.
pub async fn issue(
    db: &Db,
    auth: &AuthSettings,
    clock: &dyn Clock,
    user_id: &str,
    remember_me: bool,
    client: &str,
) -> Result<Issued, DbError> {
    let now = clock.now();
    let refresh = if remember_me {
        let (token, token_hash) = new_secret();
        let row = TokenRow {
            token_hash: token_hash.clone(),
            user_id: user_id.to_owned(),
            kind: "refresh".into(),
            refresh_hash: None,
            expires_at: now + auth.refresh_token_ttl_secs,
            revoked: false,
            scope: SERVICE.into(),
        };
        signing::insert_token(db, &row, client, now).await?;
        Some((token, token_hash))
    } else {
        None
    };
    let access = access_token(db, auth, user_id, refresh.as_ref().map(|r| r.1.clone()), client, now).await?;
    Ok(Issued {
        access_token: access,
        expires_in: auth.access_token_ttl_secs,
        refresh_token: refresh.map(|r| r.0),
    })
}

async fn access_token(
    db: &Db,
    auth: &AuthSettings,
    user_id: &str,
    refresh_hash: Option<String>,
    client: &str,
    now: i64,
) -> Result<String, DbError> {
    let (token, token_hash) = new_secret();
    let row = TokenRow {
        token_hash,
        user_id: user_id.to_owned(),
        kind: "access".into(),
        refresh_hash,
        expires_at: now + auth.access_token_ttl_secs,
        revoked: false,
        scope: SERVICE.into(),
    };
    signing::insert_token(db, &row, client, now).await?;
    Ok(token)
}

/// A new access token from a refresh token (the refresh token stays valid until it expires or is revoked).
pub async fn refresh(
    db: &Db,
    auth: &AuthSettings,
    clock: &dyn Clock,
    refresh_token: &str,
    client: &str,
) -> Result<(String, Issued), TokenError> {
    let row = valid(db, clock, refresh_token, "refresh").await?;
    let now = clock.now();
    let access = access_token(db, auth, &row.user_id, Some(row.token_hash.clone()), client, now).await?;
    Ok((
        row.user_id,
        Issued {
            access_token: access,
            expires_in: auth.access_token_ttl_secs,
            refresh_token: None,
        },
    ))
}

/// The user an access token belongs to.
pub async fn authenticate(db: &Db, clock: &dyn Clock, access_token: &str) -> Result<TokenRow, TokenError> {
    valid(db, clock, access_token, "access").await
}

async fn valid(db: &Db, clock: &dyn Clock, token: &str, kind: &str) -> Result<TokenRow, TokenError> {
    let row = signing::token(db, &hash(token)).await?.ok_or(TokenError::Invalid)?;
    if row.kind != kind || row.revoked {
        return Err(TokenError::Invalid);
    }
    if row.expires_at <= clock.now() {
        return Err(TokenError::Expired);
    }
    Ok(row)
}

/// Revokes one of the user's tokens (a refresh token takes its access tokens with it).
pub async fn revoke(db: &Db, user_id: &str, token: &str) -> Result<bool, DbError> {
    signing::revoke_token(db, &hash(token), user_id).await
}
