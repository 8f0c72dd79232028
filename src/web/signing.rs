//! Pages of the signing area (product rules §7): `/sign` (upload, previews with the visible-signature box, one
//! TOTP code for the batch), `/sign/{job}` (the signed files, `SignedFiles.zip` downloaded by itself) and
//! `/signatures` (the history). The page's script (`sign.js`) sends the files to `POST /api/v1/sign-jobs` and the
//! code to `POST /api/v1/sign-jobs/{id}/authorize`; previews are drawn by pdf.js (`VENDOR`) in the browser.

use actix_web::{web, HttpResponse};
use minijinja::{context, Value};

use super::{Page, PageError, StaticFile, Template};
use crate::app::AppState;
use crate::db::credentials::StatusAt;

/// This area's templates.
pub const TEMPLATES: &[Template] = &[
    ("signing/sign.html", include_str!("templates/signing/sign.html")),
    ("signing/job.html", include_str!("templates/signing/job.html")),
    ("signing/history.html", include_str!("templates/signing/history.html")),
];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[
    (
        "sign.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/sign.js"),
    ),
    (
        "sign-done.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/sign-done.js"),
    ),
    ("sign.css", "text/css; charset=utf-8", include_bytes!("static/sign.css")),
];

/// pdf.js, when `make web-vendor` installed it before the build (see `build.rs`).
#[cfg(pdfjs)]
pub const VENDOR: &[StaticFile] = &[
    (
        "pdf.min.mjs",
        "text/javascript",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/web/vendor/node_modules/pdfjs-dist/build/pdf.min.mjs"
        )),
    ),
    (
        "pdf.worker.min.mjs",
        "text/javascript",
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/web/vendor/node_modules/pdfjs-dist/build/pdf.worker.min.mjs"
        )),
    ),
];

/// Built without pdf.js: the signing page works, without previews (every PDF gets an invisible signature).
#[cfg(not(pdfjs))]
pub const VENDOR: &[StaticFile] = &[];

/// Whether this binary serves pdf.js.
pub fn previews() -> bool {
    !VENDOR.is_empty()
}

/// Registers this area's pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/sign").route(web::get().to(sign)))
        .service(web::resource("/sign/{job}").route(web::get().to(job)))
        .service(web::resource("/signatures").route(web::get().to(history)));
}

/// `/sign`: the certificate that will sign and its transactions left, the files, the code.
async fn sign(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let list = page.ok(crate::lifecycle::issuance::list_in(&state, &user.user, page.lang.code()).await)?;
    // The certificate jobs::create signs with: the valid one (there is at most one).
    let certificate = list.certificates.iter().find(|c| c.status == StatusAt::Valid);
    // Without one, a holder whose newest certificate expired reads the message product rules §5 mandates.
    let expired = certificate.is_none() && list.certificates.first().is_some_and(|c| c.status == StatusAt::Expired);
    let limits = &state.settings.documents;
    Ok(page.render(
        "signing/sign.html",
        context! {
            certificate => Value::from_serialize(certificate),
            expired,
            previews => previews(),
            max_files => limits.max_files,
            max_pdf_mb => limits.max_pdf_bytes / (1024 * 1024),
            max_file_mb => limits.max_file_bytes / (1024 * 1024),
            max_job_mb => limits.max_job_bytes / (1024 * 1024),
            retention_hours => limits.retention_secs / 3600,
        },
    ))
}

/// `/sign/{job}`: the signed files of a job, each with its link, and `SignedFiles.zip`, which the page's script
/// downloads once by itself.
async fn job(page: Page, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let job = page.ok(crate::documents::jobs::outputs(&state.documents(), &user.user, &id).await)?;
    Ok(page.render("signing/job.html", context! { job => Value::from_serialize(&job) }))
}

/// `/signatures`: the signing history (file, digest, time, format, level, transactions).
async fn history(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let history = page.ok(crate::documents::jobs::history(&state.documents(), &user.user).await)?;
    Ok(page.render(
        "signing/history.html",
        context! {
            signatures => Value::from_serialize(&history.signatures),
            retention_hours => state.settings.documents.retention_secs / 3600,
        },
    ))
}
