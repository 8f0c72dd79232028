//! The access log: one span per request, logged when it closes, that names the route and never the path.
//!
//! Several links carry their secret in the path or the query (`/invitations/{token}`, password recovery, the
//! identification provider's `/identity/…/{token}`), so a log line with the request's target would hand a reader of
//! the logs the power of every link sent that day. The span records the route's pattern (`/invitations/{token}`), the
//! method, the status, the request id and the client's address, and nothing of the path or the query string.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// The [`RootSpanBuilder`] of Parafa's [`tracing_actix_web::TracingLogger`].
pub struct AccessLog;

impl RootSpanBuilder for AccessLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request.match_pattern().unwrap_or_else(|| "unmatched".into());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            request_id = %request_id,
            http.method = %request.method(),
            http.route = %route,
            http.client_ip = %crate::app::client_address(request.request()),
            http.status_code = tracing::field::Empty,
            error = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        match outcome {
            Ok(response) => {
                span.record("http.status_code", response.status().as_u16());
                if let Some(error) = response.response().error() {
                    if response.status().is_server_error() {
                        span.record("error", tracing::field::display(error));
                    }
                }
            }
            Err(error) => {
                let status = error.as_response_error().status_code();
                span.record("http.status_code", status.as_u16());
                span.record("error", tracing::field::display(error));
            }
        }
    }
}
