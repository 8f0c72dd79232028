//! Values named in the settings and how they are read: key types, networks, mail and webhook addresses, an
//! exchange rate. They live with the settings so that the settings know nothing of the modules that use them (the
//! token, the outbox, billing), which build on these.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use lettre::message::Mailbox;
use reqwest::Url;
use serde::{de, Deserialize, Deserializer, Serialize};

/// A key pair Parafa can generate in the token. Read as by [`KeySpec::from_str`], in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum KeySpec {
    Rsa2048,
    Rsa3072,
    P256,
    P384,
}

impl KeySpec {
    /// The name used in settings, the CLI and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySpec::Rsa2048 => "rsa2048",
            KeySpec::Rsa3072 => "rsa3072",
            KeySpec::P256 => "p256",
            KeySpec::P384 => "p384",
        }
    }

    /// RSA or EC.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeySpec::Rsa2048 | KeySpec::Rsa3072)
    }

    /// Key length in bits (modulus for RSA, field size for EC).
    pub fn bits(self) -> u32 {
        match self {
            KeySpec::Rsa2048 => 2048,
            KeySpec::Rsa3072 => 3072,
            KeySpec::P256 => 256,
            KeySpec::P384 => 384,
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeySpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rsa2048" => Ok(KeySpec::Rsa2048),
            "rsa3072" => Ok(KeySpec::Rsa3072),
            "p256" => Ok(KeySpec::P256),
            "p384" => Ok(KeySpec::P384),
            other => Err(format!(
                "unknown key type {other:?}: use rsa2048, rsa3072, p256 or p384"
            )),
        }
    }
}

impl TryFrom<String> for KeySpec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Networks (`[limits] trusted_proxies`)

/// A CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address (a /32 or /128).
pub fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR such as 10.0.0.0/8 or an IP address"))
}

/// Reads a list of networks (each as by [`parse_net`]): a list, or one comma-separated string as
/// `PARAFA_TRUSTED_PROXIES` gives it (blanks around the commas and empty items are ignored).
pub fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Networks {
        Text(String),
        List(Vec<String>),
    }
    let items = match Networks::deserialize(d)? {
        Networks::Text(text) => text.split(',').map(str::to_owned).collect(),
        Networks::List(list) => list,
    };
    let items = items.iter().map(|item| item.trim()).filter(|item| !item.is_empty());
    items
        .map(parse_net)
        .collect::<Result<_, _>>()
        .map_err(de::Error::custom)
}

// ---------------------------------------------------------------------------------------------------------------
// Mail and webhook addresses (`[notify]`)

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://…` (the default): plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// `smtps://…`: TLS from the first byte (port 465).
    Implicit,
    /// `smtp://…?tls=none`: no encryption, for a relay on the same host or network; refused with credentials
    /// unless the host is a loopback address.
    None,
}

/// Where and how to reach the SMTP server, parsed from `[notify] smtp_url`:
///
/// * `smtp://user:pass@host:587` — STARTTLS required (default port 587);
/// * `smtps://user:pass@host:465` — implicit TLS (default port 465);
/// * `smtp://host:25?tls=none` — no TLS, for a local relay (default port 25).
///
/// The user name and password are percent-decoded (`%40` for `@`). The certificate must chain to a public root
/// (the Mozilla set compiled in).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// User name and password.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl std::fmt::Display for SmtpTarget {
    /// `host:port (STARTTLS)`, without the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let security = match self.security {
            SmtpSecurity::StartTls => "STARTTLS",
            SmtpSecurity::Implicit => "TLS",
            SmtpSecurity::None => "no TLS",
        };
        write!(f, "{}:{} ({security})", self.host, self.port)
    }
}

impl SmtpTarget {
    /// Parses an `smtp://` or `smtps://` URL (see the type's documentation); the error says what is wrong.
    pub fn parse(url: &str) -> Result<SmtpTarget, String> {
        let shown = redact_url(url);
        let u = Url::parse(url).map_err(|e| format!("{shown} is not a URL: {e}"))?;
        let mut tls = None;
        for (k, v) in u.query_pairs() {
            match &*k {
                "tls" if tls.is_none() => tls = Some(v.into_owned()),
                _ => {
                    return Err(format!(
                        "{shown}: unknown or repeated parameter {k:?} (only tls=none is known)"
                    ))
                }
            }
        }
        let security = match (u.scheme(), tls.as_deref()) {
            ("smtp", None | Some("starttls")) => SmtpSecurity::StartTls,
            ("smtp", Some("none")) => SmtpSecurity::None,
            ("smtps", None) => SmtpSecurity::Implicit,
            ("smtp", Some(other)) => {
                return Err(format!(
                    "{shown}: tls={other:?} is not known (starttls, the default, or none)"
                ))
            }
            ("smtps", Some(_)) => return Err(format!("{shown}: smtps:// is always TLS; drop the tls parameter")),
            (scheme, _) => {
                return Err(format!(
                    "{shown}: the scheme must be smtp:// or smtps://, not {scheme}://"
                ))
            }
        };
        let host = match u.host_str() {
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            _ => return Err(format!("{shown}: no host")),
        };
        if !matches!(u.path(), "" | "/") || u.fragment().is_some() {
            return Err(format!("{shown}: a path or fragment has no meaning here"));
        }
        let port = u.port().unwrap_or(match security {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Implicit => 465,
            SmtpSecurity::None => 25,
        });
        let credentials = match (u.username(), u.password()) {
            ("", None) => None,
            ("", Some(_)) => return Err(format!("{shown}: a password without a user name")),
            (_, None) => return Err(format!("{shown}: a user name without a password")),
            (user, Some(pass)) => Some((
                percent_decode(user).ok_or_else(|| format!("{shown}: the user name is badly percent-encoded"))?,
                percent_decode(pass).ok_or_else(|| format!("{shown}: the password is badly percent-encoded"))?,
            )),
        };
        let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if security == SmtpSecurity::None && credentials.is_some() && !loopback {
            return Err(format!(
                "{shown}: tls=none would send the password in clear to {host}; use smtp:// (STARTTLS) or smtps://"
            ));
        }
        Ok(SmtpTarget {
            host,
            port,
            security,
            credentials,
        })
    }
}

/// `%XX` decoding of a URL's user name or password; `None` when it is not valid UTF-8 or badly encoded.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A URL with its password, and an HTTP URL's query (it may hold an API key), replaced by `***`, for messages
/// and logs.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if matches!(u.scheme(), "http" | "https") && u.query().is_some() {
                u.set_query(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "the URL".to_owned(),
    }
}

/// Parses `[notify] email_from`: `Name <address>` or a bare address.
pub fn parse_sender(email_from: &str) -> Result<Mailbox, String> {
    email_from
        .parse::<Mailbox>()
        .map_err(|e| format!("{email_from:?} is not an address such as `Parafa <no-reply@example.ro>`: {e}"))
}

/// Parses `[notify] sms_webhook_url`: an `http://` or `https://` URL with a host.
pub fn parse_webhook_url(url: &str) -> Result<Url, String> {
    let shown = redact_url(url);
    let u = Url::parse(url).map_err(|e| format!("{shown} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("{shown} must be an http:// or https:// URL with a host"));
    }
    Ok(u)
}

// ---------------------------------------------------------------------------------------------------------------
// Exchange rates (`[billing]`)

/// Parses a decimal such as `5.0377` into ten-thousandths.
pub fn parse_rate(text: &str) -> Option<i64> {
    let text = text.trim();
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || frac.len() > 4 || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let frac = format!("{frac:0<4}");
    Some(int.parse::<i64>().ok()? * 10_000 + frac.parse::<i64>().ok()?)
}
