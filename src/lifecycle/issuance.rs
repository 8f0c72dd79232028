//! Issuance (product rules §5): an accepted, paid holder with a TOTP pairing reads the issuance terms and
//! authorises with a TOTP code; the key pair is generated in the HSM, the certificate issued for the package's
//! validity, the package's quota attached, and the acceptance kept as signed evidence: a CMS SignedData, signed by
//! the new key, enclosing the terms the holder accepted with their name, the order and the time.
//!
//! The HSM work comes first, outside any database transaction; then one transaction moves the order from
//! accepted to fulfilled (conditionally: of two concurrent requests one wins) and stores the certificate, the
//! credential, the quota, the evidence and the e-mail. A key whose rows could not be stored is destroyed.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use super::holders::add_years;
use super::LifecycleError;
use super::Services;
use crate::accounts::audit;
use crate::auth::totp;
use crate::billing::orders::{self, OrderRow};
use crate::billing::{OrderEvent, OrderKind, OrderState};
use crate::ca::{Ca, HolderSubject, Issued};
use crate::clock::{rfc3339, Clock};
use crate::config::PackageSettings;
use crate::db::credentials::{CertificateRow, CertificateStatus, Credential, CredentialStatus, Quota, StatusAt};
use crate::db::rekey::RekeyState;
use crate::db::users::{TotpStatus, User};
use crate::db::{self, DbError};
use crate::hsm::{Hsm, KeySpec};
use crate::i18n::Text;
use crate::notify::{self, Template};
use crate::text;

/// `POST /me/certificates`.
#[derive(Debug, Deserialize)]
pub struct IssueRequest {
    pub order_id: Option<String>,
    pub terms_accepted: Option<bool>,
    pub totp: Option<String>,
    /// `rsa2048` (default), `rsa3072`, `p256`, `p384`.
    pub key: Option<String>,
    /// When the phone changed during identification: `confirm` makes it the account's phone, `refuse` keeps the
    /// account's.
    pub phone: Option<String>,
}

/// The issuance terms the holder accepts, as signed: the terms of the given version with the holder, the order
/// and the time.
pub fn terms_document(version: &str, holder: &str, order: &str, at: i64) -> String {
    format!(
        "Parafa - issuance terms, version {version}\n\n\
         1. The certificate is a qualified certificate for electronic signatures; its private key is generated and \
         kept in Parafa's hardware security module and is used only after my authorisation with a code of my \
         authenticator app (sole control).\n\
         2. I keep my authenticator app and my password to myself and ask for revocation at once if I believe \
         someone else can use them.\n\
         3. The certificate is valid for the period of the package I bought and signatures are debited from its \
         transactions; unused transactions end with the certificate.\n\
         4. The data in the certificate are the data of my accepted identification.\n\n\
         Accepted by: {holder}\nOrder: {order}\nAt: {}\n",
        rfc3339(at)
    )
}

/// The certificate subject of the identity the operator accepted.
async fn subject_of(state: &Services, user: &User) -> Result<(HolderSubject, Option<String>), LifecycleError> {
    let r = db::identity::identity_of(&state.db, &user.id)
        .await?
        .ok_or_else(|| LifecycleError::Conflict(text!("error.issuance.no_accepted_identification")))?;
    let country = r.country;
    let doc: super::identity::Document = serde_json::from_str(&r.document)
        .map_err(|e| LifecycleError::Invalid(text!("error.http.detail", detail = e)))?;
    // The semantics identifier of EN 319 412-1 §5.1.3: the personal number, else the document.
    let serial_number = match r.personal_number {
        Some(p) if !p.is_empty() => format!("PNO{country}-{p}"),
        _ => {
            let kind = if doc.doc_type.as_deref() == Some("passport") {
                "PAS"
            } else {
                "IDC"
            };
            format!(
                "{kind}{country}-{}{}",
                doc.series.unwrap_or_default().trim(),
                doc.number.unwrap_or_default().trim()
            )
        }
    };
    Ok((
        HolderSubject {
            given_name: r.given_name,
            surname: r.surname,
            country,
            serial_number,
            pseudonym: None,
            email: Some(user.email.clone()),
        },
        r.phone,
    ))
}

/// The phone number changed during the accepted identification, when it differs from the account's (shown
/// masked, last three digits): issuance then asks to confirm or refuse it (`IssueRequest::phone`).
pub async fn phone_to_confirm(state: &Services, user: &User) -> Result<Option<String>, LifecycleError> {
    let phone = db::identity::identity_of(&state.db, &user.id)
        .await?
        .and_then(|i| i.phone);
    Ok(phone
        .filter(|p| *p != user.phone)
        .map(|p| p[p.len().saturating_sub(3)..].to_owned()))
}

/// Generates the key pair in the token and issues its certificate; with `evidence`, also signs that text with
/// the new key (CMS, enclosing the text). Blocking. A key whose certificate or evidence failed is destroyed.
#[allow(clippy::too_many_arguments)]
pub fn make_credential(
    hsm: &Hsm,
    ca: &Ca,
    subject: &HolderSubject,
    spec: KeySpec,
    credential_id: &str,
    label: &str,
    not_before: i64,
    not_after: i64,
    evidence: Option<(&[u8], i64)>,
) -> Result<(Issued, Option<Vec<u8>>), LifecycleError> {
    let spki = hsm.generate_key_pair(spec, credential_id.as_bytes(), label)?;
    let done = (|| {
        let issued = ca.issue_holder(hsm, subject, &spki, not_before, not_after)?;
        let cms = match evidence {
            None => None,
            Some((text, at)) => Some(sign_evidence(hsm, ca, spec, credential_id, &issued.der, text, at)?),
        };
        Ok::<_, LifecycleError>((issued, cms))
    })();
    if done.is_err() {
        let _ = hsm.destroy_key_pair(credential_id.as_bytes());
    }
    done
}

fn sign_evidence(
    hsm: &Hsm,
    ca: &Ca,
    spec: KeySpec,
    credential_id: &str,
    cert_der: &[u8],
    text: &[u8],
    at: i64,
) -> Result<Vec<u8>, LifecycleError> {
    use crate::cms;
    let hash = spec.default_hash();
    let mechanism = spec.default_mechanism(hash);
    let chain = ca.chain_der();
    let signer = cms::SignerSpec {
        cert_der,
        chain_der: &chain,
        hash,
        mechanism,
        signing_time: Some(at),
        content_type: const_oid::db::rfc5911::ID_DATA,
    };
    cms::sign(&signer, cms::Encapsulation::Attached(text), |digest| {
        hsm.sign_digest(credential_id.as_bytes(), mechanism, digest)
    })
    .map_err(|e| LifecycleError::Invalid(text!("error.issuance.terms_evidence_unsigned", e)))
}

/// Stores a new credential: certificate, credential and quota rows.
pub async fn insert_credential_rows(
    conn: &mut sqlx::AnyConnection,
    user: &User,
    credential_id: &str,
    spec: KeySpec,
    issued: &Issued,
    package: &PackageSettings,
    now: i64,
) -> Result<(), DbError> {
    db::credentials::insert_certificate(
        &mut *conn,
        &CertificateRow {
            serial: issued.serial.clone(),
            issuer_role: "issuing".into(),
            credential_id: Some(credential_id.to_owned()),
            subject: format!("{} {}", user.given_name, user.surname),
            cert_der: db::b64(&issued.der),
            not_before: issued.not_before,
            not_after: issued.not_after,
            status: CertificateStatus::Valid,
        },
        now,
    )
    .await?;
    db::credentials::insert_credential(
        &mut *conn,
        &Credential {
            id: credential_id.to_owned(),
            user_id: user.id.clone(),
            key_spec: spec.as_str().into(),
            key_label: format!("holder {}", user.email),
            cert_serial: issued.serial.clone(),
            status: CredentialStatus::Active,
            created_at: now,
        },
    )
    .await?;
    db::credentials::insert_quota(
        &mut *conn,
        &Quota {
            credential_id: credential_id.to_owned(),
            package_id: package.id.into(),
            total: package.transactions,
            used: 0,
        },
        now,
    )
    .await
}

/// The certificate-issued e-mail (#11), naming the order it was issued for.
pub fn issued_email(state: &Services, user: &User, issued: &Issued, order: &str) -> notify::Message {
    let (from, to) = (rfc3339(issued.not_before), rfc3339(issued.not_after));
    notify::email(
        &user.email,
        &user.lang,
        state.ca.public_base(),
        Template::CertificateIssued {
            order,
            serial: &issued.serial,
            valid_from: &from,
            valid_to: &to,
        },
        "certificate_issued",
    )
}

/// The holder's order whose certificate may be issued now: a new or reissue order, its identification accepted,
/// not on hold.
async fn issuable_order(state: &Services, user: &User, order_id: Option<&str>) -> Result<OrderRow, LifecycleError> {
    let order_id = order_id.ok_or_else(|| LifecycleError::Invalid(text!("error.issuance.order_id_required")))?;
    let order = orders::order_row(state.db.writer(), order_id)
        .await?
        .filter(|o| o.user_id == user.id)
        .ok_or_else(|| LifecycleError::NotFound(text!("error.order.no_such_order")))?;
    if order.kind == OrderKind::Rekey {
        return Err(LifecycleError::Conflict(text!(
            "error.issuance.rekey_certificate_issued_automatically_once"
        )));
    }
    if order.state != OrderState::Accepted || order.frozen {
        return Err(LifecycleError::Conflict(text!(
            "error.issuance.certificate_can_issued_once_identification",
            state => Text::state(order.state.as_str())
        )));
    }
    Ok(order)
}

/// The phone number the account takes at issuance: the identification's, when it differs from the account's and
/// the holder confirms it (`answer` `confirm`; `refuse` keeps the account's). A number that changed asks for an
/// answer; one of another account cannot be confirmed.
async fn phone_decision(
    state: &Services,
    user: &User,
    session_phone: Option<String>,
    answer: Option<&str>,
) -> Result<Option<String>, LifecycleError> {
    let Some(p) = session_phone.filter(|p| *p != user.phone) else {
        return Ok(None);
    };
    match answer {
        Some("confirm") => {}
        Some("refuse") => return Ok(None),
        _ => {
            return Err(LifecycleError::Conflict(text!(
                "error.issuance.phone_number_changed_during_identification",
                ending = &p[p.len().saturating_sub(3)..]
            )))
        }
    }
    if db::users::by_phone(&state.db, &p)
        .await?
        .is_some_and(|o| o.id != user.id)
    {
        return Err(LifecycleError::Conflict(text!(
            "error.issuance.that_phone_number_belongs_another"
        )));
    }
    Ok(Some(p))
}

/// A certificate just issued.
#[derive(Debug, serde::Serialize)]
pub struct IssuedCertificate {
    pub message: &'static str,
    pub credential_id: String,
    pub certificate_serial: String,
    pub valid_from: String,
    pub valid_to: String,
    /// The package's transactions.
    pub transactions: i64,
    /// The link of the signed terms.
    pub terms_evidence: String,
}

/// `POST /me/certificates`: issues the certificate of an accepted new or reissue order.
pub async fn issue(
    state: &Services,
    user: &User,
    req: IssueRequest,
    client: &str,
) -> Result<IssuedCertificate, LifecycleError> {
    let order = issuable_order(state, user, req.order_id.as_deref()).await?;
    if req.terms_accepted != Some(true) {
        return Err(LifecycleError::Invalid(text!(
            "error.issuance.please_read_and_accept_issuance"
        )));
    }
    let spec: KeySpec = req
        .key
        .as_deref()
        .unwrap_or("rsa2048")
        .parse()
        .map_err(|e: String| LifecycleError::Invalid(text!("error.http.detail", detail = e)))?;
    let package = state
        .settings
        .package(order.package_id as u8)
        .cloned()
        .ok_or_else(|| LifecycleError::Invalid(text!("error.issuance.order_package_no_longer_offered")))?;
    let (subject, session_phone) = subject_of(state, user).await?;
    let new_phone = phone_decision(state, user, session_phone, req.phone.as_deref()).await?;
    if db::users::totp(&state.db, &user.id)
        .await?
        .is_none_or(|p| p.status != TotpStatus::Active)
    {
        return Err(LifecycleError::Conflict(text!(
            "error.issuance.configure_authorisation_mechanism_pair_authenticator"
        )));
    }
    totp::check_code(
        &state.db,
        &state.hsm,
        &state.settings.auth,
        state.clock.as_ref(),
        &user.id,
        req.totp.as_deref(),
        client,
    )
    .await?;

    let now = state.clock.now();
    let credential_id = uuid::Uuid::new_v4().to_string();
    let not_after = add_years(now, package.validity_years);
    let holder_name = format!("{} {}", subject.given_name, subject.surname);
    let terms = terms_document(
        &state.settings.lifecycle.terms_version,
        &holder_name,
        &order.registration_number,
        now,
    );
    let (h, c, cid, subj, text) = (
        state.hsm.clone(),
        state.ca.clone(),
        credential_id.clone(),
        subject.clone(),
        terms.clone(),
    );
    let label = format!("holder {}", user.email);
    let (issued, cms) = tokio::task::spawn_blocking(move || {
        make_credential(
            &h,
            &c,
            &subj,
            spec,
            &cid,
            &label,
            now - 60,
            not_after,
            Some((text.as_bytes(), now)),
        )
    })
    .await
    .map_err(|e| LifecycleError::Task(e.to_string()))??;
    let cms = cms.unwrap_or_default();

    let stored = store_issued(
        state,
        user,
        &order,
        &credential_id,
        spec,
        &issued,
        &package,
        &terms,
        &cms,
        new_phone,
        &subject,
        now,
    )
    .await;
    if let Err(e) = stored {
        destroy_key(&state.hsm, &credential_id).await;
        return Err(e);
    }
    audit(
        &state.accounts(),
        &user.id,
        "certificate.issue",
        "ok",
        client,
        json!({ "order": order.registration_number, "credential_id": credential_id, "serial": issued.serial }),
    )
    .await;
    Ok(IssuedCertificate {
        message: "We are issuing your certificate: it is ready.",
        terms_evidence: format!("/api/v1/me/certificates/{credential_id}/terms-evidence.p7s"),
        credential_id,
        certificate_serial: issued.serial,
        valid_from: rfc3339(issued.not_before),
        valid_to: rfc3339(issued.not_after),
        transactions: package.transactions,
    })
}

#[allow(clippy::too_many_arguments)]
async fn store_issued(
    state: &Services,
    user: &User,
    order: &OrderRow,
    credential_id: &str,
    spec: KeySpec,
    issued: &Issued,
    package: &PackageSettings,
    terms: &str,
    cms: &[u8],
    new_phone: Option<String>,
    subject: &HolderSubject,
    now: i64,
) -> Result<(), LifecycleError> {
    let mut tx = state.db.writer().begin().await?;
    let actor = format!("user:{}", user.id);
    if !orders::transition(
        &mut tx,
        &order.id,
        OrderEvent::Fulfil,
        &actor,
        "certificate issued",
        now,
    )
    .await?
    {
        return Err(LifecycleError::Conflict(text!(
            "error.issuance.order_certificate_was_issued_meanwhile"
        )));
    }
    db::orders::set_credential(&mut tx, &order.id, credential_id).await?;
    // An institutional order is invoiced now, after issuance (§13).
    super::institutional::after_issuance(&mut tx, state, &order.id, now).await?;
    // The names as on the identity document.
    let (given, surname) = (&subject.given_name, &subject.surname);
    db::identity::apply_to_account(&mut tx, &user.id, given, surname, new_phone.as_deref()).await?;
    let named = User {
        given_name: subject.given_name.clone(),
        surname: subject.surname.clone(),
        ..user.clone()
    };
    insert_credential_rows(&mut tx, &named, credential_id, spec, issued, package, now).await?;
    let evidence = db::credentials::Evidence {
        credential_id,
        order_id: &order.id,
        terms_version: &state.settings.lifecycle.terms_version,
        terms_sha256: &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(terms.as_bytes())),
        cms_der: cms,
    };
    db::credentials::insert_evidence(&mut tx, &evidence, now).await?;
    notify::enqueue(
        &mut *tx,
        state.clock.as_ref(),
        &issued_email(state, user, issued, &order.registration_number),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Destroys a key pair whose rows could not be stored.
pub async fn destroy_key(hsm: &Arc<Hsm>, credential_id: &str) {
    let (h, id) = (hsm.clone(), credential_id.to_owned());
    let _ = tokio::task::spawn_blocking(move || h.destroy_key_pair(id.as_bytes())).await;
}

/// The signed terms of a credential (CMS DER), for the holder's records.
pub async fn evidence(state: &Services, user: &User, credential_id: &str) -> Result<Vec<u8>, LifecycleError> {
    db::credentials::evidence(&state.db, credential_id, &user.id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(text!("error.issuance.no_signed_terms_for_credential")))
}

/// A holder's certificates and what they can do next.
#[derive(Debug, serde::Serialize)]
pub struct Certificates {
    /// Newest first.
    pub certificates: Vec<CertificateView>,
    /// `new_certificate` when every certificate has ended.
    pub actions: Vec<&'static str>,
    pub issuing_ca_pem: String,
}

/// One of a holder's certificates as they see it.
#[derive(Debug, serde::Serialize)]
pub struct CertificateView {
    pub credential_id: String,
    /// Valid, expired, not yet valid, revoked or superseded.
    pub status: StatusAt,
    /// The key's kind (`rsa2048`, `p256`, …).
    pub key: String,
    pub certificate_serial: String,
    pub valid_from: String,
    pub valid_to: String,
    pub transactions: Transactions,
    pub rekey: RekeyWindow,
    /// What the holder is told about renewing it, in the page's language.
    pub banner: Option<String>,
    pub certificate_pem: String,
}

/// A certificate's transactions.
#[derive(Debug, serde::Serialize)]
pub struct Transactions {
    pub total: i64,
    pub used: i64,
    pub left: i64,
}

/// A certificate's rekey window and its latest rekey request.
#[derive(Debug, serde::Serialize)]
pub struct RekeyWindow {
    pub window_opens_at: String,
    pub deadline: String,
    /// Whether a rekey may be asked for now.
    pub allowed: bool,
    pub successor_issue_at: String,
    pub request_id: Option<String>,
    pub request_state: Option<RekeyState>,
    pub reason: Option<String>,
}

/// `GET /me/certificates`: the holder's certificates with state, validity, quota left, the rekey window and the
/// banner text (product rules §5: from the first reminder until expiry, not while a rekey is under review).
pub async fn list(state: &Services, user: &User) -> Result<Certificates, LifecycleError> {
    list_in(state, user, &user.lang).await
}

/// [`list`] with the banner in `lang` (`ro`/`en`): the pages show it in the page's language.
pub async fn list_in(state: &Services, user: &User, lang: &str) -> Result<Certificates, LifecycleError> {
    use super::rekey::{deadline, successor_issue_at};
    let now = state.clock.now();
    let first_reminder = state
        .settings
        .lifecycle
        .reminder_days
        .iter()
        .copied()
        .max()
        .unwrap_or(45);
    let en = crate::notify::Lang::or_default(Some(lang)) == crate::notify::Lang::En;
    let mut out = Vec::new();
    let mut any_valid = false;
    for cred in db::credentials::credentials_of(&state.db, &user.id)
        .await?
        .into_iter()
        .rev()
    {
        let Some((cred, cert, quota)) = db::credentials::credential_full(&state.db, &cred.id).await? else {
            continue;
        };
        let status = match (cert.status, cred.status) {
            (CertificateStatus::Revoked, _) | (_, CredentialStatus::Revoked) => StatusAt::Revoked,
            (_, CredentialStatus::Superseded) => StatusAt::Superseded,
            _ if now >= cert.not_after => StatusAt::Expired,
            _ if now < cert.not_before => StatusAt::NotYetValid,
            _ => StatusAt::Valid,
        };
        any_valid |= status == StatusAt::Valid;
        let (req_id, req_state, req_reason) = match db::rekey::latest_of_credential(&state.db, &cred.id).await? {
            Some((id, state, reason)) => (Some(id), Some(state), reason),
            None => (None, None, None),
        };
        let limit = deadline(state, cert.not_after);
        let window_opens = cert.not_after - first_reminder * 86_400;
        let in_window = status == StatusAt::Valid && now >= window_opens;
        let reviewing = req_state.is_some_and(RekeyState::is_under_way);
        // Times as people read them, in Bucharest, with the zone named.
        let shown = |t: i64| {
            crate::i18n::dates::datetime_zoned(
                if en {
                    crate::i18n::Lang::En
                } else {
                    crate::i18n::Lang::Ro
                },
                t,
            )
        };
        let banner = match () {
            _ if !in_window || reviewing => None,
            _ if req_state == Some(RekeyState::Rejected) && now <= limit => Some(if en {
                format!(
                    "Your rekey request was rejected: {}. Correct the data and sign the terms again by {}.",
                    req_reason.clone().unwrap_or_default(),
                    shown(limit)
                )
            } else {
                format!(
                    "Cererea de reînnoire a fost respinsă: {}. Corectați datele și semnați din nou termenii până la {}.",
                    req_reason.clone().unwrap_or_default(),
                    shown(limit)
                )
            }),
            _ if now <= limit => Some(if en {
                format!(
                    "Your certificate expires on {}. Ask for a rekey by {}.",
                    shown(cert.not_after),
                    shown(limit)
                )
            } else {
                format!(
                    "Certificatul dumneavoastră expiră la {}. Solicitați reînnoirea până la {}.",
                    shown(cert.not_after),
                    shown(limit)
                )
            }),
            _ => Some(if en {
                format!(
                    "Your certificate expires on {}. It is too late for a rekey: after expiry, order a new certificate.",
                    shown(cert.not_after)
                )
            } else {
                format!(
                    "Certificatul dumneavoastră expiră la {}. Reînnoirea nu mai este posibilă: după expirare comandați un certificat nou.",
                    shown(cert.not_after)
                )
            }),
        };
        let der = db::unb64(&cert.cert_der, "certificates.cert_der")?;
        out.push(CertificateView {
            credential_id: cred.id,
            status,
            key: cred.key_spec,
            certificate_serial: cert.serial,
            valid_from: rfc3339(cert.not_before),
            valid_to: rfc3339(cert.not_after),
            transactions: Transactions {
                total: quota.total,
                used: quota.used,
                left: quota.remaining(),
            },
            rekey: RekeyWindow {
                window_opens_at: rfc3339(window_opens),
                deadline: rfc3339(limit),
                allowed: status == StatusAt::Valid && now <= limit,
                successor_issue_at: rfc3339(successor_issue_at(state, cert.not_after)),
                request_id: req_id,
                request_state: req_state,
                reason: req_reason,
            },
            banner,
            certificate_pem: crate::ca::pem(&der),
        });
    }
    let had_any = !out.is_empty();
    let mut actions = Vec::new();
    if had_any && !any_valid {
        actions.push("new_certificate");
    }
    Ok(Certificates {
        certificates: out,
        actions,
        issuing_ca_pem: crate::ca::pem(&state.ca.issuing.der),
    })
}
