//! Where messages go: SMTP for e-mails and an SMS gateway's webhook for SMS when configured, and otherwise the file
//! sink (the default, for development, tests and demos). [`Router`] picks one per row by its medium.
//!
//! A channel reports failure as an error and the dispatcher retries the row later; nothing is dropped. Errors
//! never carry a message's body (it can hold a code), only what went wrong.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::ContentType;
use lettre::message::{Attachment as MailAttachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use reqwest::Url;

pub use crate::config::values::{parse_sender, parse_webhook_url, redact_url, SmtpSecurity, SmtpTarget};
use crate::config::NotifySettings;
use crate::db::outbox::OutboxRow;

/// Why a message could not be handed over.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot write the message file: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Remote(String),
}

/// A way to deliver outbox rows.
pub trait Channel: Send + Sync {
    /// Delivers one message; an error leaves it queued for a retry.
    fn send<'a>(&'a self, row: &'a OutboxRow) -> Pin<Box<dyn Future<Output = Result<(), ChannelError>> + Send + 'a>>;
}

/// An error and its causes on one line (`a: b: c`), for errors whose top level says little.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------------------------
// File sink

/// Writes each message as a text file under a folder, named so that a person (or a test) finds it: the time it was
/// queued, the medium, the recipient and the message id. Writing the same message twice writes the same file.
#[derive(Debug, Clone)]
pub struct FileSink {
    dir: PathBuf,
}

impl FileSink {
    pub fn new(dir: PathBuf) -> FileSink {
        FileSink { dir }
    }

    /// The folder the messages go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a message goes to.
    pub fn path_of(&self, row: &OutboxRow) -> PathBuf {
        self.dir.join(format!(
            "{}-{}-{}-{}.txt",
            row.created_at,
            row.medium,
            file_safe(&row.recipient),
            row.id
        ))
    }

    /// The folder a message's attachments go to: beside its file, named after it (`….files/`).
    pub fn attachments_dir_of(&self, row: &OutboxRow) -> PathBuf {
        self.path_of(row).with_extension("files")
    }
}

/// A name with only letters, digits and `@.+-_` (anything else becomes `_`), and no leading dot.
fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@.+-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None => safe,
    }
}

impl Channel for FileSink {
    fn send<'a>(&'a self, row: &'a OutboxRow) -> Pin<Box<dyn Future<Output = Result<(), ChannelError>> + Send + 'a>> {
        Box::pin(async move {
            std::fs::create_dir_all(&self.dir)?;
            // The attachments first, so that a message file never names a file not written yet.
            let mut listed = String::new();
            if !row.attachments.is_empty() {
                let dir = self.attachments_dir_of(row);
                std::fs::create_dir_all(&dir)?;
                for (n, a) in row.attachments.iter().enumerate() {
                    let name = format!("{n}-{}", file_safe(&a.filename));
                    std::fs::write(dir.join(&name), &a.content)?;
                    listed.push_str(&format!(
                        "Attachment: {name} ({} bytes, {})\n",
                        a.content.len(),
                        a.content_type
                    ));
                }
            }
            let text = format!(
                "To: {}\nMedium: {}\nKind: {}\nSubject: {}\nDate: {}\nMessage-Id: {}\n{listed}\n{}\n",
                row.recipient,
                row.medium,
                row.kind,
                row.subject,
                crate::clock::rfc3339(row.created_at),
                row.id,
                row.body
            );
            let path = self.path_of(row);
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// SMTP

/// How long one SMTP command may wait for the server.
const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// E-mails through an SMTP server: plain-text UTF-8, the row's subject, and a `Message-ID` made of the outbox id
/// (`<ID@domain-of-sender>`), so a message sent twice after a crash is recognisable as the same one.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    target: SmtpTarget,
    from: Mailbox,
}

impl Smtp {
    /// A channel for an `smtp_url` (see [`SmtpTarget`]) and a sender such as `Parafa <no-reply@example.ro>`. Must be
    /// called inside a Tokio runtime (the connection pool runs a task). Connects only when sending.
    pub fn new(smtp_url: &str, email_from: &str) -> Result<Smtp, ChannelError> {
        let target = SmtpTarget::parse(smtp_url).map_err(ChannelError::Remote)?;
        let from = parse_sender(email_from).map_err(ChannelError::Remote)?;
        let tls_parameters = || {
            TlsParameters::new(target.host.clone())
                .map_err(|e| ChannelError::Remote(format!("SMTP TLS set-up failed: {}", with_causes(&e))))
        };
        let tls = match target.security {
            SmtpSecurity::StartTls => Tls::Required(tls_parameters()?),
            SmtpSecurity::Implicit => Tls::Wrapper(tls_parameters()?),
            SmtpSecurity::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(target.host.clone())
            .port(target.port)
            .tls(tls)
            .timeout(Some(SMTP_COMMAND_TIMEOUT));
        if let Some((user, pass)) = &target.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Smtp {
            transport: builder.build(),
            target,
            from,
        })
    }

    /// The server, for the logs (no credentials).
    pub fn target(&self) -> &SmtpTarget {
        &self.target
    }

    /// The e-mail for an outbox row: plain text, or `multipart/mixed` with the text first when it has attachments.
    pub fn message(&self, row: &OutboxRow) -> Result<lettre::Message, ChannelError> {
        let to: Mailbox = row
            .recipient
            .parse()
            .map_err(|e| ChannelError::Remote(format!("the recipient is not a valid e-mail address ({e})")))?;
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(row.subject.clone())
            .message_id(Some(message_id(&row.id, self.from.email.domain())))
            // The time it was queued: a resent copy is identical to the first.
            .date(UNIX_EPOCH + Duration::from_secs(row.created_at.max(0) as u64))
            .header(AutoSubmitted);
        let built = if row.attachments.is_empty() {
            builder.header(ContentType::TEXT_PLAIN).body(row.body.clone())
        } else {
            let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(row.body.clone()));
            for a in &row.attachments {
                let content_type = ContentType::parse(&a.content_type).map_err(|e| {
                    ChannelError::Remote(format!("attachment {:?} has no valid media type ({e})", a.filename))
                })?;
                parts = parts.singlepart(MailAttachment::new(a.filename.clone()).body(a.content.clone(), content_type));
            }
            builder.multipart(parts)
        };
        built.map_err(|e| ChannelError::Remote(format!("cannot build the e-mail: {e}")))
    }
}

/// The `Message-ID` of the e-mail of outbox row `id`.
pub fn message_id(id: &str, domain: &str) -> String {
    format!("<{id}@{domain}>")
}

/// `Auto-Submitted: auto-generated` (RFC 3834): automatic replies (vacation notices) are not sent back.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

impl Channel for Smtp {
    fn send<'a>(&'a self, row: &'a OutboxRow) -> Pin<Box<dyn Future<Output = Result<(), ChannelError>> + Send + 'a>> {
        Box::pin(async move {
            let message = self.message(row)?;
            match self.transport.send(message).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    if e.is_permanent() {
                        tracing::error!(
                            id = %row.id,
                            server = %self.target,
                            error = %with_causes(&e),
                            "the SMTP server refused the e-mail permanently; it stays queued and is retried, \
                             but needs attention"
                        );
                    }
                    Err(ChannelError::Remote(format!(
                        "SMTP {}: {}",
                        self.target,
                        with_causes(&e)
                    )))
                }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// SMS webhook

/// How long the SMS gateway may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(20);

/// SMS through a gateway's webhook: `POST <url>` with JSON `{"to": "+40…", "text": "…", "id": "<outbox id>"}`,
/// `Idempotency-Key: <outbox id>` (a retry of the same message carries the same key) and, if configured,
/// `Authorization: Bearer <token>`. A 2xx answer means delivered; anything else is retried. A 4xx other than
/// 408 and 429 means the gateway refuses the request itself: it is retried all the same (never lost), and logged
/// as an error for someone to look at the settings.
pub struct SmsWebhook {
    client: reqwest::Client,
    url: Url,
    token: Option<String>,
}

impl SmsWebhook {
    pub fn new(url: &str, token: Option<&str>) -> Result<SmsWebhook, ChannelError> {
        let url = parse_webhook_url(url).map_err(ChannelError::Remote)?;
        let client = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            // A redirect of a POST is a settings error to fix, not something to follow.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("parafa/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ChannelError::Remote(format!("cannot set up the HTTP client: {}", with_causes(&e))))?;
        Ok(SmsWebhook {
            client,
            url,
            token: token.map(str::to_owned),
        })
    }

    /// The gateway's address without path, query or credentials, for the logs.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

impl Channel for SmsWebhook {
    fn send<'a>(&'a self, row: &'a OutboxRow) -> Pin<Box<dyn Future<Output = Result<(), ChannelError>> + Send + 'a>> {
        Box::pin(async move {
            let mut request = self
                .client
                .post(self.url.clone())
                .header("Idempotency-Key", &row.id)
                .json(&serde_json::json!({ "to": row.recipient, "text": row.body, "id": row.id }));
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.map_err(|e| {
                ChannelError::Remote(format!(
                    "SMS gateway {} unreachable: {}",
                    self.origin(),
                    with_causes(&e.without_url())
                ))
            })?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            let refused = status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429;
            if refused {
                tracing::error!(
                    id = %row.id,
                    gateway = %self.origin(),
                    status = status.as_u16(),
                    "the SMS gateway refused the request; it stays queued and is retried, but check the webhook \
                     settings (URL, token) and the gateway's account"
                );
            }
            Err(ChannelError::Remote(format!(
                "SMS gateway {} answered {status}{}",
                self.origin(),
                if refused { " (refused)" } else { "" }
            )))
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Router

/// Sends each row by its medium: e-mails to SMTP and SMS to the webhook when configured, the rest to the file sink.
pub struct Router {
    email: Arc<dyn Channel>,
    sms: Arc<dyn Channel>,
}

impl Router {
    /// E-mails to `email` (or the file sink), SMS to `sms` (or the file sink).
    pub fn new(email: Option<Arc<dyn Channel>>, sms: Option<Arc<dyn Channel>>, file_sink: FileSink) -> Router {
        let file_sink: Arc<dyn Channel> = Arc::new(file_sink);
        Router {
            email: email.unwrap_or_else(|| file_sink.clone()),
            sms: sms.unwrap_or(file_sink),
        }
    }

    /// The channels of `[notify]`; says in the log where each medium goes. Inside a Tokio runtime.
    pub fn from_settings(settings: &NotifySettings, data_dir: &Path) -> Result<Router, ChannelError> {
        let file_sink = FileSink::new(settings.file_sink_dir(data_dir));
        let sink_dir = file_sink.dir().display().to_string();
        let email: Option<Arc<dyn Channel>> = match &settings.smtp_url {
            Some(url) => {
                let smtp = Smtp::new(url, &settings.email_from)?;
                tracing::info!(server = %smtp.target(), from = %settings.email_from, "e-mails go out by SMTP");
                Some(Arc::new(smtp))
            }
            None => {
                tracing::info!(dir = %sink_dir, "no SMTP server configured: e-mails are written to the file sink");
                None
            }
        };
        let sms: Option<Arc<dyn Channel>> = match &settings.sms_webhook_url {
            Some(url) => {
                let webhook = SmsWebhook::new(url, settings.sms_webhook_token.as_deref())?;
                tracing::info!(gateway = %webhook.origin(), "SMS go out through the gateway webhook");
                Some(Arc::new(webhook))
            }
            None => {
                tracing::info!(dir = %sink_dir, "no SMS webhook configured: SMS are written to the file sink");
                None
            }
        };
        Ok(Router::new(email, sms, file_sink))
    }
}

impl Channel for Router {
    fn send<'a>(&'a self, row: &'a OutboxRow) -> Pin<Box<dyn Future<Output = Result<(), ChannelError>> + Send + 'a>> {
        match row.medium.as_str() {
            "email" => self.email.send(row),
            "sms" => self.sms.send(row),
            other => {
                let error = format!("unknown medium {other:?}");
                Box::pin(async move { Err(ChannelError::Remote(error)) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_name_the_security_and_default_ports() {
        let t = SmtpTarget::parse("smtp://ana%40example.ro:p%2Fss@mail.example.ro").unwrap();
        assert_eq!(t.security, SmtpSecurity::StartTls);
        assert_eq!(t.port, 587);
        assert_eq!(t.credentials, Some(("ana@example.ro".into(), "p/ss".into())));
        let t = SmtpTarget::parse("smtps://u:p@mail.example.ro").unwrap();
        assert_eq!((t.security, t.port), (SmtpSecurity::Implicit, 465));
        let t = SmtpTarget::parse("smtp://relay.internal?tls=none").unwrap();
        assert_eq!((t.security, t.port, t.credentials), (SmtpSecurity::None, 25, None));
        let t = SmtpTarget::parse("smtp://u:p@127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 2525));
        let t = SmtpTarget::parse("smtp://[::1]:2525?tls=starttls").unwrap();
        assert_eq!((t.host.as_str(), t.security), ("::1", SmtpSecurity::StartTls));
        let t = SmtpTarget::parse("smtp://ana:topsecret@mail.example.ro").unwrap();
        assert!(!format!("{t:?} {t}").contains("topsecret"));
        assert!(!redact_url("smtp://ana:topsecret@mail.example.ro").contains("topsecret"));
    }

    #[test]
    fn bad_smtp_urls_are_refused_without_showing_the_password() {
        for (url, expect) in [
            ("http://mail.example.ro", "scheme"),
            ("smtp://mail.example.ro?tls=maybe", "tls="),
            ("smtps://mail.example.ro?tls=none", "always TLS"),
            ("smtp://u:secret@mail.example.ro?tls=none", "in clear"),
            ("smtp://u@mail.example.ro", "without a password"),
            ("smtp://mail.example.ro/x", "path"),
            ("smtp://mail.example.ro?foo=1", "unknown"),
        ] {
            let err = SmtpTarget::parse(url).unwrap_err();
            assert!(err.contains(expect), "{url}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn the_email_carries_the_outbox_id_subject_and_a_utf8_body() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let smtp = Smtp::new("smtp://127.0.0.1:2525?tls=none", "Parafa <no-reply@parafa.example>").unwrap();
            let row = OutboxRow {
                id: "0190-abc".into(),
                medium: "email".into(),
                recipient: "ana@example.ro".into(),
                subject: "Invitație".into(),
                body: "Bună ziua, Ană".into(),
                kind: "invitation".into(),
                attempts: 0,
                created_at: 1_800_000_000,
                attachments: Vec::new(),
            };
            let text = String::from_utf8(smtp.message(&row).unwrap().formatted()).unwrap();
            assert!(text.contains("Message-ID: <0190-abc@parafa.example>"), "{text}");
            assert!(text.contains("To: ana@example.ro"), "{text}");
            assert!(text.contains("Content-Type: text/plain; charset=utf-8"), "{text}");
            assert!(text.contains("Auto-Submitted: auto-generated"), "{text}");
            let again = String::from_utf8(smtp.message(&row).unwrap().formatted()).unwrap();
            assert_eq!(text, again, "a resend is the same e-mail");
            let bad = OutboxRow {
                recipient: "not an address".into(),
                ..row
            };
            assert!(smtp.message(&bad).is_err());
        });
    }
}
