//! Orders: their states and the one table of their transitions (product rules §2), and their history. Every
//! change of `orders.state` goes through [`transition`] with an [`OrderEvent`]; the event's row of
//! [`OrderEvent::rule`] says the states it applies to and the state it leads to, so that no caller names a state
//! it moves from or to.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::DbError;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    AwaitingPayment,
    AwaitingDocuments,
    Paid,
    UnderReview,
    ReturnedForCompletion,
    Accepted,
    Fulfilled,
    Rejected,
    Cancelled,
    Refunded,
}

use OrderState::*;

impl OrderState {
    /// Every state, in the order of the table above.
    pub const ALL: [OrderState; 10] = [
        AwaitingPayment,
        AwaitingDocuments,
        Paid,
        UnderReview,
        ReturnedForCompletion,
        Accepted,
        Fulfilled,
        Rejected,
        Cancelled,
        Refunded,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AwaitingPayment => "awaiting_payment",
            AwaitingDocuments => "awaiting_documents",
            Paid => "paid",
            UnderReview => "under_review",
            ReturnedForCompletion => "returned_for_completion",
            Accepted => "accepted",
            Fulfilled => "fulfilled",
            Rejected => "rejected",
            Cancelled => "cancelled",
            Refunded => "refunded",
        }
    }

    /// The state of a stored name.
    pub fn parse(text: &str) -> Option<OrderState> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the order is paid (or, institutional, due) and its identification or issuance not finished: what
    /// a ban, a fake-data verdict or a refund reaches.
    pub fn is_in_progress(self) -> bool {
        matches!(self, Paid | UnderReview | ReturnedForCompletion | Accepted | Rejected)
    }
}

impl std::fmt::Display for OrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    let names: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let sql = format!(
        "SELECT id, registration_number FROM orders WHERE user_id = $1 AND id <> $2 AND ($3 = 0 OR frozen = 0)
         AND state IN ({})",
        names.join(", ")
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
