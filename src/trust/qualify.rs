//! Whether a signature is a qualified electronic signature, and a timestamp a qualified one, judged from the
//! trusted list's services the way validators judge them (ETSI TS 119 615 §4 and TS 119 172-4, as pyHanko's
//! `QualificationAssessor` does): the signer's issuer is a CA/QC service granted at the signing time; the
//! certificate is qualified (QcCompliance), for electronic signatures (QcType, or the service's QCForESig) and its
//! key in a QSCD (QcSSCD, or the service's QCWithQSCD / QCQSCDManagedOnBehalf) — the service's qualifiers applying
//! to certificates that meet their criteria; and the signature itself is valid. A timestamp is qualified when its
//! TSA certificate is itself a QTST service granted at the time it states.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Sequence};
use serde::Serialize;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CertificatePolicies, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::Certificate;

use super::list::{Service, ServiceKind, Status};
use crate::ca::profile::{ID_PE_QC_STATEMENTS, QCT_ESIGN, QC_COMPLIANCE, QC_SSCD, QC_TYPE};

/// esi4-qcStatement-6 QcType values for seals and website authentication (EN 319 412-5 §4.2.3).
const QCT_ESEAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.2");
const QCT_WEB: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.3");

/// What a signature is, as a validator reading the trusted list would say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// `qualified` (a qualified electronic signature), `advanced_qc` (an advanced signature with a qualified
    /// certificate), `advanced` (an advanced signature without one), `not_valid` (the signature itself fails), or
    /// `timestamp` (a document timestamp: see `timestamp`).
    pub signature: &'static str,
    /// The certificate is a qualified certificate (QcCompliance, under a listed CA/QC service).
    pub qualified_certificate: bool,
    /// `esign`, `eseal` or `web`, for a qualified certificate.
    pub certificate_type: Option<&'static str>,
    /// The key is in a qualified signature creation device.
    pub qscd: bool,
    /// The CA/QC service the certificate comes under.
    pub service: Option<String>,
    /// `qualified` or `not_qualified`, when there is a timestamp.
    pub timestamp: Option<&'static str>,
    /// The QTST service of the timestamp's authority.
    pub timestamp_service: Option<String>,
    /// Why not, as codes: `signature_not_valid`, `issuer_not_listed`, `service_not_granted`,
    /// `certificate_not_qualified`, `not_for_esignatures`, `no_qscd`; for the timestamp `timestamp_not_valid`,
    /// `timestamp_not_listed`, `timestamp_service_not_granted`.
    pub reasons: Vec<&'static str>,
}

/// The signature to judge.
pub struct Subject<'a> {
    /// The signer's certificate; none for a document timestamp.
    pub signer: Option<&'a Certificate>,
    /// The signature is intact, chains to a trusted root, was not revoked and the document was not modified after it.
    pub valid: bool,
    /// The signing time (the timestamp's, else the claimed one, else now).
    pub at: i64,
    /// The timestamp: its authority's certificate, its time, and whether it verifies and is trusted.
    pub timestamp: Option<(&'a Certificate, i64, bool)>,
}

#[derive(Sequence)]
struct QcStatement {
    statement_id: ObjectIdentifier,
    statement_info: Option<der::Any>,
}

/// What a certificate's own qcStatements say: (QcCompliance, QcSSCD, QcType values).
fn qc_statements(cert: &Certificate) -> (bool, bool, Vec<ObjectIdentifier>) {
    let statements: Vec<QcStatement> = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_PE_QC_STATEMENTS)
        .and_then(|e| Vec::<QcStatement>::from_der(e.extn_value.as_bytes()).ok())
        .unwrap_or_default();
    let has = |oid| statements.iter().any(|s| s.statement_id == oid);
    let types = statements
        .iter()
        .filter(|s| s.statement_id == QC_TYPE)
        .filter_map(|s| s.statement_info.as_ref())
        .filter_map(|info| info.to_der().ok())
        .filter_map(|der| Vec::<ObjectIdentifier>::from_der(&der).ok())
        .flatten()
        .collect();
    (has(QC_COMPLIANCE), has(QC_SSCD), types)
}

/// The service's status at `at`: the latest period that started by then.
fn status_at(service: &Service, at: i64) -> Option<Status> {
    service
        .history
        .iter()
        .filter(|p| p.since <= at)
        .max_by_key(|p| p.since)
        .map(|p| p.status)
}

/// Whether `issuer` (a listed service's certificate) issued `cert`: names, and key identifiers when both have one.
fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return false;
    }
    let aki = cert
        .tbs_certificate
        .get::<AuthorityKeyIdentifier>()
        .ok()
        .flatten()
        .and_then(|(_, a)| a.key_identifier);
    let ski = issuer
        .tbs_certificate
        .get::<SubjectKeyIdentifier>()
        .ok()
        .flatten()
        .map(|(_, s)| s.0);
    match (aki, ski) {
        (Some(a), Some(s)) => a == s,
        _ => true,
    }
}

/// Whether the list's qualification criteria (nonRepudiation and the service's certificate policy) select `cert`.
fn meets_criteria(cert: &Certificate, policy: &str) -> bool {
    let non_repudiation = cert
        .tbs_certificate
        .get::<KeyUsage>()
        .ok()
        .flatten()
        .is_some_and(|(_, ku)| ku.0.contains(KeyUsages::NonRepudiation));
    let policies = cert
        .tbs_certificate
        .get::<CertificatePolicies>()
        .ok()
        .flatten()
        .is_some_and(|(_, p)| p.0.iter().any(|pi| pi.policy_identifier.to_string() == policy));
    non_repudiation && policies
}

fn parse(services: &[Service]) -> Vec<(&Service, Certificate)> {
    services
        .iter()
        .filter_map(|s| Certificate::from_der(&s.cert_der).ok().map(|c| (s, c)))
        .collect()
}

/// Judges `subject` against the services of the trusted list.
pub fn assess(services: &[Service], subject: &Subject<'_>) -> Assessment {
    let listed = parse(services);
    let mut a = Assessment {
        signature: "timestamp",
        qualified_certificate: false,
        certificate_type: None,
        qscd: false,
        service: None,
        timestamp: None,
        timestamp_service: None,
        reasons: Vec::new(),
    };
    if let Some(cert) = subject.signer {
        let (compliance, sscd, types) = qc_statements(cert);
        let ca = listed
            .iter()
            .find(|(s, c)| s.kind == ServiceKind::CaQc && issued_by(cert, c));
        let mut for_esig = types.contains(&QCT_ESIGN) || types.is_empty();
        let mut qscd = sscd;
        let granted = ca.is_some_and(|(s, _)| status_at(s, subject.at) == Some(Status::Granted));
        match ca {
            None => a.reasons.push("issuer_not_listed"),
            Some((service, _)) => {
                a.service = Some(service.name.clone());
                if !granted {
                    a.reasons.push("service_not_granted");
                }
                // The qualifiers of the CA/QC service (QCForESig, QCQSCDManagedOnBehalf) apply to the
                // certificates its criteria select.
                if service
                    .qualification
                    .as_ref()
                    .is_some_and(|q| meets_criteria(cert, &q.policy))
                {
                    for_esig = true;
                    qscd = true;
                }
            }
        }
        a.qualified_certificate = ca.is_some() && compliance;
        if !compliance {
            a.reasons.push("certificate_not_qualified");
        }
        a.certificate_type = a.qualified_certificate.then(|| {
            if for_esig {
                "esign"
            } else if types.contains(&QCT_ESEAL) {
                "eseal"
            } else if types.contains(&QCT_WEB) {
                "web"
            } else {
                "esign"
            }
        });
        if a.qualified_certificate && a.certificate_type != Some("esign") {
            a.reasons.push("not_for_esignatures");
        }
        a.qscd = a.qualified_certificate && qscd;
        if a.qualified_certificate && !a.qscd {
            a.reasons.push("no_qscd");
        }
        if !subject.valid {
            a.reasons.insert(0, "signature_not_valid");
        }
        a.signature = if !subject.valid {
            "not_valid"
        } else if a.reasons.is_empty() {
            "qualified"
        } else if a.qualified_certificate && granted {
            "advanced_qc"
        } else {
            "advanced"
        };
    }
    if let Some((tsa, time, verified)) = subject.timestamp {
        let qtst = listed
            .iter()
            .find(|(s, c)| s.kind == ServiceKind::Qtst && c == tsa)
            .map(|(s, _)| *s);
        let before = a.reasons.len();
        if !verified {
            a.reasons.push("timestamp_not_valid");
        }
        match qtst {
            None => a.reasons.push("timestamp_not_listed"),
            Some(service) => {
                a.timestamp_service = Some(service.name.clone());
                if status_at(service, time) != Some(Status::Granted) {
                    a.reasons.push("timestamp_service_not_granted");
                }
            }
        }
        a.timestamp = Some(if a.reasons.len() == before {
            "qualified"
        } else {
            "not_qualified"
        });
    }
    a
}
