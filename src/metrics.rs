//! Prometheus metrics: HTTP requests per route, HSM operation latency, Argon2 work, password verifications at
//! login and the memory budget. The registry is the one global.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The registry `/metrics` serves.
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "parafa_http_requests_total",
            "HTTP requests by route, method and status",
        ),
        &["method", "route", "status"],
    )
    .expect("static metric definition");
    REGISTRY.register(Box::new(c.clone())).expect("registered once");
    c
});

static HTTP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        HistogramOpts::new("parafa_http_request_duration_seconds", "HTTP request latency by route").buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
        &["method", "route"],
    )
    .expect("static metric definition");
    REGISTRY.register(Box::new(h.clone())).expect("registered once");
    h
});

static HSM_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        HistogramOpts::new("parafa_hsm_operation_duration_seconds", "PKCS#11 operation latency").buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
        ]),
        &["op", "outcome"],
    )
    .expect("static metric definition");
    REGISTRY.register(Box::new(h.clone())).expect("registered once");
    h
});

static PASSWORD_HASHES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "parafa_password_hashes_total",
            "Argon2 computations by kind: hash (a new password), verify (a stored hash), dummy (an unknown account)",
        ),
        &["kind"],
    )
    .expect("static metric definition");
    REGISTRY.register(Box::new(c.clone())).expect("registered once");
    c
});

static PASSWORD_VERIFICATIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    let c = IntCounter::new(
        "parafa_password_verifications_total",
        "Passwords checked against a stored hash at login (the work the login throttle bounds)",
    )
    .expect("static metric definition");
    REGISTRY.register(Box::new(c.clone())).expect("registered once");
    c
});

static ADMISSION_REFUSALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "parafa_admission_refusals_total",
            "Work refused with a 503 because the memory budget stayed spent for the whole wait",
        ),
        &["what"],
    )
    .expect("static metric definition");
    REGISTRY.register(Box::new(c.clone())).expect("registered once");
    c
});

static ADMISSION_AVAILABLE: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "parafa_admission_available_bytes",
        "Memory budget not reserved at the moment of the scrape",
    )
    .expect("static metric definition");
    REGISTRY.register(Box::new(g.clone())).expect("registered once");
    g
});

static LEDGER_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new(
            "parafa_ledger_requests_total",
            "Signature requests committed by the ledger, by path: together (a group in a few set-based statements) or \
             one_by_one (the group had a refusal, or was too large)",
        ),
        &["path"],
    )
    .expect("static metric definition");
    REGISTRY.register(Box::new(c.clone())).expect("registered once");
    c
});

static LEDGER_GROUP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        HistogramOpts::new(
            "parafa_ledger_group_seconds",
            "Time the ledger took to commit one group of signature requests (its count is the number of groups; \
             the ledger commits one group at a time, so the sum over a period is how busy it was)",
        )
        .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0]),
        &["path"],
    )
    .expect("static metric definition");
    REGISTRY.register(Box::new(h.clone())).expect("registered once");
    h
});

/// Counts `n` requests of a ledger group committed by `path` (`together` or `one_by_one`) in `took`.
pub fn count_ledger_requests(path: &str, n: usize, took: std::time::Duration) {
    LEDGER_REQUESTS.with_label_values(&[path]).inc_by(n as u64);
    LEDGER_GROUP_SECONDS
        .with_label_values(&[path])
        .observe(took.as_secs_f64());
}

/// Counts one Argon2 computation of `kind` (`hash`, `verify` or `dummy`).
pub fn count_password_hash(kind: &str) {
    PASSWORD_HASHES.with_label_values(&[kind]).inc();
}

/// Counts one refusal of the memory budget.
pub fn count_admission_refusal(what: &str) {
    ADMISSION_REFUSALS.with_label_values(&[what]).inc();
}

/// Sets the unreserved memory budget shown by the next scrape.
pub fn set_admission_available(bytes: u64) {
    ADMISSION_AVAILABLE.set(i64::try_from(bytes).unwrap_or(i64::MAX));
}

/// Counts one password checked at login (known account or not): the work the login throttle bounds.
pub fn password_verification() {
    PASSWORD_VERIFICATIONS.inc();
}

/// Records one HTTP request. `route` is the matched pattern (not the raw path, to bound the label set).
pub fn observe_http(method: &str, route: &str, status: u16, elapsed: Duration) {
    HTTP_REQUESTS
        .with_label_values(&[method, route, &status.to_string()])
        .inc();
    HTTP_SECONDS
        .with_label_values(&[method, route])
        .observe(elapsed.as_secs_f64());
}

/// Records one HSM operation.
pub fn observe_hsm(op: &str, elapsed: Duration, ok: bool) {
    HSM_SECONDS
        .with_label_values(&[op, if ok { "ok" } else { "error" }])
        .observe(elapsed.as_secs_f64());
}

/// The text exposition of every metric.
pub fn render() -> String {
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&HTTP_SECONDS);
    LazyLock::force(&HSM_SECONDS);
    LazyLock::force(&PASSWORD_HASHES);
    LazyLock::force(&ADMISSION_REFUSALS);
    LazyLock::force(&ADMISSION_AVAILABLE);
    LazyLock::force(&PASSWORD_VERIFICATIONS);
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&REGISTRY.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}
