//! A trusted list (ETSI TS 119 612 v2) of one trust service provider's services, and its XAdES-B-B enveloped
//! signature (ETSI EN 319 132-1; TS 119 612 §5.7 and Annex B: exclusive canonicalization, the enveloped-signature
//! transform, a reference to the signed properties).

use base64::Engine;
use sha2::Digest;

use super::xml::{Element, Node};

pub const TSL_NS: &str = "http://uri.etsi.org/02231/v2#";
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const XADES_NS: &str = "http://uri.etsi.org/01903/v1.3.2#";
/// The namespace of the Qualifications extension (TS 119 612 §5.5.9.2).
pub const ECC_NS: &str = "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#";

const TRUSTED_LIST: &str = "http://uri.etsi.org/TrstSvc/TrustedList";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";

/// What a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    /// A CA issuing qualified certificates (`Svctype/CA/QC`).
    CaQc,
    /// A qualified electronic time stamp service (`Svctype/TSA/QTST`).
    Qtst,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::CaQc => "ca_qc",
            ServiceKind::Qtst => "qtst",
        }
    }

    pub fn parse(s: &str) -> Option<ServiceKind> {
        match s {
            "ca_qc" => Some(ServiceKind::CaQc),
            "qtst" => Some(ServiceKind::Qtst),
            _ => None,
        }
    }

    /// The ServiceTypeIdentifier.
    pub fn uri(self) -> &'static str {
        match self {
            ServiceKind::CaQc => "http://uri.etsi.org/TrstSvc/Svctype/CA/QC",
            ServiceKind::Qtst => "http://uri.etsi.org/TrstSvc/Svctype/TSA/QTST",
        }
    }
}

/// A service's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Granted,
    Withdrawn,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Granted => "granted",
            Status::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "granted" => Some(Status::Granted),
            "withdrawn" => Some(Status::Withdrawn),
            _ => None,
        }
    }

    pub fn uri(self) -> String {
        format!("{TRUSTED_LIST}/Svcstatus/{}", self.as_str())
    }
}

/// One period of a service's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPeriod {
    pub status: Status,
    /// Unix seconds.
    pub since: i64,
}

/// What the CA/QC service's certificates are, for the list's Qualifications extension: the certificates under the
/// certificate policy `policy` with nonRepudiation are qualified certificates for electronic signatures whose key
/// the provider manages in a QSCD on the signatory's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualification {
    /// The certificate policy OID the criteria ask for.
    pub policy: String,
}

/// One trust service: one certificate (its digital identity) and its status history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub kind: ServiceKind,
    pub name: String,
    pub cert_der: Vec<u8>,
    pub history: Vec<StatusPeriod>,
    pub qualification: Option<Qualification>,
}

/// A postal and electronic address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub street: String,
    pub locality: String,
    pub postal_code: String,
    pub country: String,
    /// URIs: `mailto:…`, `https://…`.
    pub electronic: Vec<String>,
}

/// A list's content, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedList {
    pub sequence: i64,
    /// Unix seconds.
    pub issued_at: i64,
    pub next_update: i64,
    pub operator_name: String,
    pub address: Address,
    pub territory: String,
    /// Where the list is published (DistributionPoints).
    pub distribution_point: String,
    /// Where its scheme is described (SchemeInformationURI; the provider's TSPInformationURI too).
    pub information_uri: String,
    pub services: Vec<Service>,
}

/// The XMLDSig signature algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    RsaSha256,
    RsaSha384,
    EcdsaSha256,
    EcdsaSha384,
}

impl SignatureAlgorithm {
    pub fn uri(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            SignatureAlgorithm::RsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            SignatureAlgorithm::EcdsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            SignatureAlgorithm::EcdsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        }
    }

    /// The digest of the canonical SignedInfo that is signed.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            SignatureAlgorithm::RsaSha256 | SignatureAlgorithm::EcdsaSha256 => sha2::Sha256::digest(data).to_vec(),
            SignatureAlgorithm::RsaSha384 | SignatureAlgorithm::EcdsaSha384 => sha2::Sha384::digest(data).to_vec(),
        }
    }
}

fn el(name: &'static str) -> Element {
    Element::new("", TSL_NS, name)
}

fn ds(name: &'static str) -> Element {
    Element::new("ds", DS_NS, name)
}

fn xades(name: &'static str) -> Element {
    Element::new("xades", XADES_NS, name)
}

fn ecc(name: &'static str) -> Element {
    Element::new("ecc", ECC_NS, name)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Unix seconds as xsd:dateTime in UTC.
pub fn date_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

fn names(container: &'static str, value: &str) -> Element {
    el(container).child(el("Name").attr("xml:lang", "en").text(value))
}

fn uris(container: &'static str, values: &[&str]) -> Element {
    el(container).children(values.iter().map(|v| el("URI").attr("xml:lang", "en").text(*v)))
}

impl TrustedList {
    fn address(&self) -> Element {
        let a = &self.address;
        el("PostalAddresses").child(
            el("PostalAddress")
                .attr("xml:lang", "en")
                .child(el("StreetAddress").text(&a.street))
                .child(el("Locality").text(&a.locality))
                .child(el("PostalCode").text(&a.postal_code))
                .child(el("CountryName").text(&a.country)),
        )
    }

    fn electronic(&self) -> Element {
        let refs: Vec<&str> = self.address.electronic.iter().map(String::as_str).collect();
        uris("ElectronicAddress", &refs)
    }

    fn scheme_information(&self) -> Element {
        let territory = &self.territory;
        el("SchemeInformation")
            .child(el("TSLVersionIdentifier").text("5"))
            .child(el("TSLSequenceNumber").text(self.sequence.to_string()))
            .child(el("TSLType").text(format!("{TRUSTED_LIST}/TSLType/EUgeneric")))
            .child(names("SchemeOperatorName", &self.operator_name))
            .child(
                el("SchemeOperatorAddress")
                    .child(self.address())
                    .child(self.electronic()),
            )
            .child(names(
                "SchemeName",
                &format!(
                    "{territory}:Trusted list of the trust services of {}, published by their provider",
                    self.operator_name
                ),
            ))
            .child(uris("SchemeInformationURI", &[&self.information_uri]))
            .child(el("StatusDeterminationApproach").text(format!("{TRUSTED_LIST}/StatusDetn/EUappropriate")))
            .child(uris(
                "SchemeTypeCommunityRules",
                &[
                    &format!("{TRUSTED_LIST}/schemerules/EUcommon"),
                    &format!("{TRUSTED_LIST}/schemerules/{territory}"),
                ],
            ))
            .child(el("SchemeTerritory").text(territory))
            .child(
                el("PolicyOrLegalNotice").child(el("TSLLegalNotice").attr("xml:lang", "en").text(
                    "The trust services listed here are those of the provider named, published by that \
                         provider for validators that configure this list. It is not a trusted list of a \
                         supervisory body of an EU Member State.",
                )),
            )
            .child(el("HistoricalInformationPeriod").text("65535"))
            .child(el("ListIssueDateTime").text(date_time(self.issued_at)))
            .child(el("NextUpdate").child(el("dateTime").text(date_time(self.next_update))))
            .child(el("DistributionPoints").child(el("URI").text(&self.distribution_point)))
    }

    fn provider(&self) -> Element {
        el("TrustServiceProvider")
            .child(
                el("TSPInformation")
                    .child(names("TSPName", &self.operator_name))
                    .child(names("TSPTradeName", &self.operator_name))
                    .child(el("TSPAddress").child(self.address()).child(self.electronic()))
                    .child(uris("TSPInformationURI", &[&self.information_uri])),
            )
            .child(el("TSPServices").children(self.services.iter().map(service)))
    }

    /// The list without its signature.
    pub fn body(&self) -> Element {
        el("TrustServiceStatusList")
            .attr("Id", "tsl")
            .attr("TSLTag", "http://uri.etsi.org/19612/TSLTag")
            .child(self.scheme_information())
            .child(el("TrustServiceProviderList").child(self.provider()))
            .indented(0)
    }

    /// Signs the list (XAdES-B-B, enveloped) with `sign`, which returns the signature value of a digest of the
    /// canonical SignedInfo (RSA PKCS#1 v1.5, or ECDSA as `r‖s`), and returns the document.
    pub fn sign<E>(
        &self,
        algorithm: SignatureAlgorithm,
        signer_cert_der: &[u8],
        signing_time: i64,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
    ) -> Result<String, E> {
        let mut root = self.body();
        let id = format!("sig-{}", self.sequence);
        let list_ref = format!("ref-{id}-list");
        let props_id = format!("xades-{id}");
        let list_digest = sha2::Sha256::digest(root.canonical().as_bytes());
        let signed_properties = xades("SignedProperties").attr("Id", &props_id).child(
            xades("SignedSignatureProperties")
                .child(xades("SigningTime").text(date_time(signing_time)))
                .child(
                    xades("SigningCertificateV2").child(
                        xades("Cert").child(
                            xades("CertDigest")
                                .child(ds("DigestMethod").attr("Algorithm", SHA256_URI))
                                .child(ds("DigestValue").text(b64(&sha2::Sha256::digest(signer_cert_der)))),
                        ),
                    ),
                ),
        );
        let signed_properties = signed_properties.child(
            xades("SignedDataObjectProperties").child(
                xades("DataObjectFormat")
                    .attr("ObjectReference", format!("#{list_ref}"))
                    .child(xades("MimeType").text("text/xml")),
            ),
        );
        let props_digest = sha2::Sha256::digest(signed_properties.canonical().as_bytes());
        let signed_info = ds("SignedInfo")
            .child(ds("CanonicalizationMethod").attr("Algorithm", EXC_C14N))
            .child(ds("SignatureMethod").attr("Algorithm", algorithm.uri()))
            .child(
                ds("Reference")
                    .attr("Id", &list_ref)
                    .attr("URI", "")
                    .child(
                        ds("Transforms")
                            .child(ds("Transform").attr("Algorithm", ENVELOPED))
                            .child(ds("Transform").attr("Algorithm", EXC_C14N)),
                    )
                    .child(ds("DigestMethod").attr("Algorithm", SHA256_URI))
                    .child(ds("DigestValue").text(b64(&list_digest))),
            )
            .child(
                ds("Reference")
                    .attr("Type", SIGNED_PROPERTIES_TYPE)
                    .attr("URI", format!("#{props_id}"))
                    .child(ds("Transforms").child(ds("Transform").attr("Algorithm", EXC_C14N)))
                    .child(ds("DigestMethod").attr("Algorithm", SHA256_URI))
                    .child(ds("DigestValue").text(b64(&props_digest))),
            );
        let value = sign(&algorithm.digest(signed_info.canonical().as_bytes()))?;
        let signature = ds("Signature")
            .attr("Id", &id)
            .child(signed_info)
            .child(ds("SignatureValue").attr("Id", format!("value-{id}")).text(b64(&value)))
            .child(ds("KeyInfo").child(ds("X509Data").child(ds("X509Certificate").text(b64(signer_cert_der)))))
            .child(
                ds("Object").child(
                    xades("QualifyingProperties")
                        .attr("Target", format!("#{id}"))
                        .child(signed_properties),
                ),
            );
        root.children.push(Node::Element(signature));
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
            root.canonical()
        ))
    }
}

const SHA256_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

fn digital_identity(cert_der: &[u8]) -> Element {
    el("ServiceDigitalIdentity").child(el("DigitalId").child(el("X509Certificate").text(b64(cert_der))))
}

fn extensions(service: &Service) -> Option<Element> {
    let q = service.qualification.as_ref()?;
    let svc_ext = |name: &str| format!("{TRUSTED_LIST}/SvcInfoExt/{name}");
    let qualifications = ecc("Qualifications").child(
        ecc("QualificationElement")
            .child(
                ecc("Qualifiers")
                    .child(ecc("Qualifier").attr("uri", svc_ext("QCForESig")))
                    .child(ecc("Qualifier").attr("uri", svc_ext("QCQSCDManagedOnBehalf"))),
            )
            .child(
                ecc("CriteriaList")
                    .attr("assert", "all")
                    .child(ecc("KeyUsage").child(ecc("KeyUsageBit").attr("name", "nonRepudiation").text("true")))
                    .child(ecc("PolicySet").child(ecc("PolicyIdentifier").child(xades("Identifier").text(&q.policy)))),
            ),
    );
    Some(
        el("ServiceInformationExtensions")
            .child(el("Extension").attr("Critical", "true").child(qualifications))
            .child(
                el("Extension").attr("Critical", "true").child(
                    el("AdditionalServiceInformation")
                        .child(el("URI").attr("xml:lang", "en").text(svc_ext("ForeSignatures"))),
                ),
            ),
    )
}

/// The parts ServiceInformation and ServiceHistoryInstance share, for one status period.
fn status_parts(service: &Service, period: &StatusPeriod) -> Vec<Element> {
    let mut parts = vec![
        el("ServiceTypeIdentifier").text(service.kind.uri()),
        names("ServiceName", &service.name),
        digital_identity(&service.cert_der),
        el("ServiceStatus").text(period.status.uri()),
        el("StatusStartingTime").text(date_time(period.since)),
    ];
    parts.extend(extensions(service));
    parts
}

fn service(s: &Service) -> Element {
    let mut periods = s.history.iter();
    let current = periods.next().cloned().unwrap_or(StatusPeriod {
        status: Status::Withdrawn,
        since: 0,
    });
    let mut e = el("TSPService").child(el("ServiceInformation").children(status_parts(s, &current)));
    let older: Vec<Element> = periods
        .map(|p| el("ServiceHistoryInstance").children(status_parts(s, p)))
        .collect();
    if !older.is_empty() {
        e = e.child(el("ServiceHistory").children(older));
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TrustedList {
        TrustedList {
            sequence: 3,
            issued_at: 1_800_000_000,
            next_update: 1_802_592_000,
            operator_name: "Op & Co".into(),
            address: Address {
                street: "Str. 1".into(),
                locality: "Cluj".into(),
                postal_code: "400000".into(),
                country: "RO".into(),
                electronic: vec!["mailto:trust@op.test".into()],
            },
            territory: "RO".into(),
            distribution_point: "https://op.test/pki/tl.xml".into(),
            information_uri: "https://op.test/legal".into(),
            services: vec![Service {
                kind: ServiceKind::CaQc,
                name: "CA".into(),
                cert_der: vec![1, 2, 3],
                history: vec![
                    StatusPeriod {
                        status: Status::Withdrawn,
                        since: 1_790_000_000,
                    },
                    StatusPeriod {
                        status: Status::Granted,
                        since: 1_700_000_000,
                    },
                ],
                qualification: Some(Qualification {
                    policy: "0.4.0.194112.1.2".into(),
                }),
            }],
        }
    }

    #[test]
    fn the_signature_is_over_the_canonical_signed_info_and_the_document_carries_the_list_unchanged() {
        let list = sample();
        let mut signed_digest = Vec::new();
        let doc = list
            .sign(SignatureAlgorithm::EcdsaSha256, &[9, 9], 1_800_000_100, |d| {
                signed_digest = d.to_vec();
                Ok::<_, ()>(vec![7; 64])
            })
            .unwrap();
        assert_eq!(signed_digest.len(), 32);
        assert!(doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<TrustServiceStatusList xmlns="));
        // The document less its signature is the canonical body the first reference digests.
        let body = list.body().canonical();
        let start = doc.find("<TrustServiceStatusList").unwrap();
        let sig = doc.find("<ds:Signature").unwrap();
        assert_eq!(
            format!("{}</TrustServiceStatusList>", &doc[start..sig]),
            body,
            "the signature is the last thing in the list"
        );
        let digest = b64(&sha2::Sha256::digest(body.as_bytes()));
        assert!(doc.contains(&format!("<ds:DigestValue>{digest}</ds:DigestValue>")));
        assert!(doc.contains("<TSLSequenceNumber>3</TSLSequenceNumber>"));
        assert!(doc.contains("<ServiceHistory>"));
        assert!(doc.contains("Op &amp; Co"));
        assert!(doc.contains("<ListIssueDateTime>2027-01-15T08:00:00Z</ListIssueDateTime>"));
    }
}
