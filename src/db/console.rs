//! The operators' console lists: the newest accounts, active credentials and orders, at most [`LIMIT`] each.

use sqlx::Row;

use super::orders::{stored_state, OrderState};
use super::users::{Role, UserStatus};
use super::{Db, DbError};

/// The most rows a console list shows.
pub const LIMIT: i64 = 500;

/// An account as the console lists it.
pub struct UserLine {
    pub id: String,
    pub email: String,
    pub given_name: String,
    pub surname: String,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: i64,
    /// The end of a ban, if one was ever set.
    pub banned_until: Option<i64>,
}

/// The newest accounts.
pub async fn users(db: &Db) -> Result<Vec<UserLine>, DbError> {
    let rows = sqlx::query(
        "SELECT u.id, u.email, u.given_name, u.surname, u.role, u.status, u.created_at, b.until AS banned_until
         FROM users u LEFT JOIN user_bans b ON b.user_id = u.id ORDER BY u.created_at DESC, u.id LIMIT $1",
    )
    .bind(LIMIT)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(UserLine {
                id: r.try_get("id")?,
                email: r.try_get("email")?,
                given_name: r.try_get("given_name")?,
                surname: r.try_get("surname")?,
                role: Role::stored(&r.try_get::<String, _>("role")?, "users.role")?,
                status: UserStatus::stored(&r.try_get::<String, _>("status")?, "users.status")?,
                created_at: r.try_get("created_at")?,
                banned_until: r.try_get("banned_until")?,
            })
        })
        .collect()
}

/// An active credential as the console lists it, with its holder.
pub struct CredentialLine {
    pub id: String,
    pub cert_serial: String,
    pub email: String,
    pub given_name: String,
    pub surname: String,
    pub not_after: i64,
}

/// The newest active credentials.
pub async fn active_credentials(db: &Db) -> Result<Vec<CredentialLine>, DbError> {
    let rows = sqlx::query(
        "SELECT c.id, c.cert_serial, u.email, u.given_name, u.surname, t.not_after
         FROM credentials c JOIN users u ON u.id = c.user_id JOIN certificates t ON t.serial = c.cert_serial
         WHERE c.status = 'active' ORDER BY c.created_at DESC, c.id LIMIT $1",
    )
    .bind(LIMIT)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(CredentialLine {
                id: r.try_get("id")?,
                cert_serial: r.try_get("cert_serial")?,
                email: r.try_get("email")?,
                given_name: r.try_get("given_name")?,
                surname: r.try_get("surname")?,
                not_after: r.try_get("not_after")?,
            })
        })
        .collect()
}

/// An order as the console lists it, with its holder's e-mail.
pub struct OrderLine {
    pub id: String,
    pub registration_number: String,
    pub kind: String,
    pub state: OrderState,
    pub frozen: bool,
    pub total_ron_bani: i64,
    pub invoice_number: Option<String>,
    pub created_at: i64,
    pub email: String,
}

/// The newest orders.
pub async fn orders(db: &Db) -> Result<Vec<OrderLine>, DbError> {
    let rows = sqlx::query(
        "SELECT o.id, o.registration_number, o.kind, o.state, o.frozen, o.total_ron_bani, o.invoice_number,
                o.created_at, u.email
         FROM orders o JOIN users u ON u.id = o.user_id ORDER BY o.created_at DESC, o.id LIMIT $1",
    )
    .bind(LIMIT)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OrderLine {
                id: r.try_get("id")?,
                registration_number: r.try_get("registration_number")?,
                kind: r.try_get("kind")?,
                state: stored_state(&r.try_get::<String, _>("state")?)?,
                frozen: r.try_get::<i64, _>("frozen")? != 0,
                total_ron_bani: r.try_get("total_ron_bani")?,
                invoice_number: r.try_get("invoice_number")?,
                created_at: r.try_get("created_at")?,
                email: r.try_get("email")?,
            })
        })
        .collect()
}
