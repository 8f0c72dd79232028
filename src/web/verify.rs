//! The public verification page (product rules §11): `/verify`, no login. The page's script (`verify.js`) sends
//! the file (and, for a detached `.p7s`, the signed file) to `POST /api/v1/verify` and shows the answer per
//! signature; an enveloping `.p7s`'s content is offered for download and previewed when it is text.

use actix_web::{web, HttpResponse};
use minijinja::context;

use super::{Page, PageError, StaticFile, Template};
use crate::app::AppState;

/// This area's templates.
pub const TEMPLATES: &[Template] = &[("verify/verify.html", include_str!("templates/verify/verify.html"))];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[
    (
        "verify.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/verify.js"),
    ),
    (
        "verify.css",
        "text/css; charset=utf-8",
        include_bytes!("static/verify.css"),
    ),
];

/// Registers this area's pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/verify").route(web::get().to(verify)));
}

/// `/verify`: the upload form; the result is drawn by the script from the API's answer.
async fn verify(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let max_mb = state.settings.documents.max_any_document_bytes() / (1024 * 1024);
    Ok(page.render("verify/verify.html", context! { max_mb => max_mb }))
}
