//! The contact form (product rules §14): a logged-in holder writes about a data change, a lost e-mail, a complaint
//! or anything else, optionally about one of their own orders. Each message gets a number the holder can quote
//! (`counters` row `contact`) and a copy by e-mail; an operator answers it once, which closes it, is audited and is
//! e-mailed to the holder. Every e-mail's footer links to the page of this form (`/contact`).
//!
//! Someone who cannot log in (a lost phone, a locked account, a data-protection request) writes too: name, e-mail
//! address, topic and message; a code goes to that address and the message is recorded only once the code is
//! typed, so nobody floods the operators from addresses they do not read. Limits: per sender address as the
//! logged-in form's per account, per client address, and the limits on unrequested e-mails (`[limits]`); a
//! refusal is a 429 with `Retry-After`.

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
    TooMany { retry_at: i64, most: i64, now: i64 },
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
            ContactError::TooMany { retry_at, most, .. } => text!(
                "error.contact.at_most_messages_hour_can",
                most = *most,
                retry_at = rfc3339(*retry_at)
            ),
            ContactError::Db(_) => text!("error.http.database_error"),
        }
    }
}

impl ContactError {
    /// Seconds to tell in `Retry-After`, for a refusal by a limit.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ContactError::TooMany { retry_at, now, .. } => Some((*retry_at - *now).max(1) as u64),
            _ => None,
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
    /// Whole days since it was sent.
    pub age_days: i64,
    /// Open for longer than `contact.late_after_days`: shown first to the operators.
    pub late: bool,
}

/// The holder who wrote a message, for the operators; a sender without a login has no id.
#[derive(Debug, Serialize)]
pub struct Holder {
    pub email: String,
    pub id: Option<String>,
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
            most: MESSAGES_PER_WINDOW,
            now,
        });
    }
    let id = uuid::Uuid::now_v7().to_string();
    let message = db::contact::NewMessage {
        id: &id,
        number,
        user_id: Some(&user.id),
        sender: None,
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

fn message_view(m: db::contact::Message, now: i64) -> MessageView {
    let holder = m.holder.map(|(email, given, surname)| Holder {
        email,
        id: m.user_id.clone(),
        name: format!("{given} {surname}").trim().to_owned(),
    });
    let age_days = (now - m.created_at).max(0) / 86_400;
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
        age_days,
        late: false,
    }
}

/// `GET /api/v1/me/contact`: the holder's own messages, newest first, with their state and answer.
pub async fn mine(state: &Services, user: &User) -> Result<Messages, ContactError> {
    let now = state.clock.now();
    let messages = db::contact::of_user(&state.db, &user.id, LIST_LIMIT)
        .await?
        .into_iter()
        .map(|m| message_view(m, now))
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

/// `GET /api/v1/operator/contact`: the open messages with their holder or sender and their age: those older than
/// `contact.late_after_days` first (late), then the rest, each oldest first.
pub async fn open_messages(state: &Services) -> Result<Messages, ContactError> {
    let now = state.clock.now();
    let late_before = now - state.settings.contact.late_after_days * 86_400;
    let messages = db::contact::open(&state.db, LIST_LIMIT, late_before)
        .await?
        .into_iter()
        .map(|m| {
            let late = m.created_at < late_before;
            MessageView {
                late,
                ..message_view(m, now)
            }
        })
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
    let (number, author) = db::contact::number_and_holder(&mut tx, id)
        .await?
        .ok_or_else(|| ContactError::NotFound(crate::text!("error.contact.no_such_message")))?;
    if !db::contact::answer(&mut tx, id, &text, &actor, now).await? {
        return Err(ContactError::Conflict(crate::text!(
            "error.contact.message_already_answered",
            number
        )));
    }
    let link = format!("{}/contact", state.ca.public_base());
    let answered = Template::ContactAnswered {
        number,
        answer: &text,
        link: &link,
    };
    let holder_id = match author {
        db::contact::Author::Account(holder_id) => {
            let holder = users::by_id(&state.db, &holder_id)
                .await?
                .ok_or_else(|| ContactError::NotFound(crate::text!("error.contact.no_such_message")))?;
            crate::notify::tell(
                &mut tx,
                state.clock.as_ref(),
                state.ca.public_base(),
                &holder,
                answered,
                "contact_answered",
            )
            .await?;
            Some(holder_id)
        }
        db::contact::Author::Sender { email, lang, .. } => {
            let m = crate::notify::email(&email, &lang, state.ca.public_base(), answered, "contact_answered");
            crate::notify::enqueue(&mut *tx, state.clock.as_ref(), &m).await?;
            None
        }
    };
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

/// The most characters of a sender's name (without a login).
pub const NAME_MAX_CHARS: usize = 200;

/// `POST /api/v1/contact`: a message from someone who cannot log in.
#[derive(Debug, Deserialize)]
pub struct AnonymousMessage {
    pub name: Option<String>,
    pub email: Option<String>,
    /// One of [`TOPICS`].
    pub topic: Option<String>,
    pub message: Option<String>,
    /// The language of the e-mails (`ro`, the default, or `en`).
    pub lang: Option<String>,
}

/// `POST /api/v1/contact/{token}/confirm`.
#[derive(Debug, Deserialize)]
pub struct Confirmation {
    pub code: Option<String>,
}

/// A message waiting for its code: the token that confirms it (with the code) and how long the code is valid.
#[derive(Debug, Serialize)]
pub struct Pending {
    pub status: &'static str,
    pub token: String,
    pub expires_at: String,
    pub valid_for: i64,
}

fn sha256_hex(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(parts.join(":").as_bytes()))
}

/// A refusal by one of the `(subject, limit)` pairs, reserved in order on `conn`.
async fn reserve_all(
    conn: &mut sqlx::AnyConnection,
    limits: &[(String, crate::db::limits::Limit)],
    now: i64,
) -> Result<(), ContactError> {
    for (subject, limit) in limits {
        if let Some(retry_at) = crate::db::limits::reserve(conn, subject, *limit, now).await? {
            return Err(ContactError::TooMany {
                retry_at,
                most: limit.max,
                now,
            });
        }
    }
    Ok(())
}

/// Someone without a login writes: the message is checked and kept waiting, and a code goes to the address given.
/// Limits (each a 429 with the time to retry): messages per sender address and per client address
/// (`[contact]`), and the e-mails to one address and in all (`[limits]`).
pub async fn send_anonymous(state: &Services, req: AnonymousMessage, client: &str) -> Result<Pending, ContactError> {
    let name = req.name.as_deref().unwrap_or_default().trim().to_owned();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS || name.chars().any(char::is_control) {
        return Err(ContactError::Invalid(text!(
            "error.contact.name_required",
            max = NAME_MAX_CHARS
        )));
    }
    let email = crate::encoding::email::canonical(req.email.as_deref().unwrap_or_default())
        .map_err(|e| ContactError::Invalid(text!("error.contact.email_invalid", detail = e.to_string())))?;
    let topic = topic_of(req.topic.as_deref())?;
    let body = text_within(req.message.as_deref(), MESSAGE_MIN_CHARS, "message")?;
    let lang = match req.lang.as_deref().map(str::trim) {
        None | Some("") | Some("ro") => "ro",
        Some("en") => "en",
        Some(_) => return Err(ContactError::Invalid(text!("error.accounts.language_unknown"))),
    };
    let c = &state.settings.contact;
    let now = state.clock.now();
    let window = |max| crate::db::limits::Limit {
        max,
        window_secs: c.window_secs,
    };
    let code = {
        use rand::Rng;
        format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000))
    };
    let token = {
        use rand::RngCore;
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    let id = uuid::Uuid::now_v7().to_string();
    let pending = db::contact::Pending {
        token_hash: sha256_hex(&[&token]),
        code_hash: sha256_hex(&[&id, &code]),
        id,
        name,
        email: email.clone(),
        lang: lang.to_owned(),
        topic: topic.to_owned(),
        body,
        client: client.to_owned(),
        attempts: 0,
        expires_at: now + c.code_minutes * 60,
    };
    let mut tx = state.db.writer().begin().await?;
    // Always in this order (client, address, then the e-mail limits) so that concurrent transactions on PostgreSQL
    // wait for each other instead of deadlocking.
    let limits = [
        (format!("contact-client:{client}"), window(c.per_client)),
        (format!("contact-address:{email}"), window(c.per_address)),
    ];
    reserve_all(&mut tx, &limits, now).await?;
    crate::auth::codes::reserve_send(&mut tx, &state.settings.limits, &email, now)
        .await
        .map_err(|e| match e {
            crate::auth::codes::CodeError::TooMany { retry_at } => ContactError::TooMany {
                retry_at,
                most: state.settings.limits.sends_per_destination,
                now,
            },
            crate::auth::codes::CodeError::Db(e) => ContactError::Db(e),
            other => ContactError::Invalid(text!("error.http.detail", detail = other.to_string())),
        })?;
    db::contact::insert_pending(&mut tx, &pending, now).await?;
    let m = crate::notify::email(
        &email,
        lang,
        state.ca.public_base(),
        Template::ContactCode {
            code: &code,
            minutes: c.code_minutes,
        },
        "contact_code",
    );
    crate::notify::enqueue(&mut *tx, state.clock.as_ref(), &m).await?;
    tx.commit().await?;
    Ok(Pending {
        status: "code_sent",
        token,
        expires_at: rfc3339(pending.expires_at),
        valid_for: c.code_minutes * 60,
    })
}

/// The sender types the code: the waiting message becomes a numbered message for the operators, with a copy
/// e-mailed to the sender, and is audited. A wrong code counts; after `contact.code_attempts` the message is
/// dropped.
pub async fn confirm_anonymous(
    state: &Services,
    token: &str,
    req: Confirmation,
    client: &str,
) -> Result<SentMessage, ContactError> {
    let now = state.clock.now();
    let gone = || ContactError::NotFound(text!("error.contact.no_such_pending"));
    if token.is_empty() || token.len() > 100 {
        return Err(gone());
    }
    let p = db::contact::pending(&state.db, &sha256_hex(&[token]), now)
        .await?
        .ok_or_else(gone)?;
    let code = req.code.as_deref().unwrap_or_default().trim();
    if !db::contact::count_attempt(&state.db, &p.id, state.settings.contact.code_attempts).await? {
        let mut conn = state.db.writer().acquire().await?;
        db::contact::delete_pending(&mut conn, &p.id).await?;
        return Err(gone());
    }
    if code.len() != 6 || sha256_hex(&[&p.id, code]) != p.code_hash {
        return Err(ContactError::Invalid(text!("error.contact.code_wrong")));
    }
    let mut tx = state.db.writer().begin().await?;
    if !db::contact::delete_pending(&mut tx, &p.id).await? {
        return Err(gone());
    }
    let number = db::orders::next_in_sequence(&mut tx, "contact").await?;
    let id = uuid::Uuid::now_v7().to_string();
    let topic = topic_of(Some(p.topic.as_str()))?;
    let message = db::contact::NewMessage {
        id: &id,
        number,
        user_id: None,
        sender: Some((p.name.as_str(), p.email.as_str(), p.lang.as_str())),
        order_id: None,
        topic,
        body: &p.body,
    };
    db::contact::insert(&mut tx, &message, now).await?;
    let link = format!("{}/contact", state.ca.public_base());
    let copy = crate::notify::email(
        &p.email,
        &p.lang,
        state.ca.public_base(),
        Template::ContactReceived {
            number,
            topic,
            order: None,
            message: &p.body,
            link: &link,
        },
        "contact_received",
    );
    crate::notify::enqueue(&mut *tx, state.clock.as_ref(), &copy).await?;
    let audit = crate::audit::row(
        state.clock.as_ref(),
        &crate::audit::Event {
            actor: "anonymous",
            action: "contact.message",
            target: &id,
            outcome: "ok",
            client,
            details: json!({ "number": number, "topic": topic, "sender_sha256": sha256_hex(&[&p.email]) }),
        },
    );
    crate::db::audit::insert(&mut *tx, &audit).await?;
    tx.commit().await?;
    Ok(SentMessage {
        id,
        number,
        topic,
        order: None,
        message: p.body,
        state: MessageState::Open,
        created_at: rfc3339(now),
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
                most: 5,
                now: 1_771_999_000,
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
