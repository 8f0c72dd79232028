//! Storage: one sqlx `Any` pool over SQLite (the embedded default) or PostgreSQL, one set of portable migrations,
//! and one repository module per table family. The SQL is written once, with `$n` placeholders that both backends
//! accept, integer seconds for times and TEXT for ids, hashes and base64-encoded binary values.

/// Declares a state machine's state, stored as text: the enum (serialized as its stored name), `ALL` (in
/// declaration order), `as_str`, `parse` and `Display`. The transition table is the module's own.
macro_rules! stored_state {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The state of a stored name.
            pub fn parse(text: &str) -> Option<$name> {
                Self::ALL.into_iter().find(|s| s.as_str() == text)
            }

            /// The state of a stored name; a name outside [`Self::ALL`] is a corrupt value of `column`.
            pub fn stored(text: &str, column: &'static str) -> Result<$name, $crate::db::DbError> {
                Self::parse(text).ok_or($crate::db::DbError::Corrupt(column))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod accounts;
pub mod audit;
pub mod ca;
pub mod cache;
pub mod cleanup;
pub mod console;
pub mod contact;
pub mod credentials;
pub mod erasure;
pub mod identity;
pub mod institutional;
pub mod jobs;
pub mod limits;
pub mod oauth;
pub mod orders;
pub mod outbox;
pub mod privacy;
pub mod registry;
pub mod rekey;
pub mod retention;
pub mod signing;
pub mod trust;
pub mod users;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
    #[error("the signature ledger could not commit: {0}")]
    Group(String),
}

impl DbError {
    /// Whether the error is a uniqueness violation (a duplicate e-mail, say).
    pub fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
    }

    /// Whether the database was out of reach rather than wrong: the pool could not give a connection, the
    /// connection broke, or the server ended it (PostgreSQL SQLSTATE class 08, and 57P01–57P03: shut down or
    /// terminated by an administrator, starting up). The request may be retried; the answer is a 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Group(_) => true,
            DbError::Sql(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed) => true,
            DbError::Sql(sqlx::Error::Database(d)) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")),
            _ => false,
        }
    }
}

/// Which server is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database pools. Reads go to `pool`; writes go to `writer`, which on SQLite is a single connection, so
/// writers queue in the process (first come, first served) instead of sleeping in SQLite's busy handler; on
/// PostgreSQL both are the same pool.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Db {
    /// Connects and brings the schema up to date.
    ///
    /// SQLite runs in WAL mode with `synchronous=FULL`: a committed transaction (a debit, a signature row) survives
    /// a process crash *and* a power cut, at the price of an fsync per commit.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let connect_err = |source| DbError::Connect {
            url: redact(url),
            source,
        };
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let options: AnyConnectOptions = url.parse().map_err(connect_err)?;
        let pool_options = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
                // A broken connection shows on use; pinging on every checkout costs a round trip per query.
                .test_before_acquire(false)
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            // Savepoint and statement journals (rollback within a transaction, never needed
                            // after a crash) in memory, not in temporary files written at every changed page.
                            conn.execute("PRAGMA temp_store = MEMORY").await?;
                        }
                        Ok(())
                    })
                })
        };
        let pool = pool_options(max_connections.max(1))
            .connect_with(options.clone())
            .await
            .map_err(connect_err)?;
        let writer = match backend {
            Backend::Sqlite => pool_options(1).connect_with(options).await.map_err(connect_err)?,
            Backend::Postgres => pool.clone(),
        };
        let db = Db { pool, writer, backend };
        MIGRATOR.run(&db.writer).await?;
        Ok(db)
    }

    /// The pool for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool for writes and read-write transactions.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// SQLite or PostgreSQL.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/ready`).
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// The URL without its password, for error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `($1, $2, …), ($n+1, …), …`: the VALUES of a multi-row INSERT of `rows` rows of `cols` columns.
pub fn value_rows(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Takes the PostgreSQL advisory lock `key` on `conn` (waits for it): one instance at a time provisions the
/// token and the CA.
pub async fn advisory_lock(conn: &mut sqlx::AnyConnection, key: i64) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Releases the advisory lock `key` taken on `conn`.
pub async fn advisory_unlock(conn: &mut sqlx::AnyConnection, key: i64) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// The SQL of a state change: `state = 'to'` and the guard `state IN ('from', …)`, a state machine's own
/// constant names (`name`, never input, so they may stand in the text).
pub(crate) fn state_change<S: Copy>(from: &[S], to: S, name: fn(S) -> &'static str) -> (String, String) {
    (
        format!("state = '{}'", name(to)),
        format!("state IN ({})", state_list(from.iter().copied(), name)),
    )
}

/// `'a', 'b'`: states' constant names for an `IN (…)` list.
pub(crate) fn state_list<S>(states: impl IntoIterator<Item = S>, name: fn(S) -> &'static str) -> String {
    let names: Vec<String> = states.into_iter().map(|s| format!("'{}'", name(s))).collect();
    names.join(", ")
}

/// Base64 (standard) for binary values stored as TEXT.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes a stored base64 value.
pub fn unb64(text: &str, what: &'static str) -> Result<Vec<u8>, DbError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| DbError::Corrupt(what))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn multi_row_values_number_their_placeholders() {
        assert_eq!(super::value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(redact("sqlite://./data/parafa.db"), "sqlite://./data/parafa.db");
    }
}
