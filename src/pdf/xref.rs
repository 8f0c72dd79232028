//! The cross-reference chain: from the last `startxref` back through `/Prev`, each section a table or a stream
//! (or a table with a stream beside it, in a hybrid file), merged newest first into where each object is.

use std::collections::HashSet;

use super::filters::decode;
use super::lexer::Lexer;
use super::{bad, get, set, Bad, Dict, Doc, Obj, PdfError};

/// Where an object is, as the cross-reference data says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    Free,
    InFile { offset: usize },
    InStream { container: u32, index: usize },
}

/// The kind of a cross-reference section: the new revision's is the kind of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum XrefKind {
    Table,
    Stream,
}

impl Doc<'_> {
    /// Reads every section from the last `startxref` back, within the limits on revisions and objects; sets the
    /// merged trailer, the kind of the last section and the first free object number.
    pub(super) fn read_xref_chain(&mut self) -> Result<(), PdfError> {
        let mut offset = self.startxref;
        let mut visited = HashSet::new();
        let mut declared_size: u64 = 0;
        let mut first = true;
        loop {
            if !visited.insert(offset) {
                return Err(Bad::Unreadable(crate::text!("error.pdf.cross_reference_sections_refer_each")).into());
            }
            if visited.len() > self.limits.max_xref_sections {
                return Err(Bad::OverBudget(crate::text!(
                    "error.pdf.has_more_than_revisions",
                    max_xref_sections = self.limits.max_xref_sections
                ))
                .into());
            }
            let (kind, trailer) = self.read_xref_section(offset)?;
            if first {
                self.last_kind = kind;
                first = false;
            }
            declared_size = self.take_trailer(&trailer, declared_size)?;
            match get(&trailer, b"Prev") {
                Some(Obj::Int(prev)) => {
                    offset = usize::try_from(*prev)
                        .ok()
                        .filter(|p| *p < self.data.len())
                        .ok_or_else(|| {
                            Bad::Unreadable(crate::text!("error.pdf.cross_reference_section_points_outside"))
                        })?;
                }
                _ => break,
            }
        }
        let highest = self.entries.keys().max().map_or(0, |n| u64::from(*n) + 1);
        let next = declared_size.max(highest);
        self.next_num = u32::try_from(next)
            .ok()
            .filter(|n| *n < u32::MAX - 1000)
            .ok_or_else(|| Bad::Unreadable(crate::text!("error.pdf.object_numbers_out_range")))?;
        Ok(())
    }

    /// Takes in a section's trailer: refuses encryption and a `/Size` over the limit, and fills in what the newer
    /// trailers lack. Returns the largest `/Size` declared so far, `declared_size` before this one.
    fn take_trailer(&mut self, trailer: &Dict, mut declared_size: u64) -> Result<u64, PdfError> {
        if get(trailer, b"Encrypt").is_some() {
            return Err(PdfError::Encrypted);
        }
        if let Some(size) = get(trailer, b"Size").and_then(|s| match s {
            Obj::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }) {
            declared_size = declared_size.max(size);
            if declared_size > self.limits.max_objects as u64 {
                return Err(PdfError::TooManyObjects {
                    count: usize::try_from(declared_size).unwrap_or(usize::MAX),
                    max: self.limits.max_objects,
                });
            }
        }
        // The newest trailer wins; older ones fill in what it lacks.
        for (key, value) in trailer {
            if get(&self.trailer, key).is_none() {
                set(&mut self.trailer, key, value.clone());
            }
        }
        Ok(declared_size)
    }

    /// Reads the section at `offset` into `entries` (older sections never override newer ones); returns its kind
    /// and trailer.
    fn read_xref_section(&mut self, offset: usize) -> Result<(XrefKind, Dict), PdfError> {
        let mut lx = Lexer::new(self.data, offset);
        if !lx.keyword(b"xref") {
            let trailer = self.read_xref_stream(offset)?;
            return Ok((XrefKind::Stream, trailer));
        }
        let (section, trailer) = self.read_xref_table(&mut lx)?;
        // A hybrid file: the stream lists the objects in object streams, which the table leaves out or marks
        // free for older readers; it comes first so it wins over those placeholders.
        if let Some(Obj::Int(stm)) = get(&trailer, b"XRefStm") {
            let stm = usize::try_from(*stm)
                .ok()
                .filter(|s| *s < self.data.len())
                .ok_or_else(|| Bad::Unreadable(crate::text!("error.pdf.cross_reference_stream_outside_file")))?;
            self.read_xref_stream(stm)?;
        }
        self.budget.scan(lx.pos.saturating_sub(offset))?;
        for (num, entry) in section {
            self.add_entry(num, entry)?;
        }
        Ok((XrefKind::Table, trailer))
    }

    /// The entries and the trailer of a cross-reference table, read from just after its `xref`. The entries are
    /// not added yet: a hybrid file's stream goes first.
    fn read_xref_table(&self, lx: &mut Lexer) -> Result<(Vec<(u32, Entry)>, Dict), PdfError> {
        let mut section = Vec::new();
        let trailer = loop {
            if lx.keyword(b"trailer") {
                match lx.object(0)? {
                    Obj::Dict(d) => break d,
                    _ => return Err(Bad::Unreadable(crate::text!("error.pdf.trailer_not_dictionary")).into()),
                }
            }
            let (Some(start), Some(count)) = (lx.uint(), lx.uint()) else {
                return Err(Bad::Unreadable(crate::text!("error.pdf.cross_reference_table_damaged")).into());
            };
            for i in 0..count {
                let (Some(off), Some(_gen)) = (lx.uint(), lx.uint()) else {
                    return Err(Bad::Unreadable(crate::text!("error.pdf.cross_reference_table_damaged")).into());
                };
                lx.skip_space();
                let in_use = match lx.peek() {
                    Some(b'n') => true,
                    Some(b'f') => false,
                    _ => return Err(Bad::Unreadable(crate::text!("error.pdf.cross_reference_table_damaged")).into()),
                };
                lx.pos += 1;
                let num = start
                    .checked_add(i)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| Bad::Unreadable(crate::text!("error.pdf.cross_reference_table_damaged")))?;
                let entry = match usize::try_from(off) {
                    Ok(offset) if in_use && offset > 0 => Entry::InFile { offset },
                    _ => Entry::Free,
                };
                section.push((num, entry));
                if section.len() > self.limits.max_objects {
                    return Err(self.too_many(section.len()));
                }
            }
        };
        Ok((section, trailer))
    }

    /// Records where object `num` is, unless a newer section said so already; refuses more objects than the limit.
    fn add_entry(&mut self, num: u32, entry: Entry) -> Result<(), PdfError> {
        self.entries.entry(num).or_insert(entry);
        if self.entries.len() > self.limits.max_objects {
            return Err(self.too_many(self.entries.len()));
        }
        Ok(())
    }

    fn too_many(&self, count: usize) -> PdfError {
        PdfError::TooManyObjects {
            count,
            max: self.limits.max_objects,
        }
    }

    /// Reads the cross-reference stream at `offset` into `entries`; returns its dictionary, which is the trailer.
    fn read_xref_stream(&mut self, offset: usize) -> Result<Dict, PdfError> {
        let (_, obj, stream_start) = self.parse_indirect_at(offset)?;
        let (Obj::Dict(dict), Some(start)) = (obj, stream_start) else {
            return Err(Bad::Unreadable(crate::text!("error.pdf.startxref_does_not_point_at")).into());
        };
        let raw = self.stream_data(&dict, start, 0)?;
        let content = decode(&self.budget, &dict, raw)?;
        let content: &[u8] = &content;
        let widths = stream_widths(&dict)?;
        let entry_len: usize = widths.iter().sum();
        if entry_len == 0 {
            return Err(Bad::Unreadable(crate::text!("error.pdf.cross_reference_stream_has_bad")).into());
        }
        let index = stream_index(&dict)?;
        let total = index
            .chunks(2)
            .fold(0u64, |acc, c| acc.saturating_add(c.get(1).copied().unwrap_or(0)));
        if total > (content.len() / entry_len) as u64 {
            return Err(Bad::Unreadable(crate::text!("error.pdf.cross_reference_stream_shorter_than")).into());
        }
        self.add_stream_entries(content, &widths, &index)?;
        Ok(dict)
    }

    /// Adds the entries of a cross-reference stream's decoded `content`, whose records are `widths` wide, for the
    /// object numbers `index` names (pairs of first number and count).
    fn add_stream_entries(&mut self, content: &[u8], widths: &[usize], index: &[u64]) -> Result<(), PdfError> {
        let field = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
        let entry_len: usize = widths.iter().sum();
        let mut pos = 0;
        for pair in index.chunks(2) {
            let [start, count] = *pair else { break };
            for i in 0..count {
                let record = content.get(pos..pos + entry_len).unwrap_or_default();
                pos += entry_len;
                let (f1, rest) = record.split_at(widths[0].min(record.len()));
                let (f2, f3) = rest.split_at(widths[1].min(rest.len()));
                let kind = if widths[0] == 0 { 1 } else { field(f1) };
                let num = start
                    .checked_add(i)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| Bad::Unreadable(crate::text!("error.pdf.cross_reference_stream_damaged")))?;
                let entry = match kind {
                    0 => Entry::Free,
                    1 => match usize::try_from(field(f2)) {
                        Ok(offset) if offset > 0 => Entry::InFile { offset },
                        _ => Entry::Free,
                    },
                    2 => Entry::InStream {
                        container: u32::try_from(field(f2))
                            .map_err(|_| Bad::Unreadable(crate::text!("error.pdf.cross_reference_stream_damaged")))?,
                        index: usize::try_from(field(f3)).unwrap_or(usize::MAX),
                    },
                    // Unknown types are references to the null object.
                    _ => Entry::Free,
                };
                self.add_entry(num, entry)?;
            }
        }
        Ok(())
    }
}

/// A cross-reference stream's `/W`: three field widths of at most 8 bytes each.
fn stream_widths(dict: &Dict) -> Result<Vec<usize>, Bad> {
    match get(dict, b"W") {
        Some(Obj::Array(w)) if w.len() == 3 => w
            .iter()
            .map(|x| match x {
                Obj::Int(i) => usize::try_from(*i).ok().filter(|v| *v <= 8),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(|| Bad::Unreadable(crate::text!("error.pdf.cross_reference_stream_has_bad"))),
        _ => bad(crate::text!("error.pdf.cross_reference_stream_has_no")),
    }
}

/// A cross-reference stream's `/Index`, or `[0 /Size]` when it has none.
fn stream_index(dict: &Dict) -> Result<Vec<u64>, Bad> {
    let size = match get(dict, b"Size") {
        Some(Obj::Int(s)) => u64::try_from(*s).map_err(|_| Bad::Unreadable(crate::text!("error.pdf.bad_size")))?,
        _ => return bad(crate::text!("error.pdf.cross_reference_stream_has_no_2")),
    };
    match get(dict, b"Index") {
        Some(Obj::Array(a)) => a
            .iter()
            .map(|x| match x {
                Obj::Int(i) => u64::try_from(*i).ok(),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(|| Bad::Unreadable(crate::text!("error.pdf.cross_reference_stream_has_bad_2"))),
        _ => Ok(vec![0, size]),
    }
}
