//! Users and their TOTP pairings.

use sqlx::Row;

use super::{Db, DbError};

stored_state! {
    /// An account's status, stored as text (`users.status`).
    ///
    /// | status | meaning |
    /// | --- | --- |
    /// | `invited` | created by an order or an operator, the invitation not yet accepted |
    /// | `phone_verified` | the invitation's phone code confirmed, the password not yet set |
    /// | `active` | may log in |
    /// | `erased` | the person's data erased (GDPR); the row stays for the ledger |
    pub enum UserStatus {
        Invited = "invited",
        PhoneVerified = "phone_verified",
        Active = "active",
        Erased = "erased",
    }
}

stored_state! {
    /// What an account is for, stored as text (`users.role`).
    pub enum Role {
        /// A certificate holder.
        Holder = "holder",
        /// An operator of the registration authority.
        Operator = "operator",
    }
}

stored_state! {
    /// A TOTP pairing's status, stored as text (`totp_pairings.status`): `pending` until the first valid code,
    /// then `active`.
    pub enum TotpStatus {
        Pending = "pending",
        Active = "active",
    }
}

stored_state! {
    /// Whether login asks for the TOTP code, stored as text (`users.two_factor`).
    pub enum TwoFactorSetting {
        On = "on",
        /// Never asked: operator-made test holders.
        Off = "off",
        /// Not set up yet.
        Pending = "pending",
    }
}

stored_state! {
    /// How far the 2FA set-up is postponed, stored as text (`users.two_factor_postponed`).
    pub enum Postponement {
        /// Until `two_factor_until`.
        Date = "date",
        /// Until the next login.
        NextLogin = "next_login",
        Never = "never",
    }
}

/// A user account as stored.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub given_name: String,
    pub surname: String,
    pub phone: String,
    pub password_hash: String,
    pub role: Role,
    pub status: UserStatus,
    pub two_factor: TwoFactorSetting,
    pub created_at: i64,
    /// `ro` or `en`.
    pub lang: String,
    /// When set up is postponed.
    pub two_factor_postponed: Option<Postponement>,
    pub two_factor_until: Option<i64>,
}

/// A TOTP pairing; the seed is wrapped by the HSM's AES key and base64-encoded.
#[derive(Debug, Clone)]
pub struct TotpPairing {
    pub user_id: String,
    pub seed_wrapped: String,
    pub algorithm: String,
    pub digits: i64,
    pub period: i64,
    pub status: TotpStatus,
    pub last_used_step: i64,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
}

/// Inserts a user; a taken e-mail is a [`DbError::Conflict`].
pub async fn insert<'e, E>(exec: E, u: &User) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let r = sqlx::query(
        "INSERT INTO users (id, email, given_name, surname, phone, password_hash, role, status, two_factor, created_at, lang)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&u.id)
    .bind(u.email.to_lowercase())
    .bind(&u.given_name)
    .bind(&u.surname)
    .bind(&u.phone)
    .bind(&u.password_hash)
    .bind(u.role.as_str())
    .bind(u.status.as_str())
    .bind(u.two_factor.as_str())
    .bind(u.created_at)
    .bind(&u.lang)
    .execute(exec)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if DbError::is_unique_violation(&e) => Err(DbError::Conflict(format!("an account for {}", u.email))),
        Err(e) => Err(e.into()),
    }
}

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User, DbError> {
    Ok(User {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        given_name: r.try_get("given_name")?,
        surname: r.try_get("surname")?,
        phone: r.try_get("phone")?,
        password_hash: r.try_get("password_hash")?,
        role: Role::stored(&r.try_get::<String, _>("role")?, "users.role")?,
        status: UserStatus::stored(&r.try_get::<String, _>("status")?, "users.status")?,
        two_factor: TwoFactorSetting::stored(&r.try_get::<String, _>("two_factor")?, "users.two_factor")?,
        created_at: r.try_get("created_at")?,
        lang: r.try_get("lang")?,
        two_factor_postponed: r
            .try_get::<Option<String>, _>("two_factor_postponed")?
            .map(|p| Postponement::stored(&p, "users.two_factor_postponed"))
            .transpose()?,
        two_factor_until: r.try_get("two_factor_until")?,
    })
}

const USER_COLUMNS: &str =
    "id, email, given_name, surname, phone, password_hash, role, status, two_factor, created_at, \
                            lang, two_factor_postponed, two_factor_until";

/// The user with this e-mail (compared case-insensitively; e-mails are stored lower-case).
pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>, DbError> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"))
        .bind(email.to_lowercase())
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The (non-erased) user with this phone number.
pub async fn by_phone(db: &Db, phone: &str) -> Result<Option<User>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE phone = $1 AND status <> 'erased'"
    ))
    .bind(phone)
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The user with this id.
pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>, DbError> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// Stores a TOTP pairing (replacing none: a user has at most one).
pub async fn insert_totp<'e, E>(exec: E, p: &TotpPairing, now: i64) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO totp_pairings (user_id, seed_wrapped, algorithm, digits, period, status, created_at, activated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&p.user_id)
    .bind(&p.seed_wrapped)
    .bind(&p.algorithm)
    .bind(p.digits)
    .bind(p.period)
    .bind(p.status.as_str())
    .bind(now)
    .bind(if p.status == TotpStatus::Active {
        Some(now)
    } else {
        None
    })
    .execute(exec)
    .await?;
    Ok(())
}

/// The user's TOTP pairing, if any.
pub async fn totp(db: &Db, user_id: &str) -> Result<Option<TotpPairing>, DbError> {
    let row = sqlx::query(
        "SELECT user_id, seed_wrapped, algorithm, digits, period, status, last_used_step, failed_attempts, locked_until
         FROM totp_pairings WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(TotpPairing {
        user_id: r.try_get("user_id")?,
        seed_wrapped: r.try_get("seed_wrapped")?,
        algorithm: r.try_get("algorithm")?,
        digits: r.try_get("digits")?,
        period: r.try_get("period")?,
        status: TotpStatus::stored(&r.try_get::<String, _>("status")?, "totp_pairings.status")?,
        last_used_step: r.try_get("last_used_step")?,
        failed_attempts: r.try_get("failed_attempts")?,
        locked_until: r.try_get("locked_until")?,
    }))
}
/// Sets a user's phone number (a confirmed change).
pub async fn set_phone(conn: &mut sqlx::AnyConnection, user_id: &str, phone: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET phone = $1 WHERE id = $2")
        .bind(phone)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a user's e-mail address (a confirmed change; stored lower-case); an address taken meanwhile by another
/// account is a [`DbError::Conflict`].
pub async fn set_email(conn: &mut sqlx::AnyConnection, user_id: &str, email: &str) -> Result<(), DbError> {
    let r = sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
        .bind(email.to_lowercase())
        .bind(user_id)
        .execute(conn)
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if DbError::is_unique_violation(&e) => Err(DbError::Conflict(format!("an account for {email}"))),
        Err(e) => Err(e.into()),
    }
}

/// Records that a user acknowledged the privacy notice of `version` at `at`.
pub async fn set_privacy_ack(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    at: i64,
    version: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET privacy_ack_at = $1, privacy_version = $2 WHERE id = $3")
        .bind(at)
        .bind(version)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets the language of a user's e-mails and SMS (`ro` or `en`).
pub async fn set_lang(db: &Db, user_id: &str, lang: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET lang = $1 WHERE id = $2")
        .bind(lang)
        .bind(user_id)
        .execute(db.writer())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_roles_read_back_from_their_stored_names() {
        for s in UserStatus::ALL {
            assert_eq!(UserStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for t in TotpStatus::ALL {
            assert_eq!(TotpStatus::parse(t.as_str()), Some(t));
        }
        assert_eq!(UserStatus::stored("banned", "users.status").ok(), None);
    }
}
