//! Parafa: a remote qualified-signature service. Keys live in a PKCS#11 token; every signature is activated by the
//! holder's TOTP code; signatures are debited from prepaid packages. See `ARCHITECTURE.md` in the design notes.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod accounts;
pub mod admission;
pub mod app;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod ca;
pub mod clock;
pub mod cms;
pub mod config;
pub mod csc;
pub mod db;
pub mod documents;
pub mod encoding;
pub mod error;
pub mod fuzz_targets;
pub mod hsm;
pub mod i18n;
pub mod legal;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod oauth;
pub mod pdf;
pub mod ratelimit;
pub mod signing;
pub mod startup;
pub mod trust;
pub mod tsa;
pub mod web;

/// The hostile corpus of the integration tests, shared with the parsers' unit tests: one builder of each hostile
/// file for both layers.
#[cfg(test)]
#[path = "../tests/api/common/hostile.rs"]
pub(crate) mod hostile;
