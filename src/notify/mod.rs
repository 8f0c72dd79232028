//! Notifications: e-mails and SMS are rows in an outbox, written in the same transaction as the change they
//! announce, and sent afterwards by a dispatcher through a channel: SMTP for e-mails and an SMS gateway's webhook
//! when `[notify]` configures them, a file sink under `<data>/outbox/` otherwise (see [`channels::Router`]).
//!
//! Several instances may run dispatchers on one database: a row is sent by whoever claims it first, with a
//! conditional UPDATE and a claim that expires, so a crashed sender's rows are picked up again. Failures are retried
//! with exponential back-off (capped at an hour) and never dropped.

pub mod channels;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
pub use crate::db::outbox::Attachment;
use crate::db::outbox::{self as store, OutboxRow};
use crate::db::{Db, DbError};
pub use channels::{Channel, ChannelError, FileSink, Router, SmsWebhook, Smtp};
pub use templates::{Lang, Template};

/// E-mail or SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Email,
    Sms,
}

impl Medium {
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Email => "email",
            Medium::Sms => "sms",
        }
    }
}

/// A message ready to be queued.
#[derive(Debug, Clone)]
pub struct Message {
    pub medium: Medium,
    /// An e-mail address or a phone number with its country prefix.
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// What the message is about (`invitation`, `sms_code`, …), for tests and support.
    pub kind: String,
}

/// Queues an e-mail to `user` in their language, inside the caller's transaction (the message goes out only if
/// the change it announces commits); `public_base` is the site's address for the links in it.
pub async fn tell(
    conn: &mut sqlx::AnyConnection,
    clock: &dyn Clock,
    public_base: &str,
    user: &crate::db::users::User,
    t: Template<'_>,
    kind: &str,
) -> Result<(), DbError> {
    let m = email(&user.email, &user.lang, public_base, t, kind);
    enqueue(conn, clock, &m).await?;
    Ok(())
}

/// Queues a message, inside the caller's transaction.
pub async fn enqueue<'e, E>(exec: E, clock: &dyn Clock, m: &Message) -> Result<String, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let id = uuid::Uuid::now_v7().to_string();
    let row = OutboxRow {
        id: id.clone(),
        medium: m.medium.as_str().into(),
        recipient: m.recipient.clone(),
        subject: m.subject.clone(),
        body: m.body.clone(),
        kind: m.kind.clone(),
        attempts: 0,
        created_at: clock.now(),
        attachments: Vec::new(),
    };
    store::insert(exec, &row).await?;
    Ok(id)
}

/// Queues an e-mail with files attached, inside the caller's transaction.
pub async fn enqueue_with(
    conn: &mut sqlx::AnyConnection,
    clock: &dyn Clock,
    m: &Message,
    files: &[Attachment],
) -> Result<String, DbError> {
    let id = enqueue(&mut *conn, clock, m).await?;
    store::insert_attachments(conn, &id, files).await?;
    Ok(id)
}

/// How long a claim protects a row being sent before another dispatcher may take it (clock seconds). A
/// dispatcher that dies mid-send leaves its claim behind; once it has expired, another dispatcher (of this
/// instance or another) sends the row again.
pub const CLAIM_SECS: i64 = 120;

/// The longest one channel may take over one message, well inside [`CLAIM_SECS`], so that no other dispatcher
/// takes over a row that is still being sent. A send that takes longer is abandoned and retried.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest wait between two attempts at one message.
pub const MAX_RETRY_SECS: i64 = 3600;

/// Rows read per round.
const BATCH: i64 = 50;

/// The wait after the `attempts`-th failed attempt: 60 s, 2 min, 4 min, … doubling up to an hour.
pub fn retry_delay(attempts: i64) -> i64 {
    (30i64 << attempts.clamp(1, 7)).min(MAX_RETRY_SECS)
}

/// Sends what is due once. Returns how many messages were sent.
///
/// E-mails and SMS are sent side by side, each medium in its own lane, so an SMTP server that hangs does not hold
/// up SMS codes (and the other way round). Each row is claimed just before it is sent (a conditional UPDATE: of
/// several dispatchers, one wins) and then marked sent, or failed with its next attempt after [`retry_delay`]. A
/// row is never dropped. Delivery is at least once: a dispatcher that dies between handing a message over and
/// marking it sent leaves it to be sent again when its claim expires (the e-mail's `Message-ID` and the webhook's
/// `Idempotency-Key` are the outbox id, so the receiver can tell).
pub async fn dispatch_once(
    db: &Db,
    clock: &dyn Clock,
    channel: &dyn Channel,
    dispatcher: &str,
) -> Result<usize, DbError> {
    let (email, sms) = tokio::join!(
        dispatch_lane(db, clock, channel, dispatcher, Medium::Email),
        dispatch_lane(db, clock, channel, dispatcher, Medium::Sms),
    );
    Ok(email? + sms?)
}

/// [`dispatch_once`] for the messages of one medium, one after another.
async fn dispatch_lane(
    db: &Db,
    clock: &dyn Clock,
    channel: &dyn Channel,
    dispatcher: &str,
    medium: Medium,
) -> Result<usize, DbError> {
    let mut sent = 0;
    for mut row in store::due(db, medium.as_str(), clock.now(), BATCH).await? {
        // The time of this claim, not of the batch: sending earlier rows may have taken a while.
        let now = clock.now();
        let Some(attempts_before) = store::claim(db, &row.id, dispatcher, now, now + CLAIM_SECS).await? else {
            continue; // another dispatcher has it, or sent it meanwhile
        };
        if medium == Medium::Email {
            row.attachments = store::attachments(db, &row.id).await?;
        }
        let outcome = match tokio::time::timeout(SEND_TIMEOUT, channel.send(&row)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ChannelError::Remote(format!(
                "no answer within {} s; abandoned",
                SEND_TIMEOUT.as_secs()
            ))),
        };
        match outcome {
            Ok(()) => {
                if store::mark_sent(db, &row.id, dispatcher, clock.now()).await? {
                    sent += 1;
                } else {
                    tracing::warn!(id = %row.id, medium = %row.medium,
                        "sent after this dispatcher's claim had expired and another dispatcher took the message over: \
                         it may go out twice");
                }
            }
            Err(e) => {
                let attempts = attempts_before + 1;
                let retry_in = retry_delay(attempts);
                tracing::warn!(id = %row.id, medium = %row.medium, attempts, retry_in, error = %e,
                    "sending failed; will retry");
                store::mark_failed(db, &row.id, dispatcher, &e.to_string(), clock.now() + retry_in).await?;
            }
        }
    }
    Ok(sent)
}

/// Runs [`dispatch_once`] every `interval` until the process ends. A round that fails (the database is away) or
/// panics (a bug in a channel) is logged and the next round goes on; its claimed rows are taken again after
/// [`CLAIM_SECS`].
pub fn spawn_dispatcher(
    db: Db,
    clock: Arc<dyn Clock>,
    channel: Arc<dyn Channel>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    let me = format!("dispatcher-{}", uuid::Uuid::new_v4());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let round = tokio::spawn({
                let (db, clock, channel, me) = (db.clone(), clock.clone(), channel.clone(), me.clone());
                async move { dispatch_once(&db, clock.as_ref(), channel.as_ref(), &me).await }
            });
            match round.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the notification dispatcher failed; will retry"),
                Err(e) => tracing::error!(error = %e, "the notification dispatcher panicked; will retry"),
            }
        }
    })
}

/// An e-mail to `recipient` in the holder's language, with the footer's contact link under `base`.
pub fn email(recipient: &str, lang: &str, base: &str, t: Template<'_>, kind: &str) -> Message {
    let (subject, body) = t.render(Lang::or_default(Some(lang)), &format!("{base}/contact"));
    Message {
        medium: Medium::Email,
        recipient: recipient.to_owned(),
        subject,
        body,
        kind: kind.into(),
    }
}
