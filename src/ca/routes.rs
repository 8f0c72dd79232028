//! `/pki/…`: the CA certificates, for relying parties and for the AIA URLs in issued certificates. The public
//! certificate registry: `GET /api/v1/registry?q=…` (JSON search, no login) and the downloads under `/registry/…`
//! (see [`super::registry`]).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::app::AppState;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::text;

/// Registers the PKI routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/pki/ca.crt").route(web::get().to(root_cert)))
        .service(web::resource("/pki/issuing.crt").route(web::get().to(issuing_cert)))
        .service(web::resource("/pki/crl").route(web::get().to(issuing_crl)))
        .service(web::resource("/pki/root.crl").route(web::get().to(root_crl)))
        .service(web::resource("/pki/ocsp").route(web::post().to(ocsp)))
        .service(web::resource("/api/v1/registry").route(web::get().to(registry_search)))
        .service(web::resource("/registry/{file}").route(web::get().to(registry_download)));
}

fn der_cert(der: &[u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pkix-cert")
        .body(der.to_vec())
}

async fn root_cert(state: web::Data<AppState>) -> HttpResponse {
    der_cert(&state.ca.root.der)
}

async fn issuing_cert(state: web::Data<AppState>) -> HttpResponse {
    der_cert(&state.ca.issuing.der)
}

async fn crl_of(state: &AppState, role: &str) -> Result<HttpResponse, ApiError> {
    let der = super::revocation::crl(&state.db, &state.hsm, &state.ca, state.clock.as_ref(), role)
        .await
        .map_err(|e| ApiError::unavailable(text!("error.registry.crl_unavailable"), &e))?;
    Ok(HttpResponse::Ok().content_type("application/pkix-crl").body(der))
}

async fn issuing_crl(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    crl_of(&state, "issuing").await
}

async fn root_crl(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    crl_of(&state, "root").await
}

/// RFC 6960 over HTTP POST (`application/ocsp-request`); every answer, even to a malformed request, is an OCSP
/// response with status 200, as OCSP clients expect. Past this instance's rate limit: `tryLater`, after a pause
/// ([`crate::ratelimit`]).
async fn ocsp(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let limits = super::revocation::OcspLimits::of(&state.settings.parsers);
    let unavailable = |e| ApiError::unavailable(text!("error.registry.ocsp_unavailable"), &e);
    let der = match state.ca.ocsp_limit.admit().await {
        Ok(()) => super::revocation::ocsp(&state.db, &state.hsm, &state.ca, state.clock.as_ref(), &body, &limits)
            .await
            .map_err(unavailable)?,
        Err(_) => super::revocation::try_later().map_err(unavailable)?,
    };
    Ok(HttpResponse::Ok().content_type("application/ocsp-response").body(der))
}

#[derive(serde::Deserialize)]
struct RegistryQuery {
    #[serde(default)]
    q: String,
}

/// `GET /api/v1/registry?q=…`: holders' certificates by name (at least 3 characters) or by whole e-mail address,
/// with status and download links; public. No e-mail address is ever in the answer.
async fn registry_search(state: web::Data<AppState>, q: web::Query<RegistryQuery>) -> Result<HttpResponse, ApiError> {
    let results = super::registry::search(&state.db, &state.ca, state.clock.now(), &q.q).await?;
    Ok(HttpResponse::Ok().json(results))
}

/// `GET /registry/{serial}.cer` (also `.der`, `.crt`): the certificate, DER; `/registry/{serial}-chain.pem`: the
/// certificate and the issuing CA's, PEM; `/registry/{serial}-chain.p7b`: both as PKCS#7 certs-only. Holder
/// certificates only; anything else is a 404.
async fn registry_download(state: web::Data<AppState>, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    use super::registry;
    let file = file.into_inner();
    let (serial, kind) = [".cer", ".der", ".crt", "-chain.pem", "-chain.p7b"]
        .into_iter()
        .find_map(|suffix| file.strip_suffix(suffix).map(|s| (s, suffix)))
        .ok_or_else(|| ApiError::from(registry::RegistryError::NotFound))?;
    let der = registry::certificate_der(&state.db, serial).await?;
    let serial = serial.to_ascii_lowercase();
    let (content_type, name, body) = match kind {
        "-chain.pem" => (
            "application/x-pem-file",
            format!("{serial}-chain.pem"),
            registry::chain_pem(&state.ca, &der).into_bytes(),
        ),
        "-chain.p7b" => (
            "application/x-pkcs7-certificates",
            format!("{serial}-chain.p7b"),
            registry::chain_p7b(&state.ca, &der)?,
        ),
        ext => ("application/pkix-cert", format!("{serial}{ext}"), der),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .body(body))
}
