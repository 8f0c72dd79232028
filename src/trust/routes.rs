//! `/pki/tl.xml` (the trusted list) and `/pki/tl-operator.crt` (the certificate its signature verifies with).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::app::AppState;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::text;

/// Registers the trusted list's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/pki/tl.xml").route(web::get().to(trusted_list)))
        .service(web::resource("/pki/tl-operator.crt").route(web::get().to(operator_cert)));
}

async fn trusted_list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = state.clock.now();
    let list = state
        .trust
        .current(&state.db, &state.hsm, &state.settings, now)
        .await
        .map_err(|e| ApiError::unavailable(text!("error.registry.tl_unavailable"), &e))?;
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.etsi.tsl+xml")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(list.xml.clone()))
}

async fn operator_cert(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pkix-cert")
        .body(state.trust.operator_der().to_vec())
}
