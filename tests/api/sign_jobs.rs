//! Web signing jobs: upload several files, one TOTP code signs them all, each signed file and SignedFiles.zip
//! download, the history keeps names and digests, uploads go after the retention time; limits are enforced.

use crate::common;

use common::TestApp;
use reqwest::blocking::multipart::{Form, Part};
use serde_json::{json, Value};
use sha2::Digest;

/// `POST /api/v1/sign-jobs` with `form`, as the holder's browser (`cookie`): the status and the answer.
pub(crate) fn upload(app: &TestApp, cookie: &str, form: Form) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/api/v1/sign-jobs"))
        .header("Cookie", cookie)
        .header("X-CSRF-Token", common::csrf_for(cookie))
        .multipart(form)
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn get_bytes(app: &TestApp, cookie: &str, path: &str) -> (u16, Vec<u8>) {
    let r = app
        .client
        .get(app.url(path))
        .header("Cookie", cookie)
        .header("X-CSRF-Token", common::csrf_for(cookie))
        .send()
        .unwrap();
    (r.status().as_u16(), r.bytes().unwrap().to_vec())
}

#[test]
fn one_totp_code_signs_every_file_of_a_job_and_the_zip_holds_them_all() {
    job_journey(TestApp::spawn());
}

#[test]
fn one_totp_code_signs_every_file_of_a_job_on_postgres() {
    if let Some(app) = TestApp::spawn_postgres() {
        job_journey(app);
    }
}

fn job_journey(app: TestApp) {
    let h = app.create_holder("jobs@example.com", "p256", 1);
    let cookie = app.web_login(&h);
    let contract = b"Contract between A and B\r\n".to_vec();
    let pdf = b"%PDF-1.4\n% a PDF signed as .p7s on request\n".to_vec();
    let form = Form::new()
        .part("files", Part::bytes(contract.clone()).file_name("contract.txt"))
        .part("files", Part::bytes(pdf.clone()).file_name("../../etc/report.pdf"))
        .text("p7s_for_pdf", "true");
    let (s, job) = upload(&app, &cookie, form);
    assert_eq!(s, 201, "{job}");
    assert_eq!(job["files"][1]["name"], "report.pdf", "the path is not kept: {job}");
    // Timestamped by default (AdES-B-T): a signature and a timestamp per file.
    assert_eq!(job["level"], "AdES-B-T");
    assert_eq!(job["transactions"]["needed"], 4);
    assert_eq!(job["transactions"]["left"], 200);
    assert_eq!(job["certificate"]["credential_id"], h.credential_id.as_str());
    let id = job["id"].as_str().unwrap();

    // A wrong code signs nothing.
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/sign-jobs/{id}/authorize"),
        Some(&cookie),
        Some(json!({"totp": "000000"})),
    );
    assert_eq!(s, 401, "{out}");
    assert_eq!(app.books(&h.credential_id), (0, 0));
    let (s, out) = app.call(
        "POST",
        &format!("/api/v1/sign-jobs/{id}/authorize"),
        Some(&cookie),
        Some(json!({"totp": app.fresh_totp(&h)})),
    );
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["files"][0]["name"], "contract.txt.p7s");
    assert_eq!(
        app.books(&h.credential_id),
        (4, 4),
        "two signatures and two timestamps, recorded"
    );

    let (s, p7s) = get_bytes(&app, &cookie, &format!("/api/v1/sign-jobs/{id}/files/0"));
    assert_eq!(s, 200);
    assert_eq!(
        app.cms_verify(&p7s, None),
        (true, contract.clone()),
        "the .p7s verifies and encloses the file"
    );

    let (s, zip) = get_bytes(&app, &cookie, &format!("/api/v1/sign-jobs/{id}/SignedFiles.zip"));
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("SignedFiles.zip");
    std::fs::write(&zip_path, &zip).unwrap();
    let listing = common::run_ok(
        "python3",
        &[
            "-c",
            "import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); print('\\n'.join(z.namelist())); \
                 open(sys.argv[2],'wb').write(z.read('report.pdf.p7s'))",
            zip_path.to_str().unwrap(),
            dir.path().join("r.p7s").to_str().unwrap(),
        ],
    );
    assert_eq!(listing.trim(), "contract.txt.p7s\nreport.pdf.p7s");
    let from_zip = std::fs::read(dir.path().join("r.p7s")).unwrap();
    assert_eq!(app.cms_verify(&from_zip, None), (true, pdf.clone()));

    // Signed once: authorising again is refused.
    let (s, _) = app.call(
        "POST",
        &format!("/api/v1/sign-jobs/{id}/authorize"),
        Some(&cookie),
        Some(json!({"totp": app.fresh_totp(&h)})),
    );
    assert_eq!(s, 409);

    let (s, hist) = app.call("GET", "/api/v1/me/signatures", Some(&cookie), None);
    assert_eq!(s, 200);
    let names: Vec<&str> = hist["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{hist}");
    assert!(names.contains(&"contract.txt") && names.contains(&"report.pdf"));
    let digest = hex::encode(sha2::Sha256::digest(&contract));
    assert!(hist["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["sha256"] == digest.as_str()));

    // After the retention time the files are gone, the history stays.
    app.advance_clock(25 * 3600);
    let cookie = app.web_login(&h);
    let (s, _) = get_bytes(&app, &cookie, &format!("/api/v1/sign-jobs/{id}/files/0"));
    assert_eq!(s, 404);
    let (s, run) = app.call("POST", "/api/v1/operator/lifecycle/run", Some(&cookie), None);
    assert_eq!(s, 403, "holders cannot run the scheduler: {run}");
    app.cli_ok(&["admin", "lifecycle", "run"]);
    let (_, hist) = app.call("GET", "/api/v1/me/signatures", Some(&cookie), None);
    assert_eq!(hist["signatures"].as_array().unwrap().len(), 2);
}

#[test]
fn uploads_are_limited_and_checked_before_any_code_is_asked() {
    let app = TestApp::spawn();
    let h = app.create_holder("limits@example.com", "p256", 1);
    let cookie = app.web_login(&h);
    let (s, out) = upload(&app, &cookie, Form::new().text("p7s_for_pdf", "true"));
    assert_eq!(s, 400, "no file: {out}");
    let big = vec![b'x'; 25 * 1024 * 1024 + 1];
    let (s, out) = upload(
        &app,
        &cookie,
        Form::new().part("files", Part::bytes(big).file_name("big.bin")),
    );
    assert_eq!((s, out["error"].as_str()), (413, Some("invalid_request")), "{out}");
    let mut form = Form::new();
    for i in 0..21 {
        form = form.part("files", Part::bytes(vec![i as u8]).file_name(format!("f{i}.txt")));
    }
    let (s, out) = upload(&app, &cookie, form);
    assert_eq!(s, 400, "21 files: {out}");
    let (s, out) = upload(
        &app,
        &cookie,
        Form::new()
            .part("files", Part::bytes(b"x".to_vec()).file_name("a.txt"))
            .text("rect_3", "{}"),
    );
    assert_eq!(s, 400, "a rectangle for no file: {out}");
    let (s, out) = app.call(
        "POST",
        "/api/v1/sign-jobs/nope/authorize",
        Some(&cookie),
        Some(json!({"totp": "1"})),
    );
    assert_eq!(s, 404, "{out}");
    assert_eq!(app.books(&h.credential_id), (0, 0));
    // Anonymous uploads are refused.
    let r = app
        .client
        .post(app.url("/api/v1/sign-jobs"))
        .multipart(Form::new().part("files", Part::bytes(b"x".to_vec()).file_name("a.txt")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Two authorisations of one job at the same moment, each with its own valid code (the current and the next time
/// step): one signs, the other is refused, and the job is charged once.
#[test]
fn two_authorisations_at_once_sign_and_charge_a_job_once() {
    let app = TestApp::spawn();
    let h = app.create_holder("twice@example.com", "p256", 1);
    let cookie = app.web_login(&h);
    let form = Form::new().part("files", Part::bytes(b"one contract".to_vec()).file_name("c.txt"));
    let (s, job) = upload(&app, &cookie, form);
    assert_eq!(s, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let needed = job["transactions"]["needed"].as_i64().unwrap();
    app.advance_clock(30);
    let now = app.now();
    let codes = [
        common::totp_code(&h.totp_secret, now),
        common::totp_code(&h.totp_secret, now + 30),
    ];
    let path = format!("/api/v1/sign-jobs/{id}/authorize");
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let calls: Vec<_> = codes
            .iter()
            .map(|code| {
                let (app, cookie, path) = (&app, &cookie, &path);
                scope.spawn(move || app.call("POST", path, Some(cookie), Some(json!({ "totp": code }))))
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let signed = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(signed, 1, "exactly one authorisation signs: {answers:?}");
    assert!(
        answers.iter().all(|(s, _)| [200, 401, 409].contains(s)),
        "the other is refused: {answers:?}"
    );
    assert_eq!(app.books(&h.credential_id), (needed, needed), "charged once");
}
