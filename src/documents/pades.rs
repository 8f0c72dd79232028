//! PAdES: a PDF signed by an incremental update around a CMS made elsewhere, on top of the PDF reader and writer
//! of `crate::pdf`.
//!
//! The signer's key is in the HSM, so nothing here signs. [`prepare`] appends to the untouched original a revision
//! with a signature dictionary whose `/Contents` is a zero-filled placeholder, a signature field (invisible, or
//! visible with an appearance in a rectangle of a page) with the page's updated `/Annots` — or, instead of a new
//! field, the document's empty signature field that the request names, filled — the AcroForm with `/SigFlags 3`,
//! and a cross-reference section of the kind the original's last one is, chained with `/Prev`.
//! [`Prepared::digest`] hashes what the `/ByteRange` covers (all but the `/Contents` hex string); the caller makes
//! the CMS over that digest (`documents::cms`, detached, no signing-time; or an RFC 3161 token for a document
//! timestamp) and [`Prepared::finish`] writes it into the placeholder. [`add_dss`] appends the long-term validation
//! data (`/DSS` with certificates, CRLs and OCSP responses) by a further incremental update. Earlier revisions, and
//! so earlier signatures, stay byte for byte as they were.
//!
//! Reading is bounded by the [`Limits`] (see `crate::pdf` on hostile input). These functions are CPU-bound and
//! synchronous: callers on the async runtime run them with `spawn_blocking`.

use std::sync::Arc;

use super::Output;
use crate::hsm::{HashAlg, Hasher};
use crate::pdf::{
    checked_rect, fmt_num, framed_text, get, serialize, set, stream_object, AcroForm, Analysis, Dict, Doc, FieldTarget,
    Increment, Obj, Page, Ref, SignatureDict, Widget,
};

// What PAdES's functions take and return is the PDF module's; named here too, so a caller of PAdES needs one path.
pub use crate::pdf::{inspect, Limits, PdfError};

/// The largest `/Contents` placeholder [`prepare`] reserves, in bytes of CMS (twice that in hex digits): far above a
/// CAdES signature with its chain and timestamps (revocation data goes to the DSS, not into the CMS).
pub const MAX_PLACEHOLDER_BYTES: usize = 4 * 1024 * 1024;
/// Annotation flags of the signature widget: Print (4) + Locked (128).
const WIDGET_FLAGS: i64 = 132;
/// `/SigFlags`: SignaturesExist (1) + AppendOnly (2).
const SIG_FLAGS: i64 = 3;

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

/// Where the signature goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// A new signature field, invisible: a zero-size widget on page 1.
    Invisible,
    /// A new signature field shown in a rectangle of a page.
    Visible(Appearance),
    /// The document's empty signature field `name` (fully qualified, `parent.child`), filled: no field or widget
    /// is added. When its widget has a rectangle on a page, the signature is shown there with `signer` (Helvetica,
    /// as in [`Appearance::name`]) and `date`; the field's rectangle is the rectangle, none other can be asked for.
    /// A field with a `/Lock` dictionary is filled and the lock recorded in the signature (a FieldMDP `/Reference`),
    /// so validators hold later revisions to it. Only for [`Kind::Signature`].
    Field { name: String, signer: String, date: String },
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

/// A PDF with its new revision laid out and a zero-filled `/Contents` placeholder waiting for the CMS: the original
/// (shared, never copied) and the revision that follows it, which holds the placeholder.
///
/// [`prepare`] is deterministic: the same inputs give the same bytes and the same digest, so a signing job that
/// waits for the holder's authorisation may keep the inputs and prepare again.
#[derive(Debug, Clone)]
pub struct Prepared {
    original: Arc<Vec<u8>>,
    /// What follows the original: the new revision, the signature dictionary first.
    tail: Vec<u8>,
    /// The `/Contents` hex string, angle brackets included, counted from the file's start: the one gap in the byte
    /// range, always in the tail.
    contents: std::ops::Range<usize>,
    field_name: String,
}

impl Prepared {
    /// `[0, a, b, len - b]`: offsets and lengths of the two signed parts, as written in `/ByteRange`.
    pub fn byte_range(&self) -> [u64; 4] {
        let len = (self.original.len() + self.tail.len()) as u64;
        let (a, b) = (self.contents.start as u64, self.contents.end as u64);
        [0, a, b, len - b]
    }

    /// What the signature covers, in order: the original, then the tail before and after the `/Contents` string.
    pub fn signed_parts(&self) -> [&[u8]; 3] {
        let at = self.contents.start - self.original.len();
        let (before, rest) = self.tail.split_at(at);
        let after = rest.get(self.contents.len()..).unwrap_or_default();
        [&self.original, before, after]
    }

    /// The digest of the byte range: the `message-digest` of the CMS, or what a document timestamp stamps.
    pub fn digest(&self, hash: HashAlg) -> Vec<u8> {
        let mut hasher = hash.hasher();
        hasher.update(&self.original);
        self.digest_after(hasher)
    }

    /// As [`Prepared::digest`], continuing `original`: a digest already fed with the whole original (and nothing
    /// else), as computed while the document arrived, so that the original is not read a second time.
    pub fn digest_after(&self, original: Hasher) -> Vec<u8> {
        let mut hasher = original;
        let [_, before, after] = self.signed_parts();
        hasher.update(before);
        hasher.update(after);
        hasher.finish()
    }

    /// The room reserved for the CMS, in bytes.
    pub fn placeholder_bytes(&self) -> usize {
        (self.contents.len() - 2) / 2
    }

    /// The name (`/T`) of the new signature field.
    pub fn field_name(&self) -> &str {
        &self.field_name
    }

    /// The whole prepared file, placeholder included, in one piece (what a test or a debugging tool may want to look
    /// at; a copy).
    pub fn file(&self) -> Vec<u8> {
        [self.original.as_slice(), &self.tail].concat()
    }

    /// The signed PDF in one piece: `cms_der` (a DER ContentInfo) hex-encoded into the placeholder, zero-padded.
    pub fn finish(self, cms_der: &[u8]) -> Result<Vec<u8>, PdfError> {
        Ok(self.finish_parts(cms_der)?.into_vec())
    }

    /// As [`Prepared::finish`], the original not copied: the signed file as the original and its tail.
    pub fn finish_parts(mut self, cms_der: &[u8]) -> Result<Output, PdfError> {
        let available = self.placeholder_bytes();
        if cms_der.len() > available {
            return Err(PdfError::ContentsTooSmall {
                needed: cms_der.len(),
                available,
            });
        }
        let start = self.contents.start - self.original.len() + 1;
        let slot = &mut self.tail[start..start + 2 * cms_der.len()];
        // The lengths match by construction, so this cannot fail.
        hex::encode_to_slice(cms_der, slot)
            .map_err(|e| PdfError::Unreadable(crate::text!("error.http.detail", detail = e)))?;
        Ok(Output {
            head: self.original,
            tail: self.tail,
        })
    }
}

/// As [`prepare_shared`], for a PDF the caller holds as a slice: it is copied once into the result.
pub fn prepare(
    pdf: &[u8],
    kind: Kind,
    placement: &Placement,
    placeholder_bytes: usize,
    limits: &Limits,
) -> Result<Prepared, PdfError> {
    prepare_shared(Arc::new(pdf.to_vec()), kind, placement, placeholder_bytes, limits)
}

/// Lays out the new revision with the signature where `placement` says and a `placeholder_bytes` placeholder,
/// after the PDF, which the result shares (it is not copied).
///
/// A PDF certified with DocMDP level 1 takes no signature ([`PdfError::CertifiedNoChanges`]); a document timestamp
/// is allowed there (PAdES and ISO 32000-2 do not count DSS and document timestamp updates as changes). Levels 2
/// and 3 allow signing, a prepared field as well as a new one. A named field must be an empty signature field
/// ([`PdfError::NoSuchField`], [`PdfError::NotSignatureField`], [`PdfError::FieldSigned`]) shown in one place at
/// most, and never takes a document timestamp ([`PdfError::UnusableField`]).
pub fn prepare_shared(
    pdf: Arc<Vec<u8>>,
    kind: Kind,
    placement: &Placement,
    placeholder_bytes: usize,
    limits: &Limits,
) -> Result<Prepared, PdfError> {
    let modified = check_request(kind, placement, placeholder_bytes)?;
    let doc = Doc::open(&pdf, limits)?;
    let analysis = Analysis::of(&doc)?;
    if analysis.certification == Some(1) && matches!(kind, Kind::Signature { .. }) {
        return Err(PdfError::CertifiedNoChanges);
    }
    let mut inc = Increment::new(&doc);
    let sig_ref = inc.alloc();
    let mut catalog = analysis.catalog.clone();
    let (field_name, transforms, version_raised, form_in_catalog) = match placement {
        Placement::Field { name, signer, date } => {
            let target = analysis.field(&doc, name)?;
            let reference = fill_field(&doc, &analysis, &mut inc, target, sig_ref, (signer, date))?;
            let version_raised = raise_version(&doc, &mut catalog);
            let form_in_catalog = update_form(&doc, &analysis, &mut inc, &mut catalog, None)?;
            (name.clone(), reference, version_raised, form_in_catalog)
        }
        Placement::Invisible | Placement::Visible(_) => {
            let appearance = match placement {
                Placement::Visible(a) => Some(a),
                _ => None,
            };
            let page = target_page(&analysis, appearance)?;
            let widget_ref = inc.alloc();
            let field_name = analysis.new_field_name();
            let widget = widget(&mut inc, page, &field_name, sig_ref, appearance)?;
            inc.put(widget_ref, serialize(&Obj::Dict(widget)));
            add_annotation(&doc, &mut inc, page.reference, widget_ref)?;
            let version_raised = raise_version(&doc, &mut catalog);
            let form_in_catalog = update_form(&doc, &analysis, &mut inc, &mut catalog, Some(widget_ref))?;
            (field_name, None, version_raised, form_in_catalog)
        }
    };
    if version_raised || form_in_catalog {
        inc.put(analysis.catalog_ref, serialize(&Obj::Dict(catalog)));
    }

    let signature = SignatureDict {
        reference: sig_ref,
        modified,
        placeholder_bytes,
        doc_timestamp: kind == Kind::DocumentTimestamp,
        transforms,
    };
    let (tail, contents) = inc.finish_signed(signature)?;
    drop(doc);
    Ok(Prepared {
        original: pdf,
        tail,
        contents,
        field_name,
    })
}

/// What is refused before the file is read: a placeholder out of range, a signing time that is no PDF date, a
/// visible document timestamp or one into a named field. Returns the signature's `/M`, none for a document
/// timestamp.
fn check_request(kind: Kind, placement: &Placement, placeholder_bytes: usize) -> Result<Option<String>, PdfError> {
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
    match (kind, placement) {
        (Kind::DocumentTimestamp, Placement::Visible(_)) => Err(PdfError::InvalidAppearance(crate::text!(
            "error.pdf.timestamp_invisible"
        ))),
        (Kind::DocumentTimestamp, Placement::Field { name, .. }) => Err(PdfError::UnusableField {
            name: name.clone(),
            reason: crate::text!("error.pdf.field_timestamp"),
        }),
        _ => Ok(modified),
    }
}

/// The page the widget goes on: the appearance's, or page 1 for an invisible signature.
fn target_page<'a>(analysis: &'a Analysis, appearance: Option<&Appearance>) -> Result<&'a Page, PdfError> {
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
    analysis.pages.get(page_index).ok_or(PdfError::NoSuchPage {
        page: page_index + 1,
        pages: analysis.pages.len(),
    })
}

/// The signature field's widget on `page`, named `field_name`, its value the signature dictionary `sig_ref`. A
/// visible one gets a rectangle and its appearance, which is added to `inc`; an invisible one a zero-size
/// rectangle.
fn widget(
    inc: &mut Increment,
    page: &Page,
    field_name: &str,
    sig_ref: Ref,
    appearance: Option<&Appearance>,
) -> Result<Dict, PdfError> {
    let mut widget = vec![
        (b"Type".to_vec(), Obj::name("Annot")),
        (b"Subtype".to_vec(), Obj::name("Widget")),
        (b"FT".to_vec(), Obj::name("Sig")),
        (b"T".to_vec(), Obj::Str(field_name.as_bytes().to_vec())),
        (b"V".to_vec(), Obj::Ref(sig_ref)),
        (b"F".to_vec(), Obj::Int(WIDGET_FLAGS)),
        (b"P".to_vec(), Obj::Ref(page.reference)),
    ];
    match appearance {
        Some(a) => {
            let rect = checked_rect(a.rect, &page.geometry)?;
            let ap_ref = inc.alloc();
            inc.put(
                ap_ref,
                visible_appearance((&a.name, &a.date), rect, page.geometry.rotate),
            );
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
    Ok(widget)
}

/// The appearance of a visible signature: a thin frame, "Semnat digital / Digitally signed", the signer's name
/// larger, the date; Helvetica sized to fit, turned upright on a rotated page.
fn visible_appearance((name, date): (&str, &str), rect: [f64; 4], rotate: u16) -> Vec<u8> {
    let lines = [("Semnat digital / Digitally signed", 0.8), (name, 1.2), (date, 0.8)];
    framed_text(&lines, rect, rotate)
}

/// Fills the empty signature field `target` with the signature dictionary `sig_ref` (its `/V`) and, when its widget
/// has a rectangle on a page, shows the signature there with the signer's name and the date. Returns the
/// signature's `/Reference` when the field has a `/Lock` dictionary.
fn fill_field(
    doc: &Doc,
    analysis: &Analysis,
    inc: &mut Increment,
    target: &FieldTarget,
    sig_ref: Ref,
    text: (&str, &str),
) -> Result<Option<Obj>, PdfError> {
    let (field_ref, mut field) = (target.field.0, target.field.1.clone());
    set(&mut field, b"V", Obj::Ref(sig_ref));
    let shown = match (target.page, target.rect) {
        (Some(i), Some(rect)) => analysis.pages.get(i).map(|page| (page, rect)),
        _ => None,
    };
    if let Some((page, rect)) = shown {
        match &target.widget {
            Widget::Merged => show(doc, inc, &mut field, page, rect, text)?,
            Widget::Kid(widget_ref, widget) => {
                let mut widget = widget.clone();
                show(doc, inc, &mut widget, page, rect, text)?;
                inc.put(*widget_ref, serialize(&Obj::Dict(widget)));
            }
            Widget::None => {}
        }
    }
    inc.put(field_ref, serialize(&Obj::Dict(field)));
    lock_reference(doc, &target.field.1, analysis.catalog_ref)
}

/// Gives a prepared field's widget the signature's appearance in its own rectangle: the author placed and sized it,
/// so it is taken as it is (no minimum size, as a new rectangle has). Its other entries (flags, border) stay.
fn show(
    doc: &Doc,
    inc: &mut Increment,
    widget: &mut Dict,
    page: &Page,
    rect: [f64; 4],
    text: (&str, &str),
) -> Result<(), PdfError> {
    let rotate = page.geometry.rotate;
    let ap_ref = inc.alloc();
    inc.put(ap_ref, visible_appearance(text, rect, rotate));
    set(widget, b"AP", Obj::Dict(vec![(b"N".to_vec(), Obj::Ref(ap_ref))]));
    if rotate != 0 {
        // The appearance is turned with the page; a viewer learns it from /MK /R.
        let mut mk = match get(widget, b"MK") {
            Some(mk) => match doc.deref(mk)? {
                Obj::Dict(d) => d,
                _ => Dict::new(),
            },
            None => Dict::new(),
        };
        set(&mut mk, b"R", Obj::Int(i64::from(rotate)));
        set(widget, b"MK", Obj::Dict(mk));
    }
    Ok(())
}

/// The signature's `/Reference` for a field with a well-formed `/Lock` dictionary (ISO 32000-1 §12.7.4.5 and
/// §12.8.2.4): the FieldMDP transform with the lock's `/Action` and `/Fields`, and its `/P` (ISO 32000-2) as Acrobat
/// and pyHanko write it, over the catalog. Validators then refuse later changes to the locked fields. A lock
/// without a valid `/Action` locks nothing and is left out.
fn lock_reference(doc: &Doc, field: &Dict, catalog: Ref) -> Result<Option<Obj>, PdfError> {
    let Some(lock) = get(field, b"Lock") else {
        return Ok(None);
    };
    let Obj::Dict(lock) = doc.deref(lock)? else {
        return Ok(None);
    };
    let action = match get(&lock, b"Action") {
        Some(Obj::Name(a)) if [&b"All"[..], b"Include", b"Exclude"].contains(&a.as_slice()) => Obj::Name(a.clone()),
        _ => return Ok(None),
    };
    let mut params = vec![
        (b"Type".to_vec(), Obj::name("TransformParams")),
        (b"Action".to_vec(), action),
    ];
    for key in [&b"Fields"[..], b"P"] {
        if let Some(value) = get(&lock, key) {
            params.push((key.to_vec(), doc.deref(value)?));
        }
    }
    params.push((b"V".to_vec(), Obj::name("1.2")));
    let sig_ref = vec![
        (b"Type".to_vec(), Obj::name("SigRef")),
        (b"TransformMethod".to_vec(), Obj::name("FieldMDP")),
        (b"TransformParams".to_vec(), Obj::Dict(params)),
        (b"Data".to_vec(), Obj::Ref(catalog)),
    ];
    Ok(Some(Obj::Array(vec![Obj::Dict(sig_ref)])))
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
    let mut catalog = analysis.catalog.clone();
    if catalog_changes {
        set(&mut catalog, b"DSS", Obj::Ref(dss_ref));
    }
    if raise_version(&doc, &mut catalog) || catalog_changes {
        inc.put(analysis.catalog_ref, serialize(&Obj::Dict(catalog)));
    }
    inc.finish()
}

/// Puts the widget in the page's `/Annots`: rewrites the annotation array if it is an object of its own, else the
/// page.
fn add_annotation(doc: &Doc, inc: &mut Increment, page_ref: Ref, widget: Ref) -> Result<(), PdfError> {
    let mut page = match doc.fetch(page_ref, 0)? {
        (Obj::Dict(d), None) => d,
        _ => return Err(PdfError::Unreadable(crate::text!("error.pdf.page_not_dictionary"))),
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

/// The version a signed file declares at least: PAdES (ETSI EN 319 142-1) builds on ISO 32000-1, PDF 1.7.
const MIN_VERSION: (u8, u8) = (1, 7);

/// A `major.minor` version, as the header (`%PDF-1.4`) or the catalog's `/Version` (`/1.6`) writes it.
fn parse_version(text: &[u8]) -> Option<(u8, u8)> {
    match text {
        [major, b'.', minor, ..] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            Some((major - b'0', minor - b'0'))
        }
        _ => None,
    }
}

/// Sets the catalog's `/Version` to 1.7 when the file declares less (the header, or the catalog's `/Version` where
/// it is higher: ISO 32000-1 §7.5.2); an incremental update cannot change the header. Returns whether it changed.
fn raise_version(doc: &Doc, catalog: &mut Dict) -> bool {
    let header = parse_version(doc.header_version());
    let declared = match get(catalog, b"Version") {
        Some(Obj::Name(n)) => parse_version(n),
        _ => None,
    };
    let version = header.max(declared).unwrap_or((1, 0));
    if version >= MIN_VERSION {
        return false;
    }
    set(catalog, b"Version", Obj::name("1.7"));
    true
}

/// Adds the new `field` (if any) to the AcroForm's `/Fields` and sets `/SigFlags 3`, rewriting as little as
/// possible: the `/Fields` array if it is an object of its own, the AcroForm if it is, else the AcroForm entry of
/// `catalog`, which the caller writes (returns `true` then).
fn update_form(
    doc: &Doc,
    analysis: &Analysis,
    inc: &mut Increment,
    catalog: &mut Dict,
    field: Option<Ref>,
) -> Result<bool, PdfError> {
    let (mut form, place) = match &analysis.acroform {
        AcroForm::None => (Dict::new(), None),
        AcroForm::Direct(d) => (d.clone(), None),
        AcroForm::Indirect(r, d) => (d.clone(), Some(*r)),
    };
    let mut form_changed = false;
    if let Some(field) = field {
        form_changed = add_to_fields(doc, inc, &mut form, field)?;
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
        return Ok(false);
    }
    match place {
        Some(r) => {
            inc.put(r, serialize(&Obj::Dict(form)));
            Ok(false)
        }
        None => {
            let value = match analysis.acroform {
                AcroForm::Direct(_) => Obj::Dict(form),
                _ => {
                    let r = inc.alloc();
                    inc.put(r, serialize(&Obj::Dict(form)));
                    Obj::Ref(r)
                }
            };
            set(catalog, b"AcroForm", value);
            Ok(true)
        }
    }
}

/// Adds `field` to the `/Fields` of `form`: rewrites the array if it is an object of its own, else `form` (returns
/// `true` then).
fn add_to_fields(doc: &Doc, inc: &mut Increment, form: &mut Dict, field: Ref) -> Result<bool, PdfError> {
    let fields_object = match get(form, b"Fields") {
        Some(Obj::Ref(r)) => match doc.fetch(*r, 0)? {
            (Obj::Array(fields), None) => Some((*r, fields)),
            _ => None,
        },
        _ => None,
    };
    match (fields_object, get(form, b"Fields")) {
        (Some((r, mut fields)), _) => {
            fields.push(Obj::Ref(field));
            inc.put(r, serialize(&Obj::Array(fields)));
            Ok(false)
        }
        (None, Some(Obj::Array(a))) => {
            let mut fields = a.clone();
            fields.push(Obj::Ref(field));
            set(form, b"Fields", Obj::Array(fields));
            Ok(true)
        }
        (None, _) => {
            set(form, b"Fields", Obj::Array(vec![Obj::Ref(field)]));
            Ok(true)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::testing::{fan_out_fields, limits, pdf, pdf_with_object_stream, CERTIFIED_NO_CHANGES, TWO_PAGES};

    fn sign_fake(pdf: &[u8], appearance: Option<&Appearance>) -> Vec<u8> {
        let placement = match appearance {
            Some(a) => Placement::Visible(a.clone()),
            None => Placement::Invisible,
        };
        sign_into(pdf, &placement).unwrap()
    }

    fn sign_into(pdf: &[u8], placement: &Placement) -> Result<Vec<u8>, PdfError> {
        let kind = Kind::Signature {
            signing_time: 1_767_225_600,
        };
        let prepared = prepare(pdf, kind, placement, 64, &limits())?;
        prepared.finish(&[0x30, 0x03, 0x02, 0x01, 0x01])
    }

    #[test]
    fn the_byte_range_covers_everything_but_the_contents_string() {
        let original = pdf(&TWO_PAGES);
        let prepared = prepare(
            &original,
            Kind::Signature {
                signing_time: 1_767_225_600,
            },
            &Placement::Invisible,
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
        let [head, p1, p2] = prepared.signed_parts();
        assert_eq!(head, &original[..], "the original comes first, untouched");
        assert_eq!((head.len() + p1.len()) as u64, a);
        assert_eq!(p2.len() as u64, c);
        let whole = [head, p1, p2].concat();
        assert_eq!(whole, [&file[..a as usize], &file[b as usize..]].concat());
        assert_eq!(prepared.digest(HashAlg::Sha256), HashAlg::Sha256.digest(&whole));
        let mut fed = HashAlg::Sha256.hasher();
        fed.update(&original);
        assert_eq!(
            prepared.digest_after(fed),
            HashAlg::Sha256.digest(&whole),
            "continued from the original's"
        );

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
    fn what_later_revisions_change_is_sorted_as_docmdp_counts_it() {
        use crate::pdf::{changes_after, Change};
        let appearance = Appearance {
            page: 1,
            rect: [100.0, 100.0, 300.0, 160.0],
            name: "Ana".into(),
            date: "2026-01-01".into(),
        };
        for original in [pdf(&TWO_PAGES), pdf_with_object_stream(&TWO_PAGES)] {
            let once = sign_fake(&original, None);
            let level = |file: &[u8], end: usize| changes_after(file, end, &limits()).unwrap();
            assert_eq!(level(&once, once.len()).level, Change::None);
            let twice = sign_fake(&once, Some(&appearance));
            let after_once = level(&twice, once.len());
            assert_eq!((after_once.level, after_once.modified()), (Change::Signatures, false));
            let with_dss = add_dss(&twice, &[b"cert".to_vec()], &[b"crl".to_vec()], &[], &limits()).unwrap();
            assert_eq!(level(&with_dss, twice.len()).level, Change::ValidationData);
            let stamped = prepare(&with_dss, Kind::DocumentTimestamp, &Placement::Invisible, 64, &limits())
                .unwrap()
                .finish(&[0x30, 0x03, 0x02, 0x01, 0x01])
                .unwrap();
            assert_eq!(level(&stamped, with_dss.len()).level, Change::ValidationData);
            assert_eq!(level(&stamped, once.len()).level, Change::Signatures);

            // A catalog that gains an action to run on opening: not what the signer saw.
            let doc = Doc::open(&stamped, &limits()).unwrap();
            let analysis = Analysis::of(&doc).unwrap();
            let mut inc = Increment::new(&doc);
            let mut catalog = analysis.catalog.clone();
            set(&mut catalog, b"OpenAction", Obj::Array(vec![Obj::Int(0)]));
            inc.put(analysis.catalog_ref, serialize(&Obj::Dict(catalog)));
            let changed = inc.finish().unwrap();
            let after = level(&changed, once.len());
            assert_eq!((after.level, after.modified()), (Change::Other, true));
            assert!(
                after.examples[0].to_string().contains("the document catalog"),
                "{:?}",
                after.examples
            );
        }
        // Certified with no changes allowed: validation data is still fine.
        let certified = pdf(&CERTIFIED_NO_CHANGES);
        let with_dss = add_dss(&certified, &[b"cert".to_vec()], &[], &[], &limits()).unwrap();
        let after = changes_after(&with_dss, certified.len(), &limits()).unwrap();
        assert_eq!(
            (after.level, after.certification, after.modified()),
            (Change::ValidationData, Some(1), false)
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
        assert!(
            tail.contains("/ID [<0102> <") && !tail.contains("<0304>"),
            "the first /ID element stays, the second is new: {tail}"
        );
        let original = pdf_with_object_stream(&TWO_PAGES);
        let stream = sign_fake(&original, None);
        let tail = String::from_utf8_lossy(&stream[original.len()..]).into_owned();
        assert!(!tail.contains("\nxref\n"));
        assert!(tail.contains("/Type /XRef") && tail.contains("/W [1 "), "{tail}");
    }

    #[test]
    fn what_cannot_be_signed_is_refused_with_its_reason() {
        let certified = pdf(&CERTIFIED_NO_CHANGES);
        let sign = |pdf: &[u8]| {
            prepare(
                pdf,
                Kind::Signature { signing_time: 0 },
                &Placement::Invisible,
                10,
                &limits(),
            )
        };
        assert_eq!(sign(&certified).unwrap_err(), PdfError::CertifiedNoChanges);
        assert!(prepare(
            &certified,
            Kind::DocumentTimestamp,
            &Placement::Invisible,
            10,
            &limits()
        )
        .is_ok());
        let original = pdf(&TWO_PAGES);
        assert!(matches!(
            sign_with_page(&original, 3),
            Err(PdfError::NoSuchPage { page: 3, pages: 2 })
        ));
        assert!(matches!(
            prepare(&original, Kind::DocumentTimestamp, &Placement::Invisible, 0, &limits()),
            Err(PdfError::InvalidPlaceholder { .. })
        ));
        assert!(matches!(
            prepare(
                &original,
                Kind::DocumentTimestamp,
                &Placement::Invisible,
                MAX_PLACEHOLDER_BYTES + 1,
                &limits()
            ),
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
            &Placement::Visible(appearance),
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
            prepare(
                &original,
                Kind::Signature { signing_time: 0 },
                &Placement::Visible(a),
                10,
                &limits(),
            )
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
    fn the_signature_time_is_a_pdf_date_in_utc() {
        assert_eq!(pdf_date(0).unwrap(), "D:19700101000000+00'00'");
        assert_eq!(pdf_date(1_767_225_600 + 3661).unwrap(), "D:20260101010101+00'00'");
        assert_eq!(pdf_date(i64::MAX), Err(PdfError::InvalidTime(i64::MAX)));
    }

    /// A form of two pages: `Sig1` (field and widget merged, on page 1), `parent.child` (a field whose widget is a
    /// kid without `/P`, listed by the turned page 2), the text field `Name`, the signed field `Signed`, `Twice` (one
    /// field, two widgets) and `Locked` (invisible, locking `Name`).
    const FORM: [&str; 16] = [
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R 6 0 R 9 0 R 10 0 R 12 0 R 15 0 R] >> >>",
        "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 /MediaBox [0 0 595 842] >>",
        "<< /Type /Page /Parent 2 0 R /Annots [5 0 R 9 0 R 10 0 R 13 0 R 14 0 R 15 0 R] >>",
        "<< /Type /Page /Parent 2 0 R /Rotate 90 /Annots [8 0 R] >>",
        "<< /Type /Annot /Subtype /Widget /FT /Sig /T (Sig1) /F 4 /Rect [300 150 100 100] /P 3 0 R >>",
        "<< /FT /Sig /T (parent) /Kids [7 0 R] >>",
        "<< /T (child) /Parent 6 0 R /Kids [8 0 R] >>",
        "<< /Type /Annot /Subtype /Widget /Parent 7 0 R /Rect [10 10 110 60] /MK << /BG [1] >> >>",
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (Name) /V (Ana) /Rect [10 700 200 720] /P 3 0 R >>",
        "<< /Type /Annot /Subtype /Widget /FT /Sig /T (Signed) /V 11 0 R /Rect [0 0 0 0] /P 3 0 R >>",
        "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached >>",
        "<< /FT /Sig /T (Twice) /Kids [13 0 R 14 0 R] >>",
        "<< /Type /Annot /Subtype /Widget /Parent 12 0 R /Rect [10 10 60 60] /P 3 0 R >>",
        "<< /Type /Annot /Subtype /Widget /Parent 12 0 R /Rect [70 10 120 60] /P 3 0 R >>",
        "<< /Type /Annot /Subtype /Widget /FT /Sig /T <FEFF004C006F0063006B00650064> /Rect [0 0 0 0] /P 3 0 R /Lock 16 0 R >>",
        "<< /Type /SigFieldLock /Action /Include /Fields [(Name)] >>",
    ];

    /// Object `num` of a revision's text.
    fn object(revision: &str, num: u32) -> &str {
        let start = format!("\n{num} 0 obj\n");
        let body = revision
            .split(start.as_str())
            .nth(1)
            .unwrap_or_else(|| panic!("no object {num}: {revision}"));
        body.split("endobj").next().unwrap_or_default()
    }

    fn into(name: &str) -> Placement {
        Placement::Field {
            name: name.into(),
            signer: "Ana Pop".into(),
            date: "2026-01-01 12:00:00 UTC".into(),
        }
    }

    #[test]
    fn the_empty_signature_fields_are_listed_with_their_page_and_rectangle() {
        let info = inspect(&pdf(&FORM), &limits()).unwrap();
        assert_eq!(info.signatures, 1);
        let field = |name: &str, page, rect| crate::pdf::EmptySignatureField {
            name: name.into(),
            page,
            rect,
        };
        assert_eq!(
            info.signature_fields,
            [
                field("Sig1", Some(1), Some([100.0, 100.0, 300.0, 150.0])),
                field("parent.child", Some(2), Some([10.0, 10.0, 110.0, 60.0])),
                field("Locked", Some(1), None),
            ],
            "Twice (two widgets) cannot be filled, Signed is signed, Name is text"
        );
        assert!(inspect(&pdf(&TWO_PAGES), &limits())
            .unwrap()
            .signature_fields
            .is_empty());
    }

    #[test]
    fn a_named_field_is_filled_with_its_appearance_and_no_field_or_annotation_is_added() {
        let original = pdf(&FORM);
        let signed = sign_into(&original, &into("Sig1")).unwrap();
        let tail = String::from_utf8_lossy(&signed[original.len()..]).into_owned();
        let field = object(&tail, 5);
        assert!(field.contains("/T (Sig1)") && field.contains("/V 17 0 R"), "{field}");
        assert!(field.contains("/AP << /N 18 0 R >>"), "{field}");
        assert!(
            tail.contains("(Ana Pop) Tj") && tail.contains("(2026-01-01 12:00:00 UTC) Tj"),
            "{tail}"
        );
        assert!(
            tail.contains("/BBox [0 0 200 50]"),
            "the appearance fills the field's rectangle: {tail}"
        );
        assert!(!tail.contains("/Annots") && !tail.contains("(Signature1)"), "{tail}");
        assert!(tail.contains("/SigFlags 3"), "{tail}");
        assert!(!tail.contains("/Reference"), "no lock, no transform: {tail}");
        let info = inspect(&signed, &limits()).unwrap();
        assert_eq!(info.signatures, 2);
        assert_eq!(info.signature_fields.len(), 2, "parent.child and Locked are left");
        let names: Vec<String> = crate::pdf::signature_fields(&signed, &limits())
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["Sig1", "Signed"]);
        let prepared = prepare(
            &original,
            Kind::Signature { signing_time: 0 },
            &into("Sig1"),
            64,
            &limits(),
        )
        .unwrap();
        assert_eq!(prepared.field_name(), "Sig1");
    }

    #[test]
    fn a_kid_widget_without_its_page_is_found_through_the_annotations_and_turned_with_the_page() {
        let original = pdf(&FORM);
        let signed = sign_into(&original, &into("parent.child")).unwrap();
        let tail = String::from_utf8_lossy(&signed[original.len()..]).into_owned();
        let field = object(&tail, 7);
        assert!(field.contains("/V 17 0 R") && !field.contains("/AP"), "{field}");
        let widget = object(&tail, 8);
        assert!(widget.contains("/AP << /N 18 0 R >>"), "{widget}");
        assert!(widget.contains("/MK << /BG [1] /R 90 >>"), "{widget}");
        assert!(!widget.contains("/V "), "{widget}");
        assert!(!tail.contains("/Annots"), "{tail}");
    }

    #[test]
    fn a_locked_field_records_its_lock_and_an_invisible_one_gets_no_appearance() {
        let original = pdf(&FORM);
        let signed = sign_into(&original, &into("Locked")).unwrap();
        let tail = String::from_utf8_lossy(&signed[original.len()..]).into_owned();
        assert!(
            tail.contains(
                "/Reference [<< /Type /SigRef /TransformMethod /FieldMDP /TransformParams << /Type /TransformParams \
                 /Action /Include /Fields [(Name)] /V /1.2 >> /Data 1 0 R >>]"
            ),
            "{tail}"
        );
        assert!(!tail.contains("/AP") && !tail.contains(" Tj"), "{tail}");
    }

    #[test]
    fn a_field_that_cannot_take_the_signature_is_refused_with_its_reason() {
        let original = pdf(&FORM);
        let sign = |name: &str| sign_into(&original, &into(name)).unwrap_err();
        assert_eq!(sign("Nope"), PdfError::NoSuchField("Nope".into()));
        assert_eq!(sign("Name"), PdfError::NotSignatureField("Name".into()));
        assert_eq!(sign("parent"), PdfError::NotSignatureField("parent".into()));
        assert_eq!(sign("Signed"), PdfError::FieldSigned("Signed".into()));
        assert!(matches!(sign("Twice"), PdfError::UnusableField { name, .. } if name == "Twice"));
        assert_eq!(
            sign("Twice").to_string(),
            "The signature field Twice cannot be filled: it is shown in 2 places, and only a field shown in one place \
             is filled."
        );
        assert!(matches!(
            prepare(&original, Kind::DocumentTimestamp, &into("Sig1"), 64, &limits()),
            Err(PdfError::UnusableField { .. })
        ));
        assert_eq!(
            sign_into(&pdf(&TWO_PAGES), &into("Sig1")).unwrap_err(),
            PdfError::NoSuchField("Sig1".into())
        );
        assert!(crate::pdf::inspect_field(&original, "Sig1", &limits()).is_ok());
        assert_eq!(
            crate::pdf::inspect_field(&original, "Signed", &limits()).unwrap_err(),
            PdfError::FieldSigned("Signed".into())
        );
    }

    #[test]
    fn a_certified_document_takes_a_signature_in_its_field_only_where_its_level_allows_signing() {
        let certified = |p: u8| {
            let mut objects: Vec<String> = FORM.iter().map(|o| o.to_string()).collect();
            objects[0] = objects[0].replace(">> >>", ">> /Perms << /DocMDP 17 0 R >> >>");
            objects.push(format!(
                "<< /Type /Sig /Reference [<< /TransformMethod /DocMDP /TransformParams << /P {p} /V /1.2 >> >>] >>"
            ));
            pdf(&objects.iter().map(String::as_str).collect::<Vec<_>>())
        };
        assert_eq!(
            sign_into(&certified(1), &into("Sig1")).unwrap_err(),
            PdfError::CertifiedNoChanges
        );
        for p in [2, 3] {
            assert!(sign_into(&certified(p), &into("Sig1")).is_ok(), "P {p}");
        }
    }

    #[test]
    fn a_form_whose_kids_arrays_are_shared_signs() {
        // The shape `pdf::fields` walks once; the walk behind `prepare` is the same.
        let file = fan_out_fields(40);
        let signed = sign_fake(&file, None);
        assert_eq!(inspect(&signed, &limits()).unwrap().signatures, 2);
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
            if let Ok(p) = prepare(
                &file,
                Kind::Signature { signing_time: 0 },
                &Placement::Invisible,
                16,
                &limits(),
            ) {
                let _ = p.finish(&[1; 16]);
            }
            let _ = add_dss(&file, &[vec![1]], &[], &[], &limits());
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
