//! `/api/v1` lifecycle routes: identification, issuance, certificates, rekey, and the operator API.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::identity::{self, Document, SandboxOutcome, Verdict};
use super::{institutional, issuance, rekey, scheduler, LifecycleError};
use crate::accounts::routes::WebUser;
use crate::app::AppState;
use crate::clock::Clock;
use crate::error::ApiError;

/// Registers the lifecycle routes (under the `/api/v1` scope, before the account routes).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/orders/{id}/identity-session").route(web::post().to(identity_start)))
        .service(web::resource("/orders/{id}/resubmit").route(web::post().to(resubmit)))
        .service(
            web::resource("/identity/sandbox/{token}")
                .route(web::get().to(sandbox_view))
                .route(web::post().to(sandbox_report)),
        )
        .service(web::resource("/identity/callback").route(web::post().to(provider_callback)))
        .service(web::resource("/identity/sms").route(web::post().to(provider_sms)))
        .service(
            web::resource("/me/certificates")
                .route(web::get().to(certificates))
                .route(web::post().to(issue)),
        )
        .service(web::resource("/me/certificates/terms").route(web::get().to(terms)))
        .service(web::resource("/me/certificates/{id}/terms-evidence.p7s").route(web::get().to(evidence)))
        .service(web::resource("/me/rekey").route(web::post().to(rekey_start)))
        .service(web::resource("/me/rekey/{id}").route(web::get().to(rekey_view)))
        .service(web::resource("/me/rekey/{id}/identity").route(web::post().to(rekey_identity)))
        .service(web::resource("/me/rekey/{id}/submit").route(web::post().to(rekey_submit)))
        .service(web::resource("/operator/identity-sessions").route(web::get().to(op_identity_queue)))
        .service(web::resource("/operator/identity-sessions/{id}/{decision}").route(web::post().to(op_identity_decide)))
        .service(web::resource("/operator/rekey-requests").route(web::get().to(op_rekey_queue)))
        .service(web::resource("/operator/rekey-requests/{id}/{decision}").route(web::post().to(op_rekey_decide)))
        .service(web::resource("/operator/credentials/{id}/revoke").route(web::post().to(op_revoke)))
        .service(web::resource("/operator/users").route(web::get().to(op_users)))
        .service(web::resource("/operator/users/{id}/totp-unlock").route(web::post().to(op_totp_unlock)))
        .service(web::resource("/operator/users/{id}/identity").route(web::post().to(op_identity_correct)))
        .service(web::resource("/operator/orders").route(web::get().to(op_orders)))
        .service(web::resource("/operator/audit/verify").route(web::get().to(op_audit)))
        .service(web::resource("/operator/lifecycle/run").route(web::post().to(op_run)))
        .service(web::resource("/operator/contact").route(web::get().to(op_contact)))
        .service(web::resource("/operator/contact/{id}/answer").route(web::post().to(op_contact_answer)))
        .service(
            web::resource("/operator/legal-holds")
                .route(web::get().to(op_holds))
                .route(web::post().to(op_hold_place)),
        )
        .service(web::resource("/operator/legal-holds/{id}/release").route(web::post().to(op_hold_release)));
    configure_institutional(cfg);
}

/// The institutional orders' routes (under `/api/v1`): the operator's API and the institution's links.
fn configure_institutional(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/operator/institutional-orders")
            .route(web::get().to(institutional_list))
            .route(web::post().to(institutional_create)),
    )
    .service(
        web::resource("/operator/institutional-orders/{id}/identity").route(web::post().to(institutional_identity)),
    )
    .service(web::resource("/operator/institutional-orders/{id}/cancel").route(web::post().to(institutional_cancel)))
    .service(
        web::resource("/operator/institutional-orders/{id}/proforma.pdf")
            .route(web::get().to(institutional_operator_proforma)),
    )
    .service(web::resource("/institutional/{token}/{document}").route(web::get().to(institutional_document)));
}

/// A logged-in operator.
pub struct Operator(pub WebUser);

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let user = WebUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if user.user.role != crate::db::users::Role::Operator {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "access_denied",
                    crate::text!("error.http.for_operators_only"),
                ));
            }
            Ok(Operator(user))
        })
    }
}

async fn identity_start(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(identity::start(&state, &user.user, &id, &user.client).await?))
}

async fn resubmit(state: web::Data<AppState>, user: WebUser, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(identity::resubmit(&state, &user.user, &id, &user.client).await?))
}

async fn sandbox_view(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(identity::sandbox_view(&state, &token).await?))
}

async fn sandbox_report(
    state: web::Data<AppState>,
    token: web::Path<String>,
    body: Result<web::Json<SandboxOutcome>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    // Unknown outside development mode, whatever the body.
    if !state.settings.dev {
        return Err(ApiError::not_found(crate::text!("error.http.no_such_route")).into());
    }
    let report = identity::sandbox_report(&state, &token, body?.into_inner()).await;
    Ok(HttpResponse::Ok().json(report.map_err(ApiError::from)?))
}

/// The identification provider's signed report.
async fn provider_callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let signature = req.headers().get("X-Identity-Signature").and_then(|v| v.to_str().ok());
    match identity::provider_callback(&state, signature, &body).await {
        Ok(v) => Ok(HttpResponse::Ok().json(v)),
        Err(identity::ProviderCallbackError::Unauthentic) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            crate::text!("error.identity.report_not_authentic"),
        )),
        Err(identity::ProviderCallbackError::Lifecycle(e)) => Err(e.into()),
    }
}

async fn provider_sms(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let signature = req.headers().get("X-Identity-Signature").and_then(|v| v.to_str().ok());
    match super::identity_sms::provider_sms(&state, signature, &body).await {
        Ok(v) => Ok(HttpResponse::Accepted().json(v)),
        Err(identity::ProviderCallbackError::Unauthentic) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            crate::text!("error.identity.report_not_authentic"),
        )),
        Err(identity::ProviderCallbackError::Lifecycle(e)) => Err(e.into()),
    }
}

async fn certificates(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(issuance::list(&state, &user.user).await?))
}

async fn issue(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<issuance::IssueRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(issuance::issue(&state, &user.user, body.into_inner(), &user.client).await?))
}

async fn terms(state: web::Data<AppState>, user: WebUser) -> HttpResponse {
    let version = &state.settings.lifecycle.terms_version;
    let holder = format!("{} {}", user.user.given_name, user.user.surname);
    HttpResponse::Ok().json(json!({
        "version": version,
        "text": issuance::terms_document(version, &holder, "(your order)", state.clock.now()),
    }))
}

async fn evidence(state: web::Data<AppState>, user: WebUser, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let der = issuance::evidence(&state, &user.user, &id).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pkcs7-signature")
        .insert_header(("Content-Disposition", "attachment; filename=\"terms-evidence.p7s\""))
        .body(der))
}

async fn rekey_start(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<rekey::StartRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(rekey::start(&state, &user.user, body.into_inner(), &user.client).await?))
}

async fn rekey_view(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(rekey::view(&state, &user.user, &id).await?))
}

/// Largest text field of the rekey form, in bytes.
const FIELD_MAX: usize = 1024;
/// Most parts a rekey form may have.
const PARTS_MAX: usize = 20;

/// Reads the multipart form: the document fields as text, `photo` as bytes (bounded while reading).
async fn read_rekey_form(
    mut form: actix_multipart::Multipart,
    photo_max: usize,
) -> Result<(Document, Vec<u8>), LifecycleError> {
    let mut fields = serde_json::Map::new();
    let mut photo = Vec::new();
    let mut parts = 0;
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|e| LifecycleError::Invalid(crate::text!("error.rekey.malformed_form", e)))?;
        parts += 1;
        if parts > PARTS_MAX {
            return Err(LifecycleError::Invalid(crate::text!(
                "error.rekey.too_many_form_fields"
            )));
        }
        let name = part.name().unwrap_or_default().to_owned();
        let limit = if name == "photo" { photo_max } else { FIELD_MAX };
        let mut buf = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|e| LifecycleError::Invalid(crate::text!("error.rekey.malformed_form", e)))?;
            if buf.len() + chunk.len() > limit {
                return Err(if name == "photo" {
                    LifecycleError::TooLarge(crate::text!(
                        "error.rekey.copy_document_larger_than_mb",
                        mb = photo_max / (1024 * 1024)
                    ))
                } else {
                    LifecycleError::Invalid(crate::text!("error.rekey.field_too_long", name))
                });
            }
            buf.extend_from_slice(&chunk);
        }
        if name == "photo" {
            photo = buf;
        } else {
            let text = String::from_utf8(buf)
                .map_err(|_| LifecycleError::Invalid(crate::text!("error.rekey.not_text", name)))?;
            fields.insert(name, json!(text));
        }
    }
    let document: Document = serde_json::from_value(serde_json::Value::Object(fields))
        .map_err(|e| LifecycleError::Invalid(crate::text!("error.rekey.document_data", e)))?;
    Ok((document, photo))
}

async fn rekey_identity(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<String>,
    form: actix_multipart::Multipart,
) -> Result<HttpResponse, ApiError> {
    let (document, photo) = read_rekey_form(form, state.settings.lifecycle.photo_max_bytes).await?;
    Ok(HttpResponse::Ok().json(rekey::identity(&state, &user.user, &id, document, photo, &user.client).await?))
}

async fn rekey_submit(
    state: web::Data<AppState>,
    user: WebUser,
    id: web::Path<String>,
    body: web::Json<rekey::SubmitRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(rekey::submit(&state, &user.user, &id, body.into_inner(), &user.client).await?))
}

#[derive(Deserialize)]
struct QueueQuery {
    state: Option<String>,
    flagged: Option<bool>,
}

async fn op_identity_queue(
    state: web::Data<AppState>,
    _op: Operator,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(identity::queue(&state, q.state.as_deref(), q.flagged == Some(true)).await?))
}

#[derive(Deserialize, Default)]
struct ReasonBody {
    reason: Option<String>,
    #[serde(default)]
    fake: bool,
}

async fn op_identity_decide(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<(String, String)>,
    body: Option<web::Json<ReasonBody>>,
) -> Result<HttpResponse, ApiError> {
    let (id, decision) = path.into_inner();
    let body = body.map(|b| b.into_inner()).unwrap_or_default();
    let decision = identity::Decision::parse(&decision)
        .ok_or_else(|| ApiError::not_found(crate::text!("error.identity.decisions_accept_return_and_reject")))?;
    let verdict = Verdict {
        decision,
        reason: body.reason,
        fake: body.fake,
    };
    Ok(HttpResponse::Ok().json(identity::decide(&state, &id, verdict, &op.0.user.id).await?))
}

async fn op_rekey_queue(
    state: web::Data<AppState>,
    _op: Operator,
    q: web::Query<QueueQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(rekey::queue(&state, q.state.as_deref()).await?))
}

async fn op_rekey_decide(
    state: web::Data<AppState>,
    op: Operator,
    path: web::Path<(String, String)>,
    body: Option<web::Json<ReasonBody>>,
) -> Result<HttpResponse, ApiError> {
    let (id, decision) = path.into_inner();
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return Err(ApiError::not_found(crate::text!(
                "error.identity.decisions_approve_and_reject"
            )))
        }
    };
    let reason = body.and_then(|b| b.into_inner().reason);
    Ok(HttpResponse::Ok().json(rekey::decide(&state, &id, approve, reason.as_deref(), &op.0.user.id).await?))
}

async fn op_revoke(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<String>,
    body: Option<web::Json<ReasonBody>>,
) -> Result<HttpResponse, ApiError> {
    use super::revoke::revoke_credential;
    let reason = body
        .and_then(|b| b.into_inner().reason)
        .unwrap_or_else(|| "unspecified".into());
    let actor = format!("operator:{}", op.0.user.id);
    match revoke_credential(&state, &id, None, &reason, &actor, &op.0.client).await {
        Ok(serial) => {
            Ok(HttpResponse::Ok().json(json!({ "status": "revoked", "certificate_serial": serial, "reason": reason })))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
struct UnlockBody {
    reason: String,
}

async fn op_totp_unlock(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<UnlockBody>,
) -> Result<HttpResponse, ApiError> {
    let actor = format!("operator:{}", op.0.user.id);
    super::clear_totp_lock(&state, &id, &body.reason, &actor, &op.0.client).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "unlocked" })))
}

async fn op_identity_correct(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<identity::Correction>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(identity::correct(&state, &id, body.into_inner(), &op.0.user, &op.0.client).await?))
}

async fn op_users(state: web::Data<AppState>, _op: Operator) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(super::operator_users(&state).await?))
}

async fn op_orders(state: web::Data<AppState>, _op: Operator) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(super::operator_orders(&state).await?))
}

async fn op_audit(state: web::Data<AppState>, _op: Operator) -> Result<HttpResponse, ApiError> {
    let v = crate::audit::verify(&state.db).await?;
    Ok(HttpResponse::Ok().json(json!({ "rows": v.rows, "intact": v.broken.is_none(), "broken": v.broken })))
}

async fn op_run(state: web::Data<AppState>, _op: Operator) -> HttpResponse {
    let r = scheduler::tick(&state).await;
    HttpResponse::Ok().json(json!({ "reminders": r.reminders, "successors": r.successors, "refunds": r.refunds }))
}

async fn op_contact(state: web::Data<AppState>, _op: Operator) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(crate::accounts::contact::open_messages(&state.accounts()).await?))
}

async fn op_contact_answer(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<crate::accounts::contact::Answer>,
) -> Result<HttpResponse, ApiError> {
    let done =
        crate::accounts::contact::answer(&state.accounts(), &id, body.into_inner(), &op.0.user, &op.0.client).await?;
    Ok(HttpResponse::Ok().json(done))
}

async fn op_holds(state: web::Data<AppState>, _op: Operator) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(super::retention::holds(&state).await?))
}

async fn op_hold_place(
    state: web::Data<AppState>,
    op: Operator,
    body: web::Json<super::retention::NewHold>,
) -> Result<HttpResponse, ApiError> {
    let hold = super::retention::place_hold(&state, body.into_inner(), &op.0.user, &op.0.client).await?;
    Ok(HttpResponse::Created().json(hold))
}

async fn op_hold_release(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<super::retention::Release>,
) -> Result<HttpResponse, ApiError> {
    let hold = super::retention::release_hold(&state, &id, body.into_inner(), &op.0.user, &op.0.client).await?;
    Ok(HttpResponse::Ok().json(hold))
}

// Institutional orders

fn pdf_response(name: &str, pdf: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}.pdf\"")))
        .insert_header(("Cache-Control", "no-store"))
        .body(pdf)
}

async fn institutional_list(state: web::Data<AppState>, _op: Operator) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(institutional::list(&state).await?))
}

async fn institutional_create(
    state: web::Data<AppState>,
    op: Operator,
    body: web::Json<institutional::CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(institutional::create(&state, &op.0.user, body.into_inner(), &op.0.client).await?))
}

async fn institutional_identity(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<institutional::IdentityRecord>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .json(institutional::record_identity(&state, &id, body.into_inner(), &op.0.user, &op.0.client).await?))
}

async fn institutional_cancel(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<String>,
    body: web::Json<institutional::CancelRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(institutional::cancel(&state, &id, body.into_inner(), &op.0.user, &op.0.client).await?))
}

async fn institutional_operator_proforma(
    state: web::Data<AppState>,
    _op: Operator,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    institutional::view(&state, &id).await?;
    let (number, pdf) = crate::billing::orders::order_pdf(&state.billing(), &id, None, true)
        .await
        .map_err(institutional::pdf_error)?;
    Ok(pdf_response(&format!("proforma-{number}"), pdf))
}

async fn institutional_document(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (token, document) = path.into_inner();
    let (number, pdf) = institutional::document_by_link(&state, &token, &document).await?;
    let name = if document == "proforma.pdf" {
        format!("proforma-{number}")
    } else {
        number
    };
    Ok(pdf_response(&name, pdf))
}
