//! Consents and GDPR rights (product rules §9): consents recorded with time and text version, the marketing one
//! revocable; an export of everything held on the user (no secrets); erasure that anonymises the person's data
//! except what the retention rules keep, and says what was kept and why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Services;
use super::{audit, AccountError};
use crate::clock::{rfc3339, Clock};
use crate::db;
use crate::db::accounts::{self as store, ConsentKind};
use crate::db::users::{Postponement, TwoFactorSetting, User, UserStatus};

/// `POST /api/v1/me/consents`.
#[derive(Debug, Deserialize)]
pub struct ConsentRequest {
    /// `access` (the one-time "allow access to protected resources" screen), `privacy_notice` (read to the end
    /// and acknowledged) or `marketing` (newsletter; withdrawable).
    pub kind: Option<String>,
    pub granted: Option<bool>,
}

/// Records a consent. Only marketing can be withdrawn; the others are acknowledgements.
pub async fn consent(
    state: &Services,
    user: &User,
    req: ConsentRequest,
    client: &str,
) -> Result<Consents, AccountError> {
    // An application's consent is recorded by the OAuth 2.0 consent page only.
    let asked = [ConsentKind::Access, ConsentKind::PrivacyNotice, ConsentKind::Marketing];
    let kind = ConsentKind::parse(&req.kind.unwrap_or_default())
        .filter(|k| asked.contains(k))
        .ok_or_else(|| {
            AccountError::Invalid(crate::text!(
                "error.privacy.kind_must_one",
                kinds = asked.map(ConsentKind::as_str).join(", ")
            ))
        })?;
    let granted = req
        .granted
        .ok_or_else(|| AccountError::Invalid(crate::text!("error.privacy.granted_true_or_false_required")))?;
    if !granted && kind != ConsentKind::Marketing {
        return Err(AccountError::Invalid(crate::text!(
            "error.privacy.only_marketing_consent_can_withdrawn"
        )));
    }
    let version = &state.settings.accounts.privacy_notice_version;
    let now = state.clock.now();
    store::insert_consent(state.db.writer(), &user.id, kind, version, granted, client, now).await?;
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
pub fn due(state: &Services, consents: &Consents) -> ConsentsDue {
    let version = &state.settings.accounts.privacy_notice_version;
    ConsentsDue {
        access: consents.get(ConsentKind::Access.as_str()).is_none_or(|c| !c.granted),
        privacy_notice: consents
            .get(ConsentKind::PrivacyNotice.as_str())
            .is_none_or(|c| c.version != *version),
    }
}

/// The latest state of one consent.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentState {
    pub at: String,
    pub granted: bool,
    /// The version of the text consented to.
    pub version: String,
}

/// The latest state of each consent, by kind (a [`ConsentKind`]'s stored name).
pub type Consents = BTreeMap<String, ConsentState>;

/// The latest state of each consent: `{kind: {granted, version, at}}`.
pub async fn consents_of(state: &Services, user_id: &str) -> Result<Consents, AccountError> {
    let mut out = Consents::new();
    for c in db::privacy::consents(&state.db, user_id).await? {
        out.insert(
            c.kind.as_str().to_owned(),
            ConsentState {
                granted: c.granted,
                version: c.version,
                at: rfc3339(c.at),
            },
        );
    }
    Ok(out)
}

/// One value of an exported row.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ExportValue {
    /// Text, or a time shown as a date.
    Text(String),
    Int(i64),
    Null,
}

/// An exported row: each column's value, times (`at`, `*_at`, `not_*`) as dates.
pub type ExportRow = BTreeMap<&'static str, ExportValue>;

fn export_row(row: db::privacy::Exported) -> ExportRow {
    use db::privacy::Cell;
    row.into_iter()
        .map(|(c, cell)| {
            let v = match cell {
                Cell::Text(s) => ExportValue::Text(s),
                Cell::Int(n) if c.ends_with("_at") || c == "at" || c.starts_with("not_") => {
                    ExportValue::Text(rfc3339(n))
                }
                Cell::Int(n) => ExportValue::Int(n),
                Cell::Null => ExportValue::Null,
            };
            (c, v)
        })
        .collect()
}

/// Everything Parafa holds on a person, without secrets.
#[derive(Debug, Serialize)]
pub struct Export {
    pub exported_at: String,
    /// The e-mails and SMS sent to them (never their bodies).
    pub messages: Vec<ExportedMessage>,
    pub profile: Profile,
    /// The table sections (`consents`, `credentials`, `signatures`, …), each a list of rows.
    #[serde(flatten)]
    pub sections: BTreeMap<&'static str, Vec<ExportRow>>,
}

/// A message sent to the person, as exported.
#[derive(Debug, Serialize)]
pub struct ExportedMessage {
    pub at: String,
    pub kind: String,
    pub medium: String,
    pub status: String,
}

/// The person's account, as exported.
#[derive(Debug, Serialize)]
pub struct Profile {
    pub created_at: String,
    pub email: String,
    pub given_name: String,
    pub language: String,
    pub phone: String,
    pub status: UserStatus,
    pub surname: String,
    pub two_factor: TwoFactorSetting,
    pub two_factor_postponed: Option<Postponement>,
    pub user_id: String,
}

/// Everything Parafa holds on the user, as JSON, without secrets (no password hash, TOTP seed, token or code
/// hashes, message bodies).
pub async fn export(state: &Services, user: &User, client: &str) -> Result<Export, AccountError> {
    let id = &user.id;
    let messages = db::privacy::messages_to(&state.db, &user.email, &user.phone)
        .await?
        .into_iter()
        .map(|m| ExportedMessage {
            medium: m.medium,
            kind: m.kind,
            status: m.status,
            at: rfc3339(m.created_at),
        })
        .collect();
    let mut out = Export {
        exported_at: rfc3339(state.clock.now()),
        profile: Profile {
            user_id: user.id.clone(),
            email: user.email.clone(),
            given_name: user.given_name.clone(),
            surname: user.surname.clone(),
            phone: user.phone.clone(),
            language: user.lang.clone(),
            status: user.status,
            created_at: rfc3339(user.created_at),
            two_factor: user.two_factor,
            two_factor_postponed: user.two_factor_postponed,
        },
        messages,
        sections: BTreeMap::new(),
    };
    for (section, rows) in db::privacy::sections(&state.db, id).await? {
        out.sections.insert(section, rows.into_iter().map(export_row).collect());
    }
    audit(state, id, "gdpr.export", "ok", client, json!({})).await;
    Ok(out)
}
