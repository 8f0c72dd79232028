//! `/api/v1` signing-job routes (the web signing UI's API).

use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;

use super::jobs::{self, JobError, Upload};
use crate::accounts::routes::WebUser;
use crate::app::AppState;
use crate::error::ApiError;

/// A megabyte, as the limits are shown.
const MB: usize = 1024 * 1024;

/// Registers the routes (under the `/api/v1` scope, before the account routes).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/sign-jobs").route(web::post().to(create)))
        .service(web::resource("/sign-jobs/inspect").route(web::post().to(inspect)))
        .service(web::resource("/sign-jobs/{id}/authorize").route(web::post().to(authorize)))
        .service(web::resource("/sign-jobs/{id}/files/{n}").route(web::get().to(file)))
        .service(web::resource("/sign-jobs/{id}/SignedFiles.zip").route(web::get().to(zip)))
        .service(web::resource("/me/signatures").route(web::get().to(history)))
        .service(web::resource("/verify").route(web::post().to(verify)));
}

/// Reads the upload form: `files` parts (any number, with their file names), `rect_<n>` (JSON rectangle of the
/// n-th file), `field_<n>` (the n-th file's empty signature field to sign into; empty: none), `p7s_for_pdf` and
/// `level`. Sizes are bounded while reading.
async fn read_form(
    mut form: actix_multipart::Multipart,
    limits: &crate::config::DocumentSettings,
) -> Result<(Vec<Upload>, bool, Option<String>), JobError> {
    let mut uploads: Vec<Upload> = Vec::new();
    let mut rects: Vec<(usize, serde_json::Value)> = Vec::new();
    let mut fields: Vec<(usize, String)> = Vec::new();
    let (mut p7s_for_pdf, mut level, mut total) = (false, None, 0usize);
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|e| JobError::Invalid(crate::text!("error.job.malformed_upload", e)))?;
        let name = part.name().unwrap_or_default().to_owned();
        let filename = part
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let is_file = name == "files" || name == "file";
        if is_file && uploads.len() >= limits.max_files {
            return Err(JobError::Invalid(crate::text!(
                "error.job.at_most_files_per_signing",
                max_files = limits.max_files
            )));
        }
        // A file's kind is known once it is read (jobs::create checks it against its kind's limit): until then it
        // may reach the larger of the two.
        let limit = if is_file { limits.max_any_document_bytes() } else { 4096 };
        let mut buf = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|e| JobError::Invalid(crate::text!("error.job.malformed_upload", e)))?;
            total += chunk.len();
            if buf.len() + chunk.len() > limit || total > limits.max_job_bytes {
                return Err(jobs::too_large(limits));
            }
            buf.extend_from_slice(&chunk);
        }
        let text = || {
            String::from_utf8(buf.clone()).map_err(|_| JobError::Invalid(crate::text!("error.rekey.not_text", name)))
        };
        match name.as_str() {
            "files" | "file" => uploads.push(Upload {
                name: filename.unwrap_or_else(|| "document".into()),
                bytes: buf,
                rect: None,
                field: None,
            }),
            "p7s_for_pdf" => p7s_for_pdf = matches!(text()?.trim(), "true" | "1" | "on"),
            "level" => level = Some(text()?.trim().to_owned()),
            other => match numbered(other) {
                Some(("rect_", n)) => {
                    let v = serde_json::from_str(&text()?)
                        .map_err(|e| JobError::Invalid(crate::text!("error.job.not_json_rectangle", other, e)))?;
                    rects.push((n, v));
                }
                Some((_, n)) => fields.push((n, text()?)),
                None => {
                    return Err(JobError::Invalid(crate::text!(
                        "error.job.unknown_form_field",
                        name = other
                    )))
                }
            },
        }
    }
    for (n, rect) in rects {
        let upload = uploads
            .get_mut(n)
            .ok_or_else(|| JobError::Invalid(crate::text!("error.job.rect_names_no_uploaded_file", n)))?;
        upload.rect = Some(rect);
    }
    for (n, field) in fields {
        let upload = uploads
            .get_mut(n)
            .ok_or_else(|| JobError::Invalid(crate::text!("error.job.field_names_no_uploaded_file", n)))?;
        // The page's "new signature" choice sends an empty name.
        upload.field = Some(field).filter(|f| !f.is_empty());
    }
    Ok((uploads, p7s_for_pdf, level))
}

/// A per-file form field, `rect_<n>` or `field_<n>`: its prefix and n.
fn numbered(name: &str) -> Option<(&'static str, usize)> {
    ["rect_", "field_"].into_iter().find_map(|prefix| {
        let n = name.strip_prefix(prefix)?.parse().ok()?;
        Some((prefix, n))
    })
}

async fn create(
    state: web::Data<AppState>,
    user: WebUser,
    form: actix_multipart::Multipart,
) -> Result<HttpResponse, ApiError> {
    let (uploads, p7s_for_pdf, level) = read_form(form, &state.settings.documents).await?;
    Ok(HttpResponse::Created()
        .json(jobs::create(&state.documents(), &user.user, uploads, p7s_for_pdf, level.as_deref()).await?))
}

/// `POST /sign-jobs/inspect`: one PDF (`file`), answered with its pages and empty signature fields.
async fn inspect(
    state: web::Data<AppState>,
    _user: WebUser,
    form: actix_multipart::Multipart,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.settings.documents;
    let (file, _) = read_verify_form(form, limits.max_pdf_bytes, &["file"]).await?;
    let file = file.ok_or_else(|| ApiError::invalid_request(crate::text!("error.job.choose_at_least_one_file")))?;
    Ok(HttpResponse::Ok().json(jobs::inspect(&state.documents(), &file).await?))
}

#[derive(Deserialize)]
struct Totp {
    totp: Option<String>,
}

async fn authorize(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<String>,
    body: web::Json<Totp>,
) -> Result<HttpResponse, ApiError> {
    let out = jobs::authorize(&state.documents(), &user.user, &id, body.totp.as_deref(), &user.client).await?;
    Ok(HttpResponse::Ok().json(out))
}

fn attachment(name: &str, content_type: &str, bytes: Vec<u8>) -> HttpResponse {
    // The name is cleaned on upload; quotes are replaced so the header stays well-formed.
    let safe: String = name
        .chars()
        .map(|c| if c == '"' || !c.is_ascii() { '_' } else { c })
        .collect();
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{safe}\"")))
        .body(bytes)
}

async fn file(
    state: web::Data<AppState>,
    user: WebUser,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, n) = path.into_inner();
    let (name, bytes) = jobs::file(&state.documents(), &user.user, &id, n).await?;
    let content_type = if name.ends_with(".p7s") {
        "application/pkcs7-signature"
    } else {
        "application/pdf"
    };
    Ok(attachment(&name, content_type, bytes))
}

async fn zip(state: web::Data<AppState>, user: WebUser, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let bytes = jobs::zip(&state.documents(), &user.user, &id).await?;
    Ok(attachment("SignedFiles.zip", "application/zip", bytes))
}

async fn history(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(jobs::history(&state.documents(), &user.user).await?))
}

/// Reads the verification form: `file` (a signed PDF or a `.p7s`) and, for a detached `.p7s`, `content`; each up
/// to `max` bytes. Only the parts `allowed` are taken (the inspection of a PDF takes a `file` alone).
async fn read_verify_form(
    mut form: actix_multipart::Multipart,
    max: usize,
    allowed: &[&str],
) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), ApiError> {
    let (mut file, mut content) = (None, None);
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|e| ApiError::invalid_request(crate::text!("error.job.malformed_upload", e)))?;
        let name = part.name().unwrap_or_default().to_owned();
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::invalid_request(crate::text!(
                "error.job.unknown_form_field",
                name
            )));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|e| ApiError::invalid_request(crate::text!("error.job.malformed_upload", e)))?;
            if buf.len() + chunk.len() > max {
                return Err(ApiError::too_large(crate::text!(
                    "error.verify.files_limited_mb_each",
                    mb = max / MB
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        // An empty file input (nothing chosen) counts as absent.
        let value = (!buf.is_empty()).then_some(buf);
        if name == "file" {
            file = value;
        } else {
            content = value;
        }
    }
    Ok((file, content))
}

/// `POST /api/v1/verify`: public, no login.
async fn verify(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    form: actix_multipart::Multipart,
) -> Result<HttpResponse, ApiError> {
    let (file, content) =
        read_verify_form(form, state.settings.documents.max_signed_bytes(), &["file", "content"]).await?;
    let file = file.ok_or_else(|| ApiError::invalid_request(crate::text!(NO_FILE)))?;
    let size = file.len() + content.as_ref().map_or(0, Vec::len);
    // A DER `.p7s` starts with a SEQUENCE; anything else is read as a PDF, with what its streams may decode to.
    let pdf = !file.starts_with(&[0x30]);
    let admission = &state.settings.admission;
    let _parse = state
        .admission
        .reserve_parse(size, pdf, admission, crate::admission::Work::Verification)
        .await?;
    // The problems in the page's language; English for a client that asks for none.
    let lang = crate::web::api_lang::request_lang(&req).unwrap_or(crate::i18n::Lang::En);
    Ok(HttpResponse::Ok().json(super::verify::verify(&state.documents(), file, content, lang).await?))
}

/// The message for a verification form without a file.
pub const NO_FILE: &str = "error.verify.choose_signed_pdf_or_p7s";
