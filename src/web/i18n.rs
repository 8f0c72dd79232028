//! Romanian and English texts of the pages. The language is the `parafa_lang` cookie (set by the switch in every
//! page's header), else the browser's first supported `Accept-Language`, else Romanian (the service's own).
//!
//! The texts are the dictionaries of [`crate::i18n`]. Templates ask for them with `t("key")`; a unit test checks
//! every key a template uses exists in both languages.

/// The language cookie's name.
pub const COOKIE: &str = "parafa_lang";

pub use crate::i18n::{has, text, Lang};

impl Lang {
    /// The language of a request: the cookie, else `Accept-Language` (by q-value), else Romanian.
    pub fn of_request(req: &actix_web::HttpRequest) -> Lang {
        if let Some(lang) = req.cookie(COOKIE).and_then(|c| Lang::parse(c.value())) {
            return lang;
        }
        req.headers()
            .get(actix_web::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(from_accept_language)
            .unwrap_or_default()
    }
}

/// The supported language an `Accept-Language` value prefers most.
pub(crate) fn from_accept_language(value: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for part in value.split(',') {
        let mut fields = part.split(';');
        let Some(lang) = fields.next().and_then(Lang::parse) else {
            continue;
        };
        let q = fields
            .find_map(|f| f.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
            .unwrap_or(1.0);
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// The templates' `t("key")`: the text in the page's language (`lang` in the context).
pub fn t_function(state: &minijinja::State, key: &str) -> String {
    let lang = state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::parse))
        .unwrap_or_default();
    text(lang, key)
}

/// The keys a template asks for with `t("…")`.
pub fn keys_used(template: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find("t(\"") {
        let after = &rest[i + 3..];
        let is_call = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_';
        if let Some(end) = after.find('"') {
            if is_call {
                keys.push(after[..end].to_owned());
            }
            rest = &after[end..];
        } else {
            break;
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(from_accept_language("en-GB,en;q=0.9,ro;q=0.8"), Some(Lang::En));
        assert_eq!(from_accept_language("fr-FR, ro;q=0.7, en;q=0.5"), Some(Lang::Ro));
        assert_eq!(from_accept_language("de-DE"), None);
        assert_eq!(from_accept_language("ro-RO"), Some(Lang::Ro));
    }

    #[test]
    fn keys_are_found_in_templates() {
        assert_eq!(
            keys_used(r#"{{ t("a.b") }} x{{t("c")}} {{ format("x") }}"#),
            vec!["a.b", "c"]
        );
    }
}
