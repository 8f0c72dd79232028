//! `/api/v1/packages` and `/api/v1/orders`.

use actix_web::{web, HttpResponse};

use super::orders::{self, OrderError, OrderRequest};
use super::payment::{self};
use crate::accounts::routes::WebUser;
use crate::app::AppState;
use crate::error::ApiError;
use crate::lifecycle::routes::Operator;

/// Registers the billing routes (under the `/api/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/packages").route(web::get().to(packages)))
        .service(
            web::resource("/orders")
                .route(web::post().to(place))
                .route(web::get().to(list)),
        )
        .service(web::resource("/orders/{id}").route(web::get().to(view)))
        .service(web::resource("/orders/{id}/cancel").route(web::post().to(cancel)))
        .service(web::resource("/orders/{id}/invoice.pdf").route(web::get().to(invoice_pdf)))
        .service(web::resource("/orders/{id}/credit-note.pdf").route(web::get().to(credit_note_pdf)))
        .service(web::resource("/operator/orders/{id}/{document}").route(web::get().to(operator_document)))
        .service(web::resource("/payments/{provider}/callback").route(web::post().to(callback)))
        .service(
            web::resource("/sandbox-pay/{id}")
                .route(web::get().to(sandbox_page))
                .route(web::post().to(sandbox_pay)),
        );
}

/// A gateway's signed notification. Answers 200 for a replayed event too (it changes nothing).
async fn callback(
    state: web::Data<AppState>,
    provider: web::Path<String>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    if provider.as_str() != "sandbox" {
        return Err(ApiError::not_found(crate::text!("error.payment.no_such_provider")));
    }
    let signature = req.headers().get("X-Payment-Signature").and_then(|v| v.to_str().ok());
    match payment::callback(&state.billing(), &provider, signature, &body).await {
        Ok(changed) => Ok(HttpResponse::Ok().json(serde_json::json!({ "received": true, "changed": changed }))),
        Err(e) => Err(e.into()),
    }
}

/// The sandbox routes exist only in development mode: otherwise they answer as an unknown route.
pub fn sandbox_only(state: &AppState) -> Result<(), ApiError> {
    if state.settings.dev {
        Ok(())
    } else {
        Err(ApiError::not_found(crate::text!("error.http.no_such_route")))
    }
}

/// The sandbox gateway's page: what would be charged, and the two buttons.
async fn sandbox_page(
    state: web::Data<AppState>,
    user: Result<WebUser, ApiError>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    sandbox_only(&state)?;
    let user = user?;
    orders::view(&state.billing(), &user.user, &id).await?;
    orders::reprice(&state.billing(), &id).await?;
    let order = orders::view(&state.billing(), &user.user, &id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "gateway": "sandbox",
        "order": order.registration_number,
        "charge": order.price.label,
        "actions": { "pay": { "outcome": "pay" }, "fail": { "outcome": "fail" } },
    })))
}

#[derive(serde::Deserialize)]
struct Outcome {
    outcome: Option<String>,
}

async fn sandbox_pay(
    state: web::Data<AppState>,
    user: Result<WebUser, ApiError>,
    id: web::Path<String>,
    body: Result<web::Json<Outcome>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    sandbox_only(&state)?;
    let user = user?;
    // An order that is not the user's is 404, as on the sandbox page (GET), not a 400 "unknown order".
    orders::view(&state.billing(), &user.user, &id)
        .await
        .map_err(ApiError::from)?;
    let outcome = body?.into_inner().outcome.unwrap_or_default();
    payment::sandbox_pay(&state.billing(), &user.user.id, &id, &outcome)
        .await
        .map_err(|e| ApiError::from(OrderError::from(e)))?;
    Ok(HttpResponse::Ok().json(
        orders::view(&state.billing(), &user.user, &id)
            .await
            .map_err(ApiError::from)?,
    ))
}

async fn packages(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(orders::packages(&state.billing()).await)
}

async fn place(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<OrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let order = crate::lifecycle::rekey::place_order(&state, &user.user, body.into_inner(), &user.client).await?;
    Ok(HttpResponse::Created().json(order))
}

async fn list(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(orders::list(&state.billing(), &user.user).await?))
}

async fn view(state: web::Data<AppState>, user: WebUser, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(orders::view(&state.billing(), &user.user, &id).await?))
}

async fn cancel(state: web::Data<AppState>, user: WebUser, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(orders::cancel(&state.billing(), &user.user, &id, &user.client).await?))
}

async fn invoice_pdf(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (number, pdf) = orders::invoice_pdf(&state.billing(), &user.user, &id).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{number}.pdf\"")))
        .body(pdf))
}

async fn credit_note_pdf(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (number, pdf) = orders::credit_note_pdf(&state.billing(), &id, Some(&user.user.id)).await?;
    Ok(attachment("application/pdf", &format!("{number}.pdf"), pdf))
}

/// An operator's copy of an order's fiscal documents: `invoice.pdf`, `invoice.xml` (e-Factura), `credit-note.pdf`,
/// `credit-note.xml`.
async fn operator_document(
    state: web::Data<AppState>,
    _op: Operator,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, document) = path.into_inner();
    let billing = state.billing();
    Ok(match document.as_str() {
        "invoice.pdf" => {
            let (number, pdf) = orders::order_pdf(&billing, &id, None, false).await?;
            attachment("application/pdf", &format!("{number}.pdf"), pdf)
        }
        "credit-note.pdf" => {
            let (number, pdf) = orders::credit_note_pdf(&billing, &id, None).await?;
            attachment("application/pdf", &format!("{number}.pdf"), pdf)
        }
        "invoice.xml" | "credit-note.xml" => {
            let (number, xml) = orders::efactura_xml(&billing, &id, document == "credit-note.xml").await?;
            attachment("application/xml", &format!("{number}.xml"), xml.into_bytes())
        }
        _ => return Err(ApiError::not_found(crate::text!("error.http.no_such_route"))),
    })
}

fn attachment(content_type: &str, filename: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{filename}\"")))
        .body(body)
}
