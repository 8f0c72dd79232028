//! The form's field tree: the walk that counts signatures and takes the names in use (for signing), and the one
//! that reads each signed signature field (for verification). Both go without recursion, walk a shared node once
//! and charge every node to the reading's budget.

use std::collections::HashSet;

use super::{bad, get, Bad, Dict, Doc, Limits, Obj, PdfError};

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

/// Counts the signed signature fields and collects the top-level field names.
pub(super) fn fields(doc: &Doc, form: &Dict) -> Result<(usize, HashSet<Vec<u8>>), Bad> {
    let roots = roots(doc, form)?;
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
        let ft = is_signature(&node, inherited_ft);
        if ft == Some(true) && get(&node, b"V").is_some() {
            signatures += 1;
        }
        for kid in walk.kids(doc, &node)?.into_iter().rev() {
            stack.push((kid, false, ft, depth + 1));
        }
    }
    Ok((signatures, names))
}

/// The signed signature fields of a PDF, in the order of the form's field tree. Refuses what [`inspect`] refuses
/// as unreadable (too large, encrypted, damaged); a PDF without a form has none.
///
/// [`inspect`]: super::inspect
pub fn signature_fields(pdf: &[u8], limits: &Limits) -> Result<Vec<SignatureField>, PdfError> {
    let doc = Doc::open(pdf, limits)?;
    let roots = form_roots(&doc)?;
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
        let name = full_name(text(get(&node, b"T")), parent_name);
        let ft = is_signature(&node, inherited_ft);
        if ft == Some(true) {
            if let Some(v) = get(&node, b"V").filter(|v| match v {
                Obj::Ref(r) => values.insert(r.num),
                _ => true,
            }) {
                if let Obj::Dict(sig) = doc.deref(v)? {
                    out.push(signature_field(&doc, &sig, name.clone())?);
                }
            }
        }
        for kid in walk.kids(&doc, &node)?.into_iter().rev() {
            stack.push((kid, ft, name.clone(), depth + 1));
        }
    }
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

/// A string or a name as text.
fn text(o: Option<&Obj>) -> Option<String> {
    match o {
        Some(Obj::Str(s)) | Some(Obj::Name(s)) => Some(String::from_utf8_lossy(s).into_owned()),
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
