//! The CSC calls the agent makes for the PKCS#11 module: `credentials/list` (the token's objects),
//! `credentials/authorize` (a SAD bound to exactly one hash, for one TOTP code) and `signatures/signHash`; and the
//! mapping of the server's refusals to the protocol's [`ErrorKind`].
//!
//! Transactions left: Parafa's CSC answers do not carry the holder's remaining transactions (only a refusal says
//! how many are left once they run out), so [`Credential::transactions_left`] is read when a server sends a
//! `transactionsLeft` member and is `None` with Parafa today.

use parafa_token_proto::{Account, CertSummary, Credential, ErrorKind, SignRequest};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::session::{Failure, Session};

/// The id of the TOTP among a Parafa credential's `authData` objects.
const OTP_ID: &str = "otp";

/// The account and its credentials' certificates, as one `credentials/list` gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// What the module shows.
    pub account: Account,
    /// What `status` shows besides.
    pub certificates: Vec<CertSummary>,
    /// The desktop app's client id.
    pub client_id: String,
}

impl Listing {
    /// A credential and its certificate's details.
    pub fn find(&self, id: &str) -> Option<(&Credential, Option<&CertSummary>)> {
        let c = self.account.credentials.iter().find(|c| c.id == id)?;
        Some((c, self.certificates.iter().find(|s| s.credential == id)))
    }
}

/// `credentials/list` with each credential's info, its certificate chain and the certificate's details.
pub fn list(session: &Session) -> Result<Listing, Failure> {
    let body = json!({
        "credentialInfo": true,
        "certificates": "chain",
        "certInfo": true,
        "authInfo": true,
    });
    let (who, v) = session.csc("credentials/list", &body)?;
    Ok(listing(&who.server, &who.client_id, &v))
}

/// A `credentials/list` answer read.
pub fn listing(server: &str, client_id: &str, v: &Value) -> Listing {
    let infos = v["credentialInfos"].as_array().cloned().unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut credentials = Vec::new();
    let mut certificates = Vec::new();
    for id in v["credentialIDs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let Some(info) = infos.iter().find(|i| i["credentialID"] == id) else {
            continue;
        };
        let (key, cert) = (&info["key"], &info["cert"]);
        credentials.push(Credential {
            id: id.to_owned(),
            key_status: text(&key["status"]),
            cert_status: text(&cert["status"]),
            key_algos: key["algo"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            key_len: key["len"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            curve: key["curve"].as_str().map(str::to_owned),
            certificates: cert["certificates"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            transactions_left: info["transactionsLeft"].as_i64(),
        });
        let subject = text(&cert["subjectDN"]);
        certificates.push(CertSummary {
            credential: id.to_owned(),
            holder: common_name(&subject).unwrap_or_default(),
            subject,
            serial: text(&cert["serialNumber"]),
            valid_from: text(&cert["validFrom"]),
            valid_to: text(&cert["validTo"]),
        });
    }
    // The token's label: the holder's name from a certificate that can sign, else from any, else the server's host.
    let label = credentials
        .iter()
        .zip(&certificates)
        .filter(|(c, _)| c.cert_status == "valid")
        .chain(credentials.iter().zip(&certificates))
        .map(|(_, s)| s.holder.clone())
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| host(server));
    Listing {
        account: Account {
            server: server.to_owned(),
            label,
            credentials,
        },
        certificates,
        client_id: client_id.to_owned(),
    }
}

/// The host (and port) of a URL.
fn host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest).to_owned()
}

/// The common name of an RFC 4514 distinguished name, escapes undone (`\,`, `\XX` bytes of UTF-8); the first CN
/// when there are several.
pub fn common_name(dn: &str) -> Option<String> {
    let mut attrs: Vec<(String, Vec<u8>)> = Vec::new();
    let (mut cur, mut key): (Vec<u8>, Option<String>) = (Vec::new(), None);
    let mut chars = dn.chars().peekable();
    let mut flush = |key: &mut Option<String>, cur: &mut Vec<u8>| {
        if let Some(k) = key.take() {
            attrs.push((k.trim().to_owned(), std::mem::take(cur)));
        }
        cur.clear();
    };
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let a = chars.next()?;
                match (a.to_digit(16), chars.peek().and_then(|b| b.to_digit(16))) {
                    (Some(hi), Some(lo)) => {
                        chars.next();
                        cur.push((hi * 16 + lo) as u8);
                    }
                    _ => cur.extend_from_slice(a.encode_utf8(&mut buf).as_bytes()),
                }
            }
            '=' if key.is_none() => key = Some(String::from_utf8_lossy(&std::mem::take(&mut cur)).into_owned()),
            ',' | '+' => flush(&mut key, &mut cur),
            _ => cur.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    flush(&mut key, &mut cur);
    attrs
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("CN") || k == "2.5.4.3")
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .filter(|v| !v.is_empty())
}

/// `credentials/authorize` for exactly one signature of exactly this hash, with the holder's code: the SAD.
pub fn authorize(session: &Session, req: &SignRequest, code: &SecretString) -> Result<SecretString, Failure> {
    let body = json!({
        "credentialID": req.credential,
        "numSignatures": 1,
        "hashes": [req.hash],
        "hashAlgorithmOID": req.hash_algo,
        "authData": [{ "id": OTP_ID, "value": code.expose_secret() }],
    });
    let (_, v) = session.csc("credentials/authorize", &body)?;
    v["SAD"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_owned()))
        .ok_or_else(|| Failure::unavailable("credentials/authorize answered without a SAD"))
}

/// `signatures/signHash` of the one hash the SAD was issued for: the signature, base64.
pub fn sign_hash(session: &Session, req: &SignRequest, sad: &SecretString) -> Result<String, Failure> {
    let mut body = json!({
        "credentialID": req.credential,
        "SAD": sad.expose_secret(),
        "hashes": [req.hash],
        "hashAlgorithmOID": req.hash_algo,
        "signAlgo": req.sign_algo,
    });
    if let Some(p) = &req.sign_algo_params {
        body["signAlgoParams"] = json!(p);
    }
    let (_, v) = session.csc("signatures/signHash", &body)?;
    v["signatures"][0]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Failure::unavailable("signatures/signHash answered without a signature"))
}

/// The kind of a CSC error answer: HTTP status, `error` and `error_description` as Parafa words them
/// (`src/csc/service.rs`, `src/error.rs`).
pub fn classify(status: u16, error: &str, description: &str) -> ErrorKind {
    let d = description.to_ascii_lowercase();
    match (status, error) {
        (401, _) => ErrorKind::NotLoggedIn,
        // A wrong, malformed or already used code (v2 `invalid_authentication_data`, v1 `invalid_otp`).
        (_, "invalid_authentication_data" | "invalid_otp") => ErrorKind::PinIncorrect,
        (_, "invalid_request") if d.starts_with("credential locked") => ErrorKind::PinLocked,
        (_, "invalid_request")
            if d.contains("quota exhausted")
                || d.contains("certificate has expired")
                || d.contains("has been revoked")
                || d.contains("is suspended")
                || d.contains("was replaced by its successor") =>
        {
            ErrorKind::Refused
        }
        (403, _) => ErrorKind::Refused,
        (429, _) | (500.., _) => ErrorKind::Unavailable,
        (400..=499, _) => ErrorKind::Invalid,
        _ => ErrorKind::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holders_name_is_the_common_name_with_escapes_undone() {
        assert_eq!(
            common_name("CN=Ana Maria Popescu,O=Parafa,C=RO").as_deref(),
            Some("Ana Maria Popescu")
        );
        assert_eq!(common_name("C=RO,cn=Popescu\\, Ana").as_deref(), Some("Popescu, Ana"));
        assert_eq!(
            common_name("CN=Ioan \\C8\\98tefan+SERIALNUMBER=1").as_deref(),
            Some("Ioan Ștefan")
        );
        assert_eq!(common_name("2.5.4.3=Ion,C=RO").as_deref(), Some("Ion"));
        assert_eq!(common_name("O=Parafa,C=RO"), None);
    }

    #[test]
    fn the_servers_refusals_map_to_what_the_module_says() {
        let k = |s, e, d| classify(s, e, d);
        assert_eq!(
            k(400, "invalid_authentication_data", "The OTP is invalid: wrong"),
            ErrorKind::PinIncorrect
        );
        assert_eq!(
            k(400, "invalid_request", "Credential locked: too many wrong codes"),
            ErrorKind::PinLocked
        );
        assert_eq!(k(400, "invalid_request", "quota exhausted: 0 left"), ErrorKind::Refused);
        assert_eq!(
            k(
                400,
                "invalid_request",
                "Your certificate has been revoked and can no longer sign. Please contact an administrator."
            ),
            ErrorKind::Refused
        );
        assert_eq!(
            k(400, "invalid_request", "Invalid parameter signAlgo"),
            ErrorKind::Invalid
        );
        assert_eq!(k(401, "expired_token", ""), ErrorKind::NotLoggedIn);
        assert_eq!(k(503, "temporarily_unavailable", ""), ErrorKind::Unavailable);
    }

    #[test]
    fn a_listing_names_the_holder_and_keeps_the_chain() {
        let v = json!({
            "credentialIDs": ["c1"],
            "credentialInfos": [{
                "credentialID": "c1",
                "key": {"status": "enabled", "algo": ["1.2.840.113549.1.1.1"], "len": 2048},
                "cert": {"status": "valid", "certificates": ["AAA", "BBB", "CCC"],
                         "subjectDN": "CN=Ana Pop,C=RO", "serialNumber": "0A1B",
                         "validFrom": "20260101000000Z", "validTo": "20290101000000Z"}
            }]
        });
        let l = listing("https://sign.example:8443/", "app", &v);
        assert_eq!(l.account.label, "Ana Pop");
        assert_eq!(l.account.credentials[0].certificates.len(), 3);
        assert_eq!(l.account.credentials[0].key_len, 2048);
        assert_eq!(l.certificates[0].serial, "0A1B");
        let empty = listing("https://sign.example:8443/", "app", &json!({"credentialIDs": []}));
        assert_eq!(empty.account.label, "sign.example:8443");
    }
}
