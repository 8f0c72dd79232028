//! Hostile files for the routes that read outside bytes: PDFs whose object graph fans out, nests deep or makes a
//! reader scan or decompress far more than the file holds, and CMS signatures with more parts than a verifier
//! should take. Each generator is small and documented so another test (a capped-memory run, a fuzz seed corpus)
//! can reuse them.

#![allow(dead_code)]

use std::io::Write;

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, DecodePem, Encode};
use x509_cert::Certificate;

/// A hostile file and whether every reader must refuse it (`false`: it is valid once read with care, e.g. a
/// shared `/Kids` array walked once).
pub struct Hostile {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub refused: bool,
}

/// Every PDF of the corpus.
pub fn pdf_corpus() -> Vec<Hostile> {
    let h = |name, bytes, refused| Hostile { name, bytes, refused };
    vec![
        h("field fan-out", field_fan_out(30, 16), false),
        h("deep page tree", deep_page_tree(200), true),
        h("deep field tree", deep_field_tree(200), true),
        h("huge /Count", huge_count(), true),
        h("xref chain without /Length", xref_chain(1000, 2048, false), true),
        h("compression bomb", flate_object_stream(20 << 20, None), true),
        h("garbage Flate", flate_object_stream(0, Some(garbage(300))), true),
        h("object stream loop", object_stream_loop(), true),
    ]
}

/// A PDF whose objects 1..=n are `objects` (1 is the catalog), with a classic cross-reference table.
pub fn pdf(objects: &[String]) -> Vec<u8> {
    pdf_with_trailer(objects, "")
}

/// [`pdf`] with `trailer_extra` entries written after `/Size` and `/Root` in the trailer (a later key wins).
pub fn pdf_with_trailer<S: AsRef<str>>(objects: &[S], trailer_extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{}\nendobj\n", i + 1, body.as_ref()).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    let extra = if trailer_extra.is_empty() {
        String::new()
    } else {
        format!(" {trailer_extra}")
    };
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R{extra} >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The form field tree of a few KB that has `width^levels` paths: field 4's `/Kids` is array 5, which holds
/// `width` direct kid dictionaries whose `/Kids` all name array 6, and so on `levels` deep. A reader that expands
/// a shared array each time it meets it never finishes (or runs out of memory); it has no signature.
pub fn field_fan_out(levels: usize, width: usize) -> Vec<u8> {
    let mut objects = strings(&[
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] >> >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        "<< /T (top) /FT /Tx /Kids 5 0 R >>",
    ]);
    for i in 0..levels {
        let kid = if i + 1 < levels {
            format!("<< /Kids {} 0 R >>", 5 + i + 1)
        } else {
            "<< /T (leaf) >>".to_string()
        };
        objects.push(format!("[{}]", vec![kid; width].join(" ")));
    }
    pdf(&objects)
}

/// A page tree `levels` deep: each node the only kid of the one above, one page at the bottom.
pub fn deep_page_tree(levels: usize) -> Vec<u8> {
    let mut objects = strings(&["<< /Type /Catalog /Pages 2 0 R >>"]);
    for i in 0..levels {
        objects.push(format!("<< /Type /Pages /Kids [{} 0 R] /Count 1 >>", i + 3));
    }
    objects.push("<< /Type /Page >>".into());
    pdf(&objects)
}

/// A form field tree `levels` deep.
pub fn deep_field_tree(levels: usize) -> Vec<u8> {
    let mut objects = strings(&[
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] >> >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page >>",
    ]);
    for i in 0..levels {
        objects.push(format!("<< /T (f{i}) /FT /Sig /Kids [{} 0 R] >>", i + 5));
    }
    objects.push("<< /T (leaf) >>".into());
    pdf(&objects)
}

/// One page under a page tree that claims 2^31 - 1.
pub fn huge_count() -> Vec<u8> {
    pdf(&strings(&[
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 2147483647 >>",
        "<< /Type /Page /Parent 2 0 R >>",
    ]))
}

/// Two pages behind `sections` cross-reference streams chained by `/Prev`, none with a `/Length`, each followed by
/// `pad` bytes.
/// With `ends`, each stream has its own `endstream`; without, one `endstream` ends the file, so a reader that
/// searches for it from each section scans (and copies) most of the file each time: quadratic work.
pub fn xref_chain(sections: usize, pad: usize, ends: bool) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
        "<< /Type /Page /Parent 2 0 R >>",
        "<< /Type /Page /Parent 2 0 R >>",
    ]
    .iter()
    .enumerate()
    {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let row = |offset: usize| [&[1u8][..], &(offset as u32).to_be_bytes(), &[0]].concat();
    let mut prev: Option<usize> = None;
    for k in 0..sections {
        let num = 5 + k;
        let at = out.len();
        let (rows, index) = if k == 0 {
            let mut rows = vec![0u8; 6];
            for o in &offsets {
                rows.extend(row(*o));
            }
            rows.extend(row(at));
            (rows, "[0 6]".to_string())
        } else {
            (row(at), format!("[{num} 1]"))
        };
        let prev_entry = prev.map(|p| format!(" /Prev {p}")).unwrap_or_default();
        out.extend_from_slice(
            format!(
                "{num} 0 obj\n<< /Type /XRef /Size {} /Root 1 0 R /W [1 4 1] /Index {index}{prev_entry} >>\nstream\n",
                sections + 5
            )
            .as_bytes(),
        );
        out.extend_from_slice(&rows);
        out.push(b'\n');
        if ends {
            out.extend_from_slice(b"endstream\n");
        }
        out.extend(std::iter::repeat_n(b' ', pad));
        out.extend_from_slice(b"\nendobj\n");
        prev = Some(at);
    }
    if !ends {
        out.extend_from_slice(b"endstream\n");
    }
    out.extend_from_slice(format!("startxref\n{}\n%%EOF\n", prev.unwrap_or(0)).as_bytes());
    out
}

/// zlib of `data`.
pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).expect("zlib");
    z.finish().expect("zlib")
}

/// Bytes that are not zlib data.
pub fn garbage(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(37).wrapping_add(11)).collect()
}

/// A page tree and a form field in a FlateDecode object stream whose content is followed by `tail` spaces (a
/// compression bomb when large: 20 MiB of spaces are about 20 KB compressed), or whose data is `raw` as given
/// (e.g. garbage). Signing reads the stream for the pages, verification for the field.
pub fn flate_object_stream(tail: usize, raw: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let catalog_at = out.len();
    out.extend_from_slice(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] >> >>\nendobj\n");
    let bodies = [
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R >>",
        "<< /T (name) /FT /Tx >>",
    ];
    let (mut header, mut body) = (String::new(), String::new());
    for (i, o) in bodies.iter().enumerate() {
        header.push_str(&format!("{} {} ", i + 2, body.len()));
        body.push_str(o);
        body.push('\n');
    }
    let mut content = format!("{header}{body}").into_bytes();
    content.resize(content.len() + tail, b' ');
    let data = raw.unwrap_or_else(|| zlib(&content));
    let stm_at = out.len();
    out.extend_from_slice(
        format!(
            "5 0 obj\n<< /Type /ObjStm /N 3 /First {} /Length {} /Filter /FlateDecode >>\nstream\n",
            header.len(),
            data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\nendstream\nendobj\n");
    let xref_at = out.len();
    let row = |kind: u8, a: usize, b: u8| [&[kind][..], &(a as u32).to_be_bytes()[1..], &[b]].concat();
    let rows = [
        row(0, 0, 0),
        row(1, catalog_at, 0),
        row(2, 5, 0),
        row(2, 5, 1),
        row(2, 5, 2),
        row(1, stm_at, 0),
        row(1, xref_at, 0),
    ]
    .concat();
    out.extend_from_slice(
        format!(
            "6 0 obj\n<< /Type /XRef /Size 7 /W [1 3 1] /Root 1 0 R /Length {} >>\nstream\n",
            rows.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&rows);
    out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

/// An object stream (5) whose `/Length` is an object (6) stored inside itself.
pub fn object_stream_loop() -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    ]
    .iter()
    .enumerate()
    {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let header = "3 0 6 32 ";
    let content = format!("{header}<< /Type /Page /Parent 2 0 R >> 40");
    let stm_at = out.len();
    out.extend_from_slice(
        format!(
            "5 0 obj\n<< /Type /ObjStm /N 2 /First {} /Length 6 0 R >>\nstream\n{content}\nendstream\nendobj\n",
            header.len()
        )
        .as_bytes(),
    );
    let xref_at = out.len();
    let row = |kind: u8, a: usize, b: u8| [&[kind][..], &(a as u32).to_be_bytes()[1..], &[b]].concat();
    let rows = [
        row(0, 0, 0),
        row(1, offsets[0], 0),
        row(1, offsets[1], 0),
        row(2, 5, 0),
        row(0, 0, 0),
        row(1, stm_at, 0),
        row(2, 5, 1),
        row(1, xref_at, 0),
    ]
    .concat();
    out.extend_from_slice(
        format!(
            "7 0 obj\n<< /Type /XRef /Size 8 /W [1 3 1] /Root 1 0 R /Length {} >>\nstream\n",
            rows.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&rows);
    out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

/// A throwaway self-signed P-256 certificate (its key is not kept: signatures made "with" it do not verify).
pub const THROWAWAY_CERT: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBfTCCASOgAwIBAgIUJbhAl15D1Mw2iQIv8z+CT1/TWxowCgYIKoZIzj0EAwIw\n\
FDESMBAGA1UEAwwJVGhyb3dhd2F5MB4XDTI2MTEyNTA3MzIzNloXDTM2MTEyMjA3\n\
MzIzNlowFDESMBAGA1UEAwwJVGhyb3dhd2F5MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n\
AQcDQgAElN/Uxu4bNSpAzWIEc2bYhnS3iCqzwP5KNoAPyQcTy+2+8nX71Q/Pm3CH\n\
zk1BgrZI/pBPZfhYBoIgsXOQ3ZyAIaNTMFEwHQYDVR0OBBYEFAa6/TUQeZVA3MeC\n\
TKJJ9g/tbpY/MB8GA1UdIwQYMBaAFAa6/TUQeZVA3MeCTKJJ9g/tbpY/MA8GA1Ud\n\
EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgEGzX43ZVzTcy+m4f2KGOJ1Kd\n\
FISneaJLRY29wlod1RQCIQCTUAHW7RQJWkUdvZW0hHmdgI2KnYdtG7OtuxhJVwt+\n\
YQ==\n\
-----END CERTIFICATE-----\n\
";

/// An enveloping `.p7s` of `content` with `signers` SignerInfos, each without signed attributes (so each is a
/// signature over the whole content), naming [`THROWAWAY_CERT`]. A verifier that hashes the content once per
/// signer does `signers` times the work.
pub fn many_signer_p7s(signers: usize, content: &[u8]) -> Vec<u8> {
    let cert = Certificate::from_pem(THROWAWAY_CERT).expect("certificate");
    let sha256 = spki::AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ID_SHA_256,
        parameters: None,
    };
    let ecdsa = spki::AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
        parameters: None,
    };
    let infos: Vec<SignerInfo> = (0..signers)
        .map(|i| SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: cert.tbs_certificate.issuer.clone(),
                serial_number: cert.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: sha256.clone(),
            signed_attrs: None,
            signature_algorithm: ecdsa.clone(),
            // Distinct values: a SET OF keeps one of equal elements.
            signature: OctetString::new(vec![
                0x30,
                0x08,
                0x02,
                0x02,
                1 | (i >> 8) as u8,
                i as u8,
                0x02,
                0x02,
                1,
                1,
            ])
            .expect("signature"),
            unsigned_attrs: None,
        })
        .collect();
    let econtent = Any::new(der::Tag::OctetString, content.to_vec()).expect("content");
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256]).expect("digest algorithms"),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: const_oid::db::rfc5911::ID_DATA,
            econtent: Some(econtent),
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(vec![cms::cert::CertificateChoices::Certificate(cert)]).expect("certificates"),
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(infos).expect("signer infos")),
    };
    let der = ContentInfo {
        content_type: const_oid::db::rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&sd).expect("SignedData"),
    }
    .to_der()
    .expect("ContentInfo");
    debug_assert!(ContentInfo::from_der(&der).is_ok());
    der
}
