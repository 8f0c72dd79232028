//! The order-accepted e-mail (product rules §12 #6): once the payment is confirmed, the holder gets the order's
//! number, the payment and the start of the service (and with it the loss of the right of withdrawal), with the
//! order's documents attached as PDFs: the order note, the order conditions and the remote-signature terms, in the
//! versions the holder accepted and in their language.
//!
//! The PDFs are laid out before the payment's transaction ([`prepare`]: a few hundred milliseconds that must not hold
//! the database's write lock) and queued with the e-mail inside it ([`queue`]), so the e-mail exists if and only if
//! the payment was recorded.

use crate::db::accounts::ConsentKind;
use crate::db::outbox::Attachment;
use crate::db::{self, DbError};
use crate::i18n::{self, dates, Lang};
use crate::legal::{self, Block, DocName};
use crate::notify::{self, Template};

use super::Services;

/// The e-mail of one order's payment, its documents laid out.
pub struct Prepared {
    message: notify::Message,
    files: Vec<Attachment>,
}

const PDF: &str = "application/pdf";

/// Lays out the documents of order `order_id`, paid at `paid_at` with payment reference `reference`. `None` when
/// the order or its holder is unknown (the payment's own checks then refuse it). A document that cannot be laid out
/// is left out of the e-mail and logged: the payment is not refused for it (the holder finds every document on the
/// order's page too).
pub async fn prepare(
    state: &Services,
    order_id: &str,
    paid_at: i64,
    reference: &str,
) -> Result<Option<Prepared>, DbError> {
    let Some(order) = db::orders::get(&state.db, order_id, None).await? else {
        return Ok(None);
    };
    let Some(user) = db::users::by_id(&state.db, &order.user_id).await? else {
        return Ok(None);
    };
    let lang = Lang::or_default(Some(&user.lang));
    // The versions the order's ticks accepted: the latest of each kind recorded up to the order's placement.
    let consents = db::privacy::consents(&state.db, &user.id).await?;
    let accepted = |kind: ConsentKind, doc: DocName| {
        consents
            .iter()
            .rfind(|c| c.kind == kind && c.granted && c.at <= order.created_at)
            .map(|c| c.version.clone())
            .unwrap_or_else(|| legal::current_version(doc).to_owned())
    };
    let terms = accepted(ConsentKind::Terms, DocName::Terms);
    let conditions = accepted(ConsentKind::OrderConditions, DocName::OrderConditions);

    let note = order_note(state, &order, &user, lang, paid_at, reference, &terms, &conditions);
    let number = order.registration_number.clone();
    let pdfs = state.legal_pdfs.clone();
    let files = tokio::task::spawn_blocking(move || {
        let mut files = Vec::new();
        let title = note.0.clone();
        match legal::pdf::render_blocks(&note.0, &note.1, &note.2) {
            Ok(bytes) => files.push(Attachment {
                filename: format!("{}-{number}.pdf", i18n::text(lang, "note.file")),
                content_type: PDF.into(),
                content: bytes,
            }),
            Err(e) => tracing::error!(order = %number, error = %e, "the order note could not be laid out"),
        }
        for (doc, version) in [(DocName::OrderConditions, &conditions), (DocName::Terms, &terms)] {
            match pdfs.pdf(doc, version, lang) {
                Some(Ok(bytes)) => files.push(Attachment {
                    filename: format!("{}-{version}-{}.pdf", doc.slug(), lang.code()),
                    content_type: PDF.into(),
                    content: bytes.to_vec(),
                }),
                Some(Err(e)) => tracing::error!(order = %number, error = %e, "a trust document could not be laid out"),
                None => tracing::error!(order = %number, doc = doc.slug(), version, "an accepted version is missing"),
            }
        }
        tracing::debug!(order = %number, note = %title, files = files.len(), "order documents laid out");
        files
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "laying out the order's documents failed");
        Vec::new()
    });

    let paid = i18n::amount(lang, order.price.total_ron_bani, "RON");
    let paid_on = dates::datetime_zoned(lang, paid_at);
    let link = format!("{}/orders/{}", state.ca.public_base(), order.id);
    let message = notify::email(
        &user.email,
        &user.lang,
        state.ca.public_base(),
        Template::OrderAccepted {
            order: &order.registration_number,
            paid: &paid,
            paid_on: &paid_on,
            link: &link,
        },
        "order_accepted",
    );
    Ok(Some(Prepared { message, files }))
}

/// Queues the prepared e-mail inside the payment's transaction.
pub async fn queue(conn: &mut sqlx::AnyConnection, state: &Services, p: &Prepared) -> Result<(), DbError> {
    notify::enqueue_with(conn, state.clock.as_ref(), &p.message, &p.files).await?;
    Ok(())
}

/// The order note's title, the line under it and its body, in the holder's language.
#[allow(clippy::too_many_arguments)]
fn order_note(
    state: &Services,
    order: &db::orders::Stored,
    user: &db::users::User,
    lang: Lang,
    paid_at: i64,
    reference: &str,
    terms: &str,
    conditions: &str,
) -> (String, String, Vec<Block>) {
    let t = |key: &str| i18n::text(lang, key);
    let line = |key: &str, value: String| Block::Paragraph(format!("{}: {value}", t(key)));
    let billing = &state.settings.billing;
    let p = &order.price;
    let package = state.settings.package(order.package_id as u8);
    let product = match package {
        Some(p) => i18n::render(
            lang,
            "note.product_line",
            &minijinja::context! {
                name => p.name_in(lang.code()),
                years => i18n::years(lang, i64::from(p.validity_years)),
                transactions => p.transactions
            },
        ),
        None => format!("{} {}", t("note.package"), order.package_id),
    };
    let invoice: serde_json::Value = serde_json::from_str(&order.invoice).unwrap_or_default();
    let field = |k: &str| invoice[k].as_str().unwrap_or_default().trim().to_owned();
    let address: Vec<String> = [
        format!("{} {}", field("street"), field("number")),
        [("bl.", "building"), ("sc.", "entrance"), ("ap.", "apartment")]
            .iter()
            .filter(|(_, k)| !matches!(field(k).as_str(), "" | "-"))
            .map(|(l, k)| format!("{l} {}", field(k)))
            .collect::<Vec<_>>()
            .join(", "),
        format!("{} {}, {}", field("postal_code"), field("locality"), field("county")),
        field("country"),
    ]
    .into_iter()
    .map(|s| s.trim().trim_matches(',').trim().to_owned())
    .filter(|s| !s.is_empty())
    .collect();
    let mut blocks = vec![
        Block::Heading(t("note.order")),
        line("note.number", order.registration_number.clone()),
        line("note.placed", dates::datetime_zoned(lang, order.created_at)),
        line(
            "note.holder",
            format!("{} {} <{}>", user.given_name, user.surname, user.email),
        ),
        line("note.product", product),
        Block::Heading(t("note.price")),
        line(
            "note.net",
            i18n::amount(lang, p.net_eur_cents - p.discount_eur_cents, "EUR"),
        ),
        line(
            "note.vat",
            format!(
                "{} ({})",
                i18n::amount(lang, p.vat_eur_cents, "EUR"),
                percent(lang, p.vat_basis_points)
            ),
        ),
        line("note.gross", i18n::amount(lang, p.gross_eur_cents, "EUR")),
        line("note.total", i18n::amount(lang, p.total_ron_bani, "RON")),
        Block::Heading(t("note.payment")),
        line("note.paid_on", dates::datetime_zoned(lang, paid_at)),
        line("note.reference", reference.to_owned()),
        Block::Heading(t("note.billing")),
        line("note.buyer", field("name")),
    ];
    if !field("tax_id").is_empty() {
        blocks.push(line("note.tax_id", field("tax_id")));
    }
    blocks.push(line("note.address", address.join(", ")));
    blocks.extend([
        Block::Heading(t("note.agreements")),
        Block::Item(i18n::render(
            lang,
            "note.terms",
            &minijinja::context! { version => terms },
        )),
        Block::Item(i18n::render(
            lang,
            "note.conditions",
            &minijinja::context! { version => conditions },
        )),
        Block::Item(t("note.withdrawal")),
        Block::Heading(t("note.seller")),
        Block::Paragraph(format!(
            "{} · CUI {} · {}",
            billing.seller_name, billing.seller_tax_id, billing.seller_trade_register
        )),
        Block::Paragraph(format!(
            "{}, {} {}, {}",
            billing.seller_street, billing.seller_postal_code, billing.seller_city, billing.seller_country_code
        )),
    ]);
    let title = format!("{} {}", t("note.title"), order.registration_number);
    let subtitle = format!("{} {}", t("note.issued"), dates::date(lang, paid_at));
    (title, subtitle, blocks)
}

/// Basis points as a percentage: `19%`, `9,5%`.
fn percent(lang: Lang, basis_points: i64) -> String {
    if basis_points % 100 == 0 {
        format!("{}%", basis_points / 100)
    } else {
        let sep = if lang == Lang::Ro { ',' } else { '.' };
        let fraction = format!("{:02}", basis_points % 100);
        format!("{}{sep}{}%", basis_points / 100, fraction.trim_end_matches('0'))
    }
}
