//! [`Text`]: what Parafa says to a person, by key, rendered in their language when it is shown.
//!
//! An error carries a `Text` (its key in the dictionaries and its named arguments), never a sentence: the API
//! renders it in English for CSC clients and scripts, the pages and a Romanian browser in Romanian, the log in
//! English. Build one with [`text!`](crate::text): `text!("error.code.code_wrong_attempts_left", left = 3)`; an argument that is
//! itself a text (a reason inside a refusal) is given with `=>`: `text!("error.job.in_file", file = name, reason
//! => why)`, and rendered in the same language.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use super::Lang;

/// One argument of a [`Text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A value shown as it is (a number, a date, a file name).
    Plain(String),
    /// A text of its own, rendered in the same language.
    Text(Text),
}

/// A text by key with its named arguments; `Display` renders it in English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    key: Cow<'static, str>,
    args: Vec<(&'static str, Arg)>,
    /// The key is the text itself, the same in every language (see [`Text::verbatim`]).
    verbatim: bool,
    /// A list of texts shown one after another (see [`Text::list`]); the key is then unused.
    list: Option<Box<List>>,
}

/// The parts of a [`Text::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct List {
    before: &'static str,
    between: &'static str,
    items: Vec<Text>,
}

impl Text {
    /// The text `key` without arguments.
    pub fn new(key: impl Into<Cow<'static, str>>) -> Text {
        Text {
            key: key.into(),
            args: Vec::new(),
            verbatim: false,
            list: None,
        }
    }

    /// A text that is shown as it is in every language: the CSC API's protocol messages (English by the
    /// specification, never shown on a page).
    pub fn verbatim(text: impl Into<String>) -> Text {
        Text {
            key: Cow::Owned(text.into()),
            args: Vec::new(),
            verbatim: true,
            list: None,
        }
    }

    /// `items` one after another, `between` between them and `before` the first: nothing when there are none.
    /// For a sentence that names a few things ("… changed: object 4: a page; object 7: the form").
    pub fn list(before: &'static str, between: &'static str, items: Vec<Text>) -> Text {
        Text {
            key: Cow::Borrowed(""),
            args: Vec::new(),
            verbatim: false,
            list: Some(Box::new(List { before, between, items })),
        }
    }

    /// A stored state's name (`paid`, `under_review`) in words: `error.state.<name>`, or the name itself for a
    /// state the dictionaries do not name.
    pub fn state(name: &str) -> Text {
        let key = format!("error.state.{name}");
        if super::has(Lang::En, &key) {
            Text::new(key)
        } else {
            Text::verbatim(name)
        }
    }

    /// Adds the argument `name` (used by [`text!`](crate::text)).
    pub fn with(mut self, name: &'static str, arg: Arg) -> Text {
        self.args.push((name, arg));
        self
    }

    /// The key in the dictionaries.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The text in `lang`, its arguments put in.
    pub fn render(&self, lang: Lang) -> String {
        if let Some(list) = &self.list {
            if list.items.is_empty() {
                return String::new();
            }
            let items: Vec<String> = list.items.iter().map(|t| t.render(lang)).collect();
            return format!("{}{}", list.before, items.join(list.between));
        }
        if self.verbatim {
            return self.key.to_string();
        }
        if self.args.is_empty() {
            return super::text(lang, &self.key);
        }
        let args: BTreeMap<&str, String> = self
            .args
            .iter()
            .map(|(name, arg)| {
                let value = match arg {
                    Arg::Plain(s) => s.clone(),
                    Arg::Text(t) => t.render(lang),
                };
                (*name, value)
            })
            .collect();
        super::render(lang, &self.key, &minijinja::Value::from_serialize(&args))
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Lang::En))
    }
}

/// A [`Text`](crate::i18n::Text): `text!("key")`, `text!("key", n = 3, file = name, reason => other_text)`;
/// `name` alone stands for `name = name`. `=` arguments are shown with `Display`, `=>` arguments are texts.
#[macro_export]
macro_rules! text {
    ($key:expr $(,)?) => { $crate::i18n::Text::new($key) };
    ($key:expr, $($rest:tt)+) => {{
        let t = $crate::i18n::Text::new($key);
        $crate::text!(@args t; $($rest)+)
    }};
    (@args $t:expr; ) => { $t };
    (@args $t:expr; $name:ident => $e:expr $(, $($rest:tt)*)?) => {
        $crate::text!(@args $t.with(stringify!($name), $crate::i18n::Arg::Text(::std::convert::Into::into($e)));
            $($($rest)*)?)
    };
    (@args $t:expr; $name:ident = $e:expr $(, $($rest:tt)*)?) => {
        $crate::text!(@args $t.with(stringify!($name), $crate::i18n::Arg::Plain(::std::string::ToString::to_string(&$e)));
            $($($rest)*)?)
    };
    (@args $t:expr; $name:ident $(, $($rest:tt)*)?) => {
        $crate::text!(@args $t.with(stringify!($name), $crate::i18n::Arg::Plain(::std::string::ToString::to_string(&$name)));
            $($($rest)*)?)
    };
}

impl From<&Text> for Text {
    fn from(t: &Text) -> Text {
        t.clone()
    }
}
