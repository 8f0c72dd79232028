//! The notifications outbox and its channels.
//!
//! Library level, on SQLite (always) and PostgreSQL (when `PARAFA_TEST_POSTGRES_URL` is set), as in
//! tests/api/storage.rs: concurrent dispatchers send each message exactly once; a failed send stays queued with its
//! back-off (doubling, capped at an hour) and goes out when due; a dispatcher that dies mid-send leaves a claim that
//! expires, and another dispatcher sends the message; slow e-mails do not hold up an SMS.
//!
//! End to end, with the real server: the SMS webhook against a small HTTP gateway in the test (answers 500, then
//! 400, then 200: the SMS is retried with the same `Idempotency-Key`, never written to the file outbox, and its code
//! activates the phone); SMTP against a real SMTP server (aiosmtpd, from `.venv`) that refuses the first attempt:
//! the invitation arrives with the right sender, recipient, subject, `Message-ID` and UTF-8 Romanian body.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{code_in, Backend, FreshPostgres, TestApp};
use parafa::clock::{Clock, SystemClock};
use parafa::config::Settings;
use parafa::db::outbox::{self as store, OutboxRow, OutboxState};
use parafa::db::Db;
use parafa::notify::{self, Channel, ChannelError, Medium, Message, CLAIM_SECS};
use serde_json::{json, Value};
use sqlx::Row;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------------------------
// Backends (as in tests/api/storage.rs)

struct SqliteDb {
    db: Db,
    _dir: TempDir,
}

async fn sqlite() -> SqliteDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("parafa.db").display());
    let db = Db::connect(&url, 8).await.expect("connect to SQLite");
    SqliteDb { db, _dir: dir }
}

/// A fresh PostgreSQL database, dropped after the pool.
struct PgDb {
    db: Db,
    fresh: Option<FreshPostgres>,
}

/// `None` (after the harness printed SKIPPED) when PostgreSQL tests are not enabled.
async fn postgres() -> Option<PgDb> {
    let pg = FreshPostgres::create()?;
    let db = Db::connect(&pg.url, 8).await.expect("connect to PostgreSQL");
    Some(PgDb { db, fresh: Some(pg) })
}

impl PgDb {
    async fn finish(self) {
        self.db.close().await;
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Some(pg) = self.fresh.take() {
            drop(pg);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures and test channels

type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ChannelError>> + Send + 'a>>;

/// Queues `n` messages, alternately e-mail and SMS; returns their ids.
async fn queue(db: &Db, clock: &dyn Clock, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (medium, recipient) = if i % 2 == 0 {
            (Medium::Email, format!("holder{i}@example.ro"))
        } else {
            (Medium::Sms, format!("+4072200{i:04}"))
        };
        let m = Message {
            medium,
            recipient,
            subject: format!("Mesaj {i}"),
            body: format!("Codul dvs. este {:06}", 100_000 + i),
            kind: "test".into(),
        };
        ids.push(notify::enqueue(db.writer(), clock, &m).await.expect("enqueue"));
    }
    ids
}

async fn state(db: &Db, id: &str) -> OutboxState {
    store::state(db, id)
        .await
        .expect("read outbox")
        .expect("the row exists")
}

async fn pending(db: &Db) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'")
        .fetch_one(db.pool())
        .await
        .expect("count pending")
        .try_get("n")
        .expect("n")
}

/// Counts sends per id; each send takes a moment, so that concurrent dispatchers overlap.
#[derive(Default)]
struct Counting {
    sends: Mutex<HashMap<String, usize>>,
}

impl Channel for Counting {
    fn send<'a>(&'a self, row: &'a OutboxRow) -> SendFuture<'a> {
        Box::pin(async move {
            *self.sends.lock().unwrap().entry(row.id.clone()).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok(())
        })
    }
}

/// Fails the first attempt at each row (or every attempt with `always`), delivers the next.
#[derive(Default)]
struct Failing {
    always: bool,
    attempts: Mutex<HashMap<String, usize>>,
    delivered: Mutex<Vec<String>>,
}

impl Channel for Failing {
    fn send<'a>(&'a self, row: &'a OutboxRow) -> SendFuture<'a> {
        Box::pin(async move {
            let n = {
                let mut attempts = self.attempts.lock().unwrap();
                let n = attempts.entry(row.id.clone()).or_default();
                *n += 1;
                *n
            };
            if self.always || n == 1 {
                return Err(ChannelError::Remote("gateway down (test)".into()));
            }
            self.delivered.lock().unwrap().push(row.id.clone());
            Ok(())
        })
    }
}

/// Never finishes a send: the sender "dies" mid-send when its task is aborted. Tells when a send has begun.
struct Hanging {
    started: tokio::sync::Notify,
}

impl Channel for Hanging {
    fn send<'a>(&'a self, _row: &'a OutboxRow) -> SendFuture<'a> {
        Box::pin(async move {
            self.started.notify_one();
            std::future::pending::<()>().await;
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Concurrent dispatchers

async fn check_concurrent_dispatchers_send_each_message_exactly_once(db: &Db) {
    let clock = Arc::new(SystemClock::with_offset(0));
    let ids = queue(db, clock.as_ref(), 100).await;
    let channel = Arc::new(Counting::default());
    let names: Vec<String> = (1..=3).map(|i| format!("dispatcher-test-{i}")).collect();
    let tasks: Vec<_> = names
        .iter()
        .map(|name| {
            let (db, clock, channel, name) = (db.clone(), clock.clone(), channel.clone(), name.clone());
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut sent = 0;
                while pending(&db).await > 0 {
                    assert!(Instant::now() < deadline, "{name}: messages still pending after 60 s");
                    sent += notify::dispatch_once(&db, clock.as_ref(), channel.as_ref(), &name)
                        .await
                        .expect("dispatch");
                }
                sent
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("dispatcher task");
    }
    assert_eq!(total, 100, "the dispatchers together report 100 messages sent");

    let sends = channel.sends.lock().unwrap().clone();
    assert_eq!(sends.len(), 100, "every message reached the channel");
    let twice: Vec<_> = sends.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "messages sent more than once: {twice:?}");
    let mut senders = HashSet::new();
    for id in &ids {
        assert_eq!(sends.get(id), Some(&1), "{id} sent exactly once");
        let s = state(db, id).await;
        assert_eq!(s.status, "sent", "{id}: {s:?}");
        assert_eq!(s.attempts, 1, "{id}: {s:?}");
        assert!(s.sent_at.is_some() && s.claimed_until.is_none(), "{id}: {s:?}");
        let by = s.claimed_by.expect("sent by a dispatcher");
        assert!(names.contains(&by), "{by}");
        senders.insert(by);
    }
    assert!(
        senders.len() >= 2,
        "the dispatchers really ran side by side (senders: {senders:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dispatchers_send_each_of_100_messages_exactly_once_on_sqlite() {
    let s = sqlite().await;
    check_concurrent_dispatchers_send_each_message_exactly_once(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dispatchers_send_each_of_100_messages_exactly_once_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_concurrent_dispatchers_send_each_message_exactly_once(&pg.db).await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 2. A failed send is retried when due

async fn check_a_failed_send_stays_queued_and_goes_out_when_due(db: &Db) {
    let clock = SystemClock::with_offset(0);
    let ids = queue(db, &clock, 5).await;
    let channel = Failing::default();

    let sent = notify::dispatch_once(db, &clock, &channel, "d1")
        .await
        .expect("dispatch");
    assert_eq!(sent, 0, "every first attempt fails");
    let now = clock.now();
    for id in &ids {
        let s = state(db, id).await;
        assert_eq!((s.status.as_str(), s.attempts), ("pending", 1), "{id}: {s:?}");
        assert!(s.next_attempt_at > now, "the next attempt is in the future: {s:?}");
        assert!(
            (s.next_attempt_at - now - 60).abs() <= 2,
            "first back-off is 60 s: {s:?}, now {now}"
        );
        assert!(
            s.last_error.as_deref().is_some_and(|e| e.contains("gateway down")),
            "{s:?}"
        );
        assert!(s.claimed_until.is_none() && s.sent_at.is_none(), "{s:?}");
    }

    // Not due yet: nothing is tried.
    let sent = notify::dispatch_once(db, &clock, &channel, "d1")
        .await
        .expect("dispatch");
    assert_eq!(sent, 0);
    let tries: usize = channel.attempts.lock().unwrap().values().sum();
    assert_eq!(tries, 5, "no attempt before the back-off has passed");

    clock.advance(61);
    let sent = notify::dispatch_once(db, &clock, &channel, "d2")
        .await
        .expect("dispatch");
    assert_eq!(sent, 5, "all go out once due");
    let delivered: HashSet<String> = channel.delivered.lock().unwrap().iter().cloned().collect();
    assert_eq!(delivered, ids.iter().cloned().collect::<HashSet<_>>(), "nothing lost");
    for id in &ids {
        let s = state(db, id).await;
        assert_eq!((s.status.as_str(), s.attempts), ("sent", 2), "{id}: {s:?}");
        assert_eq!(s.claimed_by.as_deref(), Some("d2"));
    }
    assert_eq!(pending(db).await, 0);
    let sent = notify::dispatch_once(db, &clock, &channel, "d1")
        .await
        .expect("dispatch");
    assert_eq!(sent, 0, "a sent message is not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_send_stays_queued_with_a_back_off_and_goes_out_when_due_on_sqlite() {
    let s = sqlite().await;
    check_a_failed_send_stays_queued_and_goes_out_when_due(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_send_stays_queued_with_a_back_off_and_goes_out_when_due_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_a_failed_send_stays_queued_and_goes_out_when_due(&pg.db).await;
    pg.finish().await;
}

async fn check_the_back_off_doubles_up_to_an_hour_and_the_row_is_never_dropped(db: &Db) {
    let clock = SystemClock::with_offset(0);
    let ids = queue(db, &clock, 1).await;
    let channel = Failing {
        always: true,
        ..Failing::default()
    };
    let expected = [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600];
    for (i, want) in expected.iter().enumerate() {
        notify::dispatch_once(db, &clock, &channel, "d")
            .await
            .expect("dispatch");
        let now = clock.now();
        let s = state(db, &ids[0]).await;
        assert_eq!((s.status.as_str(), s.attempts), ("pending", i as i64 + 1), "{s:?}");
        let gap = s.next_attempt_at - now;
        assert!(
            (gap - want).abs() <= 2,
            "attempt {}: waits {gap} s, expected {want}",
            i + 1
        );
        clock.advance(gap + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_back_off_doubles_up_to_an_hour_and_a_failing_row_stays_queued_on_sqlite() {
    let s = sqlite().await;
    check_the_back_off_doubles_up_to_an_hour_and_the_row_is_never_dropped(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_back_off_doubles_up_to_an_hour_and_a_failing_row_stays_queued_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_the_back_off_doubles_up_to_an_hour_and_the_row_is_never_dropped(&pg.db).await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 3. A sender that dies mid-send

async fn check_a_dead_senders_message_is_sent_by_another_dispatcher_after_the_claim(db: &Db) {
    let clock = Arc::new(SystemClock::with_offset(0));
    let ids = queue(db, clock.as_ref(), 1).await;

    // The first dispatcher claims the message, starts sending, and dies.
    let hanging = Arc::new(Hanging {
        started: tokio::sync::Notify::new(),
    });
    let dying = tokio::spawn({
        let (db, clock, hanging) = (db.clone(), clock.clone(), hanging.clone());
        async move { notify::dispatch_once(&db, clock.as_ref(), hanging.as_ref(), "dead").await }
    });
    tokio::time::timeout(Duration::from_secs(10), hanging.started.notified())
        .await
        .expect("the first dispatcher started sending");
    dying.abort();
    assert!(dying.await.unwrap_err().is_cancelled());
    let s = state(db, &ids[0]).await;
    assert_eq!(
        (s.status.as_str(), s.claimed_by.as_deref()),
        ("pending", Some("dead")),
        "{s:?}"
    );

    // While the claim lives, nobody else sends it.
    let channel = Counting::default();
    let sent = notify::dispatch_once(db, clock.as_ref(), &channel, "alive")
        .await
        .expect("dispatch");
    assert_eq!(sent, 0, "the claim protects a message being sent");
    assert!(channel.sends.lock().unwrap().is_empty());

    // Once it has expired, another dispatcher sends it, once.
    clock.advance(CLAIM_SECS + 1);
    let sent = notify::dispatch_once(db, clock.as_ref(), &channel, "alive")
        .await
        .expect("dispatch");
    assert_eq!(sent, 1);
    assert_eq!(channel.sends.lock().unwrap().get(&ids[0]), Some(&1));
    let s = state(db, &ids[0]).await;
    assert_eq!(
        (s.status.as_str(), s.claimed_by.as_deref()),
        ("sent", Some("alive")),
        "{s:?}"
    );
    assert_eq!(s.attempts, 1);

    // The dead dispatcher, had it come back, could no longer mark or fail the message.
    let now = clock.now();
    assert!(!store::mark_sent(db, &ids[0], "dead", now).await.expect("mark_sent"));
    assert!(!store::mark_failed(db, &ids[0], "dead", "late", now + 60)
        .await
        .expect("mark_failed"));
    assert_eq!(state(db, &ids[0]).await, s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_whose_sender_died_mid_send_is_sent_by_another_dispatcher_once_the_claim_expires_on_sqlite() {
    let s = sqlite().await;
    check_a_dead_senders_message_is_sent_by_another_dispatcher_after_the_claim(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_whose_sender_died_mid_send_is_sent_by_another_dispatcher_once_the_claim_expires_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_a_dead_senders_message_is_sent_by_another_dispatcher_after_the_claim(&pg.db).await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 4. A slow e-mail server does not hold up SMS

/// E-mails take 1.5 s each; SMS go at once. Records when each SMS went.
struct SlowEmail {
    sms_sent: tokio::sync::Notify,
    emails_done: Mutex<usize>,
}

impl Channel for SlowEmail {
    fn send<'a>(&'a self, row: &'a OutboxRow) -> SendFuture<'a> {
        Box::pin(async move {
            if row.medium == "email" {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                *self.emails_done.lock().unwrap() += 1;
            } else {
                self.sms_sent.notify_one();
            }
            Ok(())
        })
    }
}

async fn check_a_slow_email_server_does_not_hold_up_sms(db: &Db) {
    let clock = Arc::new(SystemClock::with_offset(0));
    for i in 0..3 {
        let m = Message {
            medium: Medium::Email,
            recipient: format!("holder{i}@example.ro"),
            subject: "Invitație".into(),
            body: "Bună ziua".into(),
            kind: "test".into(),
        };
        notify::enqueue(db.writer(), clock.as_ref(), &m).await.expect("enqueue");
    }
    let sms = Message {
        medium: Medium::Sms,
        recipient: "+40722111222".into(),
        subject: String::new(),
        body: "Parafa: codul este 123456".into(),
        kind: "sms_code".into(),
    };
    notify::enqueue(db.writer(), clock.as_ref(), &sms)
        .await
        .expect("enqueue");

    let channel = Arc::new(SlowEmail {
        sms_sent: tokio::sync::Notify::new(),
        emails_done: Mutex::new(0),
    });
    let round = tokio::spawn({
        let (db, clock, channel) = (db.clone(), clock.clone(), channel.clone());
        async move { notify::dispatch_once(&db, clock.as_ref(), channel.as_ref(), "d").await }
    });
    tokio::time::timeout(Duration::from_millis(1000), channel.sms_sent.notified())
        .await
        .expect("the SMS, queued after three slow e-mails, went out at once");
    assert!(*channel.emails_done.lock().unwrap() < 3, "the e-mails were still going");
    assert_eq!(round.await.expect("round").expect("dispatch"), 4);
    assert_eq!(*channel.emails_done.lock().unwrap(), 3);
    assert_eq!(pending(db).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_email_server_does_not_hold_up_sms_on_sqlite() {
    let s = sqlite().await;
    check_a_slow_email_server_does_not_hold_up_sms(&s.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_email_server_does_not_hold_up_sms_on_postgres() {
    let Some(pg) = postgres().await else { return };
    check_a_slow_email_server_does_not_hold_up_sms(&pg.db).await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Settings

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn notify_settings_have_file_sink_defaults_and_refuse_bad_values_by_name() {
    let s = Settings::load_from(None, &[]).expect("defaults");
    assert_eq!(s.notify.smtp_url, None);
    assert_eq!(s.notify.sms_webhook_url, None);
    assert_eq!(s.notify.email_from, "Parafa <no-reply@localhost>");
    assert_eq!(s.notify.dispatch_interval_ms, 200);
    assert_eq!(s.notify.file_sink_dir(&s.data_dir), s.data_dir.join("outbox"));

    let s = Settings::load_from(
        None,
        &env(&[
            ("PARAFA_SMTP_URL", "smtps://ana:s3cret@mail.example.ro"),
            ("PARAFA_EMAIL_FROM", "Parafa <no-reply@parafa.example>"),
            ("PARAFA_SMS_WEBHOOK_URL", "https://sms.example.ro/send"),
            ("PARAFA_SMS_WEBHOOK_TOKEN", "tok-123"),
        ]),
    )
    .expect("valid settings");
    assert_eq!(s.notify.smtp_url.as_deref(), Some("smtps://ana:s3cret@mail.example.ro"));
    assert_eq!(s.notify.sms_webhook_token.as_deref(), Some("tok-123"));
    let shown = format!("{:?}", s.notify);
    assert!(!shown.contains("s3cret") && !shown.contains("tok-123"), "{shown}");

    // Empty means unset.
    let s = Settings::load_from(None, &env(&[("PARAFA_SMTP_URL", "")])).expect("empty is unset");
    assert_eq!(s.notify.smtp_url, None);

    for (var, value, name) in [
        ("PARAFA_SMTP_URL", "mailto:x@example.ro", "notify.smtp_url"),
        (
            "PARAFA_SMTP_URL",
            "smtp://u:pw@mail.example.ro?tls=none",
            "notify.smtp_url",
        ),
        ("PARAFA_EMAIL_FROM", "nobody", "notify.email_from"),
        (
            "PARAFA_SMS_WEBHOOK_URL",
            "ftp://sms.example.ro",
            "notify.sms_webhook_url",
        ),
        ("PARAFA_SMS_WEBHOOK_TOKEN", "tok", "notify.sms_webhook_token"),
    ] {
        let err = Settings::load_from(None, &env(&[(var, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{var}={value}: {err}");
        assert!(!err.contains(":pw@"), "the password is not shown: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("parafa.toml");
    std::fs::write(
        &file,
        "[notify]\nsmtp_url = \"smtp://relay.local:25?tls=none\"\nfile_sink_dir = \"/var/spool/parafa\"\ndispatch_interval_ms = 500\n",
    )
    .unwrap();
    let s = Settings::load_from(Some(&file), &[]).expect("[notify] in parafa.toml");
    assert_eq!(s.notify.dispatch_interval_ms, 500);
    assert_eq!(s.notify.file_sink_dir(&s.data_dir), PathBuf::from("/var/spool/parafa"));
}

// ---------------------------------------------------------------------------------------------------------------
// 6. End to end: the SMS webhook

const EMAIL: &str = "a@example.com";
const PHONE: &str = "+40722111222";

/// One request the gateway received.
#[derive(Debug, Clone)]
struct GatewayRequest {
    method: String,
    path: String,
    /// Lower-case names.
    headers: HashMap<String, String>,
    body: Value,
    answered: u16,
}

/// A tiny SMS gateway: an HTTP/1.1 server on 127.0.0.1 that takes one request at a time, records it, and answers
/// the statuses given in turn, then 200.
struct Gateway {
    url: String,
    requests: Arc<Mutex<Vec<GatewayRequest>>>,
}

impl Gateway {
    fn start(answers: &[u16]) -> Gateway {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gateway");
        let url = format!("http://{}/sms/send", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mut answers: Vec<u16> = answers.iter().rev().copied().collect();
        let record = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let status = answers.pop().unwrap_or(200);
                let reason = match status {
                    200 => "OK",
                    400 => "Bad Request",
                    _ => "Internal Server Error",
                };
                let answer =
                    format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
                let _ = stream.write_all(answer.as_bytes());
                record.lock().unwrap().push(GatewayRequest {
                    answered: status,
                    ..request
                });
            }
        });
        Gateway { url, requests }
    }

    /// The requests so far, once there are at least `n` (waits up to 15 s).
    fn wait_for(&self, n: usize) -> Vec<GatewayRequest> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.requests.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway got {} requests, expected {n}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// Reads one HTTP/1.1 request with a Content-Length body.
fn read_request(stream: &mut std::net::TcpStream) -> Option<GatewayRequest> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(GatewayRequest {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered: 0,
    })
}

fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app.client.post(app.url(path)).json(&body).send().expect("POST");
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(json!({ "raw": text })))
}

/// Enrols Ana, in Romanian (the invitation goes out by e-mail).
fn enrol(app: &TestApp) {
    let (status, out) = post(
        app,
        "/api/v1/enrolments",
        json!({"given_name": "Ana", "surname": "Pop", "email": EMAIL, "phone": PHONE,
               "privacy_acknowledged": true, "lang": "ro"}),
    );
    assert_eq!(status, 202, "{out}");
}

/// The token that follows `/invitations/` in a message.
fn activation_token(mail: &str) -> String {
    let at = mail.find("/invitations/").expect("invitation link") + "/invitations/".len();
    mail[at..].split_whitespace().next().unwrap().to_owned()
}

/// The file outbox's files whose names hold `medium`.
fn outbox_files(app: &TestApp, medium: &str) -> Vec<PathBuf> {
    std::fs::read_dir(app.data_dir.join("outbox"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(&format!("-{medium}-"))
        })
        .collect()
}

#[test]
fn sms_go_to_the_webhook_with_an_idempotency_key_and_are_retried_after_500_and_400() {
    let gateway = Gateway::start(&[500, 400]);
    let app = TestApp::spawn_on(
        Backend::Sqlite,
        &[
            ("PARAFA_SMS_WEBHOOK_URL", &gateway.url),
            ("PARAFA_SMS_WEBHOOK_TOKEN", "gw-token-1"),
        ],
    );
    enrol(&app);
    let token = activation_token(&app.message(EMAIL, 1));
    let (status, out) = post(
        &app,
        &format!("/api/v1/invitations/{token}/phone"),
        json!({ "phone": PHONE }),
    );
    assert_eq!(status, 202, "{out}");

    // First attempt: 500.
    let first = gateway.wait_for(1)[0].clone();
    assert_eq!((first.method.as_str(), first.path.as_str()), ("POST", "/sms/send"));
    assert_eq!(first.answered, 500);
    assert_eq!(first.body["to"], PHONE, "{:?}", first.body);
    let text = first.body["text"].as_str().expect("text").to_owned();
    let id = first.body["id"].as_str().expect("id").to_owned();
    let code = code_in(&text);
    assert!(text.contains("Parafa") && text.contains(&code), "{text}");
    assert_eq!(first.headers.get("idempotency-key"), Some(&id));
    assert_eq!(
        first.headers.get("authorization").map(String::as_str),
        Some("Bearer gw-token-1")
    );
    assert!(
        first.headers["content-type"].starts_with("application/json"),
        "{first:?}"
    );

    // Not hammered while the back-off (60 s) runs.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(gateway.count(), 1, "no retry before the back-off has passed");

    // Second attempt once due: 400, which is retried all the same (after 120 s).
    app.advance_clock(120);
    let second = gateway.wait_for(2)[1].clone();
    assert_eq!(second.answered, 400);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(gateway.count(), 2, "no retry before the back-off has passed");
    app.advance_clock(150);
    let third = gateway.wait_for(3)[2].clone();
    assert_eq!(third.answered, 200);
    for retry in [&second, &third] {
        assert_eq!(retry.body, first.body, "a retry sends the same SMS");
        assert_eq!(retry.headers.get("idempotency-key"), Some(&id));
    }

    // The code the gateway received is the one that verifies the phone (still within its 10 minutes).
    let (status, out) = post(
        &app,
        &format!("/api/v1/invitations/{token}/phone/verify"),
        json!({ "code": code }),
    );
    assert_eq!(status, 200, "{out}");

    // Delivered: not sent again, even long after.
    std::thread::sleep(Duration::from_millis(500));
    app.advance_clock(3600);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(gateway.count(), 3, "delivered: not sent again");
    assert!(outbox_files(&app, "sms").is_empty(), "no SMS in the file outbox");
    assert_eq!(
        outbox_files(&app, "email").len(),
        1,
        "e-mails still go to the file outbox"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 7. End to end: SMTP

/// The venv's Python (`make venv` installs aiosmtpd into it).
fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run make test (it creates .venv), or make venv before cargo nextest run --test api notify::",
        python.display()
    );
    python
}

/// tests/python/smtp_sink.py, running until dropped.
struct SmtpSink {
    port: u16,
    dir: TempDir,
    child: Child,
    _stdin: ChildStdin,
}

impl SmtpSink {
    fn start(refuse_first: usize) -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/smtp_sink.py");
        let mut child = Command::new(venv_python())
            .arg(&script)
            .arg(dir.path())
            .args(["--refuse-first", &refuse_first.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the sink's port");
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!("the SMTP sink did not start (said {line:?}); is aiosmtpd in .venv? run make venv")
            });
        SmtpSink {
            port,
            dir,
            child,
            _stdin: stdin,
        }
    }

    /// The record `name` (`mail-1.json`, `refused-1.json`), once written (waits up to 15 s).
    fn wait_for(&self, name: &str) -> Value {
        let path = self.dir.path().join(name);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !path.exists() {
            assert!(Instant::now() < deadline, "the SMTP server never got {name}");
            std::thread::sleep(Duration::from_millis(50));
        }
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read record")).expect("JSON record")
    }

    fn exists(&self, name: &str) -> bool {
        self.dir.path().join(name).exists()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn emails_go_out_by_smtp_in_utf8_with_the_outbox_id_as_message_id_and_are_retried_after_a_refusal() {
    let sink = SmtpSink::start(1);
    let smtp_url = format!("smtp://127.0.0.1:{}?tls=none", sink.port);
    let app = TestApp::spawn_on(
        Backend::Sqlite,
        &[
            ("PARAFA_SMTP_URL", &smtp_url),
            ("PARAFA_EMAIL_FROM", "Parafa <no-reply@parafa.test>"),
        ],
    );
    enrol(&app);

    // The first attempt is refused (451): retried after the back-off, as the same message.
    let refused = sink.wait_for("refused-1.json");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!sink.exists("mail-1.json"), "no retry before the back-off has passed");
    app.advance_clock(120);
    let mail = sink.wait_for("mail-1.json");
    assert_eq!(
        mail["message_id"], refused["message_id"],
        "the retry is the same message"
    );

    assert_eq!(mail["mail_from"], "no-reply@parafa.test");
    assert_eq!(mail["rcpt_tos"], json!([EMAIL]));
    assert_eq!(mail["to"], EMAIL);
    assert_eq!(mail["from"], "Parafa <no-reply@parafa.test>");
    assert_eq!(mail["subject"], "Invitație de activare a contului Parafa");
    assert_eq!(mail["content_type"], "text/plain");
    assert_eq!(mail["charset"], "utf-8");
    assert_eq!(mail["auto_submitted"], "auto-generated");
    let message_id = mail["message_id"].as_str().expect("Message-ID");
    let outbox_id = message_id
        .strip_prefix('<')
        .and_then(|m| m.strip_suffix("@parafa.test>"))
        .unwrap_or_else(|| panic!("Message-ID {message_id} is <outbox id@sender domain>"));
    assert!(uuid::Uuid::parse_str(outbox_id).is_ok(), "{message_id}");
    let body = mail["body"].as_str().expect("body");
    assert!(body.starts_with("Bună ziua, Ana,"), "{body}");
    assert!(
        body.contains("Ați solicitat crearea unui cont Parafa") && body.contains("e-mail automat, vă rugăm"),
        "Romanian with its diacritics, and the footer: {body}"
    );
    assert!(outbox_files(&app, "email").is_empty(), "no e-mail in the file outbox");

    // The link in the e-mail works; SMS, with no webhook configured, go to the file outbox.
    let token = activation_token(body);
    let (status, out) = post(
        &app,
        &format!("/api/v1/invitations/{token}/phone"),
        json!({ "phone": PHONE }),
    );
    assert_eq!(status, 202, "{out}");
    let sms = app.message(PHONE, 1);
    assert!(sms.contains("Medium: sms"), "{sms}");
    code_in(&sms);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!sink.exists("mail-2.json"), "one e-mail, delivered once");
}

/// #6 over SMTP: the order-accepted e-mail is a `multipart/mixed` message, its text first, then the three PDFs as
/// named attachments, base64 (the raw message is ASCII), as Python's `email` package reads it.
#[test]
fn the_order_accepted_email_goes_out_by_smtp_with_its_pdfs_as_mime_attachments() {
    let sink = SmtpSink::start(0);
    let smtp_url = format!("smtp://127.0.0.1:{}?tls=none", sink.port);
    let (app, cookie) = crate::notices::holder(&[
        ("PARAFA_SMTP_URL", &smtp_url),
        ("PARAFA_EMAIL_FROM", "Parafa <no-reply@parafa.test>"),
    ]);
    let order = crate::notices::paid_order(&app, &cookie);
    let number = order["registration_number"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mail = loop {
        let found = (1..10)
            .map(|k| format!("mail-{k}.json"))
            .filter(|n| sink.exists(n))
            .map(|n| sink.wait_for(&n))
            .find(|m| {
                m["subject"].as_str().is_some_and(|s| s.contains(number))
                    && m["subject"].as_str().is_some_and(|s| s.contains("plata"))
            });
        if let Some(m) = found {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no order-accepted e-mail reached the SMTP server"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(mail["rcpt_tos"], json!([crate::notices::EMAIL]));
    assert_eq!(mail["content_type"], "multipart/mixed");
    assert_eq!(mail["raw_is_ascii"], true);
    assert!(
        mail["body"].as_str().unwrap().contains("Vă transmitem atașat"),
        "{mail}"
    );
    let files = mail["attachments"].as_array().expect("attachments");
    assert_eq!(files.len(), 3, "{mail}");
    for f in files {
        assert_eq!(f["content_type"], "application/pdf", "{f}");
        assert_eq!(f["starts_with"], "%PDF-", "{f}");
        assert!(
            f["filename"].as_str().unwrap().ends_with(".pdf") && f["size"].as_u64().unwrap() > 1000,
            "{f}"
        );
    }
    assert!(
        files[0]["filename"].as_str().unwrap().contains(number),
        "the note is named after the order: {mail}"
    );
}
