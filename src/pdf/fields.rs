//! The form's field tree: the walk that counts signatures, takes the names in use and finds the empty signature
//! fields (for signing), the one that reads each signed signature field (for verification), and the one that says
//! why a named field cannot take a signature. All go without recursion, walk a shared node once and charge every
//! node to the reading's budget.

use std::collections::HashSet;

use super::{bad, get, Bad, Dict, Doc, Limits, Obj, PdfError, Ref};
use crate::i18n::Text;

/// Bytes of a field's full name reported by [`signature_fields`]; longer names are cut.
const MAX_FIELD_NAME: usize = 1024;

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
                return bad(crate::text!("error.pdf.form_has_too_many_fields"));
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

/// A node of the field tree as [`walk`] meets it.
struct Node<'n> {
    /// How it was reached: a reference, or a direct dictionary.
    obj: &'n Obj,
    dict: &'n Dict,
    /// Its full name: its parent's, and its own `/T` if it has one.
    name: &'n str,
    /// Whether it has a `/T` of its own (a node without one is a widget, or shares its parent's name).
    named: bool,
    /// Whether it is a field of the form's `/Fields`.
    top: bool,
    /// Its `/FT` or its nearest ancestor's is `/Sig` (`Some(false)`: another type, `None`: none says).
    signature: Option<bool>,
    /// Its `/Kids`, unless they were walked already.
    kids: &'n [Obj],
}

/// Walks the field tree from `roots` depth first, in order, calling `visit` on every node once.
fn walk(doc: &Doc, roots: Vec<Obj>, mut visit: impl FnMut(&Node) -> Result<(), Bad>) -> Result<(), Bad> {
    let mut seen = FieldWalk::default();
    let mut stack: Vec<(Obj, bool, Option<bool>, String, usize)> = roots
        .into_iter()
        .rev()
        .map(|f| (f, true, None, String::new(), 0))
        .collect();
    while let Some((field, top, inherited_ft, parent_name, depth)) = stack.pop() {
        if !seen.enter(doc, &field, depth)? {
            continue;
        }
        let Obj::Dict(dict) = doc.deref(&field)? else {
            continue;
        };
        let own = text(get(&dict, b"T"));
        let named = own.is_some();
        let name = full_name(own, parent_name);
        let signature = is_signature(&dict, inherited_ft);
        let kids = seen.kids(doc, &dict)?;
        visit(&Node {
            obj: &field,
            dict: &dict,
            name: &name,
            named,
            top,
            signature,
            kids: &kids,
        })?;
        for kid in kids.into_iter().rev() {
            stack.push((kid, false, signature, name.clone(), depth + 1));
        }
    }
    Ok(())
}

/// The form's top-level fields (`/Fields`), none when it has no such array.
fn roots(doc: &Doc, form: &Dict) -> Result<Vec<Obj>, Bad> {
    Ok(match get(form, b"Fields") {
        Some(f) => match doc.deref(f)? {
            Obj::Array(a) => a,
            _ => Vec::new(),
        },
        None => Vec::new(),
    })
}

/// Whether `node` is a signature field: its `/FT`, else its parent's.
fn is_signature(node: &Dict, inherited: Option<bool>) -> Option<bool> {
    match get(node, b"FT") {
        // Kept as "is a signature field": a long type name is not copied to every kid.
        Some(Obj::Name(n)) => Some(n == b"Sig"),
        _ => inherited,
    }
}

/// What signing needs of the form: how many signatures it holds, which top-level names are taken, and where a
/// signature could go.
pub(crate) struct Form {
    /// Signature fields holding a signature or a document timestamp.
    pub(crate) signatures: usize,
    /// The names of the top-level fields: a new field must not take one.
    pub(crate) names: HashSet<Vec<u8>>,
    /// The empty signature fields, in the order of the field tree.
    pub(crate) empty: Vec<EmptyField>,
}

/// An empty signature field (a terminal field of type `/Sig` without `/V`).
pub(crate) struct EmptyField {
    /// Its full name (`parent.child`).
    pub(crate) name: String,
    /// What filling it rewrites, or why it cannot be filled.
    pub(crate) target: Result<FieldTarget, Text>,
}

/// The objects filling an empty signature field rewrites, and where its widget is.
pub(crate) struct FieldTarget {
    /// The field, an object of its own.
    pub(crate) field: (Ref, Dict),
    pub(crate) widget: Widget,
    /// The page its widget is on (an index of the page tree's pages); found by the caller, who knows the pages.
    pub(crate) page: Option<usize>,
    /// Its widget's `/Rect`, normalised, when it has an area; none for an invisible field.
    pub(crate) rect: Option<[f64; 4]>,
}

/// A signature field's widget annotation.
pub(crate) enum Widget {
    /// The field dictionary is its widget too (a field of one widget may merge them).
    Merged,
    /// A kid of the field, an object of its own.
    Kid(Ref, Dict),
    /// It has none: the signature is shown nowhere.
    None,
}

impl FieldTarget {
    /// The widget's object and dictionary, if it has one.
    pub(crate) fn widget(&self) -> Option<(Ref, &Dict)> {
        match &self.widget {
            Widget::Merged => Some((self.field.0, &self.field.1)),
            Widget::Kid(r, d) => Some((*r, d)),
            Widget::None => None,
        }
    }
}

/// Counts the signed signature fields, collects the top-level field names and the empty signature fields.
pub(super) fn fields(doc: &Doc, form: &Dict) -> Result<Form, Bad> {
    let mut out = Form {
        signatures: 0,
        names: HashSet::new(),
        empty: Vec::new(),
    };
    walk(doc, roots(doc, form)?, |node| {
        if node.top {
            if let Some(Obj::Str(t)) = get(node.dict, b"T") {
                out.names.insert(t.clone());
            }
        }
        if node.signature != Some(true) {
            return Ok(());
        }
        if get(node.dict, b"V").is_some() {
            out.signatures += 1;
        } else if node.named {
            if let Some(target) = target(doc, node)? {
                out.empty.push(EmptyField {
                    name: node.name.to_owned(),
                    target,
                });
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Most widgets of one field looked at.
const MAX_WIDGETS: usize = 64;

/// What filling the empty signature field `node` rewrites, or why it cannot be filled; `None` when it is not a
/// terminal field (a kid has a name or kids of its own: those are the fields).
fn target(doc: &Doc, node: &Node) -> Result<Option<Result<FieldTarget, Text>>, Bad> {
    let mut widgets = Vec::new();
    for kid in node.kids.iter().take(MAX_WIDGETS) {
        let Obj::Dict(d) = doc.deref(kid)? else {
            continue;
        };
        if get(&d, b"T").is_some() || get(&d, b"Kids").is_some() {
            return Ok(None);
        }
        widgets.push((kid.clone(), d));
    }
    let Obj::Ref(field_ref) = node.obj else {
        return Ok(Some(Err(crate::text!("error.pdf.field_not_indirect"))));
    };
    let widget = match widgets.len() {
        0 if get(node.dict, b"Subtype") == Some(&Obj::name("Widget")) => Widget::Merged,
        0 => Widget::None,
        1 => match widgets.pop() {
            Some((Obj::Ref(r), d)) => Widget::Kid(r, d),
            _ => return Ok(Some(Err(crate::text!("error.pdf.field_not_indirect")))),
        },
        count => return Ok(Some(Err(crate::text!("error.pdf.field_widgets", count)))),
    };
    let mut target = FieldTarget {
        field: (*field_ref, node.dict.clone()),
        widget,
        page: None,
        rect: None,
    };
    target.rect = match target.widget() {
        Some((_, w)) => match get(w, b"Rect") {
            Some(r) => super::pages::rect_of(&doc.deref(r)?).filter(|r| r[2] > r[0] && r[3] > r[1]),
            None => None,
        },
        None => None,
    };
    Ok(Some(Ok(target)))
}

/// Why the field `name` cannot take a signature, when it is not one of the form's empty signature fields: there is
/// none of that name, it is another type of field (or a group of fields), or it is signed.
pub(super) fn refusal(doc: &Doc, form: &Dict, name: &str) -> Result<PdfError, Bad> {
    let mut found = None;
    walk(doc, roots(doc, form)?, |node| {
        if found.is_none() && node.named && node.name == name {
            found = Some(if node.signature == Some(true) && get(node.dict, b"V").is_some() {
                PdfError::FieldSigned(name.to_owned())
            } else {
                PdfError::NotSignatureField(name.to_owned())
            });
        }
        Ok(())
    })?;
    Ok(found.unwrap_or_else(|| PdfError::NoSuchField(name.to_owned())))
}

/// The signed signature fields of a PDF, in the order of the form's field tree. Refuses what [`inspect`] refuses
/// as unreadable (too large, encrypted, damaged); a PDF without a form has none.
///
/// [`inspect`]: super::inspect
pub fn signature_fields(pdf: &[u8], limits: &Limits) -> Result<Vec<SignatureField>, PdfError> {
    let doc = Doc::open(pdf, limits)?;
    let roots = form_roots(&doc)?;
    let mut out = Vec::new();
    // A signature value named by two fields is read (and reported) once.
    let mut values = HashSet::new();
    walk(&doc, roots, |node| {
        if node.signature != Some(true) {
            return Ok(());
        }
        if let Some(v) = get(node.dict, b"V").filter(|v| match v {
            Obj::Ref(r) => values.insert(r.num),
            _ => true,
        }) {
            if let Obj::Dict(sig) = doc.deref(v)? {
                out.push(signature_field(&doc, &sig, node.name.to_owned())?);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// The top-level fields of the catalog's form; none when there is no form.
fn form_roots(doc: &Doc) -> Result<Vec<Obj>, PdfError> {
    let Some(Obj::Ref(catalog_ref)) = get(&doc.trailer, b"Root") else {
        return Err(Bad::Unreadable(crate::text!("error.pdf.trailer_names_no_document_catalog")).into());
    };
    let catalog = match doc.fetch(*catalog_ref, 0)? {
        (Obj::Dict(d), None) => d,
        _ => return Err(Bad::Unreadable(crate::text!("error.pdf.document_catalog_missing")).into()),
    };
    let form = match get(&catalog, b"AcroForm") {
        Some(f) => match doc.deref(f)? {
            Obj::Dict(d) => d,
            _ => return Ok(Vec::new()),
        },
        None => return Ok(Vec::new()),
    };
    Ok(roots(doc, &form)?)
}

/// A string or a name as text: a text string with a UTF-16BE byte order mark decoded as such (ISO 32000-1
/// §7.9.2.2), anything else read as UTF-8.
fn text(o: Option<&Obj>) -> Option<String> {
    match o {
        Some(Obj::Str(s)) => Some(match s.strip_prefix(&[0xfe, 0xff]) {
            Some(utf16) => {
                let units: Vec<u16> = utf16
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                    .collect();
                String::from_utf16_lossy(&units)
            }
            None => String::from_utf8_lossy(s).into_owned(),
        }),
        Some(Obj::Name(s)) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

/// A field's full name: its parent's, a dot and its own `/T` (`own`), cut to [`MAX_FIELD_NAME`] bytes.
fn full_name(own: Option<String>, parent: String) -> String {
    let mut name = match (own, parent.is_empty()) {
        (Some(t), true) => t,
        (Some(t), false) => format!("{parent}.{t}"),
        (None, _) => parent,
    };
    // Each kid carries its parent's name: a bounded one, so a long name is not copied to every kid.
    if name.len() > MAX_FIELD_NAME {
        let cut = (0..=MAX_FIELD_NAME)
            .rev()
            .find(|i| name.is_char_boundary(*i))
            .unwrap_or(0);
        name.truncate(cut);
    }
    name
}

/// The signature field `name` whose value is the signature dictionary `sig`.
fn signature_field(doc: &Doc, sig: &Dict, name: String) -> Result<SignatureField, Bad> {
    let byte_range = match get(sig, b"ByteRange") {
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
    let contents = match get(sig, b"Contents") {
        Some(c) => match doc.deref(c)? {
            Obj::Str(s) => s,
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    let sub_filter = text(get(sig, b"SubFilter")).unwrap_or_default();
    let document_timestamp = sub_filter == "ETSI.RFC3161" || get(sig, b"Type") == Some(&Obj::name("DocTimeStamp"));
    Ok(SignatureField {
        name,
        sub_filter,
        document_timestamp,
        byte_range,
        contents,
        time: text(get(sig, b"M")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf::testing::{fan_out_fields, limits, work};

    #[test]
    fn a_shared_kids_array_under_direct_kids_is_walked_once() {
        let file = fan_out_fields(40);
        let ((nodes, _, _), info) = work(&file, &limits());
        assert_eq!(info.unwrap().signatures, 1);
        assert!(nodes < 200, "{nodes} nodes for a 40-level fan-out");
        let fields = signature_fields(&file, &limits()).unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].name, "top.s");
    }
}
