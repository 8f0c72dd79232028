//! The operator console (`/operator`, operators only): the identification queue (flagged duplicates first) with
//! accept, return for completion or reject (with a reason, "fake data"); rekey requests; revocation with a reason
//! code; institutional orders (§13: placed by an operator, identification recorded by an operator); users with
//! their bans; orders; the audit chain's verification; the scheduler. Read through the same
//! functions as `/api/v1/operator/*`; every action is a form sent by app.js to that API.

use actix_web::{web, HttpResponse};
use minijinja::{context, Value};

use super::i18n::{self, Lang};
use super::{Page, PageError, StaticFile, Template};
use crate::app::AppState;

/// This area's templates.
pub const TEMPLATES: &[Template] = &[("operator/console.html", include_str!("templates/operator/console.html"))];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[
    (
        "operator.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/operator.js"),
    ),
    (
        "operator.css",
        "text/css; charset=utf-8",
        include_bytes!("static/operator.css"),
    ),
];

/// Registers this area's pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/operator").route(web::get().to(console)));
}

/// `/operator`: the console.
async fn console(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    page.operator()?;
    let identity = page.ok(crate::lifecycle::identity::queue(&state, None, false).await)?;
    let rekey = page.ok(crate::lifecycle::rekey::queue(&state, None).await)?;
    let users = page.ok(crate::lifecycle::operator_users(&state).await)?;
    let orders = page.ok(crate::lifecycle::operator_orders(&state).await)?;
    let credentials = page.ok(crate::lifecycle::operator_credentials(&state).await)?;
    let contact = page.ok(crate::accounts::contact::open_messages(&state.accounts()).await)?;
    let institutional = page.ok(crate::lifecycle::institutional::list(&state).await)?;
    let oauth_clients = page.ok(crate::oauth::clients::list(state.oauth()).await)?;
    let holds = page.ok(crate::lifecycle::retention::holds(&state).await)?;
    Ok(page.render(
        "operator/console.html",
        context! {
            sessions => Value::from_serialize(&identity.sessions),
            requests => Value::from_serialize(&rekey.requests),
            users => Value::from_serialize(&users.users),
            orders => Value::from_serialize(&orders.orders),
            credentials => Value::from_serialize(&credentials.credentials),
            contact => Value::from_serialize(&contact.messages),
            reasons => Value::from_serialize(reasons(page.lang)),
            institutional => Value::from_serialize(&institutional.orders),
            oauth_clients => Value::from_serialize(&oauth_clients),
            holds => Value::from_serialize(&holds.holds),
            documents => Value::from_serialize(&state.settings.lifecycle.identity_documents),
            packages => Value::from_serialize(
                state.settings.packages.iter().map(|p| serde_json::json!({"id": p.id, "name": p.name})).collect::<Vec<_>>()
            ),
        },
    ))
}

/// A revocation reason the console offers: its code and its text.
#[derive(serde::Serialize)]
struct Reason {
    code: &'static str,
    label: String,
}

/// The revocation reasons the CA accepts, each with its text (`op.reason_<code>`).
fn reasons(lang: Lang) -> Vec<Reason> {
    crate::ca::revocation::REASONS
        .iter()
        .map(|code| Reason {
            code,
            label: i18n::text(lang, &format!("op.reason_{code}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_institutional_identification_method_has_a_text_in_both_languages() {
        for method in crate::lifecycle::institutional::METHODS {
            for lang in [Lang::Ro, Lang::En] {
                assert!(i18n::has(lang, &format!("op.inst_method_{method}")), "{method}");
            }
        }
    }

    #[test]
    fn every_revocation_reason_has_a_text_in_both_languages() {
        for code in crate::ca::revocation::REASONS {
            for lang in [Lang::Ro, Lang::En] {
                assert!(
                    i18n::has(lang, &format!("op.reason_{code}")),
                    "{code} ({})",
                    lang.code()
                );
            }
        }
    }
}
