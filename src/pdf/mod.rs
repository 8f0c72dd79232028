//! PDF as the signing service needs it: a lazy reader of what signing and verification look at, and an
//! incremental writer that appends a revision to an untouched original. PAdES (`documents::pades`) is built on it.
//! Of signatures this module knows what ISO 32000 says (signature fields and dictionaries, DocMDP, the DSS entry)
//! and it refuses what cannot be signed at all (encrypted files, XFA forms); keys, CMS, the placeholder's size and
//! what a visible signature says are PAdES's.
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
//!
//! One job a file: `object` (the object model), `lexer` (bytes to objects), `budget` (the work one reading may
//! do), `reader` (a document: objects by reference, object streams), `xref` (the cross-reference chain),
//! `filters` (stream decoding), `pages`, `fields` and `analysis` (the walks of the page tree, the form and the
//! catalog), `diff` (what the revisions after a signature change), `serialize` (objects to bytes), `writer` (the
//! incremental update) and `appearance` (the content of a visible signature's box).

use crate::i18n::Text;
use crate::text;

mod analysis;
mod appearance;
mod budget;
mod diff;
mod fields;
mod filters;
mod lexer;
mod object;
mod pages;
mod reader;
mod serialize;
mod writer;
mod xref;

pub use analysis::{inspect, inspect_field, EmptySignatureField, PdfInfo};
pub use diff::{changes_after, Change, Changes};
pub use fields::{signature_fields, SignatureField};
pub use pages::PageGeometry;

pub(crate) use analysis::{AcroForm, Analysis};
pub(crate) use appearance::{checked_rect, fmt_num, framed_text};
pub(crate) use fields::{FieldTarget, Widget};
pub(crate) use object::{get, set, Dict, Obj, Ref};
pub(crate) use pages::Page;
pub(crate) use reader::Doc;
pub(crate) use serialize::{serialize, stream_object};
pub(crate) use writer::{Increment, SignatureDict};

/// Default of [`Limits::max_bytes`]: 100 MiB.
pub const DEFAULT_MAX_BYTES: usize = 100 * 1024 * 1024;
/// Default of [`Limits::max_objects`].
pub const DEFAULT_MAX_OBJECTS: usize = 500_000;
/// How deeply arrays and dictionaries may nest in an object the reader parses.
pub const MAX_NESTING: usize = 64;

// The defaults of the reader's work budgets are those of the `parsers` settings.
pub use crate::config::{
    DEFAULT_MAX_DECODED_STREAM, DEFAULT_MAX_DECODED_TOTAL, DEFAULT_MAX_DEPTH, DEFAULT_MAX_NODES,
    DEFAULT_MAX_XREF_SECTIONS, DEFAULT_SCAN_FACTOR,
};

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
    /// Larger than [`Limits::max_bytes`].
    #[error("{}", self.text())]
    TooLarge { size: usize, max: usize },
    /// Its cross-reference data declares more than [`Limits::max_objects`].
    #[error("{}", self.text())]
    TooManyObjects { count: usize, max: usize },
    /// Not a PDF, or damaged: why, in words.
    #[error("{}", self.text())]
    Unreadable(Text),
    /// Reading it would exceed a work budget of the [`Limits`]: which, in words.
    #[error("{}", self.text())]
    TooComplex(Text),
    /// Its trailer has `/Encrypt`.
    #[error("{}", self.text())]
    Encrypted,
    /// Its form is an XFA form.
    #[error("{}", self.text())]
    Xfa,
    /// Certified with DocMDP level 1: a signature would be a change.
    #[error("{}", self.text())]
    CertifiedNoChanges,
    /// The CMS does not fit the `/Contents` placeholder.
    #[error("{}", self.text())]
    ContentsTooSmall { needed: usize, available: usize },
    /// A placeholder of 0 bytes or above the maximum was asked for.
    #[error("The space to reserve for the signature must be between 1 and {max} bytes, not {requested}.")]
    InvalidPlaceholder { requested: usize, max: usize },
    /// A visible signature on a page the PDF does not have.
    #[error("{}", self.text())]
    NoSuchPage { page: usize, pages: usize },
    /// A visible signature's rectangle that cannot be used: why, in words.
    #[error("{}", self.text())]
    InvalidAppearance(Text),
    /// A signing time outside the years 0 to 9999.
    #[error("The signing time {0} (Unix seconds) cannot be written as a PDF date.")]
    InvalidTime(i64),
    /// The PDF has no field of the name the signature was asked to go into.
    #[error("{}", self.text())]
    NoSuchField(String),
    /// The named field is not a signature field (another type, or a group of fields).
    #[error("{}", self.text())]
    NotSignatureField(String),
    /// The named signature field holds a signature already.
    #[error("{}", self.text())]
    FieldSigned(String),
    /// The named empty signature field cannot be filled this way: why, in words.
    #[error("{}", self.text())]
    UnusableField { name: String, reason: Text },
}

impl PdfError {
    /// Whether the refusal is about the signature field a request named, not about the document as a whole.
    pub fn is_about_field(&self) -> bool {
        matches!(
            self,
            PdfError::NoSuchField(_)
                | PdfError::NotSignatureField(_)
                | PdfError::FieldSigned(_)
                | PdfError::UnusableField { .. }
        )
    }

    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            PdfError::TooLarge { size, max } => text!("error.pdf.pdf_bytes_files_up_bytes", size, max),
            PdfError::TooManyObjects { count, max } => text!("error.pdf.pdf_declares_objects_files_with", count, max),
            PdfError::Unreadable(f0) => text!("error.pdf.file_cannot_read_as_pdf", reason => f0),
            PdfError::TooComplex(f0) => text!("error.pdf.pdf_too_complex_read_here", reason => f0),
            PdfError::Encrypted => text!("error.pdf.pdf_encrypted_or_password_protected"),
            PdfError::Xfa => text!("error.pdf.smart_pdf_forms_cannot_signed"),
            PdfError::CertifiedNoChanges => text!("error.pdf.pdf_certified_by_author_with"),
            PdfError::ContentsTooSmall { needed, available } => {
                text!("error.pdf.signature_bytes_but_only_bytes", needed, available)
            }
            PdfError::InvalidPlaceholder { requested, max } => text!("error.pdf.invalid_placeholder", requested, max),
            PdfError::NoSuchPage { page, pages } => text!("error.pdf.pdf_has_pages_there_no", pages, page),
            PdfError::InvalidAppearance(f0) => text!("error.pdf.signature_rectangle_cannot_used", reason => f0),
            PdfError::InvalidTime(time) => text!("error.pdf.invalid_time", time),
            PdfError::NoSuchField(name) => text!("error.pdf.no_such_field", name),
            PdfError::NotSignatureField(name) => text!("error.pdf.not_signature_field", name),
            PdfError::FieldSigned(name) => text!("error.pdf.field_signed", name),
            PdfError::UnusableField { name, reason } => text!("error.pdf.unusable_field", name, reason => reason),
        }
    }
}

/// Why reading failed, in words: the file is damaged ([`PdfError::Unreadable`]) or reading it would take more
/// work than the [`Limits`] allow ([`PdfError::TooComplex`]).
#[derive(Debug)]
pub(crate) enum Bad {
    Unreadable(Text),
    OverBudget(Text),
}

impl From<Bad> for PdfError {
    fn from(b: Bad) -> PdfError {
        match b {
            Bad::Unreadable(why) => PdfError::Unreadable(why),
            Bad::OverBudget(why) => PdfError::TooComplex(why),
        }
    }
}

/// A refusal of a damaged file, with why.
fn bad<T>(msg: Text) -> Result<T, Bad> {
    Err(Bad::Unreadable(msg))
}

#[cfg(test)]
pub(crate) mod testing;
