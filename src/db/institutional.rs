//! Institutional orders: a public body's order placed by an operator (its procurement reference, the holder's
//! identification made outside the video session).

use sqlx::Row;

use super::{Db, DbError};

/// The procurement reference of an institutional order, or `None` when `order_id` is a web order.
pub async fn procurement_reference(db: &Db, order_id: &str) -> Result<Option<String>, DbError> {
    let row = sqlx::query("SELECT procurement_reference FROM institutional_orders WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(db.writer())
        .await?;
    Ok(row.map(|r| r.try_get("procurement_reference")).transpose()?)
}
