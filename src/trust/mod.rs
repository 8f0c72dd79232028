//! Parafa's trusted list (ETSI TS 119 612): its trust services — the issuing CA as a CA/QC service, each TSA
//! certificate as a qualified time stamp service — with their status and history, published at `/pki/tl.xml` and
//! signed (XAdES-B-B, enveloped) by the scheme operator's key in the token, whose self-signed certificate is at
//! `/pki/tl-operator.crt`. A validator that configures the list and that certificate (pyHanko's trusted-list code,
//! EU DSS) judges Parafa's signatures qualified from it.
//!
//! The list is kept in the database by sequence number. Whoever asks for it gets the latest; a new one is signed
//! when what it says changed (a service added, a status changed, the scheme's settings) or when a quarter of its
//! validity is left. Two instances racing to sign the next number store one; both serve it.

pub mod list;
pub mod qualify;
pub mod routes;
pub mod xml;

use std::sync::Arc;
use std::time::{Duration, Instant};

use der::{Decode, Encode};
use sha2::Digest;
use x509_cert::Certificate;

use crate::ca::{self, profile, Ca, CaError, CaKey};
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, trust as store, Db, DbError};
use crate::hsm::{keys, Hsm, HsmError, KeySpec};
use crate::tsa::Tsa;
use list::{Qualification, Service, ServiceKind, SignatureAlgorithm, Status, StatusPeriod, TrustedList};

/// The `ca_keys` role and `CKA_ID` of the scheme operator's key.
const ROLE: &str = "tl-operator";
/// How long an instance serves the list it read without asking the database again.
const RECHECK: Duration = Duration::from_secs(10);

/// What went wrong with the trusted list.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error("certificate encoding failed: {0}")]
    Der(#[from] der::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("a trusted-list task failed: {0}")]
    Task(String),
}

/// The scheme operator's key and certificate, and the list served.
#[derive(Debug)]
pub struct TrustList {
    operator: CaKey,
    /// The public base URL the CA wrote into its certificates (the same for every instance and command).
    base: String,
    cached: std::sync::Mutex<Option<(Instant, Arc<store::ListRow>)>>,
    /// One signing at a time per instance.
    signing: tokio::sync::Mutex<()>,
}

impl TrustList {
    /// Loads the scheme operator's key and certificate, creating them on first start, and registers the services
    /// this instance runs (the issuing CA, the TSA certificate) if they are new.
    pub async fn provision(
        db: &Db,
        hsm: &Arc<Hsm>,
        settings: &Settings,
        clock: &dyn Clock,
        ca: &Ca,
        tsa: &Tsa,
    ) -> Result<TrustList, TrustError> {
        let operator = match db::ca::get(db, ROLE).await? {
            Some(row) => ca::from_row(hsm, row)?,
            None => create_operator(db, hsm, settings, clock).await?,
        };
        let now = clock.now();
        register(
            db,
            ServiceKind::CaQc,
            &settings.ca.issuing_common_name,
            &ca.issuing.der,
            now,
        )
        .await?;
        register(db, ServiceKind::Qtst, &settings.tsa.common_name, tsa.cert_der(), now).await?;
        Ok(TrustList {
            operator,
            base: ca.public_base().to_owned(),
            cached: std::sync::Mutex::new(None),
            signing: tokio::sync::Mutex::new(()),
        })
    }

    /// The scheme operator's certificate (DER).
    pub fn operator_der(&self) -> &[u8] {
        &self.operator.der
    }

    /// The list to serve: the latest signed, or a new one when its content changed or its next update nears.
    pub async fn current(
        &self,
        db: &Db,
        hsm: &Arc<Hsm>,
        settings: &Settings,
        now: i64,
    ) -> Result<Arc<store::ListRow>, TrustError> {
        if let Some((at, row)) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            if at.elapsed() < RECHECK && now < refresh_at(&row) {
                return Ok(row);
            }
        }
        let content = self.content(db, settings, now).await?;
        let digest = content_digest(&content);
        let latest = store::latest(db).await?;
        let row = match latest {
            Some(row) if row.content_sha256 == digest && now < refresh_at(&row) => row,
            _ => {
                let _one = self.signing.lock().await;
                match store::latest(db).await? {
                    Some(row) if row.content_sha256 == digest && now < refresh_at(&row) => row,
                    latest => {
                        self.sign_next(db, hsm, settings, content, latest.map(|r| r.sequence), now)
                            .await?
                    }
                }
            }
        };
        let row = Arc::new(row);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), row.clone()));
        Ok(row)
    }

    /// Signs a new list now, whatever the latest says (`parafa admin tl sign`).
    pub async fn sign_now(
        &self,
        db: &Db,
        hsm: &Arc<Hsm>,
        settings: &Settings,
        now: i64,
    ) -> Result<store::ListRow, TrustError> {
        let _one = self.signing.lock().await;
        let content = self.content(db, settings, now).await?;
        let latest = store::latest(db).await?.map(|r| r.sequence);
        let row = self.sign_next(db, hsm, settings, content, latest, now).await?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(row)
    }

    /// Records a service's new status from `since` and signs a new list (`parafa admin tl status`). False when
    /// no service has that id.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_status(
        &self,
        db: &Db,
        hsm: &Arc<Hsm>,
        settings: &Settings,
        clock: &dyn Clock,
        service_id: &str,
        status: Status,
        reason: &str,
    ) -> Result<Option<store::ListRow>, TrustError> {
        let now = clock.now();
        let Some(since) = store::set_status(db, service_id, status.as_str(), now, Some(reason), now).await? else {
            return Ok(None);
        };
        let event = crate::audit::Event {
            actor: "admin-cli",
            action: "tl.service.status",
            target: service_id,
            outcome: "ok",
            client: "cli",
            details: serde_json::json!({ "status": status.as_str(), "since": since, "reason": reason }),
        };
        crate::audit::record(db, clock, event).await?;
        Ok(Some(self.sign_now(db, hsm, settings, since.max(now)).await?))
    }

    /// The services on the list now, with their whole history: what the verification judges signatures by.
    pub async fn services(&self, db: &Db, settings: &Settings, now: i64) -> Result<Vec<Service>, TrustError> {
        Ok(self.content(db, settings, now).await?.services)
    }

    /// What the list says, without its dates and number.
    async fn content(&self, db: &Db, settings: &Settings, now: i64) -> Result<TrustedList, TrustError> {
        let services = store::services(db).await?;
        let statuses = store::statuses(db).await?;
        let t = &settings.trust;
        let base = &self.base;
        let mut list = TrustedList {
            sequence: 0,
            issued_at: 0,
            next_update: 0,
            operator_name: t.operator_name.clone(),
            address: list::Address {
                street: t.street.clone(),
                locality: t.locality.clone(),
                postal_code: t.postal_code.clone(),
                country: t.country.clone(),
                electronic: vec![format!("mailto:{}", t.email), format!("{base}/")],
            },
            territory: t.country.clone(),
            distribution_point: format!("{base}/pki/tl.xml"),
            information_uri: format!("{base}/legal"),
            services: Vec::new(),
        };
        for s in services {
            let kind = ServiceKind::parse(&s.kind).ok_or(DbError::Corrupt("trust_services.kind"))?;
            let history: Vec<StatusPeriod> = statuses
                .iter()
                .filter(|st| st.service_id == s.id && st.since <= now)
                .map(|st| {
                    Ok(StatusPeriod {
                        status: Status::parse(&st.status).ok_or(DbError::Corrupt("trust_service_statuses.status"))?,
                        since: st.since,
                    })
                })
                .collect::<Result<_, DbError>>()?;
            list.services.push(Service {
                kind,
                name: s.name,
                cert_der: db::unb64(&s.cert_der, "trust_services.cert_der")?,
                history,
                qualification: (kind == ServiceKind::CaQc).then(|| Qualification {
                    policy: profile::QCP_N_QSCD.to_string(),
                }),
            });
        }
        Ok(list)
    }

    async fn sign_next(
        &self,
        db: &Db,
        hsm: &Arc<Hsm>,
        settings: &Settings,
        mut content: TrustedList,
        latest: Option<i64>,
        now: i64,
    ) -> Result<store::ListRow, TrustError> {
        let digest = content_digest(&content);
        content.sequence = latest.unwrap_or(0) + 1;
        content.issued_at = now;
        content.next_update = now + i64::from(settings.trust.next_update_days) * 86_400;
        let (hsm, key_id, spec, cert) = (
            hsm.clone(),
            self.operator.key_id.clone(),
            self.operator.spec,
            self.operator.der.clone(),
        );
        let list = content.clone();
        let xml = tokio::task::spawn_blocking(move || {
            list.sign(algorithm(spec), &cert, now, |digest| {
                sign_xml(&hsm, &key_id, spec, digest)
            })
        })
        .await
        .map_err(|e| TrustError::Task(e.to_string()))??;
        let row = store::ListRow {
            sequence: content.sequence,
            issued_at: content.issued_at,
            next_update: content.next_update,
            content_sha256: digest,
            xml,
        };
        if store::store(db, &row).await? {
            tracing::info!(sequence = row.sequence, "signed the trusted list");
            return Ok(row);
        }
        // Another instance signed this number first: serve theirs.
        Ok(store::by_sequence(db, row.sequence).await?.unwrap_or(row))
    }
}

/// When a list is signed afresh though nothing changed: with a quarter of its validity left.
fn refresh_at(row: &store::ListRow) -> i64 {
    row.next_update - (row.next_update - row.issued_at) / 4
}

fn content_digest(content: &TrustedList) -> String {
    let undated = TrustedList {
        sequence: 0,
        issued_at: 0,
        next_update: 0,
        ..content.clone()
    };
    hex::encode(sha2::Sha256::digest(undated.body().canonical().as_bytes()))
}

fn algorithm(spec: KeySpec) -> SignatureAlgorithm {
    match spec {
        KeySpec::Rsa2048 => SignatureAlgorithm::RsaSha256,
        KeySpec::Rsa3072 => SignatureAlgorithm::RsaSha384,
        KeySpec::P256 => SignatureAlgorithm::EcdsaSha256,
        KeySpec::P384 => SignatureAlgorithm::EcdsaSha384,
    }
}

/// Signs a SignedInfo digest in the token: PKCS#1 v1.5 for RSA, ECDSA as the `r‖s` XML signatures carry.
fn sign_xml(hsm: &Hsm, key_id: &[u8], spec: KeySpec, digest: &[u8]) -> Result<Vec<u8>, TrustError> {
    let hash = spec.default_hash();
    let signature = hsm.sign_digest(key_id, spec.default_mechanism(hash), digest)?;
    match spec {
        KeySpec::P256 => Ok(keys::ecdsa_der_to_raw(&signature, 32)?),
        KeySpec::P384 => Ok(keys::ecdsa_der_to_raw(&signature, 48)?),
        KeySpec::Rsa2048 | KeySpec::Rsa3072 => Ok(signature),
    }
}

/// A service's id: its kind and the start of its certificate's SHA-256.
fn service_id(kind: ServiceKind, cert_der: &[u8]) -> String {
    format!(
        "{}-{}",
        kind.as_str(),
        &hex::encode(sha2::Sha256::digest(cert_der))[..16]
    )
}

async fn register(db: &Db, kind: ServiceKind, name: &str, cert_der: &[u8], now: i64) -> Result<(), TrustError> {
    let cert = Certificate::from_der(cert_der)?;
    let since = ca::unix(&cert.tbs_certificate.validity.not_before);
    let row = store::ServiceRow {
        id: service_id(kind, cert_der),
        kind: kind.as_str().into(),
        name: name.into(),
        cert_der: db::b64(cert_der),
        created_at: now,
    };
    store::register(db, &row, since).await?;
    Ok(())
}

/// Creates the scheme operator's key in the token and its self-signed certificate.
async fn create_operator(db: &Db, hsm: &Arc<Hsm>, settings: &Settings, clock: &dyn Clock) -> Result<CaKey, TrustError> {
    let t = &settings.trust;
    let spec = t.operator_key;
    let key_id = ROLE.as_bytes().to_vec();
    let (h, kid) = (hsm.clone(), key_id.clone());
    // A key left by an interrupted first start is reused rather than duplicated.
    let spki = tokio::task::spawn_blocking(move || match h.public_key(&kid, spec)? {
        Some(spki) => Ok::<_, HsmError>(spki),
        None => h.generate_key_pair(spec, &kid, "Parafa trusted list scheme operator key"),
    })
    .await
    .map_err(|e| TrustError::Task(e.to_string()))??;
    let subject = profile::ca_name(&t.country, &t.operator_name, &t.operator_common_name)?;
    let now = clock.now();
    let exts = profile::tl_operator_extensions(&spki)?;
    let signer = CaKey {
        role: ROLE.into(),
        key_id: key_id.clone(),
        spec,
        cert: ca::placeholder_cert(&spki)?,
        der: Vec::new(),
    };
    let (h, validity) = (hsm.clone(), i64::from(t.operator_validity_days) * 86_400);
    let issued = tokio::task::spawn_blocking(move || {
        ca::sign_certificate(
            &h,
            &signer,
            subject.clone(),
            subject,
            spki,
            now - 60,
            now + validity,
            exts,
        )
    })
    .await
    .map_err(|e| TrustError::Task(e.to_string()))??;
    let row = db::ca::CaKeyRow {
        role: ROLE.into(),
        key_id: ROLE.into(),
        key_spec: spec.as_str().into(),
        cert_der: db::b64(&issued.cert.to_der()?),
        subject: t.operator_common_name.clone(),
        not_after: issued.not_after,
    };
    let stored = db::ca::insert_or_get(db, &row, now).await?;
    if stored.cert_der == row.cert_der {
        tracing::info!(subject = %t.operator_common_name, "created the trusted list scheme operator certificate");
        let event = crate::audit::Event {
            actor: crate::audit::SYSTEM,
            action: "tl.operator.create",
            target: ROLE,
            outcome: "ok",
            client: "provisioning",
            details: serde_json::json!({ "serial": issued.serial, "subject": t.operator_common_name }),
        };
        crate::audit::record(db, clock, event).await?;
    }
    Ok(ca::from_row(hsm, stored)?)
}
