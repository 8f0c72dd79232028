//! Orders: their states and the one table of their transitions (product rules §2), and their history. Every
//! change of `orders.state` goes through [`transition`] with an [`OrderEvent`]; the event's row of
//! [`OrderEvent::rule`] says the states it applies to and the state it leads to, so that no caller names a state
//! it moves from or to.

use sqlx::Row;

use super::{Db, DbError};

stored_state! {
    /// An order's state, stored as text (`orders.state`, `order_history.state`) in its snake_case name.
    ///
    /// | state | meaning | next |
    /// | --- | --- | --- |
    /// | `awaiting_payment` | placed on the web, unpaid | paid, cancelled |
    /// | `awaiting_documents` | an institutional order, awaiting the holder's identification documents | accepted, cancelled |
    /// | `paid` | the gateway confirmed the payment | under review, returned, refunded, cancelled |
    /// | `under_review` | the video session or the rekey request is at an operator | accepted, returned, rejected, refunded, cancelled |
    /// | `returned_for_completion` | a fix is needed (unreadable photo, wrong data, interrupted session) | under review, refunded, cancelled |
    /// | `accepted` | awaits the holder's TOTP or the issue date | fulfilled, refunded, cancelled |
    /// | `fulfilled` | the certificate is issued | – |
    /// | `rejected` | a negative verdict with a reason | under review (resubmitted, or a rekey request sent again), refunded, cancelled |
    /// | `cancelled` | cancelled while unpaid, or every pending order of a holder whose data were fake | – |
    /// | `refunded` | a rekey past the cut-off, a final rejection | – |
    pub enum OrderState {
        AwaitingPayment = "awaiting_payment",
        AwaitingDocuments = "awaiting_documents",
        Paid = "paid",
        UnderReview = "under_review",
        ReturnedForCompletion = "returned_for_completion",
        Accepted = "accepted",
        Fulfilled = "fulfilled",
        Rejected = "rejected",
        Cancelled = "cancelled",
        Refunded = "refunded",
    }
}

use OrderState::*;

stored_state! {
    /// What an order is for, stored as text (`orders.kind`).
    pub enum OrderKind {
        /// A first certificate.
        New = "new",
        /// A successor for a certificate still valid, with a new key.
        Rekey = "rekey",
        /// A new certificate after the last one ended.
        Reissue = "reissue",
    }
}

impl OrderState {
    /// Whether the order is paid (or, institutional, due) and its identification or issuance not finished: what
    /// a ban, a fake-data verdict or a refund reaches.
    pub fn is_in_progress(self) -> bool {
        matches!(self, Paid | UnderReview | ReturnedForCompletion | Accepted | Rejected)
    }
}

/// What moves an order: each event is one row of the transition table ([`OrderEvent::rule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    /// The gateway confirmed the payment.
    Pay,
    /// The holder cancelled an unpaid order.
    Cancel,
    /// The holder finished the video identification: the order waits for an operator.
    Identified,
    /// The video session was interrupted: a new link is sent.
    SessionInterrupted,
    /// An operator returned the identification for completion.
    Return,
    /// A rekey request was sent for approval (again, after a rejection).
    RekeyRequested,
    /// The holder resubmitted a rejected identification.
    Resubmit,
    /// An operator accepted the identification or the rekey request.
    Accept,
    /// An operator recorded an institutional holder's identification documents.
    DocumentsRecorded,
    /// An operator rejected the identification or the rekey request.
    Reject,
    /// The certificate was issued.
    Fulfil,
    /// The payment was returned (a rekey past the cut-off, a final rejection).
    Refund,
    /// A fake-data verdict cancels every pending order of the holder, without a refund (§2, §10).
    Void,
}

impl OrderEvent {
    /// The transition table: the states the event applies to, and the state it leads to.
    pub fn rule(self) -> (&'static [OrderState], OrderState) {
        match self {
            OrderEvent::Pay => (&[AwaitingPayment], Paid),
            OrderEvent::Cancel => (&[AwaitingPayment], Cancelled),
            OrderEvent::Identified => (&[Paid, ReturnedForCompletion, UnderReview], UnderReview),
            OrderEvent::SessionInterrupted => (&[Paid, UnderReview, ReturnedForCompletion], ReturnedForCompletion),
            OrderEvent::Return => (&[UnderReview], ReturnedForCompletion),
            OrderEvent::RekeyRequested => (&[Paid, Rejected], UnderReview),
            OrderEvent::Resubmit => (&[Rejected], UnderReview),
            OrderEvent::Accept => (&[UnderReview], Accepted),
            OrderEvent::DocumentsRecorded => (&[AwaitingDocuments], Accepted),
            OrderEvent::Reject => (&[UnderReview], Rejected),
            OrderEvent::Fulfil => (&[Accepted], Fulfilled),
            OrderEvent::Refund => (
                &[Paid, UnderReview, ReturnedForCompletion, Accepted, Rejected],
                Refunded,
            ),
            OrderEvent::Void => (
                &[
                    AwaitingDocuments,
                    AwaitingPayment,
                    Paid,
                    UnderReview,
                    ReturnedForCompletion,
                    Accepted,
                    Rejected,
                ],
                Cancelled,
            ),
        }
    }

    /// The state the event leads to.
    pub fn to(self) -> OrderState {
        self.rule().1
    }

    /// Whether the event applies to an order in `state`.
    pub fn applies_to(self, state: OrderState) -> bool {
        self.rule().0.contains(&state)
    }
}

/// The state of a stored order; a name outside the table is a corrupt row.
pub fn stored_state(text: &str) -> Result<OrderState, DbError> {
    OrderState::parse(text).ok_or(DbError::Corrupt("orders.state"))
}

/// Moves an order by `event` (the one transition table, [`OrderEvent::rule`]), with its history row, inside the
/// caller's transaction. Returns false (and changes nothing) when the event does not apply to the order's state:
/// another request or instance moved it first.
pub async fn transition(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    event: OrderEvent,
    actor: &str,
    note: &str,
    now: i64,
) -> Result<bool, DbError> {
    let (from, to) = event.rule();
    let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "UPDATE orders SET state = $1, updated_at = $2 WHERE id = $3 AND state IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(to.as_str()).bind(now).bind(order_id);
    for f in from {
        q = q.bind(f.as_str());
    }
    if q.execute(&mut *conn).await?.rows_affected() != 1 {
        return Ok(false);
    }
    record_history(conn, order_id, to, actor, note, now).await?;
    Ok(true)
}

/// Records a state in an order's history.
pub async fn record_history(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    state: OrderState,
    actor: &str,
    note: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO order_history (id, order_id, state, actor, note, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(order_id)
        .bind(state.as_str())
        .bind(actor)
        .bind(note)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records in an order's history that it was put on hold (its state unchanged, its `frozen` flag set): the mark
/// `on_hold` stands in the history's state column.
pub async fn record_hold(conn: &mut sqlx::AnyConnection, order_id: &str, note: &str, now: i64) -> Result<(), DbError> {
    sqlx::query("INSERT INTO order_history (id, order_id, state, actor, note, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(order_id)
        .bind("on_hold")
        .bind("system")
        .bind(note)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// A holder's pending orders (those a fake-data verdict cancels: [`OrderEvent::Void`]'s), `except` one, only those
/// not on hold with `unfrozen_only`: their ids and registration numbers.
pub async fn pending_of_user(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    except: Option<&str>,
    unfrozen_only: bool,
) -> Result<Vec<(String, String)>, DbError> {
    let (from, _) = OrderEvent::Void.rule();
    let sql = format!(
        "SELECT id, registration_number FROM orders WHERE user_id = $1 AND id <> $2 AND ($3 = 0 OR frozen = 0)
         AND state IN ({})",
        super::state_list(from.iter().copied(), OrderState::as_str)
    );
    let rows = sqlx::query(&sql)
        .bind(user_id)
        .bind(except.unwrap_or(""))
        .bind(i64::from(unfrozen_only))
        .fetch_all(conn)
        .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("registration_number")?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Puts an order on hold (its state unchanged) until an operator decides about a duplicate identity document.
pub async fn freeze(conn: &mut sqlx::AnyConnection, order_id: &str, now: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE orders SET frozen = 1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    record_hold(conn, order_id, "duplicate identity document", now).await
}

/// An order's price as stored: EUR amounts in cents, the rate of its day, the RON total in bani.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PriceColumns {
    pub net_eur_cents: i64,
    pub discount_eur_cents: i64,
    pub vat_basis_points: i64,
    pub vat_eur_cents: i64,
    pub gross_eur_cents: i64,
    /// RON per EUR × 10 000.
    pub ron_per_eur_1e4: i64,
    pub rate_date: String,
    pub total_ron_bani: i64,
}

fn price_columns(r: &sqlx::any::AnyRow) -> Result<PriceColumns, sqlx::Error> {
    Ok(PriceColumns {
        net_eur_cents: r.try_get("net_eur_cents")?,
        discount_eur_cents: r.try_get("discount_eur_cents")?,
        vat_basis_points: r.try_get("vat_basis_points")?,
        vat_eur_cents: r.try_get("vat_eur_cents")?,
        gross_eur_cents: r.try_get("gross_eur_cents")?,
        ron_per_eur_1e4: r.try_get("ron_per_eur_1e4")?,
        rate_date: r.try_get("rate_date")?,
        total_ron_bani: r.try_get("total_ron_bani")?,
    })
}

/// A new order, as placed on the web or by an operator for an institution.
pub struct NewOrder<'a> {
    pub id: &'a str,
    /// The registration number drawn for it.
    pub number: &'a str,
    pub user_id: &'a str,
    pub kind: OrderKind,
    pub package_id: i64,
    pub state: OrderState,
    pub price: &'a PriceColumns,
    pub promo_code: Option<&'a str>,
    /// The invoice data (JSON).
    pub invoice: &'a str,
    /// The acknowledgements given (JSON).
    pub acknowledgements: &'a str,
    /// The credential a rekey order renews.
    pub credential_id: Option<&'a str>,
    /// `web` or `institutional`.
    pub channel: &'a str,
    pub now: i64,
}

/// Inserts an order row with its price. A taken registration number is a unique violation: the caller draws
/// another and tries again.
pub async fn insert(conn: &mut sqlx::AnyConnection, o: &NewOrder<'_>) -> Result<(), sqlx::Error> {
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
    .bind(o.kind.as_str())
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
    .bind(o.invoice)
    .bind(o.acknowledgements)
    .bind(o.now)
    .bind(o.credential_id)
    .bind(o.channel)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The columns of an order the lifecycle works with.
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub id: String,
    pub registration_number: String,
    pub user_id: String,
    pub kind: OrderKind,
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
        kind: OrderKind::stored(&r.try_get::<String, _>("kind")?, "orders.kind")?,
        package_id: r.try_get("package_id")?,
        state: stored_state(&r.try_get::<String, _>("state")?)?,
        total_ron_bani: r.try_get("total_ron_bani")?,
        credential_id: r.try_get("credential_id")?,
        frozen: r.try_get::<i64, _>("frozen")? != 0,
    }))
}

/// An order with everything its page and its invoice show.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: String,
    pub registration_number: String,
    pub user_id: String,
    pub kind: OrderKind,
    pub package_id: i64,
    pub state: OrderState,
    pub price: PriceColumns,
    pub promo_code: Option<String>,
    /// The invoice data (JSON).
    pub invoice: String,
    pub channel: String,
    pub credential_id: Option<String>,
    pub frozen: bool,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub payment_ref: Option<String>,
    pub invoice_number: Option<String>,
    pub invoiced_at: Option<i64>,
    pub refunded_bani: Option<i64>,
    /// An institutional order's due date for the certificate.
    pub due_by: Option<i64>,
    /// An institutional order's due date for the payment.
    pub payment_due_at: Option<i64>,
}

/// An order by id; with `user_id`, only that holder's.
pub async fn get(db: &Db, id: &str, user_id: Option<&str>) -> Result<Option<Stored>, DbError> {
    get_with(db.writer(), id, user_id).await
}

/// [`get`] through a given connection (inside a transaction).
pub async fn get_with<'e, E>(exec: E, id: &str, user_id: Option<&str>) -> Result<Option<Stored>, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let Some(r) = sqlx::query("SELECT * FROM orders WHERE id = $1")
        .bind(id)
        .fetch_optional(exec)
        .await?
    else {
        return Ok(None);
    };
    let order = Stored {
        id: r.try_get("id")?,
        registration_number: r.try_get("registration_number")?,
        user_id: r.try_get("user_id")?,
        kind: OrderKind::stored(&r.try_get::<String, _>("kind")?, "orders.kind")?,
        package_id: r.try_get("package_id")?,
        state: stored_state(&r.try_get::<String, _>("state")?)?,
        price: price_columns(&r)?,
        promo_code: r.try_get("promo_code")?,
        invoice: r.try_get("invoice")?,
        channel: r.try_get("channel")?,
        credential_id: r.try_get("credential_id")?,
        frozen: r.try_get::<i64, _>("frozen")? != 0,
        created_at: r.try_get("created_at")?,
        paid_at: r.try_get("paid_at")?,
        payment_ref: r.try_get("payment_ref")?,
        invoice_number: r.try_get("invoice_number")?,
        invoiced_at: r.try_get("invoiced_at")?,
        refunded_bani: r.try_get("refunded_bani")?,
        due_by: r.try_get("due_by")?,
        payment_due_at: r.try_get("payment_due_at")?,
    };
    Ok(Some(order).filter(|o| user_id.is_none_or(|u| o.user_id == u)))
}

/// One row of an order's history: a state reached (or the mark `on_hold`), by whom, why, when.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub state: String,
    pub actor: String,
    pub note: String,
    pub at: i64,
}

/// An order's history, oldest first.
pub async fn history(db: &Db, order_id: &str) -> Result<Vec<HistoryEntry>, DbError> {
    let rows = sqlx::query("SELECT state, actor, note, at FROM order_history WHERE order_id = $1 ORDER BY at, id")
        .bind(order_id)
        .fetch_all(db.writer())
        .await?;
    rows.iter()
        .map(|h| {
            Ok(HistoryEntry {
                state: h.try_get("state")?,
                actor: h.try_get("actor")?,
                note: h.try_get("note")?,
                at: h.try_get("at")?,
            })
        })
        .collect()
}

/// A holder's orders, newest first.
pub async fn ids_of_user(db: &Db, user_id: &str) -> Result<Vec<String>, DbError> {
    let rows = sqlx::query("SELECT id FROM orders WHERE user_id = $1 ORDER BY created_at DESC, id DESC")
        .bind(user_id)
        .fetch_all(db.writer())
        .await?;
    Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
}

/// Sets the rate and the RON total of an order that is still unpaid (re-priced on the payment day).
pub async fn set_rate(db: &Db, order_id: &str, price: &PriceColumns, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE orders SET ron_per_eur_1e4 = $1, rate_date = $2, total_ron_bani = $3, updated_at = $4
         WHERE id = $5 AND state = $6",
    )
    .bind(price.ron_per_eur_1e4)
    .bind(&price.rate_date)
    .bind(price.total_ron_bani)
    .bind(now)
    .bind(order_id)
    .bind(AwaitingPayment.as_str())
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Records the payment of an order that has just moved to paid: when, and the gateway's reference.
pub async fn set_paid(conn: &mut sqlx::AnyConnection, order_id: &str, at: i64, reference: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE orders SET paid_at = $1, payment_ref = $2 WHERE id = $3")
        .bind(at)
        .bind(reference)
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The next value of a gap-free counter (`invoice-2026`, say), inside the caller's transaction.
pub async fn next_in_sequence(conn: &mut sqlx::AnyConnection, name: &str) -> Result<i64, DbError> {
    Ok(sqlx::query(
        "INSERT INTO counters (name, value) VALUES ($1, 1)
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
    )
    .bind(name)
    .fetch_one(conn)
    .await?
    .try_get("value")?)
}

/// Gives an order its invoice number.
pub async fn set_invoice_number(conn: &mut sqlx::AnyConnection, order_id: &str, number: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE orders SET invoice_number = $1 WHERE id = $2")
        .bind(number)
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Keeps an invoice's e-Factura file, once: a file already kept is never replaced.
pub async fn set_efactura(conn: &mut sqlx::AnyConnection, order_id: &str, xml: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE orders SET efactura_xml = $1 WHERE id = $2 AND efactura_xml IS NULL")
        .bind(xml)
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An order's invoice number and e-Factura file, when it has both.
pub async fn efactura(db: &Db, order_id: &str) -> Result<Option<(String, String)>, DbError> {
    let row = sqlx::query("SELECT invoice_number, efactura_xml FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_optional(db.writer())
        .await?;
    let Some(r) = row else { return Ok(None) };
    let number: Option<String> = r.try_get("invoice_number")?;
    let xml: Option<String> = r.try_get("efactura_xml")?;
    Ok(number.zip(xml))
}

/// A refunded order's credit note (storno), as issued.
#[derive(Debug, Clone)]
pub struct CreditNote {
    /// e.g. "PRF-CN-2026-000001".
    pub number: String,
    pub order_id: String,
    /// The invoice it reverses.
    pub invoice_number: String,
    pub issued_at: i64,
    pub amount_ron_bani: i64,
    /// The gateway's reference of the refund.
    pub refund_ref: String,
    /// Its e-Factura file (`None` when it could not be made: logged at issue).
    pub efactura_xml: Option<String>,
}

/// Records a credit note; a second one for the same order is a unique violation.
pub async fn insert_credit_note(conn: &mut sqlx::AnyConnection, c: &CreditNote) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO credit_notes (number, order_id, invoice_number, issued_at, amount_ron_bani, refund_ref, efactura_xml)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.number)
    .bind(&c.order_id)
    .bind(&c.invoice_number)
    .bind(c.issued_at)
    .bind(c.amount_ron_bani)
    .bind(&c.refund_ref)
    .bind(&c.efactura_xml)
    .execute(conn)
    .await?;
    Ok(())
}

/// An order's credit note, if it was refunded after being invoiced.
pub async fn credit_note_of(db: &Db, order_id: &str) -> Result<Option<CreditNote>, DbError> {
    let row = sqlx::query("SELECT * FROM credit_notes WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(db.writer())
        .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(CreditNote {
        number: r.try_get("number")?,
        order_id: r.try_get("order_id")?,
        invoice_number: r.try_get("invoice_number")?,
        issued_at: r.try_get("issued_at")?,
        amount_ron_bani: r.try_get("amount_ron_bani")?,
        refund_ref: r.try_get("refund_ref")?,
        efactura_xml: r.try_get("efactura_xml")?,
    }))
}

stored_state! {
    /// What a gateway reports about a payment, stored as text (`payment_events.status`).
    pub enum PaymentStatus {
        Paid = "paid",
        Failed = "failed",
    }
}

/// A gateway's notification about an order's payment, as recorded (once per event id).
pub struct PaymentEvent<'a> {
    pub event_id: &'a str,
    pub provider: &'a str,
    pub order_id: &'a str,
    pub status: PaymentStatus,
    pub amount_bani: i64,
}

/// Whether a payment notification was already recorded.
pub async fn payment_seen(conn: &mut sqlx::AnyConnection, event_id: &str) -> Result<bool, DbError> {
    Ok(sqlx::query("SELECT event_id FROM payment_events WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Records a payment notification; the same event twice is a unique violation.
pub async fn record_payment(conn: &mut sqlx::AnyConnection, e: &PaymentEvent<'_>, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_events (event_id, provider, order_id, status, amount_bani, received_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.event_id)
    .bind(e.provider)
    .bind(e.order_id)
    .bind(e.status.as_str())
    .bind(e.amount_bani)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ())
}

/// How many of a holder's orders of `kind` are paid and not finished, leaving out those whose identification was
/// found fake (they no longer count).
pub async fn in_progress_of_kind(db: &Db, user_id: &str, kind: OrderKind) -> Result<i64, DbError> {
    let in_progress = OrderState::ALL.into_iter().filter(|s| s.is_in_progress());
    let sql = format!(
        "SELECT COUNT(*) AS n FROM orders WHERE user_id = $1 AND kind = $2 AND state IN ({})
         AND NOT EXISTS (SELECT 1 FROM identity_sessions s WHERE s.order_id = orders.id AND s.fake = 1)",
        super::state_list(in_progress, OrderState::as_str)
    );
    Ok(sqlx::query(&sql)
        .bind(user_id)
        .bind(kind.as_str())
        .fetch_one(db.writer())
        .await?
        .try_get("n")?)
}

/// Names the credential an order produced (a new certificate, or a rekey's successor).
pub async fn set_credential(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    credential_id: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE orders SET credential_id = $1 WHERE id = $2")
        .bind(credential_id)
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that an order's whole total was refunded.
pub async fn set_refunded(conn: &mut sqlx::AnyConnection, order_id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE orders SET refunded_bani = total_ron_bani WHERE id = $1")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records when an institutional order was invoiced and when its payment is due.
pub async fn set_invoiced(conn: &mut sqlx::AnyConnection, order_id: &str, at: i64, due: i64) -> Result<(), DbError> {
    sqlx::query("UPDATE orders SET invoiced_at = $1, payment_due_at = $2 WHERE id = $3")
        .bind(at)
        .bind(due)
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [OrderEvent; 13] = [
        OrderEvent::Pay,
        OrderEvent::Cancel,
        OrderEvent::Identified,
        OrderEvent::SessionInterrupted,
        OrderEvent::Return,
        OrderEvent::RekeyRequested,
        OrderEvent::Resubmit,
        OrderEvent::Accept,
        OrderEvent::DocumentsRecorded,
        OrderEvent::Reject,
        OrderEvent::Fulfil,
        OrderEvent::Refund,
        OrderEvent::Void,
    ];

    #[test]
    fn every_state_reads_back_from_its_stored_name() {
        for s in OrderState::ALL {
            assert_eq!(OrderState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(OrderState::parse("shipped"), None);
    }

    #[test]
    fn finished_orders_never_move_and_every_other_state_can_be_left() {
        for s in OrderState::ALL {
            let leaves = EVENTS.iter().any(|e| e.applies_to(s) && e.to() != s);
            assert_eq!(leaves, !matches!(s, Fulfilled | Cancelled | Refunded), "{s}");
        }
    }

    #[test]
    fn the_table_follows_the_product_rules() {
        // An unpaid order is paid or cancelled, nothing else.
        let from_unpaid: Vec<_> = EVENTS
            .iter()
            .filter(|e| e.applies_to(AwaitingPayment))
            .map(|e| e.to())
            .collect();
        assert_eq!(from_unpaid, [Paid, Cancelled, Cancelled]);
        // Only an accepted order is fulfilled, and a refund never reaches an unpaid one.
        assert!(EVENTS.iter().all(|e| e.to() != Fulfilled || e.rule().0 == [Accepted]));
        assert!(!OrderEvent::Refund.applies_to(AwaitingPayment));
        assert!(OrderState::ALL
            .iter()
            .all(|s| OrderEvent::Refund.applies_to(*s) == s.is_in_progress()));
    }
}
