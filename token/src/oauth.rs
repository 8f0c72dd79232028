//! The OAuth 2.0 client side of a native app (RFC 8252): the server's metadata (RFC 8414), the authorization code
//! with PKCE S256 (RFC 7636) received on a loopback redirect, the `iss` check of RFC 9207, refresh with rotation,
//! and revocation (RFC 7009). Parafa registers the desktop app as a public client: no secret, the `client_id` in
//! each form.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The scope the desktop app asks: the holder's credentials, each signature authorised with a TOTP code.
pub const SCOPE: &str = "service";

/// The path of the loopback redirect URI.
pub const CALLBACK_PATH: &str = "/callback";

/// The server's authorization server metadata (RFC 8414), the members this program uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The issuer identifier, which the redirect's `iss` must equal (RFC 9207).
    pub issuer: String,
    /// Where the browser goes.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: String,
    /// Where tokens are revoked.
    pub revocation_endpoint: String,
}

/// A token endpoint answer (RFC 6749 §5.1).
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    /// A short-lived bearer token for the CSC API; never stored.
    pub access_token: String,
    /// The next refresh token (Parafa rotates them).
    pub refresh_token: Option<String>,
    /// The access token's lifetime in seconds.
    pub expires_in: Option<i64>,
}

/// An HTTP client for the server: rustls, a timeout, no redirects followed.
pub fn http() -> Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("parafa-token/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// The server's base URL without a trailing slash.
pub fn base(server: &str) -> String {
    server.trim_end_matches('/').to_owned()
}

/// `GET /.well-known/oauth-authorization-server`, its issuer checked against the server asked.
pub fn metadata(http: &reqwest::blocking::Client, server: &str) -> Result<Metadata> {
    let url = format!("{}/.well-known/oauth-authorization-server", base(server));
    let r = http.get(&url).send().with_context(|| format!("reaching {url}"))?;
    if !r.status().is_success() {
        bail!("{url} answered {}: is {server} a Parafa server?", r.status());
    }
    let m: Metadata = r.json().with_context(|| format!("reading {url}"))?;
    if base(&m.issuer) != base(server) {
        bail!("the server at {server} calls itself {}: use that URL", m.issuer);
    }
    Ok(m)
}

/// `n` random bytes, base64url without padding.
fn random(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A PKCE pair: the verifier (43 characters from 32 random bytes) and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = random(32);
    let challenge = challenge_of(&verifier);
    (verifier, challenge)
}

/// BASE64URL(SHA-256(verifier)).
pub fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh `state` value.
pub fn state() -> String {
    random(16)
}

/// Percent-encodes a query or form component (unreserved characters kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes a query component (`%XX` and `+`); `None` when it is not UTF-8 or an escape is broken.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The decoded parameters of a query string, in order.
pub fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The authorization request's URL.
pub fn authorization_url(m: &Metadata, client_id: &str, redirect_uri: &str, state: &str, challenge: &str) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let sep = if m.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{sep}{}", m.authorization_endpoint, q.join("&"))
}

/// The loopback listener (RFC 8252 §7.3): 127.0.0.1 on a port the system chooses. Returns it and the redirect URI.
pub fn listen() -> Result<(TcpListener, String)> {
    let l = TcpListener::bind(("127.0.0.1", 0)).context("listening on 127.0.0.1")?;
    let port = l.local_addr()?.port();
    Ok((l, format!("http://127.0.0.1:{port}{CALLBACK_PATH}")))
}

/// What the browser brought back to the redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The query's parameters.
    pub params: Vec<(String, String)>,
}

impl Callback {
    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Waits for the browser's `GET /callback?…` on the listener (other requests, such as a favicon, get a 404), and
/// answers with a page telling the holder they may close it. Gives up after `timeout`.
pub fn wait_for_callback(listener: &TcpListener, timeout: Duration) -> Result<Callback> {
    let deadline = std::time::Instant::now() + timeout;
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                if let Some(cb) = serve_one(stream)? {
                    return Ok(cb);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= deadline {
                    bail!("no answer from the browser in {} s", timeout.as_secs());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads one request; `Some` for the callback.
fn serve_one(mut stream: TcpStream) -> Result<Option<Callback>> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return Ok(None);
    }
    // The headers are read and ignored.
    let mut header = String::new();
    while reader.read_line(&mut header).map(|n| n > 2).unwrap_or(false) {
        header.clear();
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" || path != CALLBACK_PATH {
        respond(&mut stream, "404 Not Found", "Not found.");
        return Ok(None);
    }
    let cb = Callback {
        params: query_params(query),
    };
    let body = if cb.get("code").is_some() {
        "Parafa: you are logged in. You may close this window and return to parafa-token."
    } else {
        "Parafa: the login did not complete. You may close this window; parafa-token says why."
    };
    respond(&mut stream, "200 OK", body);
    Ok(Some(cb))
}

fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Parafa</title><p>{}</p>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// Checks the callback against the request (state, issuer) and returns the code.
pub fn code_of(cb: &Callback, state: &str, issuer: &str) -> Result<String> {
    // RFC 9207: the issuer is checked before anything else is believed, errors included.
    match cb.get("iss") {
        Some(iss) if base(iss) == base(issuer) => {}
        Some(iss) => bail!("the answer came from {iss}, not from {issuer}: refused (mix-up attack?)"),
        None => bail!("the answer has no iss parameter: refused"),
    }
    if cb.get("state") != Some(state) {
        bail!("the answer's state is not this login's: refused");
    }
    if let Some(err) = cb.get("error") {
        let why = cb.get("error_description").unwrap_or_default();
        if err == "access_denied" {
            bail!(
                "the login was refused in the browser{}",
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {why}")
                }
            );
        }
        bail!("the server refused the login: {err} {why}");
    }
    cb.get("code")
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the answer has no code"))
}

/// An error of the token or revocation endpoint: `error` and `error_description`.
#[derive(Debug, Clone)]
pub struct EndpointError {
    /// The HTTP status.
    pub status: u16,
    /// RFC 6749 §5.2 `error` (empty when the body was not one).
    pub error: String,
    /// Its description.
    pub description: String,
}

impl std::fmt::Display for EndpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.error, self.description)
    }
}

impl std::error::Error for EndpointError {}

fn post_form(
    http: &reqwest::blocking::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<reqwest::blocking::Response> {
    let r = http
        .post(url)
        .form(form)
        .send()
        .with_context(|| format!("reaching {url}"))?;
    if r.status().is_success() {
        return Ok(r);
    }
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().unwrap_or_default();
    Err(EndpointError {
        status,
        error: v["error"].as_str().unwrap_or_default().to_owned(),
        description: v["error_description"].as_str().unwrap_or_default().to_owned(),
    }
    .into())
}

/// Exchanges the code (with the PKCE verifier) for tokens.
pub fn exchange(
    http: &reqwest::blocking::Client,
    m: &Metadata,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Tokens> {
    let r = post_form(
        http,
        &m.token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", client_id),
        ],
    )?;
    Ok(r.json()?)
}

/// Uses the refresh token: a new access token and the next refresh token.
pub fn refresh(http: &reqwest::blocking::Client, m: &Metadata, client_id: &str, refresh_token: &str) -> Result<Tokens> {
    let r = post_form(
        http,
        &m.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ],
    )?;
    Ok(r.json()?)
}

/// Revokes the refresh token (and with it what the login gave).
pub fn revoke(http: &reqwest::blocking::Client, m: &Metadata, client_id: &str, refresh_token: &str) -> Result<()> {
    post_form(
        http,
        &m.revocation_endpoint,
        &[
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
            ("client_id", client_id),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_of_the_rfc_7636_example() {
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let (v, c) = pkce();
        assert_eq!(v.len(), 43);
        assert_eq!(c, challenge_of(&v));
    }

    #[test]
    fn query_components_round_trip() {
        let s = "http://127.0.0.1:5000/callback?a=b c&é";
        assert_eq!(decode(&encode(s)).as_deref(), Some(s));
        assert_eq!(
            query_params("code=x%2By&state=s+t&iss=http%3A%2F%2Fh"),
            vec![
                ("code".into(), "x+y".into()),
                ("state".into(), "s t".into()),
                ("iss".into(), "http://h".into())
            ]
        );
        assert_eq!(decode("%zz"), None);
    }

    fn cb(params: &[(&str, &str)]) -> Callback {
        Callback {
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn the_callback_needs_this_issuer_and_this_state() {
        let iss = "https://parafa.example";
        assert_eq!(
            code_of(&cb(&[("code", "c"), ("state", "s"), ("iss", iss)]), "s", iss).unwrap(),
            "c"
        );
        assert!(code_of(&cb(&[("code", "c"), ("state", "s")]), "s", iss).is_err());
        assert!(code_of(
            &cb(&[("code", "c"), ("state", "s"), ("iss", "https://evil.example")]),
            "s",
            iss
        )
        .is_err());
        assert!(code_of(&cb(&[("code", "c"), ("state", "other"), ("iss", iss)]), "s", iss).is_err());
        let denied = code_of(
            &cb(&[("error", "access_denied"), ("state", "s"), ("iss", iss)]),
            "s",
            iss,
        );
        assert!(denied.unwrap_err().to_string().contains("refused in the browser"));
    }
}
