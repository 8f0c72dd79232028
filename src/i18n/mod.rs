//! The texts of Parafa in Romanian and English, one dictionary system for the pages, the e-mails and the SMS.
//!
//! Texts live in TOML dictionaries, one per area and language (`src/i18n/<area>.<lang>.toml`), flat
//! `key = "text"` tables. The pages ask for them with `t("key")` (`web::i18n`); the messages (`notify::Template`)
//! are the `mail.*` texts, minijinja templates over the message's fields rendered by [`render`]. A unit test checks
//! that both languages have the same keys.

use std::collections::HashMap;
use std::sync::OnceLock;

pub mod dates;
mod text;
pub use text::{Arg, Text};

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

    /// `ro`/`en` as [`Lang::parse`], else Romanian (the service's own): a stored preference.
    pub fn or_default(s: Option<&str>) -> Lang {
        s.and_then(Lang::parse).unwrap_or_default()
    }

    /// `ro` or `en` (as [`Lang::code`]).
    pub fn as_str(self) -> &'static str {
        self.code()
    }
}

const DICTIONARIES: &[(Lang, &str)] = &[
    (Lang::Ro, include_str!("common.ro.toml")),
    (Lang::En, include_str!("common.en.toml")),
    (Lang::Ro, include_str!("account.ro.toml")),
    (Lang::En, include_str!("account.en.toml")),
    (Lang::Ro, include_str!("orders.ro.toml")),
    (Lang::En, include_str!("orders.en.toml")),
    (Lang::Ro, include_str!("signing.ro.toml")),
    (Lang::En, include_str!("signing.en.toml")),
    (Lang::Ro, include_str!("operator.ro.toml")),
    (Lang::En, include_str!("operator.en.toml")),
    (Lang::Ro, include_str!("verify.ro.toml")),
    (Lang::En, include_str!("verify.en.toml")),
    (Lang::Ro, include_str!("contact.ro.toml")),
    (Lang::En, include_str!("contact.en.toml")),
    (Lang::Ro, include_str!("registry.ro.toml")),
    (Lang::En, include_str!("registry.en.toml")),
    (Lang::Ro, include_str!("legal.ro.toml")),
    (Lang::En, include_str!("legal.en.toml")),
    (Lang::Ro, include_str!("oauth.ro.toml")),
    (Lang::En, include_str!("oauth.en.toml")),
    (Lang::Ro, include_str!("messages.ro.toml")),
    (Lang::En, include_str!("messages.en.toml")),
    (Lang::Ro, include_str!("errors.ro.toml")),
    (Lang::En, include_str!("errors.en.toml")),
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

/// Registers the filters of the pages, whose context names their language `lang`: `date`, `datetime`,
/// `datetime_zone` (see [`dates`]) and `money(currency)` over minor units ([`amount`]).
pub fn add_filters(env: &mut minijinja::Environment<'_>) {
    dates::add_filters(env);
    env.add_filter(
        "money",
        |state: &minijinja::State, minor: i64, currency: Option<&str>| {
            let lang = state
                .lookup("lang")
                .and_then(|l| l.as_str().and_then(Lang::parse))
                .unwrap_or(Lang::Ro);
            amount(lang, minor, currency.unwrap_or("RON"))
        },
    );
    env.add_filter("years", |state: &minijinja::State, n: i64| {
        let lang = state
            .lookup("lang")
            .and_then(|l| l.as_str().and_then(Lang::parse))
            .unwrap_or(Lang::Ro);
        years(lang, n)
    });
}

/// A number of years as the language says it: `1 an`, `2 ani`, `20 de ani`; `1 year`, `2 years`.
pub fn years(lang: Lang, n: i64) -> String {
    match lang {
        Lang::Ro if n == 1 => "1 an".to_owned(),
        // Romanian puts "de" between a number whose last two digits are 0, or 20 to 99, and its noun.
        Lang::Ro if n != 0 && (n % 100 == 0 || n % 100 >= 20) => format!("{n} de ani"),
        Lang::Ro => format!("{n} ani"),
        Lang::En if n == 1 => "1 year".to_owned(),
        Lang::En => format!("{n} years"),
    }
}

/// An amount in minor units (bani, cents) as the language writes money: `1.234,50 RON` / `1,234.50 RON`.
pub fn amount(lang: Lang, minor: i64, currency: &str) -> String {
    let (group, decimal) = match lang {
        Lang::Ro => ('.', ','),
        Lang::En => (',', '.'),
    };
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    let units = (minor / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push(group);
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}{decimal}{:02} {currency}", minor % 100)
}

/// Whether `key` has a text in `lang`.
pub fn has(lang: Lang, key: &str) -> bool {
    dictionary(lang).contains_key(key)
}

/// The text of `key` in `lang` (the key itself when missing, so a gap shows instead of breaking the page).
pub fn text(lang: Lang, key: &str) -> String {
    dictionary(lang).get(key).cloned().unwrap_or_else(|| key.to_owned())
}

/// Renders the template `key` of `lang` over `ctx`; `t('key')` in it is another text of the same language. Plain
/// text: nothing is escaped. A template that does not render is a bug (every message is rendered by the unit
/// tests): it is logged and the key stands in for the text.
pub fn render(lang: Lang, key: &str, ctx: &minijinja::Value) -> String {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.add_function("t", move |k: &str| text(lang, k));
    dates::add_filters_for(&mut env, lang);
    env.render_str(&text(lang, key), ctx).unwrap_or_else(|e| {
        tracing::error!(key, error = %e, "a message template does not render");
        key.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_are_counted_as_each_language_counts_them() {
        assert_eq!(years(Lang::Ro, 1), "1 an");
        assert_eq!(years(Lang::Ro, 3), "3 ani");
        assert_eq!(years(Lang::Ro, 20), "20 de ani");
        assert_eq!(years(Lang::Ro, 101), "101 ani");
        assert_eq!(years(Lang::En, 1), "1 year");
        assert_eq!(years(Lang::En, 2), "2 years");
    }

    #[test]
    fn amounts_are_written_as_each_language_writes_money() {
        assert_eq!(amount(Lang::Ro, 123_450, "RON"), "1.234,50 RON");
        assert_eq!(amount(Lang::En, 123_450, "RON"), "1,234.50 RON");
        assert_eq!(amount(Lang::Ro, 5, "EUR"), "0,05 EUR");
        assert_eq!(amount(Lang::En, -23_380, "RON"), "-233.80 RON");
        assert_eq!(amount(Lang::Ro, 100_000_000, "RON"), "1.000.000,00 RON");
    }

    #[test]
    fn both_dictionaries_have_the_same_keys() {
        let ro: Vec<_> = dictionary(Lang::Ro).keys().filter(|k| !has(Lang::En, k)).collect();
        let en: Vec<_> = dictionary(Lang::En).keys().filter(|k| !has(Lang::Ro, k)).collect();
        assert!(ro.is_empty() && en.is_empty(), "only in ro: {ro:?}; only in en: {en:?}");
    }

    /// The `{{ name }}` arguments of a text.
    fn arguments(text: &str) -> std::collections::BTreeSet<String> {
        text.split("{{")
            .skip(1)
            .filter_map(|s| s.split("}}").next())
            .map(|s| s.trim().to_owned())
            .collect()
    }

    /// Every key the code names (`text!("…")` and the `"error.…"` strings) has a text in both languages, and both
    /// texts of a key take the same arguments.
    #[test]
    fn every_key_the_code_names_has_both_texts_with_the_same_arguments() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src];
        let mut missing = Vec::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let code = std::fs::read_to_string(&path).unwrap();
            // The families of keys the code names in `text!`: the errors, and the verification report's words.
            let mut keys = Vec::new();
            for prefix in ["error.", "verify.problem.", "verify.fault.", "verify.changed."] {
                for rest in code.split(&format!("\"{prefix}")).skip(1) {
                    let Some(end) = rest.find('"') else { continue };
                    let name = &rest[..end];
                    let whole = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
                    if whole && !name.ends_with('.') && !name.ends_with("html") {
                        keys.push(format!("{prefix}{name}"));
                    }
                }
            }
            for k in keys {
                if !has(Lang::En, &k) || !has(Lang::Ro, &k) {
                    missing.push(format!("{}: {k}", path.display()));
                }
            }
        }
        assert!(missing.is_empty(), "keys without a text:\n{}", missing.join("\n"));
        let differ: Vec<_> = dictionary(Lang::En)
            .iter()
            .filter(|(k, en)| arguments(en) != arguments(&text(Lang::Ro, k)))
            .map(|(k, _)| k.clone())
            .collect();
        assert!(differ.is_empty(), "other arguments in the two languages: {differ:?}");
    }

    #[test]
    fn a_text_renders_by_key_with_its_arguments_in_either_language() {
        let t = crate::text!("error.code.code_wrong_attempts_left", left = 2);
        assert_eq!(t.to_string(), "the code is wrong (2 attempts left)");
        assert_eq!(t.render(Lang::Ro), "codul este greșit (mai aveți 2 încercări)");
        let nested = crate::text!(
            "error.password.password_too_easy_guess",
            advice => crate::text!("error.password.top_10_common_password")
        );
        assert_eq!(
            nested.render(Lang::Ro),
            "Parola este prea ușor de ghicit: Aceasta este una dintre cele mai folosite 10 parole."
        );
        assert_eq!(Text::state("paid").render(Lang::Ro), "plătită");
        assert_eq!(Text::state("nowhere").render(Lang::Ro), "nowhere");
        assert_eq!(
            Text::verbatim("missing credentialID").render(Lang::Ro),
            "missing credentialID"
        );
    }

    #[test]
    fn a_template_renders_its_fields_and_other_texts() {
        let ctx = minijinja::context! { code => "123456", minutes => 10, purpose => "activation" };
        assert_eq!(
            render(Lang::En, "mail.sms_code.body", &ctx),
            "Parafa: your account activation code is 123456. Valid 10 minutes. Do not share it."
        );
        assert_eq!(
            render(Lang::Ro, "mail.sms_code.body", &minijinja::context! {}),
            "mail.sms_code.body"
        );
        assert_eq!(Lang::or_default(Some("en")), Lang::En);
        assert_eq!(Lang::or_default(None), Lang::Ro);
    }
}
