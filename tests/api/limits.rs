//! Limits that must hold for impolite clients: 50 requests at once (on SQLite, on PostgreSQL, and split across two
//! instances sharing one database) send one SMS code and evaluate at most five passwords; the messages that
//! requests without a login cause are limited per destination and in all; behind a trusted proxy each forwarded
//! client has its own login throttle while forged headers from anyone else count for nothing; e-mail addresses are
//! bare addr-specs in one canonical form.

use crate::common;

use std::sync::Barrier;
use std::time::Duration;

use common::{Backend, TestApp, HOLDER_PASSWORD};
use serde_json::{json, Value};

const PARALLEL: usize = 50;
/// `accounts.login_max_failures_per_account` (the default).
const MAX_FAILURES: u64 = 5;

/// Runs `f(i)` for `i` in `0..n`, each on its own thread, released together.
fn burst<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("request thread")).collect()
    })
}

fn json_of(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(json!({ "raw": text })))
}

/// Lets the outbox dispatchers (every 200 ms) write whatever was queued before counting what was sent.
fn settle() {
    std::thread::sleep(Duration::from_secs(2));
}

/// 50 wrong-password logins for one account at once, alternating the web login and CSC `auth/login` and spread
/// over `apps`: at most five passwords are evaluated in all, and every answer is a 401/400 or a 429.
fn parallel_logins_are_throttled(apps: &[&TestApp]) {
    let holder = apps[0].create_account("burst@example.com", false);
    let before: u64 = apps.iter().map(|a| a.password_verifications()).sum();
    let statuses = burst(PARALLEL, |i| {
        let app = apps[i % apps.len()];
        let r = if i % 2 == 0 {
            app.client
                .post(app.url("/api/v1/session"))
                .json(&json!({"email": holder.email, "password": format!("wrong guess {i}")}))
                .send()
        } else {
            app.client
                .post(app.url("/csc/v2/auth/login"))
                .basic_auth(&holder.email, Some(format!("wrong guess {i}")))
                .json(&json!({}))
                .send()
        };
        json_of(r.expect("login request"))
    });
    let after: u64 = apps.iter().map(|a| a.password_verifications()).sum();
    for (status, out) in &statuses {
        assert!(
            matches!(status, 400 | 401 | 429) && out["error"].is_string() && out["error_description"].is_string(),
            "{status} {out}"
        );
    }
    let refused = statuses.iter().filter(|(s, _)| *s == 429).count();
    assert!(
        after - before <= MAX_FAILURES,
        "{} password evaluations for {PARALLEL} parallel guesses (limit {MAX_FAILURES})",
        after - before
    );
    assert!(refused >= PARALLEL - MAX_FAILURES as usize, "only {refused} refused");
    // The account still works once the window has passed.
    apps[0].advance_clock(15 * 60 + 1);
    let r = apps[0]
        .client
        .post(apps[0].url("/api/v1/session"))
        .json(&json!({"email": holder.email, "password": HOLDER_PASSWORD}))
        .send()
        .expect("login");
    assert_eq!(r.status(), 200);
}

#[test]
fn fifty_parallel_logins_evaluate_at_most_five_passwords_on_sqlite() {
    let app = TestApp::spawn();
    parallel_logins_are_throttled(&[&app]);
}

#[test]
fn fifty_parallel_logins_evaluate_at_most_five_passwords_on_postgres() {
    let Some(app) = TestApp::spawn_postgres() else {
        return;
    };
    parallel_logins_are_throttled(&[&app]);
}

#[test]
fn fifty_parallel_logins_across_two_instances_evaluate_at_most_five_passwords() {
    let Some((a, b)) = TestApp::spawn_pair_postgres() else {
        return;
    };
    parallel_logins_are_throttled(&[&a, &b]);
    drop(b);
}

/// Enrols a person and returns the invitation token from the e-mail.
fn enrol(app: &TestApp, email: &str, phone: &str) -> String {
    let r = app
        .client
        .post(app.url("/api/v1/enrolments"))
        .json(
            &json!({"given_name": "Ioana", "surname": "Marin", "email": email, "phone": phone,
                      "privacy_acknowledged": true}),
        )
        .send()
        .expect("enrol");
    assert_eq!(r.status(), 202);
    let mail = app.message(email, 1);
    let at = mail.find("/invitations/").expect("invitation link") + "/invitations/".len();
    mail[at..].split_whitespace().next().expect("token").to_owned()
}

/// 50 requests at once for the SMS code of one activation, spread over `apps`: exactly one SMS goes out.
fn parallel_code_requests_send_one_sms(apps: &[&TestApp]) {
    let phone = "+40733444555";
    let token = enrol(apps[0], "sms.burst@example.com", phone);
    let statuses = burst(PARALLEL, |i| {
        let app = apps[i % apps.len()];
        let r = app
            .client
            .post(app.url(&format!("/api/v1/invitations/{token}/phone")))
            .json(&json!({ "phone": phone }))
            .send()
            .expect("code request");
        json_of(r)
    });
    let sent = statuses.iter().filter(|(s, _)| *s == 202).count();
    for (status, out) in &statuses {
        assert!(matches!(status, 202 | 429), "{status} {out}");
    }
    apps[0].messages_to(phone, 1);
    settle();
    let sms = apps[0].messages_to(phone, 0);
    assert_eq!(
        (sms.len(), sent),
        (1, 1),
        "{PARALLEL} parallel requests must send one SMS"
    );
}

#[test]
fn fifty_parallel_code_requests_send_one_sms_on_sqlite() {
    let app = TestApp::spawn();
    parallel_code_requests_send_one_sms(&[&app]);
}

#[test]
fn fifty_parallel_code_requests_send_one_sms_on_postgres() {
    let Some(app) = TestApp::spawn_postgres() else {
        return;
    };
    parallel_code_requests_send_one_sms(&[&app]);
}

#[test]
fn fifty_parallel_code_requests_across_two_instances_send_one_sms() {
    let Some((a, b)) = TestApp::spawn_pair_postgres() else {
        return;
    };
    parallel_code_requests_send_one_sms(&[&a, &b]);
    drop(b);
}

#[test]
fn unrequested_mail_is_limited_per_destination_and_in_all() {
    let app = TestApp::spawn_on(
        Backend::Sqlite,
        &[("PARAFA_SENDS_PER_DESTINATION", "3"), ("PARAFA_SENDS_GLOBAL", "5")],
    );
    let target = "victim@example.com";
    let statuses = burst(20, |_| {
        let r = app
            .client
            .post(app.url("/api/v1/enrolments"))
            .json(
                &json!({"given_name": "Ioana", "surname": "Marin", "email": target, "phone": "+40744555666",
                          "privacy_acknowledged": true}),
            )
            .send()
            .expect("enrol");
        json_of(r)
    });
    for (status, out) in &statuses {
        assert!(matches!(status, 202 | 429), "{status} {out}");
    }
    let too_many = statuses.iter().find(|(s, _)| *s == 429).expect("some refused");
    assert_eq!(too_many.1["error"], "too_many_requests", "{}", too_many.1);
    // Password recovery for the same address counts against the same share.
    let r = app
        .client
        .post(app.url("/api/v1/password-recovery"))
        .json(&json!({ "email": target }))
        .send()
        .expect("recovery");
    assert_eq!(r.status(), 429);
    app.messages_to(target, 1);
    // Other addresses: the global ceiling (5) leaves room for 2 more.
    let others: Vec<u16> = (0..6)
        .map(|i| {
            let r = app
                .client
                .post(app.url("/api/v1/enrolments"))
                .json(
                    &json!({"given_name": "Ioana", "surname": "Marin", "email": format!("other{i}@example.com"),
                              "phone": format!("+4075500000{i}"), "privacy_acknowledged": true}),
                )
                .send()
                .expect("enrol");
            r.status().as_u16()
        })
        .collect();
    settle();
    let to_target = app.messages_to(target, 0).len();
    assert!(
        (1..=3).contains(&to_target),
        "{to_target} messages to one address (limit 3)"
    );
    let to_others: usize = (0..6)
        .map(|i| app.messages_to(&format!("other{i}@example.com"), 0).len())
        .sum();
    assert!(
        to_target + to_others <= 5,
        "{to_target} + {to_others} messages in all (limit 5): {others:?}"
    );
    assert!(others.contains(&429), "{others:?}");
}

/// 20 failed logins (for unknown e-mails, so only the per-client counter fills) claiming `forwarded` addresses.
fn fail_logins(app: &TestApp, forwarded: impl Fn(usize) -> String) {
    for i in 0..20 {
        let r = app
            .client
            .post(app.url("/api/v1/session"))
            .header("X-Forwarded-For", forwarded(i))
            .json(&json!({"email": format!("nobody{i}@example.com"), "password": "wrong password"}))
            .send()
            .expect("login");
        assert_eq!(r.status(), 401);
    }
}

fn login_from(app: &TestApp, email: &str, forwarded: &str) -> u16 {
    app.client
        .post(app.url("/api/v1/session"))
        .header("X-Forwarded-For", forwarded)
        .json(&json!({"email": email, "password": HOLDER_PASSWORD}))
        .send()
        .expect("login")
        .status()
        .as_u16()
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_throttle() {
    let app = TestApp::spawn_on(Backend::Sqlite, &[("PARAFA_TRUSTED_PROXIES", "127.0.0.1/32, ::1")]);
    let holder = app.create_account("proxied@example.com", false);
    // The proxy appends the address it saw; what the client wrote before it is not believed.
    fail_logins(&app, |i| format!("10.9.9.{i}, 198.51.100.1"));
    assert_eq!(
        login_from(&app, &holder.email, "198.51.100.1"),
        429,
        "the failing client is throttled"
    );
    assert_eq!(
        login_from(&app, &holder.email, "198.51.100.1, 198.51.100.2"),
        200,
        "another client is not"
    );

    // Without trusted proxies the same headers are the client's own words: everyone is the peer.
    let direct = TestApp::spawn();
    let holder = direct.create_account("direct@example.com", false);
    fail_logins(&direct, |i| format!("198.51.100.{i}"));
    assert_eq!(
        login_from(&direct, &holder.email, "198.51.100.200"),
        429,
        "forged headers are ignored"
    );
}

const HOSTILE: [&str; 8] = [
    "\"ceo@bank.ro\"<attacker@evil.test>",
    "CEO <ceo@bank.ro>",
    "ceo@bank.ro,attacker@evil.test",
    "ceo@bank.ro;attacker@evil.test",
    "ceo@bank.ro (the boss)",
    "\"ceo\"@bank.ro",
    "ceo@[127.0.0.1]",
    "ceo@bank.ro\r\nBcc: attacker@evil.test",
];

#[test]
fn hostile_email_addresses_are_refused_with_a_csc_error() {
    let app = TestApp::spawn();
    for (i, email) in HOSTILE.iter().enumerate() {
        let r = app
            .client
            .post(app.url("/api/v1/enrolments"))
            .json(&json!({"given_name": "Ioana", "surname": "Marin", "email": email,
                          "phone": format!("+4076600000{i}"), "privacy_acknowledged": true}))
            .send()
            .expect("enrol");
        let (status, out) = json_of(r);
        assert_eq!(
            (status, out["error"].as_str()),
            (400, Some("invalid_request")),
            "{email:?}: {out}"
        );
        assert!(
            out["error_description"].as_str().is_some_and(|d| d.contains("e-mail")),
            "{out}"
        );
        // The operators' CLI takes the same addresses.
        let cli = app.cli(&[
            "admin",
            "holder",
            "create",
            "--email",
            email,
            "--name",
            "Ioana Marin",
            "--phone",
            "+40712345678",
            "--password",
            HOLDER_PASSWORD,
            "--no-certificate",
        ]);
        assert!(!cli.status.success(), "the CLI made an account for {email:?}");
        assert!(
            String::from_utf8_lossy(&cli.stderr).contains("e-mail address is not valid"),
            "{email:?}"
        );
    }
    settle();
    for email in HOSTILE {
        assert!(app.messages_to(email, 0).is_empty(), "mail went to {email:?}");
    }
}

#[test]
fn one_mailbox_owns_one_account_whatever_the_case() {
    let app = TestApp::spawn();
    let holder = app.create_account(" Ana.Pop@Example.RO ", false);
    let cli = app.cli(&[
        "admin",
        "holder",
        "create",
        "--email",
        "ana.pop@example.ro",
        "--name",
        "Ana Pop",
        "--phone",
        "+40712345678",
        "--password",
        HOLDER_PASSWORD,
        "--no-certificate",
    ]);
    assert!(!cli.status.success(), "a second account for the same mailbox");
    // Enrolling the same mailbox in another case tells the owner, and makes no account.
    let r = app
        .client
        .post(app.url("/api/v1/enrolments"))
        .json(
            &json!({"given_name": "Ana", "surname": "Pop", "email": "ANA.POP@example.ro", "phone": "+40712345678",
                      "privacy_acknowledged": true}),
        )
        .send()
        .expect("enrol");
    assert_eq!(r.status(), 202);
    let mail = app.message("ana.pop@example.ro", 1);
    assert!(mail.contains("Kind: already_enrolled"), "{mail}");
    // Stored in the canonical form: any case logs in.
    assert_eq!(login_from(&app, "ANA.pop@example.ro", "x"), 200);
    drop(holder);
}

/// Runs SQL on a stopped SQLite server's database with the `sqlite3` tool.
fn sqlite(app: &TestApp, sql: &str) {
    let db = app.data_dir.join("parafa.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(sql)
        .output()
        .expect("sqlite3 (package sqlite3)");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Puts the database back to before migration 0014 (its schema changes undone, its row gone).
const BEFORE_0014: &str = "DELETE FROM _sqlx_migrations WHERE version = 14; DROP TABLE rate_limits; \
    DROP INDEX users_email_lower; \
    CREATE TABLE login_failures (id TEXT PRIMARY KEY, email TEXT NOT NULL, client TEXT NOT NULL, at BIGINT NOT NULL);";

#[test]
fn stored_addresses_are_put_in_lower_case_or_the_upgrade_stops_with_a_message() {
    let mut app = TestApp::spawn();
    app.create_account("ana.pop@example.com", false);
    let dan = app.create_account("dan.pop@example.com", false);
    app.stop();
    sqlite(
        &app,
        &format!("{BEFORE_0014} UPDATE users SET email = 'Ana.Pop@Example.COM' WHERE email = 'ana.pop@example.com';"),
    );
    app.start();
    assert_eq!(
        login_from(&app, "ana.pop@example.com", "x"),
        200,
        "the stored address is canonical"
    );

    // Two accounts of one mailbox, or an address with a display name: a person must decide.
    app.stop();
    sqlite(&app, BEFORE_0014);
    for bad in ["ANA.pop@example.com", "\"Dan\" <dan.pop@example.com>"] {
        sqlite(
            &app,
            &format!("UPDATE users SET email = '{bad}' WHERE id = '{}';", dan.user_id),
        );
        let out = app.cli(&["admin", "cleanup"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: the upgrade went ahead");
        assert!(
            stderr.contains("fix_non_bare_or_case_duplicate_emails_see_migration_0014"),
            "{bad}: {stderr}"
        );
    }
    // Corrected by hand, the upgrade goes ahead.
    sqlite(
        &app,
        &format!(
            "UPDATE users SET email = 'dan.pop@example.com' WHERE id = '{}';",
            dan.user_id
        ),
    );
    app.start();
    assert_eq!(login_from(&app, "dan.pop@example.com", "x"), 200);
}
