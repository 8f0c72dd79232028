//! Identification (product rules §4, §10): video identification sessions, their states and the one table of
//! their transitions, the identities operators accepted, and bans. Every change of `identity_sessions.state` is a
//! function here guarded by its [`SessionEvent`]'s row of [`SessionEvent::rule`]; a session that another request
//! or instance moved first is left alone (`false`).

use sqlx::Row;

use super::{Db, DbError};

stored_state! {
    /// An identification session's state, stored as text in its snake_case name.
    ///
    /// | state | meaning | next |
    /// | --- | --- | --- |
    /// | `started` | a link was sent; the holder has not finished | under review, returned (interrupted), superseded, rejected (fake data elsewhere) |
    /// | `under_review` | the provider reported a completed session; at an operator | accepted, returned, rejected |
    /// | `accepted` | the identity is recorded for the certificate | – |
    /// | `returned` | to be completed in a new session of the same order | – |
    /// | `rejected` | a negative verdict (resubmission makes a new session) | – |
    /// | `superseded` | a newer link of the same order replaced it | – |
    pub enum SessionState {
        Started = "started",
        UnderReview = "under_review",
        Accepted = "accepted",
        Returned = "returned",
        Rejected = "rejected",
        Superseded = "superseded",
    }
}

use SessionState::*;

/// What moves a session: each event is one row of the transition table ([`SessionEvent::rule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The provider reported the session completed.
    Complete,
    /// The provider reported the session interrupted.
    Interrupt,
    /// A new link of the same order replaced it.
    Supersede,
    /// An operator accepted the identity.
    Accept,
    /// An operator returned it for completion.
    Return,
    /// An operator rejected it.
    Reject,
    /// A fake-data verdict rejects every unfinished session of the holder.
    RejectUnfinished,
}

impl SessionEvent {
    /// The transition table: the states the event applies to, and the state it leads to.
    pub fn rule(self) -> (&'static [SessionState], SessionState) {
        match self {
            SessionEvent::Complete => (&[Started], UnderReview),
            SessionEvent::Interrupt => (&[Started], Returned),
            SessionEvent::Supersede => (&[Started], Superseded),
            SessionEvent::Accept => (&[UnderReview], Accepted),
            SessionEvent::Return => (&[UnderReview], Returned),
            SessionEvent::Reject => (&[UnderReview], Rejected),
            SessionEvent::RejectUnfinished => (&[Started, UnderReview], Rejected),
        }
    }

    fn sql(self) -> (String, String) {
        let (from, to) = self.rule();
        super::state_change(from, to, SessionState::as_str)
    }
}

fn stored(text: &str) -> Result<SessionState, DbError> {
    SessionState::parse(text).ok_or(DbError::Corrupt("identity_sessions.state"))
}

/// A new session of an order.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub order_id: &'a str,
    pub user_id: &'a str,
    pub attempt: i64,
    /// The hash of the link's secret.
    pub link_hash: &'a str,
    pub link_expires_at: i64,
}

/// Inserts a started session.
pub async fn create(conn: &mut sqlx::AnyConnection, s: &NewSession<'_>, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO identity_sessions (id, order_id, user_id, state, attempt, link_hash, link_expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(s.id)
    .bind(s.order_id)
    .bind(s.user_id)
    .bind(Started.as_str())
    .bind(s.attempt)
    .bind(s.link_hash)
    .bind(s.link_expires_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The highest attempt number of an order's sessions (0 without any).
pub async fn last_attempt(conn: &mut sqlx::AnyConnection, order_id: &str) -> Result<i64, DbError> {
    Ok(
        sqlx::query("SELECT COALESCE(MAX(attempt), 0) AS a FROM identity_sessions WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(conn)
            .await?
            .try_get("a")?,
    )
}

/// The attempt number of a session.
pub async fn attempt(conn: &mut sqlx::AnyConnection, id: &str) -> Result<i64, DbError> {
    Ok(sqlx::query("SELECT attempt FROM identity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await?
        .try_get("attempt")?)
}

/// [`SessionEvent::Supersede`] of every started session of an order.
pub async fn supersede_started(conn: &mut sqlx::AnyConnection, order_id: &str, now: i64) -> Result<(), DbError> {
    let (to, from) = SessionEvent::Supersede.sql();
    let sql = format!("UPDATE identity_sessions SET {to}, decided_at = $1 WHERE order_id = $2 AND {from}");
    sqlx::query(&sql).bind(now).bind(order_id).execute(conn).await?;
    Ok(())
}

/// The session behind a link: its id, order, state and the link's end.
pub struct Linked {
    pub id: String,
    pub order_id: String,
    pub state: SessionState,
    pub link_expires_at: i64,
}

/// The session whose link's secret hashes to `link_hash`.
pub async fn by_link(db: &Db, link_hash: &str) -> Result<Option<Linked>, DbError> {
    let Some(r) =
        sqlx::query("SELECT id, order_id, state, link_expires_at FROM identity_sessions WHERE link_hash = $1")
            .bind(link_hash)
            .fetch_optional(db.writer())
            .await?
    else {
        return Ok(None);
    };
    Ok(Some(Linked {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        state: stored(&r.try_get::<String, _>("state")?)?,
        link_expires_at: r.try_get("link_expires_at")?,
    }))
}

/// Counts one more session-code SMS for a started session, if it has had fewer than `max` and none since
/// `now - interval_secs`: one conditional UPDATE, so parallel requests (on any instance) cannot exceed either limit.
/// Returns whether it was counted; if not, the session's count and last time.
pub async fn count_sms(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    max: i64,
    interval_secs: i64,
    now: i64,
) -> Result<Result<(), (i64, Option<i64>)>, DbError> {
    let n = sqlx::query(
        "UPDATE identity_sessions SET sms_sent = sms_sent + 1, sms_last_at = $1
         WHERE id = $2 AND state = 'started' AND sms_sent < $3 AND (sms_last_at IS NULL OR sms_last_at <= $4)",
    )
    .bind(now)
    .bind(id)
    .bind(max)
    .bind(now - interval_secs)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 1 {
        return Ok(Ok(()));
    }
    let r = sqlx::query("SELECT sms_sent, sms_last_at FROM identity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await?;
    Ok(Err((r.try_get("sms_sent")?, r.try_get("sms_last_at")?)))
}

/// How many more session-code SMS a session may have.
pub async fn sms_left(conn: &mut sqlx::AnyConnection, id: &str, max: i64) -> Result<i64, DbError> {
    let sent: i64 = sqlx::query_scalar("SELECT sms_sent FROM identity_sessions WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await?;
    Ok((max - sent).max(0))
}

/// [`SessionEvent::Interrupt`], with the reason the holder reads.
pub async fn interrupt(conn: &mut sqlx::AnyConnection, id: &str, reason: &str, now: i64) -> Result<bool, DbError> {
    let (to, from) = SessionEvent::Interrupt.sql();
    let sql = format!("UPDATE identity_sessions SET {to}, reason = $1, decided_at = $2 WHERE id = $3 AND {from}");
    let n = sqlx::query(&sql)
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// The other people whose identification under review or accepted names the same document or personal code.
pub async fn other_holders_of<'e, E>(
    exec: E,
    user_id: &str,
    document_key: &str,
    personal_key: Option<&str>,
) -> Result<Vec<String>, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT DISTINCT user_id FROM identity_sessions
         WHERE user_id <> $1 AND state IN ($2, $3) AND (document_key = $4 OR personal_key = $5)",
    )
    .bind(user_id)
    .bind(UnderReview.as_str())
    .bind(Accepted.as_str())
    .bind(document_key)
    .bind(personal_key.unwrap_or("-"))
    .fetch_all(exec)
    .await?;
    Ok(rows.iter().map(|r| r.try_get("user_id")).collect::<Result<_, _>>()?)
}

/// What a completed session reported.
pub struct Completed<'a> {
    /// The document's data (JSON).
    pub document: &'a str,
    pub document_key: &'a str,
    pub personal_key: Option<&'a str>,
    /// The consents given (JSON).
    pub consents: &'a str,
    pub phone: &'a str,
    /// Whether the document is already another person's.
    pub flagged: bool,
}

/// [`SessionEvent::Complete`], with what the session reported.
pub async fn complete(conn: &mut sqlx::AnyConnection, id: &str, c: &Completed<'_>, now: i64) -> Result<bool, DbError> {
    let (to, from) = SessionEvent::Complete.sql();
    let sql = format!(
        "UPDATE identity_sessions SET {to}, document = $1, document_key = $2, personal_key = $3, consents = $4,
            phone = $5, flagged = $6, submitted_at = $7
         WHERE id = $8 AND {from}"
    );
    let n = sqlx::query(&sql)
        .bind(c.document)
        .bind(c.document_key)
        .bind(c.personal_key)
        .bind(c.consents)
        .bind(c.phone)
        .bind(i64::from(c.flagged))
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// A session as an operator reviews it.
pub struct Reviewed {
    pub order_id: String,
    pub state: SessionState,
    pub attempt: i64,
    /// The document's data (JSON), if reported.
    pub document: Option<String>,
    pub phone: Option<String>,
}

/// A session by id, for review.
pub async fn for_review(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<Reviewed>, DbError> {
    let Some(r) = sqlx::query("SELECT order_id, state, attempt, document, phone FROM identity_sessions WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Reviewed {
        order_id: r.try_get("order_id")?,
        state: stored(&r.try_get::<String, _>("state")?)?,
        attempt: r.try_get("attempt")?,
        document: r.try_get("document")?,
        phone: r.try_get("phone")?,
    }))
}

/// An operator's verdict on a session under review: [`SessionEvent::Accept`], [`SessionEvent::Return`] or
/// [`SessionEvent::Reject`], with the reason and the reviewer.
pub async fn decide(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    event: SessionEvent,
    reason: Option<&str>,
    reviewer: &str,
    now: i64,
) -> Result<bool, DbError> {
    let (to, from) = event.sql();
    let sql = format!(
        "UPDATE identity_sessions SET {to}, reason = $1, reviewer = $2, decided_at = $3 WHERE id = $4 AND {from}"
    );
    let q = sqlx::query(&sql).bind(reason).bind(reviewer).bind(now).bind(id);
    Ok(q.execute(conn).await?.rows_affected() == 1)
}

/// Marks a session's data as fake or forged: it can never be resubmitted.
pub async fn mark_fake(conn: &mut sqlx::AnyConnection, id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE identity_sessions SET fake = 1 WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// [`SessionEvent::RejectUnfinished`] of every session of a holder.
pub async fn reject_unfinished_of(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), DbError> {
    let (to, from) = SessionEvent::RejectUnfinished.sql();
    let sql = format!("UPDATE identity_sessions SET {to}, reason = $1, decided_at = $2 WHERE user_id = $3 AND {from}");
    sqlx::query(&sql)
        .bind(reason)
        .bind(now)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Lifts the holds a session raised: the orders of everyone whose identification shares its document or personal
/// code go on.
pub async fn release_holds_raised_by(conn: &mut sqlx::AnyConnection, session_id: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE orders SET frozen = 0 WHERE frozen = 1 AND user_id IN (
            SELECT s.user_id FROM identity_sessions s, identity_sessions me
            WHERE me.id = $1 AND (s.document_key = me.document_key OR s.personal_key = me.personal_key))",
    )
    .bind(session_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The last rejected session of an order: what a resubmission starts from.
pub struct LastRejected {
    pub attempt: i64,
    pub decided_at: Option<i64>,
    pub document: Option<String>,
    pub phone: Option<String>,
    /// Rejected for fake or forged data.
    pub fake: bool,
}

/// The order's latest rejected session.
pub async fn last_rejected(db: &Db, order_id: &str) -> Result<Option<LastRejected>, DbError> {
    let Some(r) = sqlx::query(
        "SELECT attempt, decided_at, document, phone, fake FROM identity_sessions WHERE order_id = $1 AND state = $2
         ORDER BY attempt DESC, decided_at DESC LIMIT 1",
    )
    .bind(order_id)
    .bind(Rejected.as_str())
    .fetch_optional(db.writer())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(LastRejected {
        attempt: r.try_get("attempt")?,
        decided_at: r.try_get("decided_at")?,
        document: r.try_get("document")?,
        phone: r.try_get("phone")?,
        fake: r.try_get::<i64, _>("fake")? != 0,
    }))
}

/// Copies earlier data into a new session, for correction.
pub async fn prefill(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    document: Option<&str>,
    phone: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE identity_sessions SET document = $1, phone = $2 WHERE id = $3")
        .bind(document)
        .bind(phone)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A session in the operators' queue, with its order and holder.
pub struct Queued {
    pub id: String,
    pub order_id: String,
    pub registration_number: String,
    pub kind: String,
    pub state: SessionState,
    pub attempt: i64,
    pub flagged: bool,
    pub email: String,
    pub given_name: String,
    pub surname: String,
    pub account_phone: String,
    pub session_phone: Option<String>,
    /// The document's data (JSON), if reported.
    pub document: Option<String>,
    pub reason: Option<String>,
    pub submitted_at: Option<i64>,
}

/// The sessions in `state` (only the flagged ones with `flagged_only`), flagged first, then oldest first.
pub async fn queue(db: &Db, state: SessionState, flagged_only: bool) -> Result<Vec<Queued>, DbError> {
    let rows = sqlx::query(
        "SELECT s.id, s.order_id, s.state, s.attempt, s.document, s.phone, s.flagged, s.reason, s.submitted_at,
                o.registration_number, o.kind, u.email, u.given_name, u.surname, u.phone AS account_phone
         FROM identity_sessions s JOIN orders o ON o.id = s.order_id JOIN users u ON u.id = s.user_id
         WHERE s.state = $1 AND ($2 = 0 OR s.flagged = 1)
         ORDER BY s.flagged DESC, s.submitted_at, s.id",
    )
    .bind(state.as_str())
    .bind(i64::from(flagged_only))
    .fetch_all(db.writer())
    .await?;
    rows.iter().map(queued).collect()
}

fn queued(r: &sqlx::any::AnyRow) -> Result<Queued, DbError> {
    Ok(Queued {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        registration_number: r.try_get("registration_number")?,
        kind: r.try_get("kind")?,
        state: stored(&r.try_get::<String, _>("state")?)?,
        attempt: r.try_get("attempt")?,
        flagged: r.try_get::<i64, _>("flagged")? != 0,
        email: r.try_get("email")?,
        given_name: r.try_get("given_name")?,
        surname: r.try_get("surname")?,
        account_phone: r.try_get("account_phone")?,
        session_phone: r.try_get("phone")?,
        document: r.try_get("document")?,
        reason: r.try_get("reason")?,
        submitted_at: r.try_get("submitted_at")?,
    })
}

/// The identity an operator accepted: what the holder's next certificate says.
pub struct Identity<'a> {
    pub user_id: &'a str,
    pub given_name: &'a str,
    pub surname: &'a str,
    pub personal_number: Option<&'a str>,
    pub country: &'a str,
    /// The document's data (JSON).
    pub document: &'a str,
    pub phone: Option<&'a str>,
    pub session_id: &'a str,
}

/// Records a holder's accepted identity, replacing an earlier one.
pub async fn record_identity(conn: &mut sqlx::AnyConnection, i: &Identity<'_>, now: i64) -> Result<(), DbError> {
    sqlx::query("DELETE FROM identities WHERE user_id = $1")
        .bind(i.user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO identities (user_id, given_name, surname, personal_number, country, document, phone, session_id, verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(i.user_id)
    .bind(i.given_name)
    .bind(i.surname)
    .bind(i.personal_number)
    .bind(i.country)
    .bind(i.document)
    .bind(i.phone)
    .bind(i.session_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Bans a holder from ordering until `until`, replacing an earlier ban.
pub async fn ban(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    until: i64,
    reason: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM user_bans WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO user_bans (user_id, until, reason, created_at) VALUES ($1, $2, $3, $4)")
        .bind(user_id)
        .bind(until)
        .bind(reason)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// The end of a holder's ban, if one was ever set (it may have passed).
pub async fn ban_end(db: &Db, user_id: &str) -> Result<Option<i64>, DbError> {
    Ok(sqlx::query("SELECT until FROM user_bans WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(db.writer())
        .await?
        .map(|r| r.try_get("until"))
        .transpose()?)
}

/// A holder's accepted identity, as recorded.
pub struct Recorded {
    pub given_name: String,
    pub surname: String,
    pub personal_number: Option<String>,
    pub country: String,
    /// The document's data (JSON).
    pub document: String,
    /// The phone number confirmed during the identification.
    pub phone: Option<String>,
}

/// The identity an operator accepted for a holder, if any.
pub async fn identity_of(db: &Db, user_id: &str) -> Result<Option<Recorded>, DbError> {
    let Some(r) = sqlx::query(
        "SELECT given_name, surname, personal_number, country, document, phone FROM identities WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(db.writer())
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Recorded {
        given_name: r.try_get("given_name")?,
        surname: r.try_get("surname")?,
        personal_number: r.try_get("personal_number")?,
        country: r.try_get("country")?,
        document: r.try_get("document")?,
        phone: r.try_get("phone")?,
    }))
}

/// An operator's correction of a holder's accepted identity: the names, the personal numeric code and the
/// document data (JSON) for the holder's next certificate; the verification time stays that of the identification.
pub async fn correct_identity(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    given_name: &str,
    surname: &str,
    personal_number: Option<&str>,
    document: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE identities SET given_name = $1, surname = $2, personal_number = $3, document = $4 WHERE user_id = $5",
    )
    .bind(given_name)
    .bind(surname)
    .bind(personal_number)
    .bind(document)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes on the holder's account the names of the accepted identity (as on the document) and, when the holder
/// confirmed it, the phone number of the identification.
pub async fn apply_to_account(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    given_name: &str,
    surname: &str,
    phone: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET given_name = $1, surname = $2 WHERE id = $3")
        .bind(given_name)
        .bind(surname)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    if let Some(p) = phone {
        sqlx::query("UPDATE users SET phone = $1 WHERE id = $2")
            .bind(p)
            .bind(user_id)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// An identification an operator recorded outside the video channel (an institution's holder, in person or by
/// courier): stored as an accepted session, so that duplicate documents on other accounts are found the same way.
pub struct RecordedSession<'a> {
    pub id: &'a str,
    pub order_id: &'a str,
    pub user_id: &'a str,
    /// A hash no link has: the session is never opened.
    pub unused_link_hash: &'a str,
    /// The document's data (JSON).
    pub document: &'a str,
    pub document_key: &'a str,
    pub personal_key: Option<&'a str>,
    pub phone: &'a str,
    /// How it was made (`in_person: …`).
    pub reason: &'a str,
    pub reviewer: &'a str,
}

/// Inserts an identification recorded by an operator, accepted at `now`.
pub async fn create_recorded(conn: &mut sqlx::AnyConnection, s: &RecordedSession<'_>, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO identity_sessions (id, order_id, user_id, state, attempt, link_hash, link_expires_at, document,
            document_key, personal_key, phone, reason, reviewer, created_at, submitted_at, decided_at)
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, $10, $11, $12, $6, $6, $6)",
    )
    .bind(s.id)
    .bind(s.order_id)
    .bind(s.user_id)
    .bind(Accepted.as_str())
    .bind(s.unused_link_hash)
    .bind(now)
    .bind(s.document)
    .bind(s.document_key)
    .bind(s.personal_key)
    .bind(s.phone)
    .bind(s.reason)
    .bind(s.reviewer)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_started_or_reviewed_session_moves_and_a_verdict_needs_a_review() {
        let events = [
            SessionEvent::Complete,
            SessionEvent::Interrupt,
            SessionEvent::Supersede,
            SessionEvent::Accept,
            SessionEvent::Return,
            SessionEvent::Reject,
            SessionEvent::RejectUnfinished,
        ];
        for s in SessionState::ALL {
            assert_eq!(SessionState::parse(s.as_str()), Some(s));
            let moves = events.iter().any(|e| e.rule().0.contains(&s));
            assert_eq!(moves, matches!(s, Started | UnderReview), "{s}");
        }
        for verdict in [SessionEvent::Accept, SessionEvent::Return, SessionEvent::Reject] {
            assert_eq!(verdict.rule().0, [UnderReview]);
        }
    }
}
