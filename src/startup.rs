//! Builds the application: provisioning (database, token, CA) and the HTTP server on a bound listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use actix_web::ResponseError;
use actix_web::{web, App, HttpResponse, HttpServer};
use futures_util::{FutureExt, StreamExt};
use tracing_actix_web::RequestId;

use crate::admission::{Budget, Reservation};
use crate::app::AppState;
use crate::auth::password::Hasher;
use crate::ca::{self, Ca, CaError};
use crate::clock::SystemClock;
use crate::config::{ConfigError, Settings};
use crate::db::{Db, DbError};
use crate::error::{json_error_handler, json_errors, ApiError};
use crate::hsm::{Hsm, HsmError};
use crate::{audit, metrics};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Tsa(#[from] crate::tsa::TsaError),
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
    #[error("{0}")]
    Io(String),
}

/// The PostgreSQL advisory lock key of provisioning ("PARAFA" in ASCII).
const PROVISIONING_LOCK: i64 = 0x5041_5241_4641;

/// Opens the database and the token and provisions the CA, creating on first start whatever is missing. A file
/// lock under the data directory keeps two processes started at once from provisioning twice. `bound` is the
/// address the server listens on, if it does (the default base of the URLs in certificates).
///
/// Provisioning is serialised by a file lock in the data directory (processes on one machine, or sharing the
/// directory) and, on PostgreSQL, by an advisory lock (instances anywhere that share the database). A crash while
/// holding either releases it.
pub async fn provision(settings: Settings, bound: Option<std::net::SocketAddr>) -> Result<AppState, StartupError> {
    settings.check_hsm_module()?;
    crate::legal::check_settings(&settings)?;
    let io = |what: &str, e: std::io::Error| StartupError::Io(format!("{what}: {e}"));
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| io("cannot create the data directory", e))?;
    let lock_path = settings.data_dir.join("provision.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io("cannot open the provisioning lock", e))?;
    lock.lock().map_err(|e| io("cannot take the provisioning lock", e))?;

    let clock = Arc::new(SystemClock::from_env());
    let db = Db::connect(&settings.database_url(), settings.database_max_connections).await?;
    // Instances on other machines share the database but not this directory: on PostgreSQL a session advisory
    // lock makes them provision one after the other too (the second finds the CA and the TSA made).
    let mut pg_lock = None;
    if db.backend() == crate::db::Backend::Postgres {
        let mut conn = db.writer().acquire().await.map_err(crate::db::DbError::from)?;
        crate::db::advisory_lock(&mut conn, PROVISIONING_LOCK).await?;
        pg_lock = Some(conn);
    }
    let s = settings.clone();
    let hsm = tokio::task::spawn_blocking(move || Hsm::open(&s))
        .await
        .map_err(|e| StartupError::Io(format!("HSM task failed: {e}")))??;
    let hsm = Arc::new(hsm);
    let default_base = match bound {
        Some(addr) => format!("http://{addr}"),
        None => settings.public_url(),
    };
    let ca = Ca::provision(&db, &hsm, &settings, clock.as_ref(), &default_base).await?;
    // Without a configured public URL, the server answers at the address it bound (port 0 picks one): that is the
    // OAuth issuer and what `info` announces as `oauth2`.
    let mut settings = settings;
    if settings.public_url.is_none() && bound.is_some() {
        settings.public_url = Some(default_base.clone());
    }
    let tsa = crate::tsa::Tsa::provision(&db, &hsm, &settings, clock.as_ref(), &ca).await?;
    let trust = crate::trust::TrustList::provision(&db, &hsm, &settings, clock.as_ref(), &ca, &tsa).await?;
    if let Some(mut conn) = pg_lock {
        crate::db::advisory_unlock(&mut conn, PROVISIONING_LOCK).await?;
    }
    drop(lock);
    let fx = Arc::new(crate::billing::fx::Fx::new(
        settings.billing.fx_feed_url.clone(),
        settings.billing.fx_feed_file.clone(),
        crate::billing::fx::parse_rate(&settings.billing.fallback_eur_ron).unwrap_or(50_900),
    ));
    let admission = Arc::new(Budget::from_settings(&settings.admission));
    let (workers, budget, wait) = (
        settings.admission.password_workers(),
        admission.clone(),
        Duration::from_millis(settings.admission.wait_ms),
    );
    let hasher = tokio::task::spawn_blocking(move || Hasher::new(workers, budget, wait))
        .await
        .map_err(|e| StartupError::Io(format!("password pool task failed: {e}")))?
        .map_err(|e| StartupError::Io(format!("cannot start the password pool: {e}")))?;
    Ok(AppState {
        services: crate::lifecycle::Services {
            ledger: crate::db::signing::Ledger::spawn(db.clone(), crate::metrics::count_ledger_requests),
            recent: Arc::new(crate::signing::RecentReads::new(Duration::from_millis(
                settings.csc.read_cache_ms,
            ))),
            admission,
            hasher: Arc::new(hasher),
            settings: Arc::new(settings),
            fx,
            legal_pdfs: Arc::new(crate::legal::PdfCache::default()),
            db,
            hsm,
            ca: Arc::new(ca),
            tsa: Arc::new(tsa),
            trust: Arc::new(trust),
            clock,
        },
    })
}

/// Starts the HTTP server on `listener` and the background tasks. The returned server runs until stopped.
pub fn run(state: AppState, listener: TcpListener) -> Result<Server, StartupError> {
    audit::spawn_sealer(
        state.db.clone(),
        Duration::from_millis(state.settings.audit.seal_interval_ms.max(50)),
    );
    let clock = state.clock.clone();
    crate::db::cleanup::spawn(
        state.db.clone(),
        move || crate::clock::Clock::now(clock.as_ref()),
        Duration::from_secs(15 * 60),
    );
    let notify = &state.settings.notify;
    let channel = crate::notify::Router::from_settings(notify, &state.settings.data_dir)
        .map_err(|e| StartupError::Io(format!("cannot set up the notification channels: {e}")))?;
    crate::notify::spawn_dispatcher(
        state.db.clone(),
        state.clock.clone(),
        Arc::new(channel),
        Duration::from_millis(notify.dispatch_interval_ms),
    );
    let workers = match state.settings.workers {
        0 => crate::config::cores(),
        n => n,
    };
    let json_limit = state.settings.max_json_body_bytes;
    let data = web::Data::new(state);
    let legal_pdfs = web::Data::from(data.services.legal_pdfs.clone());
    crate::lifecycle::scheduler::spawn(data.services.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(legal_pdfs.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(json_limit)
                    .error_handler(json_error_handler),
            )
            .app_data(web::PayloadConfig::new(json_limit))
            .wrap(actix_web::middleware::from_fn(admit_body))
            .wrap(actix_web::middleware::ErrorHandlers::new().default_handler(json_errors))
            .wrap(actix_web::middleware::ErrorHandlers::new().default_handler(crate::web::error_pages))
            .wrap_fn(|req, srv| {
                let start = Instant::now();
                let method = req.method().to_string();
                srv.call(req).map(move |mut res| {
                    if let Ok(res) = res.as_mut() {
                        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                        metrics::observe_http(&method, &route, res.status().as_u16(), start.elapsed());
                        // The id in the logs, echoed so a client can quote it to support.
                        let id = res.request().extensions().get::<RequestId>().map(|id| id.to_string());
                        if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                            res.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
                        }
                    }
                    res
                })
            })
            .wrap_fn(|req, srv| {
                use futures_util::future::{ready, Either};
                let call = match crate::web::security::check(&req) {
                    Ok(()) => Either::Left(srv.call(req).map(|r| r.map(|r| r.map_into_boxed_body()))),
                    Err(refused) => Either::Right(ready(Ok(req.error_response(refused)))),
                };
                call.map(|res| {
                    res.map(|mut r| {
                        crate::web::security::add_headers(r.headers_mut());
                        r
                    })
                })
            })
            .wrap_fn(crate::web::api_lang::middleware)
            .wrap(tracing_actix_web::TracingLogger::<crate::access_log::AccessLog>::new())
            .service(web::resource("/health").route(web::get().to(health)))
            .service(web::resource("/ready").route(web::get().to(ready)))
            .service(web::resource("/metrics").route(web::get().to(metrics_text)))
            .configure(ca::routes::configure)
            .configure(crate::tsa::routes::configure)
            .configure(crate::trust::routes::configure)
            .configure(crate::csc::configure)
            .configure(crate::oauth::routes::configure)
            .service(
                web::scope("/api/v1")
                    .configure(crate::billing::routes::configure)
                    .configure(crate::lifecycle::routes::configure)
                    .configure(crate::documents::routes::configure)
                    .configure(crate::oauth::routes::configure_api)
                    .configure(crate::accounts::routes::configure),
            )
            .configure(crate::web::configure)
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .listen(listener)
    .map_err(|e| StartupError::Io(format!("cannot listen: {e}")))?
    .run();
    Ok(server)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the database and the token both answer.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let db = state.db.ping().await.map_err(|e| e.to_string());
    let hsm = state.hsm.clone();
    let hsm = match tokio::task::spawn_blocking(move || hsm.ping()).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let status = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.clone(),
    };
    let code = if db.is_ok() && hsm.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(code).json(serde_json::json!({
        "status": if code == StatusCode::OK { "ready" } else { "unavailable" },
        "database": status(&db),
        "hsm": status(&hsm),
    }))
}

/// A response body that holds the memory reservation of its request until it has been sent (or dropped).
struct Reserved<B> {
    body: B,
    _reservation: Reservation,
}

impl<B: MessageBody + Unpin> MessageBody for Reserved<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<web::Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The most a route reads of a body: what its extractor or form reader accepts.
fn body_limit(req: &ServiceRequest, s: &crate::config::Settings) -> u64 {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/"));
    let limit = if req.path() == "/api/v1/verify" {
        s.documents.max_verify_body_bytes()
    } else if multipart {
        s.documents.max_job_bytes + crate::config::JSON_HEADROOM
    } else if req.path().ends_with("/signatures/signDoc") {
        s.documents.max_sign_doc_body_bytes()
    } else {
        s.max_json_body_bytes
    };
    limit as u64
}

/// Admission control for request bodies: before a body is read, reserve `body_factor` × its `Content-Length`
/// (at most the route's limit; the limit itself when the length is not announced) from the memory budget, and
/// hold it until the response is sent. Past the budget's wait: 503 with `Retry-After`, the body left unread.
async fn admit_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody<Error = impl Into<actix_web::Error>> + 'static>,
) -> Result<ServiceResponse<Reserved<BoxBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state else {
        return next.call(req).await.map(|r| {
            r.map_body(|_, b| Reserved {
                body: b.boxed(),
                _reservation: Reservation::none(),
            })
        });
    };
    let headers = req.headers();
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    let limit = body_limit(&req, &state.settings);
    let length = match announced {
        Some(n) => n.min(limit),
        None if chunked => limit,
        None => 0,
    };
    // A signDoc body is read as it streams, its documents decoded on the way: what it holds is at most the body's
    // length (the documents are three quarters of their base64), and the signing reserves its own work after.
    let factor = if req.path().ends_with("/signatures/signDoc") {
        1
    } else {
        state.settings.admission.body_factor
    };
    let cost = length.saturating_mul(u64::from(factor));
    let reservation = match state.admission.reserve(cost, crate::admission::Work::RequestBody).await {
        Ok(r) => r,
        Err(refused) => {
            // Read and discard the body (no memory kept) so that the client, still sending, reads the 503 instead
            // of a connection reset.
            let mut payload = req.take_payload();
            let mut drained = 0u64;
            while let Some(Ok(chunk)) = payload.next().await {
                drained += chunk.len() as u64;
                if drained > limit {
                    break;
                }
            }
            let res = ApiError::from(refused).error_response();
            return Ok(req.into_response(res).map_body(|_, b| Reserved {
                body: b,
                _reservation: Reservation::none(),
            }));
        }
    };
    let res = next.call(req).await?;
    Ok(res.map_body(|_, body| Reserved {
        body: body.boxed(),
        _reservation: reservation,
    }))
}

async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    metrics::set_admission_available(state.admission.available_bytes());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render())
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(crate::text!("error.http.no_such_route")))
}
