//! Pages of the account area (product rules §3, §4, §6, §9): enrolment, activation from the invitation link, login,
//! the choice of setting up 2FA now or later, the first-login consents, the TOTP pairing, password recovery and the
//! settings. Every action is a form sent by `app.js` to the account API (`accounts::routes`); the steps of a flow
//! are shown one after the other by `account.js`. Nothing secret is rendered here: the TOTP secret only reaches
//! the page in the answer of `POST /api/v1/me/totp/pairing/sms`, and lives in the page's DOM until it is left.

use actix_web::{web, HttpResponse};
use minijinja::{context, Value};

use super::{encode_component, local_path, redirect, Page, PageError, StaticFile, Template};
use crate::accounts::login::{two_factor_state, TwoFactor};
use crate::accounts::{enrolment, maintenance, privacy};
use crate::app::AppState;
use crate::clock::Clock;
use crate::db::accounts::ConsentKind;
use crate::db::users::Role;

/// This area's templates.
pub const TEMPLATES: &[Template] = &[
    ("account/login.html", include_str!("templates/account/login.html")),
    ("account/enrol.html", include_str!("templates/account/enrol.html")),
    (
        "account/invitation.html",
        include_str!("templates/account/invitation.html"),
    ),
    (
        "account/two_factor.html",
        include_str!("templates/account/two_factor.html"),
    ),
    ("account/consent.html", include_str!("templates/account/consent.html")),
    ("account/privacy.html", include_str!("templates/account/privacy.html")),
    (
        "account/privacy_notice.html",
        include_str!("templates/account/privacy_notice.html"),
    ),
    ("account/pairing.html", include_str!("templates/account/pairing.html")),
    ("account/recovery.html", include_str!("templates/account/recovery.html")),
    (
        "account/recovery_link.html",
        include_str!("templates/account/recovery_link.html"),
    ),
    ("account/settings.html", include_str!("templates/account/settings.html")),
    ("account/revoke.html", include_str!("templates/account/revoke.html")),
];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/login.js"),
    ),
    (
        "account.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/account.js"),
    ),
    (
        "account.css",
        "text/css; charset=utf-8",
        include_bytes!("static/account.css"),
    ),
];

/// Registers this area's pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::get().to(login)))
        .service(web::resource("/after-login").route(web::get().to(after_login)))
        .service(web::resource("/enrol").route(web::get().to(enrol)))
        .service(web::resource("/invitations/{token}").route(web::get().to(invitation)))
        .service(web::resource("/activate/{token}").route(web::get().to(activate)))
        .service(web::resource("/2fa").route(web::get().to(two_factor)))
        .service(web::resource("/consent").route(web::get().to(consent)))
        .service(web::resource("/privacy").route(web::get().to(privacy_page)))
        .service(web::resource("/pairing").route(web::get().to(pairing)))
        .service(web::resource("/pairing/lost").route(web::get().to(pairing_lost)))
        .service(web::resource("/password-recovery").route(web::get().to(recovery)))
        .service(web::resource("/password-recovery/{token}").route(web::get().to(recovery_link)))
        .service(web::resource("/settings").route(web::get().to(settings)))
        .service(web::resource("/certificates/{id}/revoke").route(web::get().to(revoke)));
}

#[derive(serde::Deserialize)]
struct Next {
    next: Option<String>,
}

impl Next {
    fn path(&self) -> String {
        local_path(self.next.as_deref())
    }
}

/// What the code steps show: how long a code works and the resend cool-down, and the shortest password.
#[derive(serde::Serialize)]
struct CodeNumbers {
    resend_secs: i64,
    sms_minutes: i64,
    resend_minutes: i64,
    password_min_length: usize,
}

/// A page's context takes them in (`..code_numbers(&state)`).
impl From<CodeNumbers> for Value {
    fn from(numbers: CodeNumbers) -> Value {
        Value::from_serialize(numbers)
    }
}

/// The [`CodeNumbers`] of the settings.
fn code_numbers(state: &AppState) -> CodeNumbers {
    let acc = &state.settings.accounts;
    CodeNumbers {
        resend_secs: acc.code_resend_secs,
        sms_minutes: acc.sms_code_ttl_secs / 60,
        resend_minutes: acc.code_resend_secs / 60,
        password_min_length: acc.password_min_length,
    }
}

/// `/login?next=…`: e-mail and password, "remember me", then the authenticator code when 2FA is on.
async fn login(page: Page, q: web::Query<Next>) -> Result<HttpResponse, PageError> {
    let next = q.path();
    if page.user.is_some() {
        return Ok(redirect(&next));
    }
    Ok(page.render("account/login.html", context! { next => next }))
}

/// `/after-login?next=…`: where a fresh login goes: the first-login consents when due (holders), then the 2FA
/// choice when it is due or required, then `next`.
async fn after_login(page: Page, state: web::Data<AppState>, q: web::Query<Next>) -> Result<HttpResponse, PageError> {
    let user = &page.user_before_consent()?.user;
    let next = q.path();
    if user.role == Role::Holder {
        let consents = page.ok(privacy::consents_of(&state.accounts(), &user.id).await)?;
        let due = privacy::due(&state.accounts(), &consents);
        if due.access || due.privacy_notice {
            return Ok(redirect(&format!("/consent?next={}", encode_component(&next))));
        }
    }
    match two_factor_state(&state.accounts(), user, state.clock.now()) {
        TwoFactor::SetupDue | TwoFactor::SetupRequired => {
            Ok(redirect(&format!("/2fa?next={}", encode_component(&next))))
        }
        _ => Ok(redirect(&next)),
    }
}

/// `/enrol`: name, e-mail, phone and the privacy notice's acknowledgement; the answer says to check the e-mail.
async fn enrol(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    if page.user.is_some() {
        return Ok(redirect("/"));
    }
    Ok(page.render(
        "account/enrol.html",
        context! { privacy_version => state.settings.accounts.privacy_notice_version.clone(),
        privacy => privacy_notice(&state, page.lang) },
    ))
}

/// `/activate/{token}`: the address invitation e-mails carried before the web pages (links still live for their
/// validity); the page is `/invitations/{token}`.
async fn activate(token: web::Path<String>) -> HttpResponse {
    redirect(&format!("/invitations/{}", encode_component(&token)))
}

/// `/invitations/{token}`: the invitation link: confirm the data and type the phone again → the SMS code → the
/// password. An expired or used link shows the API's message.
async fn invitation(
    page: Page,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let view = page.ok(enrolment::view(&state.accounts(), &token).await)?;
    Ok(page.render(
        "account/invitation.html",
        context! {
            invitation => Value::from_serialize(&view),
            token => encode_component(&token),
            ..code_numbers(&state)
        },
    ))
}

/// `/2fa?next=…`: set up 2FA now (the pairing) or postpone it until a date, to the next login, or "never" (until
/// the mandatory date); past the mandatory date only the pairing is offered.
async fn two_factor(page: Page, state: web::Data<AppState>, q: web::Query<Next>) -> Result<HttpResponse, PageError> {
    let user = &page.user_before_two_factor()?.user;
    let now = state.clock.now();
    let tf = two_factor_state(&state.accounts(), user, now);
    let acc = &state.settings.accounts;
    let mandatory = time::OffsetDateTime::parse(
        &acc.two_factor_mandatory_from,
        &time::format_description::well_known::Rfc3339,
    )
    .ok();
    let ymd = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    let dmy = |d: time::Date| format!("{:02}.{:02}.{:04}", d.day(), u8::from(d.month()), d.year());
    let last_day = mandatory.and_then(|m| m.date().previous_day());
    let tomorrow = time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| t.date().next_day());
    Ok(page.render(
        "account/two_factor.html",
        context! {
            next => q.path(),
            state => tf,
            until => user.two_factor_until.map(crate::clock::rfc3339),
            postponed => user.two_factor_postponed,
            mandatory_last_day => last_day.map(dmy),
            min_date => tomorrow.map(ymd),
            max_date => last_day.map(ymd),
        },
    ))
}

/// `/consent?next=…`: the one-time "allow access" screen, then the privacy notice read to its end; when neither
/// is due, on to `next` (through the 2FA choice).
async fn consent(page: Page, state: web::Data<AppState>, q: web::Query<Next>) -> Result<HttpResponse, PageError> {
    let user = &page.user_before_consent()?.user;
    let next = q.path();
    let consents = page.ok(privacy::consents_of(&state.accounts(), &user.id).await)?;
    let due = privacy::due(&state.accounts(), &consents);
    if !due.access && !due.privacy_notice {
        return Ok(redirect(&format!("/after-login?next={}", encode_component(&next))));
    }
    Ok(page.render(
        "account/consent.html",
        context! {
            due => Value::from_serialize(due),
            again => format!("/consent?next={}", encode_component(&next)),
            privacy_version => state.settings.accounts.privacy_notice_version.clone(),
            privacy => privacy_notice(&state, page.lang),
        },
    ))
}

/// The privacy notice of the configured version (`docs/trust/privacy/`), in `lang`: the text a holder
/// acknowledges is the one the consent's version names.
fn privacy_notice(state: &AppState, lang: crate::i18n::Lang) -> Value {
    let version = &state.settings.accounts.privacy_notice_version;
    match crate::legal::find(crate::legal::DocName::Privacy, version, lang) {
        Some(Ok(doc)) => Value::from_serialize(&doc),
        _ => Value::UNDEFINED,
    }
}

/// `/privacy`: the privacy notice, for anyone.
async fn privacy_page(page: Page, state: web::Data<AppState>) -> HttpResponse {
    page.render(
        "account/privacy.html",
        context! { privacy_version => state.settings.accounts.privacy_notice_version.clone(),
        privacy => privacy_notice(&state, page.lang) },
    )
}

/// `/pairing`: the authenticator app's pairing (or re-pairing when 2FA is on): an SMS code with the "app
/// installed" acknowledgement → the QR code and the secret, shown once → the first code.
async fn pairing(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let user = &page.user_before_two_factor()?.user;
    let tf = two_factor_state(&state.accounts(), user, state.clock.now());
    let reset = tf == TwoFactor::On;
    Ok(page.render(
        "account/pairing.html",
        context! {
            reset => reset,
            start_api => if reset { "/api/v1/me/totp/reset" } else { "/api/v1/me/totp/pairing" },
            phone_ends_with => tail(&user.phone),
            ..code_numbers(&state)
        },
    ))
}

/// `/pairing/lost`: re-pairing offered on the 2FA login prompt, without a session (product rules §4): the e-mail
/// and password, then the same steps as `/pairing`, sent with the token the first step returns (`account.js`).
async fn pairing_lost(page: Page, state: web::Data<AppState>) -> HttpResponse {
    page.render(
        "account/pairing.html",
        context! {
            reset => true,
            lost => true,
            start_api => "/api/v1/totp-reset",
            ..code_numbers(&state)
        },
    )
}

/// `/password-recovery`: the e-mail address the recovery link goes to.
async fn recovery(page: Page) -> HttpResponse {
    page.render("account/recovery.html", context! {})
}

/// `/password-recovery/{token}`: the link of the recovery e-mail: "Send code" → the SMS code → the new password.
async fn recovery_link(
    page: Page,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let stage = page.ok(maintenance::recovery_stage(&state.accounts(), &token).await)?;
    Ok(page.render(
        "account/recovery_link.html",
        context! { stage => stage, token => encode_component(&token), ..code_numbers(&state) },
    ))
}

/// `/settings`: the user's data, password change, phone change, e-mail change (a code to the new address and a
/// TOTP code), the authenticator's re-pairing, consents, the
/// data export and the erasure request.
async fn settings(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let user = &page.user()?.user;
    let consents = page.ok(privacy::consents_of(&state.accounts(), &user.id).await)?;
    let tf = two_factor_state(&state.accounts(), user, state.clock.now());
    let apps = page.ok(crate::oauth::token::allowed_apps(state.oauth(), &user.id).await)?;
    Ok(page.render(
        "account/settings.html",
        context! {
            me => context! {
                given_name => user.given_name.clone(),
                surname => user.surname.clone(),
                email => user.email.clone(),
                phone => user.phone.clone(),
                lang => user.lang.clone(),
            },
            two_factor => tf,
            consents => Value::from_serialize(&consents),
            marketing => consents
                .get(ConsentKind::Marketing.as_str())
                .is_some_and(|c| c.granted),
            apps => Value::from_serialize(&apps),
            phone_minutes => state.settings.accounts.phone_change_code_ttl_secs / 60,
            email_minutes => state.settings.accounts.email_change_code_ttl_secs / 60,
            ..code_numbers(&state)
        },
    ))
}

/// The last two characters of a phone number.
fn tail(phone: &str) -> String {
    let n = phone.chars().count();
    phone.chars().skip(n.saturating_sub(2)).collect()
}

/// The RFC 5280 reasons a holder may give (`privilege_withdrawn`, fraud, is an operator's finding).
const HOLDER_REVOCATION_REASONS: [&str; 5] = [
    "key_compromise",
    "affiliation_changed",
    "superseded",
    "cessation_of_operation",
    "unspecified",
];

/// `/certificates/{id}/revoke`: the holder's own certificate, the reasons, what revocation does, the TOTP code and
/// a confirmation; the form goes to `POST /api/v1/me/credentials/{id}/revoke`, then back to the certificates.
async fn revoke(page: Page, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let user = &page.user()?.user;
    let list = page.ok(crate::lifecycle::issuance::list_in(&state, user, page.lang.code()).await)?;
    let cert = list
        .certificates
        .into_iter()
        .find(|c| c.credential_id == *id)
        .ok_or_else(|| {
            page.error(crate::error::ApiError::not_found(crate::text!(
                "error.account.no_such_credential"
            )))
        })?;
    Ok(page.render(
        "account/revoke.html",
        context! {
            cert => context! {
                credential_id => cert.credential_id.clone(),
                id_path => encode_component(&cert.credential_id),
                serial => cert.certificate_serial.clone(),
                status => Value::from_serialize(cert.status),
                valid_to => cert.valid_to.clone(),
                left => cert.transactions.left,
            },
            revocable => matches!(
                cert.status,
                crate::db::credentials::StatusAt::Valid | crate::db::credentials::StatusAt::NotYetValid
            ),
            reasons => Value::from_serialize(HOLDER_REVOCATION_REASONS),
        },
    ))
}
