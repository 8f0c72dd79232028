//! The page tree: each page's reference and geometry, walked without recursion and without trusting `/Count`.

use std::collections::{HashMap, HashSet};

use super::{bad, get, Bad, Dict, Doc, Obj, Ref};

/// A page's geometry, in PDF user-space points, as a signing UI needs it to place a rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageGeometry {
    /// `[x1 y1 x2 y2]` of the page's `/MediaBox` (inherited or default US Letter), normalised so x1 < x2, y1 < y2.
    pub media_box: [f64; 4],
    /// `/Rotate`: 0, 90, 180 or 270, clockwise, as viewers show the page.
    pub rotate: u16,
}

/// A page: the object an annotation's `/P` names, and its geometry.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) reference: Ref,
    pub(crate) geometry: PageGeometry,
}

/// The page attributes a node of the page tree passes down to its kids.
#[derive(Clone, Copy)]
struct Inheritable {
    media_box: Option<[f64; 4]>,
    rotate: Option<i64>,
}

impl Inheritable {
    /// The attributes of `node`: its own, else its parent's.
    fn of(node: &Dict, parent: Inheritable) -> Inheritable {
        Inheritable {
            media_box: get(node, b"MediaBox").and_then(rect_of).or(parent.media_box),
            rotate: match get(node, b"Rotate") {
                Some(Obj::Int(i)) => Some(*i),
                _ => parent.rotate,
            },
        }
    }

    /// A page's geometry from its attributes: US Letter when no node has a `/MediaBox`, a rotation that is not a
    /// multiple of 90 degrees read as none.
    fn geometry(self) -> PageGeometry {
        PageGeometry {
            media_box: self.media_box.unwrap_or([0.0, 0.0, 612.0, 792.0]),
            rotate: match self.rotate.unwrap_or(0).rem_euclid(360) {
                r @ (90 | 180 | 270) => r as u16,
                _ => 0,
            },
        }
    }
}

/// Walks the page tree without trusting `/Count` and without recursion; refuses loops and a tree whose root
/// `/Count` disagrees with the pages it has.
pub(super) fn pages(doc: &Doc, catalog: &Dict) -> Result<Vec<Page>, Bad> {
    let Some(Obj::Ref(root)) = get(catalog, b"Pages") else {
        return bad(crate::text!("error.pdf.catalog_has_no_page_tree"));
    };
    let mut out = Vec::new();
    let mut visited = HashSet::new();
    let none = Inheritable {
        media_box: None,
        rotate: None,
    };
    let mut stack = vec![(*root, none, 0usize)];
    let mut claimed: Option<i64> = None;
    while let Some((r, inherited, depth)) = stack.pop() {
        doc.budget.node()?;
        doc.budget.depth(depth)?;
        if !visited.insert(r.num) {
            return bad(crate::text!("error.pdf.page_tree_refers_back_itself"));
        }
        if visited.len() > doc.limits.max_objects {
            return bad(crate::text!("error.pdf.page_tree_too_large"));
        }
        let Obj::Dict(node) = doc.fetch(r, 0)?.0 else {
            return bad(crate::text!("error.pdf.page_tree_holds_something_that"));
        };
        let attributes = Inheritable::of(&node, inherited);
        match kids(doc, &node)? {
            Some(kids) => {
                if depth == 0 {
                    claimed = match get(&node, b"Count") {
                        Some(Obj::Int(c)) => Some(*c),
                        _ => None,
                    };
                }
                for kid in kids.iter().rev() {
                    let Obj::Ref(kid) = kid else {
                        return bad(crate::text!("error.pdf.page_tree_has_page_that"));
                    };
                    stack.push((*kid, attributes, depth + 1));
                }
            }
            None => out.push(Page {
                reference: r,
                geometry: attributes.geometry(),
            }),
        }
    }
    if out.is_empty() {
        return bad(crate::text!("error.pdf.has_no_pages"));
    }
    if let Some(c) = claimed {
        if c != out.len() as i64 {
            return bad(crate::text!("error.pdf.page_tree_says_has_pages", c, len = out.len()));
        }
    }
    Ok(out)
}

/// Which page lists each annotation in its `/Annots`: object number to the index of the first page that does. For
/// a widget that does not name its page (`/P` is optional).
pub(super) fn annotation_pages(doc: &Doc, pages: &[Page]) -> Result<HashMap<u32, usize>, Bad> {
    let mut out = HashMap::new();
    for (i, page) in pages.iter().enumerate() {
        let Obj::Dict(page) = doc.fetch(page.reference, 0)?.0 else {
            continue;
        };
        let Some(annots) = get(&page, b"Annots") else {
            continue;
        };
        if let Obj::Array(annots) = doc.deref(annots)? {
            for annot in annots {
                doc.budget.node()?;
                if let Obj::Ref(r) = annot {
                    out.entry(r.num).or_insert(i);
                }
            }
        }
    }
    Ok(out)
}

/// The `/Kids` of a node of the page tree, or `None` for a page (a node of `/Type /Page`, or without kids).
fn kids(doc: &Doc, node: &Dict) -> Result<Option<Vec<Obj>>, Bad> {
    match get(node, b"Kids") {
        Some(k) if get(node, b"Type") != Some(&Obj::name("Page")) => match doc.deref(k)? {
            Obj::Array(a) => Ok(Some(a)),
            _ => bad(crate::text!("error.pdf.page_tree_has_damaged_kids")),
        },
        _ => Ok(None),
    }
}

/// A rectangle `[x1 y1 x2 y2]` of four numbers, normalised so x1 < x2, y1 < y2.
pub(super) fn rect_of(obj: &Obj) -> Option<[f64; 4]> {
    let Obj::Array(a) = obj else { return None };
    let v: Vec<f64> = a.iter().map(Obj::as_f64).collect::<Option<_>>()?;
    let [x1, y1, x2, y2] = <[f64; 4]>::try_from(v).ok()?;
    Some([x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)])
}

#[cfg(test)]
mod tests {
    use crate::pdf::testing::{limits, pdf, work, CATALOG};
    use crate::pdf::PdfError;

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
                Err(PdfError::Unreadable(m)) => assert!(m.to_string().contains(why), "{m}"),
                other => panic!("{why}: {other:?}"),
            }
            assert!(nodes < 20, "{why}: {nodes} nodes");
        }
    }
}
