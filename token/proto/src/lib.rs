//! The agent protocol of Parafa's desktop virtual token (issue 17, `docs/TOKEN.md`).
//!
//! The PKCS#11 module (`libparafa_pkcs11.so`, in the application's process) and the agent (`parafa-token agent`,
//! one per user) talk over a Unix socket, one JSON object per line: the module connects, writes one [`Request`],
//! reads one [`Response`] and closes. A fresh connection per call keeps the module free of threads and safe
//! across `fork()`. The socket is the user's own (0600 in a 0700 directory); the agent also checks the peer's uid.
//!
//! The module never sees a secret: no refresh or access token, only the holder's TOTP code when the application
//! gave one through `C_Login(CKU_CONTEXT_SPECIFIC, code)`, which it passes on for that one signature.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Bumped when a request or answer changes shape; the agent refuses another version with [`ErrorKind::Protocol`].
pub const VERSION: u32 = 1;

/// The longest line either side reads (a chain of certificates fits many times over).
pub const MAX_LINE: usize = 1 << 20;

/// The environment variable that names the socket (tests, several agents on one machine).
pub const SOCKET_ENV: &str = "PARAFA_TOKEN_SOCKET";

/// The environment variable that names the `parafa-token` program the module starts when no agent answers.
pub const AGENT_ENV: &str = "PARAFA_TOKEN_AGENT";

/// The socket's path: `$PARAFA_TOKEN_SOCKET`, else `$XDG_RUNTIME_DIR/parafa-token/agent.sock`, else
/// `/tmp/parafa-token-<uid>/agent.sock`.
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("parafa-token"),
        // SAFETY: getuid has no preconditions and cannot fail.
        None => PathBuf::from(format!("/tmp/parafa-token-{}", unsafe { getuid() })),
    };
    dir.join("agent.sock")
}

extern "C" {
    fn getuid() -> u32;
}

/// What the module asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The logged-in account and its credentials (the agent caches `credentials/list|info` for a short while).
    Token { version: u32 },
    /// One signature with one credential: `credentials/authorize` bound to exactly this hash, then `signHash`.
    Sign(SignRequest),
    /// The companion's own (`parafa-token agent --daemon`): is an agent there? Answered with [`Response::Pong`],
    /// without a call to the server.
    Ping { version: u32 },
    /// The companion's own (`parafa-token status`): the account, where its login is kept and each credential's
    /// certificate details; answered with [`Response::Status`].
    Status { version: u32 },
    /// The companion's own (`parafa-token logout`): the agent revokes the login at the server, forgets it here,
    /// answers [`Response::Done`] and exits.
    Logout { version: u32 },
    /// The companion's own (`parafa-token login` stored a new login): the agent forgets its access token and its
    /// cache, and reads the login again at the next request; answered with [`Response::Done`].
    Reload { version: u32 },
}

/// One signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignRequest {
    pub version: u32,
    /// The CSC credential id.
    pub credential: String,
    /// CSC `signAlgo`, an OID in dotted form (`1.2.840.113549.1.1.1` with `hash_algo`, `1.2.840.113549.1.1.10`
    /// with `sign_algo_params`, `1.2.840.10045.2.1` with `hash_algo`, …).
    pub sign_algo: String,
    /// CSC `signAlgoParams`: base64 DER (RSASSA-PSS-params), for PSS only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_algo_params: Option<String>,
    /// CSC `hashAlgo`, an OID in dotted form.
    pub hash_algo: String,
    /// The digest, base64 (standard alphabet, padded).
    pub hash: String,
    /// The holder's TOTP code when the application gave one (`C_Login(CKU_CONTEXT_SPECIFIC, code)`); `None`: the
    /// agent asks the holder through its prompt (so does an empty code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Who asks, for the prompt: the application's name and process id, as the module read them.
    pub app: String,
    /// What the signature is for, for the prompt, when the module can tell (e.g. "a TLS login" for a raw
    /// `CKM_ECDSA` or PSS of a TLS handshake cannot be told apart from a document; the module says what it knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// To [`Request::Token`]: `None` when nobody is logged in (the slot shows no token).
    Token { account: Option<Account> },
    /// To [`Request::Sign`]: the signature as the server gave it, base64 (PKCS#1 or PSS bytes; DER
    /// `ECDSA-Sig-Value` for ECDSA, which the module turns into raw `r‖s`).
    Signature { signature: String },
    /// A refusal or a failure.
    Error { kind: ErrorKind, message: String },
    /// To [`Request::Ping`]: the agent's process id.
    Pong { pid: u32 },
    /// To [`Request::Status`].
    Status(Status),
    /// To [`Request::Logout`] and [`Request::Reload`]: what was done, in words.
    Done { message: String },
}

/// What `parafa-token status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Where the login (the refresh token) is kept, in words: the Secret Service's collection, or the file's path.
    pub store: String,
    /// The desktop app's client id, when logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `None` when nobody is logged in.
    pub account: Option<Account>,
    /// The certificates' details, one per credential, in the order of `account.credentials`.
    pub certificates: Vec<CertSummary>,
}

/// A credential's certificate as `credentials/list` describes it (`certInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertSummary {
    /// The CSC credential id.
    pub credential: String,
    /// The subject's distinguished name (RFC 4514).
    pub subject: String,
    /// The holder's name: the subject's common name.
    pub holder: String,
    /// The serial number, hex.
    pub serial: String,
    /// `YYYYMMDDHHMMSSZ`.
    pub valid_from: String,
    /// `YYYYMMDDHHMMSSZ`.
    pub valid_to: String,
}

/// The logged-in account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The server's base URL.
    pub server: String,
    /// The holder's name as the certificates give it (the token's label), else the server's host.
    pub label: String,
    /// The holder's credentials that can sign or could (valid, expired, suspended: the module shows them all; a
    /// signature with one that cannot sign is refused with its reason).
    pub credentials: Vec<Credential>,
}

/// One credential, from `credentials/info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    /// The CSC credential id (the objects' `CKA_ID` is its bytes).
    pub id: String,
    /// `key.status`: "enabled" or "disabled".
    pub key_status: String,
    /// `cert.status`: "valid", "expired", "revoked", "suspended".
    pub cert_status: String,
    /// `key.algo`: the OIDs the key may sign with.
    pub key_algos: Vec<String>,
    /// `key.len`: bits.
    pub key_len: u32,
    /// `key.curve` (an OID) for EC keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    /// `cert.certificates`: base64 DER, the signer's first, then the CA chain.
    pub certificates: Vec<String>,
    /// Transactions left in the holder's packages, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions_left: Option<i64>,
}

/// Why a request failed; the module maps each to its PKCS#11 return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Nobody is logged in, or the login ended (the grant was revoked or expired): `CKR_USER_NOT_LOGGED_IN`
    /// (the token is gone: `CKR_TOKEN_NOT_PRESENT` where the call concerns the token).
    NotLoggedIn,
    /// A wrong or already used code: `CKR_PIN_INCORRECT`.
    PinIncorrect,
    /// Too many wrong codes, authorisation locked for a while: `CKR_PIN_LOCKED`.
    PinLocked,
    /// The holder cancelled the prompt: `CKR_FUNCTION_CANCELED`.
    Cancelled,
    /// A code was needed and there is no way to ask (no prompt program, no display): `CKR_USER_NOT_LOGGED_IN`.
    NoPrompt,
    /// The server refused the signature for a reason the holder cannot fix with a code (quota spent, certificate
    /// expired or revoked, credential disabled): `CKR_KEY_FUNCTION_NOT_PERMITTED`.
    Refused,
    /// The request itself is wrong (an algorithm the credential does not allow, a bad digest length):
    /// `CKR_MECHANISM_INVALID` / `CKR_DATA_LEN_RANGE` as the module can tell; else `CKR_ARGUMENTS_BAD`.
    Invalid,
    /// The server or the network failed: `CKR_DEVICE_ERROR`.
    Unavailable,
    /// Another protocol version: `CKR_DEVICE_ERROR`.
    Protocol,
}

/// A failure to talk to the agent.
#[derive(Debug)]
pub enum TalkError {
    /// No agent listens on the socket (not started, or gone).
    NoAgent(std::io::Error),
    /// The connection broke or the answer was not a [`Response`].
    Broken(String),
}

impl std::fmt::Display for TalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TalkError::NoAgent(e) => write!(f, "no agent answers: {e}"),
            TalkError::Broken(why) => write!(f, "the agent's answer broke off: {why}"),
        }
    }
}

impl std::error::Error for TalkError {}

/// Sends one request on a fresh connection and reads the answer. `timeout` bounds each read and write (a sign
/// request waits for the holder's code, so its caller gives minutes).
pub fn call(socket: &std::path::Path, request: &Request, timeout: Duration) -> Result<Response, TalkError> {
    let mut stream = UnixStream::connect(socket).map_err(TalkError::NoAgent)?;
    let broken = |e: std::io::Error| TalkError::Broken(e.to_string());
    stream.set_read_timeout(Some(timeout)).map_err(broken)?;
    stream.set_write_timeout(Some(timeout)).map_err(broken)?;
    write_line(&mut stream, request).map_err(broken)?;
    let mut reader = BufReader::new(stream);
    read_line(&mut reader)
        .map_err(broken)?
        .ok_or_else(|| TalkError::Broken("the agent closed the connection without an answer".into()))
}

/// Writes one value as one line.
pub fn write_line<T: Serialize>(w: &mut impl Write, value: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one line (at most [`MAX_LINE`] bytes) as a value; `None` at the end of the stream.
pub fn read_line<T: for<'de> Deserialize<'de>, R: BufRead>(r: &mut R) -> std::io::Result<Option<T>> {
    let mut line = Vec::new();
    let n = std::io::Read::take(&mut *r, MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            if n > MAX_LINE {
                "line too long"
            } else {
                "line cut short"
            },
        ));
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_an_answer_cross_as_one_line_each() {
        let req = Request::Sign(SignRequest {
            version: VERSION,
            credential: "c1".into(),
            sign_algo: "1.2.840.113549.1.1.1".into(),
            sign_algo_params: None,
            hash_algo: "2.16.840.1.101.3.4.2.1".into(),
            hash: "AAAA".into(),
            code: Some("123456".into()),
            app: "pkcs11-tool (4242)".into(),
            purpose: None,
        });
        let mut buf = Vec::new();
        write_line(&mut buf, &req).unwrap();
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(String::from_utf8_lossy(&buf).starts_with(r#"{"op":"sign","#));
        let back: Request = read_line(&mut &buf[..]).unwrap().unwrap();
        assert_eq!(back, req);

        let err = Response::Error {
            kind: ErrorKind::PinIncorrect,
            message: "wrong code".into(),
        };
        let mut buf = Vec::new();
        write_line(&mut buf, &err).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buf),
            "{\"result\":\"error\",\"kind\":\"pin_incorrect\",\"message\":\"wrong code\"}\n"
        );
    }

    #[test]
    fn a_line_without_its_end_or_too_long_is_refused() {
        let cut: std::io::Result<Option<Request>> = read_line(&mut &b"{\"op\":\"token\""[..]);
        assert!(cut.is_err());
        let long = vec![b' '; MAX_LINE + 10];
        let too_long: std::io::Result<Option<Request>> = read_line(&mut &long[..]);
        assert!(too_long.is_err());
        let none: Option<Request> = read_line(&mut &b""[..]).unwrap();
        assert!(none.is_none());
    }
}
