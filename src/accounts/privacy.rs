//! Consents and GDPR rights (product rules §9): consents recorded with time and text version, the marketing one
//! revocable; an export of everything held on the user (no secrets); erasure that anonymises the person's data
//! except what the retention rules keep, and says what was kept and why.

use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;

use super::Services;
use super::{audit, AccountError};
use crate::clock::{rfc3339, Clock};
use crate::db::accounts as store;
use crate::db::users::User;

/// The consents a user gives or withdraws.
pub const KINDS: [&str; 3] = ["access", "privacy_notice", "marketing"];

/// `POST /api/v1/me/consents`.
#[derive(Debug, Deserialize)]
pub struct ConsentRequest {
    /// `access` (the one-time "allow access to protected resources" screen), `privacy_notice` (read to the end
    /// and acknowledged) or `marketing` (newsletter; withdrawable).
    pub kind: Option<String>,
    pub granted: Option<bool>,
}

/// Records a consent. Only marketing can be withdrawn; the others are acknowledgements.
pub async fn consent(state: &Services, user: &User, req: ConsentRequest, client: &str) -> Result<Value, AccountError> {
    let kind = req.kind.unwrap_or_default();
    if !KINDS.contains(&kind.as_str()) {
        return Err(AccountError::Invalid(format!(
            "kind must be one of {}",
            KINDS.join(", ")
        )));
    }
    let granted = req
        .granted
        .ok_or_else(|| AccountError::Invalid("granted (true or false) is required".into()))?;
    if !granted && kind != "marketing" {
        return Err(AccountError::Invalid(
            "Only the marketing consent can be withdrawn; to stop using the service, ask for erasure".into(),
        ));
    }
    let version = &state.settings.accounts.privacy_notice_version;
    let now = state.clock.now();
    store::insert_consent(state.db.writer(), &user.id, &kind, version, granted, client, now).await?;
    audit(
        state,
        &user.id,
        "consent.record",
        if granted { "granted" } else { "withdrawn" },
        client,
        json!({ "kind": kind }),
    )
    .await;
    consents_of(state, &user.id).await
}

/// The first-login consents still due (product rules §3.5): the one-time "Allow" screen, and the privacy notice
/// of the current version.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ConsentsDue {
    pub access: bool,
    pub privacy_notice: bool,
}

/// What of [`ConsentsDue`] is due, given the user's [`consents_of`].
pub fn due(state: &Services, consents: &Value) -> ConsentsDue {
    let version = &state.settings.accounts.privacy_notice_version;
    ConsentsDue {
        access: consents.get("access").is_none_or(|c| c["granted"] != true),
        privacy_notice: consents
            .get("privacy_notice")
            .is_none_or(|c| c["version"] != json!(version)),
    }
}

/// The latest state of each consent: `{kind: {granted, version, at}}`.
pub async fn consents_of(state: &Services, user_id: &str) -> Result<Value, AccountError> {
    let rows = sqlx::query("SELECT kind, version, granted, at FROM consents WHERE user_id = $1 ORDER BY at, id")
        .bind(user_id)
        .fetch_all(state.db.pool())
        .await?;
    let mut out = serde_json::Map::new();
    for r in rows {
        let kind: String = r.try_get("kind")?;
        out.insert(
            kind,
            json!({
                "granted": r.try_get::<i64, _>("granted")? != 0,
                "version": r.try_get::<String, _>("version")?,
                "at": rfc3339(r.try_get("at")?),
            }),
        );
    }
    Ok(Value::Object(out))
}

async fn rows(state: &Services, sql: &str, user_id: &str, columns: &[&str]) -> Result<Vec<Value>, AccountError> {
    let found = sqlx::query(sql).bind(user_id).fetch_all(state.db.pool()).await?;
    let mut out = Vec::with_capacity(found.len());
    for r in found {
        let mut o = serde_json::Map::new();
        for c in columns {
            let v = if let Ok(Some(s)) = r.try_get::<Option<String>, _>(*c) {
                json!(s)
            } else if let Ok(Some(n)) = r.try_get::<Option<i64>, _>(*c) {
                if c.ends_with("_at") || *c == "at" || c.starts_with("not_") {
                    json!(rfc3339(n))
                } else {
                    json!(n)
                }
            } else {
                Value::Null
            };
            o.insert((*c).to_owned(), v);
        }
        out.push(Value::Object(o));
    }
    Ok(out)
}

/// Everything Parafa holds on the user, as JSON, without secrets (no password hash, TOTP seed, token or code
/// hashes, message bodies).
pub async fn export(state: &Services, user: &User, client: &str) -> Result<Value, AccountError> {
    let id = &user.id;
    let mut messages = Vec::new();
    for r in sqlx::query(
        "SELECT medium, kind, status, created_at FROM outbox WHERE recipient = $1 OR recipient = $2 ORDER BY created_at, id",
    )
    .bind(&user.email)
    .bind(&user.phone)
    .fetch_all(state.db.pool())
    .await?
    {
        messages.push(json!({
            "medium": r.try_get::<String, _>("medium")?,
            "kind": r.try_get::<String, _>("kind")?,
            "status": r.try_get::<String, _>("status")?,
            "at": rfc3339(r.try_get("created_at")?),
        }));
    }
    let out = json!({
        "exported_at": rfc3339(state.clock.now()),
        "profile": {
            "user_id": user.id, "email": user.email, "given_name": user.given_name, "surname": user.surname,
            "phone": user.phone, "language": user.lang, "status": user.status, "created_at": rfc3339(user.created_at),
            "two_factor": user.two_factor, "two_factor_postponed": user.two_factor_postponed,
        },
        "consents": rows(state, "SELECT kind, version, granted, client, at FROM consents WHERE user_id = $1 ORDER BY at, id", id,
            &["kind", "version", "granted", "client", "at"]).await?,
        "authenticator": rows(state, "SELECT status, created_at, activated_at FROM totp_pairings WHERE user_id = $1", id,
            &["status", "created_at", "activated_at"]).await?,
        "credentials": rows(state,
            "SELECT c.id, c.key_spec, c.status, c.cert_serial, t.subject, t.not_before, t.not_after, q.total, q.used
             FROM credentials c JOIN certificates t ON t.serial = c.cert_serial JOIN quotas q ON q.credential_id = c.id
             WHERE c.user_id = $1 ORDER BY c.created_at", id,
            &["id", "key_spec", "status", "cert_serial", "subject", "not_before", "not_after", "total", "used"]).await?,
        "signatures": rows(state,
            "SELECT credential_id, digest, hash_algo, sign_algo, client, created_at FROM signatures WHERE user_id = $1 ORDER BY created_at", id,
            &["credential_id", "digest", "hash_algo", "sign_algo", "client", "created_at"]).await?,
        "sessions": rows(state, "SELECT client, created_at, expires_at, revoked FROM web_sessions WHERE user_id = $1 ORDER BY created_at", id,
            &["client", "created_at", "expires_at", "revoked"]).await?,
        "messages": messages,
        // What the holder wrote through the contact form, and the answers.
        "contact_messages": rows(state,
            "SELECT number, topic, body, state, answer, created_at, answered_at FROM contact_messages WHERE user_id = $1 ORDER BY created_at", id,
            &["number", "topic", "body", "state", "answer", "created_at", "answered_at"]).await?,
        "activity": rows(state, "SELECT action, outcome, client, at FROM audit_events WHERE target = $1 OR actor = 'user:' || $1 ORDER BY at, id", id,
            &["action", "outcome", "client", "at"]).await?,
    });
    audit(state, id, "gdpr.export", "ok", client, json!({})).await;
    Ok(out)
}
