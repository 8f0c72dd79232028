//! `/pki/…`: the CA certificates, for relying parties and for the AIA URLs in issued certificates.

use actix_web::{web, HttpResponse};

use crate::startup::AppState;

/// Registers the PKI routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/pki/ca.crt", web::get().to(root_cert))
        .route("/pki/issuing.crt", web::get().to(issuing_cert));
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
