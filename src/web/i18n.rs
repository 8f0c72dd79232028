//! Romanian and English texts of the pages. The language is the `parafa_lang` cookie (set by the switch in every
//! page's header), else the browser's first supported `Accept-Language`, else Romanian (the service's own).
//!
//! Texts live in TOML dictionaries, one per area and language (`i18n/<area>.<lang>.toml`), flat `key = "text"`
//! tables. Templates ask for them with `t("key")`; a unit test checks every key a template uses exists in both.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The language cookie's name.
pub const COOKIE: &str = "parafa_lang";

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ro,
    En,
}

impl Lang {
    /// `ro` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ro => "ro",
            Lang::En => "en",
        }
    }

    /// The other language (for the switch).
    pub fn other(self) -> Lang {
        match self {
            Lang::Ro => Lang::En,
            Lang::En => Lang::Ro,
        }
    }

    /// `ro`/`en` (any case, region ignored).
    pub fn parse(s: &str) -> Option<Lang> {
        let primary = s
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "ro" => Some(Lang::Ro),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

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

const DICTIONARIES: &[(Lang, &str)] = &[
    (Lang::Ro, include_str!("i18n/common.ro.toml")),
    (Lang::En, include_str!("i18n/common.en.toml")),
    (Lang::Ro, include_str!("i18n/account.ro.toml")),
    (Lang::En, include_str!("i18n/account.en.toml")),
    (Lang::Ro, include_str!("i18n/orders.ro.toml")),
    (Lang::En, include_str!("i18n/orders.en.toml")),
    (Lang::Ro, include_str!("i18n/signing.ro.toml")),
    (Lang::En, include_str!("i18n/signing.en.toml")),
    (Lang::Ro, include_str!("i18n/operator.ro.toml")),
    (Lang::En, include_str!("i18n/operator.en.toml")),
    (Lang::Ro, include_str!("i18n/verify.ro.toml")),
    (Lang::En, include_str!("i18n/verify.en.toml")),
    (Lang::Ro, include_str!("i18n/contact.ro.toml")),
    (Lang::En, include_str!("i18n/contact.en.toml")),
    (Lang::Ro, include_str!("i18n/registry.ro.toml")),
    (Lang::En, include_str!("i18n/registry.en.toml")),
];

fn dictionary(lang: Lang) -> &'static HashMap<String, String> {
    static DICTS: OnceLock<[HashMap<String, String>; 2]> = OnceLock::new();
    let dicts = DICTS.get_or_init(|| {
        let mut out = [HashMap::new(), HashMap::new()];
        for (l, text) in DICTIONARIES {
            match text.parse::<toml::Table>() {
                Ok(table) => {
                    for (k, v) in table {
                        if let toml::Value::String(s) = v {
                            out[*l as usize].insert(k, s);
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "a dictionary does not parse"),
            }
        }
        out
    });
    &dicts[lang as usize]
}

/// Whether `key` has a text in `lang`.
pub fn has(lang: Lang, key: &str) -> bool {
    dictionary(lang).contains_key(key)
}

/// The text of `key` in `lang` (the key itself when missing, so a gap shows instead of breaking the page).
pub fn text(lang: Lang, key: &str) -> String {
    dictionary(lang).get(key).cloned().unwrap_or_else(|| key.to_owned())
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
    fn both_dictionaries_have_the_same_keys() {
        let ro: Vec<_> = dictionary(Lang::Ro).keys().filter(|k| !has(Lang::En, k)).collect();
        let en: Vec<_> = dictionary(Lang::En).keys().filter(|k| !has(Lang::Ro, k)).collect();
        assert!(ro.is_empty() && en.is_empty(), "only in ro: {ro:?}; only in en: {en:?}");
    }

    #[test]
    fn keys_are_found_in_templates() {
        assert_eq!(
            keys_used(r#"{{ t("a.b") }} x{{t("c")}} {{ format("x") }}"#),
            vec!["a.b", "c"]
        );
    }
}
