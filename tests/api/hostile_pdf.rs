//! Hostile files against the real server, on every route that reads them: the public `POST /api/v1/verify`, a web
//! signing job and CSC `signDoc` format P; hostile OCSP requests at `/pki/ocsp`. Each gets an answer (a 4xx with
//! CSC-style `error` and `error_description`, an OCSP `malformedRequest`, or for a file that is sound once read
//! with care, an ordinary answer), and `/health` still answers afterwards. The client's 60 s timeout only detects
//! a hang; nothing here measures time.

use crate::common;

use std::time::Duration;

use base64::Engine;
use common::hostile::{self, Hostile};
use common::TestApp;
use der::{Decode, Encode};
use reqwest::blocking::multipart::{Form, Part};
use serde_json::{json, Value};

fn patient_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn answer(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn assert_refused(what: &str, route: &str, (status, body): &(u16, Value)) {
    // A report can hold megabytes of content: the message quotes only its start.
    let body_start: String = body.to_string().chars().take(500).collect();
    assert!((400..500).contains(status), "{what} at {route}: {status} {body_start}");
    assert!(body["error"].is_string(), "{what} at {route}: {body}");
    assert!(body["error_description"].is_string(), "{what} at {route}: {body}");
}

fn assert_healthy(app: &TestApp) {
    let r = patient_client().get(app.url("/health")).send().unwrap();
    assert_eq!(r.status(), 200);
}

fn verify(app: &TestApp, client: &reqwest::blocking::Client, file: &[u8]) -> (u16, Value) {
    let form = Form::new().part("file", Part::bytes(file.to_vec()).file_name("hostile.pdf"));
    answer(client.post(app.url("/api/v1/verify")).multipart(form).send().unwrap())
}

#[test]
fn hostile_pdfs_get_a_4xx_on_every_route_that_reads_them_and_the_server_lives() {
    let app = TestApp::spawn();
    let client = patient_client();
    let h = app.create_holder("hostile@example.com", "p256", 1);
    let cookie = app.web_login(&h);
    let token = app.login(&h);
    for Hostile { name, bytes, refused } in hostile::pdf_corpus() {
        // Public verification: none of these holds a signature, so all are refused (verification reads the form,
        // not the pages: a hostile page tree is "no signatures" there).
        assert_refused(name, "verify", &verify(&app, &client, &bytes));

        // A web signing job reads the PDF before it asks for a code.
        let form = Form::new().part("files", Part::bytes(bytes.clone()).file_name("hostile.pdf"));
        let job = answer(
            client
                .post(app.url("/api/v1/sign-jobs"))
                .header("Cookie", &cookie)
                .header("X-CSRF-Token", common::csrf_for(&cookie))
                .multipart(form)
                .send()
                .unwrap(),
        );
        if refused {
            assert_refused(name, "sign-jobs", &job);
        } else {
            assert_eq!(job.0, 201, "{name}: a sound file read with care is taken: {}", job.1);
        }

        // CSC signDoc, format P, reads the PDF before it looks at the SAD.
        let body = json!({"credentialID": h.credential_id, "SAD": "not-yet", "documents": [
            {"document": base64::engine::general_purpose::STANDARD.encode(&bytes), "signature_format": "P",
             "conformance_level": "Ades-B-B", "signAlgo": "1.2.840.10045.4.3.2"}]});
        let signed = answer(
            client
                .post(app.url("/csc/v2/signatures/signDoc"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .unwrap(),
        );
        assert_refused(name, "signDoc", &signed);
        if refused {
            let why = signed.1["error_description"].as_str().unwrap_or_default();
            assert!(why.contains("Invalid parameter document"), "{name}: {why}");
        }
        assert_healthy(&app);
    }
}

#[test]
fn the_budget_refusals_name_the_budget() {
    let app = TestApp::spawn();
    let client = patient_client();
    for (file, expected) in [
        (
            hostile::xref_chain(1000, 2048, false),
            "scanning more than 8 times its size",
        ),
        (hostile::flate_object_stream(20 << 20, None), "decodes to more than"),
        (hostile::deep_field_tree(200), "levels deep"),
        (
            hostile::flate_object_stream(0, Some(hostile::garbage(300))),
            "compressed stream is damaged",
        ),
    ] {
        let (status, body) = verify(&app, &client, &file);
        assert_eq!(status, 400, "{body}");
        let why = body["error_description"].as_str().unwrap();
        assert!(why.contains(expected), "{why}");
    }
    assert_healthy(&app);
}

#[test]
fn the_parser_budgets_are_settings() {
    let fine = hostile::xref_chain(300, 16, true);
    let app = TestApp::spawn_on(
        common::Backend::Sqlite,
        &[("PARAFA_PARSER_PDF_MAX_XREF_SECTIONS", "100")],
    );
    let (status, body) = verify(&app, &patient_client(), &fine);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("more than 100 revisions"),
        "{body}"
    );
    let default = TestApp::spawn();
    let (status, body) = verify(&default, &patient_client(), &fine);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_description"], "The PDF has no signatures.");
}

#[test]
fn a_p7s_with_too_many_signers_is_refused_and_many_signers_hash_a_large_content_once() {
    let app = TestApp::spawn();
    let client = patient_client();
    let content = vec![b'x'; 8 << 20];
    let refused = verify(&app, &client, &hostile::many_signer_p7s(1000, &content));
    assert_refused("1000 signers", "verify", &refused);
    assert!(
        refused.1["error_description"]
            .as_str()
            .unwrap()
            .contains("has 1000 signatures; at most 32"),
        "{}",
        refused.1
    );
    let (status, report) = verify(&app, &client, &hostile::many_signer_p7s(32, &content));
    assert_eq!(status, 200, "{}", report["error_description"]);
    let signatures = report["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 32);
    assert!(signatures
        .iter()
        .all(|s| s["digest_matches"] == true && s["intact"] == false));
    assert_healthy(&app);
}

/// A DER OCSP request about `count` made-up certificates, padded with a requestor name of `pad` bytes.
fn ocsp_request(count: usize, pad: usize) -> Vec<u8> {
    use x509_ocsp::{OcspRequest, Request, TbsRequest, Version};
    let id = |i: usize| x509_ocsp::CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_SHA_1,
            parameters: None,
        },
        issuer_name_hash: der::asn1::OctetString::new(vec![1u8; 20]).unwrap(),
        issuer_key_hash: der::asn1::OctetString::new(vec![2u8; 20]).unwrap(),
        serial_number: x509_cert::serial_number::SerialNumber::new(&[1, (i >> 8) as u8, i as u8]).unwrap(),
    };
    let requestor_name = (pad > 0).then(|| {
        x509_cert::ext::pkix::name::GeneralName::DnsName(der::asn1::Ia5String::new(&"a".repeat(pad)).unwrap())
    });
    OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name,
            request_list: (0..count)
                .map(|i| Request {
                    req_cert: id(i),
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

fn ocsp_status(app: &TestApp, request: Vec<u8>) -> x509_ocsp::OcspResponseStatus {
    let r = patient_client()
        .post(app.url("/pki/ocsp"))
        .header("Content-Type", "application/ocsp-request")
        .body(request)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    x509_ocsp::OcspResponse::from_der(&r.bytes().unwrap())
        .unwrap()
        .response_status
}

#[test]
fn ocsp_requests_past_their_budget_get_malformed_request() {
    use x509_ocsp::OcspResponseStatus::{MalformedRequest, Unauthorized};
    let app = TestApp::spawn();
    // Within the budget, certificates of an unknown CA: the responder does not answer for them.
    assert_eq!(ocsp_status(&app, ocsp_request(20, 0)), Unauthorized);
    assert_eq!(ocsp_status(&app, ocsp_request(21, 0)), MalformedRequest);
    assert_eq!(ocsp_status(&app, ocsp_request(1, 20_000)), MalformedRequest);
    assert_healthy(&app);
}
