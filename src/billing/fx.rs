//! The EUR→RON rate: the National Bank of Romania's daily reference rates (an XML feed), through an adapter, with a
//! configured fallback rate when the feed cannot be had. Rates are integers scaled by 10 000 (5.0377 → 50377).

use std::sync::Mutex;

use quick_xml::events::Event;
use quick_xml::Reader;

pub use crate::config::values::parse_rate;

/// A rate and the day it is the reference rate of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// RON per EUR × 10 000.
    pub ron_per_eur_1e4: i64,
    /// `YYYY-MM-DD` of the feed, or `fallback`.
    pub date: String,
}

/// The EUR rate of a BNR `nbrfxrates.xml` document: `<Cube date="…"><Rate currency="EUR">5.0377</Rate>`.
pub fn parse_bnr(xml: &str) -> Option<Rate> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut date = None;
    let mut in_eur = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = e.local_name();
                if name.as_ref() == b"Cube" {
                    date = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == b"date")
                        .and_then(|a| String::from_utf8(a.value.to_vec()).ok());
                }
                if name.as_ref() == b"Rate" {
                    let attrs: Vec<_> = e.attributes().flatten().collect();
                    let eur = attrs
                        .iter()
                        .any(|a| a.key.local_name().as_ref() == b"currency" && a.value.as_ref() == b"EUR");
                    let multiplied = attrs.iter().any(|a| a.key.local_name().as_ref() == b"multiplier");
                    in_eur = eur && !multiplied;
                }
            }
            Event::Text(t) if in_eur => {
                let value = t.unescape().ok()?;
                return Some(Rate {
                    ron_per_eur_1e4: parse_rate(&value)?,
                    date: date.unwrap_or_default(),
                });
            }
            Event::End(_) => in_eur = false,
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Where the rate comes from: a feed URL and/or a local copy of the feed, and the fallback.
#[derive(Debug)]
pub struct Fx {
    feed_url: Option<String>,
    feed_file: Option<std::path::PathBuf>,
    fallback: Rate,
    /// The last rate read from the feed, with the Unix time it was read.
    cached: Mutex<Option<(Rate, i64)>>,
}

/// How long a rate read from the feed is reused, in seconds.
const CACHE_SECS: i64 = 3600;

impl Fx {
    pub fn new(feed_url: Option<String>, feed_file: Option<std::path::PathBuf>, fallback_1e4: i64) -> Fx {
        Fx {
            feed_url,
            feed_file,
            fallback: Rate {
                ron_per_eur_1e4: fallback_1e4,
                date: "fallback".into(),
            },
            cached: Mutex::new(None),
        }
    }

    /// Today's rate: from the feed (cached an hour), else the fallback (logged).
    pub async fn rate(&self, now: i64) -> Rate {
        if let Some((rate, at)) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            if now - at < CACHE_SECS {
                return rate;
            }
        }
        let xml = match (&self.feed_file, &self.feed_url) {
            (Some(file), _) => std::fs::read_to_string(file).ok(),
            (None, Some(url)) => fetch(url).await,
            (None, None) => None,
        };
        match xml.as_deref().and_then(parse_bnr) {
            Some(rate) => {
                *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((rate.clone(), now));
                rate
            }
            None => {
                if self.feed_url.is_some() || self.feed_file.is_some() {
                    tracing::warn!("the EUR/RON feed could not be read; using the configured fallback rate");
                }
                self.fallback.clone()
            }
        }
    }
}

async fn fetch(url: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .ok()?;
    client
        .get(url)
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .text()
        .await
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<DataSet xmlns="http://www.bnr.ro/xsd" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Header><Publisher>National Bank of Romania</Publisher><PublishingDate>2025-03-14</PublishingDate><MessageType>DR</MessageType></Header>
  <Body>
    <Subject>Reference rates</Subject>
    <OrigCurrency>RON</OrigCurrency>
    <Cube date="2025-03-14">
      <Rate currency="AED">1.2514</Rate>
      <Rate currency="EUR">5.0377</Rate>
      <Rate currency="HUF" multiplier="100">1.2501</Rate>
    </Cube>
  </Body>
</DataSet>"#;

    #[test]
    fn the_eur_rate_is_read_from_a_bnr_feed() {
        let rate = parse_bnr(SAMPLE).unwrap();
        assert_eq!(
            rate,
            Rate {
                ron_per_eur_1e4: 50377,
                date: "2025-03-14".into()
            }
        );
        assert!(parse_bnr("<DataSet><Body></Body></DataSet>").is_none());
        assert!(parse_bnr("not xml <<<").is_none());
    }

    #[test]
    fn decimal_rates_become_ten_thousandths() {
        assert_eq!(parse_rate("5.0377"), Some(50377));
        assert_eq!(parse_rate("5.1"), Some(51000));
        assert_eq!(parse_rate("5"), Some(50000));
        assert_eq!(parse_rate("5.12345"), None);
        assert_eq!(parse_rate("-5.1"), None);
    }
}
