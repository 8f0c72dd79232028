//! Revocation by the holder (with a TOTP code) or by an operator (the CLI), with a reason; the credential stops
//! signing at once and the CRL is regenerated.

use serde_json::json;

use super::Services;
use crate::auth::totp;
use crate::ca::revocation;
use crate::db;
use crate::i18n::Text;
use crate::text;

/// Why a revocation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("{}", self.text())]
    NotFound,
    #[error("{}", self.text())]
    AlreadyRevoked,
    #[error(transparent)]
    Code(#[from] totp::CodeError),
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    #[error(transparent)]
    Db(#[from] db::DbError),
}

impl RevokeError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            RevokeError::NotFound => text!("error.account.no_such_credential"),
            RevokeError::AlreadyRevoked => text!("error.account.certificate_already_revoked"),
            RevokeError::Code(e) => e.text(),
            RevokeError::Ca(_) => text!("error.account.revocation_failed"),
            RevokeError::Db(_) => text!("error.http.database_error"),
        }
    }
}

/// Revokes a credential's certificate. `holder` is the user who must own it (None: an operator); the holder
/// authorises with a TOTP code.
pub async fn revoke_credential(
    state: &Services,
    credential_id: &str,
    holder: Option<(&str, Option<&str>)>,
    reason: &str,
    actor: &str,
    client: &str,
) -> Result<String, RevokeError> {
    let cred = db::credentials::credential(&state.db, credential_id)
        .await?
        .filter(|c| holder.is_none_or(|(user, _)| c.user_id == user))
        .ok_or(RevokeError::NotFound)?;
    if let Some((user, code)) = holder {
        totp::check_code(
            &state.db,
            &state.hsm,
            &state.settings.auth,
            state.clock.as_ref(),
            user,
            code,
            client,
        )
        .await?;
    }
    if !revocation::revoke(
        &state.db,
        state.clock.as_ref(),
        &cred.cert_serial,
        reason,
        actor,
        client,
    )
    .await?
    {
        return Err(RevokeError::AlreadyRevoked);
    }
    // The CRL shows it at once (OCSP answers from the database anyway).
    if let Err(e) = revocation::crl(&state.db, &state.hsm, &state.ca, state.clock.as_ref(), "issuing").await {
        tracing::warn!(error = %e, "the CRL could not be regenerated after a revocation; it will be on the next request");
    }
    // The holder is told (#14). The CA module commits the revocation itself, so the e-mail is queued right after
    // it; a crash in between loses the e-mail, never the revocation.
    if let Some(user) = db::users::by_id(&state.db, &cred.user_id).await? {
        let m = crate::notify::email(
            &user.email,
            &user.lang,
            state.ca.public_base(),
            crate::notify::Template::CertificateRevoked {
                serial: &cred.cert_serial,
                reason,
            },
            "certificate_revoked",
        );
        crate::notify::enqueue(state.db.writer(), state.clock.as_ref(), &m).await?;
    }
    crate::accounts::audit(
        &state.accounts(),
        &cred.user_id,
        "credential.revoked",
        "ok",
        client,
        json!({ "reason": reason, "credential": cred.id, "serial": cred.cert_serial, "by": actor }),
    )
    .await;
    Ok(cred.cert_serial)
}
