//! Faults under load on two instances sharing one PostgreSQL database and one SoftHSM2 token: a SIGKILL of one
//! instance in the middle of the load, and a database blip (every connection terminated). The load mixes
//! `credentials/authorize` (a fresh TOTP code per holder and wave) and `signatures/signHash`. After each, the books
//! read from the database must match what the clients were given: debits equal signature rows, every returned
//! signature is its row, nothing unknown beyond the requests in flight at the kill, no SAD or hash used twice, no
//! quota overspent. (PostgreSQL only; short runs.)

use crate::common;
use crate::load;

use std::time::Duration;

use common::TestApp;
use load::{check_books, prepare, result_line, run, Fault, Plan};

/// Holders × signatures each, in SADs of `PER_SAD` hashes: 15 waves of 6 authorisations and 120 signatures.
const HOLDERS: usize = 6;
const PER_HOLDER: usize = 300;
const PER_SAD: usize = 20;

fn plan(name: &str, fault: Fault) -> Plan {
    Plan {
        name: name.to_owned(),
        holders: HOLDERS,
        per_holder: PER_HOLDER,
        per_sad: PER_SAD,
        concurrency: 16,
        fault: Some(fault),
    }
}

#[test]
fn books_match_after_one_instance_is_killed_mid_load_and_restarted() {
    let Some((a, b)) = TestApp::spawn_pair_postgres() else {
        return;
    };
    let plan = plan(
        "faults_kill9",
        Fault::Kill9 {
            instance: 1,
            at: HOLDERS * PER_HOLDER / 3,
            down: Duration::from_millis(300),
        },
    );
    let ready = prepare(&a, &plan, "kill9");
    let mut apps = [a, b];
    let outcome = run(&mut apps, &ready, &plan);
    let books = check_books(&apps[0], &ready, &outcome, 20);
    println!("{}", result_line(&outcome, &books));
    assert!(outcome.killed);
    assert!(
        outcome.no_answer > 0,
        "requests to the killed instance failed to connect"
    );
    assert_eq!(outcome.authorizations, HOLDERS * PER_HOLDER / PER_SAD);
    assert!(
        outcome.authorized > 0 && outcome.skipped == (outcome.authorizations - outcome.authorized) * PER_SAD,
        "a failed authorisation drops its SAD's signatures: {} of {} authorised, {} skipped",
        outcome.authorized,
        outcome.authorizations,
        outcome.skipped
    );
    assert!(
        books.problems.is_empty() && books.mismatches == 0 && books.overspent == 0,
        "books: {books:#?}\nstatuses: {:#?}",
        outcome.statuses
    );
    assert_eq!(books.debited, books.rows);
    assert!(books.rows as usize - books.returned <= outcome.in_flight_at_kill);
    assert_eq!(books.verified, 20, "a sample verifies with OpenSSL");
    // Only connection failures: the surviving instance and the restarted one answered everything they were sent,
    // authorisations included (each wave's TOTP step is new for every holder).
    assert!(
        outcome.statuses.keys().all(|s| *s == 200 || *s == 0),
        "statuses: {:#?}",
        outcome.statuses
    );
    let [a, b] = apps;
    drop(b);
    drop(a);
}

#[test]
fn a_database_blip_fails_requests_with_503_then_recovers_and_the_books_match() {
    let Some((a, b)) = TestApp::spawn_pair_postgres() else {
        return;
    };
    let plan = plan(
        "faults_db_blip",
        Fault::DbBlip {
            // Early: the waves after the blip (and its grace) must show the recovery.
            at: HOLDERS * PER_HOLDER / 8,
            times: 3,
            gap: Duration::from_millis(100),
        },
    );
    let ready = prepare(&a, &plan, "blip");
    let mut apps = [a, b];
    let outcome = run(&mut apps, &ready, &plan);
    let books = check_books(&apps[0], &ready, &outcome, 20);
    println!("{}", result_line(&outcome, &books));
    for (status, (n, sample)) in &outcome.statuses {
        println!("status {status}: {n} requests, e.g. {sample}");
    }
    assert!(
        books.problems.is_empty() && books.mismatches == 0 && books.overspent == 0,
        "books: {books:#?}"
    );
    assert_eq!(outcome.authorizations, HOLDERS * PER_HOLDER / PER_SAD);
    assert_eq!(
        outcome.skipped,
        (outcome.authorizations - outcome.authorized) * PER_SAD,
        "an authorisation that failed dropped its SAD's signatures"
    );
    // Nothing was killed: every recorded signature was returned and the other way round.
    assert_eq!(
        (books.debited, books.rows),
        (books.returned as i64, books.returned as i64)
    );
    assert!(
        outcome.successes_after_blip > 0 && outcome.failures_after_blip == 0,
        "recovery: {} ok, {} failed after the blip",
        outcome.successes_after_blip,
        outcome.failures_after_blip
    );
    assert!(
        outcome.statuses.keys().all(|s| *s == 200 || *s == 503),
        "requests during the blip (authorize or signHash) fail cleanly with 503: {:#?}",
        outcome.statuses
    );
    let [a, b] = apps;
    drop(b);
    drop(a);
}
