//! Account maintenance (product rules §6): password change, password recovery (e-mail link → SMS code → new
//! password) and phone change (e-mail code → new number → SMS code to it). Each ends every session of the user and
//! is confirmed by e-mail.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::enrolment::send_sms_code;
use super::Services;
use super::{audit, check_password_strength, normalise_phone, AccountError};
use crate::auth::{codes, tokens};
use crate::clock::Clock;
use crate::db::accounts::{self as store, Flow, FlowEvent, FlowStage};
use crate::db::users::{self, User, UserStatus};
use crate::notify::templates::CodePurpose;
use crate::notify::{self, Lang, Medium, Message, Template};

/// `POST /api/v1/me/password`.
#[derive(Debug, Deserialize)]
pub struct ChangePassword {
    pub current: Option<SecretString>,
    pub new: Option<SecretString>,
}

async fn hash_new(state: &Services, user: &User, new: Option<SecretString>) -> Result<String, AccountError> {
    let pw = new.ok_or_else(|| AccountError::Invalid(crate::text!("error.account.new_password_required")))?;
    check_password_strength(
        state,
        pw.expose_secret(),
        &[&user.given_name, &user.surname, &user.email],
    )?;
    Ok(state.hasher.hash(pw, 0).await?)
}

fn email(user: &User, state: &Services, t: Template<'_>, kind: &str) -> Message {
    notify::email(&user.email, &user.lang, state.ca.public_base(), t, kind)
}

/// Stores the new password hash, ends every session and queues the confirmation, in one transaction; a recovery
/// `flow` is done with it.
async fn replace_password(state: &Services, user: &User, hash: &str, flow: Option<&Flow>) -> Result<(), AccountError> {
    let now = state.clock.now();
    let m = email(user, state, Template::PasswordChanged, "password_changed");
    let mut tx = state.db.writer().begin().await?;
    if let Some(f) = flow {
        if !store::advance_flow(&mut *tx, &f.id, FlowEvent::Recovered, None, now).await? {
            return Err(AccountError::Conflict(crate::text!(
                "error.account.step_was_already_done"
            )));
        }
    }
    store::set_password(&mut *tx, &user.id, hash).await?;
    store::revoke_all_sessions(&mut tx, &user.id).await?;
    notify::enqueue(&mut *tx, state.clock.as_ref(), &m).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the password (the current one is required); every session ends.
pub async fn change_password(
    state: &Services,
    user: &User,
    req: ChangePassword,
    client: &str,
) -> Result<(), AccountError> {
    let current = req
        .current
        .ok_or_else(|| AccountError::Invalid(crate::text!("error.account.current_password_required")))?;
    let ok = state.hasher.verify(current, Some(user.password_hash.clone())).await?;
    if !ok {
        audit(
            state,
            &user.id,
            "password.change",
            "wrong current password",
            client,
            json!({}),
        )
        .await;
        return Err(AccountError::Invalid(crate::text!(
            "error.account.current_password_wrong"
        )));
    }
    let hash = hash_new(state, user, req.new).await?;
    replace_password(state, user, &hash, None).await?;
    audit(state, &user.id, "password.change", "ok", client, json!({})).await;
    Ok(())
}

const RECOVERY: &str = "recovery";

/// `POST /api/v1/password-recovery`: e-mails a recovery link to an active account; says nothing either way.
pub async fn start_recovery(state: &Services, email_address: Option<String>, client: &str) -> Result<(), AccountError> {
    let address = super::email::canonical(email_address.as_deref().unwrap_or_default())
        .map_err(|_| AccountError::Invalid(crate::text!("error.enrol.e_mail_address_not_valid")))?;
    // Counted whether or not the address has an account, so the answer tells nothing either way.
    codes::reserve_send_now(&state.db, &state.settings.limits, &address, state.clock.now()).await?;
    let Some(user) = users::by_email(&state.db, &address)
        .await?
        .filter(|u| u.status == UserStatus::Active)
    else {
        return Ok(());
    };
    let acc = &state.settings.accounts;
    let now = state.clock.now();
    let (token, token_hash) = tokens::new_secret();
    let flow = Flow {
        id: uuid::Uuid::now_v7().to_string(),
        token_hash: Some(token_hash),
        user_id: user.id.clone(),
        kind: RECOVERY.into(),
        stage: FlowStage::LinkSent,
        data: "{}".into(),
        attempts: 0,
        expires_at: now + acc.recovery_link_ttl_secs,
    };
    let link = format!("{}/password-recovery/{token}", state.ca.public_base());
    let m = email(
        &user,
        state,
        Template::PasswordRecovery {
            link: &link,
            valid_minutes: acc.recovery_link_ttl_secs / 60,
        },
        "password_recovery",
    );
    let mut tx = state.db.writer().begin().await?;
    store::close_flows(&mut *tx, &user.id, RECOVERY, now).await?;
    store::insert_flow(&mut *tx, &flow, now).await?;
    notify::enqueue(&mut *tx, state.clock.as_ref(), &m).await?;
    tx.commit().await?;
    audit(state, &user.id, "password.recovery.start", "ok", client, json!({})).await;
    Ok(())
}

async fn recovery_flow(state: &Services, token: &str, stages: &[FlowStage]) -> Result<(Flow, User), AccountError> {
    let flow = store::flow_by_token(&state.db, &tokens::hash(token))
        .await?
        .filter(|f| f.kind == RECOVERY)
        .ok_or_else(|| AccountError::NotFound(crate::text!("error.account.recovery_link_not_valid")))?;
    if !flow.stage.is_open() || flow.expires_at <= state.clock.now() {
        return Err(AccountError::Expired(crate::text!(
            "error.account.recovery_link_no_longer_valid"
        )));
    }
    if !stages.contains(&flow.stage) {
        return Err(AccountError::Conflict(match flow.stage {
            FlowStage::LinkSent => crate::text!("error.enrol.ask_for_sms_code_first"),
            FlowStage::SmsSent => crate::text!("error.account.enter_sms_code_first"),
            _ => crate::text!("error.account.step_was_already_done"),
        }));
    }
    let user = users::by_id(&state.db, &flow.user_id)
        .await?
        .filter(|u| u.status == UserStatus::Active)
        .ok_or_else(|| AccountError::NotFound(crate::text!("error.account.recovery_link_not_valid")))?;
    Ok((flow, user))
}

/// The stage of a live recovery link (`link_sent`, `sms_sent`, `verified`), for the page the link opens.
pub async fn recovery_stage(state: &Services, token: &str) -> Result<FlowStage, AccountError> {
    let (flow, _) = recovery_flow(
        state,
        token,
        &[FlowStage::LinkSent, FlowStage::SmsSent, FlowStage::Verified],
    )
    .await?;
    Ok(flow.stage)
}

/// `POST …/{token}/sms`: "Send code".
pub async fn recovery_sms(state: &Services, token: &str, client: &str) -> Result<codes::Sent, AccountError> {
    // The code may be asked for again (after the cool-down) while it has not been entered.
    let (flow, user) = recovery_flow(state, token, &[FlowStage::LinkSent, FlowStage::SmsSent]).await?;
    let sent = send_sms_code(state, &flow, &user, CodePurpose::PasswordRecovery, RECOVERY).await?;
    store::advance_flow(
        state.db.writer(),
        &flow.id,
        FlowEvent::RecoveryCodeSent,
        None,
        state.clock.now(),
    )
    .await?;
    audit(state, &user.id, "password.recovery.sms", "ok", client, json!({})).await;
    Ok(sent)
}

/// `POST …/{token}/verify`: the SMS code.
pub async fn recovery_verify(
    state: &Services,
    token: &str,
    code: Option<String>,
    client: &str,
) -> Result<(), AccountError> {
    let (flow, user) = recovery_flow(state, token, &[FlowStage::SmsSent]).await?;
    codes::verify(
        &state.db,
        state.clock.as_ref(),
        &state.settings.accounts,
        &flow.id,
        RECOVERY,
        code.as_deref(),
    )
    .await?;
    store::advance_flow(
        state.db.writer(),
        &flow.id,
        FlowEvent::RecoveryVerified,
        None,
        state.clock.now(),
    )
    .await?;
    audit(state, &user.id, "password.recovery.verified", "ok", client, json!({})).await;
    Ok(())
}

/// `POST …/{token}/password`: the new password; every session ends.
pub async fn recovery_password(
    state: &Services,
    token: &str,
    new: Option<SecretString>,
    client: &str,
) -> Result<(), AccountError> {
    let (flow, user) = recovery_flow(state, token, &[FlowStage::Verified]).await?;
    let hash = hash_new(state, &user, new).await?;
    replace_password(state, &user, &hash, Some(&flow)).await?;
    audit(state, &user.id, "password.recovery.done", "ok", client, json!({})).await;
    Ok(())
}

const PHONE_CHANGE: &str = "phone_change";

async fn phone_flow(state: &Services, user: &User, stage: FlowStage) -> Result<Flow, AccountError> {
    let flow = store::latest_flow(&state.db, &user.id, PHONE_CHANGE)
        .await?
        .filter(|f| f.expires_at > state.clock.now() && f.stage.is_open())
        .ok_or_else(|| AccountError::Conflict(crate::text!("error.account.ask_for_e_mail_code")))?;
    if flow.stage != stage {
        return Err(AccountError::Conflict(match flow.stage {
            FlowStage::EmailSent => crate::text!("error.account.enter_e_mail_code_first"),
            FlowStage::EmailVerified => crate::text!("error.account.give_new_phone_number_first"),
            _ => crate::text!("error.account.enter_sms_code_sent_new"),
        }));
    }
    Ok(flow)
}

/// `POST /api/v1/me/phone/email-code`: a code by e-mail (valid 5 minutes) starts a phone change.
pub async fn phone_email_code(state: &Services, user: &User, client: &str) -> Result<codes::Sent, AccountError> {
    let acc = &state.settings.accounts;
    let now = state.clock.now();
    if let Some(last) = store::last_code_sent(&state.db, &user.id, "phone_email").await? {
        let retry_at = last.created_at + acc.code_resend_secs;
        if retry_at > now {
            return Err(codes::CodeError::TooSoon { retry_at }.into());
        }
    }
    let flow = Flow {
        id: uuid::Uuid::now_v7().to_string(),
        token_hash: None,
        user_id: user.id.clone(),
        kind: PHONE_CHANGE.into(),
        stage: FlowStage::EmailSent,
        data: "{}".into(),
        attempts: 0,
        expires_at: now + 3600,
    };
    let mut tx = state.db.writer().begin().await?;
    store::close_flows(&mut *tx, &user.id, PHONE_CHANGE, now).await?;
    store::insert_flow(&mut *tx, &flow, now).await?;
    tx.commit().await?;
    let ttl = acc.phone_change_code_ttl_secs;
    let sent = codes::send(
        &state.db,
        state.clock.as_ref(),
        &state.settings,
        &flow,
        "phone_email",
        &user.email,
        ttl,
        |code| {
            email(
                user,
                state,
                Template::PhoneChangeEmailCode {
                    code,
                    minutes: ttl / 60,
                },
                "phone_change_email_code",
            )
        },
    )
    .await?;
    audit(state, &user.id, "phone.change.start", "ok", client, json!({})).await;
    Ok(sent)
}

/// `POST /api/v1/me/phone/email-code/verify`.
pub async fn phone_email_verify(
    state: &Services,
    user: &User,
    code: Option<String>,
    client: &str,
) -> Result<(), AccountError> {
    let flow = phone_flow(state, user, FlowStage::EmailSent).await?;
    codes::verify(
        &state.db,
        state.clock.as_ref(),
        &state.settings.accounts,
        &flow.id,
        "phone_email",
        code.as_deref(),
    )
    .await?;
    store::advance_flow(
        state.db.writer(),
        &flow.id,
        FlowEvent::EmailVerified,
        None,
        state.clock.now(),
    )
    .await?;
    audit(state, &user.id, "phone.change.email_verified", "ok", client, json!({})).await;
    Ok(())
}

/// `POST /api/v1/me/phone`: the new number (with its country prefix); an SMS code (valid 5 minutes) goes to it.
pub async fn phone_new(
    state: &Services,
    user: &User,
    phone: Option<String>,
    client: &str,
) -> Result<codes::Sent, AccountError> {
    let flow = phone_flow(state, user, FlowStage::EmailVerified).await?;
    let phone = normalise_phone(&phone.unwrap_or_default())?;
    if phone == user.phone {
        return Err(AccountError::Invalid(crate::text!(
            "error.account.already_phone_number"
        )));
    }
    if users::by_phone(&state.db, &phone)
        .await?
        .is_some_and(|other| other.id != user.id)
    {
        return Err(AccountError::Invalid(crate::text!(
            "error.account.phone_number_belongs_another_account"
        )));
    }
    let acc = &state.settings.accounts;
    let ttl = acc.phone_change_code_ttl_secs;
    let lang = Lang::or_default(Some(&user.lang));
    let to = phone.clone();
    let sent = codes::send(
        &state.db,
        state.clock.as_ref(),
        &state.settings,
        &flow,
        "phone_sms",
        &phone,
        ttl,
        |code| {
            let (subject, body) = Template::SmsCode {
                code,
                minutes: ttl / 60,
                purpose: CodePurpose::PhoneChange,
            }
            .render(lang, "");
            Message {
                medium: Medium::Sms,
                recipient: to.clone(),
                subject,
                body,
                kind: "sms_code_phone_change".into(),
            }
        },
    )
    .await?;
    let data = json!({ "phone": phone }).to_string();
    store::advance_flow(
        state.db.writer(),
        &flow.id,
        FlowEvent::NewPhoneCodeSent,
        Some(&data),
        state.clock.now(),
    )
    .await?;
    audit(state, &user.id, "phone.change.sms", "ok", client, json!({})).await;
    Ok(sent)
}

/// `POST /api/v1/me/phone/verify`: the SMS code from the new number; the number changes, every session ends, and
/// a confirmation e-mail goes out.
pub async fn phone_verify(
    state: &Services,
    user: &User,
    code: Option<String>,
    client: &str,
) -> Result<(), AccountError> {
    let flow = phone_flow(state, user, FlowStage::SmsSent).await?;
    codes::verify(
        &state.db,
        state.clock.as_ref(),
        &state.settings.accounts,
        &flow.id,
        "phone_sms",
        code.as_deref(),
    )
    .await?;
    let data: serde_json::Value = serde_json::from_str(&flow.data).unwrap_or_default();
    let phone = data["phone"]
        .as_str()
        .ok_or_else(|| AccountError::Internal("phone change without a number".into()))?
        .to_owned();
    let tail: String = phone
        .chars()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let m = email(
        user,
        state,
        Template::PhoneChanged { phone_tail: &tail },
        "phone_changed",
    );
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    if !store::advance_flow(&mut *tx, &flow.id, FlowEvent::PhoneChanged, None, now).await? {
        return Err(AccountError::Conflict(crate::text!(
            "error.account.step_was_already_done"
        )));
    }
    crate::db::users::set_phone(&mut tx, &user.id, &phone).await?;
    store::revoke_all_sessions(&mut tx, &user.id).await?;
    notify::enqueue(&mut *tx, state.clock.as_ref(), &m).await?;
    tx.commit().await?;
    audit(
        state,
        &user.id,
        "phone.change.done",
        "ok",
        client,
        json!({ "ends_with": tail }),
    )
    .await;
    Ok(())
}

const EMAIL_CHANGE: &str = "email_change";
/// The purpose of the code e-mailed to the new address.
const EMAIL_CHANGE_CODE: &str = "email_change";

/// `POST /api/v1/me/email`.
#[derive(Debug, Deserialize)]
pub struct NewEmail {
    pub email: Option<String>,
}

/// `POST /api/v1/me/email/verify`: the code e-mailed to the new address and the authenticator's code.
#[derive(Debug, Deserialize)]
pub struct ConfirmEmail {
    pub code: Option<String>,
    pub totp: Option<String>,
}

/// The new address, canonical, refused when it is the current one or another account's (product rules §10).
async fn free_address(state: &Services, user: &User, raw: Option<&str>) -> Result<String, AccountError> {
    let address = super::email::canonical(raw.unwrap_or_default())
        .map_err(|_| AccountError::Invalid(crate::text!("error.enrol.e_mail_address_not_valid")))?;
    if address == user.email {
        return Err(AccountError::Invalid(crate::text!(
            "error.account.already_e_mail_address"
        )));
    }
    if users::by_email(&state.db, &address)
        .await?
        .is_some_and(|other| other.id != user.id)
    {
        return Err(AccountError::Conflict(crate::text!(
            "error.account.e_mail_belongs_another_account"
        )));
    }
    Ok(address)
}

/// `POST /api/v1/me/email`: the new address; a code (valid `email_change_code_ttl_secs`) goes to it, so the
/// holder shows they read it. Resends keep the cool-down of the other codes (`code_resend_secs`).
pub async fn email_change_start(
    state: &Services,
    user: &User,
    req: NewEmail,
    client: &str,
) -> Result<codes::Sent, AccountError> {
    let address = free_address(state, user, req.email.as_deref()).await?;
    let acc = &state.settings.accounts;
    let now = state.clock.now();
    if let Some(last) = store::last_code_sent(&state.db, &user.id, EMAIL_CHANGE_CODE).await? {
        let retry_at = last.created_at + acc.code_resend_secs;
        if retry_at > now {
            return Err(codes::CodeError::TooSoon { retry_at }.into());
        }
    }
    // The code goes to an address nobody has confirmed yet: it counts against the limits on unrequested mail.
    codes::reserve_send_now(&state.db, &state.settings.limits, &address, now).await?;
    let ttl = acc.email_change_code_ttl_secs;
    let flow = Flow {
        id: uuid::Uuid::now_v7().to_string(),
        token_hash: None,
        user_id: user.id.clone(),
        kind: EMAIL_CHANGE.into(),
        stage: FlowStage::EmailSent,
        data: json!({ "email": address }).to_string(),
        attempts: 0,
        expires_at: now + ttl,
    };
    let mut tx = state.db.writer().begin().await?;
    store::close_flows(&mut *tx, &user.id, EMAIL_CHANGE, now).await?;
    store::insert_flow(&mut *tx, &flow, now).await?;
    tx.commit().await?;
    let sent = codes::send(
        &state.db,
        state.clock.as_ref(),
        &state.settings,
        &flow,
        EMAIL_CHANGE_CODE,
        &address,
        ttl,
        |code| {
            notify::email(
                &address,
                &user.lang,
                state.ca.public_base(),
                Template::EmailChangeCode {
                    code,
                    minutes: ttl / 60,
                },
                "email_change_code",
            )
        },
    )
    .await?;
    audit(state, &user.id, "email.change.start", "ok", client, json!({})).await;
    Ok(sent)
}

/// `POST /api/v1/me/email/verify`: with the code from the new address and a TOTP code the address changes, the
/// old address is told (with the contact link, in case it was not the holder), and every session ends.
pub async fn email_change_verify(
    state: &Services,
    user: &User,
    req: ConfirmEmail,
    client: &str,
) -> Result<String, AccountError> {
    let flow = store::latest_flow(&state.db, &user.id, EMAIL_CHANGE)
        .await?
        .filter(|f| f.expires_at > state.clock.now() && f.stage == FlowStage::EmailSent)
        .ok_or_else(|| AccountError::Conflict(crate::text!("error.account.ask_for_new_e_mail_code")))?;
    let data: serde_json::Value = serde_json::from_str(&flow.data).unwrap_or_default();
    let address = data["email"]
        .as_str()
        .ok_or_else(|| AccountError::Internal("e-mail change without an address".into()))?
        .to_owned();
    // The authenticator first: a wrong TOTP code leaves the e-mailed code usable.
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
    codes::verify(
        &state.db,
        state.clock.as_ref(),
        &state.settings.accounts,
        &flow.id,
        EMAIL_CHANGE_CODE,
        req.code.as_deref(),
    )
    .await?;
    let address = free_address(state, user, Some(&address)).await?;
    let contact = format!("{}/contact", state.ca.public_base());
    let notice = email(
        user,
        state,
        Template::EmailChanged {
            new_address: &mask_address(&address),
            contact: &contact,
        },
        "email_changed",
    );
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    if !store::advance_flow(&mut *tx, &flow.id, FlowEvent::EmailChanged, None, now).await? {
        return Err(AccountError::Conflict(crate::text!(
            "error.account.step_was_already_done"
        )));
    }
    match users::set_email(&mut tx, &user.id, &address).await {
        Ok(()) => {}
        Err(crate::db::DbError::Conflict(_)) => {
            return Err(AccountError::Conflict(crate::text!(
                "error.account.e_mail_belongs_another_account"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    store::revoke_all_sessions(&mut tx, &user.id).await?;
    notify::enqueue(&mut *tx, state.clock.as_ref(), &notice).await?;
    tx.commit().await?;
    audit(
        state,
        &user.id,
        "email.change.done",
        "ok",
        client,
        json!({ "from": user.email, "to": address }),
    )
    .await;
    Ok(address)
}

/// An address as the old mailbox is told it: the first character of the local part and the whole domain, so the
/// notice confirms the change without handing a stranger the new address.
fn mask_address(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "…".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_address;

    #[test]
    fn the_old_mailbox_sees_only_the_first_letter_and_the_domain_of_the_new_address() {
        assert_eq!(mask_address("ana.popescu@example.ro"), "a…@example.ro");
        assert_eq!(mask_address("ă@x.ro"), "ă…@x.ro");
    }
}
