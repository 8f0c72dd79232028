//! `/api/v1` account routes: thin handlers over the flows of this module.

use std::future::Future;
use std::pin::Pin;

use crate::clock::Clock;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::login::{self, TwoFactor};
use super::{contact, enrolment, maintenance, pairing, privacy, AccountError};
use crate::app::AppState;
use crate::auth::sessions;
use crate::db::users::{self, User, UserStatus};
use crate::error::ApiError;
use crate::text;

/// Registers the account routes (under the `/api/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .service(web::resource("/enrolments").route(web::post().to(enrol)))
            .service(web::resource("/invitations/{token}").route(web::get().to(invitation)))
            .service(web::resource("/invitations/{token}/phone").route(web::post().to(invitation_phone)))
            .service(web::resource("/invitations/{token}/phone/verify").route(web::post().to(invitation_verify)))
            .service(web::resource("/invitations/{token}/password").route(web::post().to(invitation_password)))
            .service(
                web::resource("/session")
                    .route(web::post().to(login))
                    .route(web::delete().to(logout)),
            )
            .service(web::resource("/me").route(web::get().to(me)))
            .service(web::resource("/me/2fa/postpone").route(web::post().to(postpone)))
            .service(web::resource("/me/totp/pairing").route(web::post().to(pairing_start)))
            .service(web::resource("/me/totp/reset").route(web::post().to(pairing_start)))
            .service(web::resource("/me/totp/pairing/sms").route(web::post().to(pairing_sms)))
            .service(web::resource("/me/totp/pairing/activate").route(web::post().to(pairing_activate)))
            .service(web::resource("/totp-reset").route(web::post().to(lost_app_start)))
            .service(web::resource("/totp-reset/{token}/sms").route(web::post().to(lost_app_sms)))
            .service(web::resource("/totp-reset/{token}/activate").route(web::post().to(lost_app_activate)))
            .service(web::resource("/me/password").route(web::post().to(change_password)))
            .service(web::resource("/password-recovery").route(web::post().to(recovery_start)))
            .service(web::resource("/password-recovery/{token}/sms").route(web::post().to(recovery_sms)))
            .service(web::resource("/password-recovery/{token}/verify").route(web::post().to(recovery_verify)))
            .service(web::resource("/password-recovery/{token}/password").route(web::post().to(recovery_password)))
            .service(web::resource("/me/phone/email-code").route(web::post().to(phone_email_code)))
            .service(web::resource("/me/phone/email-code/verify").route(web::post().to(phone_email_verify)))
            .service(web::resource("/me/phone").route(web::post().to(phone_new)))
            .service(web::resource("/me/language").route(web::post().to(set_language)))
            .service(web::resource("/me/phone/verify").route(web::post().to(phone_verify)))
            .service(web::resource("/me/email").route(web::post().to(email_change_start)))
            .service(web::resource("/me/email/verify").route(web::post().to(email_change_verify)))
            .service(web::resource("/me/consents").route(web::post().to(consent)))
            .service(web::resource("/me/export").route(web::get().to(export)))
            .service(web::resource("/me/erasure").route(web::post().to(erasure)))
            .service(web::resource("/me/credentials/{id}/revoke").route(web::post().to(revoke_credential)))
            .service(
                web::resource("/me/contact")
                    .route(web::post().to(contact_send))
                    .route(web::get().to(contact_mine)),
            )
            .service(web::resource("/contact").route(web::post().to(contact_anonymous)))
            .service(web::resource("/contact/{token}/confirm").route(web::post().to(contact_confirm))),
    );
}

fn client_of(req: &HttpRequest) -> String {
    crate::app::client_address(req)
}

/// The key of what the API answers a user without 2FA after the mandatory date (product rules §3.4) on any other
/// route.
pub const TWO_FACTOR_REQUIRED: &str = "error.login.two_factor_authentication_mandatory_pair";

/// The `/api/v1` routes a user who must set up 2FA may still use: the pairing itself, the session, what the account
/// is, the consents and the data export. Pages are not checked here (their paths are not under `/api/v1`): the
/// page extractor sends such a user to `/2fa` instead.
const BEFORE_TWO_FACTOR: &[&str] = &[
    "/api/v1/session",
    "/api/v1/me",
    "/api/v1/me/2fa/postpone",
    "/api/v1/me/totp/pairing",
    "/api/v1/me/totp/reset",
    "/api/v1/me/totp/pairing/sms",
    "/api/v1/me/totp/pairing/activate",
    "/api/v1/me/consents",
    "/api/v1/me/export",
];

/// Whether the API route `pattern` is closed to a user who must set up 2FA first.
fn needs_two_factor(pattern: &str) -> bool {
    pattern.starts_with("/api/v1/") && !BEFORE_TWO_FACTOR.contains(&pattern)
}

/// A logged-in browser user (from the session cookie).
pub struct WebUser {
    pub user: User,
    pub token_hash: String,
    pub client: String,
}

impl FromRequest for WebUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req.cookie(sessions::COOKIE).map(|c| c.value().to_owned());
        let client = client_of(req);
        let route = req.match_pattern();
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::internal(text!("error.http.internal_error"), &"no application state"))?;
            let token = token.ok_or(AccountError::Unauthenticated)?;
            let session = sessions::find(&state.db, state.clock.as_ref(), &token)
                .await?
                .ok_or(AccountError::Unauthenticated)?;
            let user = users::by_id(&state.db, &session.user_id)
                .await?
                .filter(|u| u.status == UserStatus::Active)
                .ok_or(AccountError::Unauthenticated)?;
            if route.as_deref().is_some_and(needs_two_factor)
                && login::two_factor_state(&state.accounts(), &user, state.clock.now()) == TwoFactor::SetupRequired
            {
                return Err(AccountError::Forbidden(text!(TWO_FACTOR_REQUIRED)).into());
            }
            Ok(WebUser {
                user,
                token_hash: session.token_hash,
                client,
            })
        })
    }
}

async fn enrol(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<enrolment::EnrolRequest>,
) -> Result<HttpResponse, ApiError> {
    enrolment::enrol(&state.accounts(), body.into_inner(), &client_of(&req)).await?;
    Ok(HttpResponse::Accepted().json(json!({
        "status": "invitation_sent",
        "message": "If the address can receive it, an invitation e-mail is on its way.",
    })))
}

async fn invitation(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(enrolment::view(&state.accounts(), &token).await?))
}

#[derive(Deserialize)]
struct PhoneBody {
    phone: Option<String>,
}

#[derive(Deserialize)]
struct CodeBody {
    code: Option<String>,
}

#[derive(Deserialize)]
struct PasswordBody {
    password: Option<secrecy::SecretString>,
}

async fn invitation_phone(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<PhoneBody>,
) -> Result<HttpResponse, ApiError> {
    let sent = enrolment::phone(&state.accounts(), &token, body.into_inner().phone, &client_of(&req)).await?;
    Ok(HttpResponse::Accepted().json(sent))
}

async fn invitation_verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    enrolment::verify_phone(&state.accounts(), &token, body.into_inner().code, &client_of(&req)).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "phone_verified" })))
}

async fn invitation_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    enrolment::set_password(&state.accounts(), &token, body.into_inner().password, &client_of(&req)).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "active" })))
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<login::LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let done = login::login(&state.accounts(), body.into_inner(), &client_of(&req)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::SET_COOKIE,
            sessions::cookie(&done.token, done.max_age, sessions::secure_cookies(&req)),
        ))
        .json(&done))
}

async fn logout(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    sessions::close(&state.db, &user.token_hash).await?;
    super::audit(
        &state.accounts(),
        &user.user.id,
        "auth.logout",
        "ok",
        &user.client,
        json!({}),
    )
    .await;
    Ok(HttpResponse::NoContent()
        .insert_header((header::SET_COOKIE, sessions::clear_cookie()))
        .finish())
}

async fn me(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    let u = &user.user;
    let two_factor = login::two_factor_state(&state.accounts(), u, state.clock.now());
    let consents = privacy::consents_of(&state.accounts(), &u.id).await?;
    let due = privacy::due(&state.accounts(), &consents);
    Ok(HttpResponse::Ok().json(json!({
        "consents": consents,
        "needs_access_consent": due.access,
        "needs_privacy_notice": due.privacy_notice,
        "user_id": u.id,
        "email": u.email,
        "given_name": u.given_name,
        "surname": u.surname,
        "phone": u.phone,
        "lang": u.lang,
        "two_factor": two_factor,
        "two_factor_postponed": u.two_factor_postponed,
        "two_factor_until": u.two_factor_until.map(crate::clock::rfc3339),
    })))
}

async fn postpone(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<login::PostponeRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = login::postpone(&state.accounts(), &user.user, body.into_inner(), &user.client).await?;
    Ok(HttpResponse::Ok().json(json!({ "two_factor": now })))
}

async fn pairing_start(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    let sent = pairing::start(&state.accounts(), &user.user, &user.client).await?;
    Ok(HttpResponse::Accepted().json(sent))
}

async fn pairing_sms(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<pairing::SmsStep>,
) -> Result<HttpResponse, ApiError> {
    let secret = pairing::sms(&state.accounts(), &user.user, body.into_inner(), &user.client).await?;
    // Shown once: never stored by a browser or a proxy.
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(secret))
}

async fn pairing_activate(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    pairing::activate(&state.accounts(), &user.user, body.into_inner().code, &user.client).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, sessions::clear_cookie()))
        .json(json!({ "two_factor": TwoFactor::On, "sessions_ended": true })))
}

async fn lost_app_start(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<pairing::LostApp>,
) -> Result<HttpResponse, ApiError> {
    let started = pairing::start_lost_app(&state.accounts(), body.into_inner(), &client_of(&req)).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(started))
}

async fn lost_app_sms(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<pairing::SmsStep>,
) -> Result<HttpResponse, ApiError> {
    let user = pairing::lost_app_user(&state.accounts(), &token).await?;
    let secret = pairing::sms(&state.accounts(), &user, body.into_inner(), &client_of(&req)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(secret))
}

async fn lost_app_activate(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    let user = pairing::lost_app_user(&state.accounts(), &token).await?;
    pairing::activate(&state.accounts(), &user, body.into_inner().code, &client_of(&req)).await?;
    Ok(HttpResponse::Ok().json(json!({ "two_factor": TwoFactor::On, "sessions_ended": true })))
}

/// Responses that end the session in the browser too.
fn logged_out(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, sessions::clear_cookie()))
        .json(body)
}

async fn change_password(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<maintenance::ChangePassword>,
) -> Result<HttpResponse, ApiError> {
    maintenance::change_password(&state.accounts(), &user.user, body.into_inner(), &user.client).await?;
    Ok(logged_out(
        json!({ "status": "password_changed", "sessions_ended": true }),
    ))
}

#[derive(Deserialize)]
struct EmailBody {
    email: Option<String>,
}

async fn recovery_start(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<EmailBody>,
) -> Result<HttpResponse, ApiError> {
    maintenance::start_recovery(&state.accounts(), body.into_inner().email, &client_of(&req)).await?;
    Ok(HttpResponse::Accepted().json(json!({
        "status": "recovery_sent",
        "message": "If the address belongs to an account, a recovery link is on its way.",
    })))
}

async fn recovery_sms(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Accepted().json(maintenance::recovery_sms(&state.accounts(), &token, &client_of(&req)).await?))
}

async fn recovery_verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    maintenance::recovery_verify(&state.accounts(), &token, body.into_inner().code, &client_of(&req)).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "verified" })))
}

async fn recovery_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    maintenance::recovery_password(&state.accounts(), &token, body.into_inner().password, &client_of(&req)).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "password_changed", "sessions_ended": true })))
}

async fn phone_email_code(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    Ok(
        HttpResponse::Accepted()
            .json(maintenance::phone_email_code(&state.accounts(), &user.user, &user.client).await?),
    )
}

async fn phone_email_verify(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    maintenance::phone_email_verify(&state.accounts(), &user.user, body.into_inner().code, &user.client).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "email_verified" })))
}

#[derive(serde::Deserialize)]
struct LanguageBody {
    lang: String,
}

/// The language of the holder's e-mails and SMS (`ro` or `en`; the pages' switch sets it too).
async fn set_language(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<LanguageBody>,
) -> Result<HttpResponse, ApiError> {
    let lang = match body.lang.as_str() {
        "ro" | "en" => body.lang.as_str(),
        _ => {
            return Err(ApiError::invalid_request(crate::text!(
                "error.accounts.language_unknown"
            )))
        }
    };
    crate::db::users::set_lang(&state.db, &user.user.id, lang)
        .await
        .map_err(|e| ApiError::internal(crate::text!("error.accounts.language_not_saved"), &e))?;
    Ok(HttpResponse::Ok().json(json!({ "lang": lang })))
}

async fn phone_new(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<PhoneBody>,
) -> Result<HttpResponse, ApiError> {
    let sent = maintenance::phone_new(&state.accounts(), &user.user, body.into_inner().phone, &user.client).await?;
    Ok(HttpResponse::Accepted().json(sent))
}

async fn phone_verify(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    maintenance::phone_verify(&state.accounts(), &user.user, body.into_inner().code, &user.client).await?;
    Ok(logged_out(json!({ "status": "phone_changed", "sessions_ended": true })))
}

async fn email_change_start(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<maintenance::NewEmail>,
) -> Result<HttpResponse, ApiError> {
    let sent = maintenance::email_change_start(&state.accounts(), &user.user, body.into_inner(), &user.client).await?;
    Ok(HttpResponse::Accepted().json(sent))
}

async fn email_change_verify(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<maintenance::ConfirmEmail>,
) -> Result<HttpResponse, ApiError> {
    let email =
        maintenance::email_change_verify(&state.accounts(), &user.user, body.into_inner(), &user.client).await?;
    Ok(logged_out(
        json!({ "status": "email_changed", "email": email, "sessions_ended": true }),
    ))
}

async fn consent(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<privacy::ConsentRequest>,
) -> Result<HttpResponse, ApiError> {
    let consents = privacy::consent(&state.accounts(), &user.user, body.into_inner(), &user.client).await?;
    Ok(HttpResponse::Ok().json(json!({ "consents": consents })))
}

async fn export(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    let data = privacy::export(&state.accounts(), &user.user, &user.client).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"parafa-export.json\"",
        ))
        .json(data))
}

async fn erasure(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<crate::lifecycle::erasure::ErasureRequest>,
) -> Result<HttpResponse, ApiError> {
    let report = crate::lifecycle::erasure::erase(&state, &user.user, body.into_inner(), &user.client).await?;
    Ok(logged_out(report))
}

#[derive(Deserialize)]
struct RevokeBody {
    reason: Option<String>,
    totp: Option<String>,
}

async fn revoke_credential(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<String>,
    body: web::Json<RevokeBody>,
) -> Result<HttpResponse, ApiError> {
    use crate::lifecycle::revoke::revoke_credential;
    let body = body.into_inner();
    let reason = body.reason.unwrap_or_else(|| "unspecified".into());
    let actor = format!("user:{}", user.user.id);
    let outcome = revoke_credential(
        &state,
        &id,
        Some((&user.user.id, body.totp.as_deref())),
        &reason,
        &actor,
        &user.client,
    )
    .await;
    match outcome {
        Ok(serial) => {
            Ok(HttpResponse::Ok().json(json!({ "status": "revoked", "certificate_serial": serial, "reason": reason })))
        }
        Err(e) => Err(e.into()),
    }
}

async fn contact_send(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<contact::NewMessage>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created()
        .json(contact::send(&state.accounts(), &user.user, body.into_inner(), &user.client).await?))
}

/// `POST /api/v1/contact`: a message without a login; the code goes to the address given.
async fn contact_anonymous(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<contact::AnonymousMessage>,
) -> Result<HttpResponse, ApiError> {
    let pending = contact::send_anonymous(&state.accounts(), body.into_inner(), &client_of(&req)).await?;
    Ok(HttpResponse::Accepted().json(pending))
}

/// `POST /api/v1/contact/{token}/confirm`: the code e-mailed records the message.
async fn contact_confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Json<contact::Confirmation>,
) -> Result<HttpResponse, ApiError> {
    let sent = contact::confirm_anonymous(&state.accounts(), &token, body.into_inner(), &client_of(&req)).await?;
    Ok(HttpResponse::Created().json(sent))
}

async fn contact_mine(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(contact::mine(&state.accounts(), &user.user).await?))
}
