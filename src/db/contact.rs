//! The contact form's messages (product rules §14): numbered from the `contact` counter, tied to the account and
//! optionally to one of its orders, or written without a login by a named sender (once they typed the code e-mailed
//! to them: until then the message waits in `contact_pending`), open until an operator answers. The answer is the
//! one transition ([`MessageEvent::rule`]), guarded by it.

use sqlx::Row;

use super::{Db, DbError};

stored_state! {
    /// A message's state, stored as text.
    ///
    /// | state | meaning | next |
    /// | --- | --- | --- |
    /// | `open` | sent, waiting for an operator | answered |
    /// | `answered` | an operator answered; the holder was e-mailed | – |
    pub enum MessageState {
        Open = "open",
        Answered = "answered",
    }
}

/// What moves a message: one row of the transition table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageEvent {
    /// An operator answered it.
    Answer,
}

impl MessageEvent {
    /// The transition table: the states the event applies to, and the state it leads to.
    pub fn rule(self) -> (&'static [MessageState], MessageState) {
        match self {
            MessageEvent::Answer => (&[MessageState::Open], MessageState::Answered),
        }
    }
}

/// One of a holder's orders, by its id or its registration number: its id and number.
pub async fn order_of_user(
    conn: &mut sqlx::AnyConnection,
    id_or_number: &str,
    user_id: &str,
) -> Result<Option<(String, String)>, DbError> {
    let row = sqlx::query(
        "SELECT id, registration_number FROM orders WHERE (id = $1 OR registration_number = $1) AND user_id = $2",
    )
    .bind(id_or_number)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(row
        .map(|r| Ok::<_, sqlx::Error>((r.try_get("id")?, r.try_get("registration_number")?)))
        .transpose()?)
}

/// When the holder's messages since `since` were sent, oldest first.
pub async fn sent_since(conn: &mut sqlx::AnyConnection, user_id: &str, since: i64) -> Result<Vec<i64>, DbError> {
    let rows = sqlx::query(
        "SELECT created_at FROM contact_messages WHERE user_id = $1 AND created_at > $2 ORDER BY created_at",
    )
    .bind(user_id)
    .bind(since)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(|r| r.try_get("created_at")).collect::<Result<_, _>>()?)
}

/// A message as sent.
pub struct NewMessage<'a> {
    pub id: &'a str,
    pub number: i64,
    /// The account, or `None` for a message written without a login (then `sender` names who wrote it).
    pub user_id: Option<&'a str>,
    /// Name, e-mail address and language of a sender without a login.
    pub sender: Option<(&'a str, &'a str, &'a str)>,
    pub order_id: Option<&'a str>,
    pub topic: &'a str,
    pub body: &'a str,
}

/// Stores a new message, open.
pub async fn insert(conn: &mut sqlx::AnyConnection, m: &NewMessage<'_>, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO contact_messages (id, number, user_id, order_id, topic, body, state, created_at, sender_name,
                                       sender_email, sender_lang)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(m.id)
    .bind(m.number)
    .bind(m.user_id)
    .bind(m.order_id)
    .bind(m.topic)
    .bind(m.body)
    .bind(MessageState::Open.as_str())
    .bind(now)
    .bind(m.sender.map(|s| s.0))
    .bind(m.sender.map(|s| s.1))
    .bind(m.sender.map(|s| s.2))
    .execute(conn)
    .await?;
    Ok(())
}

/// A message with its order's number and, in the operators' list, its holder.
pub struct Message {
    pub id: String,
    pub number: i64,
    /// The account, `None` for a message written without a login.
    pub user_id: Option<String>,
    pub order_id: Option<String>,
    pub order_number: Option<String>,
    pub topic: String,
    pub body: String,
    pub state: MessageState,
    pub answer: Option<String>,
    pub created_at: i64,
    pub answered_at: Option<i64>,
    /// The holder's (or the sender's) e-mail, given name and surname (the operators' list only).
    pub holder: Option<(String, String, String)>,
}

const COLUMNS: &str = "m.id, m.number, m.user_id, m.order_id, o.registration_number, m.topic, m.body, m.state,
    m.answer, m.created_at, m.answered_at";

fn message(r: &sqlx::any::AnyRow, with_holder: bool) -> Result<Message, DbError> {
    let holder = if with_holder {
        Some((r.try_get("email")?, r.try_get("given_name")?, r.try_get("surname")?))
    } else {
        None
    };
    Ok(Message {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        user_id: r.try_get("user_id")?,
        order_id: r.try_get("order_id")?,
        order_number: r.try_get("registration_number")?,
        topic: r.try_get("topic")?,
        body: r.try_get("body")?,
        state: MessageState::parse(&r.try_get::<String, _>("state")?)
            .ok_or(DbError::Corrupt("contact_messages.state"))?,
        answer: r.try_get("answer")?,
        created_at: r.try_get("created_at")?,
        answered_at: r.try_get("answered_at")?,
        holder,
    })
}

/// A holder's messages, newest first, at most `limit`.
pub async fn of_user(db: &Db, user_id: &str, limit: i64) -> Result<Vec<Message>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contact_messages m LEFT JOIN orders o ON o.id = m.order_id
         WHERE m.user_id = $1 ORDER BY m.number DESC LIMIT $2"
    ))
    .bind(user_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| message(r, false)).collect()
}

/// The open messages, at most `limit`, with their holder or sender: those sent before `late_before` first (their
/// answer is late or nearly so), then the rest, each group oldest first.
pub async fn open(db: &Db, limit: i64, late_before: i64) -> Result<Vec<Message>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, COALESCE(u.email, m.sender_email) AS email, COALESCE(u.given_name, m.sender_name) AS given_name,
                COALESCE(u.surname, '') AS surname FROM contact_messages m
         LEFT JOIN users u ON u.id = m.user_id LEFT JOIN orders o ON o.id = m.order_id
         WHERE m.state = $1
         ORDER BY CASE WHEN m.created_at < $3 THEN 0 ELSE 1 END, m.created_at, m.number LIMIT $2"
    ))
    .bind(MessageState::Open.as_str())
    .bind(limit)
    .bind(late_before)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| message(r, true)).collect()
}

/// A holder's orders a message may be about, newest first, at most `limit`: id, registration number, date.
pub async fn orders_of(db: &Db, user_id: &str, limit: i64) -> Result<Vec<(String, String, i64)>, DbError> {
    let rows = sqlx::query(
        "SELECT id, registration_number, created_at FROM orders WHERE user_id = $1
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("registration_number")?,
                r.try_get("created_at")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

/// Who a message is from: an account, or a sender without one (name, e-mail address, language).
pub enum Author {
    Account(String),
    Sender { name: String, email: String, lang: String },
}

/// A message's number and who wrote it, by id.
pub async fn number_and_holder(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<(i64, Author)>, DbError> {
    let row = sqlx::query(
        "SELECT number, user_id, sender_name, sender_email, sender_lang FROM contact_messages WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let from = match r.try_get::<Option<String>, _>("user_id")? {
        Some(user) => Author::Account(user),
        None => Author::Sender {
            name: r.try_get::<Option<String>, _>("sender_name")?.unwrap_or_default(),
            email: r
                .try_get::<Option<String>, _>("sender_email")?
                .ok_or(DbError::Corrupt("contact_messages.sender_email"))?,
            lang: r.try_get::<Option<String>, _>("sender_lang")?.unwrap_or_default(),
        },
    };
    Ok(Some((r.try_get("number")?, from)))
}

/// The messages confirmed from the sender address `email` since `since` (their times, oldest first).
pub async fn sent_from_address_since(
    conn: &mut sqlx::AnyConnection,
    email: &str,
    since: i64,
) -> Result<Vec<i64>, DbError> {
    let rows = sqlx::query(
        "SELECT created_at FROM contact_messages WHERE sender_email = $1 AND created_at > $2 ORDER BY created_at",
    )
    .bind(email)
    .bind(since)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(|r| r.try_get("created_at")).collect::<Result<_, _>>()?)
}

/// A message written without a login, waiting for its code.
pub struct Pending {
    pub id: String,
    pub token_hash: String,
    pub code_hash: String,
    pub name: String,
    pub email: String,
    pub lang: String,
    pub topic: String,
    pub body: String,
    pub client: String,
    pub attempts: i64,
    pub expires_at: i64,
}

/// Stores a message waiting for its code, inside the caller's transaction.
pub async fn insert_pending(conn: &mut sqlx::AnyConnection, p: &Pending, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO contact_pending (id, token_hash, code_hash, name, email, lang, topic, body, client, attempts,
                                      expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11)",
    )
    .bind(&p.id)
    .bind(&p.token_hash)
    .bind(&p.code_hash)
    .bind(&p.name)
    .bind(&p.email)
    .bind(&p.lang)
    .bind(&p.topic)
    .bind(&p.body)
    .bind(&p.client)
    .bind(p.expires_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The waiting message of a token (by its hash), if it has not expired at `now`.
pub async fn pending(db: &Db, token_hash: &str, now: i64) -> Result<Option<Pending>, DbError> {
    let r = sqlx::query(
        "SELECT id, token_hash, code_hash, name, email, lang, topic, body, client, attempts, expires_at
         FROM contact_pending WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(Pending {
        id: r.try_get("id")?,
        token_hash: r.try_get("token_hash")?,
        code_hash: r.try_get("code_hash")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        lang: r.try_get("lang")?,
        topic: r.try_get("topic")?,
        body: r.try_get("body")?,
        client: r.try_get("client")?,
        attempts: r.try_get("attempts")?,
        expires_at: r.try_get("expires_at")?,
    }))
}

/// Counts one attempt at a waiting message's code, if fewer than `max` were made: false when none is left.
pub async fn count_attempt(db: &Db, id: &str, max: i64) -> Result<bool, DbError> {
    let n = sqlx::query("UPDATE contact_pending SET attempts = attempts + 1 WHERE id = $1 AND attempts < $2")
        .bind(id)
        .bind(max)
        .execute(db.writer())
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// Removes a waiting message (confirmed, or out of attempts); false when it was already gone.
pub async fn delete_pending(conn: &mut sqlx::AnyConnection, id: &str) -> Result<bool, DbError> {
    let n = sqlx::query("DELETE FROM contact_pending WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// [`MessageEvent::Answer`]: closes an open message with its answer; false when it was answered meanwhile.
pub async fn answer(conn: &mut sqlx::AnyConnection, id: &str, text: &str, by: &str, now: i64) -> Result<bool, DbError> {
    let (from, to) = MessageEvent::Answer.rule();
    let (to, from) = super::state_change(from, to, MessageState::as_str);
    let sql = format!(
        "UPDATE contact_messages SET {to}, answer = $1, answered_by = $2, answered_at = $3 WHERE id = $4 AND {from}"
    );
    let q = sqlx::query(&sql).bind(text).bind(by).bind(now).bind(id);
    Ok(q.execute(conn).await?.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_open_message_is_answered_and_an_answer_is_final() {
        assert_eq!(
            MessageEvent::Answer.rule(),
            (&[MessageState::Open][..], MessageState::Answered)
        );
        assert_eq!(MessageState::parse("answered"), Some(MessageState::Answered));
        assert_eq!(MessageState::parse("closed"), None);
    }
}
