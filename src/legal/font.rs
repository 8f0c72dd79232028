//! DejaVu Sans, regular and bold: the one copy of the font programs in the binary, shared by every PDF the service
//! writes (its licence is in `fonts/LICENSE`). The trust documents hand the programs to `genpdf`; the invoices and
//! credit notes, laid out directly with `lopdf`, embed them through [`Embedded`] as composite fonts (Type0 over a
//! CIDFontType2, Identity-H, with a ToUnicode map), so that every Romanian letter (ă â î ș ț, capitals and the old
//! cedilla forms included) is drawn and comes back out of text extraction.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use lopdf::{dictionary, Document, Object, ObjectId, Stream, StringFormat};

/// DejaVu Sans.
pub const REGULAR: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold.
pub const BOLD: &[u8] = include_bytes!("fonts/DejaVuSans-Bold.ttf");

/// One of the two faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Regular,
    Bold,
}

impl Face {
    fn program(self) -> &'static [u8] {
        match self {
            Face::Regular => REGULAR,
            Face::Bold => BOLD,
        }
    }

    fn postscript_name(self) -> &'static str {
        match self {
            Face::Regular => "DejaVuSans",
            Face::Bold => "DejaVuSans-Bold",
        }
    }

    fn parsed(self) -> Option<&'static rusttype::Font<'static>> {
        static REGULAR_FONT: OnceLock<Option<rusttype::Font<'static>>> = OnceLock::new();
        static BOLD_FONT: OnceLock<Option<rusttype::Font<'static>>> = OnceLock::new();
        let cell = match self {
            Face::Regular => &REGULAR_FONT,
            Face::Bold => &BOLD_FONT,
        };
        cell.get_or_init(|| rusttype::Font::from_bytes(self.program()).ok())
            .as_ref()
    }

    /// The glyph of `c`, or `None` when the face has none (the caller then writes a substitute).
    pub fn glyph(self, c: char) -> Option<u16> {
        let font = self.parsed()?;
        let id = font.glyph(c).id().0;
        u16::try_from(id).ok().filter(|&id| id != 0)
    }

    /// The advance width of a glyph, in thousandths of the font size (the unit of PDF widths).
    pub fn advance(self, glyph: u16) -> f32 {
        let Some(font) = self.parsed() else {
            return 1000.0;
        };
        let units = f32::from(font.units_per_em());
        let scaled = font
            .glyph(rusttype::GlyphId(u32::from(glyph)))
            .scaled(rusttype::Scale::uniform(units));
        scaled.h_metrics().advance_width * 1000.0 / units
    }
}

/// Text shaped for one face: glyph ids (big-endian pairs, Identity-H) and the characters they stand for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shaped {
    pub glyphs: Vec<(u16, char)>,
}

impl Shaped {
    /// `text` in `face`: a character the face lacks becomes `?`, a control character a space, and combining marks
    /// are composed first where Romanian needs it (s + comma below → ș).
    pub fn new(face: Face, text: &str) -> Shaped {
        let mut glyphs = Vec::with_capacity(text.len());
        for c in compose(text).chars() {
            let c = if c.is_control() { ' ' } else { c };
            match face.glyph(c) {
                Some(g) => glyphs.push((g, c)),
                None => {
                    if let Some(g) = face.glyph('?') {
                        glyphs.push((g, '?'));
                    }
                }
            }
        }
        Shaped { glyphs }
    }

    /// The width at `size` points.
    pub fn width(&self, face: Face, size: f32) -> f32 {
        self.glyphs.iter().map(|&(g, _)| face.advance(g)).sum::<f32>() * size / 1000.0
    }

    /// The string operand of `Tj`: two bytes per glyph.
    pub fn operand(&self) -> Object {
        let bytes = self.glyphs.iter().flat_map(|&(g, _)| g.to_be_bytes()).collect();
        Object::String(bytes, StringFormat::Hexadecimal)
    }
}

/// The Romanian letters written with a combining mark, composed (ș ț ă â î and capitals); other marks are kept.
fn compose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let composed = match (out.chars().next_back(), c) {
            (Some('s'), '\u{326}' | '\u{327}') => Some('ș'),
            (Some('S'), '\u{326}' | '\u{327}') => Some('Ș'),
            (Some('t'), '\u{326}' | '\u{327}') => Some('ț'),
            (Some('T'), '\u{326}' | '\u{327}') => Some('Ț'),
            (Some('a'), '\u{306}') => Some('ă'),
            (Some('A'), '\u{306}') => Some('Ă'),
            (Some('a'), '\u{302}') => Some('â'),
            (Some('A'), '\u{302}') => Some('Â'),
            (Some('i'), '\u{302}') => Some('î'),
            (Some('I'), '\u{302}') => Some('Î'),
            _ => None,
        };
        match composed {
            Some(letter) => {
                out.pop();
                out.push(letter);
            }
            None => out.push(c),
        }
    }
    out
}

/// The faces a document used, and which glyphs of each: what [`Embedded::write`] puts in the PDF.
#[derive(Debug, Default)]
pub struct Embedded {
    used: [BTreeMap<u16, char>; 2],
}

impl Embedded {
    /// Records the glyphs of a shaped text.
    pub fn record(&mut self, face: Face, shaped: &Shaped) {
        let used = &mut self.used[face as usize];
        for &(g, c) in &shaped.glyphs {
            used.entry(g).or_insert(c);
        }
    }

    /// Adds both faces to `doc`; returns the font dictionaries' ids, regular then bold.
    pub fn write(&self, doc: &mut Document) -> [ObjectId; 2] {
        [
            composite(doc, Face::Regular, &self.used[0]),
            composite(doc, Face::Bold, &self.used[1]),
        ]
    }
}

/// A Type0 font over the whole TrueType program (no subsetting: the programs are compressed, a few hundred
/// kilobytes), with the widths and the Unicode of the glyphs used.
fn composite(doc: &mut Document, face: Face, used: &BTreeMap<u16, char>) -> ObjectId {
    let program = face.program();
    let mut file = Stream::new(
        dictionary! { "Length1" => i64::try_from(program.len()).unwrap_or(i64::MAX) },
        program.to_vec(),
    );
    file.allows_compression = true;
    let file_id = doc.add_object(file);
    let (ascent, descent) = face
        .parsed()
        .map(|f| {
            let v = f.v_metrics_unscaled();
            let units = f32::from(f.units_per_em());
            (v.ascent * 1000.0 / units, v.descent * 1000.0 / units)
        })
        .unwrap_or((928.0, -236.0));
    let descriptor_id = doc.add_object(dictionary! {
        "Type" => "FontDescriptor",
        "FontName" => face.postscript_name(),
        "Flags" => 32,
        // DejaVu Sans's bounding box (its `head` table), in thousandths of an em.
        "FontBBox" => vec![(-1021).into(), (-463).into(), 1793.into(), 1232.into()],
        "ItalicAngle" => 0,
        "Ascent" => ascent,
        "Descent" => descent,
        "CapHeight" => 729,
        "StemV" => if face == Face::Bold { 120 } else { 80 },
        "FontFile2" => file_id,
    });
    let widths: Vec<Object> = used
        .keys()
        .flat_map(|&g| {
            [
                Object::Integer(i64::from(g)),
                Object::Array(vec![Object::Real(face.advance(g))]),
            ]
        })
        .collect();
    let cid_font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "CIDFontType2",
        "BaseFont" => face.postscript_name(),
        "CIDSystemInfo" => dictionary! {
            "Registry" => Object::string_literal("Adobe"),
            "Ordering" => Object::string_literal("Identity"),
            "Supplement" => 0,
        },
        "FontDescriptor" => descriptor_id,
        "DW" => 1000,
        "W" => widths,
        "CIDToGIDMap" => "Identity",
    });
    let mut to_unicode = Stream::new(dictionary! {}, to_unicode_cmap(used).into_bytes());
    to_unicode.allows_compression = true;
    let to_unicode_id = doc.add_object(to_unicode);
    doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type0",
        "BaseFont" => face.postscript_name(),
        "Encoding" => "Identity-H",
        "DescendantFonts" => vec![cid_font_id.into()],
        "ToUnicode" => to_unicode_id,
    })
}

/// The CMap that maps each glyph used back to its character (PDF 32000-1 §9.10.3).
fn to_unicode_cmap(used: &BTreeMap<u16, char>) -> String {
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let entries: Vec<_> = used.iter().collect();
    for chunk in entries.chunks(100) {
        cmap.push_str(&format!("{} beginbfchar\n", chunk.len()));
        for (g, c) in chunk {
            let utf16: String = c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("{u:04X}")).collect();
            cmap.push_str(&format!("<{g:04X}> <{utf16}>\n"));
        }
        cmap.push_str("endbfchar\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    cmap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_romanian_letter_has_a_glyph_in_both_faces() {
        for face in [Face::Regular, Face::Bold] {
            for c in "ăâîșțĂÂÎȘȚşţŞŢ€".chars() {
                assert!(face.glyph(c).is_some(), "{c} in {face:?}");
            }
            assert!(face.advance(face.glyph('W').unwrap()) > face.advance(face.glyph('i').unwrap()));
        }
    }

    #[test]
    fn decomposed_letters_are_composed_and_unknown_ones_become_a_question_mark() {
        let shaped = Shaped::new(Face::Regular, "s\u{326}a\u{306}漢\t");
        let chars: String = shaped.glyphs.iter().map(|&(_, c)| c).collect();
        assert_eq!(chars, "șă? ");
    }
}
