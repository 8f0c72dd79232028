//! Enrolment and activation (product rules §3): enrol → invitation e-mail with a single-use link → confirm the
//! data and re-enter the phone → SMS code → password → active.
//!
//! The flow's stages: `invited` → `phone_code_sent` → `phone_verified` → `done`. Three failed steps (a phone that
//! does not match) kill the link; a code that fails three times is dead and a new one can be asked for after the
//! resend cool-down.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Services;
use super::{audit, check_password_strength, normalise_phone, AccountError};
use crate::auth::{codes, tokens};
use crate::clock::Clock;
use crate::db::accounts::{self as store, ConsentKind, Flow, FlowEvent, FlowStage};
use crate::db::users::{self, Role, TwoFactorSetting, User, UserStatus};
use crate::notify::templates::CodePurpose;
use crate::notify::{self, Lang, Medium, Message, Template};
use crate::text;

const KIND: &str = "enrolment";

/// `POST /api/v1/enrolments`.
#[derive(Debug, Deserialize)]
pub struct EnrolRequest {
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// "I have read the privacy notice" (required).
    pub privacy_acknowledged: Option<bool>,
    pub lang: Option<String>,
}

/// What a valid invitation link shows before activation.
#[derive(Debug, Serialize)]
pub struct InvitationView {
    pub given_name: String,
    pub surname: String,
    pub email: String,
    /// The last two digits of the enrolled phone number.
    pub phone_ends_with: String,
    pub stage: FlowStage,
    pub expires_at: String,
}

/// A required field; `missing` is the key of the refusal when it is empty.
fn required(value: Option<String>, missing: &'static str) -> Result<String, AccountError> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AccountError::Invalid(text!(missing)))
}

/// Enrols a person and e-mails the invitation. The answer is the same whether or not the e-mail already has an
/// account: an existing owner is told by e-mail instead, so the endpoint reveals nothing about who is a customer.
pub async fn enrol(state: &Services, req: EnrolRequest, client: &str) -> Result<(), AccountError> {
    let given_name = required(req.given_name, "error.enrol.given_name_required")?;
    let surname = required(req.surname, "error.enrol.surname_required")?;
    let email = super::email::canonical(&required(req.email, "error.enrol.e_mail_address_required")?)
        .map_err(|_| AccountError::Invalid(crate::text!("error.enrol.e_mail_address_not_valid")))?;
    let phone = normalise_phone(&required(req.phone, "error.enrol.phone_number_required")?)?;
    if given_name.chars().count() > 100 || surname.chars().count() > 100 {
        return Err(AccountError::Invalid(crate::text!(
            "error.enrol.names_have_at_most_100"
        )));
    }
    if req.privacy_acknowledged != Some(true) {
        return Err(AccountError::Invalid(crate::text!(
            "error.enrol.please_confirm_that_have_read"
        )));
    }
    let lang = Lang::or_default(req.lang.as_deref());
    let (db, clock, acc) = (&state.db, state.clock.as_ref(), &state.settings.accounts);
    let now = clock.now();
    let base = state.ca.public_base();
    // Whatever follows (an invitation, a note to an existing owner, nothing), this address had its share of
    // unrequested mail: counted before anything is looked up, so the answer does not tell who is a customer.
    codes::reserve_send_now(db, &state.settings.limits, &email, now).await?;

    if let Some(other) = users::by_phone(db, &phone).await? {
        if other.email != email {
            // Another person's number: a conflict with the state, not a malformed request (409, as for a taken
            // e-mail elsewhere), so that clients can tell "fix the format" from "use another number".
            return Err(AccountError::Conflict(crate::text!(
                "error.enrol.phone_number_cannot_used_each"
            )));
        }
    }
    if let Some(existing) = users::by_email(db, &email).await? {
        if existing.status != UserStatus::Invited {
            let (subject, body) = Template::AlreadyEnrolled {
                login_link: &format!("{base}/login"),
                recovery_link: &format!("{base}/password-recovery"),
            }
            .render(Lang::or_default(Some(&existing.lang)), &format!("{base}/contact"));
            let m = Message {
                medium: Medium::Email,
                recipient: existing.email.clone(),
                subject,
                body,
                kind: "already_enrolled".into(),
            };
            notify::enqueue(db.writer(), clock, &m).await?;
            audit(state, &existing.id, "enrolment.repeat", "owner told", client, json!({})).await;
            return Ok(());
        }
        // Enrolled but never activated: a fresh invitation replaces the old one.
        return invite(state, &existing, lang, client).await;
    }

    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        email,
        given_name,
        surname,
        phone,
        password_hash: String::new(),
        role: Role::Holder,
        status: UserStatus::Invited,
        two_factor: TwoFactorSetting::Pending,
        created_at: now,
        lang: lang.as_str().into(),
        two_factor_postponed: None,
        two_factor_until: None,
    };
    let mut tx = db.writer().begin().await?;
    match users::insert(&mut *tx, &user).await {
        // Enrolled at the same moment by another request, which sends the invitation: the same answer.
        Err(crate::db::DbError::Conflict(_)) => return Ok(()),
        other => other?,
    }
    store::insert_consent(
        &mut *tx,
        &user.id,
        ConsentKind::PrivacyNotice,
        &acc.privacy_notice_version,
        true,
        client,
        now,
    )
    .await?;
    crate::db::users::set_privacy_ack(&mut tx, &user.id, now, &acc.privacy_notice_version).await?;
    tx.commit().await?;
    audit(
        state,
        &user.id,
        "enrolment.create",
        "ok",
        client,
        json!({ "lang": user.lang }),
    )
    .await;
    invite(state, &user, lang, client).await
}

/// Starts a new invitation flow and queues its e-mail.
pub(crate) async fn invite(state: &Services, user: &User, lang: Lang, client: &str) -> Result<(), AccountError> {
    let (db, clock, acc) = (&state.db, state.clock.as_ref(), &state.settings.accounts);
    let now = clock.now();
    let (token, token_hash) = tokens::new_secret();
    let flow = Flow {
        id: uuid::Uuid::now_v7().to_string(),
        token_hash: Some(token_hash),
        user_id: user.id.clone(),
        kind: KIND.into(),
        stage: FlowStage::Invited,
        data: "{}".into(),
        attempts: 0,
        expires_at: now + acc.invitation_ttl_secs,
    };
    let base = state.ca.public_base();
    let (subject, body) = Template::Invitation {
        name: &user.given_name,
        link: &format!("{base}/invitations/{token}"),
        valid_hours: acc.invitation_ttl_secs / 3600,
        docs: &format!("{base}/legal"),
    }
    .render(lang, &format!("{base}/contact"));
    let m = Message {
        medium: Medium::Email,
        recipient: user.email.clone(),
        subject,
        body,
        kind: "invitation".into(),
    };
    let mut tx = db.writer().begin().await?;
    store::close_flows(&mut *tx, &user.id, KIND, now).await?;
    store::insert_flow(&mut *tx, &flow, now).await?;
    notify::enqueue(&mut *tx, clock, &m).await?;
    tx.commit().await?;
    audit(state, &user.id, "enrolment.invite", "ok", client, json!({})).await;
    Ok(())
}

/// The live flow of an invitation link.
async fn flow_of(state: &Services, token: &str) -> Result<(Flow, User), AccountError> {
    let flow = store::flow_by_token(&state.db, &tokens::hash(token))
        .await?
        .filter(|f| f.kind == KIND)
        .ok_or_else(|| AccountError::NotFound(crate::text!("error.enrol.activation_link_not_valid")))?;
    if flow.stage == FlowStage::Done {
        return Err(AccountError::Expired(crate::text!(
            "error.enrol.activation_link_was_already_used"
        )));
    }
    if flow.stage == FlowStage::Closed || flow.attempts >= state.settings.accounts.max_code_attempts {
        return Err(AccountError::Expired(crate::text!(
            "error.enrol.activation_link_no_longer_valid"
        )));
    }
    if flow.expires_at <= state.clock.now() {
        return Err(AccountError::Expired(crate::text!(
            "error.enrol.activation_link_has_expired_enrol"
        )));
    }
    let user = users::by_id(&state.db, &flow.user_id)
        .await?
        .ok_or_else(|| AccountError::NotFound(crate::text!("error.enrol.activation_link_not_valid")))?;
    Ok((flow, user))
}

/// `GET /api/v1/invitations/{token}`: the data to confirm.
pub async fn view(state: &Services, token: &str) -> Result<InvitationView, AccountError> {
    let (flow, user) = flow_of(state, token).await?;
    Ok(InvitationView {
        phone_ends_with: user
            .phone
            .chars()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect(),
        given_name: user.given_name,
        surname: user.surname,
        email: user.email,
        stage: flow.stage,
        expires_at: crate::clock::rfc3339(flow.expires_at),
    })
}

/// `POST …/phone`: the phone number typed again must be the enrolled one; then an SMS code goes to it.
pub async fn phone(
    state: &Services,
    token: &str,
    phone: Option<String>,
    client: &str,
) -> Result<codes::Sent, AccountError> {
    let (flow, user) = flow_of(state, token).await?;
    if !matches!(flow.stage, FlowStage::Invited | FlowStage::PhoneCodeSent) {
        return Err(AccountError::Conflict(crate::text!(
            "error.enrol.phone_number_already_verified"
        )));
    }
    let typed = normalise_phone(&required(phone, "error.enrol.phone_number_required")?)?;
    if typed != user.phone {
        let failures = store::fail_flow(&state.db, &flow.id).await?;
        audit(
            state,
            &user.id,
            "enrolment.phone",
            "mismatch",
            client,
            json!({ "failures": failures }),
        )
        .await;
        return Err(AccountError::Invalid(crate::text!(
            "error.enrol.phone_number_does_not_match",
            left = (state.settings.accounts.max_code_attempts - failures).max(0)
        )));
    }
    let sent = send_sms_code(state, &flow, &user, CodePurpose::Activation, "activation").await?;
    store::advance_flow(
        state.db.writer(),
        &flow.id,
        FlowEvent::PhoneCodeSent,
        None,
        state.clock.now(),
    )
    .await?;
    Ok(sent)
}

/// Sends an SMS code of this purpose to the user's phone within `flow`.
pub async fn send_sms_code(
    state: &Services,
    flow: &Flow,
    user: &User,
    purpose: CodePurpose,
    purpose_name: &str,
) -> Result<codes::Sent, AccountError> {
    let acc = &state.settings.accounts;
    let lang = Lang::or_default(Some(&user.lang));
    let ttl = acc.sms_code_ttl_secs;
    let phone = user.phone.clone();
    let sent = codes::send(
        &state.db,
        state.clock.as_ref(),
        &state.settings,
        flow,
        purpose_name,
        &phone,
        ttl,
        |code| {
            let (subject, body) = Template::SmsCode {
                code,
                minutes: ttl / 60,
                purpose,
            }
            .render(lang, "");
            Message {
                medium: Medium::Sms,
                recipient: phone.clone(),
                subject,
                body,
                kind: format!("sms_code_{purpose_name}"),
            }
        },
    )
    .await?;
    Ok(sent)
}

/// `POST …/phone/verify`: the SMS code.
pub async fn verify_phone(
    state: &Services,
    token: &str,
    code: Option<String>,
    client: &str,
) -> Result<(), AccountError> {
    let (flow, user) = flow_of(state, token).await?;
    if flow.stage != FlowStage::PhoneCodeSent {
        return Err(AccountError::Conflict(crate::text!(
            "error.enrol.ask_for_sms_code_first"
        )));
    }
    let checked = codes::verify(
        &state.db,
        state.clock.as_ref(),
        &state.settings.accounts,
        &flow.id,
        "activation",
        code.as_deref(),
    )
    .await;
    if let Err(e) = checked {
        audit(
            state,
            &user.id,
            "enrolment.sms",
            "refused",
            client,
            json!({ "reason": e.to_string() }),
        )
        .await;
        return Err(e.into());
    }
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    store::advance_flow(&mut *tx, &flow.id, FlowEvent::PhoneVerified, None, now).await?;
    store::set_user_status(&mut *tx, &user.id, UserStatus::PhoneVerified).await?;
    tx.commit().await?;
    audit(state, &user.id, "enrolment.phone_verified", "ok", client, json!({})).await;
    Ok(())
}

/// `POST …/password`: the password; the account becomes active and the link is used up.
pub async fn set_password(
    state: &Services,
    token: &str,
    password: Option<SecretString>,
    client: &str,
) -> Result<(), AccountError> {
    use secrecy::ExposeSecret;
    let (flow, user) = flow_of(state, token).await?;
    if flow.stage != FlowStage::PhoneVerified {
        return Err(AccountError::Conflict(crate::text!(
            "error.enrol.verify_phone_number_first"
        )));
    }
    let pw = password.ok_or_else(|| AccountError::Invalid(crate::text!("error.enrol.password_required")))?;
    let (given, surname, email) = (user.given_name.clone(), user.surname.clone(), user.email.clone());
    check_password_strength(state, pw.expose_secret(), &[&given, &surname, &email])?;
    let hash = state.hasher.hash(pw, 0).await?;
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    if !store::advance_flow(&mut *tx, &flow.id, FlowEvent::Enrolled, None, now).await? {
        return Err(AccountError::Conflict(crate::text!(
            "error.enrol.activation_link_was_already_used"
        )));
    }
    store::set_password(&mut *tx, &user.id, &hash).await?;
    store::set_user_status(&mut *tx, &user.id, UserStatus::Active).await?;
    tx.commit().await?;
    audit(state, &user.id, "account.activate", "ok", client, json!({})).await;
    Ok(())
}
