//! The JSON API's error descriptions in the page's language. The API writes its `error_description`s in English
//! (CSC clients and scripts rely on them); the pages show them to people, so an answer to a browser that asked for
//! Romanian gets them in Romanian.
//!
//! - [`translate`]: an English description in a language, from the dictionary `i18n/api.ro.toml` (English
//!   description → Romanian text, `{}` for the dynamic parts).
//! - [`middleware`]: wrapped around the whole application in `startup::run`, it rewrites the `error_description` of
//!   the JSON error answers (status ≥ 400) of `/api/v1/…` when the request's language ([`request_lang`]) is
//!   Romanian. `/csc/…` keeps the specification's English messages; other routes are left alone.
//!
//! The request's language here is the `parafa_lang` cookie, else the preferred supported language of
//! `Accept-Language`, else none: unlike the pages, an API client that says nothing (curl, the CSC clients, the
//! tests) keeps getting English.

use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;

use actix_web::body::{self, BoxBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::HttpRequest;

use super::i18n::{self, Lang};

/// The Romanian dictionary of the API's descriptions.
const RO: &str = include_str!("../i18n/api.ro.toml");

/// The longest description translated (the API's own are far shorter; one that quotes a long input is not).
const MAX_TRANSLATED_LEN: usize = 512;

/// How many levels of captured parts are themselves translated (a reason inside a PDF refusal inside a file name).
const MAX_DEPTH: usize = 3;

/// A dictionary: exact keys, and keys with `{}` split at their wildcards, the most specific first.
struct Dictionary {
    exact: HashMap<String, String>,
    /// (the key's fixed parts around its wildcards, the translation's parts around its wildcards)
    patterns: Vec<(Vec<String>, Vec<String>)>,
}

fn parse(text: &str) -> Result<Dictionary, String> {
    let table = text.parse::<toml::Table>().map_err(|e| e.to_string())?;
    let mut exact = HashMap::new();
    let mut patterns = Vec::new();
    for (key, value) in table {
        let toml::Value::String(value) = value else {
            return Err(format!("{key}: the translation is not a string"));
        };
        if key.contains("{}") {
            patterns.push((split(&key), split(&value)));
        } else {
            exact.insert(key, value);
        }
    }
    // The most specific (longest fixed text) first, so `document {} is required` wins over `{} is required`.
    patterns.sort_by(|(a, _), (b, _)| {
        let len = |p: &Vec<String>| p.iter().map(String::len).sum::<usize>();
        len(b).cmp(&len(a)).then_with(|| a.cmp(b))
    });
    Ok(Dictionary { exact, patterns })
}

fn split(s: &str) -> Vec<String> {
    s.split("{}").map(str::to_owned).collect()
}

fn romanian() -> &'static Dictionary {
    static DICT: OnceLock<Dictionary> = OnceLock::new();
    DICT.get_or_init(|| {
        parse(RO).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the API's Romanian dictionary does not parse");
            Dictionary {
                exact: HashMap::new(),
                patterns: Vec::new(),
            }
        })
    })
}

/// `english` in `lang`: itself in English or when the dictionary has no entry for it.
pub fn translate(lang: Lang, english: &str) -> String {
    match lang {
        // Wildcard matching backtracks: a long description (one quoting a long input) stays as it is.
        Lang::Ro if english.len() > MAX_TRANSLATED_LEN => english.to_owned(),
        Lang::En => english.to_owned(),
        Lang::Ro => lookup(romanian(), english, 0).unwrap_or_else(|| english.to_owned()),
    }
}

/// The translation of `text`: its exact entry, else the first pattern it matches with the captured parts put in
/// the translation (each translated in turn when the dictionary knows it).
fn lookup(dict: &Dictionary, text: &str, depth: usize) -> Option<String> {
    if let Some(t) = dict.exact.get(text) {
        return Some(t.clone());
    }
    if depth >= MAX_DEPTH {
        return None;
    }
    dict.patterns.iter().find_map(|(key, value)| {
        let captures = captures(key, text)?;
        let mut out = value[0].clone();
        for (i, part) in value[1..].iter().enumerate() {
            let captured = captures.get(i).copied().unwrap_or_default();
            out.push_str(&lookup(dict, captured, depth + 1).unwrap_or_else(|| captured.to_owned()));
            out.push_str(part);
        }
        Some(out)
    })
}

/// The parts of `text` the wildcards of a key (`fixed`: its text around them) capture, each non-empty; the
/// shortest first capture that lets the rest match wins.
fn captures<'t>(fixed: &[String], text: &'t str) -> Option<Vec<&'t str>> {
    let rest = text.strip_prefix(fixed[0].as_str())?;
    let mut out = Vec::with_capacity(fixed.len() - 1);
    capture_rest(&fixed[1..], rest, &mut out).then_some(out)
}

fn capture_rest<'t>(fixed: &[String], rest: &'t str, out: &mut Vec<&'t str>) -> bool {
    let Some((lit, more)) = fixed.split_first() else {
        return rest.is_empty();
    };
    if more.is_empty() {
        // The last wildcard takes everything up to the key's ending.
        return match rest.strip_suffix(lit.as_str()) {
            Some(captured) if !captured.is_empty() => {
                out.push(captured);
                true
            }
            _ => false,
        };
    }
    if lit.is_empty() {
        return false; // `{}{}`: ambiguous, refused by the unit test
    }
    let mut from = 1; // a capture is never empty
    while from <= rest.len() {
        if !rest.is_char_boundary(from) {
            from += 1;
            continue;
        }
        let Some(i) = rest[from..].find(lit.as_str()).map(|i| i + from) else {
            return false;
        };
        out.push(&rest[..i]);
        if capture_rest(more, &rest[i + lit.len()..], out) {
            return true;
        }
        out.pop();
        from = i + 1;
    }
    false
}

/// The language an API request asked for: the language cookie, else `Accept-Language`; `None` when it says
/// neither (then the answer stays in English).
pub fn request_lang(req: &HttpRequest) -> Option<Lang> {
    if let Some(lang) = req.cookie(i18n::COOKIE).and_then(|c| Lang::parse(c.value())) {
        return Some(lang);
    }
    req.headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(i18n::from_accept_language)
}

/// Whether a path is the JSON API's (`/api/v1` and below).
fn is_api(path: &str) -> bool {
    path == "/api/v1" || path.starts_with("/api/v1/")
}

/// The `wrap_fn` of `startup::run`: translates the `error_description` of the API's JSON error answers into the
/// request's language. It must wrap the error handlers and the security check, whose answers it rewrites too.
pub fn middleware<S>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let lang = if is_api(req.path()) {
        request_lang(req.request())
    } else {
        None
    };
    let call = srv.call(req);
    async move {
        let res = call.await?;
        match lang {
            Some(lang @ Lang::Ro) => rewrite(res, lang).await,
            _ => Ok(res),
        }
    }
}

/// `res` with its `error_description` in `lang`, when it is a JSON error answer.
async fn rewrite(res: ServiceResponse<BoxBody>, lang: Lang) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if res.status().as_u16() < 400 || !is_json {
        return Ok(res);
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = body::to_bytes(body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.to_string()))?;
    let mut head = head;
    let translated = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|mut json| {
            let description = json.get("error_description")?.as_str()?;
            let text = translate(lang, description);
            if text == description {
                return None;
            }
            json["error_description"] = serde_json::Value::String(text);
            serde_json::to_vec(&json).ok()
        });
    let body = match translated {
        Some(new) => {
            // The length is the new body's (actix writes it from the body); a stale header would cut it.
            head.headers_mut().remove(header::CONTENT_LENGTH);
            BoxBody::new(new)
        }
        None => BoxBody::new(bytes),
    };
    Ok(ServiceResponse::new(req, head.set_body(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ro(s: &str) -> String {
        translate(Lang::Ro, s)
    }

    #[test]
    fn the_dictionary_parses_and_its_wildcards_are_well_formed() {
        let table = RO.parse::<toml::Table>().expect("api.ro.toml parses");
        let mut bad = Vec::new();
        for (key, value) in &table {
            let Some(value) = value.as_str() else {
                bad.push(format!("{key}: not a string"));
                continue;
            };
            if value.trim().is_empty() {
                bad.push(format!("{key}: empty translation"));
            }
            if key.contains("{}{}") || value.contains("{}{}") {
                bad.push(format!("{key}: two wildcards in a row cannot be told apart"));
            }
            // A brace that is not part of a `{}` is a typo (`{0}`, `{name}`, a lone `{`).
            for s in [key.as_str(), value] {
                let stripped = s.replace("{}", "");
                if stripped.contains('{') || stripped.contains('}') {
                    bad.push(format!("{key}: a brace outside a {{}} in {s:?}"));
                }
            }
            if key.matches("{}").count() != value.matches("{}").count() {
                bad.push(format!("{key}: the translation has another number of {{}}"));
            }
            if key == value {
                bad.push(format!("{key}: not translated"));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
        assert_eq!(
            romanian().exact.len() + romanian().patterns.len(),
            table.len(),
            "every entry is loaded"
        );
    }

    #[test]
    fn exact_and_dynamic_messages_translate() {
        assert_eq!(
            ro("the e-mail or the password is wrong"),
            "adresa de e-mail sau parola este greșită"
        );
        assert_eq!(
            ro("the code is wrong (3 attempts left before authorisation is locked)"),
            "codul este greșit (mai aveți 3 încercări până la blocarea autorizării)"
        );
        assert_eq!(
            ro("the code is wrong (2 attempts left)"),
            "codul este greșit (mai aveți 2 încercări)"
        );
        assert_eq!(
            ro(
                "declarație: 230.pdf: Smart PDF forms cannot be signed here; sign them locally in a PDF reader \
                with the desktop virtual token."
            ),
            "declarație: 230.pdf: Formularele PDF inteligente nu se pot semna în platformă; semnați-le local, într-un \
             cititor PDF, cu tokenul virtual."
        );
        assert_eq!(
            ro("too many wrong codes: authorisation is locked until 2026-03-01T10:15:00Z"),
            "prea multe coduri greșite: autorizarea este blocată până la 2026-03-01T10:15:00Z"
        );
        // The more specific key wins over `{} is required`, which still catches the rest.
        assert_eq!(
            ro("document number is required"),
            "numărul actului de identitate este obligatoriu"
        );
        assert_eq!(ro("nickname is required"), "câmpul „nickname” este obligatoriu");
        assert_eq!(
            ro("database error; see the server log"),
            "eroare a bazei de date; detaliile sunt în jurnalul serverului"
        );
    }

    #[test]
    fn captured_parts_are_translated_when_the_dictionary_knows_them() {
        assert_eq!(
            ro(
                "scan.pdf: The file cannot be read as a PDF (its page tree says it has 3 pages but holds 2). Open it \
                in a PDF reader and save or print it again as PDF, then sign the new file."
            ),
            "scan.pdf: Fișierul nu poate fi citit ca PDF (arborele său de pagini declară 3 pagini, dar conține 2). \
             Deschideți-l într-un cititor PDF, salvați-l sau tipăriți-l din nou ca PDF, apoi semnați fișierul nou."
        );
        assert_eq!(
            ro("Only an unpaid order can be cancelled; this one is paid"),
            "Doar o comandă neplătită poate fi anulată; aceasta este plătită"
        );
        assert_eq!(
            ro("The password is too easy to guess: This is a top-10 common password."),
            "Parola este prea ușor de ghicit: Aceasta este una dintre cele mai folosite 10 parole."
        );
    }

    /// The messages as the code writes them (not copies): a reworded `#[error]` shows up here.
    #[test]
    fn the_domain_errors_have_a_translation() {
        use crate::accounts::AccountError;
        use crate::auth::{codes, password::PasswordError, totp};
        use crate::documents::{pades::PdfError, signer::SignError};
        let at = 1_772_000_000;
        let messages = [
            AccountError::Unauthenticated.to_string(),
            AccountError::WrongCredentials.to_string(),
            AccountError::TotpRequired.to_string(),
            AccountError::Throttled { retry_at: at }.to_string(),
            PasswordError::TooShort(12).to_string(),
            codes::CodeError::TooSoon { retry_at: at }.to_string(),
            codes::CodeError::TooMany { retry_at: at }.to_string(),
            codes::CodeError::NoCode.to_string(),
            codes::CodeError::Expired.to_string(),
            codes::CodeError::Wrong { left: 2 }.to_string(),
            codes::CodeError::Dead.to_string(),
            codes::CodeError::Missing.to_string(),
            totp::CodeError::Missing.to_string(),
            totp::CodeError::NotPaired.to_string(),
            totp::CodeError::Wrong { left: 4 }.to_string(),
            totp::CodeError::Replayed.to_string(),
            totp::CodeError::Locked { until: at }.to_string(),
            SignError::QuotaExhausted(0).to_string(),
            SignError::SadSpent.to_string(),
            crate::admission::Overloaded {
                what: "a password check",
                retry_after_secs: 2,
            }
            .to_string(),
        ];
        let pdf = [
            PdfError::TooLarge { size: 9, max: 8 },
            PdfError::TooManyObjects { count: 9, max: 8 },
            PdfError::Unreadable("it has no pages".into()),
            PdfError::TooComplex("it has more than 2000 revisions".into()),
            PdfError::Encrypted,
            PdfError::Xfa,
            PdfError::CertifiedNoChanges,
            PdfError::NoSuchPage { page: 3, pages: 2 },
            PdfError::InvalidAppearance("its coordinates are not numbers".into()),
        ];
        let pdf = pdf.iter().flat_map(|e| [e.to_string(), format!("a.pdf: {e}")]);
        let untranslated: Vec<String> = messages.into_iter().chain(pdf).filter(|m| ro(m) == *m).collect();
        assert!(untranslated.is_empty(), "no Romanian for:\n{}", untranslated.join("\n"));
        assert!(!ro(&PdfError::Unreadable("it has no pages".into()).to_string()).contains("it has no pages"));
    }

    #[test]
    fn unknown_messages_and_english_stay_as_they_are() {
        assert_eq!(ro("something nobody wrote down"), "something nobody wrote down");
        assert_eq!(translate(Lang::En, "no such order"), "no such order");
        assert_eq!(ro("no such order"), "comanda nu există");
    }

    #[test]
    fn a_wildcard_never_captures_nothing() {
        let fixed = split("{}: a visible signature rectangle is for PDFs signed as PDF");
        assert_eq!(
            captures(&fixed, ": a visible signature rectangle is for PDFs signed as PDF"),
            None
        );
        let fixed = split("a {} b {}");
        assert_eq!(captures(&fixed, "a x b y"), Some(vec!["x", "y"]));
        assert_eq!(captures(&fixed, "a x b "), None);
        assert_eq!(captures(&fixed, "a ă b ș b t"), Some(vec!["ă", "ș b t"]));
    }

    #[test]
    fn only_the_api_is_translated() {
        assert!(is_api("/api/v1/session"));
        assert!(!is_api("/api/v10/x") && !is_api("/csc/v2/signatures/signHash") && !is_api("/login"));
    }
}
