//! The contact form's messages (product rules §14): numbered from the `contact` counter, tied to the account and
//! optionally to one of its orders, open until an operator answers. The answer is the one transition
//! ([`MessageEvent::rule`]), guarded by it.

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
    pub user_id: &'a str,
    pub order_id: Option<&'a str>,
    pub topic: &'a str,
    pub body: &'a str,
}

/// Stores a new message, open.
pub async fn insert(conn: &mut sqlx::AnyConnection, m: &NewMessage<'_>, now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO contact_messages (id, number, user_id, order_id, topic, body, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(m.id)
    .bind(m.number)
    .bind(m.user_id)
    .bind(m.order_id)
    .bind(m.topic)
    .bind(m.body)
    .bind(MessageState::Open.as_str())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A message with its order's number and, in the operators' list, its holder.
pub struct Message {
    pub id: String,
    pub number: i64,
    pub user_id: String,
    pub order_id: Option<String>,
    pub order_number: Option<String>,
    pub topic: String,
    pub body: String,
    pub state: MessageState,
    pub answer: Option<String>,
    pub created_at: i64,
    pub answered_at: Option<i64>,
    /// The holder's e-mail, given name and surname (the operators' list only).
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

/// The open messages, oldest first, at most `limit`, with their holder.
pub async fn open(db: &Db, limit: i64) -> Result<Vec<Message>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, u.email, u.given_name, u.surname FROM contact_messages m
         JOIN users u ON u.id = m.user_id LEFT JOIN orders o ON o.id = m.order_id
         WHERE m.state = $1 ORDER BY m.number LIMIT $2"
    ))
    .bind(MessageState::Open.as_str())
    .bind(limit)
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

/// A message's number and holder, by id.
pub async fn number_and_holder(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<(i64, String)>, DbError> {
    let row = sqlx::query("SELECT number, user_id FROM contact_messages WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row
        .map(|r| Ok::<_, sqlx::Error>((r.try_get("number")?, r.try_get("user_id")?)))
        .transpose()?)
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
