//! Consents and GDPR rights (product rules §9): consents recorded with time and text version, the marketing one
//! revocable; an export of everything held on the user (no secrets); erasure that anonymises the person's data
//! except what the retention rules keep, and says what was kept and why.

use serde::Deserialize;
use serde_json::{json, Value};

use super::Services;
use super::{audit, AccountError};
use crate::clock::{rfc3339, Clock};
use crate::db;
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
        return Err(AccountError::Invalid(crate::text!(
            "error.privacy.kind_must_one",
            kinds = KINDS.join(", ")
        )));
    }
    let granted = req
        .granted
        .ok_or_else(|| AccountError::Invalid(crate::text!("error.privacy.granted_true_or_false_required")))?;
    if !granted && kind != "marketing" {
        return Err(AccountError::Invalid(crate::text!(
            "error.privacy.only_marketing_consent_can_withdrawn"
        )));
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
    let mut out = serde_json::Map::new();
    for c in db::privacy::consents(&state.db, user_id).await? {
        out.insert(
            c.kind,
            json!({ "granted": c.granted, "version": c.version, "at": rfc3339(c.at) }),
        );
    }
    Ok(Value::Object(out))
}

/// An exported row as JSON: times (`at`, `*_at`, `not_*`) as dates.
fn row_json(row: &db::privacy::Exported) -> Value {
    use db::privacy::Cell;
    let mut o = serde_json::Map::new();
    for (c, cell) in row {
        let v = match cell {
            Cell::Text(s) => json!(s),
            Cell::Int(n) if c.ends_with("_at") || *c == "at" || c.starts_with("not_") => json!(rfc3339(*n)),
            Cell::Int(n) => json!(n),
            Cell::Null => Value::Null,
        };
        o.insert((*c).to_owned(), v);
    }
    Value::Object(o)
}

/// Everything Parafa holds on the user, as JSON, without secrets (no password hash, TOTP seed, token or code
/// hashes, message bodies).
pub async fn export(state: &Services, user: &User, client: &str) -> Result<Value, AccountError> {
    let id = &user.id;
    let messages: Vec<Value> = db::privacy::messages_to(&state.db, &user.email, &user.phone)
        .await?
        .into_iter()
        .map(|m| json!({ "medium": m.medium, "kind": m.kind, "status": m.status, "at": rfc3339(m.created_at) }))
        .collect();
    let mut out = json!({
        "exported_at": rfc3339(state.clock.now()),
        "profile": {
            "user_id": user.id, "email": user.email, "given_name": user.given_name, "surname": user.surname,
            "phone": user.phone, "language": user.lang, "status": user.status, "created_at": rfc3339(user.created_at),
            "two_factor": user.two_factor, "two_factor_postponed": user.two_factor_postponed,
        },
        "messages": messages,
    });
    for (section, rows) in db::privacy::sections(&state.db, id).await? {
        out[section] = Value::Array(rows.iter().map(row_json).collect());
    }
    audit(state, id, "gdpr.export", "ok", client, json!({})).await;
    Ok(out)
}
