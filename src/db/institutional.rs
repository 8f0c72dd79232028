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

/// A public body's order as an operator places it.
pub struct NewInstitutional<'a> {
    pub order_id: &'a str,
    pub name: &'a str,
    pub tax_id: &'a str,
    /// The address, one line per line.
    pub address: &'a str,
    pub email: &'a str,
    pub procurement_reference: &'a str,
    /// The hash of the secret of the institution's link to its documents.
    pub link_hash: &'a str,
    pub created_by: &'a str,
}

/// Records the institution of a new order.
pub async fn insert(conn: &mut sqlx::AnyConnection, n: &NewInstitutional<'_>, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO institutional_orders (order_id, institution_name, institution_tax_id, institution_address,
            institution_email, procurement_reference, link_hash, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(n.order_id)
    .bind(n.name)
    .bind(n.tax_id)
    .bind(n.address)
    .bind(n.email)
    .bind(n.procurement_reference)
    .bind(n.link_hash)
    .bind(n.created_by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The holder's identification an operator recorded for an institutional order.
pub struct Documents<'a> {
    /// `in_person` or `courier_sworn_statement`.
    pub method: &'a str,
    /// The document's data (JSON).
    pub document: &'a str,
    pub note: &'a str,
    pub recorded_by: &'a str,
    /// When the certificate is due.
    pub due_by: i64,
}

/// Records the identification documents of an institutional order and its certificate's due date.
pub async fn record_documents(
    conn: &mut sqlx::AnyConnection,
    order_id: &str,
    d: &Documents<'_>,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("UPDATE orders SET due_by = $1 WHERE id = $2")
        .bind(d.due_by)
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE institutional_orders SET method = $1, document = $2, note = $3, recorded_by = $4,
            documents_complete_at = $5 WHERE order_id = $6",
    )
    .bind(d.method)
    .bind(d.document)
    .bind(d.note)
    .bind(d.recorded_by)
    .bind(now)
    .bind(order_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// An institutional order not yet invoiced: what its invoice's e-mail says.
pub struct ToInvoice {
    pub registration_number: String,
    pub total_ron_bani: i64,
    /// The invoice data (JSON).
    pub invoice: String,
    pub institution_email: String,
}

/// The institutional order `order_id` if it has no invoice yet (`None` for a web order or one invoiced).
pub async fn to_invoice(conn: &mut sqlx::AnyConnection, order_id: &str) -> Result<Option<ToInvoice>, DbError> {
    let Some(r) = sqlx::query(
        "SELECT o.registration_number, o.total_ron_bani, o.invoice, i.institution_email
         FROM orders o JOIN institutional_orders i ON i.order_id = o.id
         WHERE o.id = $1 AND o.channel = 'institutional' AND o.invoice_number IS NULL",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(ToInvoice {
        registration_number: r.try_get("registration_number")?,
        total_ron_bani: r.try_get("total_ron_bani")?,
        invoice: r.try_get("invoice")?,
        institution_email: r.try_get("institution_email")?,
    }))
}

/// Replaces the institution's link (kept only as a hash).
pub async fn set_link_hash(conn: &mut sqlx::AnyConnection, order_id: &str, link_hash: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE institutional_orders SET link_hash = $1 WHERE order_id = $2")
        .bind(link_hash)
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The order behind an institution's link.
pub async fn order_by_link(db: &Db, link_hash: &str) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query("SELECT order_id FROM institutional_orders WHERE link_hash = $1")
            .bind(link_hash)
            .fetch_optional(db.writer())
            .await?
            .map(|r| r.try_get("order_id"))
            .transpose()?,
    )
}

/// An institutional order as operators see it, with its institution, holder and identification.
pub struct Line {
    pub id: String,
    pub registration_number: String,
    /// The order's state's stored name.
    pub state: String,
    pub package_id: i64,
    pub total_ron_bani: i64,
    pub invoice_number: Option<String>,
    pub due_by: Option<i64>,
    pub payment_due_at: Option<i64>,
    pub created_at: i64,
    pub institution_name: String,
    pub institution_tax_id: String,
    pub institution_address: String,
    pub institution_email: String,
    pub procurement_reference: String,
    pub method: Option<String>,
    pub note: Option<String>,
    pub recorded_by: Option<String>,
    pub documents_complete_at: Option<i64>,
    pub email: String,
    pub given_name: String,
    pub surname: String,
    pub account_status: String,
}

/// The newest institutional orders (at most 500), or only `one`.
pub async fn lines(db: &Db, one: Option<&str>) -> Result<Vec<Line>, DbError> {
    let sql = format!(
        "SELECT o.id, o.registration_number, o.state, o.package_id, o.total_ron_bani, o.invoice_number, o.due_by,
                o.payment_due_at, o.created_at, i.institution_name, i.institution_tax_id, i.institution_address,
                i.institution_email, i.procurement_reference, i.method, i.note, i.recorded_by,
                i.documents_complete_at, u.email, u.given_name, u.surname, u.status AS account_status
         FROM orders o JOIN institutional_orders i ON i.order_id = o.id JOIN users u ON u.id = o.user_id
         {} ORDER BY o.created_at DESC, o.id LIMIT 500",
        if one.is_some() { "WHERE o.id = $1" } else { "" }
    );
    let mut q = sqlx::query(&sql);
    if let Some(id) = one {
        q = q.bind(id);
    }
    q.fetch_all(db.writer()).await?.iter().map(line).collect()
}

fn line(r: &sqlx::any::AnyRow) -> Result<Line, DbError> {
    Ok(Line {
        id: r.try_get("id")?,
        registration_number: r.try_get("registration_number")?,
        state: r.try_get("state")?,
        package_id: r.try_get("package_id")?,
        total_ron_bani: r.try_get("total_ron_bani")?,
        invoice_number: r.try_get("invoice_number")?,
        due_by: r.try_get("due_by")?,
        payment_due_at: r.try_get("payment_due_at")?,
        created_at: r.try_get("created_at")?,
        institution_name: r.try_get("institution_name")?,
        institution_tax_id: r.try_get("institution_tax_id")?,
        institution_address: r.try_get("institution_address")?,
        institution_email: r.try_get("institution_email")?,
        procurement_reference: r.try_get("procurement_reference")?,
        method: r.try_get("method")?,
        note: r.try_get("note")?,
        recorded_by: r.try_get("recorded_by")?,
        documents_complete_at: r.try_get("documents_complete_at")?,
        email: r.try_get("email")?,
        given_name: r.try_get("given_name")?,
        surname: r.try_get("surname")?,
        account_status: r.try_get("account_status")?,
    })
}
