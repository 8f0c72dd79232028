//! One login in use: the server's metadata, the access token kept in memory until it expires, and the refresh that
//! replaces it. The agent keeps one [`Session`] for all its connections; a command that runs without the agent
//! (`status`, `logout`) makes its own.
//!
//! Refresh tokens rotate and a reused one ends the grant, so a refresh always happens under the store's lock
//! ([`store::lock`]): the token is read from the store, used once, and the next one written back before the lock is
//! released. No refresh token is kept in memory between two refreshes: whoever refreshes next (this process or
//! another) reads the newest one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use parafa_token_proto::ErrorKind;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::{oauth, store};

/// How long before its end an access token is replaced (the server's clock may run ahead of ours).
const MARGIN: Duration = Duration::from_secs(30);

/// The lifetime assumed when the server gives none.
const DEFAULT_LIFETIME: i64 = 300;

/// A request that failed, with the kind the PKCS#11 module maps to a return value and words for the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What went wrong, in words (never a secret).
    pub message: String,
    /// Nobody is logged in at all (as opposed to a login that ended).
    pub no_login: bool,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            no_login: false,
        }
    }

    /// The server or the network failed.
    pub fn unavailable(e: impl std::fmt::Display) -> Failure {
        Failure::new(ErrorKind::Unavailable, e.to_string())
    }

    fn no_login() -> Failure {
        Failure {
            no_login: true,
            ..Failure::new(
                ErrorKind::NotLoggedIn,
                "not logged in: run `parafa-token login --server URL` first",
            )
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// An access token and what it belongs to.
struct Access {
    server: String,
    client_id: String,
    token: SecretString,
    until: Instant,
}

#[derive(Default)]
struct State {
    meta: Option<oauth::Metadata>,
    access: Option<Access>,
}

/// The login in use.
pub struct Session {
    http: reqwest::blocking::Client,
    /// Held while a token is refreshed, so that this process's threads refresh one at a time.
    state: Mutex<State>,
}

/// Who is logged in, as the store says.
#[derive(Debug, Clone)]
pub struct Who {
    /// The server's base URL.
    pub server: String,
    /// The desktop app's client id.
    pub client_id: String,
}

impl Session {
    /// A session with its HTTP client; nothing is read or asked yet.
    pub fn new() -> anyhow::Result<Session> {
        Ok(Session {
            http: oauth::http()?,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A thread that panicked while holding the lock leaves nothing half-done that matters: start again.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the access token and the server's metadata (a new login was stored, or the old one revoked).
    pub fn forget(&self) {
        *self.state() = State::default();
    }

    /// The server's metadata, fetched once per server.
    fn metadata(&self, st: &mut State, server: &str) -> Result<oauth::Metadata, Failure> {
        if let Some(m) = st
            .meta
            .as_ref()
            .filter(|m| oauth::base(&m.issuer) == oauth::base(server))
        {
            return Ok(m.clone());
        }
        let m = oauth::metadata(&self.http, server).map_err(|e| Failure::unavailable(format!("{e:#}")))?;
        st.meta = Some(m.clone());
        Ok(m)
    }

    /// A valid access token (refreshed when it has expired) and who it belongs to.
    pub fn access(&self) -> Result<(Who, SecretString), Failure> {
        let mut st = self.state();
        if let Some(a) = st.access.as_ref().filter(|a| a.until > Instant::now()) {
            let who = Who {
                server: a.server.clone(),
                client_id: a.client_id.clone(),
            };
            return Ok((who, a.token.clone()));
        }
        st.access = None;
        let held = store::lock().map_err(|e| Failure::unavailable(format!("{e:#}")))?;
        let mut acct = store::load()
            .map_err(|e| Failure::unavailable(format!("{e:#}")))?
            .ok_or_else(Failure::no_login)?;
        let meta = self.metadata(&mut st, &acct.server)?;
        let tokens = match oauth::refresh(&self.http, &meta, &acct.client_id, &acct.refresh_token) {
            Ok(t) => t,
            Err(e) => {
                return Err(match e.downcast_ref::<oauth::EndpointError>() {
                    Some(ee) if ee.error == "invalid_grant" => Failure::new(
                        ErrorKind::NotLoggedIn,
                        format!(
                            "the login at {} has ended (expired, revoked, or used elsewhere): run `parafa-token login` again",
                            acct.server
                        ),
                    ),
                    _ => Failure::unavailable(format!("refreshing the login: {e:#}")),
                })
            }
        };
        if let Some(next) = tokens.refresh_token {
            acct.refresh_token = next;
            store::save(&acct, &held).map_err(|e| Failure::unavailable(format!("{e:#}")))?;
        }
        drop(held);
        let lifetime = Duration::from_secs(tokens.expires_in.unwrap_or(DEFAULT_LIFETIME).max(0) as u64);
        let token = SecretString::from(tokens.access_token);
        st.access = Some(Access {
            server: acct.server.clone(),
            client_id: acct.client_id.clone(),
            token: token.clone(),
            until: Instant::now() + lifetime.saturating_sub(MARGIN),
        });
        Ok((
            Who {
                server: acct.server,
                client_id: acct.client_id,
            },
            token,
        ))
    }

    /// Drops the access token if it is still `token` (the server refused it).
    fn expire(&self, token: &SecretString) {
        let mut st = self.state();
        if st
            .access
            .as_ref()
            .is_some_and(|a| a.token.expose_secret() == token.expose_secret())
        {
            st.access = None;
        }
    }

    /// POSTs a JSON body to a CSC v2 method (`credentials/list`, …) with the access token; a token the server no
    /// longer takes is replaced once. Returns the JSON answer and who it was asked for.
    pub fn csc(&self, method: &str, body: &Value) -> Result<(Who, Value), Failure> {
        let mut tries = 0;
        loop {
            tries += 1;
            let (who, token) = self.access()?;
            let url = format!("{}/csc/v2/{method}", oauth::base(&who.server));
            let r = self
                .http
                .post(&url)
                .bearer_auth(token.expose_secret())
                .json(body)
                .send()
                .map_err(|e| Failure::unavailable(format!("reaching {url}: {e}")))?;
            let status = r.status().as_u16();
            if status == 401 && tries == 1 {
                self.expire(&token);
                continue;
            }
            let text = r
                .text()
                .map_err(|e| Failure::unavailable(format!("reading {url}: {e}")))?;
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                return Ok((who, v));
            }
            let error = v["error"].as_str().unwrap_or_default();
            let description = v["error_description"].as_str().unwrap_or_default();
            let kind = crate::csc::classify(status, error, description);
            let message = if description.is_empty() {
                format!("{method} answered {status} {error}")
            } else {
                description.to_owned()
            };
            return Err(Failure::new(kind, message));
        }
    }

    /// Revokes the login at the server and forgets it here. `Ok` with what was done; `Err` when the server could not
    /// be told (the login is forgotten here all the same).
    pub fn logout(&self) -> Result<String, Failure> {
        let mut st = self.state();
        let held = store::lock().map_err(|e| Failure::unavailable(format!("{e:#}")))?;
        let Some(acct) = store::load().map_err(|e| Failure::unavailable(format!("{e:#}")))? else {
            return Ok("not logged in".into());
        };
        let revoked = self.metadata(&mut st, &acct.server).and_then(|meta| {
            oauth::revoke(&self.http, &meta, &acct.client_id, &acct.refresh_token)
                .map_err(|e| Failure::unavailable(format!("{e:#}")))
        });
        store::remove(&held).map_err(|e| Failure::unavailable(format!("{e:#}")))?;
        drop(held);
        *st = State::default();
        match revoked {
            Ok(()) => Ok(format!("logged out of {}", acct.server)),
            Err(e) => Err(Failure::unavailable(format!(
                "the login was forgotten here, but {} could not be told ({e}): revoke the app in your account's settings",
                acct.server
            ))),
        }
    }
}
