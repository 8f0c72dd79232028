//! The contact form (product rules §14): a logged-in holder writes about a data change, a lost e-mail, a complaint
//! or anything else, optionally about one of their own orders. Each message gets a number the holder can quote
//! (`counters` row `contact`) and a copy by e-mail; an operator answers it once, which closes it, is audited and is
//! e-mailed to the holder. Every e-mail's footer links to the page of this form (`/contact`).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Services;
use crate::clock::{rfc3339, Clock};
use crate::db::contact::MessageState;
use crate::db::users::{self, User};
use crate::db::{self, DbError};
use crate::i18n::Text;
use crate::notify::Template;
use crate::text;

/// The topics a message may have, in the order the form offers them.
pub const TOPICS: &[&str] = &["data_change", "lost_email", "complaint", "other"];

/// The fewest characters a message may have (a message shorter than this cannot say what is wrong).
pub const MESSAGE_MIN_CHARS: usize = 10;

/// The most characters a message or an answer may have.
pub const MESSAGE_MAX_CHARS: usize = 5000;

/// The most messages one account may send within [`RATE_WINDOW_SECS`] (against spam and accidental repeats).
pub const MESSAGES_PER_WINDOW: i64 = 5;

/// The window of [`MESSAGES_PER_WINDOW`]: an hour.
pub const RATE_WINDOW_SECS: i64 = 3600;

/// Most messages listed at once (a holder's own, or the operator's open ones).
const LIST_LIMIT: i64 = 500;

/// What went wrong with a contact message.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error("{0}")]
    Invalid(Text),
    #[error("{0}")]
    NotFound(Text),
    #[error("{0}")]
    Conflict(Text),
    #[error("{}", self.text())]
    TooMany { retry_at: i64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ContactError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            ContactError::Invalid(t) => t.clone(),
            ContactError::NotFound(t) => t.clone(),
            ContactError::Conflict(t) => t.clone(),
            ContactError::TooMany { retry_at } => text!(
                "error.contact.at_most_messages_hour_can",
                most = MESSAGES_PER_WINDOW,
                retry_at = rfc3339(*retry_at)
            ),
            ContactError::Db(_) => text!("error.http.database_error"),
        }
    }
}

impl From<sqlx::Error> for ContactError {
    fn from(e: sqlx::Error) -> Self {
        ContactError::Db(e.into())
    }
}

/// `POST /api/v1/me/contact`.
#[derive(Debug, Deserialize)]
pub struct NewMessage {
    /// One of [`TOPICS`].
    pub topic: Option<String>,
    /// One of the holder's orders: its id or its registration number.
    pub order_id: Option<String>,
    pub message: Option<String>,
}

/// `POST /api/v1/operator/contact/{id}/answer`.
#[derive(Debug, Deserialize)]
pub struct Answer {
    pub answer: Option<String>,
}

/// A text between the limits, trimmed.
fn text_within(raw: Option<&str>, min: usize, what: &str) -> Result<String, ContactError> {
    let text = raw.unwrap_or_default().trim();
    let n = text.chars().count();
    if n < min || n > MESSAGE_MAX_CHARS {
        let key = format!("error.contact.{what}_must_have_between_and");
        return Err(ContactError::Invalid(text!(key, min, max = MESSAGE_MAX_CHARS)));
    }
    Ok(text.to_owned())
}

/// One of [`TOPICS`].
fn topic_of(raw: Option<&str>) -> Result<&'static str, ContactError> {
    let raw = raw.unwrap_or_default().trim();
    TOPICS
        .iter()
        .copied()
        .find(|t| *t == raw)
        .ok_or_else(|| ContactError::Invalid(crate::text!("error.contact.topic_must_one", topics = TOPICS.join(", "))))
}

/// The order a message is about.
#[derive(Debug, Serialize)]
pub struct OrderRef {
    pub id: String,
    pub registration_number: Option<String>,
}

/// A message just sent, as its sender sees it.
// The fields of these views are in the order of the JSON objects they replaced (alphabetical).
#[derive(Debug, Serialize)]
pub struct SentMessage {
    pub created_at: String,
    pub id: String,
    pub message: String,
    pub number: i64,
    pub order: Option<OrderRef>,
    pub state: MessageState,
    pub topic: &'static str,
}

/// A message with its state and answer; the operators' list names its holder.
#[derive(Debug, Serialize)]
pub struct MessageView {
    pub answer: Option<String>,
    pub answered_at: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
    pub id: String,
    pub message: String,
    pub number: i64,
    pub order: Option<OrderRef>,
    pub state: MessageState,
    pub topic: String,
}

/// The holder who wrote a message, for the operators.
#[derive(Debug, Serialize)]
pub struct Holder {
    pub email: String,
    pub id: String,
    pub name: String,
}

/// A list of messages.
#[derive(Debug, Serialize)]
pub struct Messages {
    pub messages: Vec<MessageView>,
}

/// An order a message may be about.
#[derive(Debug, Serialize)]
pub struct OrderChoice {
    pub created_at: String,
    pub id: String,
    pub registration_number: String,
}

/// The orders a holder's message may be about.
#[derive(Debug, Serialize)]
pub struct OrderChoices {
    pub orders: Vec<OrderChoice>,
}

/// A message just answered.
#[derive(Debug, Serialize)]
pub struct Answered {
    pub answered_at: String,
    pub id: String,
    pub number: i64,
    pub state: MessageState,
}

/// Sends a message: checks it, numbers it, stores it with a copy e-mailed to the holder, audits it.
pub async fn send(state: &Services, user: &User, req: NewMessage, client: &str) -> Result<SentMessage, ContactError> {
    let topic = topic_of(req.topic.as_deref())?;
    let body = text_within(req.message.as_deref(), MESSAGE_MIN_CHARS, "message")?;
    let now = state.clock.now();
    let mut tx = state.db.writer().begin().await?;
    let order = match req.order_id.as_deref().map(str::trim).filter(|o| !o.is_empty()) {
        None => None,
        Some(o) => Some(
            db::contact::order_of_user(&mut tx, o, &user.id)
                .await?
                .ok_or_else(|| ContactError::NotFound(crate::text!("error.order.no_such_order")))?,
        ),
    };
    // The counter's row lock orders concurrent senders (PostgreSQL), so the count below sees every message
    // committed before this one; on SQLite the single writer does the same. A refusal rolls the number back.
    let number = db::orders::next_in_sequence(&mut tx, "contact").await?;
    let recent = db::contact::sent_since(&mut tx, &user.id, now - RATE_WINDOW_SECS).await?;
    if recent.len() as i64 >= MESSAGES_PER_WINDOW {
        let oldest = recent[recent.len() - MESSAGES_PER_WINDOW as usize];
        return Err(ContactError::TooMany {
            retry_at: oldest + RATE_WINDOW_SECS,
        });
    }
    let id = uuid::Uuid::now_v7().to_string();
    let message = db::contact::NewMessage {
        id: &id,
        number,
        user_id: &user.id,
        order_id: order.as_ref().map(|(id, _)| id.as_str()),
        topic,
        body: &body,
    };
    db::contact::insert(&mut tx, &message, now).await?;
    let link = format!("{}/contact", state.ca.public_base());
    crate::notify::tell(
        &mut tx,
        state.clock.as_ref(),
        state.ca.public_base(),
        user,
        Template::ContactReceived {
            number,
            topic,
            order: order.as_ref().map(|(_, n)| n.as_str()),
            message: &body,
            link: &link,
        },
        "contact_received",
    )
    .await?;
    let actor = format!("user:{}", user.id);
    let audit = crate::audit::row(
        state.clock.as_ref(),
        &crate::audit::Event {
            actor: &actor,
            action: "contact.message",
            target: &id,
            outcome: "ok",
            client,
            details: json!({ "number": number, "topic": topic, "order": order.as_ref().map(|(_, n)| n) }),
        },
    );
    crate::db::audit::insert(&mut *tx, &audit).await?;
    tx.commit().await?;
    Ok(SentMessage {
        id,
        number,
        topic,
        order: order.map(|(id, n)| OrderRef {
            id,
            registration_number: Some(n),
        }),
        message: body,
        state: MessageState::Open,
        created_at: rfc3339(now),
    })
}

fn message_view(m: db::contact::Message) -> MessageView {
    let holder = m.holder.map(|(email, given, surname)| Holder {
        email,
        id: m.user_id,
        name: format!("{given} {surname}"),
    });
    MessageView {
        order: m.order_id.map(|id| OrderRef {
            id,
            registration_number: m.order_number,
        }),
        id: m.id,
        number: m.number,
        topic: m.topic,
        message: m.body,
        state: m.state,
        answer: m.answer,
        created_at: rfc3339(m.created_at),
        answered_at: m.answered_at.map(rfc3339),
        holder,
    }
}

/// `GET /api/v1/me/contact`: the holder's own messages, newest first, with their state and answer.
pub async fn mine(state: &Services, user: &User) -> Result<Messages, ContactError> {
    let messages = db::contact::of_user(&state.db, &user.id, LIST_LIMIT)
        .await?
        .into_iter()
        .map(message_view)
        .collect();
    Ok(Messages { messages })
}

/// The holder's orders a message may be about (newest first): id, registration number, date.
pub async fn orders_of(state: &Services, user: &User) -> Result<OrderChoices, ContactError> {
    let orders = db::contact::orders_of(&state.db, &user.id, LIST_LIMIT)
        .await?
        .into_iter()
        .map(|(id, registration_number, at)| OrderChoice {
            id,
            registration_number,
            created_at: rfc3339(at),
        })
        .collect();
    Ok(OrderChoices { orders })
}

/// `GET /api/v1/operator/contact`: the open messages, oldest first, with their holder.
pub async fn open_messages(state: &Services) -> Result<Messages, ContactError> {
    let messages = db::contact::open(&state.db, LIST_LIMIT)
        .await?
        .into_iter()
        .map(message_view)
        .collect();
    Ok(Messages { messages })
}

/// An operator answers an open message: it is closed with the answer, the holder is e-mailed, the answer is
/// audited (its digest and length, not its text).
pub async fn answer(
    state: &Services,
    id: &str,
    req: Answer,
    operator: &User,
    client: &str,
) -> Result<Answered, ContactError> {
    let text = text_within(req.answer.as_deref(), 1, "answer")?;
    let now = state.clock.now();
    let actor = format!("operator:{}", operator.id);
    let mut tx = state.db.writer().begin().await?;
    let (number, holder_id) = db::contact::number_and_holder(&mut tx, id)
        .await?
        .ok_or_else(|| ContactError::NotFound(crate::text!("error.contact.no_such_message")))?;
    if !db::contact::answer(&mut tx, id, &text, &actor, now).await? {
        return Err(ContactError::Conflict(crate::text!(
            "error.contact.message_already_answered",
            number
        )));
    }
    let holder = users::by_id(&state.db, &holder_id)
        .await?
        .ok_or_else(|| ContactError::NotFound(crate::text!("error.contact.no_such_message")))?;
    let link = format!("{}/contact", state.ca.public_base());
    crate::notify::tell(
        &mut tx,
        state.clock.as_ref(),
        state.ca.public_base(),
        &holder,
        Template::ContactAnswered {
            number,
            answer: &text,
            link: &link,
        },
        "contact_answered",
    )
    .await?;
    let digest = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(text.as_bytes()))
    };
    let audit = crate::audit::row(
        state.clock.as_ref(),
        &crate::audit::Event {
            actor: &actor,
            action: "contact.answer",
            target: id,
            outcome: "ok",
            client,
            details: json!({
                "number": number,
                "holder": holder_id,
                "answer_sha256": digest,
                "answer_chars": text.chars().count(),
            }),
        },
    );
    crate::db::audit::insert(&mut *tx, &audit).await?;
    tx.commit().await?;
    Ok(Answered {
        id: id.to_owned(),
        number,
        state: MessageState::Answered,
        answered_at: rfc3339(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_held_to_their_length_limits() {
        assert!(text_within(Some("  exactly 10 "), MESSAGE_MIN_CHARS, "message").is_ok());
        assert!(text_within(Some("short"), MESSAGE_MIN_CHARS, "message").is_err());
        assert!(text_within(None, 1, "answer").is_err());
        let long = "ă".repeat(MESSAGE_MAX_CHARS);
        assert!(text_within(Some(&long), MESSAGE_MIN_CHARS, "message").is_ok());
        assert!(text_within(Some(&format!("{long}x")), MESSAGE_MIN_CHARS, "message").is_err());
    }

    #[test]
    fn every_refusal_has_a_romanian_text() {
        use crate::i18n::Lang;
        let refusals = [
            text_within(None, MESSAGE_MIN_CHARS, "message").unwrap_err(),
            text_within(None, 1, "answer").unwrap_err(),
            topic_of(Some("billing")).unwrap_err(),
            ContactError::TooMany {
                retry_at: 1_772_000_000,
            },
            ContactError::NotFound(crate::text!("error.contact.no_such_message")),
            ContactError::NotFound(crate::text!("error.order.no_such_order")),
            ContactError::Conflict(crate::text!("error.contact.message_already_answered", number = 7)),
        ];
        for e in &refusals {
            let en = e.to_string();
            let ro = e.text().render(Lang::Ro);
            assert_ne!(ro, en, "no Romanian text for {en}");
        }
    }
}
