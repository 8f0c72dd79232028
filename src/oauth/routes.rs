//! The OAuth 2.0 endpoints, off the base URL that `info` announces as `oauth2` (not under `/csc/vN`):
//! `GET /oauth2/authorize` (the consent page, or an error page, or back to the client), `POST /oauth2/authorize`
//! (the holder's answer, sent by the page's script with the session's CSRF token), `POST /oauth2/token`,
//! `POST /oauth2/revoke`, `POST /oauth2/pushed_authorize`, `GET /.well-known/oauth-authorization-server`, and the
//! holder's own revocation of an application (`DELETE /api/v1/me/apps/{grant}`). Handlers only read, call
//! [`crate::oauth`] and render.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use minijinja::{context, Value};
use secrecy::SecretString;
use serde::Deserialize;

use super::clients::{self, Presented};
use super::request::{self, Params, Refusal};
use super::{grant, redirect_to, token, OAuthError, Services};
use crate::accounts::routes::WebUser;
use crate::app::{client_address, AppState};
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::lifecycle::routes::Operator;
use crate::web::{Page, PageError};

/// Registers the endpoints at the top level.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/oauth2/authorize")
            .route(web::get().to(authorize))
            .route(web::post().to(decide)),
    )
    .service(web::resource("/oauth2/token").route(web::post().to(token_endpoint)))
    .service(web::resource("/oauth2/revoke").route(web::post().to(revoke)))
    .service(web::resource("/oauth2/pushed_authorize").route(web::post().to(pushed_authorize)))
    .service(web::resource("/.well-known/oauth-authorization-server").route(web::get().to(metadata)));
}

/// Registers the holder's revocation and the operators' client registration (under the `/api/v1` scope).
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/me/apps/{grant}").route(web::delete().to(revoke_app)))
        .service(web::resource("/operator/oauth-clients").route(web::post().to(op_create_client)))
        .service(web::resource("/operator/oauth-clients/{id}/disable").route(web::post().to(op_disable_client)));
}

fn services(state: &AppState) -> Services<'_> {
    state.oauth()
}

/// Where a refused request goes back to: the client's redirect URI with the error, `state` and `iss`.
fn error_redirect(svc: Services<'_>, redirect_uri: &str, state: Option<&str>, error: &OAuthError) -> String {
    let description = error.text().render(Lang::En);
    let issuer = svc.issuer();
    let mut params = vec![("error", error.code()), ("error_description", description.as_str())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer.as_str()));
    redirect_to(redirect_uri, &params)
}

fn found(to: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `GET /oauth2/authorize`: an unknown client or redirect URI is an error page; any other fault goes back to the
/// client; a holder not logged in logs in first (and comes back here); then the consent page.
async fn authorize(
    mut page: Page,
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<Params>,
) -> Result<HttpResponse, PageError> {
    let svc = services(&state);
    let request = match request::read(svc, &q).await {
        Ok(r) => r,
        Err(Refusal::Page(e)) => return Err(page.error(e)),
        Err(Refusal::Redirect {
            redirect_uri,
            state,
            error,
        }) => return Ok(found(&error_redirect(svc, &redirect_uri, state.as_deref(), &error))),
    };
    if let Some(lang) = request.lang.as_deref().and_then(Lang::parse) {
        page.lang = lang;
    }
    let user_id = page.user()?.user.id.clone();
    let view = match grant::view(svc, &user_id, &request).await {
        Ok(v) => v,
        Err(e @ OAuthError::Db(_)) => return Err(page.error(e)),
        Err(e) => {
            return Ok(found(&error_redirect(
                svc,
                &request.redirect_uri,
                request.state.as_deref(),
                &e,
            )))
        }
    };
    Ok(page.render(
        "oauth/consent.html",
        context! { consent => Value::from_serialize(&view), query => req.query_string() },
    ))
}

/// The consent form's answer.
#[derive(Debug, Deserialize)]
struct Decision {
    /// The authorization request's query string, as the consent page was given it.
    query: Option<String>,
    /// `allow` or `refuse`.
    decision: Option<String>,
    /// The TOTP code (scope credential).
    otp: Option<String>,
}

/// `POST /oauth2/authorize`: the holder's answer; `{"redirect": …}` for the page's script to follow. The request is
/// read again from its query, so nothing the page holds is trusted beyond what the first reading accepted.
async fn decide(
    state: web::Data<AppState>,
    user: WebUser,
    body: web::Json<Decision>,
) -> Result<HttpResponse, ApiError> {
    let svc = services(&state);
    let body = body.into_inner();
    let params = web::Query::<Params>::from_query(body.query.as_deref().unwrap_or_default())
        .map_err(|_| OAuthError::Invalid(crate::text!("error.oauth.missing_parameter", name = "query")))?;
    let request = match request::read(svc, &params).await {
        Ok(r) => r,
        Err(Refusal::Page(e)) => return Err(e.into()),
        Err(Refusal::Redirect {
            redirect_uri,
            state,
            error,
        }) => {
            let to = error_redirect(svc, &redirect_uri, state.as_deref(), &error);
            return Ok(HttpResponse::Ok().json(serde_json::json!({ "redirect": to })));
        }
    };
    let allow = match body.decision.as_deref() {
        Some("allow") => true,
        Some("refuse") => false,
        _ => return Err(OAuthError::Invalid(crate::text!("error.oauth.invalid_parameter", name = "decision")).into()),
    };
    let to = match grant::decide(svc, &user.user.id, &request, allow, body.otp.as_deref(), &user.client).await {
        Ok(to) => to,
        Err(e @ (OAuthError::Totp(_) | OAuthError::Db(_))) => return Err(e.into()),
        Err(e) => error_redirect(svc, &request.redirect_uri, request.state.as_deref(), &e),
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({ "redirect": to })))
}

/// How the client presented itself: `Authorization: Basic` (RFC 6749 §2.3.1) and the form's `client_id` and
/// `client_secret`.
fn presented(req: &HttpRequest, form: &Params) -> Result<Presented, OAuthError> {
    let basic = match req.headers().get(header::AUTHORIZATION).map(|h| h.to_str()) {
        None => None,
        Some(Ok(h)) if h.starts_with("Basic ") => Some(
            crate::encoding::basic_credentials(h)
                .map(|(id, secret)| (percent_decode(&id), secret))
                .ok_or_else(|| OAuthError::InvalidClient(crate::text!("error.oauth.client_auth_failed")))?,
        ),
        Some(_) => {
            return Err(OAuthError::InvalidClient(crate::text!(
                "error.oauth.client_auth_failed"
            )))
        }
    };
    Ok(Presented {
        basic,
        client_id: form.get("client_id").cloned(),
        client_secret: form
            .get("client_secret")
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.clone())),
    })
}

/// Client ids are URL-safe, so their form-encoding in a Basic header is themselves; `%XX` and `+` are decoded
/// anyway, as RFC 6749 §2.3.1 asks.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An RFC 6749 §5.2 error: the JSON of [`ApiError`], `WWW-Authenticate` with a 401 `invalid_client`, never cached.
fn token_error(e: OAuthError) -> HttpResponse {
    use actix_web::ResponseError;
    let client = matches!(e, OAuthError::InvalidClient(_));
    let mut res = ApiError::from(e).error_response();
    if client {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"parafa\""),
        );
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    res
}

fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    res
}

/// `POST /oauth2/token`.
async fn token_endpoint(state: web::Data<AppState>, req: HttpRequest, form: web::Form<Params>) -> HttpResponse {
    let svc = services(&state);
    let form = form.into_inner();
    let result = async {
        let client = clients::authenticate(svc, presented(&req, &form)?).await?;
        let request = token::TokenRequest {
            grant_type: form.get("grant_type").cloned(),
            code: form.get("code").cloned(),
            redirect_uri: form.get("redirect_uri").cloned(),
            code_verifier: form.get("code_verifier").cloned(),
            refresh_token: form.get("refresh_token").cloned(),
        };
        token::exchange(svc, &client, request, &client_address(&req)).await
    }
    .await;
    match result {
        Ok(out) => no_store(HttpResponse::Ok().json(out)),
        Err(e) => token_error(e),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): 200 whether or not the token was known.
async fn revoke(state: web::Data<AppState>, req: HttpRequest, form: web::Form<Params>) -> HttpResponse {
    let svc = services(&state);
    let form = form.into_inner();
    let result = async {
        let client = clients::authenticate(svc, presented(&req, &form)?).await?;
        let token = form
            .get("token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::Invalid(crate::text!("error.oauth.missing_parameter", name = "token")))?;
        token::revoke(svc, &client, token, &client_address(&req)).await
    }
    .await;
    match result {
        Ok(()) => no_store(HttpResponse::Ok().finish()),
        Err(e) => token_error(e),
    }
}

/// `POST /oauth2/pushed_authorize` (RFC 9126): 201 with the `request_uri` to send the browser with.
async fn pushed_authorize(state: web::Data<AppState>, req: HttpRequest, form: web::Form<Params>) -> HttpResponse {
    let svc = services(&state);
    let mut form = form.into_inner();
    let result = async {
        let client = clients::authenticate(svc, presented(&req, &form)?).await?;
        form.remove("client_secret");
        request::push(svc, &client, &form).await
    }
    .await;
    match result {
        Ok((request_uri, expires_in)) => no_store(
            HttpResponse::Created().json(serde_json::json!({ "request_uri": request_uri, "expires_in": expires_in })),
        ),
        Err(e) => token_error(e),
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(token::metadata(services(&state)))
}

/// `DELETE /api/v1/me/apps/{grant}`: the holder revokes an application they allowed (its tokens with it).
async fn revoke_app(
    state: web::Data<AppState>,
    user: WebUser,
    grant_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let svc = services(&state);
    if !token::revoke_by_holder(svc, &user.user.id, &grant_id, &user.client).await? {
        return Err(ApiError::not_found(crate::text!("error.oauth.app_not_found")));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The console's form for a new client.
#[derive(Debug, Deserialize)]
struct NewClientBody {
    name: Option<String>,
    /// One a line.
    redirect_uris: Option<String>,
    public: Option<bool>,
    service: Option<bool>,
    credential: Option<bool>,
}

/// `POST /api/v1/operator/oauth-clients`: registers a client; the secret (confidential clients) is in this answer
/// only.
async fn op_create_client(
    state: web::Data<AppState>,
    op: Operator,
    body: web::Json<NewClientBody>,
) -> Result<HttpResponse, ApiError> {
    use secrecy::ExposeSecret;
    let body = body.into_inner();
    let mut scopes = Vec::new();
    if body.service.unwrap_or(false) {
        scopes.push(super::SCOPE_SERVICE.to_owned());
    }
    if body.credential.unwrap_or(false) {
        scopes.push(super::SCOPE_CREDENTIAL.to_owned());
    }
    if scopes.is_empty() {
        return Err(OAuthError::InvalidScope(crate::text!("error.oauth.scope_required")).into());
    }
    let new = clients::NewClient {
        name: body.name.unwrap_or_default(),
        redirect_uris: body
            .redirect_uris
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        public: body.public.unwrap_or(false),
        scopes,
    };
    let actor = format!("operator:{}", op.0.user.id);
    let registered = clients::create(services(&state), new, &actor, &op.0.client).await?;
    Ok(no_store(HttpResponse::Created().json(serde_json::json!({
        "client_id": registered.client_id,
        "client_secret": registered.secret.as_ref().map(|s| s.expose_secret().to_owned()),
    }))))
}

/// `POST /api/v1/operator/oauth-clients/{id}/disable`: disables a client and revokes what it holds.
async fn op_disable_client(
    state: web::Data<AppState>,
    op: Operator,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = format!("operator:{}", op.0.user.id);
    if !clients::disable(services(&state), &id, &actor, &op.0.client).await? {
        return Err(ApiError::not_found(crate::text!("error.oauth.unknown_client")));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "client_id": id.into_inner(), "disabled": true })))
}
