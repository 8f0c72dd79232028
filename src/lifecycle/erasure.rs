//! Erasure of a person (GDPR art. 17): it ends their certificates (revoked, keys destroyed) and then their
//! account, so it belongs to the lifecycle, which builds on accounts. The routes are the account's
//! (`POST /api/v1/me/erasure`).

use serde::Deserialize;
use serde_json::json;

use super::retention::{kept_after_erasure, KeptClass};
use super::revoke::{revoke_credential, RevokeError};
use super::Services;
use crate::accounts::{audit, AccountError};
use crate::clock::Clock;
use crate::db;
use crate::db::credentials::CertificateStatus;
use crate::db::users::{TotpStatus, User};

/// `POST /api/v1/me/erasure`: the confirmation and the step-up a destructive act asks, since a session cookie
/// alone (a shared computer, a stolen cookie) must not close an account and revoke its certificates.
#[derive(Deserialize)]
pub struct ErasureRequest {
    pub confirm: Option<bool>,
    /// The account's password (checked as a login: throttled, a wrong one counts as a failed login).
    pub password: Option<secrecy::SecretString>,
    /// A code of the authenticator app, when one is paired (every holder with a certificate has one).
    pub totp: Option<String>,
}

/// What an erasure did: what was erased, and what was kept, why and until when.
#[derive(Debug, serde::Serialize)]
pub struct Erased {
    pub status: &'static str,
    pub erased: [&'static str; 4],
    /// Per class of data the retention rules keep: what, why, and the last day it is kept (Europe/Bucharest; none
    /// while a legal hold lasts).
    pub kept: Vec<KeptClass>,
    /// What the erasure means for the person's certificates and sessions.
    pub effect: &'static str,
}

/// Erases the person: after the password and the TOTP code, each certificate still valid is revoked through the
/// one revocation path (audit row, CRL, OCSP, e-mail) and every key of the account is destroyed in the token;
/// then the account is anonymised and closed, secrets and consents are deleted; what the retention rules keep is
/// kept, and listed with the reason. Nothing is revoked or erased when the step-up fails.
pub async fn erase(state: &Services, user: &User, req: ErasureRequest, client: &str) -> Result<Erased, AccountError> {
    if req.confirm != Some(true) {
        return Err(AccountError::Invalid(crate::text!(
            "error.privacy.erasure_closes_account_for_good"
        )));
    }
    let (checked, attempt) =
        crate::accounts::login::check_password(&state.accounts(), &user.email, req.password, client).await?;
    if checked.id != user.id {
        return Err(AccountError::WrongCredentials);
    }
    let paired = crate::db::users::totp(&state.db, &user.id)
        .await?
        .is_some_and(|p| p.status == TotpStatus::Active);
    if paired {
        crate::auth::totp::check_code(
            &state.db,
            &state.hsm,
            &state.settings.auth,
            state.clock.as_ref(),
            &user.id,
            req.totp.as_deref(),
            client,
        )
        .await?;
    }
    // Password and code both right: the attempt no longer counts against the login throttle.
    attempt.succeeded(&state.accounts()).await?;
    end_credentials(state, user, client).await?;
    let id = &user.id;
    let mut tx = state.db.writer().begin().await?;
    // The revocation notices just queued still go out; every other message to the person is dropped or blanked.
    db::erasure::erase_person(&mut tx, id, &user.email, &user.phone).await?;
    tx.commit().await?;
    audit(&state.accounts(), id, "gdpr.erasure", "ok", client, json!({})).await;
    let kept = kept_after_erasure(state, user, state.clock.now())
        .await
        .map_err(|e| match e {
            super::LifecycleError::Db(e) => AccountError::from(e),
            other => AccountError::Internal(other.to_string()),
        })?;
    Ok(Erased {
        status: "erased",
        erased: [
            "name, e-mail address and phone number (replaced by placeholders)",
            "password hash and authenticator pairing",
            "consents, one-time codes, sessions and API tokens",
            "copies of the messages sent to you",
        ],
        kept,
        effect: "your certificates were revoked and can no longer sign, their keys were destroyed; you were logged out everywhere",
    })
}

/// Revokes each of the user's certificates still valid (for cessation of operation, through
/// [`revoke_credential`]) and destroys every key of the account in the token, each
/// destruction audited with its credential.
async fn end_credentials(state: &Services, user: &User, client: &str) -> Result<(), AccountError> {
    let actor = format!("user:{}", user.id);
    for (credential, serial, status) in db::credentials::with_certificate_status(&state.db, &user.id).await? {
        if status != CertificateStatus::Revoked {
            // The step-up was checked by the caller: the holder is not asked again per certificate.
            match revoke_credential(state, &credential, None, "cessation_of_operation", &actor, client).await {
                Ok(_) | Err(RevokeError::AlreadyRevoked) => {}
                Err(RevokeError::Db(e)) => return Err(e.into()),
                Err(e) => return Err(AccountError::Internal(format!("certificate {serial} not revoked: {e}"))),
            }
        }
        let (hsm, key_id) = (state.hsm.clone(), credential.clone());
        tokio::task::spawn_blocking(move || hsm.destroy_key_pair(key_id.as_bytes()))
            .await
            .map_err(|e| AccountError::Internal(format!("key destruction task failed: {e}")))??;
        audit(
            &state.accounts(),
            &user.id,
            "credential.key_destroyed",
            "ok",
            client,
            json!({ "credential": credential, "serial": serial, "why": "erasure" }),
        )
        .await;
    }
    Ok(())
}
