//! The JSON API's error descriptions in the page's language. The API writes its `error_description`s in English
//! (CSC clients and scripts rely on them); the pages show them to people, so an answer to a browser that asked for
//! Romanian gets them in Romanian.
//!
//! Every error answer is an [`ApiError`](crate::error::ApiError), which keeps its description as an
//! [`i18n::Text`](crate::i18n::Text) (a key and its arguments) in the response's extensions. [`middleware`],
//! wrapped around the whole application in `startup::run`, renders that text again in the request's language
//! ([`request_lang`]) for the JSON error answers (status ≥ 400) of `/api/v1/…`: a lookup by key, never a guess from
//! the English. `/csc/…` keeps the specification's English messages; other routes are left alone.
//!
//! The request's language here is the `parafa_lang` cookie, else the preferred supported language of
//! `Accept-Language`, else none: unlike the pages, an API client that says nothing (curl, the CSC clients, the
//! tests) keeps getting English.

use std::future::Future;

use actix_web::body::{self, BoxBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::HttpRequest;

use super::i18n::{self, Lang};
use crate::i18n::Text;

/// The language an API request asked for: the language cookie, else `Accept-Language`; `None` when it says
/// neither (then the answer stays in English).
pub fn request_lang(req: &HttpRequest) -> Option<Lang> {
    if let Some(lang) = req.cookie(i18n::COOKIE).and_then(|c| Lang::parse(c.value())) {
        return Some(lang);
    }
    req.headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(i18n::from_accept_language)
}

/// Whether a path is the JSON API's (`/api/v1` and below).
fn is_api(path: &str) -> bool {
    path == "/api/v1" || path.starts_with("/api/v1/")
}

/// The `wrap_fn` of `startup::run`: translates the `error_description` of the API's JSON error answers into the
/// request's language. It must wrap the error handlers and the security check, whose answers it rewrites too.
pub fn middleware<S>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let lang = if is_api(req.path()) {
        request_lang(req.request())
    } else {
        None
    };
    let call = srv.call(req);
    async move {
        let res = call.await?;
        match lang {
            Some(lang @ Lang::Ro) => rewrite(res, lang).await,
            _ => Ok(res),
        }
    }
}

/// `res` with its `error_description` in `lang`, when it is a JSON error answer.
async fn rewrite(res: ServiceResponse<BoxBody>, lang: Lang) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let text = res.response().extensions().get::<Text>().cloned();
    let Some(text) = text.filter(|_| res.status().as_u16() >= 400 && is_json) else {
        return Ok(res);
    };
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = body::to_bytes(body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))?;
    let mut head = head;
    let translated = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|mut json| {
            let description = json.get("error_description")?.as_str()?;
            let said = text.render(lang);
            if said == description {
                return None;
            }
            json["error_description"] = serde_json::Value::String(said);
            serde_json::to_vec(&json).ok()
        });
    let body = match translated {
        Some(new) => {
            // The length is the new body's (actix writes it from the body); a stale header would cut it.
            head.headers_mut().remove(header::CONTENT_LENGTH);
            BoxBody::new(new)
        }
        None => BoxBody::new(bytes),
    };
    Ok(ServiceResponse::new(req, head.set_body(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_is_translated() {
        assert!(is_api("/api/v1/session"));
        assert!(!is_api("/api/v10/x") && !is_api("/csc/v2/signatures/signHash") && !is_api("/login"));
    }
}
