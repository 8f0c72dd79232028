//! Dates and times as people read them (issue 19): in Europe/Bucharest time, one format per language, never raw
//! RFC 3339. `7 decembrie 2026, 14:05` in Romanian, `7 December 2026, 14:05` in English; where the zone matters (an
//! SMS code's deadline, a ban's end, a signing time) the zone follows: `(ora României)` / `(Romanian time)`.
//!
//! The zone's rules come from the time-zone database bundled into the binary (jiff), so a host or an image without
//! `tzdata` shows the same times.

use std::sync::OnceLock;

use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime as Zoned};

use super::Lang;

const MONTHS_RO: [&str; 12] = [
    "ianuarie",
    "februarie",
    "martie",
    "aprilie",
    "mai",
    "iunie",
    "iulie",
    "august",
    "septembrie",
    "octombrie",
    "noiembrie",
    "decembrie",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Europe/Bucharest, from the bundled database (UTC if it were ever missing, which the unit tests rule out).
fn bucharest() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| TimeZone::get("Europe/Bucharest").unwrap_or(TimeZone::UTC))
}

/// A Unix time in Bucharest (`None` outside the representable range).
pub fn in_bucharest(secs: i64) -> Option<Zoned> {
    Timestamp::from_second(secs)
        .ok()
        .map(|t| t.to_zoned_datetime(bucharest().clone()))
}

/// The Bucharest date of a Unix time as `YYYY-MM-DD` (for records and reports, not for people).
pub fn iso_date(secs: i64) -> String {
    match in_bucharest(secs) {
        Some(z) => format!("{:04}-{:02}-{:02}", z.year(), z.month(), z.day()),
        None => String::new(),
    }
}

/// The Bucharest date of a Unix time as days since 1970-01-01: one number per local day.
pub fn day_number(secs: i64) -> i64 {
    match in_bucharest(secs) {
        Some(z) => secs.saturating_add(i64::from(z.offset().seconds())).div_euclid(86_400),
        None => secs.div_euclid(86_400),
    }
}

fn month(lang: Lang, m: i8) -> &'static str {
    let i = (m.clamp(1, 12) - 1) as usize;
    match lang {
        Lang::Ro => MONTHS_RO[i],
        Lang::En => MONTHS_EN[i],
    }
}

/// A calendar date: `7 decembrie 2026` / `7 December 2026`.
pub fn civil_date(lang: Lang, year: i16, m: i8, day: i8) -> String {
    format!("{day} {} {year}", month(lang, m))
}

/// The Bucharest date of a Unix time.
pub fn date(lang: Lang, secs: i64) -> String {
    match in_bucharest(secs) {
        Some(z) => civil_date(lang, z.year(), z.month(), z.day()),
        None => String::new(),
    }
}

/// The Bucharest date and time of a Unix time, to the minute: `7 decembrie 2026, 14:05`.
pub fn datetime(lang: Lang, secs: i64) -> String {
    match in_bucharest(secs) {
        Some(z) => format!(
            "{}, {:02}:{:02}",
            civil_date(lang, z.year(), z.month(), z.day()),
            z.hour(),
            z.minute()
        ),
        None => String::new(),
    }
}

/// [`datetime`] with the zone named: `7 decembrie 2026, 14:05 (ora României)`.
pub fn datetime_zoned(lang: Lang, secs: i64) -> String {
    let zone = match lang {
        Lang::Ro => "ora României",
        Lang::En => "Romanian time",
    };
    format!("{} ({zone})", datetime(lang, secs))
}

/// A time as stored or sent by the API (Unix seconds, RFC 3339, or a `YYYY-MM-DD` date) as Unix seconds, or as a
/// calendar date for a bare date (which has no time zone to convert).
pub enum Parsed {
    Instant(i64),
    Civil(i16, i8, i8),
}

/// Reads what a template was given as a time.
pub fn parse(text: &str) -> Option<Parsed> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Some(Parsed::Instant(secs));
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(Parsed::Instant(t.as_second()));
    }
    text.parse::<jiff::civil::Date>()
        .ok()
        .map(|d| Parsed::Civil(d.year(), d.month(), d.day()))
}

/// How a template filter shows a time.
#[derive(Clone, Copy)]
pub enum Style {
    Date,
    DateTime,
    DateTimeZoned,
}

/// A time given to a template (number or text) shown in `style`; what is not a time is shown as it came.
pub fn show(lang: Lang, value: &minijinja::Value, style: Style) -> String {
    let parsed = match value.as_i64() {
        Some(secs) => Some(Parsed::Instant(secs)),
        None => value.as_str().and_then(parse),
    };
    match parsed {
        Some(Parsed::Instant(secs)) => match style {
            Style::Date => date(lang, secs),
            Style::DateTime => datetime(lang, secs),
            Style::DateTimeZoned => datetime_zoned(lang, secs),
        },
        Some(Parsed::Civil(y, m, d)) => civil_date(lang, y, m, d),
        None if value.is_undefined() || value.is_none() => String::new(),
        None => value.to_string(),
    }
}

/// Registers the filters `date`, `datetime` and `datetime_zone` in a template environment whose context names its
/// language `lang` (the pages; the messages register theirs with [`add_filters_for`]).
pub fn add_filters(env: &mut minijinja::Environment<'_>) {
    fn lang_of(state: &minijinja::State) -> Lang {
        state
            .lookup("lang")
            .and_then(|l| l.as_str().and_then(Lang::parse))
            .unwrap_or(Lang::Ro)
    }
    env.add_filter("date", |state: &minijinja::State, v: minijinja::Value| {
        show(lang_of(state), &v, Style::Date)
    });
    env.add_filter("datetime", |state: &minijinja::State, v: minijinja::Value| {
        show(lang_of(state), &v, Style::DateTime)
    });
    env.add_filter("datetime_zone", |state: &minijinja::State, v: minijinja::Value| {
        show(lang_of(state), &v, Style::DateTimeZoned)
    });
}

/// [`add_filters`] for an environment that renders in one known language.
pub fn add_filters_for(env: &mut minijinja::Environment<'_>, lang: Lang) {
    env.add_filter("date", move |v: minijinja::Value| show(lang, &v, Style::Date));
    env.add_filter("datetime", move |v: minijinja::Value| show(lang, &v, Style::DateTime));
    env.add_filter("datetime_zone", move |v: minijinja::Value| {
        show(lang, &v, Style::DateTimeZoned)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucharest_time_follows_the_eu_summer_time_rules() {
        // 2026-12-06 22:30 UTC is already 7 December in Bucharest (UTC+2 in winter).
        assert_eq!(datetime(Lang::Ro, 1_796_596_200), "7 decembrie 2026, 00:30");
        assert_eq!(datetime(Lang::En, 1_796_596_200), "7 December 2026, 00:30");
        // 2026-07-01 12:00 UTC is 15:00 in summer (UTC+3).
        assert_eq!(datetime(Lang::Ro, 1_782_907_200), "1 iulie 2026, 15:00");
        // The switch: 2026-03-29 00:59:59 UTC is 02:59 EET; 01:00 UTC is 04:00 EEST.
        assert_eq!(datetime(Lang::En, 1_774_745_999), "29 March 2026, 02:59");
        assert_eq!(datetime(Lang::En, 1_774_746_000), "29 March 2026, 04:00");
        assert_eq!(
            datetime_zoned(Lang::Ro, 1_782_907_200),
            "1 iulie 2026, 15:00 (ora României)"
        );
        assert_eq!(date(Lang::En, 1_782_907_200), "1 July 2026");
    }

    #[test]
    fn templates_show_numbers_texts_and_bare_dates_and_leave_the_rest_alone() {
        let mut env = minijinja::Environment::new();
        add_filters_for(&mut env, Lang::Ro);
        let r = |src: &str, v: minijinja::Value| env.render_str(src, minijinja::context! { v }).unwrap();
        assert_eq!(r("{{ v|datetime }}", 1_782_907_200.into()), "1 iulie 2026, 15:00");
        assert_eq!(
            r("{{ v|datetime }}", "2026-07-01T12:00:00Z".into()),
            "1 iulie 2026, 15:00"
        );
        assert_eq!(r("{{ v|date }}", "2031-02-28".into()), "28 februarie 2031");
        assert_eq!(r("{{ v|date }}", "—".into()), "—");
        assert_eq!(r("{{ v|date }}", minijinja::Value::from(())), "");
    }
}
