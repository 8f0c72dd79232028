//! `/api/v1/packages` and `/api/v1/orders`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::orders::{self, OrderError, OrderRequest};
use crate::accounts::routes::WebUser;
use crate::error::ApiError;
use crate::startup::AppState;

/// Registers the billing routes (under the `/api/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/packages", web::get().to(packages))
        .route("/orders", web::post().to(place))
        .route("/orders", web::get().to(list))
        .route("/orders/{id}", web::get().to(view))
        .route("/orders/{id}/cancel", web::post().to(cancel));
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> ApiError {
        match e {
            OrderError::Invalid(d) => ApiError::invalid_request(d),
            OrderError::NotFound => ApiError::not_found("no such order"),
            OrderError::Conflict(d) => ApiError::new(StatusCode::CONFLICT, "conflict", d),
            OrderError::Db(e) => e.into(),
        }
    }
}

async fn packages(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(orders::packages(&state).await)
}

async fn place(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<OrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let order = orders::place(&state, &user.user, body.into_inner(), &user.client).await?;
    Ok(HttpResponse::Created().json(order))
}

async fn list(state: web::Data<AppState>, user: WebUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(orders::list(&state, &user.user).await?))
}

async fn view(state: web::Data<AppState>, user: WebUser, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(orders::view(&state, &user.user, &id).await?))
}

async fn cancel(state: web::Data<AppState>, user: WebUser, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(orders::cancel(&state, &user.user, &id, &user.client).await?))
}
