//! Stream filters: FlateDecode with its PNG predictors, the filter of cross-reference and object streams, decoded
//! within the reading's budget. Nothing else is decoded: the reader never looks at page contents or images.

use std::borrow::Cow;
use std::io::Read;

use super::budget::Budget;
use super::{bad, get, Bad, Dict, Obj};

/// Filters one stream may chain.
const MAX_FILTERS: usize = 4;

/// Stream data through its filters, within the decoding limits: borrowed when there is no filter. Only
/// FlateDecode (with or without a PNG predictor) is decoded, the filter of cross-reference and object streams;
/// damaged compressed data is refused, never read as empty.
pub(super) fn decode<'a>(budget: &Budget, dict: &Dict, raw: &'a [u8]) -> Result<Cow<'a, [u8]>, Bad> {
    let filters: Vec<Obj> = match get(dict, b"Filter") {
        None => return Ok(Cow::Borrowed(raw)),
        Some(Obj::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
    };
    if filters.len() > MAX_FILTERS {
        return bad(crate::text!("error.pdf.too_many_filters", most = MAX_FILTERS));
    }
    let params: Vec<Option<Dict>> = match get(dict, b"DecodeParms") {
        Some(Obj::Array(a)) => a
            .iter()
            .map(|p| match p {
                Obj::Dict(d) => Some(d.clone()),
                _ => None,
            })
            .collect(),
        Some(Obj::Dict(d)) => vec![Some(d.clone())],
        _ => Vec::new(),
    };
    let mut data = Cow::Borrowed(raw);
    for (i, filter) in filters.iter().enumerate() {
        match filter {
            Obj::Name(n) if n == b"FlateDecode" || n == b"Fl" => {
                let cap = budget.decode_cap();
                let inflated = inflate(&data, cap)?;
                budget.decoded(inflated.len())?;
                let predicted = match params.get(i).and_then(Option::as_ref) {
                    Some(p) => unpredict(inflated, p)?,
                    None => inflated,
                };
                data = Cow::Owned(predicted);
            }
            Obj::Name(n) => {
                return bad(crate::text!(
                    "error.pdf.unsupported_filter",
                    filter = String::from_utf8_lossy(n.get(..32).unwrap_or(n))
                ))
            }
            _ => return bad(crate::text!("error.pdf.filter_not_name")),
        }
    }
    Ok(data)
}

/// zlib-inflates `data` to at most `cap` bytes. Damaged data (a bad header, a bad block, a wrong checksum, an
/// early end) is refused: a reader that took it as empty would see a different file than other readers.
fn inflate(data: &[u8], cap: usize) -> Result<Vec<u8>, Bad> {
    if data.is_empty() {
        return bad(crate::text!("error.pdf.compressed_stream_empty"));
    }
    let mut out = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| Bad::Unreadable(crate::text!("error.pdf.compressed_stream_damaged", e)))?;
    if out.len() > cap {
        return Err(Bad::OverBudget(crate::text!(
            "error.pdf.compressed_stream_decodes_more_than",
            cap
        )));
    }
    Ok(out)
}

/// Undoes the predictor `/DecodeParms` names: none (1) or PNG (10 to 15, a filter type byte per row, as
/// cross-reference streams use). TIFF (2) is refused: no producer uses it for the streams this reader decodes.
fn unpredict(data: Vec<u8>, params: &Dict) -> Result<Vec<u8>, Bad> {
    let int = |key: &[u8], default: i64| match get(params, key) {
        Some(Obj::Int(i)) => *i,
        _ => default,
    };
    let predictor = int(b"Predictor", 1);
    if predictor == 1 {
        return Ok(data);
    }
    if !(10..=15).contains(&predictor) {
        return bad(crate::text!("error.pdf.unsupported_predictor", predictor));
    }
    let in_range = |v: i64, max: i64| (1..=max).contains(&v).then_some(v as usize);
    let (Some(colors), Some(bits), Some(columns)) = (
        in_range(int(b"Colors", 1), 32),
        in_range(int(b"BitsPerComponent", 8), 16),
        in_range(int(b"Columns", 1), 1 << 24),
    ) else {
        return bad(crate::text!("error.pdf.predictor_out_of_range"));
    };
    let bpp = (colors * bits).div_ceil(8);
    let row = (colors * bits * columns).div_ceil(8);
    if !data.len().is_multiple_of(row + 1) {
        return bad(crate::text!("error.pdf.predicted_rows_incomplete"));
    }
    let mut out = Vec::with_capacity(data.len() / (row + 1) * row);
    let mut previous = vec![0u8; row];
    for chunk in data.chunks_exact(row + 1) {
        let (kind, input) = (chunk[0], &chunk[1..]);
        let start = out.len();
        for (i, &x) in input.iter().enumerate() {
            let left = if i >= bpp { out[start + i - bpp] } else { 0 };
            let up = previous[i];
            let up_left = if i >= bpp { previous[i - bpp] } else { 0 };
            let predicted = match kind {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => paeth(left, up, up_left),
                _ => return bad(crate::text!("error.pdf.unknown_png_filter", kind)),
            };
            out.push(x.wrapping_add(predicted));
        }
        previous.copy_from_slice(&out[start..]);
    }
    Ok(out)
}

/// The PNG Paeth predictor: of left, up and up-left, the one nearest to left + up - up-left.
fn paeth(left: u8, up: u8, up_left: u8) -> u8 {
    let (a, b, c) = (i16::from(left), i16::from(up), i16::from(up_left));
    let p = a + b - c;
    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
    if pa <= pb && pa <= pc {
        left
    } else if pb <= pc {
        up
    } else {
        up_left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::zlib;
    use crate::pdf::testing::{flate, limits, object_stream_pdf, pdf, too_complex, work, TWO_PAGES};
    use crate::pdf::{inspect, Limits, PdfError, DEFAULT_MAX_DECODED_STREAM};

    #[test]
    fn a_compression_bomb_is_refused_by_the_output_cap() {
        // 20 MiB of spaces in an object stream: about 20 KB compressed.
        let bomb = object_stream_pdf(&TWO_PAGES, 20 << 20, flate);
        assert!(bomb.len() < 100_000);
        let ((_, _, decoded), result) = work(&bomb, &limits());
        assert!(too_complex(result).contains("decodes to more than 16777216 bytes"));
        assert!(decoded <= DEFAULT_MAX_DECODED_STREAM);
        // Per reading: streams each under the stream cap still add up.
        let small = Limits {
            max_decoded_stream: 8 << 20,
            max_decoded_total: 4 << 20,
            ..Limits::default()
        };
        let big = object_stream_pdf(&TWO_PAGES, 5 << 20, flate);
        assert!(too_complex(inspect(&big, &small)).contains("decodes to more than 4194304 bytes"));
        // A compressed stream within the caps reads as the uncompressed one.
        let fine = object_stream_pdf(&TWO_PAGES, 1000, flate);
        assert_eq!(inspect(&fine, &limits()), inspect(&pdf(&TWO_PAGES), &limits()));
    }

    #[test]
    fn damaged_compressed_data_is_refused_not_read_as_empty() {
        let garbage = |_: Vec<u8>| {
            (
                (0..200u8).map(|i| i.wrapping_mul(37)).collect(),
                " /Filter /FlateDecode".into(),
            )
        };
        let truncated = |content: Vec<u8>| {
            let z = zlib(&content);
            (z[..z.len() / 2].to_vec(), " /Filter /FlateDecode".to_string())
        };
        let bad_checksum = |content: Vec<u8>| {
            let mut z = zlib(&content);
            let last = z.len() - 1;
            z[last] ^= 0xff;
            (z, " /Filter /FlateDecode".to_string())
        };
        let unknown = |content: Vec<u8>| (content, " /Filter /LZWDecode".to_string());
        for (name, file) in [
            ("garbage", object_stream_pdf(&TWO_PAGES, 0, garbage)),
            ("truncated", object_stream_pdf(&TWO_PAGES, 0, truncated)),
            ("checksum", object_stream_pdf(&TWO_PAGES, 0, bad_checksum)),
        ] {
            match inspect(&file, &limits()) {
                Err(PdfError::Unreadable(m)) => {
                    assert!(m.to_string().contains("compressed stream is damaged"), "{name}: {m}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        match inspect(&object_stream_pdf(&TWO_PAGES, 0, unknown), &limits()) {
            Err(PdfError::Unreadable(m)) => assert!(m.to_string().contains("LZWDecode, which is not supported"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn png_predictors_are_undone() {
        // Two rows of 3 bytes, filtered Up then Sub/Avg/Paeth, as cross-reference streams are written.
        let rows = [[1u8, 0, 10], [1, 0, 20], [2, 1, 5], [0, 0, 0]];
        let params: Dict = vec![
            (b"Predictor".to_vec(), Obj::Int(12)),
            (b"Columns".to_vec(), Obj::Int(3)),
        ];
        let mut encoded = Vec::new();
        let mut previous = [0u8; 3];
        for (n, row) in rows.iter().enumerate() {
            let kind = (n % 5) as u8;
            encoded.push(kind);
            for i in 0..3 {
                let left = if i > 0 { row[i - 1] } else { 0 };
                let up_left = if i > 0 { previous[i - 1] } else { 0 };
                let predicted = match kind {
                    0 => 0,
                    1 => left,
                    2 => previous[i],
                    3 => ((u16::from(left) + u16::from(previous[i])) / 2) as u8,
                    _ => paeth(left, previous[i], up_left),
                };
                encoded.push(row[i].wrapping_sub(predicted));
            }
            previous = *row;
        }
        assert_eq!(unpredict(encoded.clone(), &params).unwrap(), rows.concat());
        assert!(unpredict(encoded[..5].to_vec(), &params).is_err());
        let tiff = vec![(b"Predictor".to_vec(), Obj::Int(2))];
        assert!(unpredict(encoded, &tiff).is_err());
    }
}
