//! The contact page (`/contact`, product rules §14; every e-mail's footer links here): a logged-in user writes
//! about a data change, a lost e-mail, a complaint or anything else, optionally about one of their own orders
//! (chosen by its registration number), and sees their earlier messages with their number, state and answer. The
//! form is sent by `app.js` to `POST /api/v1/me/contact`; the list is `accounts::contact::mine`, as
//! `GET /api/v1/me/contact`. The operator answers from the console (`operator/console.html`, section `#contact`).
//!
//! Without a login (a lost phone, a locked account, a data-protection request) the page asks for a name and an
//! e-mail address (`POST /api/v1/contact`), then for the code e-mailed (`?confirm=<token>`, sent to
//! `POST /api/v1/contact/{token}/confirm`), then says the message's number (`?sent=<number>`).

use actix_web::{web, HttpResponse};
use minijinja::{context, Value};

use super::{Page, PageError, StaticFile, Template};
use crate::accounts::contact;
use crate::app::AppState;

/// This area's templates.
pub const TEMPLATES: &[Template] = &[
    ("contact/page.html", include_str!("templates/contact/page.html")),
    (
        "contact/anonymous.html",
        include_str!("templates/contact/anonymous.html"),
    ),
];

/// This area's static files.
pub const STATIC: &[StaticFile] = &[(
    "contact.css",
    "text/css; charset=utf-8",
    include_bytes!("static/contact.css"),
)];

/// Registers this area's pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/contact").route(web::get().to(contact_page)));
}

#[derive(serde::Deserialize)]
struct ContactQuery {
    /// An order to preselect (its id), e.g. from an order's page.
    order: Option<String>,
    /// The number of the message just sent (the form comes back here with it).
    sent: Option<i64>,
    /// Without a login: the token of the message waiting for its e-mailed code.
    confirm: Option<String>,
}

/// `/contact`: the form and the user's messages.
async fn contact_page(
    page: Page,
    state: web::Data<AppState>,
    q: web::Query<ContactQuery>,
) -> Result<HttpResponse, PageError> {
    if page.user.is_none() {
        let confirm = q
            .confirm
            .as_deref()
            .filter(|t| !t.is_empty() && t.len() <= 100 && t.chars().all(|c| c.is_ascii_hexdigit()));
        return Ok(page.render(
            "contact/anonymous.html",
            context! {
                topics => contact::TOPICS,
                sent => q.sent,
                confirm => confirm,
                min_chars => contact::MESSAGE_MIN_CHARS,
                max_chars => contact::MESSAGE_MAX_CHARS,
                name_max => contact::NAME_MAX_CHARS,
                code_minutes => state.settings.contact.code_minutes,
                lang => page.lang.code(),
            },
        ));
    }
    let user = page.user()?;
    let orders = page.ok(contact::orders_of(&state.accounts(), &user.user).await)?;
    let messages = page.ok(contact::mine(&state.accounts(), &user.user).await)?;
    Ok(page.render(
        "contact/page.html",
        context! {
            topics => contact::TOPICS,
            orders => Value::from_serialize(&orders.orders),
            messages => Value::from_serialize(&messages.messages),
            selected_order => q.order.clone().unwrap_or_default(),
            sent => q.sent,
            min_chars => contact::MESSAGE_MIN_CHARS,
            max_chars => contact::MESSAGE_MAX_CHARS,
            per_hour => contact::MESSAGES_PER_WINDOW,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::i18n::{self, Lang};
    use super::*;

    #[test]
    fn every_topic_and_state_has_a_text_in_both_languages() {
        let keys = contact::TOPICS
            .iter()
            .map(|t| format!("contact.topic.{t}"))
            .chain(["open", "answered"].iter().map(|s| format!("contact.state.{s}")));
        for key in keys {
            for lang in [Lang::Ro, Lang::En] {
                assert!(i18n::has(lang, &key), "{key} ({})", lang.code());
            }
        }
    }
}
