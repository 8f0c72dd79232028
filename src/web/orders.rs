//! Pages of the orders area (product rules §1, §2, §5, §11): packages and prices, the order form, the sandbox
//! payment page, order history and detail with each order's actions, the sandbox identification page,
//! certificate issuance, the certificates page with its downloads, and the rekey wizard.
//!
//! Every value shown comes from the domain functions the JSON API calls (`billing::orders`, `lifecycle::*`);
//! every action is a form `app.js` sends to that API.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use minijinja::{context, Value};
use serde_json::{json, Value as Json};

use super::{Page, PageError, StaticFile, Template};
use crate::app::AppState;
use crate::billing::orders::OrderView;
use crate::billing::{self, format_minor, OrderKind, OrderState};
use crate::clock::Clock;
use crate::db::credentials::StatusAt;
use crate::error::ApiError;
use crate::lifecycle::{identity, issuance, rekey};

/// This area's templates.
pub const TEMPLATES: &[Template] = &[
    ("orders/actions.html", include_str!("templates/orders/actions.html")),
    ("orders/packages.html", include_str!("templates/orders/packages.html")),
    ("orders/new.html", include_str!("templates/orders/new.html")),
    ("orders/pay.html", include_str!("templates/orders/pay.html")),
    ("orders/list.html", include_str!("templates/orders/list.html")),
    ("orders/detail.html", include_str!("templates/orders/detail.html")),
    ("orders/identity.html", include_str!("templates/orders/identity.html")),
    ("orders/issue.html", include_str!("templates/orders/issue.html")),
    (
        "orders/certificates.html",
        include_str!("templates/orders/certificates.html"),
    ),
    ("orders/rekey.html", include_str!("templates/orders/rekey.html")),
];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[
    (
        "orders.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/orders.js"),
    ),
    (
        "orders.css",
        "text/css; charset=utf-8",
        include_bytes!("static/orders.css"),
    ),
];

/// Registers this area's pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/packages").route(web::get().to(packages)))
        .service(web::resource("/orders").route(web::get().to(list)))
        .service(web::resource("/orders/new").route(web::get().to(new_order)))
        .service(web::resource("/orders/{id}").route(web::get().to(detail)))
        .service(web::resource("/orders/{id}/pay").route(web::get().to(pay)))
        .service(web::resource("/orders/{id}/certificate").route(web::get().to(issue)))
        .service(web::resource("/identity/sandbox/{token}").route(web::get().to(identity_sandbox)))
        .service(web::resource("/certificates").route(web::get().to(certificates)))
        .service(web::resource("/certificates/issuing-ca.pem").route(web::get().to(issuing_ca_pem)))
        .service(web::resource("/certificates/issuing-ca.cer").route(web::get().to(issuing_ca_cer)))
        .service(web::resource("/certificates/issuing-ca.crt").route(web::get().to(issuing_ca_crt)))
        .service(web::resource("/certificates/{id}/certificate.pem").route(web::get().to(certificate_pem)))
        .service(web::resource("/certificates/{id}/certificate.cer").route(web::get().to(certificate_der)))
        .service(web::resource("/rekey").route(web::get().to(rekey_page)));
}

/// The certificate statuses the pages name by a computed key (`orders.cert.status.*`; checked by the unit test
/// below, with the order kinds, `orders.kind.*`, the order states, `orders.state.*`, and the rekey requests' states,
/// `orders.rekey.state.*`).
#[cfg(test)]
const CERT_STATUSES: &[&str] = &["valid", "expired", "not_yet_valid", "revoked", "superseded"];
/// The key types issuance offers (`issuance::IssueRequest::key`).
const KEYS: &[&str] = &["rsa2048", "rsa3072", "p256", "p384"];

/// `4641` → `"46.41"`, from a JSON number.
fn minor(v: &Json) -> String {
    format_minor(v.as_i64().unwrap_or_default())
}

/// RON per EUR × 10 000 as `5.0377`.
fn rate(v: &Json) -> String {
    let r = v.as_i64().unwrap_or_default();
    format!("{}.{:04}", r / 10_000, r % 10_000)
}

/// A price (`billing::Price` as JSON) with its amounts formatted for display.
fn money(price: &Json) -> Json {
    let bp = price["vat_basis_points"].as_i64().unwrap_or_default();
    json!({
        "net": minor(&price["net_eur_cents"]),
        "discount": minor(&price["discount_eur_cents"]),
        "has_discount": price["discount_eur_cents"].as_i64().unwrap_or_default() > 0,
        "vat_percent": if bp % 100 == 0 { format!("{}", bp / 100) } else { format!("{}.{:02}", bp / 100, bp % 100) },
        "vat": minor(&price["vat_eur_cents"]),
        "gross": minor(&price["gross_eur_cents"]),
        "ron": minor(&price["total_ron_bani"]),
        "rate": rate(&price["ron_per_eur_1e4"]),
        "rate_date": price["rate_date"],
    })
}

/// An order as the API gives it, plus `money` and its `package` settings.
fn with_money(state: &AppState, view: OrderView) -> Json {
    let package = u8::try_from(view.package).ok();
    let mut order = json!(view);
    order["money"] = money(&order["price"]);
    if let Some(p) = package.and_then(|p| state.settings.package(p)) {
        order["package_name"] = json!(p.name);
        order["package_name_ro"] = json!(p.name_in("ro"));
        order["validity_years"] = json!(p.validity_years);
        order["transactions"] = json!(p.transactions);
    }
    order
}

/// Today's packages with their prices.
async fn package_offers(state: &AppState) -> Json {
    let mut offers = json!(billing::orders::packages(&state.billing()).await);
    if let Some(list) = offers["packages"].as_array_mut() {
        for p in list {
            p["money"] = money(&p["price"]);
        }
    }
    offers
}

/// `/packages`: public.
async fn packages(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let offers = package_offers(&state).await;
    Ok(page.render(
        "orders/packages.html",
        context! { offers => Value::from_serialize(&offers) },
    ))
}

#[derive(serde::Deserialize)]
struct NewOrder {
    package: Option<u8>,
    kind: Option<String>,
}

/// `/orders/new?package=…&kind=new|rekey|reissue`: the order form.
async fn new_order(page: Page, state: web::Data<AppState>, q: web::Query<NewOrder>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let offers = package_offers(&state).await;
    let kind = q.kind.as_deref().and_then(OrderKind::parse).unwrap_or(OrderKind::New);
    let package = q
        .package
        .filter(|p| state.settings.package(*p).is_some())
        .or_else(|| state.settings.packages.first().map(|p| p.id))
        .unwrap_or(1);
    Ok(page.render(
        "orders/new.html",
        context! {
            offers => Value::from_serialize(&offers),
            kind => kind,
            kinds => OrderKind::ALL,
            package => package,
            name => format!("{} {}", user.user.given_name, user.user.surname),
            terms_version => crate::legal::current_version(crate::legal::DocName::Terms),
            conditions_version => crate::legal::current_version(crate::legal::DocName::OrderConditions),
        },
    ))
}

/// `/orders/{id}/pay` (development mode only): the sandbox gateway's page (what `GET /api/v1/sandbox-pay/{id}` shows), with its two buttons.
async fn pay(page: Page, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    page.ok(billing::routes::sandbox_only(&state))?;
    let user = page.user()?;
    page.ok(billing::orders::view(&state.billing(), &user.user, &id).await)?;
    page.ok(billing::orders::reprice(&state.billing(), &id).await)?;
    let order = page.ok(billing::orders::view(&state.billing(), &user.user, &id).await)?;
    Ok(page.render(
        "orders/pay.html",
        context! { order => Value::from_serialize(with_money(&state, order)) },
    ))
}

/// `/orders`: the history.
async fn list(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let all = page.ok(billing::orders::list(&state.billing(), &user.user).await)?;
    let orders: Vec<Json> = all.orders.into_iter().map(|o| with_money(&state, o)).collect();
    Ok(page.render(
        "orders/list.html",
        context! { orders => Value::from_serialize(&orders) },
    ))
}

/// `/orders/{id}`: one order with its price, invoice data, history and actions.
async fn detail(page: Page, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let order = page.ok(billing::orders::view(&state.billing(), &user.user, &id).await)?;
    Ok(page.render(
        "orders/detail.html",
        context! { order => Value::from_serialize(with_money(&state, order)) },
    ))
}

/// `/identity/sandbox/{token}` (development mode only): the built-in identification provider's page (the link is the credential: no login).
async fn identity_sandbox(
    page: Page,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let session = page.ok(identity::sandbox_view(&state, &token).await)?;
    Ok(page.render(
        "orders/identity.html",
        context! {
            session => Value::from_serialize(&session),
            token => token.into_inner(),
        },
    ))
}

/// `/orders/{id}/certificate`: the issuance terms (to be read to the end), the key, the phone when it changed,
/// the TOTP code.
async fn issue(page: Page, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let order = page.ok(billing::orders::view(&state.billing(), &user.user, &id).await)?;
    let ready = order.state == OrderState::Accepted && order.kind != OrderKind::Rekey && !order.on_hold;
    let phone = if ready {
        page.ok(issuance::phone_to_confirm(&state, &user.user).await)?
    } else {
        None
    };
    let holder = format!("{} {}", user.user.given_name, user.user.surname);
    let terms = issuance::terms_document(
        &state.settings.lifecycle.terms_version,
        &holder,
        &order.registration_number,
        state.clock.now(),
    );
    Ok(page.render(
        "orders/issue.html",
        context! {
            order => Value::from_serialize(&order),
            ready => ready,
            terms => terms,
            terms_version => state.settings.lifecycle.terms_version.clone(),
            keys => KEYS,
            phone_ending => phone,
        },
    ))
}

/// `/certificates`: each certificate with its status, validity, transactions left, banner and downloads.
async fn certificates(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let list = page.ok(issuance::list_in(&state, &user.user, page.lang.code()).await)?;
    let packages = &state.settings.packages;
    Ok(page.render(
        "orders/certificates.html",
        context! {
            list => Value::from_serialize(&list),
            first_package => packages.first().map(|p| p.id).unwrap_or(1),
        },
    ))
}

/// The PEM of one of the user's certificates.
async fn user_certificate_pem(page: &Page, state: &AppState, id: &str) -> Result<String, PageError> {
    let user = page.user()?;
    let list = page.ok(issuance::list_in(state, &user.user, page.lang.code()).await)?;
    list.certificates
        .into_iter()
        .find(|c| c.credential_id == id)
        .map(|c| c.certificate_pem)
        .ok_or_else(|| page.error(ApiError::not_found(crate::text!("error.rekey.no_such_certificate"))))
}

fn download(content_type: &str, filename: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type.to_owned())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// `/certificates/{id}/certificate.pem`.
async fn certificate_pem(
    page: Page,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let pem = user_certificate_pem(&page, &state, &id).await?;
    Ok(download("application/x-pem-file", "certificate.pem", pem.into_bytes()))
}

/// `/certificates/{id}/certificate.cer`: the same certificate as DER (product rules §11).
async fn certificate_der(
    page: Page,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let pem = user_certificate_pem(&page, &state, &id).await?;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = crate::encoding::decode_b64(&b64)
        .ok_or_else(|| page.error(ApiError::not_found(crate::text!("error.rekey.no_such_certificate"))))?;
    Ok(download("application/pkix-cert", "certificate.cer", der))
}

/// `/certificates/issuing-ca.pem`: the issuing CA's certificate.
async fn issuing_ca_pem(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    page.user()?;
    Ok(download(
        "application/x-pem-file",
        "issuing-ca.pem",
        crate::ca::pem(&state.ca.issuing.der).into_bytes(),
    ))
}

/// `/certificates/issuing-ca.cer` and `.crt`: the issuing CA's certificate as DER (the bytes of `/pki/issuing.crt`),
/// under the names portals ask for.
fn issuing_ca_der(page: &Page, state: &AppState, name: &'static str) -> Result<HttpResponse, PageError> {
    page.user()?;
    Ok(download("application/pkix-cert", name, state.ca.issuing.der.clone()))
}

/// `/certificates/issuing-ca.cer`.
async fn issuing_ca_cer(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    issuing_ca_der(&page, &state, "issuing-ca.cer")
}

/// `/certificates/issuing-ca.crt`.
async fn issuing_ca_crt(page: Page, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    issuing_ca_der(&page, &state, "issuing-ca.crt")
}

#[derive(serde::Deserialize)]
struct RekeyQuery {
    order: Option<String>,
}

/// `/rekey[?order=…]`: the rekey wizard (product rules §5). Without a paid rekey order: the privacy notice, then
/// the order. With one: the privacy notice acknowledged to the API, the document data and copy, the terms signed
/// with a TOTP code, then the request's state.
async fn rekey_page(
    page: Page,
    state: web::Data<AppState>,
    q: web::Query<RekeyQuery>,
) -> Result<HttpResponse, PageError> {
    let user = page.user()?;
    let certs = page.ok(issuance::list_in(&state, &user.user, page.lang.code()).await)?;
    let current = certs.certificates.iter().find(|c| c.status == StatusAt::Valid);
    let orders = page.ok(billing::orders::list(&state.billing(), &user.user).await)?;
    // The rekey order: the one asked for, else the newest one still in progress.
    let order = orders
        .orders
        .into_iter()
        .filter(|o| o.kind == OrderKind::Rekey)
        .find(|o| match q.order.as_deref() {
            Some(id) => o.id == id,
            None => [
                OrderState::AwaitingPayment,
                OrderState::Paid,
                OrderState::UnderReview,
                OrderState::Rejected,
                OrderState::Accepted,
            ]
            .contains(&o.state),
        });
    if q.order.is_some() && order.is_none() {
        return Err(page.error(ApiError::not_found(crate::text!("error.rekey.no_such_rekey_order"))));
    }
    // The request of that order, found through the certificate it renews.
    let mut request = None;
    if let Some(o) = &order {
        let request_id = certs
            .certificates
            .iter()
            .find(|c| o.credential_id.as_deref() == Some(c.credential_id.as_str()))
            .and_then(|c| c.rekey.request_id.as_deref());
        if let Some(rid) = request_id {
            let r = page.ok(rekey::view(&state, &user.user, rid).await)?;
            if o.id == r.order_id {
                request = Some(r);
            }
        }
    }
    let step = rekey::RekeyStep::of(order.as_ref().map(|o| o.state), request.as_ref());
    let document = page.ok(rekey::document_on_file(&state, &user.user.id).await)?;
    let on_file = document.is_some();
    let document = document.map_or_else(|| json!({}), |d| json!(d));
    let holder = format!("{} {}", user.user.given_name, user.user.surname);
    let terms = issuance::terms_document(
        &state.settings.lifecycle.terms_version,
        &holder,
        order
            .as_ref()
            .map(|o| o.registration_number.as_str())
            .unwrap_or_default(),
        state.clock.now(),
    );
    let photo_max = state.settings.lifecycle.photo_max_bytes;
    Ok(page.render(
        "orders/rekey.html",
        context! {
            step => Value::from_serialize(step),
            current => Value::from_serialize(current),
            order => Value::from_serialize(&order),
            request => Value::from_serialize(&request),
            document => Value::from_serialize(&document),
            on_file => on_file,
            documents => state.settings.lifecycle.identity_documents.clone(),
            email => user.user.email.clone(),
            phone => user.user.phone.clone(),
            terms => terms,
            photo_max => photo_max,
            photo_max_mb => photo_max / (1024 * 1024),
            first_package => state.settings.packages.first().map(|p| p.id).unwrap_or(1),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::{has, Lang};

    /// The texts the templates name by a computed key (`t(k)` with `k = "orders.state." ~ …`).
    #[test]
    fn every_computed_text_exists_in_both_languages() {
        let keys = crate::billing::OrderState::ALL
            .iter()
            .map(|s| s.as_str())
            .chain(["on_hold"])
            .map(|s| format!("orders.state.{s}"))
            .chain(CERT_STATUSES.iter().map(|s| format!("orders.cert.status.{s}")))
            .chain(
                crate::db::rekey::RekeyState::ALL
                    .iter()
                    .map(|s| format!("orders.rekey.state.{s}")),
            )
            .chain(OrderKind::ALL.iter().map(|s| format!("orders.kind.{s}")))
            .chain(KEYS.iter().map(|s| format!("orders.key.{s}")))
            .chain(
                crate::config::Settings::default()
                    .lifecycle
                    .identity_documents
                    .into_iter()
                    .map(|d| format!("orders.doc.type.{d}")),
            );
        let mut missing = Vec::new();
        for key in keys {
            for lang in [Lang::Ro, Lang::En] {
                if !has(lang, &key) {
                    missing.push(format!("{key} ({})", lang.code()));
                }
            }
        }
        assert!(missing.is_empty(), "missing texts: {missing:?}");
    }

    #[test]
    fn amounts_are_shown_with_two_decimals_and_the_rate_with_four() {
        let m = money(
            &json!({"net_eur_cents": 3900, "discount_eur_cents": 0, "vat_basis_points": 1900,
            "vat_eur_cents": 741, "gross_eur_cents": 4641, "ron_per_eur_1e4": 50377, "rate_date": "2025-03-14",
            "total_ron_bani": 23380}),
        );
        assert_eq!(
            (
                m["gross"].as_str(),
                m["ron"].as_str(),
                m["rate"].as_str(),
                m["vat_percent"].as_str()
            ),
            (Some("46.41"), Some("233.80"), Some("5.0377"), Some("19"))
        );
    }
}
