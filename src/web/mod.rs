//! The web platform: pages served by `parafa serve` under `/`, rendered on the server from minijinja templates
//! compiled into the binary, in Romanian or English. Pages read through the same domain functions as the JSON API;
//! their forms are sent by `/static/app.js` to the JSON API (`/api/v1`) with the session's CSRF token, so every rule
//! and message is the API's own. Scripts are files under `/static` (the Content-Security-Policy forbids inline
//! script); each page loads only what it needs.
//!
//! Areas, each with its routes, templates, dictionary entries and static files: [`account`] (enrolment, activation,
//! login, 2FA, pairing, settings), [`orders`] (packages, orders, payment, identification, certificates, rekey),
//! [`signing`] (the signing page and history), [`operator`] (the console), [`contact`] (the contact form),
//! [`registry`] (the public certificate registry), [`verify`] (the public verification page), [`legal`] (the trust
//! documents, their pages and PDFs). Beside them: [`security`] (CSRF and the security headers), [`i18n`] (the
//! pages' texts), [`api_lang`] (the API's error messages in the page's language).

pub mod account;
pub mod api_lang;
pub mod contact;
pub mod i18n;
pub mod legal;
pub mod oauth;
pub mod operator;
pub mod orders;
pub mod registry;
pub mod security;
pub mod signing;
pub mod verify;

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use minijinja::{context, Environment, Value};

use crate::accounts::routes::WebUser;
use crate::app::AppState;
use crate::auth::sessions;
use crate::db::users::Role;
use crate::error::ApiError;
use i18n::Lang;

/// A template: its name and text.
pub type Template = (&'static str, &'static str);
/// A static file: name under `/static/`, content type, bytes.
pub type StaticFile = (&'static str, &'static str, &'static [u8]);

/// The templates shared by every area.
const TEMPLATES: &[Template] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("error.html", include_str!("templates/error.html")),
    ("home.html", include_str!("templates/home.html")),
];

/// The static files shared by every area.
const STATIC: &[StaticFile] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("static/app.css")),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/app.js"),
    ),
];

fn all_templates() -> impl Iterator<Item = &'static Template> {
    TEMPLATES
        .iter()
        .chain(account::TEMPLATES)
        .chain(orders::TEMPLATES)
        .chain(signing::TEMPLATES)
        .chain(operator::TEMPLATES)
        .chain(contact::TEMPLATES)
        .chain(registry::TEMPLATES)
        .chain(verify::TEMPLATES)
        .chain(oauth::TEMPLATES)
        .chain(legal::TEMPLATES)
}

fn all_static() -> impl Iterator<Item = &'static StaticFile> {
    STATIC
        .iter()
        .chain(account::STATIC)
        .chain(orders::STATIC)
        .chain(signing::STATIC)
        .chain(operator::STATIC)
        .chain(contact::STATIC)
        .chain(registry::STATIC)
        .chain(verify::STATIC)
        .chain(oauth::STATIC)
        .chain(signing::VENDOR)
}

/// The template environment, built once: every template is parsed at the first page (a broken one fails the unit
/// test below, not a user's request).
fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, text) in all_templates() {
            if let Err(e) = env.add_template(name, text) {
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        env.add_function("t", i18n::t_function);
        crate::i18n::add_filters(&mut env);
        env
    })
}

/// Registers the page routes and `/static`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(home)))
        .service(web::resource("/lang/{lang}").route(web::get().to(switch_language)))
        .service(web::resource("/cookie-notice").route(web::post().to(close_cookie_notice)))
        .service(web::resource("/static/{name:.+}").route(web::get().to(static_file)))
        .configure(account::configure)
        .configure(orders::configure)
        .configure(signing::configure)
        .configure(operator::configure)
        .configure(contact::configure)
        .configure(registry::configure)
        .configure(verify::configure)
        .configure(legal::configure);
}

/// What every page knows about its request: the language, the user (if logged in), the CSRF token, the path.
pub struct Page {
    pub lang: Lang,
    pub user: Option<WebUser>,
    /// The CSRF token of the session cookie the request carried (valid or not), empty without one.
    pub csrf: String,
    /// Path and query, for the language switch and the return after login.
    pub path: String,
    /// A holder who has not yet allowed access or acknowledged the current privacy notice (product rules §9): every
    /// page but the consent screen sends them there first.
    pub consent_due: bool,
    /// A user without 2FA after the mandatory date (product rules §3.4): every page but the 2FA choice and the
    /// pairing sends them to `/2fa` first, as the API refuses them everything else.
    pub two_factor_required: bool,
    /// Development mode (the sandboxes are served): every page says so.
    pub dev: bool,
    /// The visitor has not yet closed the notice about the strictly necessary cookies (product rules §9).
    pub cookie_notice: bool,
}

/// The cookie that remembers the cookie notice was read (itself strictly necessary: it only hides the notice).
pub const COOKIE_NOTICE: &str = "parafa_cookie_notice";

impl FromRequest for Page {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let lang = Lang::of_request(req);
        let csrf = req
            .cookie(sessions::COOKIE)
            .map(|c| sessions::csrf_token(c.value()))
            .unwrap_or_default();
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
        let user = WebUser::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let dev = state.as_ref().is_some_and(|s| s.settings.dev);
        let cookie_notice = req.cookie(COOKIE_NOTICE).is_none();
        Box::pin(async move {
            let user = user.await.ok();
            let two_factor_required = match (&user, &state) {
                (Some(u), Some(state)) => {
                    crate::accounts::login::two_factor_state(
                        &state.accounts(),
                        &u.user,
                        crate::clock::Clock::now(state.clock.as_ref()),
                    ) == crate::accounts::login::TwoFactor::SetupRequired
                }
                _ => false,
            };
            let consent_due = match (&user, state) {
                (Some(u), Some(state)) if u.user.role == Role::Holder => {
                    match crate::accounts::privacy::consents_of(&state.accounts(), &u.user.id).await {
                        Ok(consents) => {
                            let due = crate::accounts::privacy::due(&state.accounts(), &consents);
                            due.access || due.privacy_notice
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "consents could not be read");
                            false
                        }
                    }
                }
                _ => false,
            };
            Ok(Page {
                lang,
                user,
                csrf,
                path,
                consent_due,
                two_factor_required,
                dev,
                cookie_notice,
            })
        })
    }
}

/// A page that could not be shown: a redirect to the login page, or an error page.
#[derive(Debug)]
pub enum PageError {
    /// Not logged in (or not allowed): log in, then come back to `next`.
    Login { next: String },
    /// The first-login consents are due: the consent screen, then `next`.
    Consent { next: String },
    /// 2FA is mandatory and not set up: the 2FA page, then `next`.
    TwoFactor { next: String },
    /// The domain's error, shown in the page's language.
    Api { error: ApiError, lang: Lang, dev: bool },
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::Login { next } => write!(f, "login required for {next}"),
            PageError::Consent { next } => write!(f, "consents due before {next}"),
            PageError::TwoFactor { next } => write!(f, "2FA set-up due before {next}"),
            PageError::Api { error, .. } => write!(f, "{}", error.text),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            // What the request lacked (for the logs: a 4xx is a warning, not an error); the answer is a 303.
            PageError::Login { .. } | PageError::Consent { .. } | PageError::TwoFactor { .. } => {
                StatusCode::UNAUTHORIZED
            }
            PageError::Api { error, .. } => error.status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::Login { next } => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("/login?next={}", encode_component(next))))
                .finish(),
            PageError::Consent { next } => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("/consent?next={}", encode_component(next))))
                .finish(),
            PageError::TwoFactor { next } => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("/2fa?next={}", encode_component(next))))
                .finish(),
            PageError::Api { error, lang, dev } => {
                let body = render_text(
                    "error.html",
                    *lang,
                    context! {
                        dev => *dev,
                        status => error.status.as_u16(),
                        message => error.text.render(*lang),
                        user => Value::UNDEFINED,
                    },
                );
                html(error.status, body)
            }
        }
    }
}

/// Whether an error answer to `req` is an error page rather than the CSC error JSON: the request prefers
/// `text/html` (a browser's navigation) and its path is not one of the machine interfaces, which always answer JSON
/// (or their own format) whoever asks.
pub fn wants_error_page(req: &HttpRequest) -> bool {
    !is_machine_path(req.path())
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(prefers_html)
}

/// The paths of the APIs and protocol endpoints: the JSON API, CSC, the PKI and TSA, OAuth's token side, the
/// payment callbacks, the probes.
fn is_machine_path(path: &str) -> bool {
    const EXACT: &[&str] = &["/tsa", "/health", "/ready", "/metrics", "/api", "/csc", "/pki"];
    const PREFIXES: &[&str] = &[
        "/api/",
        "/csc/",
        "/pki/",
        "/tsa/",
        "/oauth2/token",
        "/oauth2/revoke",
        "/oauth2/pushed_authorize",
        "/.well-known/",
        "/payments/",
    ];
    EXACT.contains(&path) || PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Whether an `Accept` value ranks `text/html` above (or level with) `application/json`: a browser's navigation
/// (`text/html,…,*/*;q=0.8`) does, an API client (`application/json`, `*/*` or nothing) does not.
fn prefers_html(accept: &str) -> bool {
    let mut html: Option<f32> = None;
    let mut json: Option<f32> = None;
    for part in accept.split(',') {
        let mut fields = part.split(';');
        let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = fields
            .filter_map(|f| f.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/html" | "application/xhtml+xml" => html = Some(html.map_or(q, |h| h.max(q))),
            "application/json" => json = Some(json.map_or(q, |j| j.max(q))),
            _ => {}
        }
    }
    match (html, json) {
        (Some(h), Some(j)) => h > 0.0 && h >= j,
        (Some(h), None) => h > 0.0,
        _ => false,
    }
}

/// The `ErrorHandlers` of `startup::run`, around `error::json_errors`: an error answer to a browser's navigation
/// outside the APIs ([`wants_error_page`]) becomes the error page, in the visitor's language, with the same status
/// and the headers the status needs; every other answer passes as it is.
pub fn error_pages<B: actix_web::body::MessageBody + 'static>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    use actix_web::middleware::ErrorHandlerResponse;
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html || !wants_error_page(res.request()) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let text = res
        .response()
        .extensions()
        .get::<crate::i18n::Text>()
        .cloned()
        .unwrap_or_else(|| crate::text!(crate::error::default_error(status).1));
    let (req, original) = res.into_parts();
    let mut response = error_page(&req, status, &text);
    crate::error::keep_headers(original.headers(), response.headers_mut());
    let res = actix_web::dev::ServiceResponse::new(req, response).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// The error page for an error answer of `status` to `req`, in the visitor's language: `text` says what happened
/// (a 404 of an unknown address says so in plain words instead).
fn error_page(req: &HttpRequest, status: StatusCode, text: &crate::i18n::Text) -> HttpResponse {
    let lang = Lang::of_request(req);
    let dev = req.app_data::<web::Data<AppState>>().is_some_and(|s| s.settings.dev);
    let message = if text.key() == "error.http.no_such_route" {
        i18n::text(lang, "error.not_found_text")
    } else {
        text.render(lang)
    };
    let body = render_text(
        "error.html",
        lang,
        context! { dev => dev, status => status.as_u16(), message => message, user => Value::UNDEFINED },
    );
    html(status, body)
}

impl Page {
    /// The logged-in user, or a redirect to the login page (or, for a holder whose consents are due, to the
    /// consent screen).
    pub fn user(&self) -> Result<&WebUser, PageError> {
        let user = self.user_before_two_factor()?;
        if self.two_factor_required {
            return Err(PageError::TwoFactor {
                next: self.path.clone(),
            });
        }
        Ok(user)
    }

    /// The logged-in user with their consents given, 2FA set up or not (the 2FA choice and the pairing pages).
    pub fn user_before_two_factor(&self) -> Result<&WebUser, PageError> {
        let user = self.user_before_consent()?;
        if self.consent_due {
            return Err(PageError::Consent {
                next: self.path.clone(),
            });
        }
        Ok(user)
    }

    /// The logged-in user, consents given or not (the consent screen and the way to it).
    pub fn user_before_consent(&self) -> Result<&WebUser, PageError> {
        self.user.as_ref().ok_or_else(|| PageError::Login {
            next: self.path.clone(),
        })
    }

    /// The logged-in operator, or a redirect to the login page (a holder gets 403).
    pub fn operator(&self) -> Result<&WebUser, PageError> {
        let user = self.user()?;
        if user.user.role != Role::Operator {
            return Err(self.error(ApiError::new(
                StatusCode::FORBIDDEN,
                "access_denied",
                crate::text!("error.http.page_for_operators"),
            )));
        }
        Ok(user)
    }

    /// A domain error as a page error in this page's language.
    pub fn error(&self, e: impl Into<ApiError>) -> PageError {
        PageError::Api {
            error: e.into(),
            lang: self.lang,
            dev: self.dev,
        }
    }

    /// `r`, with its error as a page error.
    pub fn ok<T, E: Into<ApiError>>(&self, r: Result<T, E>) -> Result<T, PageError> {
        r.map_err(|e| self.error(e))
    }

    /// Renders `template` with `ctx` plus what every page gets (`lang`, `user`, `csrf`, `path`).
    pub fn render(&self, template: &str, ctx: Value) -> HttpResponse {
        let user = self.user.as_ref().map(|u| {
            context! {
                email => u.user.email.clone(),
                name => format!("{} {}", u.user.given_name, u.user.surname),
                role => u.user.role,
            }
        });
        let ctx = context! {
            user => user, csrf => self.csrf.clone(), path => self.path.clone(), dev => self.dev,
            cookie_notice => self.cookie_notice, ..ctx
        };
        html(StatusCode::OK, render_text(template, self.lang, ctx))
    }
}

/// Renders a template to text; a failure is logged and shown as a short message (a bug, caught by the tests).
fn render_text(template: &str, lang: Lang, ctx: Value) -> String {
    let ctx = context! { lang => lang.code(), other_lang => lang.other().code(), ..ctx };
    match environment().get_template(template).and_then(|t| t.render(ctx)) {
        Ok(text) => text,
        Err(e) => {
            tracing::error!(template, error = %e, "template failed");
            format!(
                "<!doctype html><title>Parafa</title><p>{}</p>",
                i18n::text(lang, "error.page_failed")
            )
        }
    }
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// Percent-encodes a URL component (for `next=` links).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A local path to return to (`next=`): only paths of this site, never another host, and nothing a header cannot
/// carry. Browsers drop tabs and line breaks from a URL and read `\\` as `/`, so `/\t/evil.example` would leave
/// the site: only visible ASCII is accepted, with `/` first and neither `/` nor `\\` second.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/') && !p.starts_with("//") && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// `/`: the holder's start page (the signing page once a certificate exists), the operator's console, or the
/// public welcome page.
async fn home(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    if page.user.is_none() {
        let landing = landing(&state, page.lang).await;
        return Ok(page.render("home.html", context! { landing }));
    }
    let user = page.user()?;
    if user.user.role == Role::Operator {
        return Ok(redirect("/operator"));
    }
    let certificates = page.ok(crate::lifecycle::issuance::list_in(&state, &user.user, page.lang.code()).await)?;
    Ok(page.render(
        "home.html",
        context! { certificates => Value::from_serialize(&certificates) },
    ))
}

/// What the landing page says with numbers: the packages at today's prices and the settings the answers quote.
async fn landing(state: &AppState, lang: Lang) -> Value {
    let offers = crate::billing::orders::packages(&state.billing()).await;
    let packages: Vec<Value> = offers
        .packages
        .iter()
        .map(|p| {
            context! {
                id => p.id,
                name => if lang == Lang::Ro { &p.name_ro } else { &p.name },
                validity => crate::i18n::years(lang, i64::from(p.validity_years)),
                transactions => p.transactions,
                ron_bani => p.price.amounts.total_ron_bani,
                gross_eur_cents => p.price.amounts.gross_eur_cents,
            }
        })
        .collect();
    let l = &state.settings.lifecycle;
    let documents: Vec<String> = l
        .identity_documents
        .iter()
        .map(|d| crate::i18n::text(lang, &format!("orders.doc.type.{d}")).to_lowercase())
        .collect();
    context! {
        packages,
        documents,
        verdict_hours => l.verdict_hours.to_string(),
        reminder_first => l.reminder_days.first().copied().unwrap_or(45).to_string(),
        reminder_second => l.reminder_days.get(1).copied().unwrap_or(15).to_string(),
        rekey_cutoff_hours => l.rekey_cutoff_hours.to_string(),
    }
}

/// A `303 See Other` to `to`.
pub fn redirect(to: &str) -> HttpResponse {
    // A target no header can carry (built from outside input) goes home rather than failing the response.
    let to = header::HeaderValue::from_str(to).unwrap_or(header::HeaderValue::from_static("/"));
    HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish()
}

#[derive(serde::Deserialize)]
struct Next {
    next: Option<String>,
}

/// `/lang/{ro|en}?next=…`: remembers the chosen language for a year and goes back.
/// `/lang/{lang}`: the pages' language (a cookie) and, for a logged-in user, their e-mails' and SMS' too. A GET
/// changes the account here, which is safe because the session cookie is `SameSite=Strict`: a link from another
/// site arrives without it.
async fn switch_language(
    lang: web::Path<String>,
    q: web::Query<Next>,
    page: Page,
    state: web::Data<AppState>,
) -> HttpResponse {
    let lang = Lang::parse(&lang).unwrap_or_default();
    if let Some(user) = &page.user {
        if let Err(e) = crate::db::users::set_lang(&state.db, &user.user.id, lang.code()).await {
            tracing::warn!(error = %e, "the account's language was not saved");
        }
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, local_path(q.next.as_deref())))
        .insert_header((
            header::SET_COOKIE,
            format!(
                "{}={}; Path=/; SameSite=Strict; Max-Age=31536000",
                i18n::COOKIE,
                lang.code()
            ),
        ))
        .finish()
}

#[derive(serde::Deserialize)]
struct NextForm {
    next: Option<String>,
}

/// `POST /cookie-notice`: the notice about the strictly necessary cookies was read; it stays hidden for a year. The
/// form needs no script and no session: all it does is set this one cookie in the visitor's own browser.
async fn close_cookie_notice(form: web::Form<NextForm>) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, local_path(form.next.as_deref())))
        .insert_header((
            header::SET_COOKIE,
            format!("{COOKIE_NOTICE}=1; Path=/; SameSite=Strict; Max-Age=31536000"),
        ))
        .finish()
}

/// `/static/{name}`: the files compiled into the binary.
async fn static_file(name: web::Path<String>) -> HttpResponse {
    match all_static().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(*bytes),
        None => ApiError::not_found(crate::text!("error.http.no_such_file")).error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        env.add_function("t", i18n::t_function);
        crate::i18n::add_filters(&mut env);
        for (name, text) in all_templates() {
            env.add_template(name, text).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn every_text_a_template_asks_for_exists_in_both_languages() {
        let mut missing = Vec::new();
        for (name, text) in all_templates() {
            for key in i18n::keys_used(text) {
                for lang in [Lang::Ro, Lang::En] {
                    if !i18n::has(lang, &key) {
                        missing.push(format!("{name}: {key} ({})", lang.code()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "missing texts:\n{}", missing.join("\n"));
    }

    #[test]
    fn error_pages_go_to_browsers_outside_the_apis() {
        assert!(prefers_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
        ));
        assert!(prefers_html("text/html"));
        for api in [
            "application/json",
            "*/*",
            "",
            "application/json, text/html;q=0.5",
            "text/html;q=0",
        ] {
            assert!(!prefers_html(api), "{api}");
        }
        for machine in [
            "/api/v1/nope",
            "/csc/v2/info",
            "/pki/crl",
            "/tsa",
            "/oauth2/token",
            "/health",
            "/metrics",
        ] {
            assert!(is_machine_path(machine), "{machine}");
        }
        for page in ["/no-such-page", "/oauth2/authorize", "/sign", "/apiary", "/tsa-info"] {
            assert!(!is_machine_path(page), "{page}");
        }
    }

    #[test]
    fn next_is_only_a_local_path() {
        assert_eq!(local_path(Some("/orders?x=1")), "/orders?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "orders",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "/orders\nSet-Cookie: x=1",
            "/\u{a0}/evil.example",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
    }
}
