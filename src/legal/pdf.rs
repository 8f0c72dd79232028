//! A trust document as a PDF: A4, DejaVu Sans embedded (its licence is in `fonts/LICENSE`), laid out by `genpdf`;
//! then recompressed with `lopdf`, the font programs shared, so a document weighs a few hundred kilobytes rather
//! than four copies of the font. Rendering takes a few hundred milliseconds: callers cache the bytes and run it off
//! the async runtime.

use genpdf::elements::{Break, Paragraph, UnorderedList};
use genpdf::fonts::{FontData, FontFamily};
use genpdf::style::Style;
use genpdf::Element as _;

use super::{Block, Document, LegalError};

use super::font::{BOLD, REGULAR};

fn font(bytes: &[u8]) -> Result<FontData, LegalError> {
    FontData::new(bytes.to_vec(), None).map_err(|e| LegalError::Pdf(e.to_string()))
}

/// The PDF of `doc`; `version_label` and `effective_label` are the words before the version and the date, in the
/// document's language.
pub fn render(doc: &Document, version_label: &str, effective_label: &str) -> Result<Vec<u8>, LegalError> {
    let subtitle = format!("{version_label} {} · {effective_label} {}", doc.version, doc.effective);
    render_blocks(&doc.title, &subtitle, &doc.blocks)
}

/// A document of Parafa's own making (an order note) laid out as the trust documents are: a title, a line under it,
/// then headings, paragraphs and lists.
pub fn render_blocks(title: &str, subtitle: &str, blocks: &[Block]) -> Result<Vec<u8>, LegalError> {
    let family = FontFamily {
        regular: font(REGULAR)?,
        bold: font(BOLD)?,
        italic: font(REGULAR)?,
        bold_italic: font(BOLD)?,
    };
    let mut pdf = genpdf::Document::new(family);
    pdf.set_title(title.to_owned());
    pdf.set_font_size(10);
    pdf.set_line_spacing(1.2);
    let mut decorator = genpdf::SimplePageDecorator::new();
    decorator.set_margins(18);
    pdf.set_page_decorator(decorator);

    pdf.push(Paragraph::new(title.to_owned()).styled(Style::new().bold().with_font_size(16)));
    pdf.push(Paragraph::new(subtitle.to_owned()));
    pdf.push(Break::new(1));
    let mut list: Option<UnorderedList> = None;
    for block in blocks {
        if let Block::Item(text) = block {
            list.get_or_insert_with(UnorderedList::new)
                .push(Paragraph::new(text.clone()));
            continue;
        }
        if let Some(l) = list.take() {
            pdf.push(l);
        }
        match block {
            Block::Heading(text) => {
                pdf.push(Break::new(0.5));
                pdf.push(Paragraph::new(text.clone()).styled(Style::new().bold().with_font_size(12)));
            }
            Block::Paragraph(text) => pdf.push(Paragraph::new(text.clone())),
            Block::Item(_) => {}
        }
    }
    if let Some(l) = list.take() {
        pdf.push(l);
    }
    let mut raw = Vec::new();
    pdf.render(&mut raw).map_err(|e| LegalError::Pdf(e.to_string()))?;
    compact(&raw)
}

/// Shares identical streams (genpdf embeds the family's four fonts, two of them twice here) and compresses them.
fn compact(raw: &[u8]) -> Result<Vec<u8>, LegalError> {
    use std::collections::HashMap;
    let mut doc = lopdf::Document::load_mem(raw).map_err(|e| LegalError::Pdf(e.to_string()))?;
    let mut first: HashMap<Vec<u8>, lopdf::ObjectId> = HashMap::new();
    let mut replace: HashMap<lopdf::ObjectId, lopdf::ObjectId> = HashMap::new();
    for (id, object) in &doc.objects {
        if let lopdf::Object::Stream(s) = object {
            if s.content.len() > 4096 {
                match first.get(&s.content) {
                    Some(kept) => {
                        replace.insert(*id, *kept);
                    }
                    None => {
                        first.insert(s.content.clone(), *id);
                    }
                }
            }
        }
    }
    if !replace.is_empty() {
        for object in doc.objects.values_mut() {
            redirect(object, &replace);
        }
        for id in replace.keys() {
            doc.objects.remove(id);
        }
    }
    doc.compress();
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(|e| LegalError::Pdf(e.to_string()))?;
    Ok(out)
}

fn redirect(object: &mut lopdf::Object, to: &std::collections::HashMap<lopdf::ObjectId, lopdf::ObjectId>) {
    match object {
        lopdf::Object::Reference(id) => {
            if let Some(kept) = to.get(id) {
                *id = *kept;
            }
        }
        lopdf::Object::Array(items) => items.iter_mut().for_each(|o| redirect(o, to)),
        lopdf::Object::Dictionary(d) => d.iter_mut().for_each(|(_, o)| redirect(o, to)),
        lopdf::Object::Stream(s) => s.dict.iter_mut().for_each(|(_, o)| redirect(o, to)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;
    use crate::legal::{current, DocName};

    #[test]
    fn renders_the_romanian_pds_with_its_diacritics() {
        let doc = current(DocName::Pds, Lang::Ro).expect("parses");
        let pdf = render(&doc, "Versiunea", "în vigoare de la").expect("renders");
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.len() < 2_000_000, "{} bytes", pdf.len());
        let text = lopdf::Document::load_mem(&pdf).expect("loads");
        assert!(text.get_pages().len() >= 2);
    }
}
