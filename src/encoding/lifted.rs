//! A JSON body read as it arrives, its long strings lifted out of it and decoded from base64 on the way, hashed as
//! they are decoded: a CSC `signDoc` request carries each document as one base64 string, up to hundreds of
//! megabytes, and holding the body, then the parsed string, then the decoded document would take three copies.
//!
//! [`Lifter::push`] takes the body chunk by chunk. What is outside long strings is kept as it came (the
//! skeleton); a string value longer than [`LIFT_AT`] bytes is taken out while it streams, its base64 decoded into a
//! [`Blob`] with its SHA-256, and replaced in the skeleton by a short marker naming the blob. The skeleton is then
//! parsed as any JSON, and whoever reads a string of it asks [`Lifted::take`] whether it is a marker.
//!
//! A lifted string must be plain base64 (RFC 4648, the standard or the URL-safe alphabet, padded or not) as a JSON
//! encoder writes it: a JSON escape other than `\/` (which some encoders write for `/`), or a character outside the
//! alphabet, makes the blob invalid (reported when it is taken), and the rest of the string is skipped without
//! being kept. A body that is not JSON is left for the JSON parser to refuse: the lifter only tracks strings.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use sha2::Digest;

/// A string value longer than this (bytes of JSON text) is lifted out of the skeleton.
pub const LIFT_AT: usize = 64 * 1024;

/// How a marker starts: a NUL character no base64 document holds, then the blob's number.
const MARKER: &str = "\u{0}parafa-lifted-";
/// The marker as JSON text (how it is written into the skeleton).
const MARKER_JSON: &str = "\\u0000parafa-lifted-";

/// A decoded document.
#[derive(Debug)]
pub struct Blob {
    pub bytes: Vec<u8>,
    /// SHA-256 over `bytes`, not finalised: the caller may finish it, or continue it over what it appends.
    pub sha256: sha2::Sha256,
}

/// The body, read.
#[derive(Debug)]
pub struct Lifted {
    /// The JSON text with each lifted string replaced by its marker.
    pub skeleton: Vec<u8>,
    blobs: Vec<Option<Result<Blob, ()>>>,
}

impl Lifted {
    /// The blob whose marker `text` is (taken: a second call for it answers `Some(Err(()))`); `None` when `text`
    /// is no marker (a short string, kept in the skeleton). `Some(Err(()))` when the lifted string was not base64.
    pub fn take(&mut self, text: &str) -> Option<Result<Blob, ()>> {
        let n: usize = text.strip_prefix(MARKER)?.parse().ok()?;
        Some(self.blobs.get_mut(n).and_then(Option::take).unwrap_or(Err(())))
    }

    /// Bytes held by the blobs not yet taken (what the tests check a refused blob does not keep).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.blobs
            .iter()
            .flatten()
            .map(|b| b.as_ref().map_or(0, |b| b.bytes.len()))
            .sum()
    }
}

/// Where the reader is in the JSON text.
enum State {
    /// Outside any string.
    Outside,
    /// In a string kept in the skeleton, which began at `start` of it; `escaped` after a backslash.
    Short { start: usize, escaped: bool },
    /// In a lifted string; `escaped` after a backslash.
    Long { escaped: bool, decoder: Decoder },
}

/// Reads a JSON body chunk by chunk (see the module's comment).
pub struct Lifter {
    skeleton: Vec<u8>,
    state: State,
    blobs: Vec<Option<Result<Blob, ()>>>,
    /// The body's announced length, if any: the first lifted string's room is reserved from it at once, so that
    /// the decoded document is not moved as it grows.
    announced: Option<usize>,
}

impl Default for Lifter {
    fn default() -> Self {
        Lifter::new()
    }
}

impl Lifter {
    pub fn new() -> Lifter {
        Lifter {
            skeleton: Vec::new(),
            state: State::Outside,
            blobs: Vec::new(),
            announced: None,
        }
    }

    /// A lifter for a body that announced its length (`Content-Length`).
    pub fn announced(len: usize) -> Lifter {
        Lifter {
            announced: Some(len),
            ..Lifter::new()
        }
    }

    /// Reads the next chunk of the body.
    pub fn push(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            chunk = self.step(chunk);
        }
    }

    /// Reads what it can of `chunk` in the current state; returns the rest.
    fn step<'c>(&mut self, chunk: &'c [u8]) -> &'c [u8] {
        match &mut self.state {
            State::Outside => match memchr::memchr(b'"', chunk) {
                None => {
                    self.skeleton.extend_from_slice(chunk);
                    &[]
                }
                Some(at) => {
                    self.skeleton.extend_from_slice(&chunk[..=at]);
                    self.state = State::Short {
                        start: self.skeleton.len(),
                        escaped: false,
                    };
                    &chunk[at + 1..]
                }
            },
            State::Short { start, escaped } => {
                let start = *start;
                if *escaped {
                    self.skeleton.push(chunk[0]);
                    *escaped = false;
                    return &chunk[1..];
                }
                let at = memchr::memchr2(b'"', b'\\', chunk);
                let run = &chunk[..at.unwrap_or(chunk.len())];
                self.skeleton.extend_from_slice(run);
                if self.skeleton.len() - start > LIFT_AT {
                    // Lifted: the closing quote or the escape, if any, is read as the lifted string's.
                    self.lift(start);
                    return &chunk[run.len()..];
                }
                match at {
                    None => &[],
                    Some(at) => {
                        if chunk[at] == b'"' {
                            self.skeleton.push(b'"');
                            self.state = State::Outside;
                        } else {
                            self.skeleton.push(b'\\');
                            *escaped = true;
                        }
                        &chunk[at + 1..]
                    }
                }
            }
            State::Long { escaped, decoder } => {
                if *escaped {
                    *escaped = false;
                    match chunk[0] {
                        b'/' => decoder.feed(b"/"),
                        // The escape's other characters are read as the string's (a `\u` escape's digits): the
                        // blob is refused already.
                        _ => decoder.fail(),
                    }
                    return &chunk[1..];
                }
                match memchr::memchr2(b'"', b'\\', chunk) {
                    None => {
                        decoder.feed(chunk);
                        &[]
                    }
                    Some(at) => {
                        decoder.feed(&chunk[..at]);
                        if chunk[at] == b'"' {
                            self.end_long();
                        } else {
                            *escaped = true;
                        }
                        &chunk[at + 1..]
                    }
                }
            }
        }
    }

    /// Turns the short string that began at `start` of the skeleton (no escape pending) into a lifted one.
    fn lift(&mut self, start: usize) {
        let mut decoder = Decoder::new();
        if let Some(len) = self.announced.take() {
            // What the rest of the body can decode to, at most.
            decoder.out.reserve(len.saturating_sub(start) / 4 * 3);
        }
        let text = self.skeleton.split_off(start);
        let mut rest = &text[..];
        while let Some(at) = memchr::memchr(b'\\', rest) {
            decoder.feed(&rest[..at]);
            match rest.get(at + 1) {
                Some(b'/') => decoder.feed(b"/"),
                _ => decoder.fail(),
            }
            rest = rest.get(at + 2..).unwrap_or_default();
        }
        decoder.feed(rest);
        self.skeleton
            .extend_from_slice(format!("{MARKER_JSON}{}", self.blobs.len()).as_bytes());
        self.blobs.push(None);
        self.state = State::Long {
            escaped: false,
            decoder,
        };
    }

    /// The closing quote of a lifted string: its blob is done.
    fn end_long(&mut self) {
        let State::Long { decoder, .. } = std::mem::replace(&mut self.state, State::Outside) else {
            return;
        };
        if let Some(last) = self.blobs.last_mut() {
            *last = Some(decoder.finish());
        }
        self.skeleton.push(b'"');
    }

    /// The body, read to its end. A lifted string left open (a truncated body) leaves its marker unclosed: the JSON
    /// parser refuses the skeleton.
    pub fn finish(self) -> Lifted {
        Lifted {
            skeleton: self.skeleton,
            blobs: self.blobs,
        }
    }
}

/// Base64 decoded as it streams, in runs of whole quanta, hashed as it is decoded.
struct Decoder {
    out: Vec<u8>,
    sha256: sha2::Sha256,
    /// The characters of an unfinished quantum (fewer than 4).
    carry: Vec<u8>,
    /// The alphabet, once a character told which.
    url_safe: Option<bool>,
    /// A quantum with padding was decoded: nothing may follow.
    padded: bool,
    failed: bool,
}

/// Decodes the last quanta of `alphabet`, padded or not.
fn engine(url_safe: bool) -> GeneralPurpose {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(
        if url_safe {
            &alphabet::URL_SAFE
        } else {
            &alphabet::STANDARD
        },
        config,
    )
}

impl Decoder {
    fn new() -> Decoder {
        Decoder {
            out: Vec::new(),
            sha256: sha2::Sha256::new(),
            carry: Vec::new(),
            url_safe: None,
            padded: false,
            failed: false,
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.out = Vec::new();
        self.carry.clear();
    }

    /// Decodes the whole quanta of `text` (after what was carried), carrying the rest.
    fn feed(&mut self, mut text: &[u8]) {
        if self.failed || text.is_empty() {
            return;
        }
        if !self.alphabet_of(text) {
            return self.fail();
        }
        if !self.carry.is_empty() {
            let need = 4 - self.carry.len();
            let take = need.min(text.len());
            self.carry.extend_from_slice(&text[..take]);
            text = &text[take..];
            if self.carry.len() < 4 {
                return;
            }
            let quantum = std::mem::take(&mut self.carry);
            self.decode(&quantum);
        }
        let whole = text.len() / 4 * 4;
        self.decode(&text[..whole]);
        self.carry.extend_from_slice(&text[whole..]);
    }

    /// Whether `text` keeps to one alphabet with what came before (deciding it when it first shows).
    fn alphabet_of(&mut self, text: &[u8]) -> bool {
        let url = memchr::memchr2(b'-', b'_', text).is_some();
        let standard = memchr::memchr2(b'+', b'/', text).is_some();
        match (url, standard, self.url_safe) {
            (true, true, _) | (true, _, Some(false)) | (_, true, Some(true)) => false,
            (true, false, None) => {
                self.url_safe = Some(true);
                true
            }
            (false, true, None) => {
                self.url_safe = Some(false);
                true
            }
            _ => true,
        }
    }

    fn decode(&mut self, quanta: &[u8]) {
        if self.failed || quanta.is_empty() {
            return;
        }
        if self.padded {
            return self.fail();
        }
        let before = self.out.len();
        let url_safe = self.url_safe == Some(true);
        // Whole quanta (all but an unpadded end) with SIMD; the few characters of an unpadded end as any base64.
        let decoded = if quanta.len().is_multiple_of(4) {
            let simd = if url_safe {
                base64_simd::URL_SAFE
            } else {
                base64_simd::STANDARD
            };
            simd.decode_append(quanta, &mut self.out).map_err(drop)
        } else {
            engine(url_safe).decode_vec(quanta, &mut self.out).map_err(drop)
        };
        match decoded {
            Ok(()) => {
                self.sha256.update(&self.out[before..]);
                self.padded = quanta.last() == Some(&b'=');
            }
            Err(_) => self.fail(),
        }
    }

    fn finish(mut self) -> Result<Blob, ()> {
        if !self.carry.is_empty() {
            let rest = std::mem::take(&mut self.carry);
            self.decode(&rest);
        }
        if self.failed {
            return Err(());
        }
        Ok(Blob {
            bytes: self.out,
            sha256: self.sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    fn read_in(body: &[u8], chunk: usize) -> Lifted {
        // Odd chunk sizes read a body that announced its length, the others one that did not.
        let mut lifter = if chunk % 2 == 1 {
            Lifter::announced(body.len())
        } else {
            Lifter::new()
        };
        for part in body.chunks(chunk) {
            lifter.push(part);
        }
        lifter.finish()
    }

    fn document(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn a_long_string_is_decoded_and_hashed_whatever_the_chunks_and_short_ones_stay() {
        let doc = document(200_000);
        let encoded = STANDARD.encode(&doc);
        let body = format!(r#"{{"SAD":"short \"q\" \\ text","documents":[{{"document":"{encoded}","x":"é"}}]}}"#);
        for chunk in [1, 3, 7, 4096, 65_536, body.len()] {
            let mut lifted = read_in(body.as_bytes(), chunk);
            let v: serde_json::Value = serde_json::from_slice(&lifted.skeleton).expect("the skeleton is JSON");
            assert_eq!(v["SAD"], r#"short "q" \ text"#);
            assert_eq!(v["documents"][0]["x"], "é");
            let marker = v["documents"][0]["document"].as_str().unwrap().to_owned();
            let blob = lifted.take(&marker).expect("a marker").expect("base64");
            assert_eq!(blob.bytes, doc, "chunks of {chunk}");
            assert_eq!(blob.sha256.finalize().to_vec(), sha2::Sha256::digest(&doc).to_vec());
            assert!(matches!(lifted.take(&marker), Some(Err(()))), "a blob is taken once");
            assert!(lifted.take("short").is_none());
        }
    }

    #[test]
    fn the_url_safe_alphabet_unpadded_and_escaped_slashes_are_read_as_base64_is_written() {
        let doc = document(100_000);
        let url = URL_SAFE_NO_PAD.encode(&doc);
        let escaped = STANDARD.encode(&doc).replace('/', "\\/");
        for text in [url, escaped] {
            for chunk in [5, 1000] {
                let body = format!(r#"{{"document":"{text}"}}"#);
                let mut lifted = read_in(body.as_bytes(), chunk);
                let v: serde_json::Value = serde_json::from_slice(&lifted.skeleton).unwrap();
                let blob = lifted.take(v["document"].as_str().unwrap()).unwrap().unwrap();
                assert_eq!(blob.bytes, doc);
            }
        }
    }

    #[test]
    fn what_is_not_base64_is_refused_and_not_kept() {
        let good = STANDARD.encode(document(90_000));
        let cases = [
            format!("{good}\\n"),
            format!("{}-{}", &good[..1000], &good[1000..]),
            format!("{}={}", &good[..1002], &good[1003..]),
            format!("{}==AAAA", &good[..good.len() - 4]),
            format!("{} ", &good[..good.len() - 1]),
            format!("{}\\u0041", &good),
            format!("{}A", &good),
        ];
        for text in cases {
            let body = format!(r#"{{"document":"{text}","after":1}}"#);
            let mut lifted = read_in(body.as_bytes(), 777);
            let v: serde_json::Value = serde_json::from_slice(&lifted.skeleton).expect("still JSON");
            assert_eq!(v["after"], 1);
            assert!(matches!(lifted.take(v["document"].as_str().unwrap()), Some(Err(()))));
            assert_eq!(lifted.held(), 0);
        }
    }

    #[test]
    fn a_truncated_body_leaves_no_json() {
        let body = format!(r#"{{"document":"{}"#, STANDARD.encode(document(90_000)));
        let lifted = read_in(body.as_bytes(), 4096);
        assert!(serde_json::from_slice::<serde_json::Value>(&lifted.skeleton).is_err());
    }
}
