//! Admission control for memory (issue 14, class 8): the server, run under an address-space cap, outlives at once
//! hundreds of logins for unknown e-mails, parallel uploads of PDFs whose object streams inflate, and tens of large
//! `signDoc` bodies; a large body past a small budget gets a 503 with `Retry-After`; an unknown e-mail costs a
//! password check like a known one.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Child;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use base64::Engine;
use common::{hostile, Backend, TestApp, HOLDER_PASSWORD};
use serde_json::json;

/// The address-space cap of the capped server, in MiB, chosen from measurements of this very load (debug build, 2
/// workers, `MALLOC_ARENA_MAX=2`, `VmPeak`): the idle server maps ~140–180 MiB; with admission control, whose default
/// budget is 512 MiB, it peaked at 600–920 MiB; the code before it peaked at ~3.9 GiB without a cap (200 Argon2
/// hashes of 19 MiB at once, 16 PDFs decoding ~150 MB each, 32 bodies of 24 MB held 2–3 times over) and is killed
/// by the allocator under this cap. The cap sits between, with room on both sides.
const CAP_MIB: u64 = 1536;

/// A server process started under `prlimit --as`, on the data directory and database of a [`TestApp`].
struct Capped {
    child: Child,
    base: String,
    /// The end of its standard error (why it died, if it did).
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Capped {
    fn start(app: &TestApp, cap_mib: u64) -> Capped {
        let cap = format!("--as={}", cap_mib * 1024 * 1024);
        // glibc's per-thread arenas would reserve address space of their own.
        let (mut child, base) = app.serve_piped(&["prlimit", &cap, "--"], &[("MALLOC_ARENA_MAX", "2")]);
        let stderr = child.stderr.take().expect("stderr");
        let tail = Arc::new(Mutex::new(Vec::new()));
        let t = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut t = t.lock().unwrap();
                t.push(line);
                if t.len() > 20 {
                    t.remove(0);
                }
            }
        });
        Capped {
            child,
            base,
            stderr: tail,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Capped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PDF of about `target` bytes whose form fields live in compressed object streams, each decoding to ~30 MB:
/// reading it inflates up to the reader's cap of decoded data while the upload stays small.
fn inflating_pdf(target: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = std::collections::BTreeMap::new();
    let mut compressed = std::collections::BTreeMap::new();
    let mut fields = Vec::new();
    let mut num = 10u32;
    while out.len() + 4096 < target {
        let (container, inner) = (num, num + 1);
        num += 2;
        let head = format!("{inner} 0 ");
        let mut content = head.clone().into_bytes();
        content.extend_from_slice(format!("<< /FT /Sig /T (f{inner}) /V << /Type /Sig >> >>").as_bytes());
        content.resize(content.len() + 30_000_000, b' ');
        let mut stream = lopdf::Stream::new(lopdf::Dictionary::new(), content);
        stream.compress().expect("compress");
        let data = stream.content;
        offsets.insert(container, out.len());
        out.extend_from_slice(
            format!(
                "{container} 0 obj\n<< /Type /ObjStm /N 1 /First {} /Length {} /Filter /FlateDecode >>\nstream\n",
                head.len(),
                data.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&data);
        out.extend_from_slice(b"\nendstream\nendobj\n");
        compressed.insert(inner, container);
        fields.push(inner);
    }
    let refs: Vec<String> = fields.iter().map(|f| format!("{f} 0 R")).collect();
    let plain = [
        (
            1,
            format!(
                "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [{}] >> >>",
                refs.join(" ")
            ),
        ),
        (2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned()),
        (3, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_owned()),
    ];
    for (n, body) in plain {
        offsets.insert(n, out.len());
        out.extend_from_slice(format!("{n} 0 obj\n{body}\nendobj\n").as_bytes());
    }
    // A cross-reference stream (uncompressed), as objects in object streams need.
    let (xref_num, xref_at) = (num, out.len());
    offsets.insert(xref_num, xref_at);
    let mut rows = Vec::new();
    for k in 0..=xref_num {
        let (kind, field, gen) = match (offsets.get(&k), compressed.get(&k)) {
            (Some(off), _) => (1u8, *off as u32, 0u16),
            (None, Some(c)) => (2, *c, 0),
            _ => (0, 0, 0xffff),
        };
        rows.push(kind);
        rows.extend_from_slice(&field.to_be_bytes());
        rows.extend_from_slice(&gen.to_be_bytes());
    }
    out.extend_from_slice(
        format!(
            "{xref_num} 0 obj\n<< /Type /XRef /Size {} /W [1 4 2] /Root 1 0 R /Length {} >>\nstream\n",
            xref_num + 1,
            rows.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&rows);
    out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

/// How one request ended, when it did not end well: `None` for a 2xx, a 4xx or a 503.
fn bad_outcome(what: &str, r: reqwest::Result<reqwest::blocking::Response>) -> Option<String> {
    match r {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let _ = resp.bytes();
            match status {
                200..=299 | 400..=499 | 503 => None,
                other => Some(format!("{what}: status {other}")),
            }
        }
        Err(e) => Some(format!("{what}: {e}")),
    }
}

/// The capped server is alive, answers `/health`, and no request or poll went wrong; prints its peak address space
/// for whoever tunes the cap.
fn assert_survived(server: &mut Capped, client: &reqwest::blocking::Client, failures: Vec<String>) {
    let alive = server.alive();
    // For whoever tunes the cap: how much address space the server needed at most (`prlimit` execs the server).
    let peak = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmPeak"))
        .map(str::to_owned);
    eprintln!("capped server under {CAP_MIB} MiB: {peak:?}");
    let after = client.get(server.url("/health")).send().map(|r| r.status().as_u16());
    let stderr = server.stderr.lock().unwrap().join("\n");
    assert!(alive, "the capped server died; its last words:\n{stderr}");
    assert_eq!(after.ok(), Some(200), "/health after the load");
    let shown: Vec<&String> = failures.iter().take(10).collect();
    assert!(
        failures.is_empty(),
        "{} requests failed, e.g. {shown:#?}\nserver stderr:\n{stderr}",
        failures.len()
    );
}

/// `n` CSC logins, each for an e-mail nobody has: each costs a (dummy) password check.
fn unknown_csc_logins(client: &reqwest::blocking::Client, base: &str, n: usize) -> Vec<Job> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    (0..n)
        .map(|i| {
            let (c, url, email) = (
                client.clone(),
                format!("{base}/csc/v2/auth/login"),
                format!("nobody-{run}-{i}@example.ro"),
            );
            Box::new(move || {
                bad_outcome(
                    "CSC login",
                    c.post(url).basic_auth(email, Some("a wrong password, surely")).send(),
                )
            }) as Job
        })
        .collect()
}

/// A client that waits as long as a loaded server may take: its timeout only detects a hang.
fn patient_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// A request to send, and what went wrong with its answer, if anything.
type Job = Box<dyn FnOnce() -> Option<String> + Send>;

/// Sends every job at the same moment, one thread each, while `/health` is polled until all have their answers;
/// returns what went wrong (a request or a poll of `/health`).
fn at_once(client: &reqwest::blocking::Client, server: &Capped, jobs: Vec<Job>) -> Vec<String> {
    let start = Arc::new(Barrier::new(jobs.len() + 1));
    let threads: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                job()
            })
        })
        .collect();
    // /health answers while the load runs (polled until every request has its answer).
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health = {
        let (c, url, done) = (client.clone(), server.url("/health"), done.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut answered = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                match c.get(&url).send() {
                    Ok(r) if r.status() == 200 => answered += 1,
                    Ok(r) => failures.push(format!("/health: status {}", r.status())),
                    Err(e) => failures.push(format!("/health: {e}")),
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            (answered, failures)
        })
    };
    start.wait();
    let mut failures: Vec<String> = threads.into_iter().filter_map(|t| t.join().unwrap()).collect();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (answered, health_failures) = health.join().unwrap();
    failures.extend(health_failures);
    if answered == 0 {
        failures.push("/health was never polled during the load".into());
    }
    failures
}

#[test]
fn a_capped_server_outlives_logins_inflating_pdfs_and_large_bodies_at_once() {
    let mut app = TestApp::spawn_on(Backend::Sqlite, &[]);
    let holder = app.create_holder_with("capped@example.ro", "p256", 1, false);
    let token = app.login(&holder);
    app.stop();
    let mut server = Capped::start(&app, CAP_MIB);
    let base = server.base.clone();
    let client = patient_client();

    let pdf = inflating_pdf(1_000_000);
    let document = base64::engine::general_purpose::STANDARD.encode(vec![0x5au8; 18 * 1024 * 1024]);
    let sign_doc: &'static [u8] = Box::leak(
        serde_json::to_vec(&json!({
            "credentialID": holder.credential_id,
            "SAD": "not-a-sad-but-the-body-is-read-and-decoded-first",
            "documents": [{
                "document": document,
                "signature_format": "C",
                "conformance_level": "AdES-B-B",
                "signAlgo": "1.2.840.10045.4.3.2",
            }],
        }))
        .unwrap()
        .into_boxed_slice(),
    );

    let mut jobs: Vec<Job> = Vec::new();
    let run = uuid::Uuid::new_v4().simple().to_string();
    jobs.extend(unknown_csc_logins(&client, &base, 100));
    for i in 0..100 {
        let (c, url, email) = (
            client.clone(),
            format!("{base}/api/v1/session"),
            format!("none-{run}-{i}@example.ro"),
        );
        jobs.push(Box::new(move || {
            bad_outcome(
                "web login",
                c.post(url)
                    .json(&json!({"email": email, "password": "a wrong password, surely"}))
                    .send(),
            )
        }));
    }
    for _ in 0..16 {
        let (c, url, pdf) = (client.clone(), format!("{base}/api/v1/verify"), pdf.clone());
        jobs.push(Box::new(move || {
            let part = reqwest::blocking::multipart::Part::bytes(pdf)
                .file_name("inflating.pdf")
                .mime_str("application/pdf")
                .unwrap();
            let form = reqwest::blocking::multipart::Form::new().part("file", part);
            bad_outcome("verify", c.post(url).multipart(form).send())
        }));
    }
    for _ in 0..32 {
        let (c, url, token) = (
            client.clone(),
            format!("{base}/csc/v2/signatures/signDoc"),
            token.clone(),
        );
        jobs.push(Box::new(move || {
            bad_outcome(
                "signDoc",
                c.post(url)
                    .bearer_auth(token)
                    .header("Content-Type", "application/json")
                    .body(sign_doc)
                    .send(),
            )
        }));
    }

    let failures = at_once(&client, &server, jobs);

    assert_survived(&mut server, &client, failures);
}

/// The hostile corpus of the parser budgets (`tests/api/common/hostile.rs`: fan-out, deep trees, a huge `/Count`, an
/// xref chain without lengths, a compression bomb, garbage Flate, an object-stream loop, a `.p7s` of 1 000 signers
/// over a large content) and garbage OCSP and TSA requests, under the same cap: first each alone on every route that
/// reads it, then three copies of each at once beside 100 logins for unknown e-mails and 8 large `signDoc` bodies.
/// Every answer is a 2xx, a 4xx or a 503, `/health` answers throughout, and the process lives.
#[test]
fn a_capped_server_answers_the_hostile_corpus_on_every_route_alone_and_at_once() {
    let mut app = TestApp::spawn_on(Backend::Sqlite, &[]);
    let holder = app.create_holder_with("corpus@example.ro", "p256", 3, false);
    let token = app.login(&holder);
    let cookie = app.web_login(&holder);
    app.stop();
    let mut server = Capped::start(&app, CAP_MIB);
    let base = server.base.clone();
    let client = patient_client();
    let mut files: Vec<(&'static str, Arc<Vec<u8>>)> = hostile::pdf_corpus()
        .into_iter()
        .map(|h| (h.name, Arc::new(h.bytes)))
        .collect();
    files.push((
        "1000-signer .p7s",
        Arc::new(hostile::many_signer_p7s(1000, &vec![b'x'; 4 << 20])),
    ));
    let garbage: Arc<Vec<u8>> = Arc::new(
        (0..16_384u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    );
    let corpus_jobs = |copies: usize| -> Vec<Job> {
        let mut jobs: Vec<Job> = Vec::new();
        for _ in 0..copies {
            for (name, bytes) in &files {
                let (c, url, b, name) = (client.clone(), format!("{base}/api/v1/verify"), bytes.clone(), *name);
                jobs.push(Box::new(move || {
                    let part = reqwest::blocking::multipart::Part::bytes(b.to_vec()).file_name("hostile.pdf");
                    let form = reqwest::blocking::multipart::Form::new().part("file", part);
                    bad_outcome(&format!("verify {name}"), c.post(url).multipart(form).send())
                }));
                let (c, url, b, cookie) = (
                    client.clone(),
                    format!("{base}/api/v1/sign-jobs"),
                    bytes.clone(),
                    cookie.clone(),
                );
                jobs.push(Box::new(move || {
                    let part = reqwest::blocking::multipart::Part::bytes(b.to_vec()).file_name("hostile.pdf");
                    let form = reqwest::blocking::multipart::Form::new().part("files", part);
                    let csrf = common::csrf_for(&cookie);
                    let sent = c
                        .post(url)
                        .header("Cookie", cookie)
                        .header("X-CSRF-Token", csrf)
                        .multipart(form)
                        .send();
                    bad_outcome(&format!("sign-jobs {name}"), sent)
                }));
                let body = json!({"credentialID": holder.credential_id, "SAD": "not-yet", "documents": [
                    {"document": base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()),
                     "signature_format": "P", "conformance_level": "Ades-B-B", "signAlgo": "1.2.840.10045.4.3.2"}]});
                let (c, url, token) = (
                    client.clone(),
                    format!("{base}/csc/v2/signatures/signDoc"),
                    token.clone(),
                );
                jobs.push(Box::new(move || {
                    bad_outcome(
                        &format!("signDoc {name}"),
                        c.post(url).bearer_auth(token).json(&body).send(),
                    )
                }));
            }
            let (c, url, g) = (client.clone(), format!("{base}/pki/ocsp"), garbage.clone());
            jobs.push(Box::new(move || {
                let sent = c
                    .post(url)
                    .header("Content-Type", "application/ocsp-request")
                    .body(g.to_vec())
                    .send();
                bad_outcome("OCSP garbage", sent)
            }));
            let (c, url, g, email) = (
                client.clone(),
                format!("{base}/tsa"),
                garbage.clone(),
                holder.email.clone(),
            );
            jobs.push(Box::new(move || {
                let sent = c
                    .post(url)
                    .basic_auth(email, Some(HOLDER_PASSWORD))
                    .header("Content-Type", "application/timestamp-query")
                    .body(g.to_vec())
                    .send();
                bad_outcome("TSA garbage", sent)
            }));
        }
        jobs
    };
    // Alone: one request at a time, each given the whole budget.
    let mut failures: Vec<String> = corpus_jobs(1).into_iter().filter_map(|job| job()).collect();
    assert!(
        server.alive(),
        "the capped server died on a single hostile request: {failures:#?}"
    );

    // At once, beside logins for unknown e-mails and large bodies.
    let mut jobs = corpus_jobs(3);
    jobs.extend(unknown_csc_logins(&client, &base, 100));
    let large: &'static [u8] = Box::leak(
        serde_json::to_vec(
            &json!({"credentialID": holder.credential_id, "SAD": "not-a-sad", "documents": [{
            "document": base64::engine::general_purpose::STANDARD.encode(vec![0x5au8; 12 << 20]),
            "signature_format": "C", "conformance_level": "AdES-B-B", "signAlgo": "1.2.840.10045.4.3.2"}]}),
        )
        .unwrap()
        .into_boxed_slice(),
    );
    for _ in 0..8 {
        let (c, url, token) = (
            client.clone(),
            format!("{base}/csc/v2/signatures/signDoc"),
            token.clone(),
        );
        jobs.push(Box::new(move || {
            let sent = c
                .post(url)
                .bearer_auth(token)
                .header("Content-Type", "application/json")
                .body(large)
                .send();
            bad_outcome("large signDoc", sent)
        }));
    }
    failures.extend(at_once(&client, &server, jobs));
    assert_survived(&mut server, &client, failures);
}

/// The metric line `name{labels}` of a Prometheus exposition, as a number (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[test]
fn a_large_body_past_a_small_budget_gets_503_with_retry_after_and_a_small_one_passes() {
    // 32 MiB, of which one reservation takes at most 16; bodies reserve 4× their length, a signDoc body (read as
    // it streams, its documents decoded on the way) once.
    let app = TestApp::spawn_on(Backend::Sqlite, &[("PARAFA_MEMORY_BUDGET_MIB", "32")]);
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Two clients announce large uploads to the public verification and keep sending them slowly: their
    // reservations (16 + 12 MiB) stay held while the server waits for the rest.
    let mut holders = Vec::new();
    for mib in [4, 3] {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "POST /api/v1/verify HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n\
             Content-Length: {}\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n",
            mib * 1024 * 1024
        )
        .unwrap();
        s.flush().unwrap();
        holders.push(s);
    }
    let mut available = f64::MAX;
    for _ in 0..600 {
        let text = app.get("/metrics").text().unwrap();
        available = metric(&text, "parafa_admission_available_bytes");
        if available <= 4.0 * 1024.0 * 1024.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(available, 4.0 * 1024.0 * 1024.0, "the slow bodies hold 28 MiB of 32");

    // A 5 MiB signDoc body needs 5 MiB: refused after the short wait, with Retry-After and the CSC error shape.
    let large = vec![b' '; 5 * 1024 * 1024];
    let r = app
        .client
        .post(app.url("/csc/v2/signatures/signDoc"))
        .header("Content-Type", "application/json")
        .body(large)
        .send()
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    let body: serde_json::Value = r.json().unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"].as_str().unwrap().contains("busy"), "{body}");

    // A small body fits in what is left.
    let r = app
        .client
        .post(app.url("/csc/v2/info"))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // Once the slow clients go, their share comes back and the large body passes the gate (to the token check).
    drop(holders);
    let mut status = 0;
    for _ in 0..100 {
        let r = app
            .client
            .post(app.url("/csc/v2/signatures/signDoc"))
            .header("Content-Type", "application/json")
            .body(vec![b' '; 5 * 1024 * 1024])
            .send()
            .unwrap();
        status = r.status().as_u16();
        if status != 503 {
            break;
        }
    }
    assert_eq!(status, 401, "admitted, then refused for want of a token");
}

#[test]
fn an_unknown_email_costs_a_password_check_like_a_known_one() {
    let app = TestApp::spawn();
    let dummy = |app: &TestApp| {
        metric(
            &app.get("/metrics").text().unwrap(),
            "parafa_password_hashes_total{kind=\"dummy\"}",
        )
    };
    let before = dummy(&app);
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": "nobody-web@example.ro", "password": HOLDER_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        dummy(&app),
        before + 1.0,
        "the web login checked the password against the dummy hash"
    );
    let r = app
        .client
        .post(app.url("/csc/v2/auth/login"))
        .basic_auth("nobody-csc@example.ro", Some(HOLDER_PASSWORD))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        dummy(&app),
        before + 2.0,
        "the CSC login checked the password against the dummy hash"
    );
    // A known e-mail with a wrong password costs one real verification, not a dummy one.
    let holder = app.create_holder_with("known@example.ro", "p256", 1, false);
    let r = app
        .client
        .post(app.url("/api/v1/session"))
        .json(&json!({"email": holder.email, "password": "not the password at all"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(dummy(&app), before + 2.0);
}
