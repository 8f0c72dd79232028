//! Pages of the signing area (product rules §7): `/sign` (upload, previews with the visible-signature box, one
//! TOTP code for the batch), `/sign/{job}` (the signed files, `SignedFiles.zip` downloaded by itself) and
//! `/signatures` (the history). The page's script (`sign.js`) sends the files to `POST /api/v1/sign-jobs` and the
//! code to `POST /api/v1/sign-jobs/{id}/authorize`; previews are drawn by pdf.js (`VENDOR`) in the browser.

use actix_web::{web, HttpResponse};
use minijinja::{context, Value};
use serde_json::json;
use sqlx::Row;

use super::{Page, PageError, StaticFile, Template};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::startup::AppState;

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
    cfg.route("/sign", web::get().to(sign))
        .route("/sign/{job}", web::get().to(job))
        .route("/signatures", web::get().to(history));
}

/// `/sign`: the certificate that will sign and its transactions left, the files, the code.
async fn sign(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let list = page.ok(crate::lifecycle::issuance::list(&state, &user.user).await)?;
    // The certificate jobs::create signs with: the valid one (there is at most one).
    let certificate = list["certificates"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["status"] == "valid"))
        .cloned();
    let limits = &state.settings.documents;
    Ok(page.render(
        "signing/sign.html",
        context! {
            certificate => Value::from_serialize(&certificate),
            previews => previews(),
            max_files => limits.max_files,
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
    let job = page.ok(outputs(&state, &user.user.id, &id).await)?;
    Ok(page.render("signing/job.html", context! { job => Value::from_serialize(&job) }))
}

/// The job's state and its signed files' names (the same owner and retention rules as `jobs::file`/`jobs::zip`,
/// without reading the files).
async fn outputs(state: &AppState, user_id: &str, id: &str) -> Result<serde_json::Value, ApiError> {
    let gone = || ApiError::not_found("this signing job has expired; its files were deleted");
    let r = sqlx::query("SELECT state, expires_at FROM sign_jobs WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .fetch_optional(state.db.writer())
        .await
        .map_err(crate::db::DbError::from)?
        .ok_or_else(|| ApiError::not_found("no such signing job"))?;
    let expires_at: i64 = r.try_get("expires_at").map_err(crate::db::DbError::from)?;
    if expires_at <= state.clock.now() {
        return Err(gone());
    }
    let job_state: String = r.try_get("state").map_err(crate::db::DbError::from)?;
    let rows = sqlx::query("SELECT n, name, output_name FROM sign_job_files WHERE job_id = $1 ORDER BY n")
        .bind(id)
        .fetch_all(state.db.writer())
        .await
        .map_err(crate::db::DbError::from)?;
    let mut files = Vec::new();
    for f in rows {
        let n: i64 = f.try_get("n").map_err(crate::db::DbError::from)?;
        let name: String = f.try_get("name").map_err(crate::db::DbError::from)?;
        let output: Option<String> = f.try_get("output_name").map_err(crate::db::DbError::from)?;
        files.push(json!({ "n": n, "name": output.unwrap_or(name) }));
    }
    Ok(json!({
        "id": id,
        "state": job_state,
        "files": files,
        "expires_at": crate::clock::rfc3339(expires_at),
    }))
}

/// `/signatures`: the signing history (file, digest, time, format, level, transactions).
async fn history(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let history = page.ok(crate::documents::jobs::history(&state, &user.user).await)?;
    Ok(page.render(
        "signing/history.html",
        context! {
            signatures => Value::from_serialize(&history["signatures"]),
            retention_hours => state.settings.documents.retention_secs / 3600,
        },
    ))
}
