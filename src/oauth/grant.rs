//! The holder's answer on the consent page. "Allow" checks the TOTP code for a `credential` request (as
//! `credentials/authorize` does), records the consent, and sends the browser back with a one-minute code; "Refuse"
//! sends it back with `access_denied`. Both are audited.

use serde::Serialize;
use serde_json::json;

use super::request::{Ask, AuthRequest, CredentialAsk};
use super::{redirect_to, OAuthError, Services, SCOPE_CREDENTIAL, SCOPE_SERVICE};
use crate::auth::{tokens, totp};
use crate::db::oauth::{self as store, Allowed, CodeRow, GrantRow};
use crate::text;

/// What the consent page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentView {
    /// The application's registered name.
    pub client_name: String,
    /// `service` or `credential`.
    pub scope: &'static str,
    /// For `credential`: the credential, the signatures and the documents' labels; the holder's TOTP code is asked.
    pub credential: Option<CredentialAsk>,
    /// The certificate's subject, for `credential`.
    pub subject: Option<String>,
}

/// What the holder is asked to allow; refuses a credential that is not theirs or cannot sign.
pub async fn view(svc: Services<'_>, user_id: &str, req: &AuthRequest) -> Result<ConsentView, OAuthError> {
    let (scope, credential, subject) = match &req.ask {
        Ask::Service => (SCOPE_SERVICE, None, None),
        Ask::Credential(c) => {
            let subject = holder_credential(svc, user_id, &c.credential_id).await?;
            (SCOPE_CREDENTIAL, Some(c.clone()), Some(subject))
        }
    };
    Ok(ConsentView {
        client_name: req.client.name.clone(),
        scope,
        credential,
        subject,
    })
}

/// The subject of the holder's active credential `id`.
async fn holder_credential(svc: Services<'_>, user_id: &str, id: &str) -> Result<String, OAuthError> {
    let found = crate::db::credentials::credential_full(svc.db, id).await?;
    match found {
        Some((cred, cert, _))
            if cred.user_id == user_id && crate::signing::usable(cred.status, &cert, svc.clock.now()).is_ok() =>
        {
            Ok(cert.subject)
        }
        _ => Err(OAuthError::Invalid(text!("error.oauth.credential_not_usable"))),
    }
}

/// The holder's answer: where the browser goes next (the client's redirect URI with a code, or with
/// `access_denied`). A wrong TOTP code is an error the page shows; the holder may try again.
pub async fn decide(
    svc: Services<'_>,
    user_id: &str,
    req: &AuthRequest,
    allow: bool,
    otp: Option<&str>,
    client_addr: &str,
) -> Result<String, OAuthError> {
    let actor = format!("user:{user_id}");
    let issuer = svc.issuer();
    let state = req.state.as_deref();
    let with_state = |mut params: Vec<(&'static str, String)>| {
        if let Some(s) = state {
            params.push(("state", s.to_owned()));
        }
        params.push(("iss", issuer.clone()));
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect_to(&req.redirect_uri, &pairs)
    };
    if !allow {
        let row = svc.audit(
            &actor,
            "oauth.refuse",
            &req.client.id,
            "refused",
            client_addr,
            json!({}),
        );
        crate::db::audit::insert(svc.db.writer(), &row).await?;
        if let Some(uri) = &req.request_uri_hash {
            store::use_request(svc.db, uri).await?;
        }
        return Ok(with_state(vec![
            ("error", OAuthError::Refused.code().to_owned()),
            (
                "error_description",
                OAuthError::Refused.text().render(crate::i18n::Lang::En),
            ),
        ]));
    }
    let now = svc.clock.now();
    let (scope, credential) = match &req.ask {
        Ask::Service => (SCOPE_SERVICE, None),
        Ask::Credential(c) => {
            holder_credential(svc, user_id, &c.credential_id).await?;
            if let Err(e) = totp::check_code(
                svc.db,
                svc.hsm,
                &svc.settings.auth,
                svc.clock,
                user_id,
                otp,
                client_addr,
            )
            .await
            {
                let row = svc.audit(
                    &actor,
                    "oauth.allow",
                    &req.client.id,
                    "wrong code",
                    client_addr,
                    json!({}),
                );
                crate::db::audit::insert(svc.db.writer(), &row).await?;
                return Err(e.into());
            }
            (SCOPE_CREDENTIAL, Some(c))
        }
    };
    let grant_id = uuid::Uuid::now_v7().to_string();
    let (code, code_hash) = tokens::new_secret();
    let grant = GrantRow {
        id: grant_id.clone(),
        client_id: req.client.id.clone(),
        user_id: user_id.to_owned(),
        scope: scope.to_owned(),
        revoked: false,
        created_at: now,
    };
    let code_row = CodeRow {
        code_hash,
        grant_id: grant_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        credential_id: credential.map(|c| c.credential_id.clone()),
        num_signatures: credential.map(|c| c.num_signatures),
        digests: credential
            .map(|c| c.digests.iter().map(hex::encode).collect())
            .unwrap_or_default(),
        hash_algo: credential.and_then(|c| c.hash_algo).map(|h| h.oid().to_string()),
        details: credential.and_then(|c| c.details.clone()),
        expires_at: now + svc.settings.csc.oauth_code_ttl_secs,
        used: false,
    };
    let audit = svc.audit(
        &actor,
        "oauth.allow",
        &req.client.id,
        "ok",
        client_addr,
        json!({
            "grant": grant_id,
            "scope": scope,
            "credential": credential.map(|c| &c.credential_id),
            "signatures": credential.map(|c| c.num_signatures),
        }),
    );
    store::insert_allowed(
        svc.db,
        &Allowed {
            grant,
            code: code_row,
            consent_version: format!("{} {}", req.client.id, scope),
            client: client_addr.to_owned(),
            request_uri_hash: req.request_uri_hash.clone(),
            audit,
        },
    )
    .await?;
    Ok(with_state(vec![("code", code)]))
}
