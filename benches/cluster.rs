//! Cluster load benchmark: `cargo bench --bench cluster`.
//!
//! Two `parafa serve` instances on one fresh PostgreSQL database and one SoftHSM2 token. Holders are created and
//! logged in beforehand; the timed part mixes `credentials/authorize` (a real TOTP code, one SAD of `per_sad` hashes)
//! and single-hash `signatures/signHash` (that SAD's `per_sad` signatures), in waves of one authorisation per holder
//! (the test clock moves one TOTP step per wave), spread round-robin over both instances at a fixed concurrency, for
//! a fixed number of signHash requests; then the books are read from the database and held against every signature
//! the clients were given (see `tests/api/load/mod.rs`). It runs three times: without a fault, with a SIGKILL of one
//! instance in the middle (restarted, the load continues), and with every database connection terminated three
//! times in the middle (`pg_terminate_backend`).
//! Each run ends with one `RESULT cluster…` line; a run whose books do not match fails the benchmark.
//!
//! Knobs: `PARAFA_TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/postgres),
//! `PARAFA_BENCH_REQUESTS` (signHash requests per run, default 20000), `PARAFA_BENCH_PER_SAD` (hashes per SAD, i.e.
//! signHash requests per authorize, default 10), `PARAFA_BENCH_CONCURRENCY` (default 32).

#[path = "../tests/api/common/mod.rs"]
mod common;
#[path = "../tests/api/load/mod.rs"]
mod load;

use std::time::Duration;

use common::TestApp;
use load::{check_books, prepare, result_line, run, Fault, Plan};

/// A knob's value, taken out of the environment: the servers inherit it and refuse unknown `PARAFA_` variables.
/// (Called before any thread starts.)
fn knob(name: &str, default: usize) -> usize {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    std::env::remove_var(name);
    value
}

fn main() {
    if std::env::var("PARAFA_TEST_POSTGRES_URL").map_or(true, |v| v.is_empty()) {
        // Set before any thread starts.
        std::env::set_var(
            "PARAFA_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        );
    }
    let requests = knob("PARAFA_BENCH_REQUESTS", 20_000);
    let per_sad = knob("PARAFA_BENCH_PER_SAD", 10);
    let concurrency = knob("PARAFA_BENCH_CONCURRENCY", 32);
    let mut failed = false;
    for (tag, fault) in [
        ("steady", None),
        (
            "kill",
            Some(Fault::Kill9 {
                instance: 1,
                at: requests / 2,
                down: Duration::from_secs(1),
            }),
        ),
        (
            "blip",
            Some(Fault::DbBlip {
                at: requests / 2,
                times: 3,
                gap: Duration::from_millis(100),
            }),
        ),
    ] {
        let faulty = fault.is_some();
        let plan = Plan::for_requests("cluster", requests, per_sad, concurrency, fault);
        let (a, b) = TestApp::spawn_pair_postgres().expect("PostgreSQL");
        let t = std::time::Instant::now();
        let ready = prepare(&a, &plan, tag);
        eprintln!(
            "prepared {} holders × {} signatures ({} waves of SADs of {}) in {:.1} s",
            plan.holders,
            plan.per_holder,
            plan.waves(),
            plan.per_sad,
            t.elapsed().as_secs_f64()
        );
        let mut apps = [a, b];
        let outcome = run(&mut apps, &ready, &plan);
        let books = check_books(&apps[0], &ready, &outcome, 50);
        println!("{}", result_line(&outcome, &books));
        for p in &books.problems {
            println!("  problem: {p}");
        }
        let unknown = books.rows - books.returned as i64;
        if books.mismatches > 0 || books.overspent > 0 || !books.problems.is_empty() || unknown < 0 {
            failed = true;
        }
        if !faulty && (unknown != 0 || outcome.skipped != 0 || outcome.statuses.keys().any(|s| *s != 200)) {
            println!(
                "  unexpected without a fault: statuses {:?}, {} skipped",
                outcome.statuses, outcome.skipped
            );
            failed = true;
        }
        let [a, b] = apps;
        drop(b);
        drop(a);
    }
    if failed {
        eprintln!("the books did not match");
        std::process::exit(1);
    }
}
