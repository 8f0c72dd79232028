//! Web signing jobs (`/api/v1/sign-jobs`, product rules §7): upload several files, see the certificate that will sign
//! and the transactions it costs, authorise all files with one TOTP code (one SAD whose count is the number of
//! files, bound to their digests), download each signed file or `SignedFiles.zip`, and a signing history. Uploads
//! and outputs are deleted after the retention time; the history keeps names and digests only.

use std::io::Write;

use serde::Serialize;
use serde_json::{json, Value};

use super::cades::Level;
use super::pades;
use super::signer::{self, Format, Item, SignError, Signer};
use super::Services;
use crate::auth::totp;
use crate::clock::{rfc3339, Clock};
use crate::db::jobs::FileKind;
use crate::db::jobs::JobState;
use crate::db::users::User;
use crate::db::{self, DbError};
use crate::hsm::{HashAlg, KeySpec};
use crate::i18n::Text;
use crate::signing::{self, Authorization, Digests};
use crate::text;

/// Why a job request was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Invalid(Text),
    #[error("{0}")]
    TooLarge(Text),
    #[error("{0}")]
    NotFound(Text),
    #[error("{0}")]
    Conflict(Text),
    #[error(transparent)]
    Code(#[from] totp::CodeError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Db(#[from] DbError),
    /// The memory budget stayed spent: 503 with `Retry-After`.
    #[error(transparent)]
    Overloaded(#[from] crate::admission::Overloaded),
}

impl JobError {
    /// What the person is told, by key.
    pub fn text(&self) -> Text {
        match self {
            JobError::Invalid(t) => t.clone(),
            JobError::TooLarge(t) => t.clone(),
            JobError::NotFound(t) => t.clone(),
            JobError::Conflict(t) => t.clone(),
            JobError::Code(e) => e.text(),
            JobError::Sign(e) => e.text(),
            JobError::Db(_) => text!("error.http.database_error"),
            JobError::Overloaded(e) => e.text(),
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Db(e.into())
    }
}

/// An uploaded file.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
    /// The visible-signature rectangle for a PDF (JSON as sent), if any.
    pub rect: Option<Value>,
    /// The PDF's empty signature field to sign into (its fully qualified name), if any.
    pub field: Option<String>,
}

/// Whether the bytes are a PDF (the header may follow up to 1 KB of junk, as readers allow).
pub fn is_pdf(bytes: &[u8]) -> bool {
    bytes.windows(5).take(1024).any(|w| w == b"%PDF-")
}

/// A file name safe to show and to put in a zip: the last path component, no control characters.
pub fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "document".into()
    } else {
        cleaned
    }
}

/// A job just created: its files, the certificate that will sign them and the transactions it will cost.
// The fields of these views are in the order of the JSON objects they replaced (alphabetical).
#[derive(Debug, Serialize)]
pub struct CreatedJob {
    pub certificate: JobCertificate,
    pub expires_at: String,
    pub files: Vec<UploadedFile>,
    pub id: String,
    pub level: &'static str,
    pub state: JobState,
    pub transactions: Transactions,
}

/// The certificate a job will sign with.
#[derive(Debug, Serialize)]
pub struct JobCertificate {
    pub credential_id: String,
    pub serial: String,
    pub subject: String,
    pub valid_to: String,
}

/// An uploaded file and what its signature will be.
#[derive(Debug, Serialize)]
pub struct UploadedFile {
    /// The PDF's signature field it is signed into, if one was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `PAdES` or `CAdES`.
    pub format: &'static str,
    pub n: usize,
    pub name: String,
    /// The signed file's name.
    pub output: String,
    pub sha256: String,
    pub size: usize,
    /// Whether the signature has a visible appearance: a rectangle drawn, or a chosen field with one.
    pub visible: bool,
}

/// The transactions a job needs, and those left on its credential.
#[derive(Debug, Serialize)]
pub struct Transactions {
    pub left: Option<i64>,
    pub needed: i64,
}

/// The refusal of a file or a job over its limit.
pub fn too_large(limits: &crate::config::DocumentSettings) -> JobError {
    const MB: usize = 1024 * 1024;
    JobError::TooLarge(crate::text!(
        "error.job.files_limited_mb_each_and",
        pdf = limits.max_pdf_bytes / MB,
        each = limits.max_file_bytes / MB,
        total = limits.max_job_bytes / MB
    ))
}

/// `POST /sign-jobs`: stores the uploads and answers what will happen.
/// Why a holder without a certificate in force cannot sign: their newest certificate's state (the mandated
/// "Your certificate has expired. Please contact an administrator." after expiry, product rules §5), or that they
/// have none.
async fn no_certificate(state: &Services, user_id: &str) -> Result<Text, DbError> {
    let now = state.clock.now();
    if let Some(newest) = db::credentials::credentials_of(&state.db, user_id).await?.pop() {
        if let Some(cert) = db::credentials::certificate(&state.db, &newest.cert_serial).await? {
            if let Err(why) = signing::usable(newest.status, &cert, now) {
                return Ok(Text::new(why.key()));
            }
        }
    }
    Ok(crate::text!("error.job.have_no_valid_certificate_sign"))
}

pub async fn create(
    state: &Services,
    user: &User,
    uploads: Vec<Upload>,
    p7s_for_pdf: bool,
    level: Option<&str>,
) -> Result<CreatedJob, JobError> {
    if uploads.is_empty() {
        return Err(JobError::Invalid(crate::text!("error.job.choose_at_least_one_file")));
    }
    let limits = &state.settings.documents;
    if uploads.len() > limits.max_files {
        return Err(JobError::Invalid(crate::text!(
            "error.job.at_most_files_per_signing",
            max_files = limits.max_files
        )));
    }
    if uploads
        .iter()
        .any(|u| u.bytes.len() > limits.max_document_bytes(is_pdf(&u.bytes)))
    {
        return Err(too_large(limits));
    }
    // Web signatures are timestamped unless asked otherwise (API.md: "timestamped").
    let level = Level::parse(Some(level.unwrap_or("AdES-B-T")))
        .ok_or_else(|| JobError::Invalid(crate::text!("error.job.level_must_ades_b_b")))?;
    let Some((cred, cert)) = crate::db::credentials::current(&state.db, &user.id, state.clock.now()).await? else {
        return Err(JobError::Conflict(no_certificate(state, &user.id).await?));
    };
    let now = state.clock.now();
    let id = uuid::Uuid::now_v7().to_string();
    let mut files = Vec::new();
    let mut kinds = Vec::new();
    for (n, u) in uploads.iter().enumerate() {
        let name = clean_name(&u.name);
        let pades = is_pdf(&u.bytes) && !p7s_for_pdf;
        let mut visible = u.rect.is_some();
        if pades {
            let in_file = |reason: Text| JobError::Invalid(text!("error.job.in_file", file = name, reason => reason));
            if let (Some(field), Some(_)) = (&u.field, &u.rect) {
                let refusal = pades::PdfError::UnusableField {
                    name: field.clone(),
                    reason: text!("error.pdf.field_with_rectangle"),
                };
                return Err(in_file(refusal.text()));
            }
            // XFA, encrypted and unreadable PDFs, and fields that cannot be filled, are refused now, before any
            // code is asked for.
            let info = inspect_upload(state, &u.bytes, u.field.clone())
                .await?
                .map_err(|e| in_file(e.text()))?;
            if let Some(rect) = &u.rect {
                appearance(rect, "", "", info.page_count()).map_err(in_file)?;
            }
            if let Some(field) = &u.field {
                visible = info
                    .signature_fields
                    .iter()
                    .any(|f| &f.name == field && f.rect.is_some());
            }
        } else if u.rect.is_some() {
            return Err(JobError::Invalid(crate::text!(
                "error.job.visible_signature_rectangle_for_pdfs",
                name
            )));
        } else if u.field.is_some() {
            return Err(JobError::Invalid(crate::text!(
                "error.job.signature_field_for_pdfs",
                name
            )));
        }
        let kind = if pades { FileKind::Pades } else { FileKind::Cades };
        let output = output_name(&name, kind);
        let format = kind.format();
        kinds.push(kind);
        files.push(UploadedFile {
            field: u.field.clone().filter(|_| pades),
            n,
            name,
            size: u.bytes.len(),
            sha256: hex::encode(HashAlg::Sha256.digest(&u.bytes)),
            format,
            output,
            visible,
        });
    }
    let quota = db::credentials::quota(&state.db, &cred.id).await?;
    let needed: i64 = kinds.iter().map(|_| signer::transactions(level)).sum();
    let mut tx = state.db.writer().begin().await?;
    let job = db::jobs::NewJob {
        id: &id,
        user_id: &user.id,
        credential_id: &cred.id,
        p7s_for_pdf,
        level: level.as_str(),
        expires_at: now + limits.retention_secs,
    };
    // Each file's cleaned name, digest (the one the answer shows) and rectangle (JSON), which the stored rows borrow.
    let described: Vec<(String, String, Option<String>)> = uploads
        .iter()
        .zip(&files)
        .map(|(u, f)| (f.name.clone(), f.sha256.clone(), u.rect.as_ref().map(Value::to_string)))
        .collect();
    let stored: Vec<db::jobs::NewFile> = uploads
        .iter()
        .zip(&described)
        .zip(&kinds)
        .map(|((u, (name, digest, rect)), kind)| db::jobs::NewFile {
            name,
            kind: *kind,
            digest,
            rect: rect.as_deref(),
            field: u.field.as_deref(),
            content: &u.bytes,
        })
        .collect();
    db::jobs::create(&mut tx, &job, &stored, now).await?;
    tx.commit().await?;
    Ok(CreatedJob {
        id,
        state: JobState::Uploaded,
        files,
        level: level.as_str(),
        certificate: JobCertificate {
            credential_id: cred.id,
            serial: cert.serial,
            subject: cert.subject,
            valid_to: rfc3339(cert.not_after),
        },
        transactions: Transactions {
            needed,
            left: quota.map(|q| q.remaining()),
        },
        expires_at: rfc3339(now + limits.retention_secs),
    })
}

/// Reads an uploaded PDF as signing will (within the memory budget, off the async runtime): what
/// [`crate::pdf::inspect`] says, or, with a `field`, [`crate::pdf::inspect_field`]. The outer error is the
/// server's, the inner one the file's.
async fn inspect_upload(
    state: &Services,
    bytes: &[u8],
    field: Option<String>,
) -> Result<Result<crate::pdf::PdfInfo, pades::PdfError>, JobError> {
    let admission = &state.settings.admission;
    let _parse = state
        .admission
        .reserve_parse(bytes.len(), true, admission, crate::admission::Work::Pdf)
        .await?;
    let (bytes, limits) = (bytes.to_vec(), crate::pdf::Limits::of(&state.settings));
    tokio::task::spawn_blocking(move || match field {
        Some(name) => crate::pdf::inspect_field(&bytes, &name, &limits),
        None => crate::pdf::inspect(&bytes, &limits),
    })
    .await
    .map_err(|e| JobError::Invalid(text!("error.http.detail", detail = e)))
}

/// What the signing page learns of a PDF before the upload: its pages and the empty signature fields it may sign
/// into.
#[derive(Debug, Serialize)]
pub struct PdfFields {
    pub pages: usize,
    pub signature_fields: Vec<EmptyField>,
}

/// An empty signature field of a PDF.
#[derive(Debug, Serialize)]
pub struct EmptyField {
    /// Its fully qualified name: what `field_<n>` names.
    pub name: String,
    /// The page its widget is on, from 1; none when it is on none.
    pub page: Option<usize>,
    /// `[x1, y1, x2, y2]` in that page's PDF points, where the signature will show; none: invisible.
    pub rect: Option<[f64; 4]>,
}

/// `POST /sign-jobs/inspect`: the pages and empty signature fields of a PDF (the signing page's choice of a field);
/// a PDF that cannot be signed is refused with its reason.
pub async fn inspect(state: &Services, pdf: &[u8]) -> Result<PdfFields, JobError> {
    if pdf.len() > state.settings.documents.max_pdf_bytes {
        return Err(too_large(&state.settings.documents));
    }
    let info = inspect_upload(state, pdf, None)
        .await?
        .map_err(|e| JobError::Invalid(e.text()))?;
    Ok(PdfFields {
        pages: info.page_count(),
        signature_fields: info
            .signature_fields
            .into_iter()
            .map(|f| EmptyField {
                name: f.name,
                page: f.page,
                rect: f.rect,
            })
            .collect(),
    })
}

/// A job just signed: its signed files, each with its link, and the zip of them all.
#[derive(Debug, Serialize)]
pub struct SignedJob {
    pub expires_at: String,
    pub files: Vec<SignedFile>,
    pub id: String,
    pub state: JobState,
    /// The transactions the signing cost.
    pub transactions: i64,
    /// The link of `SignedFiles.zip`.
    pub zip: String,
}

/// A signed file of a job, with its download link.
#[derive(Debug, Serialize)]
pub struct SignedFile {
    pub n: usize,
    pub name: String,
    pub url: String,
}

struct JobRow {
    credential_id: String,
    state: JobState,
    level: Level,
    expires_at: i64,
}

async fn job(state: &Services, user: &User, id: &str) -> Result<JobRow, JobError> {
    let j = db::jobs::get(&state.db, id, &user.id)
        .await?
        .ok_or_else(|| JobError::NotFound(crate::text!("error.job.no_such_signing_job")))?;
    if j.expires_at <= state.clock.now() {
        return Err(JobError::NotFound(crate::text!(
            "error.job.signing_job_has_expired_files"
        )));
    }
    Ok(JobRow {
        credential_id: j.credential_id,
        state: j.state,
        level: Level::parse(Some(&j.level)).unwrap_or(Level::BB),
        expires_at: j.expires_at,
    })
}

/// `POST /sign-jobs/{id}/authorize`: one TOTP code signs every file of the job.
pub async fn authorize(
    state: &Services,
    user: &User,
    id: &str,
    code: Option<&str>,
    client: &str,
) -> Result<SignedJob, JobError> {
    let j = job(state, user, id).await?;
    let already = |s: JobState| JobError::Conflict(text!("error.job.job_already", state => Text::state(s.as_str())));
    if j.state != JobState::Uploaded {
        return Err(already(j.state));
    }
    let now = state.clock.now();
    // One authorisation at a time: a second one, with another valid code, is refused instead of signing again.
    if !db::jobs::claim(&state.db, id, now, now - CLAIM_STALE_SECS).await? {
        return Err(already(JobState::Signing));
    }
    let signed = sign_claimed(state, user, id, &j, code, client, now).await;
    if signed.is_err() {
        db::jobs::release(&state.db, id).await?;
    }
    signed
}

/// The name of a signed file: a PDF signed inside keeps its name, anything else gets `.p7s`.
fn output_name(name: &str, kind: FileKind) -> String {
    match kind {
        FileKind::Pades => name.to_owned(),
        FileKind::Cades => format!("{name}.p7s"),
    }
}

/// How long a claim on a job holds before another authorisation may take it over (its process died signing).
const CLAIM_STALE_SECS: i64 = 600;

/// Signs a job its authorisation claimed: the holder's code, one authorisation for the files' digests, the
/// signer, then the outputs and the history.
async fn sign_claimed(
    state: &Services,
    user: &User,
    id: &str,
    j: &JobRow,
    code: Option<&str>,
    client: &str,
    now: i64,
) -> Result<SignedJob, JobError> {
    let (cred, cert_row, quota) = db::credentials::credential_full(&state.db, &j.credential_id)
        .await?
        .ok_or_else(|| JobError::Conflict(crate::text!("error.job.certificate_job_gone")))?;
    if let Err(why) = signing::usable(cred.status, &cert_row, now) {
        return Err(JobError::Conflict(crate::i18n::Text::new(why.key())));
    }
    let mut files = db::jobs::uploads(&state.db, id).await?;
    let holder = format!("{} {}", user.given_name, user.surname);
    let date = signer::shown_date(now);
    let mut items = files
        .iter_mut()
        .map(|f| item_of(f, j.level, &holder, &date))
        .collect::<Result<Vec<_>, _>>()?;
    let needed: i64 = items.iter().map(Item::transactions).sum();
    if quota.remaining() < needed {
        return Err(JobError::Sign(SignError::QuotaExhausted(quota.remaining())));
    }
    // The signing's memory is reserved before the code is used up: a busy server answers 503 and the holder
    // retries with the next code.
    let size = items.iter().map(|i| i.content.as_ref().map_or(0, |c| c.len())).sum();
    let pdf = items.iter().any(|i| matches!(i.format, Format::Pades { .. }));
    let _signing = (state.admission)
        .reserve_parse(size, pdf, &state.settings.admission, crate::admission::Work::Signature)
        .await?;
    totp::check_code(
        &state.db,
        &state.hsm,
        &state.settings.auth,
        state.clock.as_ref(),
        &user.id,
        code,
        client,
    )
    .await?;
    let spec: KeySpec = cred
        .key_spec
        .parse()
        .map_err(|e| JobError::Invalid(text!("error.http.detail", detail = e)))?;
    let hash = spec.default_hash();
    for item in &mut items {
        item.digest = hash.digest(item.content.as_deref().map_or(&[][..], Vec::as_slice));
    }
    let sad_hash = authorize_items(state, user, &cred.id, id, &items, hash, client, now).await?;
    let cert_der = db::unb64(&cert_row.cert_der, "certificates.cert_der")?;
    let signer = Signer {
        user_id: &user.id,
        client,
        credential_id: &cred.id,
        cert_der: &cert_der,
        sad_hash,
        bearer: None,
        mechanism: spec.default_mechanism(hash),
        hash,
    };
    let signed = signer::sign_batch(state, &signer, &items).await?;
    // The outputs hold the documents now: made whole without a second copy.
    for item in &mut items {
        item.content = None;
    }
    let outputs: Vec<Vec<u8>> = signed.into_iter().map(super::Output::into_vec).collect();
    store_outputs(state, user, &cred.id, id, j, &files, &items, &outputs, now).await?;
    Ok(SignedJob {
        id: id.to_owned(),
        state: JobState::Signed,
        files: files
            .iter()
            .enumerate()
            .map(|(n, f)| SignedFile {
                n,
                name: output_name(&f.name, f.kind),
                url: format!("/api/v1/sign-jobs/{id}/files/{n}"),
            })
            .collect(),
        zip: format!("/api/v1/sign-jobs/{id}/SignedFiles.zip"),
        transactions: needed,
        expires_at: rfc3339(j.expires_at),
    })
}

/// What the signer makes of an uploaded file, whose content moves into it (a large file is not held twice): a PAdES
/// signature (visible where the holder drew its rectangle, or in the field the holder chose) or an enclosing `.p7s`.
fn item_of(f: &mut db::jobs::Upload, level: Level, holder: &str, date: &str) -> Result<Item, JobError> {
    let format = match f.kind {
        FileKind::Pades => {
            let placement = match (f.rect.as_deref().map(serde_json::from_str::<Value>), f.field.take()) {
                (Some(Ok(r)), _) => {
                    pades::Placement::Visible(appearance(&r, holder, date, usize::MAX).map_err(JobError::Invalid)?)
                }
                (Some(Err(e)), _) => {
                    return Err(JobError::Invalid(text!(
                        "error.http.detail",
                        detail = format!("stored rectangle: {e}")
                    )))
                }
                (None, Some(name)) => pades::Placement::Field {
                    name,
                    signer: holder.to_owned(),
                    date: date.to_owned(),
                },
                (None, None) => pades::Placement::Invisible,
            };
            Format::Pades { placement }
        }
        FileKind::Cades => Format::Cades { attached: true },
    };
    Ok(Item {
        content: Some(std::sync::Arc::new(std::mem::take(&mut f.content))),
        digest: Vec::new(),
        fed: None,
        format,
        level,
    })
}

/// One authorisation for the whole job, bound to the files' digests, used at once by the signer: its key in the
/// ledger (its secret is not needed).
#[allow(clippy::too_many_arguments)]
async fn authorize_items(
    state: &Services,
    user: &User,
    credential_id: &str,
    job_id: &str,
    items: &[Item],
    hash: HashAlg,
    client: &str,
    now: i64,
) -> Result<String, JobError> {
    let digests: Vec<&[u8]> = items.iter().map(|i| i.digest.as_slice()).collect();
    let authorization = Authorization {
        user_id: user.id.clone(),
        credential_id: credential_id.to_owned(),
        digests: Digests::of(&digests),
        hash: Some(hash),
        expires_at: now + state.settings.csc.sad_ttl_secs,
    };
    let event = crate::audit::row(
        state.clock.as_ref(),
        &crate::audit::Event {
            actor: &user.id,
            action: "credential.authorize",
            target: credential_id,
            outcome: "ok",
            client,
            details: json!({ "job": job_id, "signatures": items.len() }),
        },
    );
    let sad = signing::authorize(&state.db, &authorization, &event, now).await?;
    Ok(crate::auth::tokens::hash(&sad))
}

/// Stores the signed files and the history, and marks the job signed, in one transaction.
#[allow(clippy::too_many_arguments)]
async fn store_outputs(
    state: &Services,
    user: &User,
    credential_id: &str,
    id: &str,
    j: &JobRow,
    files: &[db::jobs::Upload],
    items: &[Item],
    outputs: &[Vec<u8>],
    now: i64,
) -> Result<(), JobError> {
    let mut tx = state.db.writer().begin().await?;
    for (f, out) in files.iter().zip(outputs) {
        db::jobs::set_output(&mut tx, id, f.n, &output_name(&f.name, f.kind), out).await?;
    }
    for (f, item) in files.iter().zip(items) {
        let signed = db::jobs::Signed {
            user_id: &user.id,
            credential_id,
            job_id: id,
            name: &f.name,
            digest: &f.sha256,
            format: f.kind.format(),
            level: j.level.as_str(),
            transactions: item.transactions(),
        };
        db::jobs::add_history(&mut tx, &signed, now).await?;
    }
    db::jobs::mark_signed(&mut tx, id, now).await?;
    tx.commit().await?;
    Ok(())
}

/// A signed file of the job: (name, bytes).
pub async fn file(state: &Services, user: &User, id: &str, n: i64) -> Result<(String, Vec<u8>), JobError> {
    job(state, user, id).await?;
    db::jobs::output(&state.db, id, n)
        .await?
        .ok_or_else(|| JobError::NotFound(crate::text!("error.job.no_such_file_in_job")))?
        .ok_or_else(|| JobError::Conflict(crate::text!("error.job.file_not_signed_yet")))
}

/// `SignedFiles.zip`: every signed file of the job.
pub async fn zip(state: &Services, user: &User, id: &str) -> Result<Vec<u8>, JobError> {
    job(state, user, id).await?;
    let files = db::jobs::outputs(&state.db, id)
        .await?
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| JobError::Conflict(crate::text!("error.job.files_not_signed_yet")))?;
    tokio::task::spawn_blocking(move || write_zip(&files))
        .await
        .map_err(|e| JobError::Invalid(text!("error.http.detail", detail = e)))?
}

fn write_zip(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, JobError> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut used = std::collections::HashSet::new();
    for (i, (name, bytes)) in files.iter().enumerate() {
        // Two files of the same name must not overwrite each other in the archive.
        let name = if used.insert(name.clone()) {
            name.clone()
        } else {
            format!("{}-{name}", i + 1)
        };
        out.start_file(name, options)
            .map_err(|e| JobError::Invalid(text!("error.http.detail", detail = format!("zip: {e}"))))?;
        out.write_all(bytes)
            .map_err(|e| JobError::Invalid(text!("error.http.detail", detail = format!("zip: {e}"))))?;
    }
    let cursor = out
        .finish()
        .map_err(|e| JobError::Invalid(text!("error.http.detail", detail = format!("zip: {e}"))))?;
    Ok(cursor.into_inner())
}

/// A job's state and its files' names, for the download page.
#[derive(Debug, Serialize)]
pub struct JobOutputs {
    pub expires_at: String,
    pub files: Vec<OutputName>,
    pub id: String,
    pub state: JobState,
}

/// A file of a job: its number and its name (the signed name once signed).
#[derive(Debug, Serialize)]
pub struct OutputName {
    pub n: i64,
    pub name: String,
}

/// A job's state and its files' names (the signed names once signed), without reading the files: the download
/// page's list. The same owner and retention rules as [`zip`].
pub async fn outputs(state: &Services, user: &User, id: &str) -> Result<JobOutputs, JobError> {
    let row = job(state, user, id).await?;
    let files = db::jobs::names(&state.db, id)
        .await?
        .into_iter()
        .map(|(n, name, output)| OutputName {
            n,
            name: output.unwrap_or(name),
        })
        .collect();
    Ok(JobOutputs {
        id: id.to_owned(),
        state: row.state,
        files,
        expires_at: rfc3339(row.expires_at),
    })
}

/// A user's signing history.
#[derive(Debug, Serialize)]
pub struct History {
    pub signatures: Vec<HistoryLine>,
}

/// A signature of the history: the document's name and digest, how and when it was signed.
#[derive(Debug, Serialize)]
pub struct HistoryLine {
    pub credential_id: String,
    pub format: String,
    pub level: String,
    pub name: String,
    pub sha256: String,
    pub signed_at: String,
    pub transactions: i64,
}

/// `GET /me/signatures`: the user's signing history, newest first (at most 500).
pub async fn history(state: &Services, user: &User) -> Result<History, JobError> {
    let signatures = db::jobs::history(&state.db, &user.id, 500)
        .await?
        .into_iter()
        .map(|h| HistoryLine {
            name: h.name,
            sha256: h.digest,
            format: h.format,
            level: h.level,
            transactions: h.transactions,
            credential_id: h.credential_id,
            signed_at: rfc3339(h.created_at),
        })
        .collect();
    Ok(History { signatures })
}

/// Deletes the jobs past their retention time with their files (the history stays). Returns how many.
pub async fn purge_expired(state: &Services) -> Result<u64, DbError> {
    db::jobs::purge_expired(&state.db, state.clock.now()).await
}

/// A visible signature from the rectangle a holder drew: `{"page": 1, "rect": [x1, y1, x2, y2]}` in PDF points.
pub fn appearance(rect: &Value, name: &str, date: &str, pages: usize) -> Result<pades::Appearance, Text> {
    let page = rect["page"]
        .as_u64()
        .filter(|p| *p >= 1)
        .ok_or_else(|| text!("error.job.page_must_page_number_from"))? as usize;
    if page > pages {
        return Err(text!("error.job.pdf_has_pages_there_no", pages, page));
    }
    let r: Vec<f64> = rect["rect"]
        .as_array()
        .filter(|a| a.len() == 4)
        .and_then(|a| a.iter().map(Value::as_f64).collect())
        .ok_or_else(|| text!("error.job.rect_must_x1_y1_x2"))?;
    if r.iter().any(|v| !v.is_finite() || v.abs() > 14_400.0) || r[2] - r[0] < 10.0 || r[3] - r[1] < 10.0 {
        return Err(text!("error.job.rectangle_must_at_least_10"));
    }
    Ok(pades::Appearance {
        page,
        rect: [r[0], r[1], r[2], r[3]],
        name: name.to_owned(),
        date: date.to_owned(),
    })
}
