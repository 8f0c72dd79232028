//! Orders (product rules §2): kind new, rekey or reissue; the three mandatory acknowledgements; invoice to a natural
//! person or to a company, every field required; promo codes; a unique registration number; states with their
//! history; cancel only while unpaid. Payment, identification and issuance come next.

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;

use super::Services;
use super::{fx, price, OrderEvent, OrderState, Price, CPV};
use crate::clock::{rfc3339, Clock};
pub use crate::db::orders::{record_history, record_hold, stored_state, transition};
use crate::db::{users::User, DbError};

/// Why an order was refused.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such order")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbError),
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

/// A new order row: what [`insert`] writes.
pub(crate) struct NewOrder<'a> {
    pub id: &'a str,
    /// The registration number drawn for it.
    pub number: &'a str,
    pub user_id: &'a str,
    pub kind: &'a str,
    pub package_id: i64,
    pub state: OrderState,
    pub price: &'a Price,
    pub promo_code: Option<&'a str>,
    pub invoice: &'a Value,
    pub acknowledgements: &'a Value,
    /// The credential a rekey order renews.
    pub credential_id: Option<&'a str>,
    /// `web` or `institutional`.
    pub channel: &'a str,
    pub now: i64,
}

/// Inserts an order row with its price. A taken registration number is a unique violation: the caller draws
/// another and tries again.
pub(crate) async fn insert(conn: &mut sqlx::AnyConnection, o: &NewOrder<'_>) -> Result<(), sqlx::Error> {
    let p = o.price;
    sqlx::query(
        "INSERT INTO orders (id, registration_number, user_id, kind, package_id, state, net_eur_cents,
            discount_eur_cents, promo_code, vat_basis_points, vat_eur_cents, gross_eur_cents, ron_per_eur_1e4,
            rate_date, total_ron_bani, invoice, acknowledgements, created_at, updated_at, credential_id, channel)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, $19, $20)",
    )
    .bind(o.id)
    .bind(o.number)
    .bind(o.user_id)
    .bind(o.kind)
    .bind(o.package_id)
    .bind(o.state.as_str())
    .bind(p.net_eur_cents)
    .bind(p.discount_eur_cents)
    .bind(o.promo_code)
    .bind(p.vat_basis_points)
    .bind(p.vat_eur_cents)
    .bind(p.gross_eur_cents)
    .bind(p.ron_per_eur_1e4)
    .bind(&p.rate_date)
    .bind(p.total_ron_bani)
    .bind(o.invoice.to_string())
    .bind(o.acknowledgements.to_string())
    .bind(o.now)
    .bind(o.credential_id)
    .bind(o.channel)
    .execute(conn)
    .await
    .map(|_| ())
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

/// Validates and normalises the invoice data: every field required ("… is required").
fn invoice(v: Option<Value>) -> Result<Value, OrderError> {
    let v = v.ok_or_else(|| OrderError::Invalid("The invoice data is required".into()))?;
    let field = |name: &str| -> Result<String, OrderError> {
        v.get(name)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty() && s.chars().count() <= 200)
            .ok_or_else(|| OrderError::Invalid(format!("{} is required", name.replace('_', " "))))
    };
    let kind = field("type")?;
    let mut out = serde_json::Map::new();
    match kind.as_str() {
        "person" => {
            if v.get("confirm_person") != Some(&json!(true)) {
                return Err(OrderError::Invalid(
                    "Confirm that the invoice is for a natural person (confirm_person: true)".into(),
                ));
            }
            out.insert("name".into(), json!(field("name")?));
        }
        "company" => {
            let cui = field("tax_id")?;
            if !valid_cui(&cui) {
                return Err(OrderError::Invalid("The tax id (CUI/CIF) is not valid".into()));
            }
            out.insert("tax_id".into(), json!(cui));
            out.insert("name".into(), json!(field("name")?));
        }
        _ => return Err(OrderError::Invalid("type must be person or company".into())),
    }
    out.insert("type".into(), json!(kind));
    for f in ADDRESS {
        out.insert(f.into(), json!(field(f)?));
    }
    Ok(Value::Object(out))
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
    kind: String,
    package: crate::config::PackageSettings,
    newsletter: bool,
    invoice: Value,
    promo: Option<crate::config::PromoCode>,
}

impl Draft {
    /// `new`, `rekey` or `reissue`.
    pub fn kind(&self) -> &str {
        &self.kind
    }
}

/// Checks an order request against billing's rules.
pub fn check(state: &Services, req: OrderRequest) -> Result<Draft, OrderError> {
    let kind = req.kind.unwrap_or_else(|| "new".into());
    if !["new", "rekey", "reissue"].contains(&kind.as_str()) {
        return Err(OrderError::Invalid("kind must be new, rekey or reissue".into()));
    }
    let package = req
        .package
        .and_then(|p| state.settings.package(p))
        .cloned()
        .ok_or_else(|| OrderError::Invalid("Choose a package: 1, 2 or 3".into()))?;
    let acks = req.acknowledgements.unwrap_or_default();
    for (given, what) in [
        (acks.terms, "the remote-signature terms"),
        (acks.order_conditions, "the order conditions"),
        (acks.withdrawal_waiver, "the loss of the right of withdrawal"),
    ] {
        if given != Some(true) {
            return Err(OrderError::Invalid(format!("Please confirm that you have read {what}")));
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
                .ok_or_else(|| OrderError::Invalid("This promotional code is not valid".into()))?,
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
) -> Result<Value, OrderError> {
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
    let acks_json = json!({
        "terms": true, "order_conditions": true, "withdrawal_waiver": true,
        "newsletter": newsletter, "at": rfc3339(now), "client": client,
    });
    let id = uuid::Uuid::now_v7().to_string();
    for _ in 0..5 {
        let number = registration_number(now);
        let mut tx = state.db.writer().begin().await?;
        let row = NewOrder {
            id: &id,
            number: &number,
            user_id: &user.id,
            kind: &kind,
            package_id: i64::from(package.id),
            state: OrderState::AwaitingPayment,
            price: &price,
            promo_code: promo.as_ref().map(|p| p.code.as_str()),
            invoice: &invoice,
            acknowledgements: &acks_json,
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
    Err(OrderError::Conflict(
        "Could not allocate a registration number; try again".into(),
    ))
}

/// Re-prices an unpaid order at today's EUR→RON rate when the rate it carries is of another day, so that the
/// amount paid is the one of the payment day. The EUR amounts do not change.
pub async fn reprice(state: &Services, order_id: &str) -> Result<(), DbError> {
    let Some(r) = sqlx::query(
        "SELECT net_eur_cents, discount_eur_cents, vat_basis_points, rate_date FROM orders
         WHERE id = $1 AND state = 'awaiting_payment'",
    )
    .bind(order_id)
    .fetch_optional(state.db.writer())
    .await?
    else {
        return Ok(());
    };
    let rate = state.fx.rate(state.clock.now()).await;
    if r.try_get::<String, _>("rate_date")? == rate.date {
        return Ok(());
    }
    let p = price(
        r.try_get("net_eur_cents")?,
        r.try_get("discount_eur_cents")?,
        r.try_get("vat_basis_points")?,
        &rate,
    );
    sqlx::query(
        "UPDATE orders SET ron_per_eur_1e4 = $1, rate_date = $2, total_ron_bani = $3, updated_at = $4
         WHERE id = $5 AND state = 'awaiting_payment'",
    )
    .bind(p.ron_per_eur_1e4)
    .bind(&p.rate_date)
    .bind(p.total_ron_bani)
    .bind(state.clock.now())
    .bind(order_id)
    .execute(state.db.writer())
    .await?;
    Ok(())
}

/// The columns of an order the lifecycle works with.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub id: String,
    pub registration_number: String,
    pub user_id: String,
    pub kind: String,
    pub package_id: i64,
    pub state: OrderState,
    pub total_ron_bani: i64,
    pub credential_id: Option<String>,
    pub frozen: bool,
}

/// Reads an order.
pub async fn order_row<'e, E>(exec: E, id: &str) -> Result<Option<OrderRow>, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let Some(r) = sqlx::query(
        "SELECT id, registration_number, user_id, kind, package_id, state, total_ron_bani, credential_id, frozen
         FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(exec)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(OrderRow {
        id: r.try_get("id")?,
        registration_number: r.try_get("registration_number")?,
        user_id: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        package_id: r.try_get("package_id")?,
        state: stored_state(&r.try_get::<String, _>("state")?)?,
        total_ron_bani: r.try_get("total_ron_bani")?,
        credential_id: r.try_get("credential_id")?,
        frozen: r.try_get::<i64, _>("frozen")? != 0,
    }))
}

/// One of the user's orders with its price, invoice data, actions and history.
pub async fn view(state: &Services, user: &User, id: &str) -> Result<Value, OrderError> {
    let r = sqlx::query("SELECT * FROM orders WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(&user.id)
        .fetch_optional(state.db.writer())
        .await?
        .ok_or(OrderError::NotFound)?;
    let order_state = stored_state(&r.try_get::<String, _>("state")?)?;
    let price = Price {
        net_eur_cents: r.try_get("net_eur_cents")?,
        discount_eur_cents: r.try_get("discount_eur_cents")?,
        vat_basis_points: r.try_get("vat_basis_points")?,
        vat_eur_cents: r.try_get("vat_eur_cents")?,
        gross_eur_cents: r.try_get("gross_eur_cents")?,
        ron_per_eur_1e4: r.try_get("ron_per_eur_1e4")?,
        rate_date: r.try_get("rate_date")?,
        total_ron_bani: r.try_get("total_ron_bani")?,
        label: String::new(),
    };
    let price = Price {
        label: format!(
            "Pay {} RON ({} EUR)",
            super::format_minor(price.total_ron_bani),
            super::format_minor(price.gross_eur_cents)
        ),
        ..price
    };
    let mut hist = Vec::new();
    for h in sqlx::query("SELECT state, actor, note, at FROM order_history WHERE order_id = $1 ORDER BY at, id")
        .bind(id)
        .fetch_all(state.db.writer())
        .await?
    {
        hist.push(json!({
            "state": h.try_get::<String, _>("state")?,
            "actor": h.try_get::<String, _>("actor")?,
            "note": h.try_get::<String, _>("note")?,
            "at": rfc3339(h.try_get("at")?),
        }));
    }
    let invoice: Value = serde_json::from_str(&r.try_get::<String, _>("invoice")?).unwrap_or(Value::Null);
    let awaiting = order_state == OrderState::AwaitingPayment;
    let kind: String = r.try_get("kind")?;
    let frozen = r.try_get::<i64, _>("frozen")? != 0;
    let invoice_number: Option<String> = r.try_get("invoice_number")?;
    let mut actions: Vec<&str> = match (order_state, kind.as_str()) {
        _ if frozen => vec![],
        // The pay action is the sandbox page: development mode only.
        (OrderState::AwaitingPayment, _) if state.settings.dev => vec!["pay", "cancel"],
        (OrderState::AwaitingPayment, _) => vec!["cancel"],
        (OrderState::Paid | OrderState::ReturnedForCompletion, "new" | "reissue") => vec!["identify"],
        (OrderState::Rejected, "new" | "reissue") => vec!["resubmit"],
        (OrderState::Accepted, "new" | "reissue") => vec!["issue_certificate"],
        (OrderState::Paid | OrderState::Rejected, "rekey") => vec!["rekey_request"],
        _ => vec![],
    };
    if invoice_number.is_some() {
        actions.push("invoice");
    }
    let payment_url = if awaiting {
        super::payment::payment_url(state, id)
    } else {
        None
    };
    Ok(json!({
        "id": id,
        "registration_number": r.try_get::<String, _>("registration_number")?,
        "kind": kind,
        "on_hold": frozen,
        "invoice_number": invoice_number,
        "channel": r.try_get::<String, _>("channel")?,
        "due_by": r.try_get::<Option<i64>, _>("due_by")?.map(rfc3339),
        "payment_due_at": r.try_get::<Option<i64>, _>("payment_due_at")?.map(rfc3339),
        "invoiced_at": r.try_get::<Option<i64>, _>("invoiced_at")?.map(rfc3339),
        "paid_at": r.try_get::<Option<i64>, _>("paid_at")?.map(rfc3339),
        "refunded_ron": r.try_get::<Option<i64>, _>("refunded_bani")?.map(super::format_minor),
        "credential_id": r.try_get::<Option<String>, _>("credential_id")?,
        "package": r.try_get::<i64, _>("package_id")?,
        "state": order_state,
        "price": price,
        "promo_code": r.try_get::<Option<String>, _>("promo_code")?,
        "invoice": invoice,
        "actions": actions,
        "payment_url": payment_url,
        "history": hist,
        "created_at": rfc3339(r.try_get("created_at")?),
    }))
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
    use super::invoice::{render, InvoiceData, InvoiceLine, Party};
    let r = sqlx::query("SELECT * FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(state.db.writer())
        .await?
        .filter(|r| user_id.is_none_or(|u| r.try_get::<String, _>("user_id").is_ok_and(|o| o == u)))
        .ok_or(OrderError::NotFound)?;
    let number = match r.try_get::<Option<String>, _>("invoice_number")? {
        _ if proforma => r.try_get::<String, _>("registration_number")?,
        Some(n) => n,
        None => {
            return Err(OrderError::Conflict(
                "The invoice is issued once the order is paid".into(),
            ))
        }
    };
    let issued_at = if proforma {
        r.try_get::<i64, _>("created_at")?
    } else {
        r.try_get::<Option<i64>, _>("invoiced_at")?
            .or(r.try_get::<Option<i64>, _>("paid_at")?)
            .unwrap_or_default()
    };
    let notes = document_notes(state, id, proforma).await?;
    let inv: Value = serde_json::from_str(&r.try_get::<String, _>("invoice")?).unwrap_or(Value::Null);
    let s = |k: &str| inv[k].as_str().unwrap_or_default().to_owned();
    let address = match inv["address_lines"].as_array() {
        Some(lines) => lines.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        None => vec![
            format!(
                "{} {}, bl. {}, sc. {}, ap. {}",
                s("street"),
                s("number"),
                s("building"),
                s("entrance"),
                s("apartment")
            ),
            format!("{} {}, {}", s("postal_code"), s("locality"), s("county")),
            s("country"),
        ],
    };
    let package_id: i64 = r.try_get("package_id")?;
    let kind: String = r.try_get("kind")?;
    let package = state
        .settings
        .package(package_id as u8)
        .map(|p| {
            format!(
                "{} ({} years, {} transactions)",
                p.name, p.validity_years, p.transactions
            )
        })
        .unwrap_or_else(|| format!("Package {package_id}"));
    let billing = &state.settings.billing;
    let data = InvoiceData {
        invoice_number: number.clone(),
        issued_on: rfc3339(issued_at)[..10].to_owned(),
        order_number: r.try_get("registration_number")?,
        seller: Party {
            name: billing.seller_name.clone(),
            tax_id: Some(billing.seller_tax_id.clone()),
            address: billing.seller_address.clone(),
        },
        buyer: Party {
            name: s("name"),
            tax_id: inv["tax_id"].as_str().map(str::to_owned),
            address,
        },
        lines: vec![InvoiceLine {
            description: format!("Qualified remote signature, {kind}: {package}"),
            quantity: 1,
            unit_net_eur_cents: r.try_get("net_eur_cents")?,
        }],
        discount_eur_cents: r.try_get("discount_eur_cents")?,
        vat_basis_points: r.try_get("vat_basis_points")?,
        vat_eur_cents: r.try_get("vat_eur_cents")?,
        gross_eur_cents: r.try_get("gross_eur_cents")?,
        ron_per_eur_1e4: r.try_get("ron_per_eur_1e4")?,
        rate_date: r.try_get("rate_date")?,
        total_ron_bani: r.try_get("total_ron_bani")?,
        payment_reference: r.try_get::<Option<String>, _>("payment_ref")?.unwrap_or_default(),
        proforma,
        due_on: r
            .try_get::<Option<i64>, _>("payment_due_at")?
            .filter(|_| !proforma)
            .map(|t| rfc3339(t)[..10].to_owned()),
        notes,
    };
    let pdf = tokio::task::spawn_blocking(move || render(&data))
        .await
        .map_err(|e| OrderError::Conflict(format!("invoice rendering failed: {e}")))?
        .map_err(|e| OrderError::Conflict(format!("invoice rendering failed: {e}")))?;
    Ok((number, pdf))
}

/// The user's orders, newest first.
pub async fn list(state: &Services, user: &User) -> Result<Value, OrderError> {
    let ids: Vec<String> = sqlx::query("SELECT id FROM orders WHERE user_id = $1 ORDER BY created_at DESC, id DESC")
        .bind(&user.id)
        .fetch_all(state.db.writer())
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(view(state, user, &id).await?);
    }
    Ok(json!({ "orders": out }))
}

/// Cancels an order for good, only while it awaits payment.
pub async fn cancel(state: &Services, user: &User, id: &str, client: &str) -> Result<Value, OrderError> {
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    let order = order_row(&mut *tx, id)
        .await?
        .filter(|o| o.user_id == user.id)
        .ok_or(OrderError::NotFound)?;
    let actor = format!("user:{}", user.id);
    if !transition(&mut tx, id, OrderEvent::Cancel, &actor, "cancelled by the holder", now).await? {
        return Err(OrderError::Conflict(format!(
            "Only an unpaid order can be cancelled; this one is {}",
            order.state
        )));
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

/// Today's package offers.
pub async fn packages(state: &Services) -> Value {
    let rate: fx::Rate = state.fx.rate(state.clock.now()).await;
    json!({
        "vat_basis_points": state.settings.billing.vat_basis_points,
        "rate": { "ron_per_eur": format!("{}.{:04}", rate.ron_per_eur_1e4 / 10_000, rate.ron_per_eur_1e4 % 10_000), "date": rate.date },
        "packages": super::offers(&state.settings.packages, state.settings.billing.vat_basis_points, &rate),
    })
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
