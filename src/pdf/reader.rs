//! A document being read: its bytes, its cross-reference data (read by `xref`), and its objects fetched by
//! reference, from the file or from an object stream, each fetch charged to the reading's budget.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::budget::Budget;
use super::filters::decode;
use super::lexer::Lexer;
use super::xref::{Entry, XrefKind};
use super::{bad, get, Bad, Dict, Limits, Obj, PdfError, Ref};

/// Hops through references to references before a value is called a loop.
const MAX_REF_CHAIN: usize = 16;
/// Where `startxref` is looked for: the end of the file (the specification says the last 1024 bytes; some producers
/// leave trailing junk).
pub(super) const STARTXREF_WINDOW: usize = 1024 * 1024;

/// A decoded object stream: its content (borrowed from the file when it has no filter) and where each object starts.
struct ObjectStream<'a> {
    content: Cow<'a, [u8]>,
    /// (object number, absolute offset in `content`), in the stream's order.
    offsets: Vec<(u32, usize)>,
}

/// A PDF being read: its bytes, its merged cross-reference data and newest trailer.
pub(crate) struct Doc<'a> {
    pub(super) data: &'a [u8],
    pub(super) entries: HashMap<u32, Entry>,
    pub(super) trailer: Dict,
    /// Where the last `startxref` points: the `/Prev` of the next revision.
    pub(super) startxref: usize,
    pub(super) last_kind: XrefKind,
    /// The first object number free for new objects.
    pub(super) next_num: u32,
    pub(super) limits: Limits,
    object_streams: RefCell<HashMap<u32, Rc<ObjectStream<'a>>>>,
    /// Object streams being decoded: one whose `/Length` is inside itself (or another in the loop) is refused.
    loading_streams: RefCell<HashSet<u32>>,
    /// The work this reading may still do.
    pub(super) budget: Budget,
}

impl<'a> Doc<'a> {
    /// What follows `%PDF-` in the header: the version, e.g. `1.4`.
    pub(crate) fn header_version(&self) -> &[u8] {
        self.data.get(5..8).unwrap_or_default()
    }

    /// Opens `data` for reading within `limits`: refuses what is too large, not a PDF, encrypted, or has a
    /// damaged or too large cross-reference chain.
    pub(crate) fn open(data: &'a [u8], limits: &Limits) -> Result<Doc<'a>, PdfError> {
        if data.len() > limits.max_bytes {
            return Err(PdfError::TooLarge {
                size: data.len(),
                max: limits.max_bytes,
            });
        }
        if !data.starts_with(b"%PDF-") {
            // Viewers look for the header in the first 1024 bytes; whether the offsets then count from the header or
            // from the file's start is a guess, which a signature must not rest on.
            return Err(match data.windows(5).take(1024).position(|w| w == b"%PDF-") {
                Some(count) => Bad::Unreadable(crate::text!("error.pdf.bytes_before_header", count)),
                None => Bad::Unreadable(crate::text!("error.pdf.does_not_start_with_pdf")),
            }
            .into());
        }
        let budget = Budget::new(limits, data.len());
        budget.scan(data.len().min(STARTXREF_WINDOW))?;
        let startxref = find_startxref(data)?;
        let mut doc = Doc {
            data,
            entries: HashMap::new(),
            trailer: Dict::new(),
            startxref,
            last_kind: XrefKind::Table,
            next_num: 0,
            limits: *limits,
            object_streams: RefCell::new(HashMap::new()),
            loading_streams: RefCell::new(HashSet::new()),
            budget,
        };
        doc.read_xref_chain()?;
        Ok(doc)
    }

    /// `n g obj <object> [stream]` at `offset` (white space before it tolerated): the reference, the object, and
    /// where the stream data starts if it is a stream.
    pub(super) fn parse_indirect_at(&self, offset: usize) -> Result<(Ref, Obj, Option<usize>), Bad> {
        let mut lx = Lexer::new(self.data, offset);
        let (Some(num), Some(gen)) = (lx.uint(), lx.uint()) else {
            return bad(crate::text!("error.pdf.cross_reference_data_points_where"));
        };
        if !lx.keyword(b"obj") {
            return bad(crate::text!("error.pdf.cross_reference_data_points_where"));
        }
        let reference = Ref {
            num: u32::try_from(num).map_err(|_| Bad::Unreadable(crate::text!("error.pdf.object_number_out_range")))?,
            gen: u16::try_from(gen)
                .map_err(|_| Bad::Unreadable(crate::text!("error.pdf.generation_number_out_range")))?,
        };
        let obj = lx.object(0);
        self.budget.scan(lx.pos.saturating_sub(offset))?;
        let obj = obj?;
        let stream_start = if matches!(obj, Obj::Dict(_)) && lx.keyword(b"stream") {
            match (lx.peek(), lx.peek_at(1)) {
                (Some(b'\r'), Some(b'\n')) => lx.pos += 2,
                (Some(b'\n' | b'\r'), _) => lx.pos += 1,
                _ => {}
            }
            Some(lx.pos)
        } else {
            None
        };
        Ok((reference, obj, stream_start))
    }

    /// The raw data of the stream whose dictionary is `dict` and data starts at `start`: `/Length` bytes when
    /// `endstream` follows them, else up to the next `endstream`.
    pub(super) fn stream_data(&self, dict: &Dict, start: usize, depth: usize) -> Result<&'a [u8], Bad> {
        let length = match get(dict, b"Length") {
            Some(Obj::Int(l)) => usize::try_from(*l).ok(),
            Some(Obj::Ref(r)) => match self.resolve(*r, depth + 1)? {
                Obj::Int(l) => usize::try_from(l).ok(),
                _ => None,
            },
            _ => None,
        };
        if let Some(end) = length.and_then(|l| start.checked_add(l)) {
            if end <= self.data.len() {
                let mut lx = Lexer::new(self.data, end);
                if lx.keyword(b"endstream") {
                    return Ok(&self.data[start..end]);
                }
            }
        }
        // Without a usable /Length, the data runs to the next `endstream`: a search charged to the budget, and
        // never past what is left of it, so a chain of such streams cannot make the reading quadratic.
        let rest = self.data.get(start..).unwrap_or_default();
        let window = &rest[..rest.len().min(self.budget.scan_left())];
        let Some(at) = find(window, b"endstream") else {
            if window.len() < rest.len() {
                return Err(self.budget.scan_exhausted());
            }
            return bad(crate::text!("error.pdf.stream_has_no_end"));
        };
        self.budget.scan(at + b"endstream".len())?;
        let mut end = start + at;
        if self.data.get(end.wrapping_sub(1)) == Some(&b'\n') {
            end -= 1;
        }
        if end > start && self.data.get(end - 1) == Some(&b'\r') {
            end -= 1;
        }
        Ok(&self.data[start..end.max(start)])
    }

    /// The object `r` and, if it is a stream in the file, where its data starts.
    pub(crate) fn fetch(&self, r: Ref, depth: usize) -> Result<(Obj, Option<usize>), Bad> {
        if depth > MAX_REF_CHAIN {
            return bad(crate::text!("error.pdf.objects_refer_each_other_in"));
        }
        self.budget.node()?;
        match self.entries.get(&r.num) {
            None | Some(Entry::Free) => Ok((Obj::Null, None)),
            Some(Entry::InFile { offset }) => {
                let (found, obj, stream) = self.parse_indirect_at(*offset)?;
                if found.num != r.num {
                    return bad(crate::text!("error.pdf.cross_reference_data_wrong_object", num = r.num));
                }
                Ok((obj, stream))
            }
            Some(Entry::InStream { container, index }) => {
                let stream = self.object_stream(*container, depth)?;
                let at = match stream.offsets.get(*index) {
                    Some((num, at)) if *num == r.num => Some(*at),
                    _ => stream.offsets.iter().find(|(num, _)| *num == r.num).map(|(_, at)| *at),
                };
                let Some(at) = at else {
                    return Ok((Obj::Null, None));
                };
                let mut lx = Lexer::new(&stream.content, at);
                let obj = lx.object(0);
                self.budget.scan(lx.pos.saturating_sub(at))?;
                Ok((obj?, None))
            }
        }
    }

    /// The object `r`, following references to references up to a bound.
    fn resolve(&self, r: Ref, depth: usize) -> Result<Obj, Bad> {
        let mut obj = self.fetch(r, depth)?.0;
        for hop in 0..MAX_REF_CHAIN {
            match obj {
                Obj::Ref(next) => obj = self.fetch(next, depth + hop + 1)?.0,
                other => return Ok(other),
            }
        }
        bad(crate::text!("error.pdf.objects_refer_each_other_in"))
    }

    /// A direct value as is, a reference resolved.
    pub(crate) fn deref(&self, value: &Obj) -> Result<Obj, Bad> {
        match value {
            Obj::Ref(r) => self.resolve(*r, 0),
            other => Ok(other.clone()),
        }
    }

    /// The decoded object stream `container`, decoded once per reading.
    fn object_stream(&self, container: u32, depth: usize) -> Result<Rc<ObjectStream<'a>>, Bad> {
        if let Some(s) = self.object_streams.borrow().get(&container) {
            return Ok(Rc::clone(s));
        }
        if !self.loading_streams.borrow_mut().insert(container) {
            return bad(crate::text!("error.pdf.object_stream_needs_itself_read"));
        }
        let stream = self.load_object_stream(container, depth);
        self.loading_streams.borrow_mut().remove(&container);
        let stream = Rc::new(stream?);
        self.object_streams.borrow_mut().insert(container, Rc::clone(&stream));
        Ok(stream)
    }

    /// Decodes the object stream `container` and reads its header of object numbers and offsets.
    fn load_object_stream(&self, container: u32, depth: usize) -> Result<ObjectStream<'a>, Bad> {
        let Some(Entry::InFile { offset }) = self.entries.get(&container) else {
            return bad(crate::text!("error.pdf.object_stream_missing"));
        };
        let (found, obj, start) = self.parse_indirect_at(*offset)?;
        let (Obj::Dict(dict), Some(start), true) = (obj, start, found.num == container) else {
            return bad(crate::text!("error.pdf.object_stream_missing"));
        };
        let raw = self.stream_data(&dict, start, depth)?;
        let content = decode(&self.budget, &dict, raw)?;
        let (Some(Obj::Int(n)), Some(Obj::Int(first))) = (get(&dict, b"N"), get(&dict, b"First")) else {
            return bad(crate::text!("error.pdf.object_stream_has_no_n"));
        };
        let first = usize::try_from(*first)
            .ok()
            .filter(|f| *f <= content.len())
            .ok_or_else(|| Bad::Unreadable(crate::text!("error.pdf.object_stream_damaged")))?;
        let n = usize::try_from(*n).unwrap_or(0).min(first / 2);
        let mut lx = Lexer::new(&content[..first], 0);
        self.budget.scan(first)?;
        let mut offsets = Vec::new();
        for _ in 0..n {
            let (Some(num), Some(off)) = (lx.uint(), lx.uint()) else {
                break;
            };
            let (Ok(num), Some(at)) = (
                u32::try_from(num),
                usize::try_from(off).ok().and_then(|o| o.checked_add(first)),
            ) else {
                break;
            };
            offsets.push((num, at));
        }
        Ok(ObjectStream { content, offsets })
    }
}

/// Where `needle` first occurs in `haystack`.
pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where `needle` last occurs in `haystack`.
pub(super) fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// The offset the last `startxref` near the end of the file names.
pub(super) fn find_startxref(data: &[u8]) -> Result<usize, Bad> {
    let tail_start = data.len().saturating_sub(STARTXREF_WINDOW);
    let tail = &data[tail_start..];
    let Some(at) = rfind(tail, b"startxref") else {
        return bad(crate::text!("error.pdf.has_no_startxref_file_truncated"));
    };
    let mut lx = Lexer::new(data, tail_start + at + b"startxref".len());
    lx.uint()
        .and_then(|o| usize::try_from(o).ok())
        .filter(|o| *o > 0 && *o < data.len())
        .ok_or_else(|| Bad::Unreadable(crate::text!("error.pdf.startxref_points_outside_file")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::xref_chain;
    use crate::pdf::budget::SCAN_SLACK;
    use crate::pdf::testing::{limits, too_complex, work};
    use crate::pdf::{inspect, DEFAULT_SCAN_FACTOR};

    #[test]
    fn a_chain_of_streams_without_length_is_read_in_linear_work_or_refused() {
        // Each stream ends where it should: 1 000 revisions are read, scanning each byte a few times at most.
        let fine = xref_chain(1000, 64, true);
        let ((_, scanned, _), info) = work(&fine, &limits());
        assert_eq!(info.unwrap().pages.len(), 2);
        assert!(
            scanned <= 3 * fine.len(),
            "{scanned} bytes scanned for a {}-byte file",
            fine.len()
        );

        // One `endstream` at the very end: each section's search would cross the rest of the file.
        let hostile = xref_chain(1000, 2048, false);
        let doc = Doc::open(&hostile, &limits());
        let why = too_complex(doc.map(|_| ()));
        assert!(why.contains("scanning more than 8 times its size"), "{why}");
        // The refusal came before the work did: never more than the allowance.
        let allowance = hostile.len() * DEFAULT_SCAN_FACTOR + SCAN_SLACK;
        let limits = limits();
        let budget = Budget::new(&limits, hostile.len());
        assert_eq!(budget.allowance(), allowance);
        let mut reading = Doc {
            data: &hostile,
            entries: HashMap::new(),
            trailer: Dict::new(),
            startxref: find_startxref(&hostile).unwrap(),
            last_kind: XrefKind::Table,
            next_num: 0,
            limits,
            object_streams: RefCell::new(HashMap::new()),
            loading_streams: RefCell::new(HashSet::new()),
            budget,
        };
        assert!(reading.read_xref_chain().is_err());
        let (_, scanned, _) = reading.budget.spent();
        assert!(scanned <= allowance, "{scanned}");

        // Too many revisions, even cheap ones.
        let few = Limits {
            max_xref_sections: 100,
            ..Limits::default()
        };
        assert!(too_complex(inspect(&fine, &few)).contains("more than 100 revisions"));
    }

    #[test]
    fn object_streams_that_need_themselves_are_refused() {
        // Object 5's /Length is object 6, which lives in object stream 5.
        let out = crate::hostile::object_stream_loop();
        let ((nodes, _, _), result) = work(&out, &limits());
        match result {
            Err(PdfError::Unreadable(m)) => assert!(m.to_string().contains("needs itself"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(nodes < 10, "{nodes}");
        // An object stream listed as being inside another object stream is not an object stream.
        let mut nested = String::from_utf8_lossy(&out)
            .replace("/Length 6 0 R", "/Length 40   ")
            .into_bytes();
        let xref = find(&nested, b"/Type /XRef").expect("the cross-reference stream");
        let rows_at = xref + find(&nested[xref..], b"stream\n").expect("its data") + "stream\n".len();
        nested[rows_at + 5 * 5] = 2; // object 5 "in" object stream 5
        assert!(matches!(inspect(&nested, &limits()), Err(PdfError::Unreadable(_))));
    }
}
