//! The public certificate registry page (product rules §11): `/registry?q=…`, no login. A search box (a name of at
//! least three characters, or a whole e-mail address) and the certificates found by `ca::registry::search` — the
//! function `GET /api/v1/registry` answers with — each with its status, its issuer and its downloads
//! (`/registry/{serial}.cer`, `-chain.pem`, `-chain.p7b`), and where the status comes from (CRL, OCSP).

use actix_web::{web, HttpResponse, ResponseError as _};
use minijinja::{context, Value};

use super::{Page, StaticFile, Template};
use crate::app::AppState;
use crate::ca::registry;
use crate::clock::Clock;
use crate::error::ApiError;

/// This area's templates.
pub const TEMPLATES: &[Template] = &[("registry/search.html", include_str!("templates/registry/search.html"))];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[(
    "registry.css",
    "text/css; charset=utf-8",
    include_bytes!("static/registry.css"),
)];

/// The certificate statuses the page names by a computed key (`registry.status.*`; checked by the unit test below).
#[cfg(test)]
const STATUSES: &[&str] = &["valid", "expired", "revoked", "suspended", "not_yet_valid"];

/// Registers this area's page.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/registry").route(web::get().to(search)));
}

#[derive(serde::Deserialize)]
struct Query {
    q: Option<String>,
}

/// `/registry[?q=…]`: the search box; with a text, the certificates found (or why the text was refused).
async fn search(page: Page, state: web::Data<AppState>, q: web::Query<Query>) -> HttpResponse {
    let text = q.q.clone().unwrap_or_default();
    let sources = registry::status_sources(&state.ca);
    if text.trim().is_empty() {
        return page.render(
            "registry/search.html",
            context! { q => "", searched => false, sources => Value::from_serialize(&sources) },
        );
    }
    match registry::search(&state.db, &state.ca, state.clock.now(), &text).await {
        Ok(found) => page.render(
            "registry/search.html",
            context! {
                q => text,
                searched => true,
                found => Value::from_serialize(&found),
                sources => Value::from_serialize(&sources),
            },
        ),
        Err(registry::RegistryError::Invalid(why)) => page.render(
            "registry/search.html",
            context! {
                q => text,
                searched => false,
                error => why.render(page.lang),
                sources => Value::from_serialize(&sources),
            },
        ),
        Err(e) => page.error(ApiError::from(e)).error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::i18n::{has, Lang};
    use super::*;

    #[test]
    fn every_status_and_reason_has_a_text() {
        for key in STATUSES.iter().map(|s| format!("registry.status.{s}")).chain(
            crate::ca::revocation::REASONS
                .iter()
                .map(|r| format!("registry.reason.{r}")),
        ) {
            for lang in [Lang::Ro, Lang::En] {
                assert!(has(lang, &key), "{key} ({})", lang.code());
            }
        }
    }
}
