//! Notifications: e-mails and SMS are rows in an outbox, written in the same transaction as the change they
//! announce, and sent afterwards by a dispatcher through a channel (a file sink under `<data>/outbox/` by default).
//!
//! Several instances may run dispatchers on one database: a row is sent by whoever claims it first, with a
//! conditional UPDATE and a claim that expires, so a crashed sender's rows are picked up again. Failures are retried
//! with exponential back-off (capped at an hour) and never dropped.

pub mod channels;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::db::outbox::{self as store, OutboxRow};
use crate::db::{Db, DbError};
pub use channels::{Channel, FileSink};
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
    };
    store::insert(exec, &row).await?;
    Ok(id)
}

/// How long a claim protects a row being sent before another dispatcher may take it.
const CLAIM_SECS: i64 = 120;

/// Sends what is due once. Returns how many messages were sent.
pub async fn dispatch_once(
    db: &Db,
    clock: &dyn Clock,
    channel: &dyn Channel,
    dispatcher: &str,
) -> Result<usize, DbError> {
    let now = clock.now();
    let mut sent = 0;
    for row in store::due(db, now, 50).await? {
        if !store::claim(db, &row.id, dispatcher, now, now + CLAIM_SECS).await? {
            continue; // another dispatcher has it
        }
        match channel.send(&row).await {
            Ok(()) => {
                store::mark_sent(db, &row.id, dispatcher, clock.now()).await?;
                sent += 1;
            }
            Err(e) => {
                let attempts = row.attempts + 1;
                let backoff = (30i64 << attempts.min(7)).min(3600);
                tracing::warn!(id = %row.id, medium = %row.medium, attempts, error = %e, "sending failed; will retry");
                store::mark_failed(db, &row.id, dispatcher, &e.to_string(), clock.now() + backoff).await?;
            }
        }
    }
    Ok(sent)
}

/// Runs [`dispatch_once`] every `interval` until the process ends.
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
            if let Err(e) = dispatch_once(&db, clock.as_ref(), channel.as_ref(), &me).await {
                tracing::warn!(error = %e, "the notification dispatcher failed; will retry");
            }
        }
    })
}
