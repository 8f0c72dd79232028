//! Flows, one-time codes, browser sessions, failed logins and consents.

use sqlx::Row;

use super::{Db, DbError};

stored_state! {
    /// A flow's stage, stored as text (`flows.stage`). Each kind of flow walks its own stages to `done`; any open
    /// flow may be `closed` (replaced by a new one, or too many failed steps).
    ///
    /// | kind | stages |
    /// | --- | --- |
    /// | enrolment | `invited` → `phone_code_sent` → `phone_verified` → `done` |
    /// | recovery | `link_sent` → `sms_sent` → `verified` → `done` |
    /// | phone change | `email_sent` → `email_verified` → `sms_sent` → `done` |
    /// | pairing | `sms_sent` → `secret_shown` → `done` |
    pub enum FlowStage {
        Invited = "invited",
        PhoneCodeSent = "phone_code_sent",
        PhoneVerified = "phone_verified",
        LinkSent = "link_sent",
        SmsSent = "sms_sent",
        Verified = "verified",
        EmailSent = "email_sent",
        EmailVerified = "email_verified",
        SecretShown = "secret_shown",
        Done = "done",
        Closed = "closed",
    }
}

impl FlowStage {
    /// Whether the flow may still move: neither done nor closed.
    pub fn is_open(self) -> bool {
        !matches!(self, FlowStage::Done | FlowStage::Closed)
    }
}

/// What moves a flow: each event is one row of the transition table ([`FlowEvent::rule`]). Replacing a flow by a
/// new one of its kind ([`close_flows`]) closes it from any stage but `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEvent {
    /// Enrolment: the SMS code went to the phone number typed again (or went again).
    PhoneCodeSent,
    /// Enrolment: the SMS code was right.
    PhoneVerified,
    /// Enrolment: the password was set; the account is active.
    Enrolled,
    /// Recovery: the SMS code went out (or went again).
    RecoveryCodeSent,
    /// Recovery: the SMS code was right.
    RecoveryVerified,
    /// Recovery: the new password was set.
    Recovered,
    /// Phone change: the e-mail code was right.
    EmailVerified,
    /// Phone change: the SMS code went to the new number.
    NewPhoneCodeSent,
    /// Phone change: the SMS code was right; the number is changed.
    PhoneChanged,
    /// E-mail change: the code sent to the new address and the TOTP code were right; the address is changed.
    EmailChanged,
    /// Pairing: the SMS code was right; the secret was shown, once.
    SecretShown,
    /// Pairing: the app's first code was right.
    Paired,
    /// Pairing: the app's code was wrong too many times.
    PairingFailed,
}

impl FlowEvent {
    /// The transition table: the stages the event applies to, and the stage it leads to.
    pub fn rule(self) -> (&'static [FlowStage], FlowStage) {
        use FlowStage::*;
        match self {
            FlowEvent::PhoneCodeSent => (&[Invited, PhoneCodeSent], PhoneCodeSent),
            FlowEvent::PhoneVerified => (&[PhoneCodeSent], PhoneVerified),
            FlowEvent::Enrolled => (&[PhoneVerified], Done),
            FlowEvent::RecoveryCodeSent => (&[LinkSent, SmsSent], SmsSent),
            FlowEvent::RecoveryVerified => (&[SmsSent], Verified),
            FlowEvent::Recovered => (&[Verified], Done),
            FlowEvent::EmailVerified => (&[EmailSent], EmailVerified),
            FlowEvent::NewPhoneCodeSent => (&[EmailVerified], SmsSent),
            FlowEvent::PhoneChanged => (&[SmsSent], Done),
            FlowEvent::EmailChanged => (&[EmailSent], Done),
            FlowEvent::SecretShown => (&[SmsSent], SecretShown),
            FlowEvent::Paired => (&[SecretShown], Done),
            FlowEvent::PairingFailed => (&[SecretShown], Closed),
        }
    }
}

/// A multi-step flow (enrolment, pairing, recovery, phone change).
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: String,
    pub token_hash: Option<String>,
    pub user_id: String,
    pub kind: String,
    pub stage: FlowStage,
    /// JSON text with the flow's own facts (a new phone number, …).
    pub data: String,
    pub attempts: i64,
    pub expires_at: i64,
}

const FLOW_COLUMNS: &str = "id, token_hash, user_id, kind, stage, data, attempts, expires_at";

fn flow_from_row(r: &sqlx::any::AnyRow) -> Result<Flow, DbError> {
    Ok(Flow {
        id: r.try_get("id")?,
        token_hash: r.try_get("token_hash")?,
        user_id: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        stage: FlowStage::stored(&r.try_get::<String, _>("stage")?, "flows.stage")?,
        data: r.try_get("data")?,
        attempts: r.try_get("attempts")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// Starts a flow.
pub async fn insert_flow<'e, E>(exec: E, f: &Flow, now: i64) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO flows (id, token_hash, user_id, kind, stage, data, attempts, expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8)",
    )
    .bind(&f.id)
    .bind(&f.token_hash)
    .bind(&f.user_id)
    .bind(&f.kind)
    .bind(f.stage.as_str())
    .bind(&f.data)
    .bind(f.expires_at)
    .bind(now)
    .execute(exec)
    .await?;
    Ok(())
}

/// The flow reached by a link token's hash.
pub async fn flow_by_token(db: &Db, token_hash: &str) -> Result<Option<Flow>, DbError> {
    let row = sqlx::query(&format!("SELECT {FLOW_COLUMNS} FROM flows WHERE token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(db.writer())
        .await?;
    row.as_ref().map(flow_from_row).transpose()
}

/// The user's newest flow of a kind.
pub async fn latest_flow(db: &Db, user_id: &str, kind: &str) -> Result<Option<Flow>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {FLOW_COLUMNS} FROM flows WHERE user_id = $1 AND kind = $2 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(user_id)
    .bind(kind)
    .fetch_optional(db.writer())
    .await?;
    row.as_ref().map(flow_from_row).transpose()
}

/// Moves a flow by `event` (the one transition table, [`FlowEvent::rule`]), storing `data` when given; false when
/// the event does not apply to the flow's stage (another request moved it).
pub async fn advance_flow<'e, E>(
    exec: E,
    id: &str,
    event: FlowEvent,
    data: Option<&str>,
    now: i64,
) -> Result<bool, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let (from, to) = event.rule();
    let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 5)).collect();
    let sql = format!(
        "UPDATE flows SET stage = $1, data = COALESCE($2, data), updated_at = $3 WHERE id = $4 AND stage IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(to.as_str()).bind(data).bind(now).bind(id);
    for f in from {
        q = q.bind(f.as_str());
    }
    Ok(q.execute(exec).await?.rows_affected() == 1)
}

/// Counts a failed step; returns the failures so far.
pub async fn fail_flow(db: &Db, id: &str) -> Result<i64, DbError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("UPDATE flows SET attempts = attempts + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let r = sqlx::query("SELECT attempts FROM flows WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.try_get("attempts")?)
}

/// Ends every open flow of a kind for a user (a new one replaces them).
pub async fn close_flows<'e, E>(exec: E, user_id: &str, kind: &str, now: i64) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE flows SET stage = 'closed', updated_at = $1 WHERE user_id = $2 AND kind = $3 AND stage <> 'done'",
    )
    .bind(now)
    .bind(user_id)
    .bind(kind)
    .execute(exec)
    .await?;
    Ok(())
}

/// A one-time code as stored.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub id: String,
    pub flow_id: String,
    pub user_id: String,
    pub purpose: String,
    pub destination: String,
    pub code_hash: String,
    pub attempts: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

/// Stores a code.
pub async fn insert_code<'e, E>(exec: E, c: &CodeRow) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO one_time_codes (id, flow_id, user_id, purpose, destination, code_hash, attempts, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
    )
    .bind(&c.id)
    .bind(&c.flow_id)
    .bind(&c.user_id)
    .bind(&c.purpose)
    .bind(&c.destination)
    .bind(&c.code_hash)
    .bind(c.expires_at)
    .bind(c.created_at)
    .execute(exec)
    .await?;
    Ok(())
}

const CODE_COLUMNS: &str =
    "id, flow_id, user_id, purpose, destination, code_hash, attempts, expires_at, used_at, created_at";

fn code_from_row(r: &sqlx::any::AnyRow) -> Result<CodeRow, DbError> {
    Ok(CodeRow {
        id: r.try_get("id")?,
        flow_id: r.try_get("flow_id")?,
        user_id: r.try_get("user_id")?,
        purpose: r.try_get("purpose")?,
        destination: r.try_get("destination")?,
        code_hash: r.try_get("code_hash")?,
        attempts: r.try_get("attempts")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The newest code sent to the user for a purpose (for the resend cool-down).
pub async fn last_code_sent(db: &Db, user_id: &str, purpose: &str) -> Result<Option<CodeRow>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {CODE_COLUMNS} FROM one_time_codes WHERE user_id = $1 AND purpose = $2 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(user_id)
    .bind(purpose)
    .fetch_optional(db.writer())
    .await?;
    row.as_ref().map(code_from_row).transpose()
}

/// The newest code of a flow for a purpose.
pub async fn flow_code(db: &Db, flow_id: &str, purpose: &str) -> Result<Option<CodeRow>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {CODE_COLUMNS} FROM one_time_codes WHERE flow_id = $1 AND purpose = $2 ORDER BY created_at DESC, id DESC LIMIT 1"
    ))
    .bind(flow_id)
    .bind(purpose)
    .fetch_optional(db.writer())
    .await?;
    row.as_ref().map(code_from_row).transpose()
}

/// Counts a wrong entry, unless the code is already dead or used; returns the attempts after it.
pub async fn fail_code(db: &Db, id: &str, max: i64) -> Result<i64, DbError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query(
        "UPDATE one_time_codes SET attempts = attempts + 1 WHERE id = $1 AND attempts < $2 AND used_at IS NULL",
    )
    .bind(id)
    .bind(max)
    .execute(&mut *tx)
    .await?;
    let r = sqlx::query("SELECT attempts FROM one_time_codes WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.try_get("attempts")?)
}

/// Marks a code used; false if it was used (or killed) meanwhile.
pub async fn use_code(db: &Db, id: &str, max: i64, now: i64) -> Result<bool, DbError> {
    let n = sqlx::query(
        "UPDATE one_time_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND attempts < $3 AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .bind(max)
    .execute(db.writer())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A browser session.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: String,
    pub remember_me: bool,
    pub expires_at: i64,
    pub revoked: bool,
}

/// Stores a session.
pub async fn insert_session(db: &Db, s: &SessionRow, client: &str, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO web_sessions (token_hash, user_id, remember_me, expires_at, revoked, client, created_at)
         VALUES ($1, $2, $3, $4, 0, $5, $6)",
    )
    .bind(&s.token_hash)
    .bind(&s.user_id)
    .bind(i64::from(s.remember_me))
    .bind(s.expires_at)
    .bind(client)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The session with this token hash.
pub async fn session(db: &Db, token_hash: &str) -> Result<Option<SessionRow>, DbError> {
    let row = sqlx::query(
        "SELECT token_hash, user_id, remember_me, expires_at, revoked FROM web_sessions WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(SessionRow {
        token_hash: r.try_get("token_hash")?,
        user_id: r.try_get("user_id")?,
        remember_me: r.try_get::<i64, _>("remember_me")? != 0,
        expires_at: r.try_get("expires_at")?,
        revoked: r.try_get::<i64, _>("revoked")? != 0,
    }))
}

/// Ends one session.
pub async fn revoke_session(db: &Db, token_hash: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE web_sessions SET revoked = 1 WHERE token_hash = $1")
        .bind(token_hash)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Ends every session of a user, and every CSC token too (a password or phone change, 2FA turned on).
pub async fn revoke_all_sessions(conn: &mut sqlx::AnyConnection, user_id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE web_sessions SET revoked = 1 WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

stored_state! {
    /// What a consent is about, stored as text (`consents.kind`).
    pub enum ConsentKind {
        /// The one-time "allow access to protected resources" screen.
        Access = "access",
        /// The privacy notice, read to the end and acknowledged.
        PrivacyNotice = "privacy_notice",
        /// The newsletter: the one consent that can be withdrawn.
        Marketing = "marketing",
        /// The remote-signature terms, ticked on an order (version: of `docs/trust/terms/`).
        Terms = "terms",
        /// The order conditions with the waiver of the right of withdrawal, ticked on an order (version: of
        /// `docs/trust/order-conditions/`).
        OrderConditions = "order_conditions",
        /// An application allowed through OAuth 2.0 (its version: the client's id and the scope); recorded by the
        /// consent page, never asked for through the consents API.
        Application = "application",
    }
}

/// Records a consent or acknowledgement.
pub async fn insert_consent<'e, E>(
    exec: E,
    user_id: &str,
    kind: ConsentKind,
    version: &str,
    granted: bool,
    client: &str,
    now: i64,
) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO consents (id, user_id, kind, version, granted, client, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(user_id)
    .bind(kind.as_str())
    .bind(version)
    .bind(i64::from(granted))
    .bind(client)
    .bind(now)
    .execute(exec)
    .await?;
    Ok(())
}

/// Updates a user's status.
pub async fn set_user_status<'e, E>(exec: E, user_id: &str, status: super::users::UserStatus) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE users SET status = $1 WHERE id = $2")
        .bind(status.as_str())
        .bind(user_id)
        .execute(exec)
        .await?;
    Ok(())
}

/// Sets a user's password hash.
pub async fn set_password<'e, E>(exec: E, user_id: &str, hash: &str) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(user_id)
        .execute(exec)
        .await?;
    Ok(())
}

/// Sets the 2FA state and postponement of a user.
pub async fn set_two_factor<'e, E>(
    exec: E,
    user_id: &str,
    two_factor: super::users::TwoFactorSetting,
    postponed: Option<super::users::Postponement>,
    until: Option<i64>,
) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE users SET two_factor = $1, two_factor_postponed = $2, two_factor_until = $3 WHERE id = $4")
        .bind(two_factor.as_str())
        .bind(postponed.map(|p| p.as_str()))
        .bind(until)
        .bind(user_id)
        .execute(exec)
        .await?;
    Ok(())
}

/// Replaces a user's TOTP pairing by a pending one (the old seed stops working at once).
pub async fn replace_pending_totp(
    conn: &mut sqlx::AnyConnection,
    p: &super::users::TotpPairing,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM totp_pairings WHERE user_id = $1")
        .bind(&p.user_id)
        .execute(&mut *conn)
        .await?;
    super::users::insert_totp(&mut *conn, p, now).await
}

/// Activates the pending pairing at its first valid code's step.
pub async fn activate_totp<'e, E>(exec: E, user_id: &str, step: i64, now: i64) -> Result<bool, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let n = sqlx::query(
        "UPDATE totp_pairings SET status = 'active', activated_at = $1, last_used_step = $2, failed_attempts = 0,
                locked_until = NULL
         WHERE user_id = $3 AND status = 'pending'",
    )
    .bind(now)
    .bind(step)
    .bind(user_id)
    .execute(exec)
    .await?
    .rows_affected();
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [FlowEvent; 12] = [
        FlowEvent::PhoneCodeSent,
        FlowEvent::PhoneVerified,
        FlowEvent::Enrolled,
        FlowEvent::RecoveryCodeSent,
        FlowEvent::RecoveryVerified,
        FlowEvent::Recovered,
        FlowEvent::EmailVerified,
        FlowEvent::NewPhoneCodeSent,
        FlowEvent::PhoneChanged,
        FlowEvent::SecretShown,
        FlowEvent::Paired,
        FlowEvent::PairingFailed,
    ];

    #[test]
    fn every_stage_reads_back_from_its_stored_name() {
        for s in FlowStage::ALL {
            assert_eq!(FlowStage::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(FlowStage::parse("paused"), None);
    }

    #[test]
    fn a_finished_flow_never_moves_and_every_open_stage_can_be_left() {
        for s in FlowStage::ALL {
            let leaves = EVENTS.iter().any(|e| e.rule().0.contains(&s) && e.rule().1 != s);
            assert_eq!(leaves, s.is_open(), "{s}");
        }
    }
}
