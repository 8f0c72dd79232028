//! The RFC 3161 protocol around [`super::timestamp`]: a DER TimeStampReq in, a DER TimeStampResp out.
//!
//! Every query gets a TimeStampResp, a malformed one included: a rejection with the PKIFailureInfo bit that says
//! what was wrong (§2.4.2) and a statusString that says it in words, so that a client shows the reason instead of
//! a transport error.

use der::asn1::{BitString, Int};
use der::{Any, Decode, Encode, Sequence};
use x509_tsp::TimeStampReq;

use super::{timestamp, TimestampRequest, Tsa, TsaError};
use crate::clock::Clock;
use crate::hsm::{HashAlg, Hsm};

/// A TimeStampResp that says only "rejection", for the impossible case where encoding a fuller one fails.
const BARE_REJECTION: &[u8] = &[0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02];

/// The longest nonce echoed, in bytes of its INTEGER: clients send 8 (OpenSSL, pyHanko, Adobe); RFC 8954 sets 32
/// for OCSP nonces, and the same bound keeps a query from making the TSA sign kilobytes it chose. The query's own
/// size is bounded before parsing by `tsa.max_request_bytes`, and it has nothing else that repeats: extensions are
/// refused.
pub const MAX_NONCE_BYTES: usize = 32;

/// PKIStatus `granted`.
const GRANTED: u8 = 0;
/// PKIStatus `rejection`.
const REJECTION: u8 = 2;

/// Why a query was refused: the PKIFailureInfo bits of RFC 3161 §2.4.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureInfo {
    /// Unrecognised or unsupported algorithm identifier.
    BadAlg,
    /// Transaction not permitted or supported.
    BadRequest,
    /// The data submitted has the wrong format.
    BadDataFormat,
    /// The TSA's time source is not available.
    TimeNotAvailable,
    /// The requested TSA policy is not supported by the TSA.
    UnacceptedPolicy,
    /// The requested extension is not supported by the TSA.
    UnacceptedExtension,
    /// The request cannot be handled due to system failure.
    SystemFailure,
}

impl FailureInfo {
    /// The bit's number in PKIFailureInfo.
    pub fn bit(self) -> usize {
        match self {
            FailureInfo::BadAlg => 0,
            FailureInfo::BadRequest => 2,
            FailureInfo::BadDataFormat => 5,
            FailureInfo::TimeNotAvailable => 14,
            FailureInfo::UnacceptedPolicy => 15,
            FailureInfo::UnacceptedExtension => 16,
            FailureInfo::SystemFailure => 25,
        }
    }

    /// The name RFC 3161 gives the bit.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureInfo::BadAlg => "badAlg",
            FailureInfo::BadRequest => "badRequest",
            FailureInfo::BadDataFormat => "badDataFormat",
            FailureInfo::TimeNotAvailable => "timeNotAvailable",
            FailureInfo::UnacceptedPolicy => "unacceptedPolicy",
            FailureInfo::UnacceptedExtension => "unacceptedExtension",
            FailureInfo::SystemFailure => "systemFailure",
        }
    }

    /// The DER BIT STRING with only this bit set (a named bit list drops its trailing zero bits).
    fn bit_string(self) -> der::Result<BitString> {
        let bit = self.bit();
        let mut bytes = vec![0u8; bit / 8 + 1];
        bytes[bit / 8] = 0x80 >> (bit % 8);
        BitString::new((7 - bit % 8) as u8, bytes)
    }
}

/// PKIStatusInfo (RFC 3161 §2.4.2; PKIFreeText is a SEQUENCE OF UTF8String).
#[derive(Sequence)]
struct PkiStatusInfo {
    status: u8,
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

/// TimeStampResp (RFC 3161 §2.4.2), the token kept as the DER it was signed as.
#[derive(Sequence)]
struct TimeStampResp {
    status: PkiStatusInfo,
    #[asn1(optional = "true")]
    time_stamp_token: Option<Any>,
}

/// A query refused before anything was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The PKIFailureInfo bit.
    pub fail: FailureInfo,
    /// What was wrong, in words, for the statusString.
    pub reason: String,
}

impl Rejection {
    fn new(fail: FailureInfo, reason: impl Into<String>) -> Rejection {
        Rejection {
            fail,
            reason: reason.into(),
        }
    }
}

/// A TimeStampReq, checked: a hash Parafa supports with a digest of its length, and no extension.
#[derive(Debug, Clone)]
pub struct Query {
    /// The imprint's hash algorithm.
    pub hash: HashAlg,
    /// The imprint's digest, of the algorithm's length.
    pub digest: Vec<u8>,
    /// Whether the hash AlgorithmIdentifier carried NULL parameters.
    pub null_parameters: bool,
    /// The nonce to echo.
    pub nonce: Option<Int>,
    /// reqPolicy.
    pub policy: Option<const_oid::ObjectIdentifier>,
    /// certReq.
    pub cert_req: bool,
}

impl Query {
    /// The request [`super::timestamp`] takes.
    pub fn as_request(&self) -> TimestampRequest<'_> {
        TimestampRequest {
            hash: self.hash,
            digest: &self.digest,
            null_parameters: self.null_parameters,
            nonce: self.nonce.clone(),
            policy: self.policy,
            cert_req: self.cert_req,
        }
    }
}

/// Reads a DER TimeStampReq. Anything that does not decode is `badDataFormat`; a hash other than SHA-256/384/512
/// (or with parameters other than absent or NULL) is `badAlg`; a digest of the wrong length is `badDataFormat`;
/// any extension is `unacceptedExtension`, as Parafa knows none.
pub fn parse_query(der: &[u8]) -> Result<Query, Rejection> {
    let request = TimeStampReq::from_der(der).map_err(|e| {
        Rejection::new(
            FailureInfo::BadDataFormat,
            format!("the request is not a DER TimeStampReq version 1: {e}"),
        )
    })?;
    let algorithm = &request.message_imprint.hash_algorithm;
    let hash = HashAlg::from_oid(&algorithm.oid).ok_or_else(|| {
        Rejection::new(
            FailureInfo::BadAlg,
            format!(
                "the hash algorithm {} is not accepted: use SHA-256, SHA-384 or SHA-512",
                algorithm.oid
            ),
        )
    })?;
    let null_parameters = match &algorithm.parameters {
        None => false,
        Some(p) if p.is_null() => true,
        Some(_) => {
            return Err(Rejection::new(
                FailureInfo::BadAlg,
                "the hash algorithm carries parameters other than NULL",
            ))
        }
    };
    let digest = request.message_imprint.hashed_message.as_bytes().to_vec();
    if digest.len() != hash.output_len() {
        return Err(Rejection::new(
            FailureInfo::BadDataFormat,
            format!(
                "the message imprint has {} bytes where {hash:?} gives {}",
                digest.len(),
                hash.output_len()
            ),
        ));
    }
    if let Some(nonce) = request.nonce.as_ref().filter(|n| n.as_bytes().len() > MAX_NONCE_BYTES) {
        return Err(Rejection::new(
            FailureInfo::BadDataFormat,
            format!(
                "the nonce has {} bytes; at most {MAX_NONCE_BYTES} are accepted",
                nonce.as_bytes().len()
            ),
        ));
    }
    if request.extensions.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(Rejection::new(
            FailureInfo::UnacceptedExtension,
            "the TSA supports no request extension",
        ));
    }
    Ok(Query {
        hash,
        digest,
        null_parameters,
        nonce: request.nonce,
        policy: request.req_policy,
        cert_req: request.cert_req,
    })
}

/// How a query ended, for the HTTP status and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A token was issued with this serial (hex).
    Granted { serial: String },
    /// The query was refused for what it asked.
    Rejected(FailureInfo),
    /// The TSA could not make the token (token, clock or certificate trouble): not the client's fault.
    Failed,
}

/// A DER TimeStampResp with how it ended.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The DER TimeStampResp.
    pub der: Vec<u8>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Answers one DER TimeStampReq. Blocking (one signature in the token when granted).
pub fn answer(tsa: &Tsa, hsm: &Hsm, clock: &dyn Clock, query_der: &[u8]) -> Reply {
    let query = match parse_query(query_der) {
        Ok(q) => q,
        Err(r) => return rejected(&r),
    };
    match timestamp(tsa, hsm, clock, &query.as_request()) {
        Ok(ts) => match granted(&ts.token) {
            Ok(der) => Reply {
                der,
                outcome: Outcome::Granted { serial: ts.serial },
            },
            Err(e) => failed(&TsaError::Der(e)),
        },
        Err(e @ TsaError::UnacceptedPolicy { .. }) => {
            rejected(&Rejection::new(FailureInfo::UnacceptedPolicy, e.to_string()))
        }
        Err(e @ TsaError::DigestLength { .. }) => rejected(&Rejection::new(FailureInfo::BadDataFormat, e.to_string())),
        Err(e @ TsaError::Time(_)) => {
            tracing::error!(error = %e, "no timestamp: the clock is unusable");
            Reply {
                der: rejection(FailureInfo::TimeNotAvailable, "the TSA's time source is not available"),
                outcome: Outcome::Failed,
            }
        }
        Err(e) => failed(&e),
    }
}

/// A TimeStampResp refusing the query with `fail` and `reason` as its statusString.
pub fn rejection(fail: FailureInfo, reason: &str) -> Vec<u8> {
    let encode = || -> der::Result<Vec<u8>> {
        TimeStampResp {
            status: PkiStatusInfo {
                status: REJECTION,
                status_string: Some(vec![reason.to_owned()]),
                fail_info: Some(fail.bit_string()?),
            },
            time_stamp_token: None,
        }
        .to_der()
    };
    encode().unwrap_or_else(|_| BARE_REJECTION.to_vec())
}

/// A TimeStampResp granting `token` (a DER TimeStampToken).
pub fn granted(token: &[u8]) -> der::Result<Vec<u8>> {
    TimeStampResp {
        status: PkiStatusInfo {
            status: GRANTED,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(Any::from_der(token)?),
    }
    .to_der()
}

fn rejected(r: &Rejection) -> Reply {
    tracing::info!(fail = r.fail.as_str(), reason = %r.reason, "timestamp request rejected");
    Reply {
        der: rejection(r.fail, &r.reason),
        outcome: Outcome::Rejected(r.fail),
    }
}

fn failed(e: &TsaError) -> Reply {
    tracing::error!(error = %e, "the timestamp could not be made");
    Reply {
        der: rejection(
            FailureInfo::SystemFailure,
            "the timestamp could not be made; see the server log",
        ),
        outcome: Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl ts -query -data abc.txt` (SHA-256, nonce, no certReq), from the x509-tsp test vectors.
    const OPENSSL_QUERY: &str = "30400201013031300D060960864801650304020105000420BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD0208314CFCE4E0651827";

    #[test]
    fn an_openssl_query_is_read_with_its_null_parameters_and_nonce() {
        let q = parse_query(&hex::decode(OPENSSL_QUERY).unwrap()).unwrap();
        assert_eq!(q.hash, HashAlg::Sha256);
        assert!(q.null_parameters);
        assert_eq!(q.nonce.unwrap().as_bytes(), hex::decode("314CFCE4E0651827").unwrap());
        assert!(!q.cert_req);
        assert!(q.policy.is_none());
    }

    #[test]
    fn malformed_queries_are_rejected_with_the_failure_that_names_the_fault() {
        let fail = |der: &[u8]| parse_query(der).unwrap_err().fail;
        assert_eq!(fail(b""), FailureInfo::BadDataFormat);
        assert_eq!(fail(b"garbage, not DER"), FailureInfo::BadDataFormat);
        let good = hex::decode(OPENSSL_QUERY).unwrap();
        assert_eq!(fail(&good[..good.len() - 1]), FailureInfo::BadDataFormat);
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(fail(&trailing), FailureInfo::BadDataFormat);
        // A request built from its parts: hash AlgorithmIdentifier (hex) and digest length.
        let imprint = |alg: &str, digest_len: usize| {
            let alg = hex::decode(alg).unwrap();
            let mut digest = vec![0x04, digest_len as u8];
            digest.extend(vec![7u8; digest_len]);
            let inner = [alg, digest].concat();
            let mut mi = vec![0x30, inner.len() as u8];
            mi.extend(inner);
            let body = [vec![0x02, 0x01, 0x01], mi].concat();
            let mut req = vec![0x30, body.len() as u8];
            req.extend(body);
            req
        };
        assert_eq!(fail(&imprint("300706052B0E03021A", 20)), FailureInfo::BadAlg);
        assert_eq!(
            fail(&imprint("300D06096086480165030402010500", 20)),
            FailureInfo::BadDataFormat
        );
        assert_eq!(
            fail(&imprint("300E0609608648016503040201020100", 32)),
            FailureInfo::BadAlg
        );
        // A nonce past MAX_NONCE_BYTES: the openssl query with its 8-byte nonce grown to 40.
        let mut long = hex::decode(OPENSSL_QUERY).unwrap();
        let at = long.len() - 10;
        assert_eq!(&long[at..at + 2], &[0x02, 0x08]);
        long.truncate(at);
        long.extend([0x02, 40, 0x31]);
        long.extend([7u8; 39]);
        long[1] = (long.len() - 2) as u8;
        let rejection = parse_query(&long).unwrap_err();
        assert_eq!(rejection.fail, FailureInfo::BadDataFormat);
        assert!(
            rejection.reason.contains("the nonce has 40 bytes"),
            "{}",
            rejection.reason
        );
        let sha512 = parse_query(&imprint("300B0609608648016503040203", 64)).unwrap();
        assert_eq!(sha512.hash, HashAlg::Sha512);
        assert!(!sha512.null_parameters && !sha512.cert_req && sha512.nonce.is_none());
    }

    #[test]
    fn failure_bits_are_encoded_as_named_bit_lists() {
        assert_eq!(
            FailureInfo::BadAlg.bit_string().unwrap().to_der().unwrap(),
            [0x03, 0x02, 0x07, 0x80]
        );
        assert_eq!(
            FailureInfo::BadDataFormat.bit_string().unwrap().to_der().unwrap(),
            [0x03, 0x02, 0x02, 0x04]
        );
        assert_eq!(
            FailureInfo::UnacceptedPolicy.bit_string().unwrap().to_der().unwrap(),
            [0x03, 0x03, 0x00, 0x00, 0x01]
        );
        assert_eq!(
            FailureInfo::SystemFailure.bit_string().unwrap().to_der().unwrap(),
            [0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40]
        );
        let r = rejection(FailureInfo::BadAlg, "no");
        // SEQUENCE { SEQUENCE { INTEGER 2, SEQUENCE { UTF8String "no" }, BIT STRING badAlg } }
        assert_eq!(hex::encode(r), "300f300d02010230040c026e6f03020780");
    }
}
