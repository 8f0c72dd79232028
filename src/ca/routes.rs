//! `/pki/…`: the CA certificates, for relying parties and for the AIA URLs in issued certificates.

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::startup::AppState;

/// Registers the PKI routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/pki/ca.crt", web::get().to(root_cert))
        .route("/pki/issuing.crt", web::get().to(issuing_cert))
        .route("/pki/crl", web::get().to(issuing_crl))
        .route("/pki/root.crl", web::get().to(root_crl))
        .route("/pki/ocsp", web::post().to(ocsp));
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
        .map_err(|e| ApiError::unavailable("the CRL could not be produced", &e))?;
    Ok(HttpResponse::Ok().content_type("application/pkix-crl").body(der))
}

async fn issuing_crl(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    crl_of(&state, "issuing").await
}

async fn root_crl(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    crl_of(&state, "root").await
}

/// RFC 6960 over HTTP POST (`application/ocsp-request`); every answer, even to a malformed request, is an OCSP
/// response with status 200, as OCSP clients expect.
async fn ocsp(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let der = super::revocation::ocsp(&state.db, &state.hsm, &state.ca, state.clock.as_ref(), &body)
        .await
        .map_err(|e| ApiError::unavailable("the OCSP response could not be produced", &e))?;
    Ok(HttpResponse::Ok().content_type("application/ocsp-response").body(der))
}
