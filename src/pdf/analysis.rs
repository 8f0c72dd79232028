//! What signing needs from a document's catalog: its pages, its form (how many signatures, which names are
//! taken), whether it is certified and with what permission, whether it has long-term validation data. Smart
//! (XFA) forms are refused here, as they cannot take a signature this way.

use std::collections::{HashMap, HashSet};

use super::fields::{fields, refusal, EmptyField, FieldTarget};
use super::pages::{annotation_pages, pages, Page};
use super::{get, Bad, Dict, Doc, Limits, Obj, PageGeometry, PdfError, Ref};

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
    /// The empty signature fields a signature can go into, in the order of the form's field tree.
    pub signature_fields: Vec<EmptySignatureField>,
}

/// An empty signature field a signature can go into (`documents::pades::Placement::Field`).
#[derive(Debug, Clone, PartialEq)]
pub struct EmptySignatureField {
    /// Its fully qualified name (`parent.child`).
    pub name: String,
    /// The page its widget is on, from 1; none when it is on no page (or has no widget).
    pub page: Option<usize>,
    /// Its widget's rectangle in that page's default user space (normalised so x1 < x2, y1 < y2); none for an
    /// invisible field (a rectangle without area, or on no page).
    pub rect: Option<[f64; 4]>,
}

impl PdfInfo {
    /// The number of pages.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }
}

/// Reads what a signing UI and the signing rules need to know, refusing what cannot be signed: too large, too many
/// objects, encrypted, XFA, or not readable.
pub fn inspect(pdf: &[u8], limits: &Limits) -> Result<PdfInfo, PdfError> {
    let doc = Doc::open(pdf, limits)?;
    let analysis = Analysis::of(&doc)?;
    Ok(analysis.info())
}

/// As [`inspect`], and refuses a signature into the field `name` (fully qualified, `parent.child`) unless it is an
/// empty signature field that can be filled (one of [`PdfInfo::signature_fields`]); says why otherwise.
pub fn inspect_field(pdf: &[u8], name: &str, limits: &Limits) -> Result<PdfInfo, PdfError> {
    let doc = Doc::open(pdf, limits)?;
    let analysis = Analysis::of(&doc)?;
    analysis.field(&doc, name)?;
    Ok(analysis.info())
}

/// Where the AcroForm dictionary lives.
pub(crate) enum AcroForm {
    None,
    /// Inside the catalog.
    Direct(Dict),
    /// An object of its own.
    Indirect(Ref, Dict),
}

/// The catalog and what the walks of its trees found.
pub(crate) struct Analysis {
    pub(crate) catalog_ref: Ref,
    pub(crate) catalog: Dict,
    pub(crate) pages: Vec<Page>,
    pub(crate) acroform: AcroForm,
    pub(crate) signatures: usize,
    pub(crate) field_names: HashSet<Vec<u8>>,
    /// The empty signature fields, their widgets placed on the pages.
    pub(crate) empty_fields: Vec<EmptyField>,
    pub(crate) certification: Option<u8>,
}

impl Analysis {
    /// Reads the catalog and walks the page tree and the form; refuses an XFA form.
    pub(crate) fn of(doc: &Doc) -> Result<Analysis, PdfError> {
        let Some(Obj::Ref(catalog_ref)) = get(&doc.trailer, b"Root") else {
            return Err(Bad::Unreadable(crate::text!("error.pdf.trailer_names_no_document_catalog")).into());
        };
        let catalog_ref = *catalog_ref;
        let catalog = match doc.fetch(catalog_ref, 0)? {
            (Obj::Dict(d), None) => d,
            _ => return Err(Bad::Unreadable(crate::text!("error.pdf.document_catalog_missing")).into()),
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
        let (signatures, field_names, mut empty_fields) = match form {
            Some(f) => {
                let form = fields(doc, f)?;
                (form.signatures, form.names, form.empty)
            }
            None => (0, HashSet::new(), Vec::new()),
        };
        place_widgets(doc, &pages, &mut empty_fields)?;
        Ok(Analysis {
            catalog_ref,
            catalog,
            pages,
            acroform,
            signatures,
            field_names,
            empty_fields,
            certification,
        })
    }

    /// The empty signature field `name`, ready to be filled; or why it cannot be.
    pub(crate) fn field(&self, doc: &Doc, name: &str) -> Result<&FieldTarget, PdfError> {
        if let Some(field) = self.empty_fields.iter().find(|f| f.name == name) {
            return field.target.as_ref().map_err(|reason| PdfError::UnusableField {
                name: name.to_owned(),
                reason: reason.clone(),
            });
        }
        match &self.acroform {
            AcroForm::Direct(form) | AcroForm::Indirect(_, form) => Err(refusal(doc, form, name)?),
            AcroForm::None => Err(PdfError::NoSuchField(name.to_owned())),
        }
    }

    /// What [`inspect`] reports.
    pub(super) fn info(&self) -> PdfInfo {
        PdfInfo {
            pages: self.pages.iter().map(|p| p.geometry).collect(),
            signatures: self.signatures,
            certification: self.certification,
            has_dss: get(&self.catalog, b"DSS").is_some(),
            signature_fields: self
                .empty_fields
                .iter()
                .filter_map(|f| {
                    let target = f.target.as_ref().ok()?;
                    Some(EmptySignatureField {
                        name: f.name.clone(),
                        page: target.page.map(|i| i + 1),
                        rect: target.page.and(target.rect),
                    })
                })
                .collect(),
        }
    }

    /// `SignatureN` with the smallest N no top-level field uses.
    pub(crate) fn new_field_name(&self) -> String {
        (1..)
            .map(|n| format!("Signature{n}"))
            .find(|name| !self.field_names.contains(name.as_bytes()))
            .unwrap_or_else(|| "Signature".into())
    }
}

/// Finds the page of each empty signature field's widget: the page its `/P` names, else the page whose `/Annots`
/// lists it (the pages' annotations are read only when a widget does not say).
fn place_widgets(doc: &Doc, pages: &[Page], fields: &mut [EmptyField]) -> Result<(), Bad> {
    let mut listed: Option<HashMap<u32, usize>> = None;
    for field in fields {
        let Ok(target) = &mut field.target else {
            continue;
        };
        let Some((widget, dict)) = target.widget() else {
            continue;
        };
        let named = match get(dict, b"P") {
            Some(Obj::Ref(p)) => pages.iter().position(|page| page.reference == *p),
            _ => None,
        };
        let page = match named {
            Some(i) => Some(i),
            None => {
                let listed = match &mut listed {
                    Some(l) => l,
                    None => listed.insert(annotation_pages(doc, pages)?),
                };
                listed.get(&widget.num).copied()
            }
        };
        target.page = page;
    }
    Ok(())
}

/// The DocMDP `P` of the certification signature the catalog's `/Perms` names (2 when it does not say).
pub(super) fn certification(doc: &Doc, catalog: &Dict) -> Result<Option<u8>, Bad> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::reader::{find, rfind};
    use crate::pdf::testing::{limits, pdf, CATALOG, CERTIFIED_NO_CHANGES, TWO_PAGES};

    #[test]
    fn what_cannot_be_read_is_refused_with_its_reason() {
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
        let cyclic = pdf(&[CATALOG, "<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]);
        assert!(
            matches!(inspect(&cyclic, &limits()), Err(PdfError::Unreadable(m)) if m.to_string().contains("refers back"))
        );
        let huge_count = pdf(&[
            CATALOG,
            "<< /Type /Pages /Kids [3 0 R] /Count 2147483647 >>",
            "<< /Type /Page >>",
        ]);
        assert!(
            matches!(inspect(&huge_count, &limits()), Err(PdfError::Unreadable(m)) if m.to_string().contains("2147483647"))
        );
        let deep = format!("<< /Type /Catalog /Pages 2 0 R /X {} >>", "[".repeat(100_000));
        assert!(
            matches!(inspect(&pdf(&[&deep]), &limits()), Err(PdfError::Unreadable(m)) if m.to_string().contains("nested"))
        );
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
    }

    #[test]
    fn a_file_past_the_size_limits_is_refused() {
        let original = pdf(&TWO_PAGES);
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
    }

    #[test]
    fn a_certification_is_read_with_its_permission() {
        let certified = pdf(&CERTIFIED_NO_CHANGES);
        assert_eq!(inspect(&certified, &limits()).unwrap().certification, Some(1));
        let default = CERTIFIED_NO_CHANGES.map(|o| o.replace("/P 1 ", ""));
        let default: Vec<&str> = default.iter().map(String::as_str).collect();
        assert_eq!(inspect(&pdf(&default), &limits()).unwrap().certification, Some(2));
        assert_eq!(inspect(&pdf(&TWO_PAGES), &limits()).unwrap().certification, None);
    }
}
