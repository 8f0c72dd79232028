//! The content of a visible signature's box: lines of text in a thin frame, in Helvetica with WinAnsi encoding
//! (a standard font, so nothing is embedded), sized to fit and turned upright on a rotated page.

use super::{stream_object, Dict, Obj, PageGeometry, PdfError};

/// A number for a content stream or a dictionary: at most 4 decimals, no trailing zeros.
pub(crate) fn fmt_num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match s {
        "-0" | "" => "0".into(),
        s => s.into(),
    }
}

/// The rectangle normalised, or why it cannot be used on this page.
pub(crate) fn checked_rect(rect: [f64; 4], page: &PageGeometry) -> Result<[f64; 4], PdfError> {
    if rect.iter().any(|v| !v.is_finite()) {
        return Err(PdfError::InvalidAppearance(crate::text!(
            "error.pdf.coordinates_not_numbers"
        )));
    }
    let [x1, y1, x2, y2] = rect;
    let r = [x1.min(x2), y1.min(y2), x1.max(x2), y1.max(y2)];
    if r[2] - r[0] < 10.0 || r[3] - r[1] < 10.0 {
        return Err(PdfError::InvalidAppearance(crate::text!(
            "error.pdf.must_at_least_10_points"
        )));
    }
    let [mx1, my1, mx2, my2] = page.media_box;
    let tolerance = 1.0;
    if r[0] < mx1 - tolerance || r[1] < my1 - tolerance || r[2] > mx2 + tolerance || r[3] > my2 + tolerance {
        return Err(PdfError::InvalidAppearance(crate::text!(
            "error.pdf.does_not_lie_within_page",
            x1 = fmt_num(mx1),
            y1 = fmt_num(my1),
            x2 = fmt_num(mx2),
            y2 = fmt_num(my2)
        )));
    }
    Ok(r)
}

/// A form XObject showing `lines` (each a text and its size relative to the others) in a thin frame within
/// `rect`: Helvetica sized to fit, turned upright on a page rotated by `rotate` degrees. Text is written in
/// WinAnsiEncoding (see [`win_ansi`]).
pub(crate) fn framed_text(lines: &[(&str, f64)], rect: [f64; 4], rotate: u16) -> Vec<u8> {
    let (w, h) = (rect[2] - rect[0], rect[3] - rect[1]);
    // In the form's own space the box is as the viewer shows it: width and height swap at 90 and 270 degrees.
    let (bw, bh) = if rotate == 90 || rotate == 270 { (h, w) } else { (w, h) };
    let lines: Vec<(Vec<u8>, f64)> = lines.iter().map(|(text, scale)| (win_ansi(text), *scale)).collect();
    let content = content_stream(&lines, bw, bh);
    stream_object(&form_dict(bw, bh, rotate), &content)
}

/// The content stream of a `bw` by `bh` box: the frame, then the lines, centred vertically, in the largest font
/// size (at most 14) at which they fit.
fn content_stream(lines: &[(Vec<u8>, f64)], bw: f64, bh: f64) -> Vec<u8> {
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
    for (text, scale) in lines {
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
    content
}

/// The form XObject's dictionary: its box, Helvetica as `/F1`, and on a rotated page the matrix that turns it.
fn form_dict(bw: f64, bh: f64, rotate: u16) -> Dict {
    let matrix = match rotate {
        90 => [0.0, 1.0, -1.0, 0.0, 0.0, 0.0],
        180 => [-1.0, 0.0, 0.0, -1.0, 0.0, 0.0],
        270 => [0.0, -1.0, 1.0, 0.0, 0.0, 0.0],
        _ => [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
    };
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
    dict
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_ansi_keeps_latin_1_and_drops_romanian_diacritics_it_lacks() {
        assert_eq!(win_ansi("Ștefănescu Țară"), b"Stefanescu Tara");
        assert_eq!(win_ansi("şţŞŢ ăĂ"), b"stST aA");
        assert_eq!(win_ansi("âÂîÎ"), [0xe2, 0xc2, 0xee, 0xce]);
        assert_eq!(win_ansi("€ – Łódź"), [0x80, b' ', 0x96, b' ', b'L', 0xf3, b'd', b'z']);
        assert_eq!(win_ansi("名"), b"?");
        assert_eq!(pdf_literal(&win_ansi("(î)\\")), b"(\\(\\356\\)\\\\)");
    }
}
