//! Test files for the PDF module's unit tests and PAdES's: small valid PDFs in each cross-reference form, and the
//! readings' work counters. The hostile files shared with the integration tests are in `crate::hostile`.

use crate::hostile::zlib;

use super::{Analysis, Doc, Limits, PdfError, PdfInfo};

/// A PDF whose objects 1..=n are `objects` (1 is the catalog), with a classic cross-reference table.
pub(crate) fn pdf(objects: &[&str]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /ID [<0102> <0304>] >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// The same objects, all but the catalog in an (uncompressed) object stream, with a cross-reference stream.
pub(crate) fn pdf_with_object_stream(objects: &[&str]) -> Vec<u8> {
    object_stream_pdf(objects, 0, |content| (content, String::new()))
}

/// As [`pdf_with_object_stream`], the stream's content followed by `tail` spaces and encoded by `encode`, which
/// returns the data and the dictionary entries (e.g. `/Filter /FlateDecode`) that say how.
pub(crate) fn object_stream_pdf(
    objects: &[&str],
    tail: usize,
    encode: impl Fn(Vec<u8>) -> (Vec<u8>, String),
) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let n = objects.len() as u32;
    let catalog_at = out.len();
    out.extend_from_slice(format!("1 0 obj\n{}\nendobj\n", objects[0]).as_bytes());
    let (mut header, mut body) = (String::new(), String::new());
    for (i, o) in objects.iter().enumerate().skip(1) {
        header.push_str(&format!("{} {} ", i + 1, body.len()));
        body.push_str(o);
        body.push('\n');
    }
    let stm_num = n + 1;
    let stm_at = out.len();
    let mut content = format!("{header}{body}").into_bytes();
    content.resize(content.len() + tail, b' ');
    let (data, filter) = encode(content);
    out.extend_from_slice(
        format!(
            "{stm_num} 0 obj\n<< /Type /ObjStm /N {} /First {} /Length {}{filter} >>\nstream\n",
            n - 1,
            header.len(),
            data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\nendstream\nendobj\n");
    let xref_num = n + 2;
    let xref_at = out.len();
    let mut rows = vec![[0u8, 0, 0, 0, 0]];
    rows.push([1, 0, 0, catalog_at as u8, 0]);
    let mut rows: Vec<Vec<u8>> = rows.into_iter().map(|r| r.to_vec()).collect();
    rows[1] = [
        vec![1u8],
        (catalog_at as u32).to_be_bytes().to_vec()[1..].to_vec(),
        vec![0],
    ]
    .concat();
    rows[0] = vec![0, 0, 0, 0, 0];
    for i in 1..n {
        rows.push([vec![2u8], stm_num.to_be_bytes()[1..].to_vec(), vec![(i - 1) as u8]].concat());
    }
    rows.push([vec![1u8], (stm_at as u32).to_be_bytes()[1..].to_vec(), vec![0]].concat());
    rows.push([vec![1u8], (xref_at as u32).to_be_bytes()[1..].to_vec(), vec![0]].concat());
    let data: Vec<u8> = rows.concat();
    out.extend_from_slice(
        format!(
            "{xref_num} 0 obj\n<< /Type /XRef /Size {} /W [1 3 1] /Root 1 0 R /Length {} >>\nstream\n",
            xref_num + 1,
            data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&data);
    out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

/// A catalog whose page tree is object 2.
pub(crate) const CATALOG: &str = "<< /Type /Catalog /Pages 2 0 R >>";
/// Two A4 pages, the second turned by 90 degrees: the catalog, the page tree and the pages.
pub(crate) const TWO_PAGES: [&str; 4] = [
    CATALOG,
    "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 /MediaBox [0 0 595.2756 841.8898] >>",
    "<< /Type /Page /Parent 2 0 R >>",
    "<< /Type /Page /Parent 2 0 R /Rotate 90 /Annots [] >>",
];

/// A PDF certified by its author with no changes allowed (DocMDP `P` 1).
pub(crate) const CERTIFIED_NO_CHANGES: [&str; 5] = [
    "<< /Type /Catalog /Pages 2 0 R /Perms << /DocMDP 5 0 R >> >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R >>",
    "<< >>",
    "<< /Type /Sig /Reference [<< /TransformMethod /DocMDP /TransformParams << /P 1 /V /1.2 >> >>] >>",
];

/// The default limits.
pub(crate) fn limits() -> Limits {
    Limits::default()
}

/// `content` compressed, and the entry that says so: an `encode` for [`object_stream_pdf`].
pub(crate) fn flate(content: Vec<u8>) -> (Vec<u8>, String) {
    (zlib(&content), " /Filter /FlateDecode".into())
}

/// The work a reading of `file` (as [`inspect`](super::inspect) does it) left on its counters: (nodes, scanned,
/// decoded), and its result.
pub(crate) fn work(file: &[u8], limits: &Limits) -> ((usize, usize, usize), Result<PdfInfo, PdfError>) {
    let doc = match Doc::open(file, limits) {
        Ok(d) => d,
        Err(e) => return ((0, 0, 0), Err(e)),
    };
    let info = Analysis::of(&doc).map(|a| a.info());
    (doc.budget.spent(), info)
}

/// Why `r` was refused as too complex (and a panic if it was not).
pub(crate) fn too_complex<T: std::fmt::Debug>(r: Result<T, PdfError>) -> String {
    match r {
        Err(PdfError::TooComplex(why)) => why.to_string(),
        other => panic!("expected TooComplex, got {other:?}"),
    }
}

/// A form whose field has `/Kids` naming array 5, whose two direct kid dictionaries name array 6 as their
/// `/Kids`, and so on `levels` deep: 2^levels paths to one signature field at the bottom.
pub(crate) fn fan_out_fields(levels: usize) -> Vec<u8> {
    let sig = 5 + levels;
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] >> >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".into(),
        "<< /Type /Page /Parent 2 0 R >>".into(),
        "<< /T (top) /FT /Sig /Kids 5 0 R >>".into(),
    ];
    for i in 0..levels {
        let next = 5 + i + 1;
        objects.push(if i + 1 < levels {
            format!("[<< /Kids {next} 0 R >> << /Kids {next} 0 R >>]")
        } else {
            format!("[<< /T (s) /V {sig} 0 R >>]")
        });
    }
    objects.push("<< /Type /Sig /SubFilter /ETSI.CAdES.detached /ByteRange [0 1 2 3] /Contents <3003020101> >>".into());
    pdf(&objects.iter().map(String::as_str).collect::<Vec<_>>())
}
