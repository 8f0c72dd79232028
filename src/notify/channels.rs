//! Where messages go: the file sink (default, for development, tests and demos), and later SMTP and an SMS
//! gateway webhook when configured.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

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

    /// The file a message goes to.
    pub fn path_of(&self, row: &OutboxRow) -> PathBuf {
        let recipient: String = row
            .recipient
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "@.+-_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(format!(
            "{}-{}-{}-{}.txt",
            row.created_at, row.medium, recipient, row.id
        ))
    }
}

impl Channel for FileSink {
    fn send<'a>(&'a self, row: &'a OutboxRow) -> Pin<Box<dyn Future<Output = Result<(), ChannelError>> + Send + 'a>> {
        Box::pin(async move {
            std::fs::create_dir_all(&self.dir)?;
            let text = format!(
                "To: {}\nMedium: {}\nKind: {}\nSubject: {}\nDate: {}\nMessage-Id: {}\n\n{}\n",
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
