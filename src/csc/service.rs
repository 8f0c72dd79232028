//! What each CSC method does, with its rules: sole control (a SAD bound to one credential, to exact hashes, to a
//! count and a short life, issued only for a fresh TOTP code) and exact quotas (debited in the transaction that
//! records the signatures, never across an HSM call).

use der::Decode;
use secrecy::SecretString;
use serde_json::{json, Value};
use x509_cert::Certificate;

use super::algo::{self, Resolved};
use super::types::*;
use super::{CscError, Version};
use crate::app::AppState;
use crate::audit;
use crate::auth::tokens;
use crate::auth::totp::{self, CodeError};
use crate::clock::Clock;
use crate::db::credentials::{CertificateRow, CertificateStatus, Credential, CredentialStatus, Quota, StatusAt};
use crate::db::signing::CommitRefusal;
use crate::db::users::{TwoFactorSetting, UserStatus};
use crate::db::{self, audit::AuditRow};
use crate::hsm::KeySpec;
use crate::signing::{self, Authorization, Digests, Refused, SignFailure, Unusable};

/// The id of the TOTP in v2 `authData` and in the `OTP` object of v1.
pub const OTP_ID: &str = "otp";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    /// Where the request came from (for the audit trail and the signature ledger).
    pub client: String,
    /// The hash of the access token it came with (the ledger checks it is still valid when it commits).
    pub token_hash: String,
}

/// `info`.
pub fn info(state: &AppState, version: Version) -> InfoResponse {
    let mut methods = vec![
        "auth/login",
        "auth/revoke",
        "credentials/list",
        "credentials/info",
        "credentials/authorize",
        "signatures/signHash",
    ];
    let mut v = InfoResponse {
        specs: version.specs(),
        name: state.settings.csc.name.clone(),
        region: state.settings.csc.region.clone(),
        lang: "en-US",
        description: "Parafa remote qualified signature service: keys in an HSM, each signature activated by the holder's TOTP code.",
        auth_type: vec!["basic"],
        asynchronous_operation_mode: None,
        validation_info: None,
        sign_algorithms: None,
        methods: Vec::new(),
        oauth2: None,
        oauth2_issuer: None,
    };
    if version == Version::V2 {
        methods.push("credentials/authorizeCheck");
        let mut algos = algo::key_algorithms(KeySpec::Rsa2048);
        algos.extend(algo::key_algorithms(KeySpec::P256));
        v.asynchronous_operation_mode = Some(false);
        v.validation_info = Some(false);
        v.sign_algorithms = Some(SignAlgorithms {
            algos,
            algo_params: Vec::new(),
        });
    }
    v.methods = methods;
    v
}

/// `auth/login`: HTTP Basic (e-mail, password) plus the TOTP code in `X-Parafa-OTP` when the holder has 2FA on,
/// or a `refresh_token`.
pub async fn login(
    state: &AppState,
    basic: Option<(String, SecretString)>,
    otp: Option<String>,
    req: LoginRequest,
    client: &str,
) -> Result<LoginResponse, CscError> {
    let (s, db, clock) = (&state.settings, &state.db, state.clock.as_ref());
    if let Some(refresh) = req.refresh_token.filter(|t| !t.is_empty()) {
        let (user_id, issued) = tokens::refresh(db, &s.auth, clock, &refresh, client)
            .await
            .map_err(|e| match e {
                tokens::TokenError::Db(e) => CscError::Db(e),
                _ => CscError::invalid("Invalid refresh_token"),
            })?;
        audit_event(state, &user_id, "auth.refresh", &user_id, "ok", client, json!({})).await?;
        return Ok(LoginResponse {
            access_token: issued.access_token,
            refresh_token: None,
            expires_in: issued.expires_in,
        });
    }
    let (email, pw) = basic.ok_or_else(|| CscError::invalid("Malformed authorization header: HTTP Basic expected"))?;
    let email = crate::accounts::login::login_email(Some(&email));
    let throttle_error = |e: crate::accounts::AccountError| match e {
        crate::accounts::AccountError::Db(d) => CscError::Db(d),
        other => CscError::Throttled(other.to_string()),
    };
    // Reserved before the password is checked; it stays counted as a failure unless given back below.
    let attempt = crate::accounts::login::reserve_attempt(&state.accounts(), &email, client)
        .await
        .map_err(throttle_error)?;
    let user = db::users::by_email(db, &email).await?;
    // An unknown e-mail is checked against a dummy hash, through the same pool: timing does not tell which exist.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    crate::metrics::password_verification();
    let ok = state.hasher.verify(pw, stored).await?;
    let user = match user {
        Some(u) if ok && u.status == UserStatus::Active => u,
        _ => {
            let target = user.as_ref().map(|u| u.id.clone()).unwrap_or_default();
            audit_event(
                state,
                "anonymous",
                "auth.login",
                &target,
                "wrong password",
                client,
                json!({}),
            )
            .await?;
            return Err(CscError::Authentication("Invalid e-mail or password".into()));
        }
    };
    if user.two_factor == TwoFactorSetting::Pending && clock.now() >= s.accounts.two_factor_mandatory_at() {
        attempt.succeeded(&state.accounts()).await.map_err(throttle_error)?;
        return Err(CscError::Authentication(
            "Two-factor authentication is mandatory: pair an authenticator app in the web platform first".into(),
        ));
    }
    if user.two_factor == TwoFactorSetting::On {
        if let Err(e) = totp::check_code(db, &state.hsm, &s.auth, clock, &user.id, otp.as_deref(), client).await {
            // A missing code is not a failure (the client asks for it next); a wrong one stays counted.
            if matches!(e, CodeError::Missing) {
                attempt.succeeded(&state.accounts()).await.map_err(throttle_error)?;
            }
            return Err(otp_error(e, Version::V2, "X-Parafa-OTP"));
        }
    }
    attempt.succeeded(&state.accounts()).await.map_err(throttle_error)?;
    let issued = tokens::issue(db, &s.auth, clock, &user.id, req.remember_me.unwrap_or(false), client).await?;
    audit_event(state, &user.id, "auth.login", &user.id, "ok", client, json!({})).await?;
    Ok(LoginResponse {
        access_token: issued.access_token,
        refresh_token: issued.refresh_token,
        expires_in: issued.expires_in,
    })
}

/// `auth/revoke`.
pub async fn revoke(state: &AppState, caller: &Caller, req: RevokeRequest) -> Result<(), CscError> {
    let token = req
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter token"))?;
    if !tokens::revoke(&state.db, &caller.user_id, &token).await? {
        return Err(CscError::invalid("Invalid parameter token"));
    }
    audit_event(
        state,
        &caller.user_id,
        "auth.revoke",
        &caller.user_id,
        "ok",
        &caller.client,
        json!({}),
    )
    .await?;
    Ok(())
}

/// A credential with its certificate row and quota, as the CSC methods show it. The certificate itself is decoded
/// only where it is shown (credentials/info and list), never on the signing path.
pub(crate) struct View {
    pub(crate) cred: Credential,
    pub(crate) cert_row: CertificateRow,
    pub(crate) spec: KeySpec,
    pub(crate) quota: Quota,
}

impl View {
    /// Valid, expired, revoked or suspended, at `now` (not yet valid counts as expired here).
    fn cert_status(&self, now: i64) -> StatusAt {
        match (self.cert_row.status, self.cred.status) {
            (CertificateStatus::Revoked, _) | (_, CredentialStatus::Revoked) => StatusAt::Revoked,
            (CertificateStatus::Suspended, _) => StatusAt::Suspended,
            _ if self.cert_row.not_after <= now || self.cert_row.not_before > now => StatusAt::Expired,
            _ => StatusAt::Valid,
        }
    }
}

pub(crate) async fn view(state: &AppState, caller: &Caller, credential_id: Option<&str>) -> Result<View, CscError> {
    let id = credential_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter credentialID"))?;
    let found = db::credentials::credential_full(&state.db, id).await?;
    // Another holder's credential is as unknown as a missing one.
    let (cred, cert_row, quota) = found
        .filter(|(c, _, _)| c.user_id == caller.user_id)
        .ok_or_else(|| CscError::invalid("Invalid parameter credentialID"))?;
    view_from(cred, cert_row, quota)
}

/// [`view`] from the credential read a moment ago ([`signing::RecentReads`]) when it can sign now and its quota
/// covers `transactions`; otherwise read afresh (and kept). Only yes is taken from memory: the ledger checks both
/// again when it commits.
async fn view_recent(
    state: &AppState,
    caller: &Caller,
    credential_id: Option<&str>,
    transactions: i64,
) -> Result<View, CscError> {
    let id = credential_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter credentialID"))?;
    let now = state.clock.now();
    let kept = state.recent.credentials.get(&id.to_owned()).filter(|(c, cert, q)| {
        c.user_id == caller.user_id && signing::usable(c.status, cert, now).is_ok() && q.remaining() >= transactions
    });
    let (cred, cert_row, quota) = match kept {
        Some(found) => found,
        None => {
            let found = db::credentials::credential_full(&state.db, id)
                .await?
                .filter(|(c, _, _)| c.user_id == caller.user_id)
                .ok_or_else(|| CscError::invalid("Invalid parameter credentialID"))?;
            state.recent.credentials.put(id.to_owned(), found.clone());
            found
        }
    };
    view_from(cred, cert_row, quota)
}

/// The view of one of the caller's credentials; `None` when the retention rules erased its certificate.
async fn view_of(state: &AppState, cred: Credential) -> Result<Option<View>, CscError> {
    match db::credentials::credential_full(&state.db, &cred.id).await? {
        Some((cred, cert_row, quota)) => view_from(cred, cert_row, quota).map(Some),
        None => Ok(None),
    }
}

fn view_from(cred: Credential, cert_row: CertificateRow, quota: Quota) -> Result<View, CscError> {
    let spec = cred
        .key_spec
        .parse()
        .map_err(|_| CscError::Internal("unknown key type".into()))?;
    Ok(View {
        cred,
        cert_row,
        spec,
        quota,
    })
}

/// Refuses a credential whose certificate cannot sign now ([`signing::usable`]), with the message the holder is
/// shown.
pub(crate) fn usable(v: &View, now: i64) -> Result<(), CscError> {
    // The CSC API speaks English (its clients show `error_description` as it comes).
    signing::usable(v.cred.status, &v.cert_row, now)
        .map_err(|why: Unusable| CscError::invalid(crate::i18n::text(crate::i18n::Lang::En, why.key())))
}

/// The credentials/info object (v1 or v2 shape).
fn credential_object(
    state: &AppState,
    version: Version,
    v: &View,
    certificates: &str,
    cert_info: bool,
) -> Result<CredentialInfo, CscError> {
    use base64::Engine;
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let now = state.clock.now();
    let key = KeyInfo {
        status: if v.cred.status == CredentialStatus::Active {
            "enabled"
        } else {
            "disabled"
        },
        algo: algo::key_algorithms(v.spec),
        len: v.spec.bits(),
        curve: v.spec.curve_oid().map(|curve| curve.to_string()),
    };
    let mut cert = CertInfo {
        status: v.cert_status(now),
        certificates: None,
        issuer_dn: None,
        subject_dn: None,
        serial_number: None,
        valid_from: None,
        valid_to: None,
    };
    let cert_der = db::unb64(&v.cert_row.cert_der, "certificates.cert_der")?;
    match certificates {
        "none" => {}
        "chain" => {
            let mut chain = vec![b64(&cert_der)];
            chain.extend(state.ca.chain_der().iter().map(|d| b64(d)));
            cert.certificates = Some(chain);
        }
        _ => cert.certificates = Some(vec![b64(&cert_der)]),
    }
    if cert_info {
        let parsed = Certificate::from_der(&cert_der).map_err(|e| CscError::Internal(e.to_string()))?;
        let tbs = &parsed.tbs_certificate;
        cert.issuer_dn = Some(tbs.issuer.to_string());
        cert.subject_dn = Some(tbs.subject.to_string());
        cert.serial_number = Some(v.cert_row.serial.clone());
        cert.valid_from = Some(generalized(v.cert_row.not_before));
        cert.valid_to = Some(generalized(v.cert_row.not_after));
    }
    let description = "6-digit code from the authenticator app paired with your account";
    let mut out = CredentialInfo {
        description: format!("Qualified signature key of {}", v.cert_row.subject),
        key,
        cert,
        scal: "2",
        multisign: state.settings.csc.multisign,
        lang: "en-US",
        otp: None,
        pin: None,
        auth: None,
        auth_mode: None,
        credential_id: None,
    };
    match version {
        Version::V1 => {
            out.auth_mode = Some("explicit");
            out.pin = Some(PinInfo { presence: "false" });
            out.otp = Some(OtpInfo {
                presence: "true",
                kind: "offline",
                format: "N",
                label: "Authenticator code",
                description,
                id: OTP_ID,
                provider: "totp",
            });
        }
        Version::V2 => {
            out.auth = Some(AuthInfo {
                mode: "explicit",
                expression: OTP_ID,
                objects: vec![AuthObject {
                    kind: "Password",
                    id: OTP_ID,
                    format: "N",
                    generator: "totp",
                    label: "Authenticator code",
                    description,
                }],
            });
        }
    }
    Ok(out)
}

/// `YYYYMMDDHHMMSSZ`, as credentials/info writes validity.
fn generalized(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| {
            format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

fn certificates_param(value: Option<&str>) -> Result<&str, CscError> {
    match value.unwrap_or("single") {
        c @ ("none" | "single" | "chain") => Ok(c),
        _ => Err(CscError::invalid("Invalid parameter certificates")),
    }
}

/// `credentials/info`.
pub async fn credential_info(
    state: &AppState,
    version: Version,
    caller: &Caller,
    req: InfoRequest,
) -> Result<CredentialInfo, CscError> {
    let certificates = certificates_param(req.certificates.as_deref())?;
    let v = view(state, caller, req.credential_id.as_deref()).await?;
    credential_object(state, version, &v, certificates, req.cert_info.unwrap_or(false))
}

/// `credentials/list`.
pub async fn list(
    state: &AppState,
    version: Version,
    caller: &Caller,
    req: ListRequest,
) -> Result<ListResponse, CscError> {
    if req.user_id.is_some() {
        return Err(CscError::invalid("userID parameter MUST be null"));
    }
    let certificates = certificates_param(req.certificates.as_deref())?;
    let now = state.clock.now();
    let mut views = Vec::new();
    for cred in db::credentials::credentials_of(&state.db, &caller.user_id).await? {
        views.extend(view_of(state, cred).await?);
    }
    if req.only_valid.unwrap_or(false) {
        views.retain(|v| v.cert_status(now) == StatusAt::Valid && v.cred.status == CredentialStatus::Active);
    }
    let mut out = ListResponse {
        credential_ids: Vec::new(),
        credential_infos: None,
        next_page_token: None,
        only_valid: None,
    };
    match version {
        Version::V1 => {
            let start = match req.page_token.as_deref() {
                None | Some("") => 0,
                Some(t) => t
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= views.len())
                    .ok_or_else(|| CscError::invalid("Invalid parameter pageToken"))?,
            };
            let max = req.max_results.map(|m| m.max(1) as usize).unwrap_or(usize::MAX);
            let end = start.saturating_add(max).min(views.len());
            out.credential_ids = views[start..end].iter().map(|v| v.cred.id.clone()).collect();
            if end < views.len() {
                out.next_page_token = Some(end.to_string());
            }
        }
        Version::V2 => {
            out.credential_ids = views.iter().map(|v| v.cred.id.clone()).collect();
            if req.credential_info.unwrap_or(false) {
                let infos = views
                    .iter()
                    .map(|v| {
                        let mut o = credential_object(state, version, v, certificates, req.cert_info.unwrap_or(false))?;
                        o.credential_id = Some(v.cred.id.clone());
                        if !req.auth_info.unwrap_or(false) {
                            o.auth = None;
                        }
                        Ok(o)
                    })
                    .collect::<Result<_, CscError>>()?;
                out.credential_infos = Some(infos);
            }
            if req.only_valid.is_some() {
                out.only_valid = Some(req.only_valid.unwrap_or(false));
            }
        }
    }
    Ok(out)
}

/// Decodes the hashes of a request: base64 in either alphabet, each of a supported digest length.
pub(crate) fn decode_hashes(hashes: Option<Vec<String>>, max: i64) -> Result<Vec<Vec<u8>>, CscError> {
    let hashes = hashes.ok_or_else(|| CscError::invalid("Missing (or invalid type) array parameter hashes"))?;
    if hashes.is_empty() {
        return Err(CscError::invalid("Empty hash array"));
    }
    if hashes.len() as i64 > max {
        return Err(CscError::invalid(format!(
            "Numbers of signatures is too high: at most {max} hashes per request"
        )));
    }
    hashes
        .iter()
        .map(|h| {
            let d = algo::decode_b64(h).ok_or_else(|| CscError::invalid("Invalid Base64 hash string parameter"))?;
            if ![32, 48, 64].contains(&d.len()) {
                return Err(CscError::invalid("Invalid digest value length"));
            }
            Ok(d)
        })
        .collect()
}

/// `credentials/authorize`: checks the holder's TOTP code and issues a SAD bound to this credential, these exact
/// hashes and this many signatures.
pub async fn authorize(
    state: &AppState,
    version: Version,
    caller: &Caller,
    req: AuthorizeRequest,
) -> Result<AuthorizeResponse, CscError> {
    let s = &state.settings;
    let num = req
        .num_signatures
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) integer parameter numSignatures"))?;
    if num < 1 {
        return Err(CscError::invalid("Invalid parameter numSignatures"));
    }
    if num > s.csc.multisign {
        return Err(CscError::invalid(format!(
            "Numbers of signatures is too high: at most {} per authorisation",
            s.csc.multisign
        )));
    }
    let hash_param = version.hash_param();
    let hash_alg = req
        .hash_algorithm
        .as_deref()
        .map(|h| algo::hash_from_oid(h, hash_param))
        .transpose()?;
    let hashes = match req.hashes {
        Some(h) => decode_hashes(Some(h), s.csc.multisign)?,
        None => {
            return Err(CscError::invalid(
                "Missing (or invalid type) array parameter hashes: this service binds every SAD to the hashes it signs (SCAL 2)",
            ))
        }
    };
    if hashes.len() as i64 != num {
        return Err(CscError::invalid(
            "Invalid parameter numSignatures: it must equal the number of hashes",
        ));
    }
    if let Some(h) = hash_alg {
        if hashes.iter().any(|d| d.len() != h.output_len()) {
            return Err(CscError::invalid("Invalid digest value length"));
        }
    }
    let code = req.otp.clone().or_else(|| {
        req.auth_data.as_ref().and_then(|items| {
            items
                .iter()
                .find(|a| a.id.as_deref() == Some(OTP_ID))
                .and_then(|a| a.value.clone())
        })
    });
    let v = view(state, caller, req.credential_id.as_deref()).await?;
    let now = state.clock.now();
    usable(&v, now)?;
    let param = if version == Version::V1 { "OTP" } else { "authData" };
    totp::check_code(
        &state.db,
        &state.hsm,
        &s.auth,
        state.clock.as_ref(),
        &caller.user_id,
        code.as_deref(),
        &caller.client,
    )
    .await
    .map_err(|e| otp_error(e, version, param))?;

    let authorization = Authorization {
        user_id: caller.user_id.clone(),
        credential_id: v.cred.id.clone(),
        digests: Digests::of(&hashes),
        hash: hash_alg,
        expires_at: now + s.csc.sad_ttl_secs,
    };
    let event = audit_row(
        state,
        &caller.user_id,
        "sad.issue",
        &v.cred.id,
        "ok",
        &caller.client,
        json!({ "signatures": num, "expires_at": authorization.expires_at }),
    );
    let sad = signing::authorize(&state.db, &authorization, &event, now).await?;
    Ok(AuthorizeResponse {
        sad,
        expires_in: s.csc.sad_ttl_secs,
    })
}

/// `signatures/signHash`: checks the SAD and the quota, signs in the token, then in one short transaction consumes
/// the SAD, debits the quota and records the signatures. If that transaction refuses, the signatures are discarded.
pub async fn sign_hash(
    state: &AppState,
    version: Version,
    caller: &Caller,
    req: SignHashRequest,
) -> Result<SignHashResponse, CscError> {
    let s = &state.settings;
    if req.operation_mode.as_deref().is_some_and(|m| m != "S") {
        return Err(CscError::invalid(
            "Invalid parameter operationMode: only synchronous signing (S) is offered",
        ));
    }
    let sad = req
        .sad
        .filter(|x| !x.is_empty())
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter SAD"))?;
    let sign_algo = req
        .sign_algo
        .filter(|x| !x.is_empty())
        .ok_or_else(|| CscError::invalid("Missing (or invalid type) string parameter signAlgo"))?;
    let hashes = decode_hashes(req.hashes, s.csc.multisign)?;
    let n = hashes.len() as i64;
    let v = view_recent(state, caller, req.credential_id.as_deref(), n).await?;
    let Resolved { mechanism, hash } = algo::resolve(
        v.spec,
        &sign_algo,
        req.hash_algorithm.as_deref(),
        req.sign_algo_params.as_deref(),
        version.hash_param(),
    )?;
    if hashes.iter().any(|d| d.len() != hash.output_len()) {
        return Err(CscError::invalid("Invalid digest value length"));
    }
    let now = state.clock.now();
    usable(&v, now)?;

    let wanted = Digests::of(&hashes);
    let sad_hash = signing::check_recent(
        &state.db,
        &state.recent,
        &sad,
        &caller.user_id,
        &v.cred.id,
        &wanted,
        hash,
        now,
    )
    .await?
    .map_err(|why| sad_refusal(version, why))?;
    if v.quota.remaining() < n {
        return Err(quota_exhausted(v.quota.remaining()));
    }

    let sign_algo_oid = mechanism.algorithm_identifier(hash).oid.to_string();
    let event = audit_row(
        state,
        &caller.user_id,
        "signature.create",
        &v.cred.id,
        "ok",
        &caller.client,
        json!({ "signatures": n, "sign_algo": sign_algo_oid, "hash_algo": hash.oid().to_string() }),
    );
    let request = signing::Request {
        by: signing::Signatory {
            user_id: &caller.user_id,
            client: &caller.client,
            credential_id: &v.cred.id,
            authorization: sad_hash.clone(),
            bearer: Some(caller.token_hash.clone()),
        },
        mechanism,
        hash,
        digests: &hashes,
    };
    let core = signing::Core {
        hsm: &state.hsm,
        ledger: &state.ledger,
    };
    match signing::sign_digests(&core, &request, event, now).await {
        Ok(signatures) => {
            state.recent.spent(&v.cred.id, &sad_hash, &wanted);
            use base64::Engine;
            let b64 = |d: &Vec<u8>| base64::engine::general_purpose::STANDARD.encode(d);
            Ok(SignHashResponse {
                signatures: signatures.iter().map(b64).collect(),
            })
        }
        Err(e) => {
            // What was kept may be what misled this request: the next one reads afresh.
            state.recent.forget(&v.cred.id, &sad_hash);
            Err(refused_after_reads(state, version, caller, &v, &sad, &wanted, hash, now, e).await)
        }
    }
}

/// The answer to a signHash the ledger refused, in the words a fresh read gives: the SAD's precise refusal
/// (expired, used up, another digest) or why the credential cannot sign, else the ledger's own reason.
#[allow(clippy::too_many_arguments)]
async fn refused_after_reads(
    state: &AppState,
    version: Version,
    caller: &Caller,
    v: &View,
    sad: &str,
    wanted: &Digests,
    hash: crate::hsm::HashAlg,
    now: i64,
    e: SignFailure,
) -> CscError {
    match e {
        SignFailure::Refused(CommitRefusal::SadSpent) => {
            match signing::check(&state.db, sad, &caller.user_id, &v.cred.id, wanted, hash, now).await {
                Ok(Err(why)) => sad_refusal(version, why),
                Ok(Ok(_)) => sign_failure(e),
                Err(db) => CscError::Db(db),
            }
        }
        SignFailure::Refused(CommitRefusal::Unusable) => {
            match signing::why_unusable(&state.db, &v.cred.id, now).await {
                Ok(why) => CscError::invalid(crate::i18n::text(crate::i18n::Lang::En, why.key())),
                Err(db) => CscError::Db(db),
            }
        }
        e => sign_failure(e),
    }
}

/// A signing that did not happen, in CSC terms.
pub(crate) fn sign_failure(e: SignFailure) -> CscError {
    match e {
        SignFailure::Refused(CommitRefusal::QuotaExhausted(left)) => quota_exhausted(left),
        SignFailure::Refused(CommitRefusal::SadSpent) => {
            CscError::invalid("The SAD was used meanwhile by another request, or expired: authorise again")
        }
        SignFailure::Refused(CommitRefusal::Unusable) => {
            CscError::invalid("The credential can no longer sign: it was revoked, suspended or replaced meanwhile")
        }
        SignFailure::Refused(CommitRefusal::TokenRevoked) => {
            CscError::InvalidToken("The access token was revoked or expired meanwhile".into())
        }
        SignFailure::Hsm(e) => CscError::Hsm(e),
        SignFailure::Db(e) => CscError::Db(e),
    }
}

/// Checks the SAD ([`signing::check`]) with the CSC API's words for each refusal. Returns the SAD's key in the
/// ledger.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn check_sad(
    state: &AppState,
    version: Version,
    caller: &Caller,
    v: &View,
    sad: &str,
    hashes: &[Vec<u8>],
    hash: crate::hsm::HashAlg,
    now: i64,
) -> Result<String, CscError> {
    let wanted = Digests::of(hashes);
    signing::check(&state.db, sad, &caller.user_id, &v.cred.id, &wanted, hash, now)
        .await?
        .map_err(|why| sad_refusal(version, why))
}

/// A SAD's refusal in the CSC API's words.
fn sad_refusal(version: Version, why: Refused) -> CscError {
    match why {
        Refused::Unknown => CscError::invalid("Invalid parameter SAD"),
        Refused::Expired => CscError::invalid("SAD expired"),
        Refused::UsedUp => CscError::invalid("The SAD was already used: authorise again"),
        Refused::TooMany { left } => {
            CscError::invalid(format!("Numbers of signatures is too high: the SAD allows {left} more"))
        }
        Refused::OtherHash => CscError::invalid(format!(
            "Invalid parameter {}: the SAD was authorised for another hash algorithm",
            version.hash_param()
        )),
        Refused::OtherDigest => CscError::invalid("Hash is not authorized by the SAD"),
    }
}

pub(crate) fn quota_exhausted(left: i64) -> CscError {
    CscError::invalid(crate::text!("error.job.quota_exhausted_left", left).to_string())
}

/// The error for a refused TOTP code: v1 `invalid_otp`, v2 `invalid_authentication_data`.
fn otp_error(e: CodeError, version: Version, param: &str) -> CscError {
    match e {
        CodeError::Missing => CscError::invalid(format!("The authorisation code is required (parameter {param})")),
        CodeError::Db(e) => CscError::Db(e),
        CodeError::Totp(crate::auth::totp::TotpError::Hsm(e)) => CscError::Hsm(e),
        CodeError::Locked { .. } => CscError::invalid(format!("Credential locked: {e}")),
        other => CscError::Otp {
            v2: version == Version::V2,
            message: format!("The OTP is invalid: {other}"),
        },
    }
}

pub(crate) fn audit_row(
    state: &AppState,
    user_id: &str,
    action: &str,
    target: &str,
    outcome: &str,
    client: &str,
    details: Value,
) -> AuditRow {
    let actor = format!("user:{user_id}");
    audit::row(
        state.clock.as_ref(),
        &audit::Event {
            actor: &actor,
            action,
            target,
            outcome,
            client,
            details,
        },
    )
}

async fn audit_event(
    state: &AppState,
    user_id: &str,
    action: &str,
    target: &str,
    outcome: &str,
    client: &str,
    details: Value,
) -> Result<(), CscError> {
    let row = audit_row(state, user_id, action, target, outcome, client, details);
    db::audit::insert(state.db.writer(), &row).await?;
    Ok(())
}

/// Parses `Authorization: Basic …` into e-mail and password.
pub fn parse_basic(header: Option<&str>) -> Result<Option<(String, SecretString)>, CscError> {
    let Some(h) = header else { return Ok(None) };
    crate::encoding::basic_credentials(h)
        .map(Some)
        .ok_or_else(|| CscError::invalid("Malformed authorization header"))
}
