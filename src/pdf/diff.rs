//! What the revisions after a signature change. ISO 32000-1 §12.8.2.2 (DocMDP) and PAdES (ETSI EN 319 142-1 §5.4)
//! allow some updates after a signature: long-term validation data and document timestamps always, new
//! signatures and form filling at DocMDP 2 and 3, annotations at DocMDP 3 (and in a document without a
//! certification). Anything else means that what the signer saw may not be what the file shows now.
//!
//! Each object a later revision defines or redefines is compared with the signed revision's and sorted into the
//! least [`Change`] that allows it: the catalog may only gain `/DSS`, `/Extensions`, `/Version` and its form; a page
//! only its `/Annots`; a field only its value and appearance; new objects take the level of the changed object
//! that refers to them (a new widget's appearance stream is part of the new signature), and a new object nobody
//! changed refers to is an "other" change, since only an object the signed revision already referred to could show
//! it. A redefinition with the same value (some writers rewrite every object) is no change.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::pages::pages;
use super::xref::Entry;
use super::{get, Bad, Dict, Doc, Limits, Obj, PdfError, Ref};

/// How far the changes after a signature go, from the least to the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Nothing after the signature.
    None,
    /// Validation data (`/DSS`) and document timestamps: PAdES's long-term updates, allowed even at DocMDP 1.
    ValidationData,
    /// New signatures, or an empty signature field signed: allowed at DocMDP 2 and 3.
    Signatures,
    /// Form fields filled in: allowed at DocMDP 2 and 3.
    FormFilling,
    /// Annotations added, changed or removed: allowed at DocMDP 3 and without a certification.
    Annotations,
    /// Anything else (page content, resources, the page tree, new form fields, …).
    Other,
}

impl Change {
    /// The most a document allows after its signatures: by its certification's DocMDP permission `P`, and as at 3
    /// without a certification.
    pub fn allowed(certification: Option<u8>) -> Change {
        match certification {
            Some(1) => Change::ValidationData,
            Some(2) => Change::FormFilling,
            _ => Change::Annotations,
        }
    }
}

/// The changes after a signed revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The furthest change.
    pub level: Change,
    /// The certification's DocMDP permission, if the document is certified.
    pub certification: Option<u8>,
    /// Up to [`MAX_EXAMPLES`] objects whose change is [`Change::Other`], described ("object 4: a page"), in the
    /// reader's language.
    pub examples: Vec<crate::i18n::Text>,
}

impl Changes {
    /// Whether the changes go beyond what the document allows after a signature.
    pub fn modified(&self) -> bool {
        self.level > Change::allowed(self.certification)
    }
}

/// How many "other" changes are named.
pub const MAX_EXAMPLES: usize = 3;

/// The changes the revisions after `signed_end` (where a signature's byte range ends: the end of its revision) make
/// to the document as it was signed.
pub fn changes_after(file: &[u8], signed_end: usize, limits: &Limits) -> Result<Changes, PdfError> {
    let new = Doc::open(file, limits)?;
    let catalog_ref = root(&new)?;
    let catalog = dict_of(&new, catalog_ref)?;
    let certification = super::analysis::certification(&new, &catalog)?;
    if signed_end >= file.len() {
        return Ok(Changes {
            level: Change::None,
            certification,
            examples: Vec::new(),
        });
    }
    let old = Doc::open(&file[..signed_end], limits)?;
    let mut diff = Diff {
        old: &old,
        new: &new,
        catalog_ref,
        levels: BTreeMap::new(),
        pending: Vec::new(),
    };
    diff.classify()?;
    let examples = diff
        .levels
        .iter()
        .filter(|(_, (level, _))| *level == Change::Other)
        .take(MAX_EXAMPLES)
        .map(|(num, (_, what))| crate::text!("verify.changed.example", object = num, what => crate::i18n::Text::new(*what)))
        .collect();
    let level = diff.levels.values().map(|(l, _)| *l).max().unwrap_or(Change::None);
    Ok(Changes {
        level,
        certification,
        examples,
    })
}

/// The trailer's `/Root`.
fn root(doc: &Doc) -> Result<Ref, Bad> {
    match get(&doc.trailer, b"Root") {
        Some(Obj::Ref(r)) => Ok(*r),
        _ => Err(Bad::Unreadable(crate::text!(
            "error.pdf.trailer_names_no_document_catalog"
        ))),
    }
}

/// The dictionary `r` is (a stream's dictionary for a stream), empty when it is none.
fn dict_of(doc: &Doc, r: Ref) -> Result<Dict, Bad> {
    Ok(match doc.fetch(r, 0)?.0 {
        Obj::Dict(d) => d,
        _ => Dict::new(),
    })
}

/// An object as it is in one revision: its value and, for a stream, its bytes.
#[derive(Debug, PartialEq)]
struct Version<'a> {
    value: Obj,
    stream: Option<&'a [u8]>,
}

struct Diff<'d, 'a> {
    old: &'d Doc<'a>,
    new: &'d Doc<'a>,
    catalog_ref: Ref,
    /// Object number → its level and what it is (the key of its name, `verify.changed.*`).
    levels: BTreeMap<u32, (Change, &'static str)>,
    /// New or changed objects not sorted by what they are: they take the level of what refers to them.
    pending: Vec<Ref>,
}

impl Diff<'_, '_> {
    fn version<'x>(doc: &Doc<'x>, r: Ref) -> Result<Version<'x>, Bad> {
        let (value, start) = doc.fetch(r, 0)?;
        let stream = match (&value, start) {
            (Obj::Dict(d), Some(start)) => Some(doc.stream_data(d, start, 0)?),
            _ => None,
        };
        Ok(Version { value, stream })
    }

    /// Sorts every object the later revisions define.
    fn classify(&mut self) -> Result<(), Bad> {
        let ctx = Context::of(self.new)?;
        let mut nums: Vec<(u32, Entry)> = self.new.entries.iter().map(|(n, e)| (*n, *e)).collect();
        nums.sort_by_key(|(n, _)| *n);
        for (num, entry) in nums {
            let before = self.old.entries.get(&num).copied();
            if before == Some(entry) {
                continue;
            }
            if entry == Entry::Free {
                if matches!(before, Some(Entry::InFile { .. } | Entry::InStream { .. })) {
                    self.levels.insert(num, (Change::Other, "verify.changed.deleted"));
                }
                continue;
            }
            // The generation is not kept in the entries; objects are fetched by number.
            let r = Ref { num, gen: 0 };
            let new = Self::version(self.new, r)?;
            let old = match before {
                Some(Entry::InFile { .. } | Entry::InStream { .. }) => Some(Self::version(self.old, r)?),
                _ => None,
            };
            if old.as_ref() == Some(&new) {
                continue;
            }
            if let Some(sorted) = self.sort(r, old.as_ref().map(|v| &v.value), &new.value, &ctx)? {
                self.levels.insert(num, sorted);
            }
        }
        self.settle_pending()
    }

    /// The level of one new or changed object from what it is; `None` when it is a container (a cross-reference
    /// or object stream) or to be settled by what refers to it.
    fn sort(
        &mut self,
        r: Ref,
        old: Option<&Obj>,
        new: &Obj,
        ctx: &Context,
    ) -> Result<Option<(Change, &'static str)>, Bad> {
        let empty = Dict::new();
        let new_dict = match new {
            Obj::Dict(d) => d,
            _ => &empty,
        };
        let old_dict = match old {
            Some(Obj::Dict(d)) => Some(d),
            _ => None,
        };
        let type_is = |name: &[u8]| matches!(get(new_dict, b"Type"), Some(Obj::Name(n)) if n == name);
        if type_is(b"XRef") || type_is(b"ObjStm") {
            return Ok(None);
        }
        if ctx.validation_data.contains(&r.num) {
            return Ok(Some((Change::ValidationData, "verify.changed.validation_data")));
        }
        if Some(r.num) == ctx.info || Some(r.num) == ctx.metadata {
            // The document information and XMP metadata (producer, dates): not what a viewer shows of the document.
            return Ok(Some((Change::ValidationData, "verify.changed.metadata")));
        }
        if r.num == self.catalog_ref.num {
            return Ok(Some(self.catalog(old_dict, new_dict)?));
        }
        if Some(r.num) == ctx.acroform {
            return Ok(Some(self.form(old_dict, new_dict)?));
        }
        if Some(r.num) == ctx.fields {
            return Ok(Some(self.fields_array(old, new)?));
        }
        if ctx.pages.contains(&r.num) {
            let changed = changed_keys(old_dict, new_dict);
            if changed.iter().any(|k| k.as_slice() != b"Annots") {
                return Ok(Some((Change::Other, "verify.changed.page")));
            }
            let before = old_dict.and_then(|d| get(d, b"Annots"));
            return Ok(Some((
                self.annotations(before, get(new_dict, b"Annots"))?,
                "a page's annotations",
            )));
        }
        if ctx.annots.contains(&r.num) {
            return Ok(Some((self.annotations(old, Some(new))?, "a page's annotations")));
        }
        if type_is(b"DocTimeStamp") && old.is_none() {
            return Ok(Some((Change::ValidationData, "verify.changed.document_timestamp")));
        }
        if type_is(b"Sig") && old.is_none() {
            return Ok(Some((Change::Signatures, "verify.changed.signature")));
        }
        let widget = matches!(get(new_dict, b"Subtype"), Some(Obj::Name(n)) if n == b"Widget");
        let field =
            get(new_dict, b"FT").is_some() || get(new_dict, b"T").is_some() || get(new_dict, b"Parent").is_some();
        if widget || field {
            return Ok(Some(self.field(old_dict, new_dict)?));
        }
        if get(new_dict, b"Subtype").is_some() && get(new_dict, b"Rect").is_some() {
            return Ok(Some((Change::Annotations, "verify.changed.annotation")));
        }
        self.pending.push(r);
        Ok(None)
    }

    /// The catalog may gain or change `/DSS`, `/Extensions` and `/Version` (validation data), and its form.
    fn catalog(&self, old: Option<&Dict>, new: &Dict) -> Result<(Change, &'static str), Bad> {
        let mut level = Change::None;
        for key in changed_keys(old, new) {
            let l = match key.as_slice() {
                b"DSS" | b"Extensions" | b"Version" | b"Metadata" => Change::ValidationData,
                b"AcroForm" => match get(new, b"AcroForm") {
                    Some(Obj::Dict(form)) => {
                        let before = old.and_then(|o| get(o, b"AcroForm")).and_then(|f| match f {
                            Obj::Dict(d) => Some(d),
                            _ => None,
                        });
                        self.form(before, form)?.0
                    }
                    // A form of its own, new or other: what it holds is sorted where it is defined.
                    _ => Change::ValidationData,
                },
                _ => return Ok((Change::Other, "verify.changed.catalog")),
            };
            level = level.max(l);
        }
        Ok((level, "verify.changed.catalog"))
    }

    /// The form may gain fields (sorted by what they are) and change its signature flags and defaults.
    fn form(&self, old: Option<&Dict>, new: &Dict) -> Result<(Change, &'static str), Bad> {
        let mut level = Change::None;
        for key in changed_keys(old, new) {
            let l = match key.as_slice() {
                b"SigFlags" => Change::ValidationData,
                b"DR" | b"DA" | b"NeedAppearances" => Change::FormFilling,
                b"Fields" => {
                    let before = old.and_then(|o| get(o, b"Fields"));
                    self.fields_array(before, get(new, b"Fields").unwrap_or(&Obj::Null))?.0
                }
                _ => return Ok((Change::Other, "verify.changed.form")),
            };
            level = level.max(l);
        }
        Ok((level, "verify.changed.form"))
    }

    /// The form's field list may only grow, by signature fields.
    fn fields_array(&self, old: Option<&Obj>, new: &Obj) -> Result<(Change, &'static str), Bad> {
        let before = refs_in(&old.map(|o| self.new.deref(o)).transpose()?.unwrap_or(Obj::Null));
        let after = refs_in(&self.new.deref(new)?);
        if before.iter().any(|r| !after.contains(r)) {
            return Ok((Change::Other, "verify.changed.form_fields"));
        }
        let mut level = Change::None;
        for added in after.iter().filter(|r| !before.contains(r)) {
            match self.signature_field(&dict_of(self.new, *added)?)? {
                Some(l) => level = level.max(l),
                None => return Ok((Change::Other, "verify.changed.form_fields")),
            }
        }
        Ok((level, "verify.changed.form_fields"))
    }

    /// A page's annotations: a signature widget added is a signature, anything else an annotation change.
    fn annotations(&self, old: Option<&Obj>, new: Option<&Obj>) -> Result<Change, Bad> {
        let resolve = |o: Option<&Obj>, doc: &Doc| -> Result<Vec<Ref>, Bad> {
            Ok(match o {
                Some(v) => refs_in(&doc.deref(v)?),
                None => Vec::new(),
            })
        };
        let before = resolve(old, self.old)?;
        let after = resolve(new, self.new)?;
        if before.iter().any(|r| !after.contains(r)) {
            return Ok(Change::Annotations);
        }
        let mut level = Change::None;
        for added in after.iter().filter(|r| !before.contains(r)) {
            let l = self.signature_field(&dict_of(self.new, *added)?)?;
            level = level.max(l.unwrap_or(Change::Annotations));
        }
        Ok(level)
    }

    /// A field or widget: new, a signature field is a signature and another field is an "other" change; changed,
    /// a value and appearance filled in is form filling (a signature for an empty signature field signed).
    fn field(&self, old: Option<&Dict>, new: &Dict) -> Result<(Change, &'static str), Bad> {
        let signature = self.signature_field(new)?;
        let Some(old) = old else {
            return Ok(if let Some(level) = signature {
                (level, "a signature field")
            } else if get(new, b"FT").is_none() && get(new, b"Parent").is_none() {
                // A widget that is no field: an annotation like any other.
                (Change::Annotations, "verify.changed.annotation")
            } else {
                (Change::Other, "verify.changed.new_form_field")
            });
        };
        let changed = changed_keys(Some(old), new);
        let filled = |allowed: &[&[u8]]| changed.iter().all(|k| allowed.contains(&k.as_slice()));
        if let Some(level) = signature {
            let newly_signed = get(old, b"V").is_none() && get(new, b"V").is_some();
            if filled(&[b"V", b"AP", b"AS", b"F", b"MK"]) && (newly_signed || !changed.iter().any(|k| k == b"V")) {
                return Ok((level, "a signature field"));
            }
            return Ok((Change::Other, "verify.changed.signed_field"));
        }
        if filled(&[b"V", b"AP", b"AS", b"MK"]) {
            return Ok((Change::FormFilling, "verify.changed.form_field"));
        }
        Ok((Change::Other, "verify.changed.form_field"))
    }

    /// For a signature field (its own `/FT` or its parent's): a document timestamp's is validation data, another
    /// a signature; `None` for any other field or annotation.
    fn signature_field(&self, d: &Dict) -> Result<Option<Change>, Bad> {
        let mut node = d.clone();
        for _ in 0..super::MAX_NESTING {
            match get(&node, b"FT") {
                Some(Obj::Name(n)) if n == b"Sig" => {
                    let value = get(d, b"V").or_else(|| get(&node, b"V"));
                    let timestamp = match value.map(|v| self.new.deref(v)).transpose()? {
                        Some(Obj::Dict(sig)) => {
                            matches!(get(&sig, b"Type"), Some(Obj::Name(t)) if t == b"DocTimeStamp")
                        }
                        _ => false,
                    };
                    return Ok(Some(if timestamp {
                        Change::ValidationData
                    } else {
                        Change::Signatures
                    }));
                }
                Some(_) => return Ok(None),
                None => match get(&node, b"Parent") {
                    Some(Obj::Ref(p)) => node = dict_of(self.new, *p)?,
                    _ => return Ok(None),
                },
            }
        }
        Ok(None)
    }

    /// Objects sorted by nothing of their own take the level of a sorted object that refers to them (directly or
    /// through other pending ones); those nothing sorted refers to are "other" changes.
    fn settle_pending(&mut self) -> Result<(), Bad> {
        let mut pending: HashSet<u32> = self.pending.iter().map(|r| r.num).collect();
        let mut frontier: Vec<u32> = self.levels.keys().copied().collect();
        while let Some(num) = frontier.pop() {
            if pending.is_empty() {
                break;
            }
            let Some(&(level, _)) = self.levels.get(&num) else {
                continue;
            };
            let value = self.new.fetch(Ref { num, gen: 0 }, 0)?.0;
            for r in all_refs(&value) {
                if pending.remove(&r.num) {
                    self.levels.insert(r.num, (level, "verify.changed.referenced_object"));
                    frontier.push(r.num);
                }
            }
        }
        for num in pending {
            self.levels
                .insert(num, (Change::Other, "verify.changed.reachable_object"));
        }
        Ok(())
    }
}

/// Where the objects the rules single out are, in the newest revision.
struct Context {
    /// Everything the catalog's `/DSS` reaches.
    validation_data: HashSet<u32>,
    acroform: Option<u32>,
    /// The form's `/Fields` array, when it is an object of its own.
    fields: Option<u32>,
    pages: HashSet<u32>,
    /// The pages' `/Annots` arrays that are objects of their own.
    annots: HashSet<u32>,
    /// The trailer's `/Info` and the catalog's `/Metadata`, when they are objects.
    info: Option<u32>,
    metadata: Option<u32>,
}

impl Context {
    fn of(doc: &Doc) -> Result<Context, Bad> {
        let catalog = dict_of(doc, root(doc)?)?;
        let mut validation_data = HashSet::new();
        if let Some(dss) = get(&catalog, b"DSS") {
            let mut stack = vec![(dss.clone(), 0usize)];
            while let Some((obj, depth)) = stack.pop() {
                if depth > 4 {
                    continue;
                }
                if let Obj::Ref(r) = obj {
                    if !validation_data.insert(r.num) {
                        continue;
                    }
                }
                let value = doc.deref(&obj)?;
                // Streams (certificates, CRLs, OCSP responses) are leaves; dictionaries and arrays are walked.
                for child in direct_children(&value) {
                    stack.push((child, depth + 1));
                }
            }
        }
        let acroform_obj = get(&catalog, b"AcroForm");
        let acroform = match acroform_obj {
            Some(Obj::Ref(r)) => Some(r.num),
            _ => None,
        };
        let fields = match acroform_obj.map(|f| doc.deref(f)).transpose()? {
            Some(Obj::Dict(form)) => match get(&form, b"Fields") {
                Some(Obj::Ref(r)) => Some(r.num),
                _ => None,
            },
            _ => None,
        };
        let mut page_set = HashSet::new();
        let mut annots = HashSet::new();
        for page in pages(doc, &catalog)? {
            page_set.insert(page.reference.num);
            if let Some(Obj::Ref(r)) = get(&dict_of(doc, page.reference)?, b"Annots") {
                annots.insert(r.num);
            }
        }
        let num = |o: Option<&Obj>| match o {
            Some(Obj::Ref(r)) => Some(r.num),
            _ => None,
        };
        Ok(Context {
            validation_data,
            acroform,
            fields,
            pages: page_set,
            annots,
            info: num(get(&doc.trailer, b"Info")),
            metadata: num(get(&catalog, b"Metadata")),
        })
    }
}

/// The keys whose values differ between two dictionaries (present in one only, or different).
fn changed_keys(old: Option<&Dict>, new: &Dict) -> Vec<Vec<u8>> {
    let empty = Dict::new();
    let old = old.unwrap_or(&empty);
    let mut keys: Vec<Vec<u8>> = old.iter().chain(new.iter()).map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    keys.retain(|k| get(old, k) != get(new, k));
    keys
}

/// The references an array holds (a single reference counts as a one-element array).
fn refs_in(value: &Obj) -> Vec<Ref> {
    match value {
        Obj::Array(items) => items
            .iter()
            .filter_map(|o| match o {
                Obj::Ref(r) => Some(*r),
                _ => None,
            })
            .collect(),
        Obj::Ref(r) => vec![*r],
        _ => Vec::new(),
    }
}

/// The values directly inside a dictionary or array.
fn direct_children(value: &Obj) -> Vec<Obj> {
    match value {
        Obj::Dict(d) => d.iter().map(|(_, v)| v.clone()).collect(),
        Obj::Array(a) => a.clone(),
        _ => Vec::new(),
    }
}

/// Every reference anywhere inside a value (nesting is bounded by the lexer).
fn all_refs(value: &Obj) -> Vec<Ref> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Obj::Ref(r) => out.push(*r),
            Obj::Dict(d) => stack.extend(d.iter().map(|(_, v)| v)),
            Obj::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_levels_are_ordered_and_docmdp_sets_the_most_allowed() {
        assert!(Change::ValidationData < Change::Signatures);
        assert!(Change::FormFilling < Change::Annotations);
        assert_eq!(Change::allowed(Some(1)), Change::ValidationData);
        assert_eq!(Change::allowed(Some(2)), Change::FormFilling);
        assert_eq!(Change::allowed(Some(3)), Change::Annotations);
        assert_eq!(Change::allowed(None), Change::Annotations);
    }

    #[test]
    fn changed_keys_sees_added_removed_and_changed_values() {
        let old: Dict = vec![(b"A".to_vec(), Obj::Int(1)), (b"B".to_vec(), Obj::Int(2))];
        let new: Dict = vec![(b"A".to_vec(), Obj::Int(1)), (b"C".to_vec(), Obj::Int(3))];
        assert_eq!(changed_keys(Some(&old), &new), vec![b"B".to_vec(), b"C".to_vec()]);
        assert!(changed_keys(Some(&old), &old).is_empty());
    }
}
