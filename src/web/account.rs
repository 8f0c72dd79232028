//! Pages of the account area: enrolment, activation, login, 2FA, pairing, password recovery, settings.

use actix_web::{web, HttpResponse};
use minijinja::context;

use super::{local_path, Page, PageError, StaticFile, Template};

/// This area's templates.
pub const TEMPLATES: &[Template] = &[("account/login.html", include_str!("templates/account/login.html"))];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[(
    "login.js",
    "text/javascript; charset=utf-8",
    include_bytes!("static/login.js"),
)];

/// Registers this area's pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login));
}

#[derive(serde::Deserialize)]
struct Next {
    next: Option<String>,
}

/// `/login?next=…`: e-mail and password, "remember me", then the authenticator code when 2FA is on.
async fn login(page: Page, q: web::Query<Next>) -> Result<HttpResponse, PageError> {
    let next = local_path(q.next.as_deref());
    if page.user.is_some() {
        return Ok(super::redirect(&next));
    }
    Ok(page.render("account/login.html", context! { next => next }))
}
