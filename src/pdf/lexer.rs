//! Bytes to objects: a tokenizer and recursive-descent parser of ISO 32000 §7.2-7.3 syntax over a slice, which
//! never reads past its end and bounds the nesting of what it parses by [`MAX_NESTING`].

use super::object::{is_regular, is_white};
use super::{bad, Bad, Dict, Obj, Ref, MAX_NESTING};

/// A tokenizer and object parser over a byte slice.
pub(super) struct Lexer<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
        Lexer { data, pos }
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    pub(super) fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.data.get(self.pos + ahead).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// Skips white space and comments.
    pub(super) fn skip_space(&mut self) {
        while let Some(b) = self.peek() {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(c) = self.peek() {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// Consumes `kw` when it comes next as a whole token.
    pub(super) fn keyword(&mut self, kw: &[u8]) -> bool {
        self.skip_space();
        if self.rest().starts_with(kw) && self.peek_at(kw.len()).is_none_or(|b| !is_regular(b)) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// An unsigned integer token (at most 19 digits), or nothing consumed.
    pub(super) fn uint(&mut self) -> Option<u64> {
        self.skip_space();
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            if self.pos - start >= 19 {
                self.pos = start;
                return None;
            }
            value = value * 10 + u64::from(b - b'0');
            self.pos += 1;
        }
        if self.pos == start || self.peek().is_some_and(is_regular) {
            self.pos = start;
            return None;
        }
        Some(value)
    }

    /// The object that comes next, `depth` arrays or dictionaries deep.
    pub(super) fn object(&mut self, depth: usize) -> Result<Obj, Bad> {
        if depth > MAX_NESTING {
            return bad(crate::text!("error.pdf.nested_too_deep", most = MAX_NESTING));
        }
        self.skip_space();
        let Some(b) = self.peek() else {
            return bad(crate::text!("error.pdf.ends_in_middle_object"));
        };
        match b {
            b'/' => {
                self.pos += 1;
                Ok(Obj::Name(self.name_body()))
            }
            b'(' => self.literal_string(),
            b'<' if self.peek_at(1) == Some(b'<') => self.dictionary(depth),
            b'<' => self.hex_string(),
            b'[' => self.array(depth),
            b'+' | b'-' | b'.' | b'0'..=b'9' => self.number_or_reference(),
            _ if is_regular(b) => self.keyword_object(),
            _ => bad(crate::text!(
                "error.pdf.unexpected_character",
                character = char::from(b)
            )),
        }
    }

    /// A dictionary, from its `<<`.
    fn dictionary(&mut self, depth: usize) -> Result<Obj, Bad> {
        self.pos += 2;
        let mut dict = Dict::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => return bad(crate::text!("error.pdf.dictionary_not_closed")),
                Some(b'>') if self.peek_at(1) == Some(b'>') => {
                    self.pos += 2;
                    return Ok(Obj::Dict(dict));
                }
                Some(b'/') => {
                    self.pos += 1;
                    let key = self.name_body();
                    let value = self.object(depth + 1)?;
                    // Pushed, not replaced: `get` reads from the end, so the last of duplicate keys wins,
                    // and a dictionary with a million keys costs no more than reading it.
                    dict.push((key, value));
                }
                Some(_) => return bad(crate::text!("error.pdf.dictionary_key_not_name")),
            }
        }
    }

    /// An array, from its `[`.
    fn array(&mut self, depth: usize) -> Result<Obj, Bad> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => return bad(crate::text!("error.pdf.array_not_closed")),
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Obj::Array(items));
                }
                Some(_) => items.push(self.object(depth + 1)?),
            }
        }
    }

    /// `true`, `false` or `null`; any other bare token is refused.
    fn keyword_object(&mut self) -> Result<Obj, Bad> {
        let start = self.pos;
        while self.peek().is_some_and(is_regular) {
            self.pos += 1;
        }
        match &self.data[start..self.pos] {
            b"true" => Ok(Obj::Bool(true)),
            b"false" => Ok(Obj::Bool(false)),
            b"null" => Ok(Obj::Null),
            other => bad(crate::text!(
                "error.pdf.unexpected_token",
                token = String::from_utf8_lossy(other.get(..20).unwrap_or(other))
            )),
        }
    }

    /// A name's bytes after the slash, `#xx` escapes decoded.
    fn name_body(&mut self) -> Vec<u8> {
        let mut name = Vec::new();
        while let Some(b) = self.peek().filter(|b| is_regular(*b)) {
            let decoded = if b == b'#' {
                let hex = self.data.get(self.pos + 1..self.pos + 3);
                match hex
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        self.pos += 2;
                        v
                    }
                    None => b,
                }
            } else {
                b
            };
            name.push(decoded);
            self.pos += 1;
        }
        name
    }

    /// A `( … )` string, from its opening parenthesis: balanced parentheses kept, escapes decoded.
    fn literal_string(&mut self) -> Result<Obj, Bad> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut depth = 0usize;
        loop {
            let Some(b) = self.peek() else {
                return bad(crate::text!("error.pdf.string_not_closed"));
            };
            self.pos += 1;
            match b {
                b'(' => {
                    depth += 1;
                    out.push(b);
                }
                b')' if depth == 0 => return Ok(Obj::Str(out)),
                b')' => {
                    depth -= 1;
                    out.push(b);
                }
                b'\r' => {
                    // An end of line in a string reads as a line feed.
                    if self.peek() == Some(b'\n') {
                        self.pos += 1;
                    }
                    out.push(b'\n');
                }
                b'\\' => self.escape(&mut out)?,
                other => out.push(other),
            }
        }
    }

    /// What follows a backslash in a literal string, appended to `out`: an escaped end of line is nothing.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), Bad> {
        let Some(e) = self.peek() else {
            return bad(crate::text!("error.pdf.string_not_closed"));
        };
        self.pos += 1;
        match e {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'\r' => {
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
            }
            b'\n' => {}
            other => out.push(other),
        }
        Ok(())
    }

    /// A `< … >` string, from its `<`; an odd last digit counts as followed by 0.
    fn hex_string(&mut self) -> Result<Obj, Bad> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        loop {
            let Some(b) = self.peek() else {
                return bad(crate::text!("error.pdf.hexadecimal_string_not_closed"));
            };
            self.pos += 1;
            let nibble = match b {
                b'>' => {
                    if let Some(h) = high {
                        out.push(h << 4);
                    }
                    return Ok(Obj::Str(out));
                }
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ if is_white(b) => continue,
                _ => return bad(crate::text!("error.pdf.hexadecimal_string_holds_character_that")),
            };
            match high.take() {
                Some(h) => out.push(h << 4 | nibble),
                None => high = Some(nibble),
            }
        }
    }

    /// An integer, a real (its token kept), or `n g R`.
    fn number_or_reference(&mut self) -> Result<Obj, Bad> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.'))
        {
            self.pos += 1;
        }
        let token = std::str::from_utf8(&self.data[start..self.pos]).unwrap_or_default();
        if let Ok(int) = token.parse::<i64>() {
            // `n g R`?
            if let (Ok(num), false) = (u32::try_from(int), token.starts_with('+')) {
                let after_int = self.pos;
                if let Some(gen) = self.uint().and_then(|g| u16::try_from(g).ok()) {
                    if self.keyword(b"R") {
                        return Ok(Obj::Ref(Ref { num, gen }));
                    }
                }
                self.pos = after_int;
            }
            return Ok(Obj::Int(int));
        }
        match token.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Obj::Real(token.to_owned())),
            _ => bad(crate::text!("error.pdf.not_number", token)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::{get, serialize};

    fn parse(text: &str) -> Obj {
        Lexer::new(text.as_bytes(), 0).object(0).unwrap()
    }

    #[test]
    fn the_parser_reads_every_kind_of_object_and_keeps_real_tokens() {
        assert_eq!(parse("  % comment\n 12 0 R"), Obj::Ref(Ref { num: 12, gen: 0 }));
        assert_eq!(parse("12 0 obj"), Obj::Int(12));
        assert_eq!(parse("-.50"), Obj::Real("-.50".into()));
        assert_eq!(
            parse("(a\\(b\\)\\101\\\nc (nested))"),
            Obj::Str(b"a(b)Ac (nested)".to_vec())
        );
        assert_eq!(parse("<48 65 6c6C 6>"), Obj::Str(b"Hell`".to_vec()));
        assert_eq!(parse("/A#20B"), Obj::Name(b"A B".to_vec()));
        let dict = parse("<< /K 1 /K 2 /L [true false null] >>");
        let Obj::Dict(d) = &dict else { panic!() };
        assert_eq!(get(d, b"K"), Some(&Obj::Int(2)), "the last of duplicate keys wins");
        assert_eq!(
            serialize(&parse(
                "<< /Box [0 0 595.2756 841.8898] /S (x\\)) /N /A#20B /H <ff00> >>"
            )),
            b"<< /Box [0 0 595.2756 841.8898] /S (x\\)) /N /A#20B /H <ff00> >>".to_vec()
        );
        let deep = format!("{}{}", "[".repeat(MAX_NESTING + 2), "]".repeat(MAX_NESTING + 2));
        assert!(Lexer::new(deep.as_bytes(), 0).object(0).is_err());
        let very_deep = "[".repeat(1_000_000);
        assert!(Lexer::new(very_deep.as_bytes(), 0).object(0).is_err());
    }
}
