//! PAdES: a PDF signed by an incremental update around a CMS made elsewhere.
//!
//! The signer's key is in the HSM, so nothing here signs. [`prepare`] appends to the untouched original a revision
//! with a signature dictionary whose `/Contents` is a zero-filled placeholder, a signature field (invisible, or
//! visible with an appearance in a rectangle of a page), the page's updated `/Annots`, the AcroForm with
//! `/SigFlags 3`, and a cross-reference section of the kind the original's last one is, chained with `/Prev`.
//! [`Prepared::digest`] hashes what the `/ByteRange` covers (all but the `/Contents` hex string); the caller makes
//! the CMS over that digest (`documents::cms`, detached, no signing-time; or an RFC 3161 token for a document
//! timestamp) and [`Prepared::finish`] writes it into the placeholder. [`add_dss`] appends the long-term validation
//! data (`/DSS` with certificates, CRLs and OCSP responses) by a further incremental update. Earlier revisions, and
//! so earlier signatures, stay byte for byte as they were.
//!
//! The reader is our own and lazy, not lopdf's `Document`: it follows the cross-reference chain and reads only the
//! handful of objects it needs (catalog, page tree, form fields, certification), never page contents or images, so
//! a 100 MB file costs little more than its own bytes and the signed copy. lopdf's `Document` would load and copy
//! every object, and rewrites reals as `f32`, which changes untouched values in the objects an update must rewrite
//! (a page, the catalog) and makes validators' diff analysis flag the earlier signatures. Compressed
//! cross-reference and object streams are inflated here with flate2, with a cap on the output and damaged data
//! refused (lopdf's decoder reads garbage as nothing).
//!
//! Hostile input is expected: one budget per reading (the [`Limits`]) is charged by every walk of the object
//! graph (objects fetched and tree nodes visited, tree depth, bytes lexed and searched, bytes decoded per stream
//! and in all), shared `/Kids` arrays are expanded once, nesting is bounded by [`MAX_NESTING`], and nothing indexes
//! input without a check. A budget exhausted is [`PdfError::TooComplex`]. These functions are CPU-bound and
//! synchronous: callers on the async runtime run them with `spawn_blocking`.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::rc::Rc;

use sha2::Digest;

use crate::hsm::HashAlg;

/// Default of [`Limits::max_bytes`]: 100 MiB.
pub const DEFAULT_MAX_BYTES: usize = 100 * 1024 * 1024;
/// Default of [`Limits::max_objects`].
pub const DEFAULT_MAX_OBJECTS: usize = 500_000;
/// The largest `/Contents` placeholder [`prepare`] reserves, in bytes of CMS (twice that in hex digits): far above a
/// CAdES signature with its chain and timestamps (revocation data goes to the DSS, not into the CMS).
pub const MAX_PLACEHOLDER_BYTES: usize = 4 * 1024 * 1024;
/// How deeply arrays and dictionaries may nest in an object the reader parses.
pub const MAX_NESTING: usize = 64;

// The defaults of the reader's work budgets are those of the `parsers` settings.
pub use crate::config::{
    DEFAULT_MAX_DECODED_STREAM, DEFAULT_MAX_DECODED_TOTAL, DEFAULT_MAX_DEPTH, DEFAULT_MAX_NODES,
    DEFAULT_MAX_XREF_SECTIONS, DEFAULT_SCAN_FACTOR,
};
/// Bytes of a field's full name reported by [`signature_fields`]; longer names are cut.
const MAX_FIELD_NAME: usize = 1024;
/// Filters one stream may chain.
const MAX_FILTERS: usize = 4;
/// Hops through references to references before a value is called a loop.
const MAX_REF_CHAIN: usize = 16;
/// Where `startxref` is looked for: the end of the file (the specification says the last 1024 bytes; some producers
/// leave trailing junk).
const STARTXREF_WINDOW: usize = 1024 * 1024;
/// `/ByteRange` numbers are written in fields at least this wide (10 digits: files up to 9.3 GiB) and patched in
/// place once the layout is known.
const MIN_BYTE_RANGE_DIGITS: usize = 10;
/// Annotation flags of the signature widget: Print (4) + Locked (128).
const WIDGET_FLAGS: i64 = 132;
/// `/SigFlags`: SignaturesExist (1) + AppendOnly (2).
const SIG_FLAGS: i64 = 3;

/// What the reader accepts and how much work one reading of a file may do; callers take them from their settings
/// ([`Limits::of`]). [`Limits::default`] gives the documented defaults. A file past a size limit is
/// refused as too large, one that would make the reader exceed a work budget as [`PdfError::TooComplex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest PDF accepted, in bytes ([`DEFAULT_MAX_BYTES`], 100 MiB).
    pub max_bytes: usize,
    /// The most objects its cross-reference data may declare ([`DEFAULT_MAX_OBJECTS`], 500 000).
    pub max_objects: usize,
    /// The most objects one reading fetches plus tree nodes it visits, direct or indirect ([`DEFAULT_MAX_NODES`]).
    pub max_nodes: usize,
    /// The deepest a page tree or form field tree may go ([`DEFAULT_MAX_DEPTH`]).
    pub max_depth: usize,
    /// The bytes one reading may lex or search, as a multiple of what there is to read: the file and the streams
    /// it decodes ([`DEFAULT_SCAN_FACTOR`]).
    pub scan_factor: usize,
    /// The most one compressed stream may decode to ([`DEFAULT_MAX_DECODED_STREAM`]).
    pub max_decoded_stream: usize,
    /// The most all streams decoded by one reading may add up to ([`DEFAULT_MAX_DECODED_TOTAL`]).
    pub max_decoded_total: usize,
    /// Cross-reference sections (revisions) followed through `/Prev` ([`DEFAULT_MAX_XREF_SECTIONS`]).
    pub max_xref_sections: usize,
}

impl Limits {
    /// The limits in force: the sizes from the `documents` settings, the work budgets from `parsers`.
    pub fn of(settings: &crate::config::Settings) -> Limits {
        let p = &settings.parsers;
        Limits {
            max_bytes: settings.documents.max_pdf_bytes,
            max_objects: settings.documents.max_pdf_objects,
            max_nodes: p.pdf_max_nodes,
            max_depth: p.pdf_max_depth,
            scan_factor: p.pdf_scan_factor,
            max_decoded_stream: p.pdf_max_decoded_stream_bytes,
            max_decoded_total: p.pdf_max_decoded_total_bytes,
            max_xref_sections: p.pdf_max_xref_sections,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_objects: DEFAULT_MAX_OBJECTS,
            max_nodes: DEFAULT_MAX_NODES,
            max_depth: DEFAULT_MAX_DEPTH,
            scan_factor: DEFAULT_SCAN_FACTOR,
            max_decoded_stream: DEFAULT_MAX_DECODED_STREAM,
            max_decoded_total: DEFAULT_MAX_DECODED_TOTAL,
            max_xref_sections: DEFAULT_MAX_XREF_SECTIONS,
        }
    }
}

/// Why a PDF cannot be read, signed or extended. The messages are meant for the person who uploaded it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PdfError {
    #[error("The PDF is {size} bytes; files up to {max} bytes can be signed.")]
    TooLarge { size: usize, max: usize },
    #[error("The PDF declares {count} objects; files with up to {max} objects can be signed.")]
    TooManyObjects { count: usize, max: usize },
    #[error(
        "The file cannot be read as a PDF ({0}). Open it in a PDF reader and save or print it again as PDF, then sign \
         the new file."
    )]
    Unreadable(String),
    #[error(
        "The PDF is too complex to read here ({0}). Open it in a PDF reader and save or print it again as PDF, then \
         use the new file."
    )]
    TooComplex(String),
    #[error(
        "The PDF is encrypted or password-protected. Save a copy without the password or restrictions and sign that."
    )]
    Encrypted,
    #[error(
        "Smart PDF forms cannot be signed here; sign them locally in a PDF reader with the desktop virtual token."
    )]
    Xfa,
    #[error(
        "The PDF is certified by its author with no changes allowed (DocMDP level 1), so it cannot take another \
         signature."
    )]
    CertifiedNoChanges,
    #[error("The signature is {needed} bytes but only {available} bytes were reserved for it in the PDF.")]
    ContentsTooSmall { needed: usize, available: usize },
    #[error("The space to reserve for the signature must be between 1 and {max} bytes, not {requested}.")]
    InvalidPlaceholder { requested: usize, max: usize },
    #[error("The PDF has {pages} pages: there is no page {page} to put the signature on.")]
    NoSuchPage { page: usize, pages: usize },
    #[error("The signature rectangle cannot be used: {0}.")]
    InvalidAppearance(String),
    #[error("The signing time {0} (Unix seconds) cannot be written as a PDF date.")]
    InvalidTime(i64),
}

/// A page's geometry, in PDF user-space points, as a signing UI needs it to place a rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageGeometry {
    /// `[x1 y1 x2 y2]` of the page's `/MediaBox` (inherited or default US Letter), normalised so x1 < x2, y1 < y2.
    pub media_box: [f64; 4],
    /// `/Rotate`: 0, 90, 180 or 270, clockwise, as viewers show the page.
    pub rotate: u16,
}

/// What [`inspect`] learns about a PDF that can be signed.
#[derive(Debug, Clone, PartialEq)]
pub struct PdfInfo {
    /// One entry per page, in order.
    pub pages: Vec<PageGeometry>,
    /// Signature fields that hold a signature or a document timestamp.
    pub signatures: usize,
    /// The DocMDP permission level `P` (1, 2 or 3) when a certification signature is present.
    pub certification: Option<u8>,
    /// Whether the catalog has a `/DSS` (long-term validation data) already.
    pub has_dss: bool,
}

impl PdfInfo {
    /// The number of pages.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }
}

/// A visible signature: where it goes and what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    /// The page, 1-based.
    pub page: usize,
    /// `[x1 y1 x2 y2]` in the page's default user space (points, origin bottom left, before `/Rotate`): the caller
    /// converts from what a viewer shows. At least 10 points each way and within the page's `/MediaBox`; on a
    /// rotated page the text is turned so it reads upright on screen.
    pub rect: [f64; 4],
    /// The signer's name. Helvetica with WinAnsi encoding shows it; letters outside WinAnsi lose their diacritics
    /// (ș ț ă become s t a) or become `?`.
    pub name: String,
    /// The date as it should read, formatted by the caller.
    pub date: String,
}

/// What the new signature field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A PAdES signature: `/SubFilter /ETSI.CAdES.detached`, with `/M` from `signing_time` (Unix seconds), since
    /// a PAdES CMS carries no signing-time attribute.
    Signature { signing_time: i64 },
    /// A document timestamp (PAdES B-LTA): `/Type /DocTimeStamp`, `/SubFilter /ETSI.RFC3161`, always invisible.
    DocumentTimestamp,
}

/// A PDF with its new revision laid out and a zero-filled `/Contents` placeholder waiting for the CMS.
///
/// [`prepare`] is deterministic: the same inputs give the same bytes and the same digest, so a signing job that
/// waits for the holder's authorisation may keep the inputs and prepare again.
#[derive(Debug, Clone)]
pub struct Prepared {
    file: Vec<u8>,
    /// The `/Contents` hex string, angle brackets included: the one gap in the byte range.
    contents: std::ops::Range<usize>,
    field_name: String,
}

impl Prepared {
    /// `[0, a, b, len - b]`: offsets and lengths of the two signed parts, as written in `/ByteRange`.
    pub fn byte_range(&self) -> [u64; 4] {
        let len = self.file.len() as u64;
        let (a, b) = (self.contents.start as u64, self.contents.end as u64);
        [0, a, b, len - b]
    }

    /// The two parts of the file the signature covers, in order.
    pub fn signed_parts(&self) -> [&[u8]; 2] {
        let (before, rest) = self.file.split_at(self.contents.start);
        let after = rest.get(self.contents.len()..).unwrap_or_default();
        [before, after]
    }

    /// The digest of the byte range: the `message-digest` of the CMS, or what a document timestamp stamps.
    pub fn digest(&self, hash: HashAlg) -> Vec<u8> {
        let [a, b] = self.signed_parts();
        match hash {
            HashAlg::Sha256 => sha2::Sha256::new().chain_update(a).chain_update(b).finalize().to_vec(),
            HashAlg::Sha384 => sha2::Sha384::new().chain_update(a).chain_update(b).finalize().to_vec(),
            HashAlg::Sha512 => sha2::Sha512::new().chain_update(a).chain_update(b).finalize().to_vec(),
        }
    }

    /// The room reserved for the CMS, in bytes.
    pub fn placeholder_bytes(&self) -> usize {
        (self.contents.len() - 2) / 2
    }

    /// The name (`/T`) of the new signature field.
    pub fn field_name(&self) -> &str {
        &self.field_name
    }

    /// The whole prepared file, placeholder included (what a test or a debugging tool may want to look at).
    pub fn file(&self) -> &[u8] {
        &self.file
    }

    /// The signed PDF: `cms_der` (a DER ContentInfo) hex-encoded into the placeholder, zero-padded.
    pub fn finish(mut self, cms_der: &[u8]) -> Result<Vec<u8>, PdfError> {
        let available = self.placeholder_bytes();
        if cms_der.len() > available {
            return Err(PdfError::ContentsTooSmall {
                needed: cms_der.len(),
                available,
            });
        }
        let start = self.contents.start + 1;
        let slot = &mut self.file[start..start + 2 * cms_der.len()];
        // The lengths match by construction, so this cannot fail.
        hex::encode_to_slice(cms_der, slot).map_err(|e| PdfError::Unreadable(e.to_string()))?;
        Ok(self.file)
    }
}

/// Reads what a signing UI and the signing rules need to know, refusing what cannot be signed: too large, too many
/// objects, encrypted, XFA, or not readable.
pub fn inspect(pdf: &[u8], limits: &Limits) -> Result<PdfInfo, PdfError> {
    let doc = Doc::open(pdf, limits)?;
    let analysis = Analysis::of(&doc)?;
    Ok(analysis.info())
}

/// Lays out the new revision with a signature field and a `placeholder_bytes` placeholder. `appearance` makes a
/// visible signature (only for [`Kind::Signature`]); without it the widget is invisible, on page 1.
///
/// A PDF certified with DocMDP level 1 takes no signature ([`PdfError::CertifiedNoChanges`]); a document timestamp
/// is allowed there (PAdES and ISO 32000-2 do not count DSS and document timestamp updates as changes).
pub fn prepare(
    pdf: &[u8],
    kind: Kind,
    appearance: Option<&Appearance>,
    placeholder_bytes: usize,
    limits: &Limits,
) -> Result<Prepared, PdfError> {
    if placeholder_bytes == 0 || placeholder_bytes > MAX_PLACEHOLDER_BYTES {
        return Err(PdfError::InvalidPlaceholder {
            requested: placeholder_bytes,
            max: MAX_PLACEHOLDER_BYTES,
        });
    }
    let modified = match kind {
        Kind::Signature { signing_time } => Some(pdf_date(signing_time)?),
        Kind::DocumentTimestamp => None,
    };
    if appearance.is_some() && kind == Kind::DocumentTimestamp {
        return Err(PdfError::InvalidAppearance(
            "a document timestamp is always invisible".into(),
        ));
    }
    let doc = Doc::open(pdf, limits)?;
    let analysis = Analysis::of(&doc)?;
    if analysis.certification == Some(1) && matches!(kind, Kind::Signature { .. }) {
        return Err(PdfError::CertifiedNoChanges);
    }

    let page_index = match appearance {
        Some(a) if a.page == 0 || a.page > analysis.pages.len() => {
            return Err(PdfError::NoSuchPage {
                page: a.page,
                pages: analysis.pages.len(),
            })
        }
        Some(a) => a.page - 1,
        None => 0,
    };
    let page = analysis.pages.get(page_index).ok_or(PdfError::NoSuchPage {
        page: page_index + 1,
        pages: analysis.pages.len(),
    })?;

    let mut inc = Increment::new(&doc);
    let sig_ref = inc.alloc();
    let widget_ref = inc.alloc();
    let field_name = analysis.new_field_name();

    let mut widget = vec![
        (b"Type".to_vec(), Obj::name("Annot")),
        (b"Subtype".to_vec(), Obj::name("Widget")),
        (b"FT".to_vec(), Obj::name("Sig")),
        (b"T".to_vec(), Obj::Str(field_name.clone().into_bytes())),
        (b"V".to_vec(), Obj::Ref(sig_ref)),
        (b"F".to_vec(), Obj::Int(WIDGET_FLAGS)),
        (b"P".to_vec(), Obj::Ref(page.reference)),
    ];
    match appearance {
        Some(a) => {
            let rect = checked_rect(a.rect, &page.geometry)?;
            let ap_ref = inc.alloc();
            inc.put(ap_ref, visible_appearance(a, rect, page.geometry.rotate));
            set(
                &mut widget,
                b"Rect",
                Obj::Array(rect.iter().map(|v| Obj::Real(fmt_num(*v))).collect()),
            );
            set(&mut widget, b"AP", Obj::Dict(vec![(b"N".to_vec(), Obj::Ref(ap_ref))]));
            if page.geometry.rotate != 0 {
                let rotation = Obj::Dict(vec![(b"R".to_vec(), Obj::Int(i64::from(page.geometry.rotate)))]);
                set(&mut widget, b"MK", rotation);
            }
        }
        // No appearance for a zero-size widget: PDF/A exempts it, and validators' diff analysis counts an
        // appearance as form filling, which a certification with DocMDP 1 forbids for a document timestamp.
        None => set(&mut widget, b"Rect", Obj::Array(vec![Obj::Int(0); 4])),
    }
    inc.put(widget_ref, serialize(&Obj::Dict(widget)));

    add_annotation(&doc, &mut inc, page.reference, widget_ref)?;
    add_field(&doc, &analysis, &mut inc, widget_ref)?;

    let signature = SignatureDict {
        reference: sig_ref,
        modified,
        placeholder_bytes,
        doc_timestamp: kind == Kind::DocumentTimestamp,
    };
    let (file, contents) = inc.finish_signed(signature)?;
    Ok(Prepared {
        file,
        contents,
        field_name,
    })
}

/// Appends a `/DSS` (PAdES B-LT) with the given DER certificates, CRLs and OCSP responses (each written once), by
/// an incremental update; an existing DSS keeps its entries and gets these as well. Signatures already in the file
/// stay valid. Allowed on a PDF certified with DocMDP level 1 too: PAdES does not count a DSS update as a change.
pub fn add_dss(
    pdf: &[u8],
    certs: &[Vec<u8>],
    crls: &[Vec<u8>],
    ocsps: &[Vec<u8>],
    limits: &Limits,
) -> Result<Vec<u8>, PdfError> {
    let doc = Doc::open(pdf, limits)?;
    let analysis = Analysis::of(&doc)?;
    let mut inc = Increment::new(&doc);

    let (dss_ref, mut dss, catalog_changes) = match get(&analysis.catalog, b"DSS") {
        Some(Obj::Ref(r)) => match doc.fetch(*r, 0)? {
            (Obj::Dict(d), None) => (*r, d, false),
            _ => (inc.alloc(), Vec::new(), true),
        },
        Some(Obj::Dict(d)) => (inc.alloc(), d.clone(), true),
        _ => (inc.alloc(), Vec::new(), true),
    };
    set(&mut dss, b"Type", Obj::name("DSS"));
    for (key, items) in [(&b"Certs"[..], certs), (b"CRLs", crls), (b"OCSPs", ocsps)] {
        let mut refs = match get(&dss, key) {
            Some(value) => match doc.deref(value)? {
                Obj::Array(a) => a,
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        let mut seen: Vec<&[u8]> = Vec::new();
        for item in items {
            if seen.contains(&item.as_slice()) {
                continue;
            }
            seen.push(item);
            let r = inc.alloc();
            inc.put(r, stream_object(&[], item));
            refs.push(Obj::Ref(r));
        }
        if !refs.is_empty() {
            set(&mut dss, key, Obj::Array(refs));
        }
    }
    inc.put(dss_ref, serialize(&Obj::Dict(dss)));
    if catalog_changes {
        let mut catalog = analysis.catalog.clone();
        set(&mut catalog, b"DSS", Obj::Ref(dss_ref));
        inc.put(analysis.catalog_ref, serialize(&Obj::Dict(catalog)));
    }
    inc.finish()
}

// ---------------------------------------------------------------------------------------------------------------
// Objects

/// An object number and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Ref {
    num: u32,
    gen: u16,
}

/// A dictionary in the order its keys were read (names without the slash, `#xx` decoded).
type Dict = Vec<(Vec<u8>, Obj)>;

/// A PDF object as read. Reals keep their token, so an object the update rewrites keeps its values exactly.
#[derive(Debug, Clone, PartialEq)]
enum Obj {
    Null,
    Bool(bool),
    Int(i64),
    Real(String),
    Str(Vec<u8>),
    Name(Vec<u8>),
    Array(Vec<Obj>),
    Dict(Dict),
    Ref(Ref),
}

impl Obj {
    fn name(n: &str) -> Obj {
        Obj::Name(n.as_bytes().to_vec())
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Obj::Int(i) => Some(*i as f64),
            Obj::Real(r) => r.parse::<f64>().ok().filter(|v| v.is_finite()),
            _ => None,
        }
    }
}

/// A dictionary entry; a null value counts as absent (ISO 32000 §7.3.9).
fn get<'d>(dict: &'d Dict, key: &[u8]) -> Option<&'d Obj> {
    dict.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .filter(|v| **v != Obj::Null)
}

fn set(dict: &mut Dict, key: &[u8], value: Obj) {
    dict.retain(|(k, _)| k != key);
    dict.push((key.to_vec(), value));
}

fn is_white(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

fn is_delimiter(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

fn is_regular(b: u8) -> bool {
    !is_white(b) && !is_delimiter(b)
}

/// Why reading failed, in words: the file is damaged ([`PdfError::Unreadable`]) or reading it would take more
/// work than the [`Limits`] allow ([`PdfError::TooComplex`]).
#[derive(Debug)]
enum Bad {
    Unreadable(String),
    OverBudget(String),
}

impl From<Bad> for PdfError {
    fn from(b: Bad) -> PdfError {
        match b {
            Bad::Unreadable(why) => PdfError::Unreadable(why),
            Bad::OverBudget(why) => PdfError::TooComplex(why),
        }
    }
}

fn bad<T>(msg: impl Into<String>) -> Result<T, Bad> {
    Err(Bad::Unreadable(msg.into()))
}

/// What one reading ([`Doc`]) has spent of its [`Limits`]. Every walk of the object graph charges it: each object
/// fetched and each tree node queued is a node, each byte lexed or searched is a scanned byte, each byte a filter
/// produces is a decoded byte. Raw stream data is borrowed from the file, never copied, so what a reading copies
/// is what it lexes and decodes. A parse is charged once it is done, so a reading overruns the scan budget by at
/// most one object (itself bounded by the file or a decoded stream).
struct Budget {
    limits: Limits,
    nodes: Cell<usize>,
    scanned: Cell<usize>,
    /// Bytes that may be scanned: the scan factor times what there is to read (the file and the decoded streams).
    scan_allowance: Cell<usize>,
    decoded: Cell<usize>,
}

/// Scanning allowed beyond the scan factor's share, for tiny files.
const SCAN_SLACK: usize = 1024 * 1024;

impl Budget {
    fn new(limits: &Limits, file_len: usize) -> Budget {
        Budget {
            limits: *limits,
            nodes: Cell::new(0),
            scanned: Cell::new(0),
            scan_allowance: Cell::new(file_len.saturating_mul(limits.scan_factor).saturating_add(SCAN_SLACK)),
            decoded: Cell::new(0),
        }
    }

    /// One more object fetched or tree node queued.
    fn node(&self) -> Result<(), Bad> {
        self.nodes.set(self.nodes.get() + 1);
        if self.nodes.get() > self.limits.max_nodes {
            return Err(Bad::OverBudget(format!(
                "it makes the reader visit more than {} objects",
                self.limits.max_nodes
            )));
        }
        Ok(())
    }

    /// A tree node at `depth` (the root is 0).
    fn depth(&self, depth: usize) -> Result<(), Bad> {
        if depth > self.limits.max_depth {
            return Err(Bad::OverBudget(format!(
                "its page or form tree is more than {} levels deep",
                self.limits.max_depth
            )));
        }
        Ok(())
    }

    /// Bytes still allowed to be scanned.
    fn scan_left(&self) -> usize {
        self.scan_allowance.get().saturating_sub(self.scanned.get())
    }

    /// `bytes` more lexed or searched.
    fn scan(&self, bytes: usize) -> Result<(), Bad> {
        self.scanned.set(self.scanned.get().saturating_add(bytes));
        if self.scanned.get() > self.scan_allowance.get() {
            return Err(self.scan_exhausted());
        }
        Ok(())
    }

    fn scan_exhausted(&self) -> Bad {
        Bad::OverBudget(format!(
            "reading it means scanning more than {} times its size",
            self.limits.scan_factor
        ))
    }

    /// The most the next stream may decode to: its own limit, or what is left of the reading's.
    fn decode_cap(&self) -> usize {
        self.limits
            .max_decoded_stream
            .min(self.limits.max_decoded_total.saturating_sub(self.decoded.get()))
    }

    /// `bytes` decoded: they count against the decoding limit and may themselves be scanned.
    fn decoded(&self, bytes: usize) -> Result<(), Bad> {
        self.decoded.set(self.decoded.get().saturating_add(bytes));
        if self.decoded.get() > self.limits.max_decoded_total {
            return Err(Bad::OverBudget(format!(
                "its compressed streams decode to more than {} bytes",
                self.limits.max_decoded_total
            )));
        }
        self.scan_allowance.set(
            self.scan_allowance
                .get()
                .saturating_add(bytes.saturating_mul(self.limits.scan_factor)),
        );
        Ok(())
    }
}

/// A tokenizer and object parser over a byte slice.
struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Lexer { data, pos }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.data.get(self.pos + ahead).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    fn skip_space(&mut self) {
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
    fn keyword(&mut self, kw: &[u8]) -> bool {
        self.skip_space();
        if self.rest().starts_with(kw) && self.peek_at(kw.len()).is_none_or(|b| !is_regular(b)) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// An unsigned integer token (at most 19 digits), or nothing consumed.
    fn uint(&mut self) -> Option<u64> {
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

    fn object(&mut self, depth: usize) -> Result<Obj, Bad> {
        if depth > MAX_NESTING {
            return bad(format!(
                "arrays or dictionaries are nested more than {MAX_NESTING} deep"
            ));
        }
        self.skip_space();
        let Some(b) = self.peek() else {
            return bad("it ends in the middle of an object");
        };
        match b {
            b'/' => {
                self.pos += 1;
                Ok(Obj::Name(self.name_body()))
            }
            b'(' => self.literal_string(),
            b'<' if self.peek_at(1) == Some(b'<') => {
                self.pos += 2;
                let mut dict = Dict::new();
                loop {
                    self.skip_space();
                    match self.peek() {
                        None => return bad("a dictionary is not closed"),
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
                        Some(_) => return bad("a dictionary key is not a name"),
                    }
                }
            }
            b'<' => self.hex_string(),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    match self.peek() {
                        None => return bad("an array is not closed"),
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Obj::Array(items));
                        }
                        Some(_) => items.push(self.object(depth + 1)?),
                    }
                }
            }
            b'+' | b'-' | b'.' | b'0'..=b'9' => self.number_or_reference(),
            _ if is_regular(b) => {
                let start = self.pos;
                while self.peek().is_some_and(is_regular) {
                    self.pos += 1;
                }
                match &self.data[start..self.pos] {
                    b"true" => Ok(Obj::Bool(true)),
                    b"false" => Ok(Obj::Bool(false)),
                    b"null" => Ok(Obj::Null),
                    other => bad(format!(
                        "unexpected token {:?}",
                        String::from_utf8_lossy(other.get(..20).unwrap_or(other))
                    )),
                }
            }
            _ => bad(format!("unexpected character {:?}", char::from(b))),
        }
    }

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

    fn literal_string(&mut self) -> Result<Obj, Bad> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut depth = 0usize;
        loop {
            let Some(b) = self.peek() else {
                return bad("a string is not closed");
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
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return bad("a string is not closed");
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
                }
                other => out.push(other),
            }
        }
    }

    fn hex_string(&mut self) -> Result<Obj, Bad> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        loop {
            let Some(b) = self.peek() else {
                return bad("a hexadecimal string is not closed");
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
                _ => return bad("a hexadecimal string holds a character that is not a hex digit"),
            };
            match high.take() {
                Some(h) => out.push(h << 4 | nibble),
                None => high = Some(nibble),
            }
        }
    }

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
            _ => bad(format!("{token:?} is not a number")),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The document: cross-reference chain and object access

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Free,
    InFile { offset: usize },
    InStream { container: u32, index: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XrefKind {
    Table,
    Stream,
}

/// A decoded object stream: its content (borrowed from the file when it has no filter) and where each object starts.
struct ObjectStream<'a> {
    content: Cow<'a, [u8]>,
    /// (object number, absolute offset in `content`), in the stream's order.
    offsets: Vec<(u32, usize)>,
}

/// A PDF being read: its bytes, its merged cross-reference data and newest trailer.
struct Doc<'a> {
    data: &'a [u8],
    entries: HashMap<u32, Entry>,
    trailer: Dict,
    /// Where the last `startxref` points: the `/Prev` of the next revision.
    startxref: usize,
    last_kind: XrefKind,
    /// The first object number free for new objects.
    next_num: u32,
    limits: Limits,
    object_streams: RefCell<HashMap<u32, Rc<ObjectStream<'a>>>>,
    /// Object streams being decoded: one whose `/Length` is inside itself (or another in the loop) is refused.
    loading_streams: RefCell<HashSet<u32>>,
    /// The work this reading may still do.
    budget: Budget,
}

impl<'a> Doc<'a> {
    fn open(data: &'a [u8], limits: &Limits) -> Result<Doc<'a>, PdfError> {
        if data.len() > limits.max_bytes {
            return Err(PdfError::TooLarge {
                size: data.len(),
                max: limits.max_bytes,
            });
        }
        if !data.starts_with(b"%PDF-") {
            return Err(Bad::Unreadable("it does not start with %PDF-".into()).into());
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

    fn read_xref_chain(&mut self) -> Result<(), PdfError> {
        let mut offset = self.startxref;
        let mut visited = HashSet::new();
        let mut declared_size: u64 = 0;
        let mut first = true;
        loop {
            if !visited.insert(offset) {
                return Err(
                    Bad::Unreadable("its cross-reference sections refer to each other in a loop".into()).into(),
                );
            }
            if visited.len() > self.limits.max_xref_sections {
                return Err(
                    Bad::OverBudget(format!("it has more than {} revisions", self.limits.max_xref_sections)).into(),
                );
            }
            let (kind, trailer) = self.read_xref_section(offset)?;
            if first {
                self.last_kind = kind;
                first = false;
            }
            if get(&trailer, b"Encrypt").is_some() {
                return Err(PdfError::Encrypted);
            }
            if let Some(size) = get(&trailer, b"Size").and_then(|s| match s {
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
            for (key, value) in &trailer {
                if get(&self.trailer, key).is_none() {
                    set(&mut self.trailer, key, value.clone());
                }
            }
            match get(&trailer, b"Prev") {
                Some(Obj::Int(prev)) => {
                    offset = usize::try_from(*prev)
                        .ok()
                        .filter(|p| *p < self.data.len())
                        .ok_or_else(|| Bad::Unreadable("a cross-reference section points outside the file".into()))?;
                }
                _ => break,
            }
        }
        let highest = self.entries.keys().max().map_or(0, |n| u64::from(*n) + 1);
        let next = declared_size.max(highest);
        self.next_num = u32::try_from(next)
            .ok()
            .filter(|n| *n < u32::MAX - 1000)
            .ok_or_else(|| Bad::Unreadable("its object numbers are out of range".into()))?;
        Ok(())
    }

    /// Reads the section at `offset` into `entries` (older sections never override newer ones); returns its kind
    /// and trailer.
    fn read_xref_section(&mut self, offset: usize) -> Result<(XrefKind, Dict), PdfError> {
        let mut lx = Lexer::new(self.data, offset);
        if lx.keyword(b"xref") {
            let mut section = Vec::new();
            let trailer = loop {
                if lx.keyword(b"trailer") {
                    match lx.object(0)? {
                        Obj::Dict(d) => break d,
                        _ => return Err(Bad::Unreadable("the trailer is not a dictionary".into()).into()),
                    }
                }
                let (Some(start), Some(count)) = (lx.uint(), lx.uint()) else {
                    return Err(Bad::Unreadable("its cross-reference table is damaged".into()).into());
                };
                for i in 0..count {
                    let (Some(off), Some(_gen)) = (lx.uint(), lx.uint()) else {
                        return Err(Bad::Unreadable("its cross-reference table is damaged".into()).into());
                    };
                    lx.skip_space();
                    let in_use = match lx.peek() {
                        Some(b'n') => true,
                        Some(b'f') => false,
                        _ => return Err(Bad::Unreadable("its cross-reference table is damaged".into()).into()),
                    };
                    lx.pos += 1;
                    let num = start
                        .checked_add(i)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| Bad::Unreadable("its cross-reference table is damaged".into()))?;
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
            // A hybrid file: the stream lists the objects in object streams, which the table leaves out or marks
            // free for older readers; it comes first so it wins over those placeholders.
            if let Some(Obj::Int(stm)) = get(&trailer, b"XRefStm") {
                let stm = usize::try_from(*stm)
                    .ok()
                    .filter(|s| *s < self.data.len())
                    .ok_or_else(|| Bad::Unreadable("a cross-reference stream is outside the file".into()))?;
                self.read_xref_stream(stm)?;
            }
            self.budget.scan(lx.pos.saturating_sub(offset))?;
            for (num, entry) in section {
                self.add_entry(num, entry)?;
            }
            Ok((XrefKind::Table, trailer))
        } else {
            let trailer = self.read_xref_stream(offset)?;
            Ok((XrefKind::Stream, trailer))
        }
    }

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

    fn read_xref_stream(&mut self, offset: usize) -> Result<Dict, PdfError> {
        let (_, obj, stream_start) = self.parse_indirect_at(offset)?;
        let (Obj::Dict(dict), Some(start)) = (obj, stream_start) else {
            return Err(Bad::Unreadable("startxref does not point at a cross-reference table or stream".into()).into());
        };
        let raw = self.stream_data(&dict, start, 0)?;
        let content = self.decode(&dict, raw)?;
        let content: &[u8] = &content;
        let widths: Vec<usize> = match get(&dict, b"W") {
            Some(Obj::Array(w)) if w.len() == 3 => w
                .iter()
                .map(|x| match x {
                    Obj::Int(i) => usize::try_from(*i).ok().filter(|v| *v <= 8),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| Bad::Unreadable("its cross-reference stream has a bad /W".into()))?,
            _ => return Err(Bad::Unreadable("its cross-reference stream has no /W".into()).into()),
        };
        let entry_len: usize = widths.iter().sum();
        if entry_len == 0 {
            return Err(Bad::Unreadable("its cross-reference stream has a bad /W".into()).into());
        }
        let size = match get(&dict, b"Size") {
            Some(Obj::Int(s)) => u64::try_from(*s).map_err(|_| Bad::Unreadable("bad /Size".into()))?,
            _ => return Err(Bad::Unreadable("its cross-reference stream has no /Size".into()).into()),
        };
        let index: Vec<u64> = match get(&dict, b"Index") {
            Some(Obj::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Obj::Int(i) => u64::try_from(*i).ok(),
                    _ => None,
                })
                .collect::<Option<_>>()
                .ok_or_else(|| Bad::Unreadable("its cross-reference stream has a bad /Index".into()))?,
            _ => vec![0, size],
        };
        let total = index
            .chunks(2)
            .fold(0u64, |acc, c| acc.saturating_add(c.get(1).copied().unwrap_or(0)));
        if total > (content.len() / entry_len) as u64 {
            return Err(Bad::Unreadable("its cross-reference stream is shorter than its /Index says".into()).into());
        }
        let field = |bytes: &[u8]| bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
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
                    .ok_or_else(|| Bad::Unreadable("its cross-reference stream is damaged".into()))?;
                let entry = match kind {
                    0 => Entry::Free,
                    1 => match usize::try_from(field(f2)) {
                        Ok(offset) if offset > 0 => Entry::InFile { offset },
                        _ => Entry::Free,
                    },
                    2 => Entry::InStream {
                        container: u32::try_from(field(f2))
                            .map_err(|_| Bad::Unreadable("its cross-reference stream is damaged".into()))?,
                        index: usize::try_from(field(f3)).unwrap_or(usize::MAX),
                    },
                    // Unknown types are references to the null object.
                    _ => Entry::Free,
                };
                self.add_entry(num, entry)?;
            }
        }
        Ok(dict)
    }

    /// `n g obj <object> [stream]` at `offset` (white space before it tolerated): the reference, the object, and
    /// where the stream data starts if it is a stream.
    fn parse_indirect_at(&self, offset: usize) -> Result<(Ref, Obj, Option<usize>), Bad> {
        let mut lx = Lexer::new(self.data, offset);
        let (Some(num), Some(gen)) = (lx.uint(), lx.uint()) else {
            return bad("its cross-reference data points where there is no object");
        };
        if !lx.keyword(b"obj") {
            return bad("its cross-reference data points where there is no object");
        }
        let reference = Ref {
            num: u32::try_from(num).map_err(|_| Bad::Unreadable("an object number is out of range".into()))?,
            gen: u16::try_from(gen).map_err(|_| Bad::Unreadable("a generation number is out of range".into()))?,
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
    fn stream_data(&self, dict: &Dict, start: usize, depth: usize) -> Result<&'a [u8], Bad> {
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
            return bad("a stream has no end");
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

    /// Stream data through its filters, within the decoding limits: borrowed when there is no filter. Only
    /// FlateDecode (with or without a PNG predictor) is decoded, the filter of cross-reference and object streams;
    /// damaged compressed data is refused, never read as empty.
    fn decode(&self, dict: &Dict, raw: &'a [u8]) -> Result<Cow<'a, [u8]>, Bad> {
        let filters: Vec<Obj> = match get(dict, b"Filter") {
            None => return Ok(Cow::Borrowed(raw)),
            Some(Obj::Array(a)) => a.clone(),
            Some(other) => vec![other.clone()],
        };
        if filters.len() > MAX_FILTERS {
            return bad(format!("a stream has more than {MAX_FILTERS} filters"));
        }
        let params: Vec<Option<Dict>> = match get(dict, b"DecodeParms") {
            Some(Obj::Array(a)) => a
                .iter()
                .map(|p| match p {
                    Obj::Dict(d) => Some(d.clone()),
                    _ => None,
                })
                .collect(),
            Some(Obj::Dict(d)) => vec![Some(d.clone())],
            _ => Vec::new(),
        };
        let mut data = Cow::Borrowed(raw);
        for (i, filter) in filters.iter().enumerate() {
            match filter {
                Obj::Name(n) if n == b"FlateDecode" || n == b"Fl" => {
                    let cap = self.budget.decode_cap();
                    let inflated = inflate(&data, cap)?;
                    self.budget.decoded(inflated.len())?;
                    let predicted = match params.get(i).and_then(Option::as_ref) {
                        Some(p) => unpredict(inflated, p)?,
                        None => inflated,
                    };
                    data = Cow::Owned(predicted);
                }
                Obj::Name(n) => {
                    return bad(format!(
                        "a cross-reference or object stream uses the filter {}, which is not supported",
                        String::from_utf8_lossy(n.get(..32).unwrap_or(n))
                    ))
                }
                _ => return bad("a stream's /Filter is not a name"),
            }
        }
        Ok(data)
    }

    /// The object `r` and, if it is a stream in the file, where its data starts.
    fn fetch(&self, r: Ref, depth: usize) -> Result<(Obj, Option<usize>), Bad> {
        if depth > MAX_REF_CHAIN {
            return bad("its objects refer to each other in a loop");
        }
        self.budget.node()?;
        match self.entries.get(&r.num) {
            None | Some(Entry::Free) => Ok((Obj::Null, None)),
            Some(Entry::InFile { offset }) => {
                let (found, obj, stream) = self.parse_indirect_at(*offset)?;
                if found.num != r.num {
                    return bad(format!(
                        "its cross-reference data is wrong: object {} is not where it says",
                        r.num
                    ));
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

    fn resolve(&self, r: Ref, depth: usize) -> Result<Obj, Bad> {
        let mut obj = self.fetch(r, depth)?.0;
        for hop in 0..MAX_REF_CHAIN {
            match obj {
                Obj::Ref(next) => obj = self.fetch(next, depth + hop + 1)?.0,
                other => return Ok(other),
            }
        }
        bad("its objects refer to each other in a loop")
    }

    /// A direct value as is, a reference resolved.
    fn deref(&self, value: &Obj) -> Result<Obj, Bad> {
        match value {
            Obj::Ref(r) => self.resolve(*r, 0),
            other => Ok(other.clone()),
        }
    }

    fn object_stream(&self, container: u32, depth: usize) -> Result<Rc<ObjectStream<'a>>, Bad> {
        if let Some(s) = self.object_streams.borrow().get(&container) {
            return Ok(Rc::clone(s));
        }
        if !self.loading_streams.borrow_mut().insert(container) {
            return bad("an object stream needs itself to be read");
        }
        let stream = self.load_object_stream(container, depth);
        self.loading_streams.borrow_mut().remove(&container);
        let stream = Rc::new(stream?);
        self.object_streams.borrow_mut().insert(container, Rc::clone(&stream));
        Ok(stream)
    }

    fn load_object_stream(&self, container: u32, depth: usize) -> Result<ObjectStream<'a>, Bad> {
        let Some(Entry::InFile { offset }) = self.entries.get(&container) else {
            return bad("an object stream is missing");
        };
        let (found, obj, start) = self.parse_indirect_at(*offset)?;
        let (Obj::Dict(dict), Some(start), true) = (obj, start, found.num == container) else {
            return bad("an object stream is missing");
        };
        let raw = self.stream_data(&dict, start, depth)?;
        let content = self.decode(&dict, raw)?;
        let (Some(Obj::Int(n)), Some(Obj::Int(first))) = (get(&dict, b"N"), get(&dict, b"First")) else {
            return bad("an object stream has no /N or /First");
        };
        let first = usize::try_from(*first)
            .ok()
            .filter(|f| *f <= content.len())
            .ok_or_else(|| Bad::Unreadable("an object stream is damaged".into()))?;
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn find_startxref(data: &[u8]) -> Result<usize, Bad> {
    let tail_start = data.len().saturating_sub(STARTXREF_WINDOW);
    let tail = &data[tail_start..];
    let Some(at) = rfind(tail, b"startxref") else {
        return bad("it has no startxref: the file is truncated or damaged");
    };
    let mut lx = Lexer::new(data, tail_start + at + b"startxref".len());
    lx.uint()
        .and_then(|o| usize::try_from(o).ok())
        .filter(|o| *o > 0 && *o < data.len())
        .ok_or_else(|| Bad::Unreadable("its startxref points outside the file".into()))
}

/// zlib-inflates `data` to at most `cap` bytes. Damaged data (a bad header, a bad block, a wrong checksum, an
/// early end) is refused: a reader that took it as empty would see a different file than other readers.
fn inflate(data: &[u8], cap: usize) -> Result<Vec<u8>, Bad> {
    if data.is_empty() {
        return bad("a compressed stream is empty");
    }
    let mut out = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Bad::Unreadable(format!("a compressed stream is damaged: {e}")))?;
    if out.len() > cap {
        return Err(Bad::OverBudget(format!(
            "a compressed stream decodes to more than {cap} bytes"
        )));
    }
    Ok(out)
}

/// Undoes the predictor `/DecodeParms` names: none (1) or PNG (10 to 15, a filter type byte per row, as
/// cross-reference streams use). TIFF (2) is refused: no producer uses it for the streams this reader decodes.
fn unpredict(data: Vec<u8>, params: &Dict) -> Result<Vec<u8>, Bad> {
    let int = |key: &[u8], default: i64| match get(params, key) {
        Some(Obj::Int(i)) => *i,
        _ => default,
    };
    let predictor = int(b"Predictor", 1);
    if predictor == 1 {
        return Ok(data);
    }
    if !(10..=15).contains(&predictor) {
        return bad(format!("the stream predictor {predictor} is not supported"));
    }
    let in_range = |v: i64, max: i64| (1..=max).contains(&v).then_some(v as usize);
    let (Some(colors), Some(bits), Some(columns)) = (
        in_range(int(b"Colors", 1), 32),
        in_range(int(b"BitsPerComponent", 8), 16),
        in_range(int(b"Columns", 1), 1 << 24),
    ) else {
        return bad("a stream's predictor parameters are out of range");
    };
    let bpp = (colors * bits).div_ceil(8);
    let row = (colors * bits * columns).div_ceil(8);
    if !data.len().is_multiple_of(row + 1) {
        return bad("a stream's predicted rows are incomplete");
    }
    let mut out = Vec::with_capacity(data.len() / (row + 1) * row);
    let mut previous = vec![0u8; row];
    for chunk in data.chunks_exact(row + 1) {
        let (kind, input) = (chunk[0], &chunk[1..]);
        let start = out.len();
        for (i, &x) in input.iter().enumerate() {
            let left = if i >= bpp { out[start + i - bpp] } else { 0 };
            let up = previous[i];
            let up_left = if i >= bpp { previous[i - bpp] } else { 0 };
            let predicted = match kind {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                _ => return bad(format!("a stream has the unknown PNG row filter {kind}")),
            };
            out.push(x.wrapping_add(predicted));
        }
        previous.copy_from_slice(&out[start..]);
    }
    Ok(out)
}

fn paeth(left: u8, up: u8, up_left: u8) -> u8 {
    let (a, b, c) = (i16::from(left), i16::from(up), i16::from(up_left));
    let p = a + b - c;
    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
    if pa <= pb && pa <= pc {
        left
    } else if pb <= pc {
        up
    } else {
        up_left
    }
}

// ---------------------------------------------------------------------------------------------------------------
// What the signing rules need from a document

struct Page {
    reference: Ref,
    geometry: PageGeometry,
}

/// Where the AcroForm dictionary lives.
enum AcroForm {
    None,
    /// Inside the catalog.
    Direct(Dict),
    /// An object of its own.
    Indirect(Ref, Dict),
}

struct Analysis {
    catalog_ref: Ref,
    catalog: Dict,
    pages: Vec<Page>,
    acroform: AcroForm,
    signatures: usize,
    field_names: HashSet<Vec<u8>>,
    certification: Option<u8>,
}

impl Analysis {
    fn of(doc: &Doc) -> Result<Analysis, PdfError> {
        let Some(Obj::Ref(catalog_ref)) = get(&doc.trailer, b"Root") else {
            return Err(Bad::Unreadable("its trailer names no document catalog".into()).into());
        };
        let catalog_ref = *catalog_ref;
        let catalog = match doc.fetch(catalog_ref, 0)? {
            (Obj::Dict(d), None) => d,
            _ => return Err(Bad::Unreadable("its document catalog is missing".into()).into()),
        };
        let acroform = match get(&catalog, b"AcroForm") {
            Some(Obj::Ref(r)) => match doc.fetch(*r, 0)? {
                (Obj::Dict(d), None) => AcroForm::Indirect(*r, d),
                _ => AcroForm::None,
            },
            Some(Obj::Dict(d)) => AcroForm::Direct(d.clone()),
            _ => AcroForm::None,
        };
        let form = match &acroform {
            AcroForm::None => None,
            AcroForm::Direct(d) | AcroForm::Indirect(_, d) => Some(d),
        };
        if form.is_some_and(|f| get(f, b"XFA").is_some()) {
            return Err(PdfError::Xfa);
        }
        let certification = certification(doc, &catalog)?;
        let pages = pages(doc, &catalog)?;
        let (signatures, field_names) = match form {
            Some(f) => fields(doc, f)?,
            None => (0, HashSet::new()),
        };
        Ok(Analysis {
            catalog_ref,
            catalog,
            pages,
            acroform,
            signatures,
            field_names,
            certification,
        })
    }

    fn info(&self) -> PdfInfo {
        PdfInfo {
            pages: self.pages.iter().map(|p| p.geometry).collect(),
            signatures: self.signatures,
            certification: self.certification,
            has_dss: get(&self.catalog, b"DSS").is_some(),
        }
    }

    /// `SignatureN` with the smallest N no top-level field uses.
    fn new_field_name(&self) -> String {
        (1..)
            .map(|n| format!("Signature{n}"))
            .find(|name| !self.field_names.contains(name.as_bytes()))
            .unwrap_or_else(|| "Signature".into())
    }
}

/// The DocMDP `P` of the certification signature the catalog's `/Perms` names (2 when it does not say).
fn certification(doc: &Doc, catalog: &Dict) -> Result<Option<u8>, Bad> {
    let Some(perms) = get(catalog, b"Perms") else {
        return Ok(None);
    };
    let Obj::Dict(perms) = doc.deref(perms)? else {
        return Ok(None);
    };
    let Some(docmdp) = get(&perms, b"DocMDP") else {
        return Ok(None);
    };
    let Obj::Dict(sig) = doc.deref(docmdp)? else {
        return Ok(None);
    };
    let references = match get(&sig, b"Reference") {
        Some(r) => match doc.deref(r)? {
            Obj::Array(a) => a,
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    for reference in references.iter().take(64) {
        let Obj::Dict(reference) = doc.deref(reference)? else {
            continue;
        };
        if get(&reference, b"TransformMethod") != Some(&Obj::name("DocMDP")) {
            continue;
        }
        let params = match get(&reference, b"TransformParams") {
            Some(p) => doc.deref(p)?,
            None => Obj::Null,
        };
        let p = match &params {
            Obj::Dict(d) => match get(d, b"P") {
                Some(Obj::Int(p @ 1..=3)) => *p as u8,
                _ => 2,
            },
            _ => 2,
        };
        return Ok(Some(p));
    }
    Ok(Some(2))
}

/// Walks the page tree without trusting `/Count` and without recursion; refuses loops and a tree whose root
/// `/Count` disagrees with the pages it has.
fn pages(doc: &Doc, catalog: &Dict) -> Result<Vec<Page>, Bad> {
    let Some(Obj::Ref(root)) = get(catalog, b"Pages") else {
        return bad("its catalog has no page tree");
    };
    struct Inherited {
        media_box: Option<[f64; 4]>,
        rotate: Option<i64>,
    }
    let mut out = Vec::new();
    let mut visited = HashSet::new();
    let mut stack = vec![(
        *root,
        Inherited {
            media_box: None,
            rotate: None,
        },
        0usize,
    )];
    let mut claimed: Option<i64> = None;
    while let Some((r, inherited, depth)) = stack.pop() {
        doc.budget.node()?;
        doc.budget.depth(depth)?;
        if !visited.insert(r.num) {
            return bad("its page tree refers back to itself");
        }
        if visited.len() > doc.limits.max_objects {
            return bad("its page tree is too large");
        }
        let Obj::Dict(node) = doc.fetch(r, 0)?.0 else {
            return bad("its page tree holds something that is not a page");
        };
        let media_box = get(&node, b"MediaBox").and_then(rect_of).or(inherited.media_box);
        let rotate = match get(&node, b"Rotate") {
            Some(Obj::Int(i)) => Some(*i),
            _ => inherited.rotate,
        };
        let kids = match get(&node, b"Kids") {
            Some(k) if get(&node, b"Type") != Some(&Obj::name("Page")) => match doc.deref(k)? {
                Obj::Array(a) => Some(a),
                _ => return bad("its page tree has a damaged /Kids"),
            },
            _ => None,
        };
        match kids {
            Some(kids) => {
                if depth == 0 {
                    claimed = match get(&node, b"Count") {
                        Some(Obj::Int(c)) => Some(*c),
                        _ => None,
                    };
                }
                for kid in kids.iter().rev() {
                    let Obj::Ref(kid) = kid else {
                        return bad("its page tree has a page that is not an indirect object");
                    };
                    stack.push((*kid, Inherited { media_box, rotate }, depth + 1));
                }
            }
            None => out.push(Page {
                reference: r,
                geometry: PageGeometry {
                    media_box: media_box.unwrap_or([0.0, 0.0, 612.0, 792.0]),
                    rotate: match rotate.unwrap_or(0).rem_euclid(360) {
                        r @ (90 | 180 | 270) => r as u16,
                        _ => 0,
                    },
                },
            }),
        }
    }
    if out.is_empty() {
        return bad("it has no pages");
    }
    if let Some(c) = claimed {
        if c != out.len() as i64 {
            return bad(format!("its page tree says it has {c} pages but holds {}", out.len()));
        }
    }
    Ok(out)
}

/// Counts the signed signature fields and collects the top-level field names.
fn fields(doc: &Doc, form: &Dict) -> Result<(usize, HashSet<Vec<u8>>), Bad> {
    let roots = match get(form, b"Fields") {
        Some(f) => match doc.deref(f)? {
            Obj::Array(a) => a,
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    let mut names = HashSet::new();
    let mut signatures = 0;
    let mut walk = FieldWalk::default();
    let mut stack: Vec<(Obj, bool, Option<bool>, usize)> =
        roots.into_iter().rev().map(|f| (f, true, None, 0)).collect();
    while let Some((field, top, inherited_ft, depth)) = stack.pop() {
        if !walk.enter(doc, &field, depth)? {
            continue;
        }
        let Obj::Dict(node) = doc.deref(&field)? else {
            continue;
        };
        if top {
            if let Some(Obj::Str(t)) = get(&node, b"T") {
                names.insert(t.clone());
            }
        }
        let ft = match get(&node, b"FT") {
            // Kept as "is a signature field": a long type name is not copied to every kid.
            Some(Obj::Name(n)) => Some(n == b"Sig"),
            _ => inherited_ft,
        };
        if ft == Some(true) && get(&node, b"V").is_some() {
            signatures += 1;
        }
        for kid in walk.kids(doc, &node)?.into_iter().rev() {
            stack.push((kid, false, ft, depth + 1));
        }
    }
    Ok((signatures, names))
}

/// What a walk of a form field tree has seen. A field tree is a tree: an object met twice (a field, or a `/Kids`
/// array shared by reference, e.g. by direct kid dictionaries) is walked once, so a few shared arrays cannot fan
/// out exponentially; every node, direct or not, is charged to the reading's budget with its depth.
#[derive(Default)]
struct FieldWalk {
    fields: HashSet<u32>,
    kids_arrays: HashSet<u32>,
}

impl FieldWalk {
    /// Whether to visit `field` at `depth`: false when it was visited already.
    fn enter(&mut self, doc: &Doc, field: &Obj, depth: usize) -> Result<bool, Bad> {
        doc.budget.node()?;
        doc.budget.depth(depth)?;
        if let Obj::Ref(r) = field {
            if !self.fields.insert(r.num) {
                return Ok(false);
            }
            if self.fields.len() > doc.limits.max_objects {
                return bad("its form has too many fields");
            }
        }
        Ok(true)
    }

    /// The `/Kids` of `node`, empty when it has none or they were walked already.
    fn kids(&mut self, doc: &Doc, node: &Dict) -> Result<Vec<Obj>, Bad> {
        let kids = match get(node, b"Kids") {
            Some(Obj::Ref(r)) if !self.kids_arrays.insert(r.num) => return Ok(Vec::new()),
            Some(kids) => doc.deref(kids)?,
            None => return Ok(Vec::new()),
        };
        Ok(match kids {
            Obj::Array(a) => a,
            _ => Vec::new(),
        })
    }
}

fn rect_of(obj: &Obj) -> Option<[f64; 4]> {
    let Obj::Array(a) = obj else { return None };
    let v: Vec<f64> = a.iter().map(Obj::as_f64).collect::<Option<_>>()?;
    let [x1, y1, x2, y2] = <[f64; 4]>::try_from(v).ok()?;
    Some([x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)])
}

// ---------------------------------------------------------------------------------------------------------------
// The incremental update

/// The signature dictionary with its placeholders.
struct SignatureDict {
    reference: Ref,
    /// `/M`, as a PDF date string.
    modified: Option<String>,
    placeholder_bytes: usize,
    doc_timestamp: bool,
}

/// The objects of the new revision, serialised, and how to append them.
struct Increment<'d, 'a> {
    doc: &'d Doc<'a>,
    objects: Vec<(Ref, Vec<u8>)>,
    next_num: u32,
}

impl<'d, 'a> Increment<'d, 'a> {
    fn new(doc: &'d Doc<'a>) -> Self {
        Increment {
            doc,
            objects: Vec::new(),
            next_num: doc.next_num,
        }
    }

    fn alloc(&mut self) -> Ref {
        let r = Ref {
            num: self.next_num,
            gen: 0,
        };
        self.next_num += 1;
        r
    }

    /// Adds (or replaces) an object with its serialised body.
    fn put(&mut self, r: Ref, body: Vec<u8>) {
        self.objects.retain(|(o, _)| *o != r);
        self.objects.push((r, body));
    }

    /// The original followed by the new revision.
    fn finish(self) -> Result<Vec<u8>, PdfError> {
        let data = self.doc.data;
        let layout = self.layout(None, 0)?;
        let mut out = Vec::with_capacity(data.len() + layout.separator.len() + layout.bytes.len());
        out.extend_from_slice(data);
        out.extend_from_slice(layout.separator);
        out.extend_from_slice(&layout.bytes);
        Ok(out)
    }

    /// As [`Increment::finish`], with the signature dictionary first and its `/ByteRange` patched; returns the file
    /// and where its `/Contents` string is.
    fn finish_signed(self, signature: SignatureDict) -> Result<(Vec<u8>, std::ops::Range<usize>), PdfError> {
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
                    .ok_or_else(|| Bad::Unreadable("no signature laid out".into()))?;
                break (layout, (contents.start + base)..(contents.end + base), at);
            }
            digits += 1;
        };
        let mut out = Vec::with_capacity(data.len() + layout.separator.len() + layout.bytes.len());
        out.extend_from_slice(data);
        out.extend_from_slice(layout.separator);
        out.extend_from_slice(&layout.bytes);
        let total = out.len();
        let base = data.len() + layout.separator.len();
        let fields = byte_range_fields(contents.start, contents.end, total, digits);
        let at = base + byte_range_at;
        out[at..at + fields.len()].copy_from_slice(fields.as_bytes());
        Ok((out, contents))
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

        let mut trailer = Dict::new();
        for key in [&b"Root"[..], b"Info", b"ID"] {
            if let Some(v) = get(&self.doc.trailer, key) {
                trailer.push((key.to_vec(), v.clone()));
            }
        }
        trailer.push((b"Prev".to_vec(), Obj::Int(self.doc.startxref as i64)));
        let xref_at = base + bytes.len();
        match self.doc.last_kind {
            XrefKind::Table => {
                offsets.sort_by_key(|(r, _)| r.num);
                bytes.extend_from_slice(b"xref\n");
                for run in runs(&offsets) {
                    bytes.extend_from_slice(format!("{} {}\n", run[0].0.num, run.len()).as_bytes());
                    for (r, offset) in run {
                        bytes.extend_from_slice(format!("{offset:010} {:05} n\r\n", r.gen).as_bytes());
                    }
                }
                let mut dict = vec![(b"Size".to_vec(), Obj::Int(i64::from(self.next_num)))];
                dict.extend(trailer);
                bytes.extend_from_slice(b"trailer\n");
                bytes.extend_from_slice(&serialize(&Obj::Dict(dict)));
                bytes.extend_from_slice(b"\n");
            }
            XrefKind::Stream => {
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
                dict.extend(trailer);
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
        bytes.extend_from_slice(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
        Ok(Layout {
            separator,
            bytes,
            signature: sig_positions,
        })
    }
}

struct Layout {
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

/// Serialises an object (strings of printable ASCII as literals, others in hex; names with `#xx` escapes).
fn serialize(obj: &Obj) -> Vec<u8> {
    let mut out = Vec::new();
    write_obj(&mut out, obj);
    out
}

fn write_obj(out: &mut Vec<u8>, obj: &Obj) {
    match obj {
        Obj::Null => out.extend_from_slice(b"null"),
        Obj::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Obj::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Obj::Real(r) => out.extend_from_slice(r.as_bytes()),
        Obj::Str(s) if s.iter().all(|b| (0x20..0x7f).contains(b)) => {
            out.push(b'(');
            for b in s {
                if matches!(b, b'(' | b')' | b'\\') {
                    out.push(b'\\');
                }
                out.push(*b);
            }
            out.push(b')');
        }
        Obj::Str(s) => {
            out.push(b'<');
            out.extend_from_slice(hex::encode(s).as_bytes());
            out.push(b'>');
        }
        Obj::Name(n) => {
            out.push(b'/');
            for b in n {
                if is_regular(*b) && *b != b'#' && (0x21..0x7f).contains(b) {
                    out.push(*b);
                } else {
                    out.extend_from_slice(format!("#{b:02X}").as_bytes());
                }
            }
        }
        Obj::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_obj(out, item);
            }
            out.push(b']');
        }
        Obj::Dict(dict) => {
            out.extend_from_slice(b"<<");
            for (k, v) in dict {
                out.push(b' ');
                write_obj(out, &Obj::Name(k.clone()));
                out.push(b' ');
                write_obj(out, v);
            }
            out.extend_from_slice(b" >>");
        }
        Obj::Ref(r) => out.extend_from_slice(format!("{} {} R", r.num, r.gen).as_bytes()),
    }
}

/// A stream object's body: `dict` with `/Length`, then the data, uncompressed.
fn stream_object(dict: &[(Vec<u8>, Obj)], data: &[u8]) -> Vec<u8> {
    let mut dict = dict.to_vec();
    set(&mut dict, b"Length", Obj::Int(data.len() as i64));
    let mut out = serialize(&Obj::Dict(dict));
    out.extend_from_slice(b"\nstream\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

/// Puts the widget in the page's `/Annots`: rewrites the annotation array if it is an object of its own, else the
/// page.
fn add_annotation(doc: &Doc, inc: &mut Increment, page_ref: Ref, widget: Ref) -> Result<(), PdfError> {
    let mut page = match doc.fetch(page_ref, 0)? {
        (Obj::Dict(d), None) => d,
        _ => return Err(Bad::Unreadable("a page is not a dictionary".into()).into()),
    };
    match get(&page, b"Annots") {
        Some(Obj::Ref(r)) => {
            let r = *r;
            if let (Obj::Array(mut annots), None) = doc.fetch(r, 0)? {
                annots.push(Obj::Ref(widget));
                inc.put(r, serialize(&Obj::Array(annots)));
                return Ok(());
            }
            set(&mut page, b"Annots", Obj::Array(vec![Obj::Ref(widget)]));
        }
        Some(Obj::Array(a)) => {
            let mut annots = a.clone();
            annots.push(Obj::Ref(widget));
            set(&mut page, b"Annots", Obj::Array(annots));
        }
        _ => set(&mut page, b"Annots", Obj::Array(vec![Obj::Ref(widget)])),
    }
    inc.put(page_ref, serialize(&Obj::Dict(page)));
    Ok(())
}

/// Adds the field to the AcroForm's `/Fields` and sets `/SigFlags 3`, rewriting as little as possible: the
/// `/Fields` array if it is an object of its own, the AcroForm if it is, the catalog otherwise.
fn add_field(doc: &Doc, analysis: &Analysis, inc: &mut Increment, field: Ref) -> Result<(), PdfError> {
    let (mut form, place) = match &analysis.acroform {
        AcroForm::None => (Dict::new(), None),
        AcroForm::Direct(d) => (d.clone(), None),
        AcroForm::Indirect(r, d) => (d.clone(), Some(*r)),
    };
    let mut form_changed = false;
    let fields_object = match get(&form, b"Fields") {
        Some(Obj::Ref(r)) => match doc.fetch(*r, 0)? {
            (Obj::Array(fields), None) => Some((*r, fields)),
            _ => None,
        },
        _ => None,
    };
    match (fields_object, get(&form, b"Fields")) {
        (Some((r, mut fields)), _) => {
            fields.push(Obj::Ref(field));
            inc.put(r, serialize(&Obj::Array(fields)));
        }
        (None, Some(Obj::Array(a))) => {
            let mut fields = a.clone();
            fields.push(Obj::Ref(field));
            set(&mut form, b"Fields", Obj::Array(fields));
            form_changed = true;
        }
        (None, _) => {
            set(&mut form, b"Fields", Obj::Array(vec![Obj::Ref(field)]));
            form_changed = true;
        }
    }
    let flags = match get(&form, b"SigFlags") {
        Some(Obj::Int(f)) => *f,
        _ => 0,
    };
    if flags & SIG_FLAGS != SIG_FLAGS {
        set(&mut form, b"SigFlags", Obj::Int(flags | SIG_FLAGS));
        form_changed = true;
    }
    if !form_changed {
        return Ok(());
    }
    match place {
        Some(r) => inc.put(r, serialize(&Obj::Dict(form))),
        None => {
            let mut catalog = analysis.catalog.clone();
            let value = match analysis.acroform {
                AcroForm::Direct(_) => Obj::Dict(form),
                _ => {
                    let r = inc.alloc();
                    inc.put(r, serialize(&Obj::Dict(form)));
                    Obj::Ref(r)
                }
            };
            set(&mut catalog, b"AcroForm", value);
            inc.put(analysis.catalog_ref, serialize(&Obj::Dict(catalog)));
        }
    }
    Ok(())
}

/// `D:YYYYMMDDHHmmSS+00'00'` in UTC.
fn pdf_date(unix_seconds: i64) -> Result<String, PdfError> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_seconds).map_err(|_| PdfError::InvalidTime(unix_seconds))?;
    if !(0..=9999).contains(&t.year()) {
        return Err(PdfError::InvalidTime(unix_seconds));
    }
    Ok(format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}+00'00'",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Appearance

/// A number for a content stream or a dictionary: at most 4 decimals, no trailing zeros.
fn fmt_num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match s {
        "-0" | "" => "0".into(),
        s => s.into(),
    }
}

/// The rectangle normalised, or why it cannot be used on this page.
fn checked_rect(rect: [f64; 4], page: &PageGeometry) -> Result<[f64; 4], PdfError> {
    if rect.iter().any(|v| !v.is_finite()) {
        return Err(PdfError::InvalidAppearance("its coordinates are not numbers".into()));
    }
    let [x1, y1, x2, y2] = rect;
    let r = [x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)];
    if r[2] - r[0] < 10.0 || r[3] - r[1] < 10.0 {
        return Err(PdfError::InvalidAppearance(
            "it must be at least 10 points wide and high".into(),
        ));
    }
    let [mx1, my1, mx2, my2] = page.media_box;
    let tolerance = 1.0;
    if r[0] < mx1 - tolerance || r[1] < my1 - tolerance || r[2] > mx2 + tolerance || r[3] > my2 + tolerance {
        return Err(PdfError::InvalidAppearance(format!(
            "it does not lie within the page ({} {} {} {})",
            fmt_num(mx1),
            fmt_num(my1),
            fmt_num(mx2),
            fmt_num(my2)
        )));
    }
    Ok(r)
}

/// The appearance of a visible signature: a thin frame, "Semnat digital / Digitally signed", the name larger, the
/// date; Helvetica sized to fit, turned upright on a rotated page.
fn visible_appearance(a: &Appearance, rect: [f64; 4], rotate: u16) -> Vec<u8> {
    let (w, h) = (rect[2] - rect[0], rect[3] - rect[1]);
    // In the form's own space the box is as the viewer shows it: width and height swap at 90 and 270 degrees.
    let (bw, bh) = if rotate == 90 || rotate == 270 { (h, w) } else { (w, h) };
    let matrix = match rotate {
        90 => [0.0, 1.0, -1.0, 0.0, 0.0, 0.0],
        180 => [-1.0, 0.0, 0.0, -1.0, 0.0, 0.0],
        270 => [0.0, -1.0, 1.0, 0.0, 0.0, 0.0],
        _ => [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
    };
    let lines: [(Vec<u8>, f64); 3] = [
        (win_ansi("Semnat digital / Digitally signed"), 0.8),
        (win_ansi(&a.name), 1.2),
        (win_ansi(&a.date), 0.8),
    ];
    let pad = (bw.min(bh) * 0.06).clamp(1.0, 6.0);
    let leading = 1.2;
    let total_height: f64 = lines.iter().map(|(_, s)| s * leading).sum();
    let widest = lines
        .iter()
        .map(|(t, s)| helvetica_width(t) * s)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let size = ((bh - 2.0 * pad) / total_height)
        .min((bw - 2.0 * pad) / widest)
        .clamp(1.0, 14.0);

    let mut content = Vec::new();
    content.extend_from_slice(
        format!(
            "q\n0.2 0.3 0.6 RG 0.8 w {} {} {} {} re S\n",
            fmt_num(0.4),
            fmt_num(0.4),
            fmt_num(bw - 0.8),
            fmt_num(bh - 0.8)
        )
        .as_bytes(),
    );
    content.extend_from_slice(format!("0 0 {} {} re W n\nBT 0 g\n", fmt_num(bw), fmt_num(bh)).as_bytes());
    let block = total_height * size;
    let mut baseline = bh - (bh - block) / 2.0;
    for (text, scale) in &lines {
        let font = size * scale;
        baseline -= font * leading;
        let y = baseline + font * (leading - 1.0) + font * 0.22;
        content.extend_from_slice(
            format!("/F1 {} Tf 1 0 0 1 {} {} Tm ", fmt_num(font), fmt_num(pad), fmt_num(y)).as_bytes(),
        );
        content.extend_from_slice(&pdf_literal(text));
        content.extend_from_slice(b" Tj\n");
    }
    content.extend_from_slice(b"ET\nQ\n");

    let font = vec![
        (b"Type".to_vec(), Obj::name("Font")),
        (b"Subtype".to_vec(), Obj::name("Type1")),
        (b"BaseFont".to_vec(), Obj::name("Helvetica")),
        (b"Encoding".to_vec(), Obj::name("WinAnsiEncoding")),
    ];
    let resources = vec![
        (b"Font".to_vec(), Obj::Dict(vec![(b"F1".to_vec(), Obj::Dict(font))])),
        (
            b"ProcSet".to_vec(),
            Obj::Array(vec![Obj::name("PDF"), Obj::name("Text")]),
        ),
    ];
    let mut dict = vec![
        (b"Type".to_vec(), Obj::name("XObject")),
        (b"Subtype".to_vec(), Obj::name("Form")),
        (
            b"BBox".to_vec(),
            Obj::Array(vec![
                Obj::Int(0),
                Obj::Int(0),
                Obj::Real(fmt_num(bw)),
                Obj::Real(fmt_num(bh)),
            ]),
        ),
        (b"Resources".to_vec(), Obj::Dict(resources)),
    ];
    if rotate != 0 {
        dict.push((
            b"Matrix".to_vec(),
            Obj::Array(matrix.iter().map(|v| Obj::Real(fmt_num(*v))).collect()),
        ));
    }
    stream_object(&dict, &content)
}

/// A literal string for a content stream: printable ASCII as is, everything else as octal escapes.
fn pdf_literal(text: &[u8]) -> Vec<u8> {
    let mut out = vec![b'('];
    for b in text {
        match b {
            b'(' | b')' | b'\\' => {
                out.push(b'\\');
                out.push(*b);
            }
            0x20..=0x7e => out.push(*b),
            _ => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
        }
    }
    out.push(b')');
    out
}

/// Text in WinAnsiEncoding (Windows-1252): Latin-1 and the Windows-1252 extras as they are, Latin Extended-A and
/// the Romanian comma-below letters without their diacritics (ș ț ă → s t a), anything else `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    /// Windows-1252 0x80..=0x9F.
    const CP1252_EXTRAS: [(char, u8); 27] = [
        ('€', 0x80),
        ('‚', 0x82),
        ('ƒ', 0x83),
        ('„', 0x84),
        ('…', 0x85),
        ('†', 0x86),
        ('‡', 0x87),
        ('ˆ', 0x88),
        ('‰', 0x89),
        ('Š', 0x8a),
        ('‹', 0x8b),
        ('Œ', 0x8c),
        ('Ž', 0x8e),
        ('‘', 0x91),
        ('’', 0x92),
        ('“', 0x93),
        ('”', 0x94),
        ('•', 0x95),
        ('–', 0x96),
        ('—', 0x97),
        ('˜', 0x98),
        ('™', 0x99),
        ('š', 0x9a),
        ('›', 0x9b),
        ('œ', 0x9c),
        ('ž', 0x9e),
        ('Ÿ', 0x9f),
    ];
    /// The base letters of U+0100..=U+017F.
    const LATIN_EXTENDED_A: &[u8; 128] = b"AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi??JjKkkLlLlLlLlLlNnNnNnnNnOoOoOo??RrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs";
    text.chars()
        .map(|c| {
            let code = u32::from(c);
            if let Some((_, b)) = CP1252_EXTRAS.iter().find(|(x, _)| *x == c) {
                return *b;
            }
            match code {
                0x20..=0x7e | 0xa0..=0xff => code as u8,
                0x100..=0x17f => LATIN_EXTENDED_A[(code - 0x100) as usize],
                // Ș ș Ț ț (comma below), the letters Romanian actually uses.
                0x218 => b'S',
                0x219 => b's',
                0x21a => b'T',
                0x21b => b't',
                _ if c.is_whitespace() => b' ',
                _ => b'?',
            }
        })
        .collect()
}

/// The width of WinAnsi text in Helvetica, in text-space units (font size 1).
fn helvetica_width(text: &[u8]) -> f64 {
    /// Helvetica's advance widths (per 1000 units) for 0x20..=0x7E, from its AFM.
    const ASCII: [u16; 95] = [
        278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556,
        556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667,
        556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556,
        556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722,
        500, 500, 500, 334, 260, 334, 584,
    ];
    text.iter()
        .map(|b| match b {
            0x20..=0x7e => f64::from(ASCII[usize::from(b - 0x20)]),
            // Accented letters are about as wide as their base letters; 667 covers the widest capitals.
            _ => 667.0,
        })
        .sum::<f64>()
        / 1000.0
}

// ---------------------------------------------------------------------------------------------------------------
// Reading signatures (for verification)

/// A signed signature field as a verifier needs it (see `documents::verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureField {
    /// The field's name (`/T`), empty when it has none.
    pub name: String,
    /// `/SubFilter`, e.g. `ETSI.CAdES.detached`, `adbe.pkcs7.detached`, `ETSI.RFC3161`.
    pub sub_filter: String,
    /// `/Type /DocTimeStamp` or `/SubFilter /ETSI.RFC3161`: the value is an RFC 3161 token.
    pub document_timestamp: bool,
    /// `/ByteRange` as written (not checked here).
    pub byte_range: Vec<i64>,
    /// `/Contents`, decoded (a DER CMS, zero-padded).
    pub contents: Vec<u8>,
    /// `/M` as written (a PDF date), if any.
    pub time: Option<String>,
}

/// The signed signature fields of a PDF, in the order of the form's field tree. Refuses what [`inspect`] refuses
/// as unreadable (too large, encrypted, damaged); a PDF without a form has none.
pub fn signature_fields(pdf: &[u8], limits: &Limits) -> Result<Vec<SignatureField>, PdfError> {
    let doc = Doc::open(pdf, limits)?;
    let Some(Obj::Ref(catalog_ref)) = get(&doc.trailer, b"Root") else {
        return Err(Bad::Unreadable("its trailer names no document catalog".into()).into());
    };
    let catalog = match doc.fetch(*catalog_ref, 0)? {
        (Obj::Dict(d), None) => d,
        _ => return Err(Bad::Unreadable("its document catalog is missing".into()).into()),
    };
    let form = match get(&catalog, b"AcroForm") {
        Some(f) => match doc.deref(f)? {
            Obj::Dict(d) => d,
            _ => return Ok(Vec::new()),
        },
        None => return Ok(Vec::new()),
    };
    let roots = match get(&form, b"Fields") {
        Some(f) => match doc.deref(f)? {
            Obj::Array(a) => a,
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    let text = |o: Option<&Obj>| match o {
        Some(Obj::Str(s)) | Some(Obj::Name(s)) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    };
    let mut out = Vec::new();
    let mut walk = FieldWalk::default();
    // A signature value named by two fields is read (and reported) once.
    let mut values = HashSet::new();
    let mut stack: Vec<(Obj, Option<bool>, String, usize)> =
        roots.into_iter().rev().map(|f| (f, None, String::new(), 0)).collect();
    while let Some((field, inherited_ft, parent_name, depth)) = stack.pop() {
        if !walk.enter(&doc, &field, depth)? {
            continue;
        }
        let Obj::Dict(node) = doc.deref(&field)? else {
            continue;
        };
        let mut name = match (text(get(&node, b"T")), parent_name.is_empty()) {
            (Some(t), true) => t,
            (Some(t), false) => format!("{parent_name}.{t}"),
            (None, _) => parent_name,
        };
        // Each kid carries its parent's name: a bounded one, so a long name is not copied to every kid.
        if name.len() > MAX_FIELD_NAME {
            let cut = (0..=MAX_FIELD_NAME)
                .rev()
                .find(|i| name.is_char_boundary(*i))
                .unwrap_or(0);
            name.truncate(cut);
        }
        let ft = match get(&node, b"FT") {
            // Kept as "is a signature field": a long type name is not copied to every kid.
            Some(Obj::Name(n)) => Some(n == b"Sig"),
            _ => inherited_ft,
        };
        if ft == Some(true) {
            if let Some(v) = get(&node, b"V").filter(|v| match v {
                Obj::Ref(r) => values.insert(r.num),
                _ => true,
            }) {
                if let Obj::Dict(sig) = doc.deref(v)? {
                    let byte_range = match get(&sig, b"ByteRange") {
                        Some(b) => match doc.deref(b)? {
                            Obj::Array(a) => a
                                .iter()
                                .take(64)
                                .map(|x| match x {
                                    Obj::Int(i) => *i,
                                    _ => -1,
                                })
                                .collect(),
                            _ => Vec::new(),
                        },
                        None => Vec::new(),
                    };
                    let contents = match get(&sig, b"Contents") {
                        Some(c) => match doc.deref(c)? {
                            Obj::Str(s) => s,
                            _ => Vec::new(),
                        },
                        None => Vec::new(),
                    };
                    let sub_filter = text(get(&sig, b"SubFilter")).unwrap_or_default();
                    let document_timestamp =
                        sub_filter == "ETSI.RFC3161" || get(&sig, b"Type") == Some(&Obj::name("DocTimeStamp"));
                    out.push(SignatureField {
                        name: name.clone(),
                        sub_filter,
                        document_timestamp,
                        byte_range,
                        contents,
                        time: text(get(&sig, b"M")),
                    });
                }
            }
        }
        for kid in walk.kids(&doc, &node)?.into_iter().rev() {
            stack.push((kid, ft, name.clone(), depth + 1));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::{deep_field_tree, deep_page_tree, xref_chain, zlib};

    /// A PDF whose objects 1..=n are `objects` (1 is the catalog), with a classic cross-reference table.
    fn pdf(objects: &[&str]) -> Vec<u8> {
        let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1).as_bytes());
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R /ID [<0102> <0304>] >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    /// The same objects, all but the catalog in an (uncompressed) object stream, with a cross-reference stream.
    fn pdf_with_object_stream(objects: &[&str]) -> Vec<u8> {
        object_stream_pdf(objects, 0, |content| (content, String::new()))
    }

    /// As [`pdf_with_object_stream`], the stream's content followed by `tail` spaces and encoded by `encode`, which
    /// returns the data and the dictionary entries (e.g. `/Filter /FlateDecode`) that say how.
    fn object_stream_pdf(objects: &[&str], tail: usize, encode: impl Fn(Vec<u8>) -> (Vec<u8>, String)) -> Vec<u8> {
        let mut out = b"%PDF-1.7\n".to_vec();
        let n = objects.len() as u32;
        let catalog_at = out.len();
        out.extend_from_slice(format!("1 0 obj\n{}\nendobj\n", objects[0]).as_bytes());
        let (mut header, mut body) = (String::new(), String::new());
        for (i, o) in objects.iter().enumerate().skip(1) {
            header.push_str(&format!("{} {} ", i + 1, body.len()));
            body.push_str(o);
            body.push('\n');
        }
        let stm_num = n + 1;
        let stm_at = out.len();
        let mut content = format!("{header}{body}").into_bytes();
        content.resize(content.len() + tail, b' ');
        let (data, filter) = encode(content);
        out.extend_from_slice(
            format!(
                "{stm_num} 0 obj\n<< /Type /ObjStm /N {} /First {} /Length {}{filter} >>\nstream\n",
                n - 1,
                header.len(),
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\nendstream\nendobj\n");
        let xref_num = n + 2;
        let xref_at = out.len();
        let mut rows = vec![[0u8, 0, 0, 0, 0]];
        rows.push([1, 0, 0, catalog_at as u8, 0]);
        let mut rows: Vec<Vec<u8>> = rows.into_iter().map(|r| r.to_vec()).collect();
        rows[1] = [
            vec![1u8],
            (catalog_at as u32).to_be_bytes().to_vec()[1..].to_vec(),
            vec![0],
        ]
        .concat();
        rows[0] = vec![0, 0, 0, 0, 0];
        for i in 1..n {
            rows.push([vec![2u8], stm_num.to_be_bytes()[1..].to_vec(), vec![(i - 1) as u8]].concat());
        }
        rows.push([vec![1u8], (stm_at as u32).to_be_bytes()[1..].to_vec(), vec![0]].concat());
        rows.push([vec![1u8], (xref_at as u32).to_be_bytes()[1..].to_vec(), vec![0]].concat());
        let data: Vec<u8> = rows.concat();
        out.extend_from_slice(
            format!(
                "{xref_num} 0 obj\n<< /Type /XRef /Size {} /W [1 3 1] /Root 1 0 R /Length {} >>\nstream\n",
                xref_num + 1,
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&data);
        out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
        out
    }

    const CATALOG: &str = "<< /Type /Catalog /Pages 2 0 R >>";
    const TWO_PAGES: [&str; 4] = [
        CATALOG,
        "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 /MediaBox [0 0 595.2756 841.8898] >>",
        "<< /Type /Page /Parent 2 0 R >>",
        "<< /Type /Page /Parent 2 0 R /Rotate 90 /Annots [] >>",
    ];

    fn limits() -> Limits {
        Limits::default()
    }

    fn sign_fake(pdf: &[u8], appearance: Option<&Appearance>) -> Vec<u8> {
        let prepared = prepare(
            pdf,
            Kind::Signature {
                signing_time: 1_767_225_600,
            },
            appearance,
            64,
            &limits(),
        )
        .unwrap();
        prepared.finish(&[0x30, 0x03, 0x02, 0x01, 0x01]).unwrap()
    }

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

    #[test]
    fn the_byte_range_covers_everything_but_the_contents_string() {
        let original = pdf(&TWO_PAGES);
        let prepared = prepare(
            &original,
            Kind::Signature {
                signing_time: 1_767_225_600,
            },
            None,
            100,
            &limits(),
        )
        .unwrap();
        let file = prepared.file().to_vec();
        assert!(file.starts_with(&original), "the original is an untouched prefix");
        let [zero, a, b, c] = prepared.byte_range();
        assert_eq!(zero, 0);
        assert_eq!(b + c, file.len() as u64);
        assert_eq!(file[a as usize], b'<');
        assert_eq!(file[b as usize - 1], b'>');
        assert_eq!(b - a, 2 + 200);
        assert_eq!(prepared.placeholder_bytes(), 100);
        let text = String::from_utf8_lossy(&file);
        let written = format!("/ByteRange [0 {a:<10} {b:<10} {c:<10}]");
        assert!(text.contains(&written), "{written} not in the file");
        assert!(text.contains("/M (D:20260101000000+00'00')"));
        let [p1, p2] = prepared.signed_parts();
        assert_eq!(p1.len() as u64, a);
        assert_eq!(p2.len() as u64, c);
        let mut whole = p1.to_vec();
        whole.extend_from_slice(p2);
        assert_eq!(prepared.digest(HashAlg::Sha256), HashAlg::Sha256.digest(&whole));

        let signed = prepared.clone().finish(&[0xab; 100]).unwrap();
        assert_eq!(signed.len(), file.len());
        assert_eq!(
            &signed[a as usize..b as usize],
            format!("<{}>", "ab".repeat(100)).as_bytes()
        );
        assert_eq!(
            prepared.finish(&[1; 101]),
            Err(PdfError::ContentsTooSmall {
                needed: 101,
                available: 100
            })
        );
    }

    #[test]
    fn a_signed_file_reads_back_with_its_signature_and_takes_another() {
        for original in [pdf(&TWO_PAGES), pdf_with_object_stream(&TWO_PAGES)] {
            let info = inspect(&original, &limits()).unwrap();
            assert_eq!(info.page_count(), 2);
            assert_eq!(info.pages[1].rotate, 90);
            assert_eq!(info.pages[0].media_box, [0.0, 0.0, 595.2756, 841.8898]);
            assert_eq!(info.signatures, 0);

            let once = sign_fake(&original, None);
            assert_eq!(inspect(&once, &limits()).unwrap().signatures, 1);
            let appearance = Appearance {
                page: 2,
                rect: [100.0, 100.0, 300.0, 160.0],
                name: "Ana-Maria Ștefănescu".into(),
                date: "2026-01-01 12:00 UTC".into(),
            };
            let twice = sign_fake(&once, Some(&appearance));
            assert!(twice.starts_with(&once));
            let info = inspect(&twice, &limits()).unwrap();
            assert_eq!(info.signatures, 2);
            let text = String::from_utf8_lossy(&twice);
            assert!(text.contains("(Signature1)") && text.contains("(Signature2)"));
            assert!(
                text.contains("/MK << /R 90 >>"),
                "a rotated page gets a turned appearance"
            );
            assert!(text.contains("(Ana-Maria Stefanescu) Tj"));
            let with_dss = add_dss(
                &twice,
                &[b"cert".to_vec(), b"cert".to_vec()],
                &[b"crl".to_vec()],
                &[],
                &limits(),
            )
            .unwrap();
            assert!(with_dss.starts_with(&twice));
            assert!(inspect(&with_dss, &limits()).unwrap().has_dss);
            let text = String::from_utf8_lossy(&with_dss[twice.len()..]);
            assert_eq!(
                text.matches("stream\ncert\nendstream").count(),
                1,
                "a repeated item is written once"
            );
            let again = add_dss(&with_dss, &[b"cert2".to_vec()], &[], &[b"ocsp".to_vec()], &limits()).unwrap();
            let text = String::from_utf8_lossy(&again[with_dss.len()..]);
            assert!(text.contains("/Certs [") && text.contains("/CRLs [") && text.contains("/OCSPs ["));
        }
    }

    #[test]
    fn the_new_revision_has_the_cross_reference_kind_of_the_last_one() {
        let table = sign_fake(&pdf(&TWO_PAGES), None);
        let tail = String::from_utf8_lossy(&table[pdf(&TWO_PAGES).len()..]).into_owned();
        assert!(tail.contains("\nxref\n") && tail.contains("/Prev "), "{tail}");
        assert!(tail.contains("/ID [<0102> <0304>]"));
        let original = pdf_with_object_stream(&TWO_PAGES);
        let stream = sign_fake(&original, None);
        let tail = String::from_utf8_lossy(&stream[original.len()..]).into_owned();
        assert!(!tail.contains("\nxref\n"));
        assert!(tail.contains("/Type /XRef") && tail.contains("/W [1 "), "{tail}");
    }

    #[test]
    fn what_cannot_be_signed_is_refused_with_its_reason() {
        let encrypted = {
            let mut p = pdf(&TWO_PAGES);
            let at = find(&p, b"/Root 1 0 R").unwrap();
            p.splice(at..at, b"/Encrypt << /Filter /Standard >> ".iter().copied());
            let xref = find(&p, b"\nxref\n").unwrap() + 1;
            let start = rfind(&p, b"startxref\n").unwrap() + 10;
            p.truncate(start);
            p.extend_from_slice(format!("{xref}\n%%EOF\n").as_bytes());
            p
        };
        assert_eq!(inspect(&encrypted, &limits()), Err(PdfError::Encrypted));
        let xfa = pdf(&[
            "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] /XFA 5 0 R >> >>",
            TWO_PAGES[1],
            TWO_PAGES[2],
            TWO_PAGES[3],
        ]);
        assert_eq!(inspect(&xfa, &limits()), Err(PdfError::Xfa));
        assert_eq!(
            PdfError::Xfa.to_string(),
            "Smart PDF forms cannot be signed here; sign them locally in a PDF reader with the desktop virtual token."
        );
        let certified = pdf(&[
            "<< /Type /Catalog /Pages 2 0 R /Perms << /DocMDP 5 0 R >> >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R >>",
            "<< >>",
            "<< /Type /Sig /Reference [<< /TransformMethod /DocMDP /TransformParams << /P 1 /V /1.2 >> >>] >>",
        ]);
        assert_eq!(inspect(&certified, &limits()).unwrap().certification, Some(1));
        let sign = |pdf: &[u8]| prepare(pdf, Kind::Signature { signing_time: 0 }, None, 10, &limits());
        assert_eq!(sign(&certified).unwrap_err(), PdfError::CertifiedNoChanges);
        assert!(prepare(&certified, Kind::DocumentTimestamp, None, 10, &limits()).is_ok());
        let cyclic = pdf(&[CATALOG, "<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]);
        assert!(matches!(inspect(&cyclic, &limits()), Err(PdfError::Unreadable(m)) if m.contains("refers back")));
        let huge_count = pdf(&[
            CATALOG,
            "<< /Type /Pages /Kids [3 0 R] /Count 2147483647 >>",
            "<< /Type /Page >>",
        ]);
        assert!(matches!(inspect(&huge_count, &limits()), Err(PdfError::Unreadable(m)) if m.contains("2147483647")));
        let deep = format!("<< /Type /Catalog /Pages 2 0 R /X {} >>", "[".repeat(100_000));
        assert!(matches!(inspect(&pdf(&[&deep]), &limits()), Err(PdfError::Unreadable(m)) if m.contains("nested")));
        let original = pdf(&TWO_PAGES);
        assert!(matches!(
            inspect(&original[..original.len() - 40], &limits()),
            Err(PdfError::Unreadable(_))
        ));
        assert!(matches!(
            inspect(b"%PDF-1.4 garbage", &limits()),
            Err(PdfError::Unreadable(_))
        ));
        assert!(matches!(inspect(b"GIF89a", &limits()), Err(PdfError::Unreadable(_))));
        let tight = Limits {
            max_bytes: 100,
            max_objects: 3,
            ..Limits::default()
        };
        assert_eq!(
            inspect(&original, &tight),
            Err(PdfError::TooLarge {
                size: original.len(),
                max: 100
            })
        );
        let few = Limits {
            max_objects: 3,
            ..limits()
        };
        assert!(matches!(
            inspect(&original, &few),
            Err(PdfError::TooManyObjects { max: 3, .. })
        ));
        assert!(matches!(
            sign_with_page(&original, 3),
            Err(PdfError::NoSuchPage { page: 3, pages: 2 })
        ));
        assert!(matches!(
            prepare(&original, Kind::DocumentTimestamp, None, 0, &limits()),
            Err(PdfError::InvalidPlaceholder { .. })
        ));
    }

    fn sign_with_page(pdf: &[u8], page: usize) -> Result<Prepared, PdfError> {
        let appearance = Appearance {
            page,
            rect: [10.0, 10.0, 100.0, 50.0],
            name: "N".into(),
            date: "D".into(),
        };
        prepare(
            pdf,
            Kind::Signature { signing_time: 0 },
            Some(&appearance),
            10,
            &limits(),
        )
    }

    #[test]
    fn a_rectangle_off_the_page_or_too_small_is_refused() {
        let original = pdf(&TWO_PAGES);
        let with = |rect| {
            let a = Appearance {
                page: 1,
                rect,
                name: "N".into(),
                date: "D".into(),
            };
            prepare(&original, Kind::Signature { signing_time: 0 }, Some(&a), 10, &limits())
        };
        assert!(with([300.0, 100.0, 100.0, 50.0]).is_ok(), "corners in any order");
        assert!(matches!(
            with([500.0, 10.0, 700.0, 50.0]),
            Err(PdfError::InvalidAppearance(_))
        ));
        assert!(matches!(
            with([10.0, 10.0, 15.0, 50.0]),
            Err(PdfError::InvalidAppearance(_))
        ));
        assert!(matches!(
            with([f64::NAN, 10.0, 15.0, 50.0]),
            Err(PdfError::InvalidAppearance(_))
        ));
    }

    #[test]
    fn win_ansi_keeps_latin_1_and_drops_romanian_diacritics_it_lacks() {
        assert_eq!(win_ansi("Ștefănescu Țară"), b"Stefanescu Tara");
        assert_eq!(win_ansi("şţŞŢ ăĂ"), b"stST aA");
        assert_eq!(win_ansi("âÂîÎ"), [0xe2, 0xc2, 0xee, 0xce]);
        assert_eq!(win_ansi("€ – Łódź"), [0x80, b' ', 0x96, b' ', b'L', 0xf3, b'd', b'z']);
        assert_eq!(win_ansi("名"), b"?");
        assert_eq!(pdf_literal(&win_ansi("(î)\\")), b"(\\(\\356\\)\\\\)");
    }

    #[test]
    fn the_signature_time_is_a_pdf_date_in_utc() {
        assert_eq!(pdf_date(0).unwrap(), "D:19700101000000+00'00'");
        assert_eq!(pdf_date(1_767_225_600 + 3661).unwrap(), "D:20260101010101+00'00'");
        assert_eq!(pdf_date(i64::MAX), Err(PdfError::InvalidTime(i64::MAX)));
    }

    // -----------------------------------------------------------------------------------------------------------
    // Hostile files: each is refused or read within the budget, and the work counters show it.

    fn flate(content: Vec<u8>) -> (Vec<u8>, String) {
        (zlib(&content), " /Filter /FlateDecode".into())
    }

    /// The work a reading of `file` (as [`inspect`] does it) left on its counters: (nodes, scanned, decoded), and
    /// its result.
    fn work(file: &[u8], limits: &Limits) -> ((usize, usize, usize), Result<PdfInfo, PdfError>) {
        let doc = match Doc::open(file, limits) {
            Ok(d) => d,
            Err(e) => return ((0, 0, 0), Err(e)),
        };
        let info = Analysis::of(&doc).map(|a| a.info());
        let b = &doc.budget;
        ((b.nodes.get(), b.scanned.get(), b.decoded.get()), info)
    }

    fn too_complex<T: std::fmt::Debug>(r: Result<T, PdfError>) -> String {
        match r {
            Err(PdfError::TooComplex(why)) => why,
            other => panic!("expected TooComplex, got {other:?}"),
        }
    }

    /// A form whose field has `/Kids` naming array 5, whose two direct kid dictionaries name array 6 as their
    /// `/Kids`, and so on `levels` deep: 2^levels paths to one signature field at the bottom.
    fn fan_out_fields(levels: usize) -> Vec<u8> {
        let sig = 5 + levels;
        let mut objects = vec![
            "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] >> >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
            "<< /Type /Page /Parent 2 0 R >>".into(),
            "<< /T (top) /FT /Sig /Kids 5 0 R >>".into(),
        ];
        for i in 0..levels {
            let next = 5 + i + 1;
            objects.push(if i + 1 < levels {
                format!("[<< /Kids {next} 0 R >> << /Kids {next} 0 R >>]")
            } else {
                format!("[<< /T (s) /V {sig} 0 R >>]")
            });
        }
        objects.push(
            "<< /Type /Sig /SubFilter /ETSI.CAdES.detached /ByteRange [0 1 2 3] /Contents <3003020101> >>".into(),
        );
        pdf(&objects.iter().map(String::as_str).collect::<Vec<_>>())
    }

    #[test]
    fn a_shared_kids_array_under_direct_kids_is_walked_once() {
        let file = fan_out_fields(40);
        let ((nodes, _, _), info) = work(&file, &limits());
        assert_eq!(info.unwrap().signatures, 1);
        assert!(nodes < 200, "{nodes} nodes for a 40-level fan-out");
        let fields = signature_fields(&file, &limits()).unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].name, "top.s");
        // The same shape signs as well (the walk behind `prepare` is the same).
        sign_fake(&file, None);
    }

    #[test]
    fn every_tree_node_direct_or_not_is_charged_to_the_budget() {
        let direct = vec!["<< /T (f) >>"; 100].join(" ");
        let catalog = format!("<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [{direct}] >> >>");
        let file = pdf(&[&catalog, TWO_PAGES[1], TWO_PAGES[2], TWO_PAGES[3]]);
        let tight = Limits {
            max_nodes: 50,
            ..limits()
        };
        assert!(too_complex(inspect(&file, &tight)).contains("more than 50 objects"));
        assert!(too_complex(signature_fields(&file, &tight)).contains("more than 50 objects"));
        assert!(inspect(&file, &limits()).is_ok());
    }

    #[test]
    fn trees_deeper_than_the_budget_are_refused() {
        assert!(inspect(&deep_page_tree(10), &limits()).is_ok());
        assert!(too_complex(inspect(&deep_page_tree(100), &limits())).contains("64 levels deep"));
        assert!(inspect(&deep_field_tree(10), &limits()).is_ok());
        assert!(too_complex(inspect(&deep_field_tree(100), &limits())).contains("64 levels deep"));
        assert!(too_complex(signature_fields(&deep_field_tree(100), &limits())).contains("64 levels deep"));
    }

    #[test]
    fn hostile_page_trees_are_refused_with_little_work() {
        let cases: [(&str, &[&str]); 4] = [
            // A huge /Count over one page.
            (
                "says it has",
                &[
                    CATALOG,
                    "<< /Type /Pages /Kids [3 0 R] /Count 2147483647 >>",
                    "<< /Type /Page >>",
                ],
            ),
            // Direct kids (which could share a /Kids array by reference).
            (
                "not an indirect object",
                &[
                    CATALOG,
                    "<< /Type /Pages /Kids [<< /Type /Pages /Kids 3 0 R >>] >>",
                    "[4 0 R 4 0 R]",
                    "<< /Type /Page >>",
                ],
            ),
            // A shared /Kids array by reference: a loop.
            (
                "refers back",
                &[
                    CATALOG,
                    "<< /Type /Pages /Kids 3 0 R >>",
                    "[4 0 R 4 0 R]",
                    "<< /Type /Page >>",
                ],
            ),
            (
                "refers back",
                &[
                    CATALOG,
                    "<< /Type /Pages /Kids [3 0 R 3 0 R] >>",
                    "<< /Type /Pages /Kids [2 0 R] >>",
                ],
            ),
        ];
        for (why, objects) in cases {
            let ((nodes, _, _), result) = work(&pdf(objects), &limits());
            match result {
                Err(PdfError::Unreadable(m)) => assert!(m.contains(why), "{m}"),
                other => panic!("{why}: {other:?}"),
            }
            assert!(nodes < 20, "{why}: {nodes} nodes");
        }
    }

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
        assert_eq!(budget.scan_allowance.get(), allowance);
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
        assert!(
            reading.budget.scanned.get() <= allowance,
            "{}",
            reading.budget.scanned.get()
        );

        // Too many revisions, even cheap ones.
        let few = Limits {
            max_xref_sections: 100,
            ..Limits::default()
        };
        assert!(too_complex(inspect(&fine, &few)).contains("more than 100 revisions"));
    }

    #[test]
    fn a_compression_bomb_is_refused_by_the_output_cap() {
        // 20 MiB of spaces in an object stream: about 20 KB compressed.
        let bomb = object_stream_pdf(&TWO_PAGES, 20 << 20, flate);
        assert!(bomb.len() < 100_000);
        let ((_, _, decoded), result) = work(&bomb, &limits());
        assert!(too_complex(result).contains("decodes to more than 16777216 bytes"));
        assert!(decoded <= DEFAULT_MAX_DECODED_STREAM);
        // Per reading: streams each under the stream cap still add up.
        let small = Limits {
            max_decoded_stream: 8 << 20,
            max_decoded_total: 4 << 20,
            ..Limits::default()
        };
        let big = object_stream_pdf(&TWO_PAGES, 5 << 20, flate);
        assert!(too_complex(inspect(&big, &small)).contains("decodes to more than 4194304 bytes"));
        // A compressed stream within the caps reads as the uncompressed one.
        let fine = object_stream_pdf(&TWO_PAGES, 1000, flate);
        assert_eq!(inspect(&fine, &limits()), inspect(&pdf(&TWO_PAGES), &limits()));
    }

    #[test]
    fn damaged_compressed_data_is_refused_not_read_as_empty() {
        let garbage = |_: Vec<u8>| {
            (
                (0..200u8).map(|i| i.wrapping_mul(37)).collect(),
                " /Filter /FlateDecode".into(),
            )
        };
        let truncated = |content: Vec<u8>| {
            let z = zlib(&content);
            (z[..z.len() / 2].to_vec(), " /Filter /FlateDecode".to_string())
        };
        let bad_checksum = |content: Vec<u8>| {
            let mut z = zlib(&content);
            let last = z.len() - 1;
            z[last] ^= 0xff;
            (z, " /Filter /FlateDecode".to_string())
        };
        let unknown = |content: Vec<u8>| (content, " /Filter /LZWDecode".to_string());
        for (name, file) in [
            ("garbage", object_stream_pdf(&TWO_PAGES, 0, garbage)),
            ("truncated", object_stream_pdf(&TWO_PAGES, 0, truncated)),
            ("checksum", object_stream_pdf(&TWO_PAGES, 0, bad_checksum)),
        ] {
            match inspect(&file, &limits()) {
                Err(PdfError::Unreadable(m)) => assert!(m.contains("compressed stream is damaged"), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        match inspect(&object_stream_pdf(&TWO_PAGES, 0, unknown), &limits()) {
            Err(PdfError::Unreadable(m)) => assert!(m.contains("LZWDecode, which is not supported"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn png_predictors_are_undone() {
        // Two rows of 3 bytes, filtered Up then Sub/Avg/Paeth, as cross-reference streams are written.
        let rows = [[1u8, 0, 10], [1, 0, 20], [2, 1, 5], [0, 0, 0]];
        let params: Dict = vec![
            (b"Predictor".to_vec(), Obj::Int(12)),
            (b"Columns".to_vec(), Obj::Int(3)),
        ];
        let mut encoded = Vec::new();
        let mut previous = [0u8; 3];
        for (n, row) in rows.iter().enumerate() {
            let kind = (n % 5) as u8;
            encoded.push(kind);
            for i in 0..3 {
                let left = if i > 0 { row[i - 1] } else { 0 };
                let up_left = if i > 0 { previous[i - 1] } else { 0 };
                let predicted = match kind {
                    0 => 0,
                    1 => left,
                    2 => previous[i],
                    3 => ((u16::from(left) + u16::from(previous[i])) / 2) as u8,
                    _ => paeth(left, previous[i], up_left),
                };
                encoded.push(row[i].wrapping_sub(predicted));
            }
            previous = *row;
        }
        assert_eq!(unpredict(encoded.clone(), &params).unwrap(), rows.concat());
        assert!(unpredict(encoded[..5].to_vec(), &params).is_err());
        let tiff = vec![(b"Predictor".to_vec(), Obj::Int(2))];
        assert!(unpredict(encoded, &tiff).is_err());
    }

    #[test]
    fn object_streams_that_need_themselves_are_refused() {
        // Object 5's /Length is object 6, which lives in object stream 5.
        let body = "<< /Type /Page /Parent 2 0 R >>";
        let header = "3 0 6 32 ";
        let content = format!("{header}{body} 40");
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in [CATALOG, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>"]
            .iter()
            .enumerate()
        {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let stm_at = out.len();
        out.extend_from_slice(
            format!(
                "5 0 obj\n<< /Type /ObjStm /N 2 /First {} /Length 6 0 R >>\nstream\n{content}\nendstream\nendobj\n",
                header.len()
            )
            .as_bytes(),
        );
        let xref_at = out.len();
        let row = |kind: u8, a: usize, b: u8| [&[kind][..], &(a as u32).to_be_bytes()[1..], &[b]].concat();
        let rows = [
            row(0, 0, 0),
            row(1, offsets[0], 0),
            row(1, offsets[1], 0),
            row(2, 5, 0),
            row(0, 0, 0),
            row(1, stm_at, 0),
            row(2, 5, 1),
            row(1, xref_at, 0),
        ]
        .concat();
        out.extend_from_slice(
            format!(
                "7 0 obj\n<< /Type /XRef /Size 8 /W [1 3 1] /Root 1 0 R /Length {} >>\nstream\n",
                rows.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&rows);
        out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
        let ((nodes, _, _), result) = work(&out, &limits());
        match result {
            Err(PdfError::Unreadable(m)) => assert!(m.contains("needs itself"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(nodes < 10, "{nodes}");
        // An object stream listed as being inside another object stream is not an object stream.
        let nested = String::from_utf8_lossy(&out)
            .replace("/Length 6 0 R", "/Length 40   ")
            .into_bytes();
        let mut nested = nested;
        let at = nested.len() - rows.len() - format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").len();
        nested[at + 5 * 5] = 2; // object 5 "in" object stream 5
        assert!(matches!(inspect(&nested, &limits()), Err(PdfError::Unreadable(_))));
    }

    /// Random damage to valid files never panics, and every answer comes quickly.
    #[test]
    fn damaged_files_never_panic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let signed = sign_fake(&pdf(&TWO_PAGES), None);
        let seeds = [pdf(&TWO_PAGES), pdf_with_object_stream(&TWO_PAGES), signed];
        let started = std::time::Instant::now();
        for round in 0..3000 {
            let mut file = seeds[round % seeds.len()].clone();
            match next() % 4 {
                0 => file.truncate((next() as usize) % file.len()),
                1 => {
                    for _ in 0..1 + next() % 8 {
                        let i = (next() as usize) % file.len();
                        file[i] = next() as u8;
                    }
                }
                2 => {
                    let i = (next() as usize) % file.len();
                    let digit = b'0' + (next() % 10) as u8;
                    file.insert(i, digit);
                }
                _ => {
                    let i = (next() as usize) % file.len();
                    file.remove(i);
                }
            }
            let _ = inspect(&file, &limits());
            if let Ok(p) = prepare(&file, Kind::Signature { signing_time: 0 }, None, 16, &limits()) {
                let _ = p.finish(&[1; 16]);
            }
            let _ = add_dss(&file, &[vec![1]], &[], &[], &limits());
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
