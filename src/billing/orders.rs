//! Orders (product rules §2): kind new, rekey or reissue; the three mandatory acknowledgements; invoice to a natural
//! person or to a company, every field required; promo codes; a unique registration number; states with their
//! history; cancel only while unpaid. Payment, identification and issuance come next.

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::Services;
use super::{fx, price, OrderEvent, OrderKind, OrderState, Price, CPV};
use crate::clock::{rfc3339, Clock};
use crate::db::accounts::ConsentKind;
pub use crate::db::orders::{
    insert, order_row, record_history, record_hold, stored_state, transition, NewOrder, OrderRow,
};
use crate::db::{self, users::User, DbError};
use crate::i18n::Text;
use crate::text;

/// Why an order was refused.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("{0}")]
    Invalid(Text),
    #[error("{}", self.text())]
    NotFound,
    #[error("{0}")]
    Conflict(Text),
    #[error("{0}")]
    Forbidden(Text),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl OrderError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            OrderError::Invalid(t) => t.clone(),
            OrderError::NotFound => text!("error.order.no_such_order"),
            OrderError::Conflict(t) => t.clone(),
            OrderError::Forbidden(t) => t.clone(),
            OrderError::Db(_) => text!("error.http.database_error"),
        }
    }
}

impl From<sqlx::Error> for OrderError {
    fn from(e: sqlx::Error) -> Self {
        OrderError::Db(e.into())
    }
}

/// The mandatory ticks (and the optional newsletter).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Acknowledgements {
    /// I have read the remote-signature terms.
    pub terms: Option<bool>,
    /// I have read the order conditions.
    pub order_conditions: Option<bool>,
    /// I know I lose the right of withdrawal once the service starts, and that ordering obliges me to pay.
    pub withdrawal_waiver: Option<bool>,
    pub newsletter: Option<bool>,
}

/// `POST /api/v1/orders`.
#[derive(Debug, Deserialize)]
pub struct OrderRequest {
    pub kind: Option<String>,
    pub package: Option<u8>,
    pub acknowledgements: Option<Acknowledgements>,
    pub invoice: Option<Value>,
    pub promo_code: Option<String>,
}

const ADDRESS: [&str; 9] = [
    "country",
    "county",
    "locality",
    "street",
    "number",
    "building",
    "entrance",
    "apartment",
    "postal_code",
];

/// Checks a Romanian tax id (CUI/CIF): 2–10 digits, optional `RO` prefix, with its control digit.
pub fn valid_cui(raw: &str) -> bool {
    let digits = raw.trim().trim_start_matches("RO").trim_start_matches("ro").trim();
    if !(2..=10).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    let (body, control) = d.split_at(d.len() - 1);
    let key = [7u32, 5, 3, 2, 1, 7, 5, 3, 2];
    let offset = key.len() - body.len();
    let sum: u32 = body.iter().zip(&key[offset..]).map(|(a, b)| a * b).sum();
    let check = (sum * 10) % 11 % 10;
    check == control[0]
}

/// An order's invoice data as a web order stores them: to a natural person or a company, with its address.
// The fields are in the order their stored JSON has always had (alphabetical).
#[derive(Debug, Clone, Serialize)]
pub struct InvoiceFields {
    pub apartment: String,
    pub building: String,
    pub country: String,
    pub county: String,
    pub entrance: String,
    pub locality: String,
    pub name: String,
    pub number: String,
    pub postal_code: String,
    pub street: String,
    /// A company's tax id (CUI/CIF).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    /// `person` or `company`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Validates and normalises the invoice data: every field required ("… is required").
fn invoice(v: Option<Value>) -> Result<InvoiceFields, OrderError> {
    let v = v.ok_or_else(|| OrderError::Invalid(crate::text!("error.order.invoice_data_required")))?;
    let field = |name: &str| -> Result<String, OrderError> {
        v.get(name)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && s.chars().count() <= 200)
            .ok_or_else(|| OrderError::Invalid(Text::new(format!("error.order.{name}_required"))))
    };
    let kind = field("type")?;
    let (name, tax_id) = match kind.as_str() {
        "person" => {
            if v.get("confirm_person") != Some(&json!(true)) {
                return Err(OrderError::Invalid(crate::text!(
                    "error.order.confirm_that_invoice_for_natural"
                )));
            }
            (field("name")?, None)
        }
        "company" => {
            let cui = field("tax_id")?;
            if !valid_cui(&cui) {
                return Err(OrderError::Invalid(crate::text!("error.order.tax_id_cui_cif_not")));
            }
            (field("name")?, Some(cui))
        }
        _ => {
            return Err(OrderError::Invalid(crate::text!(
                "error.order.type_must_person_or_company"
            )))
        }
    };
    // Checked in ADDRESS order: the first missing field is the one named.
    let [country, county, locality, street, number, building, entrance, apartment, postal_code] = ADDRESS.map(field);
    let (country, county, locality, street) = (country?, county?, locality?, street?);
    let (number, building, entrance, apartment, postal_code) =
        (number?, building?, entrance?, apartment?, postal_code?);
    Ok(InvoiceFields {
        apartment,
        building,
        country,
        county,
        entrance,
        locality,
        name,
        number,
        postal_code,
        street,
        tax_id,
        kind,
    })
}

pub(crate) fn registration_number(now: i64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let year = time::OffsetDateTime::from_unix_timestamp(now)
        .map(|t| t.year())
        .unwrap_or(2026);
    let mut rng = rand::rngs::OsRng;
    let code: String = (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("PRF-{year}-{}-{}", &code[..4], &code[4..])
}

/// An order request that passed billing's checks: a known kind and package, the three acknowledgements, a
/// complete invoice and a valid promotional code. Whether the holder may order it (a ban, an order in progress, a
/// certificate to rekey) is the lifecycle's to say (`lifecycle::rekey::place_order`).
pub struct Draft {
    kind: OrderKind,
    package: crate::config::PackageSettings,
    newsletter: bool,
    invoice: InvoiceFields,
    promo: Option<crate::config::PromoCode>,
}

impl Draft {
    /// What the order is for.
    pub fn kind(&self) -> OrderKind {
        self.kind
    }
}

/// Checks an order request against billing's rules.
pub fn check(state: &Services, req: OrderRequest) -> Result<Draft, OrderError> {
    let kind = match req.kind.as_deref() {
        None => OrderKind::New,
        Some(k) => OrderKind::parse(k)
            .ok_or_else(|| OrderError::Invalid(crate::text!("error.order.kind_must_new_rekey_or")))?,
    };
    let package = req
        .package
        .and_then(|p| state.settings.package(p))
        .cloned()
        .ok_or_else(|| OrderError::Invalid(crate::text!("error.order.choose_package_1_2_or")))?;
    let acks = req.acknowledgements.unwrap_or_default();
    for (given, key) in [
        (acks.terms, "error.order.please_confirm_that_have_read"),
        (acks.order_conditions, "error.order.please_confirm_that_have_read_2"),
        (acks.withdrawal_waiver, "error.order.please_confirm_that_have_read_3"),
    ] {
        if given != Some(true) {
            return Err(OrderError::Invalid(text!(key)));
        }
    }
    let invoice = invoice(req.invoice)?;
    let promo = match req.promo_code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(code) => Some(
            state
                .settings
                .billing
                .promo_codes
                .iter()
                .find(|p| p.code.eq_ignore_ascii_case(code))
                .cloned()
                .ok_or_else(|| OrderError::Invalid(crate::text!("error.order.promotional_code_not_valid")))?,
        ),
    };
    Ok(Draft {
        kind,
        package,
        newsletter: acks.newsletter.unwrap_or(false),
        invoice,
        promo,
    })
}

/// Places a checked order, priced at today's rate, awaiting payment; `renews` is the credential a rekey renews.
pub async fn place(
    state: &Services,
    user: &User,
    draft: Draft,
    renews: Option<String>,
    client: &str,
) -> Result<OrderView, OrderError> {
    let Draft {
        kind,
        package,
        newsletter,
        invoice,
        promo,
    } = draft;
    let now = state.clock.now();
    let billing = &state.settings.billing;
    let discount = promo.as_ref().map_or(0, |p| {
        p.amount_off_eur_cents.unwrap_or(0)
            + p.percent_off_basis_points
                .map_or(0, |bp| (package.net_price_eur_cents * bp + 5_000) / 10_000)
    });
    let rate = state.fx.rate(now).await;
    let price = price(package.net_price_eur_cents, discount, billing.vat_basis_points, &rate);
    // The versions of the documents the ticks accepted (product rules §9), kept on the order and as consents.
    let terms_version = crate::legal::current_version(crate::legal::DocName::Terms);
    let conditions_version = crate::legal::current_version(crate::legal::DocName::OrderConditions);
    let acks_json = json!({
        "terms": true, "order_conditions": true, "withdrawal_waiver": true,
        "newsletter": newsletter, "at": rfc3339(now), "client": client,
        "versions": { "terms": terms_version, "order_conditions": conditions_version },
    });
    let id = uuid::Uuid::now_v7().to_string();
    for _ in 0..5 {
        let number = registration_number(now);
        let mut tx = state.db.writer().begin().await?;
        let row = NewOrder {
            id: &id,
            number: &number,
            user_id: &user.id,
            kind,
            package_id: i64::from(package.id),
            state: OrderState::AwaitingPayment,
            price: &price.amounts,
            promo_code: promo.as_ref().map(|p| p.code.as_str()),
            invoice: &json!(invoice).to_string(),
            acknowledgements: &acks_json.to_string(),
            credential_id: renews.as_deref(),
            channel: "web",
            now,
        };
        let inserted = insert(&mut tx, &row).await;
        match inserted {
            Err(e) if DbError::is_unique_violation(&e) => continue, // registration number taken: draw again
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        record_history(
            &mut tx,
            &id,
            OrderState::AwaitingPayment,
            &format!("user:{}", user.id),
            "placed",
            now,
        )
        .await?;
        for (kind, version) in [
            (ConsentKind::Terms, terms_version),
            (ConsentKind::OrderConditions, conditions_version),
        ] {
            crate::db::accounts::insert_consent(&mut *tx, &user.id, kind, version, true, client, now).await?;
        }
        // Without the sandbox the e-mail sends the holder to the order, where the gateway is reached.
        let link = super::payment::payment_url(state, &id)
            .unwrap_or_else(|| format!("{}/orders/{id}", state.ca.public_base()));
        let m = crate::notify::email(
            &user.email,
            &user.lang,
            state.ca.public_base(),
            crate::notify::Template::OrderPlaced {
                order: &number,
                charge: &price.label,
                link: &link,
                docs: &format!("{}/legal", state.ca.public_base()),
                terms_version,
                conditions_version,
            },
            "order_placed",
        );
        crate::notify::enqueue(&mut *tx, state.clock.as_ref(), &m).await?;
        tx.commit().await?;
        crate::audit::user_step(
            &state.db,
            state.clock.as_ref(),
            &user.id,
            "order.place",
            "ok",
            client,
            json!({ "order": number, "kind": kind }),
        )
        .await;
        return view(state, user, &id).await;
    }
    Err(OrderError::Conflict(crate::text!(
        "error.order.could_not_allocate_registration_number"
    )))
}

/// Re-prices an unpaid order at today's EUR→RON rate when the rate it carries is of another day, so that the
/// amount paid is the one of the payment day. The EUR amounts do not change.
pub async fn reprice(state: &Services, order_id: &str) -> Result<(), DbError> {
    let Some(order) = db::orders::get(&state.db, order_id, None).await? else {
        return Ok(());
    };
    let rate = state.fx.rate(state.clock.now()).await;
    if order.state != OrderState::AwaitingPayment || order.price.rate_date == rate.date {
        return Ok(());
    }
    let p = &order.price;
    let p = price(p.net_eur_cents, p.discount_eur_cents, p.vat_basis_points, &rate);
    db::orders::set_rate(&state.db, order_id, &p.amounts, state.clock.now()).await
}

/// One of a holder's orders as the API and the pages show it.
// The fields are in the order of the JSON object this view replaced (alphabetical), so the bytes are the same.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    /// What the holder can do next (`pay`, `cancel`, `identify`, …).
    pub actions: Vec<&'static str>,
    /// `web` or `institutional`.
    pub channel: String,
    pub created_at: String,
    pub credential_id: Option<String>,
    /// The credit note (storno) of a refund, once issued.
    pub credit_note_number: Option<String>,
    pub due_by: Option<String>,
    pub history: Vec<HistoryLine>,
    pub id: String,
    /// The invoice data as stored (a web order's [`InvoiceFields`], or an institution's with `address_lines`).
    pub invoice: Value,
    pub invoice_number: Option<String>,
    pub invoiced_at: Option<String>,
    pub kind: OrderKind,
    pub on_hold: bool,
    pub paid_at: Option<String>,
    pub package: i64,
    pub payment_due_at: Option<String>,
    pub payment_url: Option<String>,
    pub price: Price,
    pub promo_code: Option<String>,
    /// RON, two decimals.
    pub refunded_ron: Option<String>,
    pub registration_number: String,
    pub state: OrderState,
}

/// A line of an order's history: the state reached (or `on_hold`), by whom, why, when.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryLine {
    pub actor: String,
    pub at: String,
    pub note: String,
    pub state: String,
}

/// One of the user's orders with its price, invoice data, actions and history.
pub async fn view(state: &Services, user: &User, id: &str) -> Result<OrderView, OrderError> {
    let o = db::orders::get(&state.db, id, Some(&user.id))
        .await?
        .ok_or(OrderError::NotFound)?;
    let history = db::orders::history(&state.db, id)
        .await?
        .into_iter()
        .map(|h| HistoryLine {
            actor: h.actor,
            at: rfc3339(h.at),
            note: h.note,
            state: h.state,
        })
        .collect();
    let invoice: Value = serde_json::from_str(&o.invoice).unwrap_or(Value::Null);
    let awaiting = o.state == OrderState::AwaitingPayment;
    let payment_url = if awaiting {
        super::payment::payment_url(state, id)
    } else {
        None
    };
    let credit_note_number = db::orders::credit_note_of(&state.db, id).await?.map(|c| c.number);
    Ok(OrderView {
        actions: actions(state, &o, credit_note_number.as_deref()),
        credit_note_number,
        id: id.to_owned(),
        kind: o.kind,
        on_hold: o.frozen,
        due_by: o.due_by.map(rfc3339),
        payment_due_at: o.payment_due_at.map(rfc3339),
        invoiced_at: o.invoiced_at.map(rfc3339),
        paid_at: o.paid_at.map(rfc3339),
        refunded_ron: o.refunded_bani.map(super::format_minor),
        package: o.package_id,
        state: o.state,
        price: Price::of(o.price),
        invoice,
        payment_url,
        history,
        created_at: rfc3339(o.created_at),
        registration_number: o.registration_number,
        invoice_number: o.invoice_number,
        channel: o.channel,
        credential_id: o.credential_id,
        promo_code: o.promo_code,
    })
}

/// What the holder can do next with an order.
fn actions(state: &Services, o: &db::orders::Stored, credit_note: Option<&str>) -> Vec<&'static str> {
    let mut actions = match (o.state, o.kind) {
        _ if o.frozen => vec![],
        // The pay action is the sandbox page: development mode only.
        (OrderState::AwaitingPayment, _) if state.settings.dev => vec!["pay", "cancel"],
        (OrderState::AwaitingPayment, _) => vec!["cancel"],
        (OrderState::Paid | OrderState::ReturnedForCompletion, OrderKind::New | OrderKind::Reissue) => vec!["identify"],
        (OrderState::Rejected, OrderKind::New | OrderKind::Reissue) => vec!["resubmit"],
        (OrderState::Accepted, OrderKind::New | OrderKind::Reissue) => vec!["issue_certificate"],
        (OrderState::Paid | OrderState::Rejected, OrderKind::Rekey) => vec!["rekey_request"],
        _ => vec![],
    };
    if o.invoice_number.is_some() {
        actions.push("invoice");
    }
    if credit_note.is_some() {
        actions.push("credit_note");
    }
    actions
}

/// The lines an institutional order's proforma or invoice carries under its totals (none for web orders).
async fn document_notes(state: &Services, order_id: &str, proforma: bool) -> Result<Vec<String>, DbError> {
    let Some(reference) = crate::db::institutional::procurement_reference(&state.db, order_id).await? else {
        return Ok(Vec::new());
    };
    let billing = &state.settings.billing;
    let mut notes = vec![
        format!("Procurement reference: {reference}"),
        format!("CPV {CPV}: electronic signature certification services"),
    ];
    if proforma {
        notes.push(
            "Identification: in person with the original ID, or by courier with a notarised or lawyer-attested".into(),
        );
        notes.push("sworn statement. The invoice follows the certificate's issuance.".into());
        notes.push(format!(
            "Certificate within {} working days of complete documents; invoice payable within {} days.",
            billing.institutional_lead_working_days, billing.institutional_payment_days
        ));
    }
    Ok(notes)
}

/// The invoice of a paid order, as a PDF (its data are those frozen at payment).
pub async fn invoice_pdf(state: &Services, user: &User, id: &str) -> Result<(String, Vec<u8>), OrderError> {
    order_pdf(state, id, Some(&user.id), false).await
}

/// The invoice (or, with `proforma`, the proforma) of an order, as a PDF; `user_id` limits it to that holder's
/// orders. An institutional order's documents carry its procurement reference and due date (§13).
pub async fn order_pdf(
    state: &Services,
    id: &str,
    user_id: Option<&str>,
    proforma: bool,
) -> Result<(String, Vec<u8>), OrderError> {
    let o = db::orders::get(&state.db, id, user_id)
        .await?
        .ok_or(OrderError::NotFound)?;
    if !proforma && o.invoice_number.is_none() {
        return Err(OrderError::Conflict(crate::text!(
            "error.order.invoice_issued_once_order_paid"
        )));
    }
    let notes = document_notes(state, id, proforma).await?;
    let data = super::fiscal::invoice_data(&state.settings, &o, proforma, notes);
    render_pdf(data).await
}

/// The credit note of a refunded order, as a PDF; `user_id` limits it to that holder's orders.
pub async fn credit_note_pdf(
    state: &Services,
    id: &str,
    user_id: Option<&str>,
) -> Result<(String, Vec<u8>), OrderError> {
    let o = db::orders::get(&state.db, id, user_id)
        .await?
        .ok_or(OrderError::NotFound)?;
    let note = db::orders::credit_note_of(&state.db, id)
        .await?
        .ok_or_else(|| OrderError::Conflict(text!("error.order.no_credit_note")))?;
    render_pdf(super::fiscal::credit_note_data(&state.settings, &o, &note)).await
}

/// The e-Factura file (UBL 2.1, RO_CIUS) of an order's invoice or, with `credit_note`, of its credit note, as kept
/// at issue: (the document's number, the XML).
pub async fn efactura_xml(state: &Services, id: &str, credit_note: bool) -> Result<(String, String), OrderError> {
    db::orders::get(&state.db, id, None)
        .await?
        .ok_or(OrderError::NotFound)?;
    let kept = if credit_note {
        db::orders::credit_note_of(&state.db, id)
            .await?
            .and_then(|c| c.efactura_xml.map(|xml| (c.number, xml)))
    } else {
        db::orders::efactura(&state.db, id).await?
    };
    kept.ok_or_else(|| OrderError::Conflict(text!("error.order.no_efactura_file")))
}

/// Renders a document off the async runtime; returns its number with the bytes.
async fn render_pdf(data: super::invoice::InvoiceData) -> Result<(String, Vec<u8>), OrderError> {
    let number = data.invoice_number.clone();
    let pdf = tokio::task::spawn_blocking(move || super::invoice::render(&data))
        .await
        .map_err(|e| OrderError::Conflict(text!("error.order.invoice_rendering_failed", e)))?
        .map_err(|e| OrderError::Conflict(text!("error.order.invoice_rendering_failed", e)))?;
    Ok((number, pdf))
}

/// A holder's orders, newest first.
#[derive(Debug, Serialize)]
pub struct OrderList {
    pub orders: Vec<OrderView>,
}

/// The user's orders, newest first.
pub async fn list(state: &Services, user: &User) -> Result<OrderList, OrderError> {
    let ids = db::orders::ids_of_user(&state.db, &user.id).await?;
    let mut orders = Vec::with_capacity(ids.len());
    for id in ids {
        orders.push(view(state, user, &id).await?);
    }
    Ok(OrderList { orders })
}

/// Cancels an order for good, only while it awaits payment.
pub async fn cancel(state: &Services, user: &User, id: &str, client: &str) -> Result<OrderView, OrderError> {
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    let order = order_row(&mut *tx, id)
        .await?
        .filter(|o| o.user_id == user.id)
        .ok_or(OrderError::NotFound)?;
    let actor = format!("user:{}", user.id);
    if !transition(&mut tx, id, OrderEvent::Cancel, &actor, "cancelled by the holder", now).await? {
        return Err(OrderError::Conflict(
            crate::text!("error.order.only_unpaid_order_can_cancelled", state => crate::i18n::Text::state(order.state.as_str())),
        ));
    }
    tx.commit().await?;
    crate::audit::user_step(
        &state.db,
        state.clock.as_ref(),
        &user.id,
        "order.cancel",
        "ok",
        client,
        json!({ "order": id }),
    )
    .await;
    view(state, user, id).await
}

/// Today's package offers, at today's VAT and EUR→RON rate.
#[derive(Debug, Serialize)]
pub struct Offers {
    pub packages: Vec<super::PackageOffer>,
    pub rate: RateView,
    pub vat_basis_points: i64,
}

/// An EUR→RON rate as the offers show it.
#[derive(Debug, Serialize)]
pub struct RateView {
    /// `YYYY-MM-DD` of the feed, or `fallback`.
    pub date: String,
    /// RON per EUR, four decimals.
    pub ron_per_eur: String,
}

/// Today's package offers.
pub async fn packages(state: &Services) -> Offers {
    let rate: fx::Rate = state.fx.rate(state.clock.now()).await;
    let vat_basis_points = state.settings.billing.vat_basis_points;
    Offers {
        packages: super::offers(&state.settings.packages, vat_basis_points, &rate),
        rate: RateView {
            ron_per_eur: format!("{}.{:04}", rate.ron_per_eur_1e4 / 10_000, rate.ron_per_eur_1e4 % 10_000),
            date: rate.date,
        },
        vat_basis_points,
    }
}

#[cfg(test)]
mod tests {
    use super::valid_cui;

    #[test]
    fn romanian_tax_ids_are_checked_by_their_control_digit() {
        assert!(valid_cui("RO14399840"));
        assert!(valid_cui("14399840"));
        assert!(!valid_cui("14399841"));
        assert!(!valid_cui("RO"));
        assert!(!valid_cui("12345678901"));
    }
}
