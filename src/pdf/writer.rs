//! The incremental update: the new revision's objects, appended after the untouched original with a
//! cross-reference section of the kind the last one is, chained with `/Prev`. A signature's dictionary comes
//! first, with its `/ByteRange` patched in place once the layout is known.

use super::xref::XrefKind;
use super::{get, serialize, stream_object, Bad, Dict, Doc, Obj, PdfError, Ref};

/// `/ByteRange` numbers are written in fields at least this wide (10 digits: files up to 9.3 GiB) and patched in
/// place once the layout is known.
const MIN_BYTE_RANGE_DIGITS: usize = 10;

/// The signature dictionary with its placeholders.
pub(crate) struct SignatureDict {
    /// The object it is.
    pub(crate) reference: Ref,
    /// `/M`, as a PDF date string.
    pub(crate) modified: Option<String>,
    /// The room for the CMS, in bytes (twice that in hex digits).
    pub(crate) placeholder_bytes: usize,
    /// A document timestamp (`/Type /DocTimeStamp`, `/SubFilter /ETSI.RFC3161`), not a signature.
    pub(crate) doc_timestamp: bool,
    /// `/Reference`: the transforms (e.g. a field lock's FieldMDP) the signature records, if any.
    pub(crate) transforms: Option<Obj>,
}

/// The objects of the new revision, serialised, and how to append them.
pub(crate) struct Increment<'d, 'a> {
    doc: &'d Doc<'a>,
    objects: Vec<(Ref, Vec<u8>)>,
    next_num: u32,
}

impl<'d, 'a> Increment<'d, 'a> {
    /// An empty revision to follow `doc`.
    pub(crate) fn new(doc: &'d Doc<'a>) -> Self {
        Increment {
            doc,
            objects: Vec::new(),
            next_num: doc.next_num,
        }
    }

    /// A new object number.
    pub(crate) fn alloc(&mut self) -> Ref {
        let r = Ref {
            num: self.next_num,
            gen: 0,
        };
        self.next_num += 1;
        r
    }

    /// Adds (or replaces) an object with its serialised body.
    pub(crate) fn put(&mut self, r: Ref, body: Vec<u8>) {
        self.objects.retain(|(o, _)| *o != r);
        self.objects.push((r, body));
    }

    /// The original followed by the new revision.
    pub(crate) fn finish(self) -> Result<Vec<u8>, PdfError> {
        let data = self.doc.data;
        let layout = self.layout(None, 0)?;
        let mut out = Vec::with_capacity(data.len() + layout.separator.len() + layout.bytes.len());
        out.extend_from_slice(data);
        out.extend_from_slice(layout.separator);
        out.extend_from_slice(&layout.bytes);
        Ok(out)
    }

    /// The new revision alone (what follows the original), with the signature dictionary first and its
    /// `/ByteRange` patched; returns it and where its `/Contents` string is, counted from the original's start (the
    /// signed file is the original followed by it; the original is not copied).
    pub(crate) fn finish_signed(self, signature: SignatureDict) -> Result<(Vec<u8>, std::ops::Range<usize>), PdfError> {
        let data = self.doc.data;
        let estimate = data.len() + 2 * signature.placeholder_bytes + (1 << 20);
        let mut digits = MIN_BYTE_RANGE_DIGITS.max(estimate.to_string().len());
        let (layout, contents, byte_range_at) = loop {
            let layout = self.layout(Some(&signature), digits)?;
            let total = data.len() + layout.separator.len() + layout.bytes.len();
            if total.to_string().len() <= digits {
                let base = data.len() + layout.separator.len();
                let (contents, at) = layout
                    .signature
                    .clone()
                    .ok_or_else(|| Bad::Unreadable(crate::text!("error.pdf.no_signature_laid_out")))?;
                break (layout, (contents.start + base)..(contents.end + base), at);
            }
            digits += 1;
        };
        let mut tail = Vec::with_capacity(layout.separator.len() + layout.bytes.len());
        tail.extend_from_slice(layout.separator);
        tail.extend_from_slice(&layout.bytes);
        let total = data.len() + tail.len();
        let fields = byte_range_fields(contents.start, contents.end, total, digits);
        let at = layout.separator.len() + byte_range_at;
        tail[at..at + fields.len()].copy_from_slice(fields.as_bytes());
        Ok((tail, contents))
    }

    /// Serialises the revision as it will follow `data` (and a separator): objects, cross-reference section,
    /// trailer. Positions of the signature placeholders are relative to the start of `bytes`.
    fn layout(&self, signature: Option<&SignatureDict>, digits: usize) -> Result<Layout, PdfError> {
        let data = self.doc.data;
        let separator: &'static [u8] = match data.last() {
            Some(b'\n' | b'\r') => b"",
            _ => b"\n",
        };
        let base = data.len() + separator.len();
        let mut bytes = Vec::new();
        let mut offsets: Vec<(Ref, usize)> = Vec::new();
        let mut sig_positions = None;
        if let Some(sig) = signature {
            offsets.push((sig.reference, base + bytes.len()));
            bytes.extend_from_slice(format!("{} {} obj\n", sig.reference.num, sig.reference.gen).as_bytes());
            sig_positions = Some(write_signature_dict(&mut bytes, sig, digits));
            bytes.extend_from_slice(b"\nendobj\n");
        }
        for (r, body) in &self.objects {
            offsets.push((*r, base + bytes.len()));
            bytes.extend_from_slice(format!("{} {} obj\n", r.num, r.gen).as_bytes());
            bytes.extend_from_slice(body);
            bytes.extend_from_slice(b"\nendobj\n");
        }
        let xref_at = base + bytes.len();
        match self.doc.last_kind {
            XrefKind::Table => self.xref_table(&mut bytes, offsets),
            XrefKind::Stream => self.xref_stream(&mut bytes, offsets, xref_at),
        }
        bytes.extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
        Ok(Layout {
            separator,
            bytes,
            signature: sig_positions,
        })
    }

    /// The trailer entries the revision carries over (`/Root`, `/Info`), its `/ID` with a new second element (the
    /// first stays: it names the document; ISO 32000-1 §14.4), and its `/Prev`.
    fn trailer(&self) -> Dict {
        let mut trailer = Dict::new();
        for key in [&b"Root"[..], b"Info"] {
            if let Some(v) = get(&self.doc.trailer, key) {
                trailer.push((key.to_vec(), v.clone()));
            }
        }
        let first = match get(&self.doc.trailer, b"ID") {
            Some(Obj::Array(id)) => match id.first() {
                Some(Obj::Str(first)) => Some(first.clone()),
                _ => None,
            },
            _ => None,
        };
        let revision = self.revision_id();
        let first = first.unwrap_or_else(|| revision.clone());
        trailer.push((b"ID".to_vec(), Obj::Array(vec![Obj::Str(first), Obj::Str(revision)])));
        trailer.push((b"Prev".to_vec(), Obj::Int(self.doc.startxref as i64)));
        trailer
    }

    /// The second element of the new revision's `/ID`: 16 bytes that change with the file and the revision's
    /// objects (the same for every layout of one revision, so the signature's placeholders can be laid out again).
    fn revision_id(&self) -> Vec<u8> {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update((self.doc.data.len() as u64).to_be_bytes());
        h.update((self.doc.startxref as u64).to_be_bytes());
        if let Some(Obj::Array(id)) = get(&self.doc.trailer, b"ID") {
            for part in id {
                h.update(serialize(part));
            }
        }
        for (r, body) in &self.objects {
            h.update(r.num.to_be_bytes());
            h.update(body);
        }
        h.finalize()[..16].to_vec()
    }

    /// A cross-reference table for the objects at `offsets`, and the trailer.
    fn xref_table(&self, bytes: &mut Vec<u8>, mut offsets: Vec<(Ref, usize)>) {
        offsets.sort_by_key(|(r, _)| r.num);
        bytes.extend_from_slice(b"xref\n");
        for run in runs(&offsets) {
            bytes.extend_from_slice(format!("{} {}\n", run[0].0.num, run.len()).as_bytes());
            for (r, offset) in run {
                bytes.extend_from_slice(format!("{offset:010} {:05} n\r\n", r.gen).as_bytes());
            }
        }
        let mut dict = vec![(b"Size".to_vec(), Obj::Int(i64::from(self.next_num)))];
        dict.extend(self.trailer());
        bytes.extend_from_slice(b"trailer\n");
        bytes.extend_from_slice(&serialize(&Obj::Dict(dict)));
        bytes.extend_from_slice(b"\n");
    }

    /// A cross-reference stream at `xref_at`, for the objects at `offsets` and itself, which is the trailer.
    fn xref_stream(&self, bytes: &mut Vec<u8>, mut offsets: Vec<(Ref, usize)>, xref_at: usize) {
        let xref_ref = Ref {
            num: self.next_num,
            gen: 0,
        };
        offsets.push((xref_ref, xref_at));
        offsets.sort_by_key(|(r, _)| r.num);
        let width = (1..=8).find(|w| (xref_at as u64) < 1u64 << (8 * w)).unwrap_or(8);
        let mut index = Vec::new();
        let mut content = Vec::new();
        for run in runs(&offsets) {
            index.push(Obj::Int(i64::from(run[0].0.num)));
            index.push(Obj::Int(run.len() as i64));
            for (r, offset) in run {
                content.push(1);
                content.extend_from_slice(&(*offset as u64).to_be_bytes()[8 - width..]);
                content.extend_from_slice(&r.gen.to_be_bytes());
            }
        }
        let mut dict = vec![
            (b"Type".to_vec(), Obj::name("XRef")),
            (b"Size".to_vec(), Obj::Int(i64::from(self.next_num) + 1)),
        ];
        dict.extend(self.trailer());
        dict.push((
            b"W".to_vec(),
            Obj::Array(vec![Obj::Int(1), Obj::Int(width as i64), Obj::Int(2)]),
        ));
        dict.push((b"Index".to_vec(), Obj::Array(index)));
        bytes.extend_from_slice(format!("{} 0 obj\n", xref_ref.num).as_bytes());
        bytes.extend_from_slice(&stream_object(&dict, &content));
        bytes.extend_from_slice(b"\nendobj\n");
    }
}

/// A laid-out revision.
struct Layout {
    /// What goes between the original and the revision: a line feed unless the original ends with one.
    separator: &'static [u8],
    bytes: Vec<u8>,
    /// The `/Contents` string and the start of the `/ByteRange` numbers after `[0 `, relative to `bytes`.
    signature: Option<(std::ops::Range<usize>, usize)>,
}

/// Consecutive object numbers, for cross-reference subsections.
fn runs(sorted: &[(Ref, usize)]) -> Vec<&[(Ref, usize)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=sorted.len() {
        if i == sorted.len() || sorted[i].0.num != sorted[i - 1].0.num + 1 {
            out.push(&sorted[start..i]);
            start = i;
        }
    }
    out
}

/// Writes the signature dictionary; returns where its `/Contents` string is and where the three patched
/// `/ByteRange` fields start, relative to `out`.
fn write_signature_dict(out: &mut Vec<u8>, sig: &SignatureDict, digits: usize) -> (std::ops::Range<usize>, usize) {
    if sig.doc_timestamp {
        out.extend_from_slice(b"<< /Type /DocTimeStamp /Filter /Adobe.PPKLite /SubFilter /ETSI.RFC3161");
    } else {
        out.extend_from_slice(b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached");
    }
    if let Some(m) = &sig.modified {
        out.extend_from_slice(b" /M ");
        out.extend_from_slice(&serialize(&Obj::Str(m.as_bytes().to_vec())));
    }
    if let Some(transforms) = &sig.transforms {
        out.extend_from_slice(b" /Reference ");
        out.extend_from_slice(&serialize(transforms));
    }
    out.extend_from_slice(b" /ByteRange [0 ");
    let byte_range_at = out.len();
    out.extend_from_slice(" ".repeat(3 * digits + 2).as_bytes());
    out.extend_from_slice(b"] /Contents ");
    let start = out.len();
    out.push(b'<');
    out.resize(out.len() + 2 * sig.placeholder_bytes, b'0');
    out.push(b'>');
    let end = out.len();
    out.extend_from_slice(b" >>");
    (start..end, byte_range_at)
}

/// The three numbers after `[0 ` in `/ByteRange`, each left-aligned in a field `digits` wide, separated by spaces.
fn byte_range_fields(contents_start: usize, contents_end: usize, total: usize, digits: usize) -> String {
    let numbers = [contents_start, contents_end, total - contents_end];
    numbers
        .iter()
        .map(|n| format!("{n:<digits$}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_range_fields_are_fixed_width_and_fit_files_over_100_mb() {
        let fields = byte_range_fields(1234, 5678, 9999, 10);
        assert_eq!(fields, "1234       5678       4321      ");
        assert_eq!(fields.len(), 3 * 10 + 2);
        // A 150 MB file and an 11 GB one (11 digits).
        let big = byte_range_fields(149_000_000, 149_020_000, 150_000_000, 10);
        assert_eq!(big, "149000000  149020000  980000    ");
        let huge = byte_range_fields(10_999_000_000, 10_999_020_000, 11_000_000_000, 11);
        assert_eq!(huge.len(), 3 * 11 + 2);
        assert!(huge.starts_with("10999000000 10999020000 980000"));
    }
}
