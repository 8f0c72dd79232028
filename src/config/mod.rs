//! Settings: one typed tree, [`Settings`], from defaults that work out of the box, overridden by `parafa.toml` (or
//! the file named by `PARAFA_CONFIG`) and then by `PARAFA_*` variables.
//!
//! Every number from the product rules is a setting here with the documented default. Settings are loaded and
//! validated once at start; the rest of the code receives them by reference.
//!
//! [figment] layers the three: [`Settings::default`], the TOML file, then each variable's value at its setting's key.
//! The variables' names follow no single nesting rule, so [`VARIABLES`] names the setting (its dotted key in
//! `parafa.toml`) of each. A value goes over as text and serde reads it as the setting's type, numbers and booleans
//! through figment's lossy extraction (`1`, `true`, `yes`, `on`…). figment's own `Env` provider is not used: it
//! reads only the process's environment (tests give theirs) and parses values on its own, so that a PIN such as
//! `0123` would become a number. An unknown `PARAFA_*` variable stops the start, unless it is one of the
//! [`NOT_SETTINGS`] read elsewhere; a value that does not read names its variable and value ([`ConfigError::Env`])
//! or its file and key ([`ConfigError::Parse`]); then the settings' own checks run (ranges, relations).

pub mod privacy;
pub mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::providers::{Format, Serialized, Toml};
use figment::{Figment, Source};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};

pub use privacy::{ContactSettings, RetentionSettings};
pub use values::KeySpec;

/// Where SoftHSM2's module is found on Debian and Ubuntu (package `softhsm2`).
pub const DEFAULT_HSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Why the settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the configuration file {path} is not valid for Parafa: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{var}={value:?} is not valid: {reason}")]
    Env { var: String, value: String, reason: String },
    #[error("invalid setting `{name}`: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// All settings of one Parafa instance.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Directory for the SQLite database, the SoftHSM2 token and its config, the outbox and uploads.
    pub data_dir: PathBuf,
    /// Address the HTTP server binds (`127.0.0.1:8080`; port 0 picks a free port).
    pub listen: String,
    /// Base URL written into certificates (CRL, OCSP, CA issuers). Defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// `sqlite://…` or `postgres://…`. Defaults to `sqlite://<data_dir>/parafa.db`.
    pub database_url: Option<String>,
    /// Maximum database connections in the pool.
    pub database_max_connections: u32,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Largest JSON request body accepted, in bytes.
    pub max_json_body_bytes: usize,
    pub hsm: HsmSettings,
    pub ca: CaSettings,
    pub tsa: TsaSettings,
    pub documents: DocumentSettings,
    pub audit: AuditSettings,
    pub auth: AuthSettings,
    pub accounts: AccountSettings,
    pub csc: CscSettings,
    pub billing: BillingSettings,
    pub packages: Vec<PackageSettings>,
    pub notify: NotifySettings,
    pub lifecycle: LifecycleSettings,
    pub parsers: ParserLimits,
    pub admission: AdmissionSettings,
    pub limits: LimitSettings,
    /// Development mode (`PARAFA_DEV=1`): serves the sandbox payment gateway and the sandbox identification
    /// provider, with which a holder pays their own order and declares any identity. Off by default; refused with an
    /// `https` public URL, so that no deployment on the internet runs it. An empty `PARAFA_DEV` is off.
    #[serde(deserialize_with = "off_if_unset")]
    pub dev: bool,
    pub identity_provider: IdentityProviderSettings,
    pub tsa_ocsp: TsaOcspSettings,
    pub trust: TrustSettings,
    pub retention: RetentionSettings,
    pub contact: ContactSettings,
}

/// Who the client is behind a proxy, and the limits on messages that requests without a login can make Parafa
/// send (`[limits]`). The login throttle and the codes' cool-down are in [`AccountSettings`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Proxies (CIDRs such as `10.0.0.0/8`, or single addresses) whose `X-Forwarded-For` / `Forwarded` headers
    /// name the client. Empty (the default): the peer is the client and those headers are ignored, as anyone can
    /// write them. `PARAFA_TRUSTED_PROXIES`: a comma-separated list.
    #[serde(deserialize_with = "values::networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Which header the trusted proxies write: `X-Forwarded-For` (the default) or `Forwarded` (RFC 7239). Only
    /// that one is read, as a proxy passes the other on as the client wrote it. `PARAFA_CLIENT_ADDRESS_HEADER`.
    pub client_address_header: ForwardedHeader,
    /// E-mails and SMS at most, per destination (an address or a number) and window, that unauthenticated requests
    /// (enrolment, password recovery, the codes of link flows) and codes may cause. `PARAFA_SENDS_PER_DESTINATION`.
    pub sends_per_destination: i64,
    /// The window of `sends_per_destination`, in seconds (default an hour). `PARAFA_SENDS_PER_DESTINATION_WINDOW_SECS`.
    pub sends_per_destination_window_secs: i64,
    /// Such messages at most, to all destinations together, per window: a ceiling on SMS costs under a flood of
    /// numbers. `PARAFA_SENDS_GLOBAL`.
    pub sends_global: i64,
    /// The window of `sends_global`, in seconds (default an hour). `PARAFA_SENDS_GLOBAL_WINDOW_SECS`.
    pub sends_global_window_secs: i64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            trusted_proxies: Vec::new(),
            client_address_header: ForwardedHeader::XForwardedFor,
            sends_per_destination: 5,
            sends_per_destination_window_secs: 3600,
            sends_global: 1000,
            sends_global_window_secs: 3600,
        }
    }
}

impl LimitSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.sends_per_destination < 1
            || self.sends_global < 1
            || self.sends_per_destination_window_secs < 1
            || self.sends_global_window_secs < 1
        {
            return Err(ConfigError::Invalid {
                name: "limits",
                reason: "sends_per_destination, sends_global and their windows must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// The header in which trusted proxies forward the client's address; its name is read in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String")]
pub enum ForwardedHeader {
    #[serde(rename = "X-Forwarded-For")]
    XForwardedFor,
    #[serde(rename = "Forwarded")]
    Forwarded,
}

impl TryFrom<String> for ForwardedHeader {
    type Error = &'static str;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        match name.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            _ => Err("expected X-Forwarded-For or Forwarded"),
        }
    }
}

/// The remote identification provider used outside development mode: where holders are sent, and the key that
/// authenticates its reports (`POST /api/v1/identity/callback`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityProviderSettings {
    /// The provider's page; the session's one-time token is appended as `session=<token>`. Unset (and not in
    /// development mode): identifications cannot start.
    pub url: Option<String>,
    /// The HMAC key of the provider's reports; unset: one made at first start, kept in the database.
    #[serde(skip_serializing)]
    pub callback_secret: Option<SecretString>,
    /// How many session-code SMS (notification #4) a provider may have Parafa send during one video session (3).
    pub sms_per_session: i64,
    /// The least time between two of them, in seconds (60).
    pub sms_interval_secs: i64,
}

impl Default for IdentityProviderSettings {
    fn default() -> Self {
        IdentityProviderSettings {
            url: None,
            callback_secret: None,
            sms_per_session: 3,
            sms_interval_secs: 60,
        }
    }
}

/// Access to the public timestamp and OCSP services (issue 14, class 6): who may ask, how often, how long an OCSP
/// answer is reused.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TsaOcspSettings {
    /// Whether `POST /tsa` answers callers that do not authenticate (free timestamps, outside any package).
    pub tsa_anonymous: bool,
    /// Anonymous timestamps per minute (all callers together, per instance) when `tsa_anonymous` is on.
    pub tsa_anonymous_per_minute: u32,
    /// Timestamp requests per minute and per instance (authenticated or not); past it a 429 with `Retry-After`.
    pub tsa_per_minute: u32,
    /// OCSP requests per minute and per instance; past it the OCSP `tryLater` response.
    pub ocsp_per_minute: u32,
    /// OCSP requests with a nonce answered with a fresh signature, per minute and per instance; past it the nonce
    /// is ignored and the cached answer for the certificate is sent (RFC 8954 §2.1 allows a responder to leave the
    /// nonce out): a flood of nonces cannot make the token sign for each.
    pub ocsp_fresh_per_minute: u32,
    /// How long a signed OCSP response is reused for the same certificate and status (its `nextUpdate`), in
    /// seconds. 0: a fresh response per request.
    pub ocsp_cache_secs: i64,
}

impl Default for TsaOcspSettings {
    fn default() -> Self {
        TsaOcspSettings {
            tsa_anonymous: false,
            tsa_anonymous_per_minute: 60,
            tsa_per_minute: 6_000,
            ocsp_per_minute: 30_000,
            ocsp_fresh_per_minute: 3_000,
            ocsp_cache_secs: 300,
        }
    }
}

/// Login tokens and TOTP rules (product rules §3, §4).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Lifetime of a CSC access token, in seconds.
    pub access_token_ttl_secs: i64,
    /// Lifetime of a refresh token ("remember me"), in seconds.
    pub refresh_token_ttl_secs: i64,
    /// Wrong TOTP codes in a row that lock signature authorisation.
    pub totp_max_failures: i64,
    /// How long the lock lasts, in seconds.
    pub totp_lock_secs: i64,
    /// Time steps accepted either side of the current one (clock drift of the phone).
    pub totp_skew_steps: i64,
}

/// Accounts: enrolment, codes, sessions, 2FA (product rules §3, §4, §6; every number a setting).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountSettings {
    /// How long an invitation link works, in seconds.
    pub invitation_ttl_secs: i64,
    /// How long an SMS code works (activation, pairing, recovery), in seconds.
    pub sms_code_ttl_secs: i64,
    /// How long the phone-change codes (e-mail and SMS) work, in seconds.
    pub phone_change_code_ttl_secs: i64,
    /// How long the code e-mailed to the new address of an e-mail change works, in seconds.
    pub email_change_code_ttl_secs: i64,
    /// The least time between two codes of the same kind to the same user, in seconds.
    pub code_resend_secs: i64,
    /// Wrong entries that kill a code or a link.
    pub max_code_attempts: i64,
    /// How long a password-recovery link works, in seconds.
    pub recovery_link_ttl_secs: i64,
    /// Shortest password.
    pub password_min_length: usize,
    /// Least zxcvbn score (0–4) of a new password.
    pub password_min_score: u8,
    /// From this moment (RFC 3339) 2FA can no longer be postponed: 2027-01-01 00:00 Europe/Bucharest.
    pub two_factor_mandatory_from: String,
    /// Session lifetime, and with "remember me", in seconds.
    pub session_ttl_secs: i64,
    pub remember_me_ttl_secs: i64,
    /// Failed logins allowed per account, and per client address, within the window.
    pub login_max_failures_per_account: i64,
    pub login_max_failures_per_client: i64,
    pub login_failure_window_secs: i64,
    /// Version of the privacy notice users acknowledge: a version of `docs/trust/privacy/` (a unit test checks it).
    pub privacy_notice_version: String,
}

impl AccountSettings {
    /// [`AccountSettings::two_factor_mandatory_from`] as Unix seconds (validated at load).
    pub fn two_factor_mandatory_at(&self) -> i64 {
        time::OffsetDateTime::parse(
            &self.two_factor_mandatory_from,
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| t.unix_timestamp())
        .unwrap_or(i64::MAX)
    }
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            invitation_ttl_secs: 72 * 3600,
            sms_code_ttl_secs: 10 * 60,
            phone_change_code_ttl_secs: 5 * 60,
            email_change_code_ttl_secs: 5 * 60,
            code_resend_secs: 30 * 60,
            max_code_attempts: 3,
            recovery_link_ttl_secs: 3600,
            password_min_length: 12,
            password_min_score: 3,
            two_factor_mandatory_from: "2027-01-01T00:00:00+02:00".into(),
            session_ttl_secs: 12 * 3600,
            remember_me_ttl_secs: 30 * 86_400,
            login_max_failures_per_account: 5,
            login_max_failures_per_client: 20,
            login_failure_window_secs: 15 * 60,
            privacy_notice_version: "2026-12".into(),
        }
    }
}

/// Admission control for memory (the `admission` module): the budget that Argon2 hashes, PDF and CMS parsing and large
/// request bodies reserve from before they start, and the pool of password-hashing workers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionSettings {
    /// The memory budget, in MiB (`PARAFA_MEMORY_BUDGET_MIB`). 512 MiB by default: on a 1 GiB machine that leaves
    /// the rest for the process's own base (~100 MiB: token, pools, caches), the database and the system, and it
    /// still admits the largest single request (a 64 MiB `signDoc`, ~4× its size while it is served).
    pub memory_budget_mib: u32,
    /// How long a request waits for room in the budget, or for a hashing worker, before a 503, in milliseconds
    /// (`PARAFA_ADMISSION_WAIT_MS`).
    pub wait_ms: u64,
    /// The `Retry-After` of that 503, in seconds.
    pub retry_after_secs: u64,
    /// Argon2 workers (`PARAFA_PASSWORD_WORKERS`; 0: one per core). At most this many hashes run at once, each
    /// taking the Argon2 memory (19 MiB) from the budget; the others queue.
    pub password_workers: usize,
    /// Bytes reserved per byte of a request body, from its `Content-Length` before it is read: the body itself,
    /// its parsed form (JSON strings, decoded base64) and the answer built from it. Measured on `signDoc` refused
    /// at the SAD check: a 63 MB body raised the peak by 162 MB before the copies were trimmed (2.6×), 139 MB
    /// after (2.2×); a signature that succeeds also holds its output and its base64, hence 4. Not for `signDoc`,
    /// whose body is decoded as it streams and whose answer is encoded as it is sent: it reserves its length once.
    pub body_factor: u32,
    /// Bytes reserved per byte of a PDF or CMS structure parsed, verified or signed (its parsed objects, the
    /// signed copy written).
    pub parse_factor: u32,
    /// What a PDF parse reserves on top, in MiB, for the streams it decodes: the reader's cap of decoded data per
    /// document (128 MiB) plus the growth of its buffers. Measured: a 1 MB PDF of compressed object streams that
    /// reaches the cap raised the peak by ~150 MB.
    pub pdf_decoded_mib: u32,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        AdmissionSettings {
            memory_budget_mib: 512,
            wait_ms: 2_000,
            retry_after_secs: 2,
            password_workers: 0,
            body_factor: 4,
            parse_factor: 8,
            pdf_decoded_mib: 160,
        }
    }
}

impl AdmissionSettings {
    /// Argon2 workers in force.
    pub fn password_workers(&self) -> usize {
        match self.password_workers {
            0 => cores(),
            n => n,
        }
    }
}

/// Prices and payment (product rules §1, §2).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingSettings {
    /// VAT in basis points: 2100 = 21 % (Romania's standard rate since 2025-08-01).
    pub vat_basis_points: i64,
    /// The National Bank of Romania's reference-rate feed (XML); unset: the fallback rate is used.
    pub fx_feed_url: Option<String>,
    /// A local copy of that feed (tests, machines without network); read instead of the URL.
    pub fx_feed_file: Option<PathBuf>,
    /// RON per EUR used when the feed cannot be read, e.g. "5.0900".
    pub fallback_eur_ron: String,
    pub promo_codes: Vec<PromoCode>,
    /// The HMAC key that authenticates payment callbacks; unset: one made at first start, kept in the database.
    #[serde(skip_serializing)]
    pub payment_callback_secret: Option<SecretString>,
    /// The seller on the invoices, credit notes and e-Factura files. The defaults are DEVELOPMENT DATA (an
    /// invented company, an example IBAN): a deployment must set its own in `[billing]`.
    pub seller_name: String,
    /// CUI/CIF, with `RO` when registered for VAT.
    pub seller_tax_id: String,
    /// The trade register number ("Nr. Reg. Com."), e.g. `J12/1234/2020`.
    pub seller_trade_register: String,
    /// Street, number and the rest of the street address.
    pub seller_street: String,
    pub seller_city: String,
    pub seller_postal_code: String,
    /// The county as an ISO 3166-2:RO code (`RO-CJ`; Bucharest is `RO-B`, its city then `SECTOR1`..`SECTOR6`).
    pub seller_county: String,
    /// ISO 3166-1 alpha-2 country code.
    pub seller_country_code: String,
    /// The bank and the IBAN printed for payments (an institution's transfer).
    pub seller_bank: String,
    pub seller_iban: String,
    /// e-Factura: upload each invoice and credit note to the tax authority's system (ANAF SPV). Off by default.
    pub efactura_upload: bool,
    /// ANAF's OAuth client of this deployment, and the refresh token its authorisation gave.
    pub anaf_client_id: Option<String>,
    #[serde(skip_serializing)]
    pub anaf_client_secret: Option<SecretString>,
    #[serde(skip_serializing)]
    pub anaf_refresh_token: Option<SecretString>,
    /// ANAF's OAuth token endpoint.
    pub anaf_token_url: String,
    /// The e-Factura API's base (the test environment by default; production is `https://api.anaf.ro/prod/FCTEL/rest`).
    pub anaf_api_url: String,
    /// Institutional orders (§13): the certificate is due this many working days (Monday to Friday, Romanian
    /// public holidays not counted: `lifecycle::institutional::is_working_day`) after the documents are complete.
    pub institutional_lead_working_days: i64,
    /// Institutional orders (§13): the invoice, issued after the certificate, is due this many days later.
    pub institutional_payment_days: i64,
}

/// A promotional code: a percentage (basis points) or a fixed amount off the net price.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PromoCode {
    pub code: String,
    pub percent_off_basis_points: Option<i64>,
    pub amount_off_eur_cents: Option<i64>,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            vat_basis_points: 2100,
            fx_feed_url: None,
            fx_feed_file: None,
            fallback_eur_ron: "5.0900".into(),
            promo_codes: Vec::new(),
            payment_callback_secret: None,
            // Development data: an invented company, not a real one's registration.
            seller_name: "Parafa Trust Services SRL".into(),
            seller_tax_id: "RO14399840".into(),
            seller_trade_register: "J12/0000/2026".into(),
            seller_street: "Strada Exemplului 1".into(),
            seller_city: "Cluj-Napoca".into(),
            seller_postal_code: "400000".into(),
            seller_county: "RO-CJ".into(),
            seller_country_code: "RO".into(),
            seller_bank: "Banca de Dezvoltare (exemplu)".into(),
            seller_iban: "RO49AAAA1B31007593840000".into(),
            efactura_upload: false,
            anaf_client_id: None,
            anaf_client_secret: None,
            anaf_refresh_token: None,
            anaf_token_url: "https://logincert.anaf.ro/anaf-oauth2/v1/token".into(),
            anaf_api_url: "https://api.anaf.ro/test/FCTEL/rest".into(),
            institutional_lead_working_days: 5,
            institutional_payment_days: 30,
        }
    }
}

/// Identification, issuance, rekey and the scheduler (product rules §2, §5, §10).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleSettings {
    /// Identity documents the identification accepts.
    pub identity_documents: Vec<String>,
    /// How long an identification link (first, or after "returned for completion") stays valid, in hours.
    pub identity_link_hours: i64,
    /// The identification verdict reaches the holder within this many hours (24): the promise the landing page
    /// makes (product rules §5).
    pub verdict_hours: i64,
    /// Days after a rejection in which a resubmission is free.
    pub resubmission_free_days: i64,
    /// The fee of a later resubmission, in bani (0: free; a non-zero fee asks for a new order).
    pub resubmission_fee_ron_bani: i64,
    /// How many times a rejected identification may be resubmitted.
    pub resubmissions_allowed: i64,
    /// The ban after fake or forged data, in days.
    pub ban_days: i64,
    /// Whether a duplicate identity document cancels the pending orders at once (otherwise an operator decides).
    pub duplicate_auto_cancel: bool,
    /// Rekey reminders, in days before expiry (the banner shows from the first).
    pub reminder_days: Vec<i64>,
    /// A rekey request is accepted until this many hours before expiry.
    pub rekey_cutoff_hours: i64,
    /// The successor is issued this many days before the current certificate's expiry.
    pub successor_lead_days: i64,
    /// Largest identity-document copy in a rekey request, in bytes.
    pub photo_max_bytes: usize,
    /// The version of the issuance terms the holder accepts.
    pub terms_version: String,
    /// How often the scheduler runs, in seconds.
    pub tick_secs: u64,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings {
            identity_documents: vec!["id_card".into(), "passport".into()],
            identity_link_hours: 24,
            verdict_hours: 24,
            resubmission_free_days: 30,
            resubmission_fee_ron_bani: 0,
            resubmissions_allowed: 1,
            ban_days: 90,
            duplicate_auto_cancel: false,
            reminder_days: vec![45, 15],
            rekey_cutoff_hours: 72,
            successor_lead_days: 3,
            photo_max_bytes: 3 * 1024 * 1024,
            terms_version: "2026-11".into(),
            tick_secs: 60,
        }
    }
}

/// Document signing (product rules §7): upload limits, retention, PDF limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentSettings {
    /// How long uploaded and signed files of a signing job are kept, in seconds (the history stays).
    pub retention_secs: i64,
    /// Most files in one signing job.
    pub max_files: usize,
    /// Largest file other than a PDF that is signed, in bytes (every path: web jobs, CSC `signDoc`).
    pub max_file_bytes: usize,
    /// Largest signing job (all files), in bytes; also what one CSC `signDoc` may carry in all.
    pub max_job_bytes: usize,
    /// Largest PDF that is signed, as PDF or as `.p7s`, in bytes (every path).
    pub max_pdf_bytes: usize,
    /// Most objects a PDF may declare.
    pub max_pdf_objects: usize,
}

impl Default for DocumentSettings {
    fn default() -> Self {
        DocumentSettings {
            retention_secs: 24 * 3600,
            max_files: 20,
            max_file_bytes: 25 * 1024 * 1024,
            max_job_bytes: 100 * 1024 * 1024,
            max_pdf_bytes: 100 * 1024 * 1024,
            max_pdf_objects: 500_000,
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Parser budgets

/// How much work the parsers of outside bytes may do for one request: the PDF reader, CMS (`.p7s` and the
/// signatures in PDFs), OCSP requests. A budget exhausted refuses the input with a message (a 400, or an OCSP
/// `malformedRequest`), never an abort. `[parsers]` in `parafa.toml`; each also as `PARAFA_PARSER_<NAME>`, e.g.
/// `PARAFA_PARSER_PDF_MAX_NODES`. The defaults fit a small machine (2 cores, 2 GB) serving a few such requests at
/// once: one PDF reading decodes at most 64 MiB and scans at most 8 times what it reads. TSA requests are bounded
/// by `tsa.max_request_bytes`; PDF and upload sizes by `documents`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParserLimits {
    /// Objects fetched plus page and field tree nodes visited, per PDF reading.
    pub pdf_max_nodes: usize,
    /// Deepest page tree or form field tree.
    pub pdf_max_depth: usize,
    /// Bytes a PDF reading may lex or search, per byte of the file and of the streams it decodes.
    pub pdf_scan_factor: usize,
    /// Most one compressed cross-reference or object stream may decode to, in bytes.
    pub pdf_max_decoded_stream_bytes: usize,
    /// Most all streams decoded by one PDF reading may add up to, in bytes.
    pub pdf_max_decoded_total_bytes: usize,
    /// Cross-reference sections (revisions) a PDF may chain.
    pub pdf_max_xref_sections: usize,
    /// SignerInfos a `.p7s` may hold; also the signatures of one PDF that are checked.
    pub cms_max_signers: usize,
    /// Certificates a CMS SignedData may carry.
    pub cms_max_certificates: usize,
    /// Signed (and, separately, unsigned) attributes one SignerInfo may carry.
    pub cms_max_attributes: usize,
    /// Largest OCSP request, in bytes.
    pub ocsp_max_request_bytes: usize,
    /// Certificates one OCSP request may ask about (its requestList).
    pub ocsp_max_requests: usize,
}

/// Default of `parsers.pdf_max_nodes`: objects one PDF reading fetches plus tree nodes it visits.
pub const DEFAULT_MAX_NODES: usize = 250_000;
/// Default of `parsers.pdf_max_depth`: the deepest a page tree or form field tree may go.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Default of `parsers.pdf_scan_factor`: bytes one PDF reading may lex or search, per byte there is to read.
pub const DEFAULT_SCAN_FACTOR: usize = 8;
/// Default of `parsers.pdf_max_decoded_stream_bytes`: 16 MiB.
pub const DEFAULT_MAX_DECODED_STREAM: usize = 16 * 1024 * 1024;
/// Default of `parsers.pdf_max_decoded_total_bytes`: 64 MiB.
pub const DEFAULT_MAX_DECODED_TOTAL: usize = 64 * 1024 * 1024;
/// Default of `parsers.pdf_max_xref_sections`: revisions followed through `/Prev`.
pub const DEFAULT_MAX_XREF_SECTIONS: usize = 2_000;

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            pdf_max_nodes: DEFAULT_MAX_NODES,
            pdf_max_depth: DEFAULT_MAX_DEPTH,
            pdf_scan_factor: DEFAULT_SCAN_FACTOR,
            pdf_max_decoded_stream_bytes: DEFAULT_MAX_DECODED_STREAM,
            pdf_max_decoded_total_bytes: DEFAULT_MAX_DECODED_TOTAL,
            pdf_max_xref_sections: DEFAULT_MAX_XREF_SECTIONS,
            cms_max_signers: 32,
            cms_max_certificates: 64,
            cms_max_attributes: 64,
            ocsp_max_request_bytes: 16 * 1024,
            ocsp_max_requests: 20,
        }
    }
}

impl ParserLimits {
    fn validate(&self) -> Result<(), ConfigError> {
        let all = [
            self.pdf_max_nodes,
            self.pdf_max_depth,
            self.pdf_scan_factor,
            self.pdf_max_decoded_stream_bytes,
            self.pdf_max_decoded_total_bytes,
            self.pdf_max_xref_sections,
            self.cms_max_signers,
            self.cms_max_certificates,
            self.cms_max_attributes,
            self.ocsp_max_request_bytes,
            self.ocsp_max_requests,
        ];
        if all.contains(&0) || self.pdf_max_decoded_stream_bytes > self.pdf_max_decoded_total_bytes {
            return Err(ConfigError::Invalid {
                name: "parsers",
                reason: "every budget must be at least 1, and pdf_max_decoded_stream_bytes at most \
                         pdf_max_decoded_total_bytes"
                    .into(),
            });
        }
        Ok(())
    }
}

/// The CSC API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CscSettings {
    /// Lifetime of a SAD, in seconds.
    pub sad_ttl_secs: i64,
    /// Largest `numSignatures` one authorisation may ask for (the `multisign` of credentials/info).
    pub multisign: i64,
    /// Service name in `info`.
    pub name: String,
    /// ISO 3166-1 alpha-2 region in `info`.
    pub region: String,
    /// Lifetime of an OAuth 2.0 authorization code, in seconds (used once, within this time).
    pub oauth_code_ttl_secs: i64,
    /// Lifetime of a pushed authorization request's `request_uri` (RFC 9126), in seconds.
    pub oauth_request_uri_ttl_secs: i64,
    /// How long `signatures/signHash` may rely on an access token, a credential or a SAD it read before, in
    /// milliseconds (0: read them for every request). The ledger checks each again when it commits, so this only
    /// spares reads; it never lets a revoked credential or token, a used SAD or a spent quota through.
    pub read_cache_ms: u64,
}

/// The PKCS#11 token.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HsmSettings {
    /// Path of the PKCS#11 module.
    pub module: PathBuf,
    /// Label of Parafa's token.
    pub token_label: String,
    /// User PIN; when absent, generated on first start into `<data_dir>/hsm-secrets.toml` (mode 0600).
    #[serde(skip_serializing)]
    pub user_pin: Option<SecretString>,
    /// Security-officer PIN; same rule as `user_pin`.
    #[serde(skip_serializing)]
    pub so_pin: Option<SecretString>,
    /// Sessions kept open in the pool (0: two per core, at least 4).
    pub sessions: usize,
    /// Manage a SoftHSM2 configuration under the data directory (write `softhsm2.conf` and `tokens/`, create the
    /// token on first start). Defaults to true when the module is SoftHSM2; set false for a real HSM.
    pub manage_softhsm: Option<bool>,
}

/// The internal certification authority.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaSettings {
    pub organization: String,
    pub country: String,
    pub root_common_name: String,
    pub issuing_common_name: String,
    /// Key type of the root and issuing CA keys.
    pub key: KeySpec,
    pub root_validity_days: u32,
    pub issuing_validity_days: u32,
    /// URL of the PKI disclosure statement written into holder certificates (QcPDS).
    pub pds_url: Option<String>,
}

/// The trusted list of Parafa's own trust services (ETSI TS 119 612), served at `/pki/tl.xml` and signed by the
/// scheme operator's key in the token (`[trust]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustSettings {
    /// The scheme operator and trust service provider named on the list (the company running Parafa).
    pub operator_name: String,
    /// The operator's postal address: street, locality, postal code, country code (ISO 3166-1).
    pub street: String,
    pub locality: String,
    pub postal_code: String,
    pub country: String,
    /// The operator's e-mail address (`mailto:` on the list).
    pub email: String,
    /// Days from a list's issue to its NextUpdate (TS 119 612 allows at most six months); a list is signed afresh
    /// when its content changes and when a quarter of this is left.
    pub next_update_days: u32,
    /// Common name of the scheme operator's certificate.
    pub operator_common_name: String,
    /// Validity of the scheme operator's certificate, in days.
    pub operator_validity_days: u32,
    /// Key type of the scheme operator's key.
    pub operator_key: KeySpec,
}

/// The RFC 3161 timestamp authority (its key and certificate are provisioned with the CA).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TsaSettings {
    /// The TSA policy OID written into every TSTInfo; a request asking for another policy is rejected. Default:
    /// ETSI EN 319 421 best practices time-stamp policy (0.4.0.2023.1.1).
    pub policy: String,
    /// Accuracy stated in every timestamp: whole seconds, plus milliseconds (0..=999). Both 0 leaves it out.
    pub accuracy_secs: u32,
    pub accuracy_millis: u16,
    /// Key type of the TSA key.
    pub key: KeySpec,
    /// Common name of the TSA certificate (country and organisation are the CA's).
    pub common_name: String,
    /// Validity of the TSA certificate, in days (cut to the issuing CA's).
    pub validity_days: u32,
    /// Whether TSTInfo names the TSA (its certificate subject).
    pub include_tsa_name: bool,
    /// Largest timestamp request accepted, in bytes.
    pub max_request_bytes: usize,
}

/// The audit chain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// How often the sealer chains new audit rows, in milliseconds.
    pub seal_interval_ms: u64,
}

/// Where the notifications outbox sends e-mails and SMS. Without SMTP, e-mails are written to the file sink;
/// without a webhook, SMS are; so a development or test server works without either.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// The SMTP server: `smtp://user:pass@host:587` (STARTTLS required; default port 587), `smtps://user:pass@host`
    /// (implicit TLS; 465) or `smtp://host:25?tls=none` (no TLS, for a local relay; 25). User name and password are
    /// percent-encoded. Unset: e-mails go to the file sink.
    pub smtp_url: Option<String>,
    /// The sender of e-mails, `Name <address>`; its domain also ends the `Message-ID`s.
    pub email_from: String,
    /// The SMS gateway: each SMS is a `POST` of JSON `{"to", "text", "id"}` with `Idempotency-Key: <id>`; a 2xx
    /// answer means delivered. Unset: SMS go to the file sink.
    pub sms_webhook_url: Option<String>,
    /// Sent as `Authorization: Bearer <token>` to the SMS gateway, when set.
    pub sms_webhook_token: Option<String>,
    /// Folder of the file sink. Defaults to `<data_dir>/outbox`.
    pub file_sink_dir: Option<PathBuf>,
    /// How often the dispatcher looks for messages to send, in milliseconds.
    pub dispatch_interval_ms: u64,
}

impl NotifySettings {
    /// The folder of the file sink in force.
    pub fn file_sink_dir(&self, data_dir: &Path) -> PathBuf {
        self.file_sink_dir.clone().unwrap_or_else(|| data_dir.join("outbox"))
    }

    /// The `[notify]` checks: URLs that parse, a sender that is an address, a token only with a webhook.
    fn validate(&self) -> Result<(), ConfigError> {
        use values::{parse_sender, parse_webhook_url, SmtpTarget};
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if let Some(url) = &self.smtp_url {
            if let Err(reason) = SmtpTarget::parse(url) {
                return invalid("notify.smtp_url", reason);
            }
        }
        if let Err(reason) = parse_sender(&self.email_from) {
            return invalid("notify.email_from", reason);
        }
        if let Some(url) = &self.sms_webhook_url {
            if let Err(reason) = parse_webhook_url(url) {
                return invalid("notify.sms_webhook_url", reason);
            }
        }
        if let Some(token) = &self.sms_webhook_token {
            if self.sms_webhook_url.is_none() {
                return invalid(
                    "notify.sms_webhook_token",
                    "a token without sms_webhook_url: set the URL too".into(),
                );
            }
            if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
                return invalid(
                    "notify.sms_webhook_token",
                    "must be printable ASCII without spaces".into(),
                );
            }
        }
        if !(10..=60_000).contains(&self.dispatch_interval_ms) {
            return invalid(
                "notify.dispatch_interval_ms",
                format!("{} is not between 10 and 60000", self.dispatch_interval_ms),
            );
        }
        Ok(())
    }
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            smtp_url: None,
            email_from: "Parafa <no-reply@localhost>".into(),
            sms_webhook_url: None,
            sms_webhook_token: None,
            file_sink_dir: None,
            dispatch_interval_ms: 200,
        }
    }
}

/// Without the SMTP password and the webhook token.
impl std::fmt::Debug for NotifySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use values::redact_url;
        f.debug_struct("NotifySettings")
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("email_from", &self.email_from)
            .field("sms_webhook_url", &self.sms_webhook_url.as_deref().map(redact_url))
            .field("sms_webhook_token", &self.sms_webhook_token.as_ref().map(|_| "***"))
            .field("file_sink_dir", &self.file_sink_dir)
            .field("dispatch_interval_ms", &self.dispatch_interval_ms)
            .finish()
    }
}

/// One prepaid package (product rules §1).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PackageSettings {
    pub id: u8,
    /// The name in English (pages, e-mails and the API in English).
    pub name: String,
    /// The name in Romanian; unset, the English one is used.
    #[serde(default)]
    pub name_ro: Option<String>,
    pub validity_years: u32,
    pub transactions: i64,
    /// Net price in euro cents.
    pub net_price_eur_cents: i64,
}

impl PackageSettings {
    /// The name in a language (`ro` or `en`).
    pub fn name_in(&self, lang: &str) -> &str {
        match (lang, &self.name_ro) {
            ("ro", Some(ro)) => ro,
            _ => &self.name,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./data"),
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            database_url: None,
            database_max_connections: 16,
            workers: 0,
            max_json_body_bytes: 1024 * 1024,
            hsm: HsmSettings::default(),
            ca: CaSettings::default(),
            tsa: TsaSettings::default(),
            documents: DocumentSettings::default(),
            audit: AuditSettings::default(),
            auth: AuthSettings::default(),
            accounts: AccountSettings::default(),
            csc: CscSettings::default(),
            billing: BillingSettings::default(),
            packages: default_packages(),
            notify: NotifySettings::default(),
            lifecycle: LifecycleSettings::default(),
            parsers: ParserLimits::default(),
            admission: AdmissionSettings::default(),
            limits: LimitSettings::default(),
            dev: false,
            identity_provider: IdentityProviderSettings::default(),
            tsa_ocsp: TsaOcspSettings::default(),
            trust: TrustSettings::default(),
            retention: RetentionSettings::default(),
            contact: ContactSettings::default(),
        }
    }
}

impl Default for HsmSettings {
    fn default() -> Self {
        HsmSettings {
            module: PathBuf::from(DEFAULT_HSM_MODULE),
            token_label: "parafa".into(),
            user_pin: None,
            so_pin: None,
            sessions: 0,
            manage_softhsm: None,
        }
    }
}

impl Default for CaSettings {
    fn default() -> Self {
        CaSettings {
            organization: "Parafa".into(),
            country: "RO".into(),
            root_common_name: "Parafa Root CA".into(),
            issuing_common_name: "Parafa Qualified CA".into(),
            key: KeySpec::P384,
            root_validity_days: 20 * 365,
            issuing_validity_days: 10 * 365,
            pds_url: None,
        }
    }
}

impl Default for TrustSettings {
    fn default() -> Self {
        TrustSettings {
            operator_name: "Parafa Trust Services SRL".into(),
            street: "Strada Exemplului 1".into(),
            locality: "Cluj-Napoca".into(),
            postal_code: "400000".into(),
            country: "RO".into(),
            email: "trust@parafa.example".into(),
            next_update_days: 30,
            operator_common_name: "Parafa Trusted List Scheme Operator".into(),
            operator_validity_days: 5 * 365,
            operator_key: KeySpec::P256,
        }
    }
}

impl Default for TsaSettings {
    fn default() -> Self {
        TsaSettings {
            policy: "0.4.0.2023.1.1".into(),
            accuracy_secs: 1,
            accuracy_millis: 0,
            key: KeySpec::P256,
            common_name: "Parafa Time-Stamping Authority".into(),
            validity_days: 5 * 365,
            include_tsa_name: true,
            max_request_bytes: 16 * 1024,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 86_400,
            totp_max_failures: 5,
            totp_lock_secs: 15 * 60,
            totp_skew_steps: 1,
        }
    }
}

impl Default for CscSettings {
    fn default() -> Self {
        CscSettings {
            sad_ttl_secs: 300,
            multisign: 100,
            name: "Parafa".into(),
            region: "RO".into(),
            oauth_code_ttl_secs: 60,
            oauth_request_uri_ttl_secs: 90,
            read_cache_ms: 2000,
        }
    }
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings { seal_interval_ms: 1000 }
    }
}

/// The three packages of the product rules §1: 1/2/3 years, 200/400/600 transactions, 39/59/79 EUR net.
pub fn default_packages() -> Vec<PackageSettings> {
    [(1, 1, 200, 3900), (2, 2, 400, 5900), (3, 3, 600, 7900)]
        .into_iter()
        .map(|(id, years, tx, cents)| PackageSettings {
            id,
            name: format!("Package {id}"),
            name_ro: Some(format!("Pachetul {id}")),
            validity_years: years,
            transactions: tx,
            net_price_eur_cents: cents,
        })
        .collect()
}

/// Each `PARAFA_*` variable that is a setting, and that setting's dotted key in `parafa.toml`.
pub const VARIABLES: &[(&str, &str)] = &[
    ("PARAFA_DATA_DIR", "data_dir"),
    ("PARAFA_LISTEN", "listen"),
    ("PARAFA_PUBLIC_URL", "public_url"),
    ("PARAFA_DATABASE_URL", "database_url"),
    ("PARAFA_DATABASE_MAX_CONNECTIONS", "database_max_connections"),
    ("PARAFA_WORKERS", "workers"),
    ("PARAFA_DEV", "dev"),
    ("PARAFA_HSM_MODULE", "hsm.module"),
    ("PARAFA_HSM_TOKEN_LABEL", "hsm.token_label"),
    ("PARAFA_HSM_USER_PIN", "hsm.user_pin"),
    ("PARAFA_HSM_SO_PIN", "hsm.so_pin"),
    ("PARAFA_HSM_SESSIONS", "hsm.sessions"),
    ("PARAFA_HSM_MANAGE_SOFTHSM", "hsm.manage_softhsm"),
    ("PARAFA_CA_KEY", "ca.key"),
    ("PARAFA_TSA_KEY", "tsa.key"),
    ("PARAFA_TSA_POLICY", "tsa.policy"),
    ("PARAFA_CSC_MULTISIGN", "csc.multisign"),
    ("PARAFA_CSC_SAD_TTL_SECS", "csc.sad_ttl_secs"),
    ("PARAFA_CSC_READ_CACHE_MS", "csc.read_cache_ms"),
    ("PARAFA_CSC_OAUTH_CODE_TTL_SECS", "csc.oauth_code_ttl_secs"),
    (
        "PARAFA_CSC_OAUTH_REQUEST_URI_TTL_SECS",
        "csc.oauth_request_uri_ttl_secs",
    ),
    ("PARAFA_VAT_BASIS_POINTS", "billing.vat_basis_points"),
    ("PARAFA_FX_FEED_URL", "billing.fx_feed_url"),
    ("PARAFA_FX_FEED_FILE", "billing.fx_feed_file"),
    ("PARAFA_FALLBACK_EUR_RON", "billing.fallback_eur_ron"),
    ("PARAFA_PAYMENT_CALLBACK_SECRET", "billing.payment_callback_secret"),
    ("PARAFA_LIFECYCLE_TICK_SECS", "lifecycle.tick_secs"),
    ("PARAFA_DOCUMENT_RETENTION_SECS", "documents.retention_secs"),
    ("PARAFA_DOCUMENT_MAX_FILE_BYTES", "documents.max_file_bytes"),
    ("PARAFA_DOCUMENT_MAX_PDF_BYTES", "documents.max_pdf_bytes"),
    ("PARAFA_DOCUMENT_MAX_JOB_BYTES", "documents.max_job_bytes"),
    ("PARAFA_SMTP_URL", "notify.smtp_url"),
    ("PARAFA_EMAIL_FROM", "notify.email_from"),
    ("PARAFA_SMS_WEBHOOK_URL", "notify.sms_webhook_url"),
    ("PARAFA_SMS_WEBHOOK_TOKEN", "notify.sms_webhook_token"),
    ("PARAFA_MEMORY_BUDGET_MIB", "admission.memory_budget_mib"),
    ("PARAFA_ADMISSION_WAIT_MS", "admission.wait_ms"),
    ("PARAFA_PASSWORD_WORKERS", "admission.password_workers"),
    ("PARAFA_IDENTITY_PROVIDER_URL", "identity_provider.url"),
    ("PARAFA_IDENTITY_CALLBACK_SECRET", "identity_provider.callback_secret"),
    ("PARAFA_TSA_ANONYMOUS", "tsa_ocsp.tsa_anonymous"),
    ("PARAFA_TSA_ANONYMOUS_PER_MINUTE", "tsa_ocsp.tsa_anonymous_per_minute"),
    ("PARAFA_TSA_PER_MINUTE", "tsa_ocsp.tsa_per_minute"),
    ("PARAFA_OCSP_PER_MINUTE", "tsa_ocsp.ocsp_per_minute"),
    ("PARAFA_OCSP_FRESH_PER_MINUTE", "tsa_ocsp.ocsp_fresh_per_minute"),
    ("PARAFA_OCSP_CACHE_SECS", "tsa_ocsp.ocsp_cache_secs"),
    ("PARAFA_TRUSTED_PROXIES", "limits.trusted_proxies"),
    ("PARAFA_CLIENT_ADDRESS_HEADER", "limits.client_address_header"),
    ("PARAFA_SENDS_PER_DESTINATION", "limits.sends_per_destination"),
    (
        "PARAFA_SENDS_PER_DESTINATION_WINDOW_SECS",
        "limits.sends_per_destination_window_secs",
    ),
    ("PARAFA_SENDS_GLOBAL", "limits.sends_global"),
    ("PARAFA_SENDS_GLOBAL_WINDOW_SECS", "limits.sends_global_window_secs"),
    ("PARAFA_PARSER_PDF_MAX_NODES", "parsers.pdf_max_nodes"),
    ("PARAFA_PARSER_PDF_MAX_DEPTH", "parsers.pdf_max_depth"),
    ("PARAFA_PARSER_PDF_SCAN_FACTOR", "parsers.pdf_scan_factor"),
    (
        "PARAFA_PARSER_PDF_MAX_DECODED_STREAM_BYTES",
        "parsers.pdf_max_decoded_stream_bytes",
    ),
    (
        "PARAFA_PARSER_PDF_MAX_DECODED_TOTAL_BYTES",
        "parsers.pdf_max_decoded_total_bytes",
    ),
    ("PARAFA_PARSER_PDF_MAX_XREF_SECTIONS", "parsers.pdf_max_xref_sections"),
    ("PARAFA_PARSER_CMS_MAX_SIGNERS", "parsers.cms_max_signers"),
    ("PARAFA_PARSER_CMS_MAX_CERTIFICATES", "parsers.cms_max_certificates"),
    ("PARAFA_PARSER_CMS_MAX_ATTRIBUTES", "parsers.cms_max_attributes"),
    ("PARAFA_PARSER_OCSP_MAX_REQUEST_BYTES", "parsers.ocsp_max_request_bytes"),
    ("PARAFA_PARSER_OCSP_MAX_REQUESTS", "parsers.ocsp_max_requests"),
    ("PARAFA_RETENTION_FINANCIAL_YEARS", "retention.financial_years"),
    ("PARAFA_RETENTION_COMPLAINTS_YEARS", "retention.complaints_years"),
    ("PARAFA_RETENTION_AUDIT_YEARS", "retention.audit_years"),
    ("PARAFA_AUDIT_SEAL_INTERVAL_MS", "audit.seal_interval_ms"),
    (
        "PARAFA_RETENTION_EVIDENCE_YEARS_AFTER_EXPIRY",
        "retention.evidence_years_after_expiry",
    ),
    ("PARAFA_RETENTION_ENABLED", "retention.enabled"),
    ("PARAFA_CONTACT_CODE_MINUTES", "contact.code_minutes"),
    ("PARAFA_CONTACT_PER_CLIENT", "contact.per_client"),
];

/// Variables whose empty value unsets the setting, over the file too ("an empty variable counts as unset").
const EMPTY_IS_UNSET: &[&str] = &[
    "PARAFA_SMTP_URL",
    "PARAFA_SMS_WEBHOOK_URL",
    "PARAFA_SMS_WEBHOOK_TOKEN",
    "PARAFA_IDENTITY_PROVIDER_URL",
    "PARAFA_DEV",
];

/// `PARAFA_*` variables that are not settings of the server but are read elsewhere: the file's path, the log filter,
/// the CLI's holder password, the clock's offset, and the test suites' clock file and PostgreSQL.
pub const NOT_SETTINGS: &[&str] = &[
    "PARAFA_CONFIG",
    "PARAFA_LOG",
    "PARAFA_HOLDER_PASSWORD",
    "PARAFA_CLOCK_OFFSET_SECS",
    "PARAFA_TEST_CLOCK_FILE",
    "PARAFA_TEST_POSTGRES_URL",
];

/// `dev`: a boolean, and off when unset (an empty `PARAFA_DEV`).
fn off_if_unset<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

impl ConfigError {
    /// figment's error in the words of its source: the variable and its value, or the file and the key.
    fn from_figment(e: figment::Error, env: &[(String, String)]) -> ConfigError {
        let key = e.path.join(".");
        if let Some(Source::File(path)) = e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
            let at = Some(&key).filter(|k| !k.is_empty()).map(|k| format!(" (key `{k}`)"));
            let (path, reason) = (path.clone(), format!("{}{}", e.kind, at.unwrap_or_default()));
            return ConfigError::Parse { path, reason };
        }
        // Not the file, so a variable (the defaults always read): the one of the key.
        let Some(&(var, _)) = VARIABLES.iter().find(|(_, k)| *k == key) else {
            return ConfigError::Invalid {
                name: "settings",
                reason: e.to_string(),
            };
        };
        let value = env.iter().rev().find(|(k, _)| k == var).map(|(_, v)| v.clone());
        let (var, value, reason) = (var.into(), value.unwrap_or_default(), Self::expected(&e.kind));
        ConfigError::Env { var, value, reason }
    }

    /// What a variable's value should have been, in words (the value is shown beside).
    fn expected(kind: &Kind) -> String {
        let (Kind::InvalidType(_, what) | Kind::InvalidValue(_, what)) = kind else {
            return kind.to_string();
        };
        match what.as_str() {
            "u32" => format!("expected a whole number from 0 to {}", u32::MAX),
            "u64" | "usize" => format!("expected a whole number from 0 to {}", u64::MAX),
            "i64" => "expected a whole number".into(),
            "a boolean" => "expected true or false (or 1, 0, yes, no, on, off)".into(),
            other => format!("expected {other}"),
        }
    }
}

impl Settings {
    /// Defaults, then `parafa.toml` (or the file named by `PARAFA_CONFIG`), then `PARAFA_*` variables; validated.
    pub fn load() -> Result<Settings, ConfigError> {
        let file = std::env::var_os("PARAFA_CONFIG").map(PathBuf::from);
        Self::load_from(file.as_deref(), &std::env::vars().collect::<Vec<_>>())
    }

    /// As [`Settings::load`], with the file and the environment given (for tests).
    pub fn load_from(file: Option<&Path>, env: &[(String, String)]) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        let local = Path::new("parafa.toml");
        if let Some(path) = file.or(local.exists().then_some(local)) {
            // figment would take an unreadable file for a bad one: say which it is.
            std::fs::File::open(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        for (var, value) in env.iter().filter(|(var, _)| var.starts_with("PARAFA_")) {
            match VARIABLES.iter().find(|(name, _)| name == var) {
                Some(&(name, key)) => {
                    let unset = value.is_empty() && EMPTY_IS_UNSET.contains(&name);
                    figment = figment.merge(Serialized::default(key, Some(value).filter(|_| !unset)));
                }
                None if NOT_SETTINGS.contains(&var.as_str()) => {}
                None => {
                    let (var, value, reason) = (var.clone(), value.clone(), "unknown PARAFA_ variable".into());
                    return Err(ConfigError::Env { var, value, reason });
                }
            }
        }
        let settings: Settings = figment.extract_lossy().map_err(|e| ConfigError::from_figment(e, env))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if self.listen.parse::<SocketAddr>().is_err() {
            return invalid(
                "listen",
                format!("{:?} is not an address such as 127.0.0.1:8080", self.listen),
            );
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return invalid("public_url", format!("{url:?} must start with http:// or https://"));
            }
        }
        if !(1..=183).contains(&self.trust.next_update_days) {
            return invalid(
                "trust.next_update_days",
                format!(
                    "{} days: a trusted list's next update is at most six months away (ETSI TS 119 612 §5.3.14)",
                    self.trust.next_update_days
                ),
            );
        }
        if self.trust.country.len() != 2 || !self.trust.country.chars().all(|c| c.is_ascii_uppercase()) {
            return invalid(
                "trust.country",
                format!("{:?} is not a two-letter country code", self.trust.country),
            );
        }
        if self.dev && self.public_url().starts_with("https://") {
            return invalid(
                "dev",
                "development mode (the sandbox payment and identification) is refused with an https public URL: \
                 a public deployment must not let holders pay their own orders or declare their identity"
                    .into(),
            );
        }
        if let Some(url) = &self.identity_provider.url {
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return invalid("identity_provider.url", format!("{url:?} must start with https://"));
            }
        }
        self.tsa_ocsp.validate()?;
        let db = self.database_url();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return invalid(
                "database_url",
                format!("{db:?}: Parafa supports sqlite:… and postgres://… URLs"),
            );
        }
        if self.ca.country.len() != 2 || !self.ca.country.chars().all(|c| c.is_ascii_uppercase()) {
            return invalid(
                "ca.country",
                format!("{:?} is not a two-letter country code", self.ca.country),
            );
        }
        if self.csc.multisign < 1 || self.csc.sad_ttl_secs < 1 {
            return invalid("csc", "multisign and sad_ttl_secs must be at least 1".into());
        }
        if !(1..=600).contains(&self.csc.oauth_code_ttl_secs)
            || !(1..=600).contains(&self.csc.oauth_request_uri_ttl_secs)
        {
            return invalid(
                "csc",
                "oauth_code_ttl_secs and oauth_request_uri_ttl_secs must be 1 to 600 seconds".into(),
            );
        }
        if self.auth.totp_max_failures < 1 || !(0..=3).contains(&self.auth.totp_skew_steps) {
            return invalid("auth", "totp_max_failures ≥ 1 and totp_skew_steps 0..=3".into());
        }
        if time::OffsetDateTime::parse(
            &self.accounts.two_factor_mandatory_from,
            &time::format_description::well_known::Rfc3339,
        )
        .is_err()
        {
            return invalid(
                "accounts.two_factor_mandatory_from",
                format!("{:?} is not an RFC 3339 time", self.accounts.two_factor_mandatory_from),
            );
        }
        self.notify.validate()?;
        self.parsers.validate()?;
        self.admission.validate()?;
        self.limits.validate()?;
        self.documents.validate()?;
        self.tsa.validate()?;
        self.lifecycle.validate()?;
        self.billing.validate()?;
        self.retention.validate()?;
        self.contact.validate()?;
        if self.packages.is_empty() {
            return invalid("packages", "at least one package is needed".into());
        }
        for p in &self.packages {
            if p.transactions <= 0 || p.validity_years == 0 {
                return invalid(
                    "packages",
                    format!("package {} needs transactions and a validity", p.id),
                );
            }
        }
        Ok(())
    }

    /// Checks that need the file system: the PKCS#11 module must exist.
    pub fn check_hsm_module(&self) -> Result<(), ConfigError> {
        if self.hsm.module.exists() {
            return Ok(());
        }
        let hint = if self.manages_softhsm() {
            "install the softhsm2 package (`make run` does it) or set PARAFA_HSM_MODULE"
        } else {
            "check PARAFA_HSM_MODULE"
        };
        Err(ConfigError::Invalid {
            name: "hsm.module",
            reason: format!("PKCS#11 module not found at {} — {hint}", self.hsm.module.display()),
        })
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("parafa.db").display()),
        }
    }

    /// The base URL written into certificates, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// Whether Parafa writes SoftHSM2's configuration and creates the token itself.
    pub fn manages_softhsm(&self) -> bool {
        self.hsm
            .manage_softhsm
            .unwrap_or_else(|| self.hsm.module.to_string_lossy().contains("softhsm"))
    }

    /// Sessions in the HSM pool.
    pub fn hsm_sessions(&self) -> usize {
        match self.hsm.sessions {
            0 => (2 * cores()).max(4),
            n => n,
        }
    }

    /// A package by its number.
    pub fn package(&self, id: u8) -> Option<&PackageSettings> {
        self.packages.iter().find(|p| p.id == id)
    }
}

/// Cores available to this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

impl TsaOcspSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if self.tsa_per_minute < 1
            || self.ocsp_per_minute < 1
            || self.ocsp_fresh_per_minute < 1
            || self.tsa_anonymous_per_minute < 1
        {
            return invalid("tsa_ocsp", "the per-minute limits must be at least 1".into());
        }
        if !(0..=86_400).contains(&self.ocsp_cache_secs) {
            return invalid("tsa_ocsp.ocsp_cache_secs", "must be between 0 and 86400".into());
        }
        Ok(())
    }
}

impl AdmissionSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if self.memory_budget_mib < 32 || self.wait_ms > 60_000 || self.body_factor < 1 || self.parse_factor < 1 {
            return invalid(
                "admission",
                "memory_budget_mib ≥ 32, wait_ms ≤ 60000, body_factor ≥ 1 and parse_factor ≥ 1".into(),
            );
        }
        Ok(())
    }
}

/// The most one signature adds to a document, with its validation data: a PDF's signature placeholder and DSS, a
/// document timestamp, a `.p7s`'s CMS around its content. What Parafa has signed stays within its document limit
/// plus this, and verification takes that much ([`DocumentSettings::max_signed_bytes`]).
pub const SIGNATURE_HEADROOM: usize = 8 * 1024 * 1024;

/// What a JSON request adds around the base64 of its documents (names, algorithms, the SAD, …).
pub const JSON_HEADROOM: usize = 1024 * 1024;

/// The size limits every path takes from here, so that they cannot disagree: whatever one signing path accepts,
/// the others accept, and whatever Parafa signed, verification accepts.
impl DocumentSettings {
    /// The largest document of this kind that is signed: a PDF (whatever the signature's format) up to
    /// `max_pdf_bytes`, any other file up to `max_file_bytes`.
    pub fn max_document_bytes(&self, pdf: bool) -> usize {
        if pdf {
            self.max_pdf_bytes
        } else {
            self.max_file_bytes
        }
    }

    /// The largest document of either kind: what an upload may reach before its kind is known.
    pub fn max_any_document_bytes(&self) -> usize {
        self.max_pdf_bytes.max(self.max_file_bytes)
    }

    /// The largest signed file verification takes: any document Parafa signs, with the signatures it adds.
    pub fn max_signed_bytes(&self) -> usize {
        self.max_any_document_bytes().saturating_add(SIGNATURE_HEADROOM)
    }

    /// The largest CSC `signDoc` body: a whole job's documents in base64, and the JSON around them.
    pub fn max_sign_doc_body_bytes(&self) -> usize {
        self.max_job_bytes
            .div_ceil(3)
            .saturating_mul(4)
            .saturating_add(JSON_HEADROOM)
    }

    /// The largest `/api/v1/verify` body: a signed file and its detached content, and the form around them.
    pub fn max_verify_body_bytes(&self) -> usize {
        self.max_signed_bytes().saturating_mul(2).saturating_add(JSON_HEADROOM)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if self.retention_secs < 60
            || self.max_files == 0
            || self.max_file_bytes == 0
            || self.max_pdf_bytes == 0
            || self.max_job_bytes < self.max_any_document_bytes()
        {
            return invalid(
                "documents",
                "retention_secs ≥ 60, max_files ≥ 1, max_file_bytes ≥ 1, max_pdf_bytes ≥ 1 and max_job_bytes ≥ both"
                    .into(),
            );
        }
        Ok(())
    }
}

impl TsaSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if const_oid::ObjectIdentifier::new(&self.policy).is_err() {
            return invalid(
                "tsa.policy",
                format!("{:?} is not an OID such as 0.4.0.2023.1.1", self.policy),
            );
        }
        if self.accuracy_millis > 999
            || self.validity_days < 1
            || !(256..=1024 * 1024).contains(&self.max_request_bytes)
        {
            return invalid(
                "tsa",
                "accuracy_millis 0..=999, validity_days ≥ 1, max_request_bytes 256..=1048576".into(),
            );
        }
        Ok(())
    }
}

impl LifecycleSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if !(1..=3600).contains(&self.tick_secs)
            || self.reminder_days.iter().any(|d| *d < 1)
            || self.rekey_cutoff_hours < 0
            || self.successor_lead_days < 0
            || self.identity_link_hours < 1
            || self.identity_documents.is_empty()
        {
            return invalid(
                "lifecycle",
                "tick_secs 1..=3600, reminder_days ≥ 1, identity_link_hours ≥ 1, a document list, no negative limits"
                    .into(),
            );
        }
        Ok(())
    }
}

impl BillingSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        if values::parse_rate(&self.fallback_eur_ron).is_none_or(|r| r <= 0) {
            return invalid(
                "billing.fallback_eur_ron",
                format!("{:?} is not a rate such as 5.0900", self.fallback_eur_ron),
            );
        }
        if self.seller_country_code == "RO" && !self.seller_county.starts_with("RO-") {
            return invalid(
                "billing.seller_county",
                format!(
                    "{:?} is not an ISO 3166-2:RO code such as RO-CJ or RO-B",
                    self.seller_county
                ),
            );
        }
        if self.efactura_upload
            && (self.anaf_client_id.is_none() || self.anaf_client_secret.is_none() || self.anaf_refresh_token.is_none())
        {
            return invalid(
                "billing.efactura_upload",
                "the upload needs anaf_client_id, anaf_client_secret and anaf_refresh_token".into(),
            );
        }
        if !(0..=10_000).contains(&self.vat_basis_points) {
            return invalid(
                "billing.vat_basis_points",
                "VAT must be between 0 and 10000 basis points".into(),
            );
        }
        if !(0..=60).contains(&self.institutional_lead_working_days)
            || !(0..=365).contains(&self.institutional_payment_days)
        {
            return invalid(
                "billing",
                "institutional_lead_working_days 0..=60, institutional_payment_days 0..=365".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_work_out_of_the_box() {
        let s = Settings::load_from(None, &[]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        // 2027-01-01 00:00 in Bucharest is 2026-12-31 22:00 UTC.
        assert_eq!(s.accounts.two_factor_mandatory_at(), 1_798_754_400);
        assert!(s.database_url().starts_with("sqlite://./data/parafa.db"));
        assert_eq!(s.public_url(), "http://127.0.0.1:8080");
        assert_eq!(
            s.packages.iter().map(|p| p.transactions).collect::<Vec<_>>(),
            [200, 400, 600]
        );
    }

    #[test]
    fn the_memory_budget_comes_from_the_environment_and_a_too_small_one_is_refused() {
        let s = Settings::load_from(None, &[]).unwrap();
        assert_eq!((s.admission.memory_budget_mib, s.admission.wait_ms), (512, 2_000));
        let s = Settings::load_from(
            None,
            &env(&[
                ("PARAFA_MEMORY_BUDGET_MIB", "1024"),
                ("PARAFA_ADMISSION_WAIT_MS", "500"),
                ("PARAFA_PASSWORD_WORKERS", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(s.admission.memory_budget_mib, 1024);
        assert_eq!(s.admission.wait_ms, 500);
        assert_eq!(s.admission.password_workers(), 3);
        let err = Settings::load_from(None, &env(&[("PARAFA_MEMORY_BUDGET_MIB", "8")])).unwrap_err();
        assert!(err.to_string().contains("admission"), "{err}");
    }

    #[test]
    fn trusted_proxies_and_message_limits_come_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parafa.toml");
        std::fs::write(
            &file,
            "[limits]\ntrusted_proxies = [\"10.0.0.0/8\"]\nclient_address_header = \"Forwarded\"\nsends_global = 7\n",
        )
        .unwrap();
        let s = Settings::load_from(Some(&file), &[]).unwrap();
        assert_eq!(
            s.limits.trusted_proxies,
            ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]
        );
        assert_eq!(s.limits.client_address_header, ForwardedHeader::Forwarded);
        assert_eq!((s.limits.sends_global, s.limits.sends_per_destination), (7, 5));
        let s = Settings::load_from(
            None,
            &env(&[
                ("PARAFA_TRUSTED_PROXIES", "192.0.2.0/24, 2001:db8::1"),
                ("PARAFA_SENDS_PER_DESTINATION", "2"),
            ]),
        )
        .unwrap();
        assert_eq!(s.limits.trusted_proxies.len(), 2);
        assert!(s.limits.trusted_proxies[1].contains(&"2001:db8::1".parse::<std::net::IpAddr>().unwrap()));
        assert_eq!(s.limits.sends_per_destination, 2);
        assert!(
            Settings::default().limits.trusted_proxies.is_empty(),
            "no proxy is trusted by default"
        );
        let err = Settings::load_from(None, &env(&[("PARAFA_TRUSTED_PROXIES", "the load balancer")])).unwrap_err();
        assert!(err.to_string().contains("PARAFA_TRUSTED_PROXIES"), "{err}");
        assert!(Settings::load_from(None, &env(&[("PARAFA_SENDS_GLOBAL", "0")])).is_err());
        assert!(Settings::load_from(None, &env(&[("PARAFA_CLIENT_ADDRESS_HEADER", "X-Real-IP")])).is_err());
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parafa.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\n[hsm]\ntoken_label = \"t1\"\n").unwrap();
        let s = Settings::load_from(Some(&file), &env(&[("PARAFA_LISTEN", "127.0.0.1:9100")])).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9100");
        assert_eq!(s.hsm.token_label, "t1");
    }

    #[test]
    fn parser_budgets_are_settings_that_reach_the_readers() {
        let s = Settings::load_from(None, &[]).unwrap();
        assert_eq!(
            crate::documents::pades::Limits::of(&s),
            crate::documents::pades::Limits::default()
        );
        assert_eq!(
            crate::documents::verify::Limits::of(&s),
            crate::documents::verify::Limits::default()
        );
        let s = Settings::load_from(
            None,
            &env(&[
                ("PARAFA_PARSER_PDF_MAX_NODES", "1000"),
                ("PARAFA_PARSER_PDF_SCAN_FACTOR", "3"),
                ("PARAFA_PARSER_CMS_MAX_SIGNERS", "4"),
                ("PARAFA_PARSER_OCSP_MAX_REQUESTS", "2"),
            ]),
        )
        .unwrap();
        let pdf = crate::documents::pades::Limits::of(&s);
        assert_eq!((pdf.max_nodes, pdf.scan_factor), (1000, 3));
        assert_eq!(crate::documents::verify::Limits::of(&s).signers, 4);
        assert_eq!(crate::ca::revocation::OcspLimits::of(&s.parsers).max_requests, 2);
        let err = Settings::load_from(None, &env(&[("PARAFA_PARSER_PDF_MAX_DEPTH", "deep")])).unwrap_err();
        assert!(err.to_string().contains("PARAFA_PARSER_PDF_MAX_DEPTH"), "{err}");
        let err = Settings::load_from(None, &env(&[("PARAFA_PARSER_PDF_MAX_NODES", "0")])).unwrap_err();
        assert!(err.to_string().contains("parsers"), "{err}");
        let err = Settings::load_from(None, &env(&[("PARAFA_PARSER_NOPE", "1")])).unwrap_err();
        assert!(err.to_string().contains("unknown PARAFA_ variable"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let err = Settings::load_from(None, &env(&[("PARAFA_LISTEN", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let err = Settings::load_from(None, &env(&[("PARAFA_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
    }

    #[test]
    fn pins_never_show_in_debug_output() {
        let s = Settings::load_from(None, &env(&[("PARAFA_HSM_USER_PIN", "s3cr3t-pin-1234")])).unwrap();
        assert!(!format!("{s:?}").contains("s3cr3t-pin-1234"));
    }

    #[test]
    fn development_mode_is_off_by_default_and_refused_with_https() {
        assert!(!Settings::load_from(None, &[]).unwrap().dev);
        assert!(Settings::load_from(None, &env(&[("PARAFA_DEV", "1")])).unwrap().dev);
        let err = Settings::load_from(
            None,
            &env(&[("PARAFA_DEV", "1"), ("PARAFA_PUBLIC_URL", "https://sign.example.ro")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("dev"), "{err}");
        assert!(Settings::load_from(None, &env(&[("PARAFA_PUBLIC_URL", "https://sign.example.ro")])).is_ok());
    }

    #[test]
    fn a_missing_module_says_how_to_fix_it() {
        let s = Settings::load_from(None, &env(&[("PARAFA_HSM_MODULE", "/nonexistent/libsofthsm2.so")])).unwrap();
        let err = s.check_hsm_module().unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent/libsofthsm2.so") && err.contains("softhsm2 package"),
            "{err}"
        );
    }

    /// A valid value, other than the default, for every variable of [`VARIABLES`].
    const SAMPLES: &[(&str, &str)] = &[
        ("PARAFA_DATA_DIR", "/srv/parafa"),
        ("PARAFA_LISTEN", "127.0.0.1:9001"),
        ("PARAFA_PUBLIC_URL", "http://sign.example.ro"),
        ("PARAFA_DATABASE_URL", "postgres://parafa@db/parafa"),
        ("PARAFA_DATABASE_MAX_CONNECTIONS", "8"),
        ("PARAFA_WORKERS", "3"),
        ("PARAFA_DEV", "1"),
        ("PARAFA_HSM_MODULE", "/opt/hsm/libpkcs11.so"),
        ("PARAFA_HSM_TOKEN_LABEL", "t2"),
        ("PARAFA_HSM_USER_PIN", "0123"),
        ("PARAFA_HSM_SO_PIN", "[4567]"),
        ("PARAFA_HSM_SESSIONS", "6"),
        ("PARAFA_HSM_MANAGE_SOFTHSM", "false"),
        ("PARAFA_CA_KEY", "RSA3072"),
        ("PARAFA_TSA_KEY", "p384"),
        ("PARAFA_TSA_POLICY", "1.2.3.4"),
        ("PARAFA_CSC_MULTISIGN", "7"),
        ("PARAFA_CSC_SAD_TTL_SECS", "60"),
        ("PARAFA_CSC_READ_CACHE_MS", "500"),
        ("PARAFA_CSC_OAUTH_CODE_TTL_SECS", "30"),
        ("PARAFA_CSC_OAUTH_REQUEST_URI_TTL_SECS", "120"),
        ("PARAFA_VAT_BASIS_POINTS", "1900"),
        ("PARAFA_FX_FEED_URL", "https://bnr.example.ro/nbrfxrates.xml"),
        ("PARAFA_FX_FEED_FILE", "/srv/fx.xml"),
        ("PARAFA_FALLBACK_EUR_RON", "5.1000"),
        ("PARAFA_PAYMENT_CALLBACK_SECRET", "pay-secret"),
        ("PARAFA_LIFECYCLE_TICK_SECS", "30"),
        ("PARAFA_DOCUMENT_RETENTION_SECS", "3600"),
        ("PARAFA_DOCUMENT_MAX_FILE_BYTES", "1048576"),
        ("PARAFA_DOCUMENT_MAX_PDF_BYTES", "3145728"),
        ("PARAFA_DOCUMENT_MAX_JOB_BYTES", "4194304"),
        ("PARAFA_SMTP_URL", "smtp://relay.example.ro"),
        ("PARAFA_EMAIL_FROM", "Parafa <no-reply@example.ro>"),
        ("PARAFA_SMS_WEBHOOK_URL", "https://sms.example.ro/send"),
        ("PARAFA_SMS_WEBHOOK_TOKEN", "tok-1"),
        ("PARAFA_MEMORY_BUDGET_MIB", "256"),
        ("PARAFA_ADMISSION_WAIT_MS", "100"),
        ("PARAFA_PASSWORD_WORKERS", "2"),
        ("PARAFA_IDENTITY_PROVIDER_URL", "https://idp.example.ro/start"),
        ("PARAFA_IDENTITY_CALLBACK_SECRET", "id-secret"),
        ("PARAFA_TSA_ANONYMOUS", "true"),
        ("PARAFA_TSA_ANONYMOUS_PER_MINUTE", "10"),
        ("PARAFA_TSA_PER_MINUTE", "100"),
        ("PARAFA_OCSP_PER_MINUTE", "200"),
        ("PARAFA_OCSP_FRESH_PER_MINUTE", "20"),
        ("PARAFA_OCSP_CACHE_SECS", "0"),
        ("PARAFA_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"),
        ("PARAFA_CLIENT_ADDRESS_HEADER", "forwarded"),
        ("PARAFA_SENDS_PER_DESTINATION", "2"),
        ("PARAFA_SENDS_PER_DESTINATION_WINDOW_SECS", "60"),
        ("PARAFA_SENDS_GLOBAL", "10"),
        ("PARAFA_SENDS_GLOBAL_WINDOW_SECS", "120"),
        ("PARAFA_PARSER_PDF_MAX_NODES", "1000"),
        ("PARAFA_PARSER_PDF_MAX_DEPTH", "10"),
        ("PARAFA_PARSER_PDF_SCAN_FACTOR", "3"),
        ("PARAFA_PARSER_PDF_MAX_DECODED_STREAM_BYTES", "1024"),
        ("PARAFA_PARSER_PDF_MAX_DECODED_TOTAL_BYTES", "2048"),
        ("PARAFA_PARSER_PDF_MAX_XREF_SECTIONS", "5"),
        ("PARAFA_PARSER_CMS_MAX_SIGNERS", "2"),
        ("PARAFA_PARSER_CMS_MAX_CERTIFICATES", "3"),
        ("PARAFA_PARSER_CMS_MAX_ATTRIBUTES", "4"),
        ("PARAFA_PARSER_OCSP_MAX_REQUEST_BYTES", "512"),
        ("PARAFA_PARSER_OCSP_MAX_REQUESTS", "1"),
        ("PARAFA_RETENTION_FINANCIAL_YEARS", "5"),
        ("PARAFA_RETENTION_COMPLAINTS_YEARS", "4"),
        ("PARAFA_RETENTION_AUDIT_YEARS", "3"),
        ("PARAFA_AUDIT_SEAL_INTERVAL_MS", "1500"),
        ("PARAFA_RETENTION_EVIDENCE_YEARS_AFTER_EXPIRY", "11"),
        ("PARAFA_RETENTION_ENABLED", "false"),
        ("PARAFA_CONTACT_CODE_MINUTES", "15"),
        ("PARAFA_CONTACT_PER_CLIENT", "20"),
    ];

    #[test]
    fn every_variable_sets_the_setting_its_table_names() {
        fn names(list: &[(&'static str, &'static str)]) -> Vec<&'static str> {
            list.iter().map(|(v, _)| *v).collect()
        }
        assert_eq!(
            names(SAMPLES),
            names(VARIABLES),
            "one sample per variable, in the table's order"
        );
        let mut keys: Vec<_> = VARIABLES.iter().map(|(_, k)| *k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), VARIABLES.len(), "no two variables set one setting");
        for (var, key) in VARIABLES {
            let field = key.rsplit('.').next().unwrap();
            assert!(
                var.to_ascii_lowercase().ends_with(field),
                "{var} is named after another setting than {key}"
            );
        }

        // A key that is no setting would be refused (`deny_unknown_fields`); each value must land on its key.
        let s = Settings::load_from(None, &env(SAMPLES)).unwrap();
        let tree = |s: &Settings| Figment::from(Serialized::defaults(s.clone()));
        let (loaded, default) = (tree(&s), tree(&Settings::default()));
        let secrets = [
            "hsm.user_pin",
            "hsm.so_pin",
            "billing.payment_callback_secret",
            "identity_provider.callback_secret",
        ];
        for (var, key) in VARIABLES.iter().filter(|(_, key)| !secrets.contains(key)) {
            let value = loaded.find_value(key).unwrap();
            assert_ne!(value, default.find_value(key).unwrap(), "{var} does not reach {key}");
        }
        use secrecy::ExposeSecret;
        let secret = |s: &Option<SecretString>| s.as_ref().map(|s| s.expose_secret().to_owned());
        assert_eq!(
            secret(&s.hsm.user_pin).as_deref(),
            Some("0123"),
            "a PIN is text, kept as written"
        );
        assert_eq!(secret(&s.hsm.so_pin).as_deref(), Some("[4567]"));
        assert_eq!(
            secret(&s.billing.payment_callback_secret).as_deref(),
            Some("pay-secret")
        );
        assert_eq!(
            secret(&s.identity_provider.callback_secret).as_deref(),
            Some("id-secret")
        );
        assert_eq!((s.ca.key, s.tsa.key), (KeySpec::Rsa3072, KeySpec::P384));
        assert_eq!(s.limits.client_address_header, ForwardedHeader::Forwarded);
        assert_eq!(
            s.limits.trusted_proxies[1],
            "192.0.2.1/32".parse::<ipnet::IpNet>().unwrap()
        );
        assert_eq!(s.hsm.manage_softhsm, Some(false));
    }

    #[test]
    fn an_unknown_variable_is_refused_but_those_read_elsewhere_are_not() {
        let err = Settings::load_from(None, &env(&[("PARAFA_LISTN", "x")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"PARAFA_LISTN="x" is not valid: unknown PARAFA_ variable"#
        );
        let elsewhere: Vec<_> = NOT_SETTINGS.iter().map(|v| (*v, "/nonexistent")).collect();
        Settings::load_from(None, &env(&elsewhere)).unwrap();
        // Other variables are not Parafa's.
        Settings::load_from(None, &env(&[("PARAFAX", "1"), ("HOME", "/root")])).unwrap();
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_value() {
        let message = |var: &str, value: &str| {
            Settings::load_from(None, &env(&[(var, value)]))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            message("PARAFA_HSM_SESSIONS", "x"),
            r#"PARAFA_HSM_SESSIONS="x" is not valid: expected a whole number from 0 to 18446744073709551615"#
        );
        assert_eq!(
            message("PARAFA_MEMORY_BUDGET_MIB", "-1"),
            r#"PARAFA_MEMORY_BUDGET_MIB="-1" is not valid: expected a whole number from 0 to 4294967295"#
        );
        assert_eq!(
            message("PARAFA_OCSP_CACHE_SECS", "1.5"),
            r#"PARAFA_OCSP_CACHE_SECS="1.5" is not valid: expected a whole number"#
        );
        assert_eq!(
            message("PARAFA_TSA_ANONYMOUS", "maybe"),
            r#"PARAFA_TSA_ANONYMOUS="maybe" is not valid: expected true or false (or 1, 0, yes, no, on, off)"#
        );
        assert_eq!(
            message("PARAFA_CA_KEY", "rsa1024"),
            r#"PARAFA_CA_KEY="rsa1024" is not valid: unknown key type "rsa1024": use rsa2048, rsa3072, p256 or p384"#
        );
        assert_eq!(
            message("PARAFA_CLIENT_ADDRESS_HEADER", "X-Real-IP"),
            r#"PARAFA_CLIENT_ADDRESS_HEADER="X-Real-IP" is not valid: expected X-Forwarded-For or Forwarded"#
        );
        assert!(message("PARAFA_DEV", "2").starts_with(r#"PARAFA_DEV="2" is not valid: expected true or false"#));
        // The last of a repeated variable counts, and its value is the one shown.
        let err = Settings::load_from(None, &env(&[("PARAFA_WORKERS", "x"), ("PARAFA_WORKERS", "y")])).unwrap_err();
        assert!(err.to_string().starts_with(r#"PARAFA_WORKERS="y""#), "{err}");
    }

    #[test]
    fn an_empty_variable_unsets_the_url_or_development_mode_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parafa.toml");
        std::fs::write(
            &file,
            "dev = true\n[notify]\nsmtp_url = \"smtp://relay.example.ro\"\n[identity_provider]\nurl = \"https://idp.example.ro\"\n",
        )
        .unwrap();
        let s = Settings::load_from(Some(&file), &[]).unwrap();
        assert!(s.dev && s.notify.smtp_url.is_some() && s.identity_provider.url.is_some());
        let empty: Vec<_> = EMPTY_IS_UNSET.iter().map(|v| (*v, "")).collect();
        let s = Settings::load_from(Some(&file), &env(&empty)).unwrap();
        assert!(!s.dev);
        assert_eq!(s.notify.smtp_url, None);
        assert_eq!(s.notify.sms_webhook_url, None);
        assert_eq!(s.notify.sms_webhook_token, None);
        assert_eq!(s.identity_provider.url, None);
    }

    #[test]
    fn a_bad_file_is_named_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("parafa.toml");
        let error = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Settings::load_from(Some(&file), &[]).unwrap_err()
        };
        let err = error("[hsm]\nsesions = 4\n");
        assert!(
            matches!(err, ConfigError::Parse { ref path, .. } if *path == file),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("sesions") && text.contains("(key `hsm.sesions`)"),
            "{text}"
        );
        let text = error("[hsm]\nsessions = \"many\"\n").to_string();
        assert!(
            text.contains("not valid for Parafa") && text.contains("(key `hsm.sessions`)"),
            "{text}"
        );
        let text = error("[limits]\ntrusted_proxies = [\"10.0.0.0/8\", \"the proxy\"]\n").to_string();
        assert!(
            text.contains("\"the proxy\" is not a CIDR") && text.contains("limits.trusted_proxies"),
            "{text}"
        );
        let text = error("listen = \n").to_string();
        assert!(text.contains(&file.display().to_string()), "{text}");
        let missing = dir.path().join("missing.toml");
        let err = Settings::load_from(Some(&missing), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        // The environment still overrides the file's values, and names itself when wrong.
        std::fs::write(&file, "[hsm]\nsessions = 4\n").unwrap();
        let s = Settings::load_from(Some(&file), &env(&[("PARAFA_HSM_SESSIONS", "5")])).unwrap();
        assert_eq!(s.hsm.sessions, 5);
        let err = Settings::load_from(Some(&file), &env(&[("PARAFA_HSM_SESSIONS", "five")])).unwrap_err();
        assert!(
            matches!(err, ConfigError::Env { ref var, .. } if var == "PARAFA_HSM_SESSIONS"),
            "{err:?}"
        );
    }
}
