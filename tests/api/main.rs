//! Parafa's integration tests, as one binary (one link instead of one per file). Each module is one area; each test
//! starts the real server (`common::TestApp`) or the real tools it judges by. Run one area with
//! `cargo nextest run --test api <module>::`, e.g. `cargo nextest run --test api tsa::`.
//!
//! `common` is the harness (the server, the token, the databases, the outside tools); `load` the cluster load
//! driver shared with `benches/cluster.rs`.

mod common;
mod load;

mod accounts;
mod architecture;
mod billing;
mod browser;
mod capped;
mod certificates;
mod cli;
mod cluster;
mod cms;
mod contact;
mod contract;
mod csc;
mod desktop_token;
mod docker;
mod document_limits;
mod faults;
mod fuzz_replay;
mod hardening;
mod hostile_pdf;
mod hsm;
mod institutional;
mod legal;
mod lifecycle;
mod limits;
mod nethsm;
mod notices;
mod notify;
mod oauth;
mod pades;
mod pdf_signing;
mod provisioning;
mod pyhanko;
mod recent_reads;
mod registry;
mod rekey;
mod retention;
mod revocation;
mod sign_doc;
mod sign_jobs;
mod storage;
mod token_agent;
mod token_login;
mod totp_reset;
mod trusted_list;
mod tsa;
mod verify;
mod web;
mod web_account;
mod web_api_lang;
mod web_orders;
mod web_signing;
